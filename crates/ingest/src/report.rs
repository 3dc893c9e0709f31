//! The run report: JSON for machines (`--report PATH`), a summary for people (stderr).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The current report format.
pub const REPORT_FORMAT: u32 = 1;

/// One table's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableReport {
    /// Output table.
    pub table: String,
    /// Source file (relative to --source).
    pub source: String,
    /// Rows read from the source (records; blank lines excluded).
    pub rows_read: u64,
    /// Rows written to the table.
    pub rows_written: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Rows of opted-out people, removed.
    pub rows_opted_out: u64,
    /// Delta version committed (absent when the run failed before committing).
    pub delta_version: Option<u64>,
    /// Data files written.
    pub files: usize,
    /// Bytes of data files written.
    pub bytes: u64,
    /// Bytes read from the source.
    pub source_bytes: u64,
    /// Wall time of the table, seconds.
    pub seconds: f64,
    /// Rows read per second.
    pub rows_per_second: f64,
    /// Quarantine reasons and their counts.
    pub quarantine_reasons: BTreeMap<String, u64>,
    /// The quarantine file, if any row was quarantined.
    pub quarantine_file: Option<String>,
}

impl TableReport {
    /// `read = written + quarantined + opted_out`.
    pub fn reconciles(&self) -> bool {
        self.rows_read == self.rows_written + self.rows_quarantined + self.rows_opted_out
    }
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Report format version ([`REPORT_FORMAT`]).
    pub format: u32,
    /// This run's id (also the quarantine folder).
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// SHA-256 of the spec file.
    pub spec_sha256: String,
    /// Key id of the master key used.
    pub key_id: String,
    /// Store URL.
    pub store: String,
    /// Quarantine URL.
    pub quarantine: String,
    /// People in the opt-out list.
    pub opt_out_people: usize,
    /// Start time.
    pub started: DateTime<Utc>,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Whether every table was committed.
    pub committed: bool,
    /// Per table.
    pub tables: Vec<TableReport>,
}

impl RunReport {
    /// A human summary, one line per table.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "ingest {} ({}): key {}, {} tables, {:.1}s{}",
            self.pipeline,
            self.run_id,
            self.key_id,
            self.tables.len(),
            self.seconds,
            if self.committed {
                ""
            } else {
                ", NOTHING COMMITTED"
            }
        );
        let _ = writeln!(
            s,
            "  {:<24} {:>11} {:>11} {:>11} {:>9} {:>7} {:>12}",
            "table", "read", "written", "quarantine", "opt-out", "version", "rows/s"
        );
        for t in &self.tables {
            let _ = writeln!(
                s,
                "  {:<24} {:>11} {:>11} {:>11} {:>9} {:>7} {:>12.0}",
                t.table,
                t.rows_read,
                t.rows_written,
                t.rows_quarantined,
                t.rows_opted_out,
                t.delta_version.map_or("-".to_owned(), |v| v.to_string()),
                t.rows_per_second
            );
        }
        let q: u64 = self.tables.iter().map(|t| t.rows_quarantined).sum();
        if q > 0 {
            let _ = writeln!(
                s,
                "  {q} rows quarantined under {} (identifiable: handle as raw data)",
                self.quarantine
            );
        }
        s
    }
}
