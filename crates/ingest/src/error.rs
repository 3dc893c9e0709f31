//! Typed errors of the ingest. They name files, line numbers, tables and columns, never
//! a value from a source row.

use std::path::PathBuf;

/// A problem in a pipeline spec, located by file, line and column.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct SpecError {
    /// The spec file.
    pub file: PathBuf,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Errors of an ingest run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The spec is invalid, or does not match a source's columns.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A source could not be opened or read.
    #[error("source {source_name}: {message}")]
    Source {
        /// The source file (relative to --source).
        source_name: String,
        /// What failed and what to do.
        message: String,
    },
    /// The opt-out list is unusable.
    #[error("opt-out list {path}: {message}")]
    OptOut {
        /// The file.
        path: PathBuf,
        /// What is wrong (by line number, never the value).
        message: String,
    },
    /// Too many rows of a table failed; nothing was committed.
    #[error(
        "table `{table}`: {quarantined} of {read} rows ({share:.2}%) were quarantined, above max_reject_rate {limit:.2}%; nothing was committed. Look at the quarantine ({quarantine}) for the reasons, fix the source or raise max_reject_rate in the spec"
    )]
    TooManyRejects {
        /// The table.
        table: String,
        /// Rows read.
        read: u64,
        /// Rows quarantined.
        quarantined: u64,
        /// Their share, in percent.
        share: f64,
        /// The limit, in percent.
        limit: f64,
        /// Where the quarantine files are.
        quarantine: String,
    },
    /// The run's counts do not add up (a bug): nothing was committed.
    #[error(
        "table `{table}`: rows read ({read}) != written ({written}) + quarantined ({quarantined}) + opted out ({opted_out}); nothing was committed. This is a bug: please report it with the run report"
    )]
    Reconciliation {
        /// The table.
        table: String,
        /// Read.
        read: u64,
        /// Written.
        written: u64,
        /// Quarantined.
        quarantined: u64,
        /// Opted out.
        opted_out: u64,
    },
    /// The quarantine area would be inside the research store.
    #[error(
        "the quarantine area {quarantine} is inside the research store {store}; quarantined rows are identifiable and must never be in the research store: choose another --quarantine"
    )]
    QuarantineInStore {
        /// The quarantine URL.
        quarantine: String,
        /// The store URL.
        store: String,
    },
    /// De-identification failed for a whole column (wrong type, bad parameter).
    #[error("table `{table}`, column `{column}`: {source}")]
    Rule {
        /// The table.
        table: String,
        /// The source column.
        column: String,
        /// The rule's error.
        #[source]
        source: dhub_deid::RuleError,
    },
    /// The research store failed.
    #[error(transparent)]
    Store(#[from] dhub_store::StoreError),
    /// The run id could not be drawn (the system's secure random generator failed).
    #[error(transparent)]
    Random(#[from] dhub_deid::KeyError),
    /// Writing the quarantine failed.
    #[error("quarantine {location}: {message}")]
    Quarantine {
        /// Where.
        location: String,
        /// What failed.
        message: String,
    },
    /// Arrow failed while building a batch.
    #[error("table `{table}`: building a batch failed: {message}")]
    Arrow {
        /// The table.
        table: String,
        /// Arrow's message.
        message: String,
    },
    /// A worker thread failed.
    #[error("internal error: {0}")]
    Internal(String),
}
