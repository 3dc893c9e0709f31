//! Errors of the query service. Each has a stable [`ErrorCode`] (mapped to an HTTP status
//! and a Flight status in one place, in dhub-server) and two texts: the **message** a
//! researcher sees, which never holds a data value, a token, a key or a server path, and
//! the **detail** that goes to the audit log only.

use serde::{Deserialize, Serialize};

/// What kind of failure, for status mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The SQL was refused by the guard or by disclosure control (HTTP 400).
    Refused,
    /// A table or column that does not exist or is not granted (HTTP 400).
    NotFound,
    /// The query failed while planning or running (bad types, division by zero…) (HTTP 400).
    QueryFailed,
    /// The time limit was reached; the query was stopped (HTTP 504).
    Timeout,
    /// The result exceeds the row or byte limit (HTTP 413).
    TooLarge,
    /// The query needed more memory than its limit, or broke a resource bound (HTTP 413).
    ResourcesExhausted,
    /// Every query slot is taken (HTTP 429).
    Busy,
    /// Something inside dhub failed (HTTP 500).
    Internal,
}

impl ErrorCode {
    /// The code as written in API errors.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Refused => "refused",
            ErrorCode::NotFound => "not_found",
            ErrorCode::QueryFailed => "query_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::ResourcesExhausted => "resources_exhausted",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A failed query: code, researcher-safe message, audit-only detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// What the researcher is told: what went wrong and what is allowed.
    pub message: String,
    /// What the audit log records (may quote engine errors; never sent to the client).
    pub detail: String,
}

impl QueryError {
    /// A new error; `detail` defaults to the message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code,
            detail: message.clone(),
            message,
        }
    }

    /// With an audit-only detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// A refusal by the guard or disclosure control.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Refused, message)
    }

    /// An internal failure: the researcher sees a generic message.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            ErrorCode::Internal,
            "the query service failed; the error was recorded for the data manager",
        )
        .with_detail(detail)
    }
}

/// The one message for a query that failed while running in an aggregate-mode project
/// (whatever the engine's reason, so the answer cannot depend on which row failed).
pub const EXECUTION_FAILED: &str = "the query failed while running; the reason was recorded for the data manager (in an aggregate-mode project every execution failure gets this same answer)";

/// Maps an engine error to a researcher-safe error: the engine's own text goes to the
/// audit detail only, because it can quote values (`Cannot cast string 'p13'…`) or paths.
pub fn from_datafusion(e: &datafusion::error::DataFusionError) -> QueryError {
    use datafusion::error::DataFusionError as D;
    let detail = e.to_string();
    let root = e.find_root();
    match root {
        D::ResourcesExhausted(_) => QueryError::new(
            ErrorCode::ResourcesExhausted,
            "the query needs more memory than a query may use; aggregate earlier, select fewer columns or add filters",
        )
        .with_detail(detail),
        D::SchemaError(..) | D::Plan(_) if is_not_found(&detail) => QueryError::new(
            ErrorCode::NotFound,
            "the query names a table, view or column that does not exist or is not granted to this project; GET /v1/tables lists what you can use",
        )
        .with_detail(detail),
        D::NotImplemented(_) => QueryError::new(
            ErrorCode::QueryFailed,
            "the query uses a feature the engine does not support",
        )
        .with_detail(detail),
        D::Plan(_) | D::SchemaError(..) | D::SQL(..) => QueryError::new(
            ErrorCode::QueryFailed,
            "the query could not be planned: check names, types and GROUP BY (the engine's message is in the audit log)",
        )
        .with_detail(detail),
        D::ArrowError(..) | D::Execution(_) => QueryError::new(
            ErrorCode::QueryFailed,
            "the query failed while running (for example a failed cast, a division by zero or an argument out of range)",
        )
        .with_detail(detail),
        // the engine's own limits and internal checks are reached through what the SQL
        // asks for: a 400 the researcher can act on, not a 500
        D::Internal(_) | D::External(_) | D::Configuration(_) => QueryError::new(
            ErrorCode::QueryFailed,
            "the engine could not run this query as written; rewrite it more simply (the engine's message is in the audit log)",
        )
        .with_detail(detail),
        // storage and I/O failures are the service's, not the researcher's
        _ => QueryError::internal(detail),
    }
}

fn is_not_found(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s.contains("not found")
        || s.contains("no field named")
        || s.contains("does not exist")
        || s.contains("table '")
}
