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
    println!();
    println!("Next:");
    println!(
        "  dhub release show {}            # the release: table -> Delta version",
        release.name
    );
    println!(
        "  python -c \"import polars as pl; print(pl.read_delta('dhub-data/store/patients'))\""
    );
    println!(
        "  dhub pseudonym --entity person --format uuid < ids.txt   # pseudonyms of a list of ids (opt-outs)"
    );
    println!("  dhub synth --format uk --patients 10000 --out ./dhub-data/raw/uk --defects 0.005");
    println!(
        "  dhub ingest pipelines/uk-shared-care.toml --source ./dhub-data/raw/uk --opt-out ./dhub-data/raw/uk/opt_out.csv"
    );
    Ok(())
}
