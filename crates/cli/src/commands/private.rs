//! Start-up checks that keep identifiable and pseudonymised files private to dhub's
//! account (see `dhub_store::private`): the process umask, and a refusal to run over a
//! local root that other users may read.

use anyhow::Context;

use crate::args::{Cli, Command};

/// Sets the process umask to `077`, before anything is written: every file dhub (and
/// the object store, Delta Lake, SQLite and the query workers it starts) creates is
/// then `0600`, every directory `0700`.
pub fn restrict_umask() {
    #[cfg(unix)]
    #[allow(unsafe_code)]
    // SAFETY: umask(2) only sets this process's file-mode creation mask; it takes no
    // pointers and cannot fail. It runs first in `main`, before any thread exists.
    unsafe {
        libc::umask(0o077);
    }
}

/// Refuses to run a command over a local research store, quarantine, extracts area or
/// governance database that other local users may read, write or enter.
pub fn check(cli: &Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    // (store, quarantine, extracts, governance database) each command uses
    let (store, quarantine, extracts, govern) = match &cli.command {
        Command::Quickstart(a) => (true, Some(a.quarantine.url.as_str()), false, true),
        Command::Ingest(a) => (true, Some(a.quarantine.url.as_str()), false, false),
        Command::Release(_) => (true, None, false, false),
        Command::Project(_) => (true, None, false, true),
        Command::Researcher(_) | Command::Audit(_) | Command::Partner(_) => {
            (false, None, false, true)
        }
        Command::Extract(_) | Command::Serve(_) => (true, None, true, true),
        Command::Keys(_)
        | Command::Pseudonym(_)
        | Command::Synth(_)
        | Command::QueryWorker { .. } => (false, None, false, false),
    };
    if store {
        check_url(&g.store, "research store")?;
    }
    if let Some(q) = quarantine {
        check_url(q, "quarantine")?;
    }
    if extracts {
        check_url(&g.extracts, "extracts area")?;
    }
    if govern {
        for suffix in ["", "-wal", "-shm"] {
            let db = std::path::absolute(&g.govern).unwrap_or_else(|_| g.govern.clone());
            let mut p = db.into_os_string();
            p.push(suffix);
            dhub_store::private::check_private(
                std::path::Path::new(&p),
                "governance database file",
            )?;
        }
    }
    Ok(())
}

fn check_url(url: &str, what: &str) -> anyhow::Result<()> {
    let u = dhub_store::normalise_url(url).with_context(|| format!("the {what} URL"))?;
    if u.scheme() == "file"
        && let Ok(p) = u.to_file_path()
    {
        dhub_store::private::check_private(&p, what)?;
    }
    Ok(())
}
