//! Typed errors. None of them carries a value read from a resource: they name the view,
//! the column, the path, the line or entry, and what to do.

use thiserror::Error;

/// Malformed JSON: where, and why. Never quotes the text.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("malformed JSON at byte {offset}: {reason}")]
pub struct JsonError {
    pub offset: usize,
    pub reason: &'static str,
}

impl JsonError {
    pub(crate) fn at(offset: usize, reason: &'static str) -> Self {
        Self { offset, reason }
    }
}

/// A FHIRPath expression that cannot be compiled.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{message} (at character {offset} of `{expression}`)")]
pub struct PathError {
    pub expression: String,
    pub offset: usize,
    pub message: String,
}

/// A ViewDefinition refused before any resource is read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("view `{view}`: {message}")]
pub struct ViewError {
    pub view: String,
    pub message: String,
}

/// A resource the view cannot turn into rows (the rest of the run goes on: ingest sends
/// the resource to quarantine with this reason).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RowError {
    #[error(
        "column `{column}`: the path gives {count} values; set `collection: true` or pick one (first(), where(...))"
    )]
    NotSingle { column: String, count: usize },
    #[error("column `{column}`: expected {expected}, the path gives {found}")]
    Type {
        column: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "`where` of the view: the path `{path}` must give true, false or nothing, it gives {found}"
    )]
    WhereNotBoolean { path: String, found: &'static str },
    #[error("path `{path}`: {message}")]
    Eval { path: String, message: String },
}

/// Reading resources from NDJSON or a bundle.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("reading the source failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] JsonError),
    #[error("not a FHIR Bundle: {0}")]
    NotBundle(&'static str),
}

impl RowError {
    /// The view column that failed, when one did.
    pub fn column(&self) -> Option<&str> {
        match self {
            RowError::NotSingle { column, .. } | RowError::Type { column, .. } => Some(column),
            _ => None,
        }
    }
}
