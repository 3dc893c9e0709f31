//! `dhub quickstart`: from nothing to a first look, on the embedded defaults.
//!
//! Creates a master key if none exists, synthesises a Synthea-format sample, shows the
//! pseudonyms of its first patients, and says what to run next.

use std::io::BufRead;

use anyhow::Context;
use dhub_deid::{IdFormat, Pseudonymiser};

use crate::args::{Global, QuickstartArgs, SynthArgs};

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
    let key = super::keys::load(key_path)?;

    let patients_csv = args.raw.join("patients.csv");
    if patients_csv.exists() {
        eprintln!(
            "quickstart: using the existing sample in {}",
            args.raw.display()
        );
    } else {
        super::synth::run(&SynthArgs {
            format: "synthea".into(),
            patients: args.patients,
            seed: 1,
            out: args.raw.clone(),
            defects: 0.0,
            gzip: false,
        })?;
    }

    // The synthetic patients' ids are not real identifiers, so showing them is safe.
    let person = Pseudonymiser::new(&key, "person")?;
    let file = std::fs::File::open(&patients_csv)
        .with_context(|| format!("opening {}", patients_csv.display()))?;
    println!(
        "key id {}; first synthetic patients and their person pseudonyms:",
        key.key_id()
    );
    for line in std::io::BufReader::new(file).lines().skip(1).take(3) {
        let line = line.with_context(|| format!("reading {}", patients_csv.display()))?;
        let id = line.split(',').next().unwrap_or_default();
        let p = person
            .pseudonym(id, IdFormat::Uuid)
            .map_err(|r| anyhow::anyhow!("synthetic patient id: {r}"))?
            .unwrap_or_default();
        println!("  {id}  ->  {p}");
    }
    println!();
    println!("Next:");
    println!(
        "  dhub pseudonym --entity person --format uuid < ids.txt   # pseudonyms for a list of ids (e.g. opt-outs)"
    );
    println!(
        "  dhub synth --format uk --patients 10000 --out ./dhub-data/raw/uk   # the UK shared-care format"
    );
    Ok(())
}
