//! `dhub ingest PIPELINE.toml`: progress bars per table, the human summary on stderr,
//! the JSON report with `--report`.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Context;
use dhub_ingest::{IngestOptions, Pipeline, Progress, RunReport, TableReport};
use dhub_store::WriteOptions;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::{Global, IngestArgs};

/// Draws one byte-progress bar per table on a terminal (nothing otherwise).
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new() -> Self {
        use std::io::IsTerminal;
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn with_bar(&self, table: &str, f: impl FnOnce(&ProgressBar)) {
        let bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = bars.get(table) {
            f(b);
        }
    }
}

impl Progress for Bars {
    fn table_started(&self, table: &str, source_bytes: u64) {
        let bar = self.multi.add(ProgressBar::new(source_bytes));
        let style = ProgressStyle::with_template(
            "{msg:<24} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(table.to_owned());
        self.bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(table.to_owned(), bar);
    }

    fn table_progress(&self, table: &str, bytes_read: u64) {
        self.with_bar(table, |b| b.set_position(bytes_read));
    }

    fn table_finished(&self, table: &str, report: &TableReport) {
        self.with_bar(table, |b| {
            b.finish_with_message(format!("{table} ({} rows)", report.rows_read));
        });
    }
}

pub fn run(global: &Global, args: &IngestArgs) -> anyhow::Result<RunReport> {
    crate::output::tune_allocator_for_batch_jobs();
    let pipeline = Pipeline::load(&args.pipeline)?;
    let key = super::keys::load(&global.key)?;
    let opts = IngestOptions {
        store: global.store.clone(),
        source: args.source.clone(),
        quarantine: args.quarantine.url.clone(),
        opt_out: args.opt_out.clone(),
        write: WriteOptions {
            target_file_size: args.target_file_mib.max(1) * 1024 * 1024,
            ..WriteOptions::default()
        },
        max_reject_rate: args.max_reject_rate,
    };
    let bars = Bars::new();
    let report = super::runtime()?
        .block_on(dhub_ingest::run(&pipeline, &key, &opts, &bars))
        .with_context(|| {
            format!(
                "ingest {} failed; every table is unchanged",
                args.pipeline.display()
            )
        })?;
    drop(bars);
    eprint!("{}", report.summary());
    if let Some(path) = &args.report {
        let mut json = serde_json::to_vec_pretty(&report).context("serialising the run report")?;
        json.push(b'\n');
        dhub_store::private::write_private(path, &json)
            .with_context(|| format!("writing the report to {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(report)
}
