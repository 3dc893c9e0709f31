//! `dhub release create|list|show`.

use anyhow::Context;
use dhub_store::Store;

use crate::args::{Global, ReleaseCommand};

pub fn run(global: &Global, cmd: ReleaseCommand) -> anyhow::Result<()> {
    let store = Store::open(&global.store)?;
    let rt = super::runtime()?;
    match cmd {
        ReleaseCommand::Create { name } => {
            let release = create(&rt, &store, &name)?;
            println!(
                "created release {} ({} tables, key {})",
                release.name,
                release.tables.len(),
                release.key_id
            );
            for (t, v) in &release.tables {
                eprintln!("  {t:<28} version {v}");
            }
        }
        ReleaseCommand::List => {
            let releases = rt.block_on(store.releases())?;
            if releases.is_empty() {
                eprintln!(
                    "no releases in {}; `dhub release create NAME` makes one",
                    store.url()
                );
            }
            for r in releases {
                println!(
                    "{}\t{}\t{} tables\tkey {}",
                    r.name,
                    r.created.format("%Y-%m-%dT%H:%M:%SZ"),
                    r.tables.len(),
                    r.key_id
                );
            }
        }
        ReleaseCommand::Show { name } => {
            let r = rt.block_on(store.release(&name))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&r).context("serialising the release")?
            );
        }
    }
    Ok(())
}

/// Creates release `name` from the newest version of every table.
pub fn create(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    name: &str,
) -> anyhow::Result<dhub_store::Release> {
    rt.block_on(async {
        let release = store.release_of_current(name).await?;
        store.create_release(&release).await?;
        Ok::<_, anyhow::Error>(release)
    })
    .with_context(|| format!("creating release `{name}`"))
}
