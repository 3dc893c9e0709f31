//! Typed errors of the research store. Messages say what went wrong and what to do;
//! they name URLs and table names, never data values or credentials.

/// Errors of the research store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL cannot be used.
    #[error("store URL `{url}` is not usable: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A table or release name is not valid.
    #[error(
        "`{name}` is not a valid {kind} name: use 1-64 characters of a-z, 0-9, `_`, `-` (starting with a letter or digit)"
    )]
    BadName {
        /// "table" or "release".
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// Object storage failed.
    #[error("object storage error at {location}: {source}")]
    ObjectStore {
        /// Where.
        location: String,
        /// The object store's error.
        #[source]
        source: object_store::Error,
    },
    /// The Delta Lake layer failed.
    #[error("Delta table `{table}`: {source}")]
    Delta {
        /// The table.
        table: String,
        /// deltalake's error.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// A table does not exist (yet).
    #[error(
        "table `{table}` does not exist in the store {store}; run `dhub ingest` with a pipeline that writes it"
    )]
    NoSuchTable {
        /// The table.
        table: String,
        /// The store URL.
        store: String,
    },
    /// A release with this name exists; releases are immutable.
    #[error(
        "release `{name}` already exists and releases can never be overwritten; choose a new name"
    )]
    ReleaseExists {
        /// The release name.
        name: String,
    },
    /// A release was asked of a store with no tables.
    #[error("the store {store} holds no tables yet; run `dhub ingest` first")]
    EmptyStore {
        /// The store URL.
        store: String,
    },
    /// The store's tables were not all made with one master key by `dhub ingest`.
    #[error(
        "a release must come from tables pseudonymised with one master key by `dhub ingest`, but the store has: {detail}; re-ingest the odd tables with the current key"
    )]
    MixedKeys {
        /// Key id → tables.
        detail: String,
    },
    /// No release with this name.
    #[error("no release named `{name}`; `dhub release list` shows the releases")]
    NoSuchRelease {
        /// The release name.
        name: String,
    },
    /// A persisted document could not be (de)serialised.
    #[error("{what} is not valid: {source}")]
    Json {
        /// Which document.
        what: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A local root (store, quarantine, extracts, governance database) that other
    /// local users may read, write or enter.
    #[error(
        "the {what} {path} is open to other local users (mode {mode:04o}) and holds data only dhub's account may read; run `chmod -R go-rwx {path}` (or choose a private location) and start again"
    )]
    NotPrivate {
        /// What it is ("research store", "quarantine", …).
        what: String,
        /// The local path.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Arrow or Parquet failed while writing a table.
    #[error("writing table `{table}`: {message}")]
    Write {
        /// The table.
        table: String,
        /// What failed.
        message: String,
    },
}

impl StoreError {
    pub(crate) fn delta(table: &str, e: deltalake::DeltaTableError) -> Self {
        StoreError::Delta {
            table: table.to_owned(),
            source: Box::new(e),
        }
    }
    pub(crate) fn os(location: impl std::fmt::Display, e: object_store::Error) -> Self {
        StoreError::ObjectStore {
            location: location.to_string(),
            source: e,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
