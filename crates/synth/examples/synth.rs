//! Runs the generator without the CLI, for measurements:
//!
//! ```text
//! cargo run --release -p dhub-synth --example synth -- \
//!     --format synthea --patients 100000 --seed 1 --out /tmp/synth [--defects 0.01] [--gzip]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use dhub_synth::{Format, SynthConfig, generate};

fn parse() -> Result<SynthConfig, String> {
    let mut cfg = SynthConfig {
        format: Format::Synthea,
        patients: 1000,
        seed: 1,
        out: PathBuf::from("synth-out"),
        defects: 0.0,
        gzip: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--gzip" {
            cfg.gzip = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--format" => cfg.format = value.parse().map_err(|e| format!("{e}"))?,
            "--patients" => cfg.patients = value.parse().map_err(|e| format!("--patients: {e}"))?,
            "--seed" => cfg.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            "--out" => cfg.out = PathBuf::from(value),
            "--defects" => cfg.defects = value.parse().map_err(|e| format!("--defects: {e}"))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let cfg = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let total = cfg.patients;
    let report = generate(&cfg, &|n| eprint!("\r{n}/{total} patients"));
    eprintln!();
    match report {
        Ok(r) => {
            let mut bytes = 0u64;
            let mut rows = 0u64;
            for f in &r.files {
                println!("{:<28} {:>12} rows {:>15} bytes", f.name, f.rows, f.bytes);
                bytes += f.bytes;
                rows += f.rows;
            }
            let mb = bytes as f64 / 1e6;
            println!(
                "{} patients, {rows} rows, {mb:.1} MB, {} defects in {:.2} s: {:.1} MB/s, {:.0} patients/s, {:.0} bytes/patient",
                r.patients,
                r.defects,
                r.seconds,
                mb / r.seconds,
                r.patients as f64 / r.seconds,
                bytes as f64 / r.patients.max(1) as f64
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
