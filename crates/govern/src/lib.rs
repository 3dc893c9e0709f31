//! # dhub-govern: the governance store
//!
//! Safe people and safe projects, as records: projects (the release and tables they may
//! see, their output policy, an expiry), researchers (a project, the SHA-256 of their
//! token, an expiry, a revocation), and the tamper-evident **audit log** of everything
//! that happens to them and everything they ask ([`audit`]).
//!
//! One embedded SQLite file (`--govern`, default `./dhub-data/govern.db`) in WAL mode,
//! safe under a running server and CLI commands at once (writers take the lock up
//! front; readers never block). The schema is versioned with `PRAGMA user_version` and
//! migrated forward on open ([`MIGRATIONS`]); a file from a newer dhub is refused.
//!
//! ## Where each concern lives
//!
//! One type, [`Govern`] (this file: opening the file, its connection), with its methods
//! spread over the modules by concern; every public type is re-exported here.
//!
//! | module | owns |
//! |---|---|
//! | `schema` | the SQLite schema: [`MIGRATIONS`], [`SCHEMA_VERSION`], the forward migration on open |
//! | `projects` | projects and their output policies: [`Project`], [`NewProject`], [`Grant`], [`OutputPolicy`] ([`Mode`], [`Suppression`], [`Approval`]); [`Govern::create_project`], [`Govern::project`], [`Govern::projects`] |
//! | `holders` | researchers and partners and their tokens: [`Researcher`], [`Partner`], [`TOKEN_PREFIX`], [`token_hash`]; adding, revoking and listing them; checking a bearer token ([`Govern::check_token`] → [`Principal`], or [`AuthFailure`] / [`Refused`]) |
//! | `extracts` | partner extracts and their four-eyes workflow: [`NewExtract`], [`ExtractRecord`], [`ExtractStatus`] |
//! | [`audit`] | the tamper-evident chain: entry format, canonical JSON and hashes, bounded texts, signed [`Checkpoint`]s; `audit/event.rs` the typed events ([`AuditEvent`]: one variant per kind, one canonical JSON form); `audit/log.rs` appends ([`Govern::audit`]), reads, looks up (a query's events by its id through an index: [`Govern::query_events`]) and exports; `audit/verify.rs` verifies the chain, the checkpoints and the governance records ([`Govern::audit_verify_with`] → [`Verified`]) |
//! | `names` | [`check_name`], [`parse_date`]: the ids, names and dates the store accepts |
//! | `error` | [`GovernError`], [`Result`] |
//!
//! ```
//! # fn main() -> Result<(), dhub_govern::GovernError> {
//! use dhub_govern::{Govern, NewProject};
//! let dir = tempfile::tempdir().unwrap();
//! let g = Govern::open(&dir.path().join("govern.db"))?;
//! let new = NewProject {
//!     title: "Asthma outcomes".into(),
//!     ..NewProject::new("asthma-2026", "2026-q4")
//! };
//! g.create_project(&new, "dm")?;
//! let token = g.add_researcher("ada", "asthma-2026", None, "dm")?;
//! let who = g.authenticate(&token)?;
//! assert_eq!(who.project.id, "asthma-2026");
//! assert_eq!(g.audit_verify()?, Ok(2));
//! # Ok(()) }
//! ```

pub mod audit;
mod error;
mod extracts;
mod holders;
mod names;
mod projects;
mod schema;
#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;

pub use audit::{
    AuditEntry, AuditEvent, ChainBreak, Checkpoint, ExtractReleased, QueryEvent, RefusalCount,
    RequestEvent, Verified,
};
pub use error::{GovernError, Result};
pub use extracts::{ExtractRecord, ExtractStatus, NewExtract};
pub use holders::{AuthFailure, Partner, Principal, Refused, Researcher, TOKEN_PREFIX, token_hash};
pub use names::{check_name, parse_date};
pub use projects::{Approval, Grant, Mode, NewProject, OutputPolicy, Project, Suppression};
pub use schema::{MIGRATIONS, SCHEMA_VERSION};

/// A random identifier (16 bytes from the system's secure generator, as 32 hex
/// characters): query ids, Flight SQL handles ([`dhub_deid::random_id`]).
///
/// # Errors
/// [`GovernError::Invalid`] when the generator fails: never a predictable id.
pub fn new_id() -> Result<String> {
    dhub_deid::random_id(16).map_err(|e| GovernError::Invalid(e.to_string()))
}

/// The governance store.
#[derive(Debug)]
pub struct Govern {
    path: PathBuf,
    conn: Mutex<Connection>,
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Govern {
    /// Opens (creating if needed) the store at `path` and migrates it to
    /// [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Self> {
        let sql = |source| GovernError::Sqlite {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                GovernError::Invalid(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        // the audit log must survive a power cut once a response has gone out
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        schema::migrate(&mut conn, path)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn sql(&self, source: rusqlite::Error) -> GovernError {
        GovernError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub(crate) fn corrupt(
        &self,
        what: impl Into<String>,
        message: impl std::fmt::Display,
    ) -> GovernError {
        GovernError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
            message: message.to_string(),
        }
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.sql(e))
    }
}
