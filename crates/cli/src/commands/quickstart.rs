//! `dhub quickstart`: the data manager's main job, end to end, on the embedded defaults.
//!
//! Creates a master key if none exists, synthesises a Synthea-format sample, ingests it
//! with `pipelines/synthea.toml` into the research store, records a release, and says
//! what to run next.

use std::path::Path;

use anyhow::Context;
use dhub_ingest::Pipeline;

use crate::args::{Global, IngestArgs, QuickstartArgs, SynthArgs};
use crate::choices::SynthFormatChoice;

/// The Synthea pipeline shipped with dhub, used when `pipelines/synthea.toml` is not in
/// the current directory.
const SYNTHEA_PIPELINE: &str = include_str!("../../../../pipelines/synthea.toml");

/// The demo researcher's token, written by the quickstart (mode 0600).
const QUICKSTART_TOKEN: &str = "./dhub-data/quickstart.token";

/// Where the shipped researcher views are written when `sql/views` is not in the
/// current directory.
const QUICKSTART_VIEWS: &str = "./dhub-data/views";

/// The researcher views shipped with dhub (`sql/views`).
const VIEWS: &[(&str, &str)] = &[
    (
        "demographics.sql",
        include_str!("../../../../sql/views/demographics.sql"),
    ),
    (
        "condition_episodes.sql",
        include_str!("../../../../sql/views/condition_episodes.sql"),
    ),
];

/// How the user ran dhub, for the "Next" lines: `cargo run --release -p dhub-cli --`
/// when cargo started it (cargo sets `CARGO_MANIFEST_DIR` for the program it runs),
/// `dhub` when that is what the shell finds, else the binary's path.
fn invocation() -> String {
    if std::env::var_os("CARGO_MANIFEST_DIR").is_some() && std::env::var_os("CARGO").is_some() {
        let release = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        return format!("cargo run{release} -q -p dhub-cli --");
    }
    let exe = std::env::current_exe().ok();
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("dhub"))
            .find(|p| p.is_file())
    });
    match (exe, on_path) {
        (Some(exe), Some(found))
            if std::fs::canonicalize(&found).ok() == std::fs::canonicalize(&exe).ok() =>
        {
            "dhub".to_owned()
        }
        (Some(exe), _) => exe.display().to_string(),
        (None, _) => "dhub".to_owned(),
    }
}

pub fn run(global: &Global, args: &QuickstartArgs) -> anyhow::Result<()> {
    let key_path = &global.key;
    if key_path.exists() {
        eprintln!(
            "quickstart: using the existing master key {}",
            key_path.display()
        );
    } else {
        let id = super::keys::generate(key_path)?;
        eprintln!(
            "quickstart: created master key {id} at {}",
            key_path.display()
        );
    }

    if args.raw.join("patients.csv").exists() {
        eprintln!(
            "quickstart: using the existing sample in {}",
            args.raw.display()
        );
    } else {
        super::synth::run(&SynthArgs {
            format: SynthFormatChoice::Synthea,
            patients: args.patients,
            seed: 1,
            out: args.raw.clone(),
            defects: 0.0,
            gzip: false,
        })?;
    }

    let local = Path::new("pipelines/synthea.toml");
    let spec_path = if local.is_file() {
        local.to_path_buf()
    } else {
        let dir = Path::new("./dhub-data");
        std::fs::create_dir_all(dir).context("creating ./dhub-data")?;
        let p = dir.join("synthea.toml");
        std::fs::write(&p, SYNTHEA_PIPELINE).with_context(|| format!("writing {}", p.display()))?;
        p
    };
    // check the spec before the run so a bad local copy is reported as such
    Pipeline::load(&spec_path)?;
    let report = super::ingest::run(
        global,
        &IngestArgs {
            pipeline: spec_path.clone(),
            source: args.raw.display().to_string(),
            quarantine: args.quarantine.clone(),
            opt_out: None,
            report: Some(Path::new("./dhub-data/quickstart-report.json").to_path_buf()),
            max_reject_rate: None,
            target_file_mib: 128,
        },
    )?;

    let store = dhub_store::Store::open(&global.store)?;
    let version = report
        .tables
        .iter()
        .filter_map(|t| t.delta_version)
        .max()
        .unwrap_or(0);
    let name = format!(
        "quickstart-{}-v{version}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    let release = super::release::create(&super::runtime()?, &store, &name)?;
    let rows: u64 = report.tables.iter().map(|t| t.rows_written).sum();
    println!(
        "release {} holds {} tables ({rows} rows) pseudonymised with key {}, in {}",
        release.name,
        release.tables.len(),
        release.key_id,
        store.url()
    );

    // The researcher's side: a demo project over the release (aggregate mode, the default
    // disclosure policy) and a researcher token in a file only this account can read.
    let g = super::govern::open(global)?;
    let project = g.create_project(
        &dhub_govern::NewProject {
            title: "quickstart demo".into(),
            ..dhub_govern::NewProject::new(release.name.clone(), release.name.clone())
        },
        &super::govern::actor(),
    )?;
    let researcher = format!("demo-{}", release.name);
    let token = g.add_researcher(&researcher, &project.id, None, &super::govern::actor())?;
    let token_path = Path::new(QUICKSTART_TOKEN);
    dhub_store::private::write_private(token_path, format!("{token}\n").as_bytes()).with_context(
        || {
            format!(
                "writing the demo researcher's token to {}",
                token_path.display()
            )
        },
    )?;
    super::govern::after_change(global, &g)?;
    eprintln!(
        "quickstart: project {} ({} mode) over the release; researcher {researcher}'s token is in {QUICKSTART_TOKEN} (mode 0600)",
        project.id, project.policy.mode
    );

    let dhub = invocation();
    let views = if Path::new("sql/views").is_dir() {
        String::new()
    } else {
        let dir = Path::new(QUICKSTART_VIEWS);
        dhub_store::private::create_private_dir_all(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        for (name, sql) in VIEWS {
            let p = dir.join(name);
            std::fs::write(&p, sql).with_context(|| format!("writing {}", p.display()))?;
        }
        format!(" --views {QUICKSTART_VIEWS}")
    };
    println!();
    println!("Next:");
    println!(
        "  {dhub} release show {}    # the release: table -> Delta version",
        release.name
    );
    println!(
        "  echo 9999999999 | {dhub} pseudonym --entity person --format nhs    # the pseudonym of an id (opt-out lists)"
    );
    println!(
        "  {dhub} serve{views}    # in a second terminal: the researchers' SQL endpoint on http://127.0.0.1:8080"
    );
    println!(
        "  curl -s http://127.0.0.1:8080/v1/query -H \"Authorization: Bearer $(cat {QUICKSTART_TOKEN})\" -H 'Content-Type: application/json' -d '{{\"sql\": \"SELECT gender, count(*) AS n FROM patients GROUP BY gender\"}}'"
    );
    Ok(())
}
