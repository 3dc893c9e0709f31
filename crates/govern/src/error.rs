//! Typed errors of the governance store. Messages say what is wrong and what to do;
//! they never hold a token or a data value.

use std::path::PathBuf;

/// Errors of the governance store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GovernError {
    /// The SQLite file could not be opened or used.
    #[error("governance store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer dhub.
    #[error(
        "governance store {path} has schema version {found}, newer than this dhub knows ({known}); upgrade dhub"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// A name or id is not valid.
    #[error("`{value}` is not a valid {kind}: {rule}")]
    BadName {
        /// What kind of name.
        kind: &'static str,
        /// The name as given.
        value: String,
        /// What is allowed.
        rule: &'static str,
    },
    /// Something with this key already exists.
    #[error("{kind} `{id}` already exists")]
    Exists {
        /// What kind of thing.
        kind: &'static str,
        /// Its id or name.
        id: String,
    },
    /// No such thing.
    #[error("no {kind} `{id}`; {hint}")]
    NotFound {
        /// What kind of thing.
        kind: &'static str,
        /// Its id or name.
        id: String,
        /// What to run to see the existing ones.
        hint: &'static str,
    },
    /// A value does not make sense (policy out of range, bad date, …).
    #[error("{0}")]
    Invalid(String),
    /// A stored record could not be read back (the file was edited by hand?).
    #[error("governance store {path}: record {what} is corrupt: {message}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which record.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Writing the audit export failed.
    #[error("writing {path}: {message}")]
    Export {
        /// The output file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Results of the governance store.
pub type Result<T, E = GovernError> = std::result::Result<T, E>;
