//! `dhub synth`: synthetic raw extracts, with a progress bar and a closing report.

use anyhow::Context;
use dhub_synth::{Format, SynthConfig, SynthReport};

use crate::args::SynthArgs;
use crate::output::{human_bytes, progress_bar};

pub fn run(args: &SynthArgs) -> anyhow::Result<SynthReport> {
    let format = Format::from(args.format);
    let cfg = SynthConfig {
        format,
        patients: args.patients,
        seed: args.seed,
        out: args.out.clone(),
        defects: args.defects,
        gzip: args.gzip,
    };
    let bar = progress_bar(args.patients, "patients");
    let report = dhub_synth::generate(&cfg, &|done| bar.set_position(done)).with_context(|| {
        format!(
            "generating synthetic {format} data in {}",
            args.out.display()
        )
    })?;
    bar.finish_and_clear();
    let bytes: u64 = report.files.iter().map(|f| f.bytes).sum();
    let rows: u64 = report.files.iter().map(|f| f.rows).sum();
    eprintln!(
        "synth: {} patients, {} files, {rows} rows, {} in {:.1}s ({}/s){}",
        report.patients,
        report.files.len(),
        human_bytes(bytes),
        report.seconds,
        human_bytes((bytes as f64 / report.seconds.max(1e-9)) as u64),
        if report.defects > 0 {
            format!(", {} defective rows (see _defects.csv)", report.defects)
        } else {
            String::new()
        }
    );
    for f in &report.files {
        eprintln!(
            "  {:<28} {:>12} rows {:>10}",
            f.name,
            f.rows,
            human_bytes(f.bytes)
        );
    }
    Ok(report)
}
