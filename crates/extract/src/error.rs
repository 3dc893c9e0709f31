//! Typed errors of partner extracts. Messages say what is wrong and what to do next;
//! they never hold a data value, a key or a token (k-anonymity failures report class
//! sizes, never the values that make a class).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Errors of `dhub-extract`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The spec file is wrong (unknown key, bad value, missing SQL file, …).
    #[error("extract spec {path}: {message}")]
    Spec {
        /// The spec (or SQL) file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The query was refused or failed.
    #[error("extract query: {message}")]
    Query {
        /// What went wrong (the data manager's view: refusal text or engine error).
        message: String,
    },
    /// Some equivalence class over the quasi-identifiers is smaller than k.
    #[error(
        "k-anonymity check failed: {below} of {classes} equivalence classes over ({quasi_identifiers}) have fewer than k = {k} rows (smallest {smallest}; sizes below k, as size x classes: {histogram}); nothing was written. Generalise the quasi-identifiers in the SQL (coarser bands, fewer columns) or filter out small groups, then request the extract again"
    )]
    KAnonymity {
        /// The k required.
        k: u64,
        /// The quasi-identifier columns.
        quasi_identifiers: String,
        /// Classes in total.
        classes: u64,
        /// Classes below k.
        below: u64,
        /// The smallest class.
        smallest: u64,
        /// Sizes below k, as `size x count` text.
        histogram: String,
        /// Sizes below k → number of classes of that size.
        sizes: BTreeMap<u64, u64>,
    },
    /// The result is bigger than the spec's `max_rows`.
    #[error(
        "the extract has {rows} rows, more than max_rows = {max_rows} in its spec; nothing was written. Narrow the query or request a new extract with a higher max_rows"
    )]
    TooManyRows {
        /// Rows in the result.
        rows: u64,
        /// The spec's limit.
        max_rows: u64,
    },
    /// A column that must be re-keyed does not hold research pseudonyms, or a column
    /// that holds research pseudonyms is not re-keyed.
    #[error("{message}; nothing was released")]
    Pseudonyms {
        /// Which column and row, and what to change.
        message: String,
    },
    /// Reading or writing extract files failed.
    #[error("{action} {what}: {message}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or URL.
        what: String,
        /// The underlying error.
        message: String,
    },
    /// The signing key could not be made, read or used.
    #[error("signing key {path}: {message}")]
    SigningKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Verification of a downloaded extract failed.
    #[error("verification failed: {0}")]
    Verify(String),
    /// The governance store refused or failed.
    #[error(transparent)]
    Govern(#[from] dhub_govern::GovernError),
    /// The project's release could not be read.
    #[error("reading release `{release}` of project {project}")]
    Release {
        /// The release.
        release: String,
        /// The project.
        project: String,
        /// Why.
        #[source]
        source: Box<dhub_store::StoreError>,
    },
    /// The extract is not approved (pending, released or revoked), so it cannot run.
    #[error(
        "extract {id} is {status}; only an approved extract can be run{}",
        not_approved_hint(.id, *.status)
    )]
    NotApproved {
        /// The extract.
        id: String,
        /// Where it is in its workflow.
        status: dhub_govern::ExtractStatus,
    },
    /// The extract's project has expired: its extracts can no longer be made.
    #[error("project {project} has expired; its extracts can no longer be made")]
    ProjectExpired {
        /// The project.
        project: String,
    },
    /// A run failed, and auditing its failure failed too.
    #[error("the extract run failed ({reason}) and auditing the failed run failed")]
    FailureNotAudited {
        /// Why the run failed.
        reason: String,
        /// Why the audit entry could not be written.
        #[source]
        source: dhub_govern::GovernError,
    },
}

/// What to do about an extract that is not approved.
fn not_approved_hint(id: &str, status: dhub_govern::ExtractStatus) -> String {
    use dhub_govern::ExtractStatus;
    match status {
        ExtractStatus::Pending => {
            format!(" (another person approves it with `dhub extract approve {id} --by NAME`)")
        }
        ExtractStatus::Released => " (it has been released already)".to_owned(),
        _ => String::new(),
    }
}

impl From<dhub_query::QueryError> for ExtractError {
    fn from(e: dhub_query::QueryError) -> Self {
        // the data manager runs extracts: they see the detail (engine error text)
        let message = if e.detail.is_empty() || e.detail == e.message {
            e.message
        } else {
            format!("{} ({})", e.message, e.detail)
        };
        ExtractError::Query { message }
    }
}

impl From<datafusion::error::DataFusionError> for ExtractError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        ExtractError::Query {
            message: e.to_string(),
        }
    }
}

/// Results of `dhub-extract`.
pub type Result<T, E = ExtractError> = std::result::Result<T, E>;
