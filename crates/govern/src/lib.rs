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
//! ```
//! # fn main() -> Result<(), dhub_govern::GovernError> {
//! use dhub_govern::{Govern, Grant, OutputPolicy};
//! let dir = tempfile::tempdir().unwrap();
//! let g = Govern::open(&dir.path().join("govern.db"))?;
//! g.create_project("asthma-2026", "Asthma outcomes", "2026-q4", Grant::All, OutputPolicy::default(), None, "dm")?;
//! let token = g.add_researcher("ada", "asthma-2026", None, "dm")?;
//! let who = g.authenticate(&token)?;
//! assert_eq!(who.project.id, "asthma-2026");
//! assert_eq!(g.audit_verify()?, Ok(2));
//! # Ok(()) }
//! ```

pub mod audit;
mod error;
mod extracts;
mod model;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use ring::rand::SecureRandom;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value, json};

pub use audit::{AuditEntry, ChainBreak, Checkpoint};
pub use error::{GovernError, Result};
pub use extracts::{ExtractRecord, ExtractStatus, NewExtract};
pub use model::{
    Approval, Grant, Mode, OutputPolicy, Project, Researcher, Suppression, check_name, parse_date,
};

/// Schema migrations, in order; migration `i` takes the schema from version `i` to
/// `i + 1`. Never edit one that has shipped: add a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: projects, researchers, the audit chain
    "CREATE TABLE projects (
        id       TEXT PRIMARY KEY,
        title    TEXT NOT NULL,
        release  TEXT NOT NULL,
        tables   TEXT NOT NULL,   -- JSON: \"all\" or {\"tables\": [...]}
        policy   TEXT NOT NULL,   -- JSON OutputPolicy
        expires  TEXT,            -- YYYY-MM-DD, inclusive
        created  TEXT NOT NULL
     ) STRICT;
     CREATE TABLE researchers (
        name          TEXT PRIMARY KEY,
        project       TEXT NOT NULL REFERENCES projects(id),
        token_sha256  TEXT NOT NULL UNIQUE,
        created       TEXT NOT NULL,
        expires       TEXT,
        revoked       TEXT
     ) STRICT;
     CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,
        entry      TEXT NOT NULL,  -- canonical JSON
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
     ) STRICT;
     CREATE TABLE audit_head (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        seq   INTEGER NOT NULL,
        hash  TEXT NOT NULL
     ) STRICT;",
    // 2: partners and their extracts
    "CREATE TABLE partners (
        name          TEXT PRIMARY KEY,
        project       TEXT NOT NULL REFERENCES projects(id),
        token_sha256  TEXT NOT NULL UNIQUE,
        created       TEXT NOT NULL,
        expires       TEXT,
        revoked       TEXT
     ) STRICT;
     CREATE TABLE extracts (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        project       TEXT NOT NULL REFERENCES projects(id),
        recipient     TEXT NOT NULL,
        spec          TEXT NOT NULL,  -- the frozen spec (TOML text)
        sql           TEXT NOT NULL,  -- the frozen query
        spec_sha256   TEXT NOT NULL,
        sql_sha256    TEXT NOT NULL,
        status        TEXT NOT NULL,  -- pending | approved | released | revoked
        requested_by  TEXT NOT NULL,
        requested     TEXT NOT NULL,
        approved_by   TEXT,
        approved      TEXT,
        released      TEXT,
        revoked       TEXT,
        revoked_by    TEXT,
        location      TEXT,           -- where the files are (URL)
        manifest      TEXT            -- manifest.json as written
     ) STRICT;
     CREATE INDEX extracts_project ON extracts(project);",
    // 3: disclosure lookups by query id use an index instead of scanning the log
    // (an index on the entry's `query_id`: SQLite fills it for the entries already
    // there and keeps it on every append; the chain and its hashes are untouched)
    "CREATE INDEX audit_query_id ON audit (json_extract(entry, '$.query_id'))
        WHERE json_extract(entry, '$.query_id') IS NOT NULL;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Prefix of researcher tokens (lets secret scanners recognise a leaked one).
pub const TOKEN_PREFIX: &str = "dhub_";

/// A token that was accepted: who, in which project.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The researcher.
    pub researcher: Researcher,
    /// Their project.
    pub project: Project,
}

/// A partner: the same record as a researcher (name, project, created, expires,
/// revoked), kept in its own table with its own tokens.
pub type Partner = Researcher;

/// Who holds a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// A researcher (SQL over HTTP).
    Researcher,
    /// An innovation-hub partner (extract downloads).
    Partner,
}

impl Holder {
    fn table(self) -> &'static str {
        match self {
            Holder::Researcher => "researchers",
            Holder::Partner => "partners",
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Holder::Researcher => "researcher",
            Holder::Partner => "partner",
        }
    }
    fn name_kind(self) -> &'static str {
        match self {
            Holder::Researcher => "researcher name",
            Holder::Partner => "partner name",
        }
    }
    fn list_hint(self) -> &'static str {
        match self {
            Holder::Researcher => "`dhub researcher list` shows the researchers",
            Holder::Partner => "`dhub partner list` shows the partners",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token, or not one dhub issued.
    Unknown,
    /// The researcher's token was revoked.
    Revoked,
    /// The researcher's token has expired.
    Expired,
    /// The project has expired.
    ProjectExpired,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthFailure::Unknown => "the token is missing or not valid",
            AuthFailure::Revoked => "the token was revoked; ask the data manager for a new one",
            AuthFailure::Expired => "the token has expired; ask the data manager for a new one",
            AuthFailure::ProjectExpired => {
                "the project has expired; its data can no longer be queried"
            }
        })
    }
}

/// A refused token, with whom it belongs to when dhub issued it (a revoked or expired
/// token is recorded under its holder, never as anonymous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub failure: AuthFailure,
    /// The holder (researcher or partner) when the token is one dhub issued.
    pub name: Option<String>,
    /// The holder's project, likewise.
    pub project: Option<String>,
}

/// What [`Govern::audit_verify_with`] found when everything holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries in the log.
    pub entries: i64,
    /// The last entry's chain hash ([`audit::GENESIS`] when the log is empty).
    pub head_hash: String,
    /// Signed checkpoints checked.
    pub checkpoints: usize,
    /// The newest checkpoint's entry, if any (entries after it are only hash-chained).
    pub newest_checkpoint: Option<i64>,
    /// Project, researcher and partner rows matched with their creation entries.
    pub records: usize,
}

/// The governance entries met while verifying: creations and revocations.
#[derive(Default)]
struct Created {
    /// project id -> (seq, entry)
    projects: std::collections::HashMap<String, (i64, Value)>,
    /// (holder kind, name) -> (seq, entry)
    holders: std::collections::HashMap<(&'static str, String), (i64, Value)>,
    /// (holder kind, name) -> seq of the revocation
    revoked: std::collections::HashMap<(&'static str, String), i64>,
}

impl Created {
    fn note(&mut self, seq: i64, v: Value) {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match v.get("kind").and_then(Value::as_str) {
            Some("project.create") => {
                if let Some(id) = s("project") {
                    self.projects.insert(id, (seq, v));
                }
            }
            Some(k @ ("researcher.add" | "partner.add")) => {
                let kind = if k.starts_with("researcher") {
                    "researcher"
                } else {
                    "partner"
                };
                if let Some(name) = s(kind) {
                    self.holders.insert((kind, name), (seq, v));
                }
            }
            Some(k @ ("researcher.revoke" | "partner.revoke")) => {
                let kind = if k.starts_with("researcher") {
                    "researcher"
                } else {
                    "partner"
                };
                if let Some(name) = s(kind) {
                    self.revoked.insert((kind, name), seq);
                }
            }
            _ => {}
        }
    }
}

/// `(id, release, tables, policy, expires)` of a project row.
type ProjectRow = (String, String, String, String, Option<String>);

/// `(name, project, token_sha256, expires, revoked)` of a researcher or partner row.
type HolderRow = (String, String, String, Option<String>, Option<String>);

/// A governance-record failure (not at one entry).
fn record_break(reason: String) -> ChainBreak {
    ChainBreak { seq: 0, reason }
}

/// The governance store.
#[derive(Debug)]
pub struct Govern {
    path: PathBuf,
    conn: Mutex<Connection>,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// SHA-256 of a token, hex (the only form in which tokens are stored).
pub fn token_hash(token: &str) -> String {
    audit::hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
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
        migrate(&mut conn, path)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sql(&self, source: rusqlite::Error) -> GovernError {
        GovernError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, what: impl Into<String>, message: impl std::fmt::Display) -> GovernError {
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

    // ---- projects ----------------------------------------------------------------

    /// Creates a project (audited as `project.create` by `actor`).
    #[allow(clippy::too_many_arguments)]
    pub fn create_project(
        &self,
        id: &str,
        title: &str,
        release: &str,
        tables: Grant,
        policy: OutputPolicy,
        expires: Option<NaiveDate>,
        actor: &str,
    ) -> Result<Project> {
        check_name("project id", id)?;
        policy.validate()?;
        let project = Project {
            id: id.to_owned(),
            title: if title.trim().is_empty() {
                id.to_owned()
            } else {
                title.trim().to_owned()
            },
            release: release.to_owned(),
            tables,
            policy,
            expires,
            created: now(),
        };
        let tables_json = serde_json::to_string(&project.tables)
            .map_err(|e| GovernError::Invalid(e.to_string()))?;
        let policy_json = serde_json::to_string(&project.policy)
            .map_err(|e| GovernError::Invalid(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM projects WHERE id = ?1", [id], |_| Ok(true))
            .optional()
            .map_err(|e| self.sql(e))?
            .is_some();
        if exists {
            return Err(GovernError::Exists {
                kind: "project",
                id: id.to_owned(),
            });
        }
        tx.execute(
            "INSERT INTO projects (id, title, release, tables, policy, expires, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                project.id,
                project.title,
                project.release,
                tables_json,
                policy_json,
                project.expires.map(|d| d.to_string()),
                ts(project.created)
            ],
        )
        .map_err(|e| self.sql(e))?;
        let mut detail = Map::new();
        detail.insert("project".into(), json!(project.id));
        detail.insert("release".into(), json!(project.release));
        detail.insert("tables".into(), json!(project.tables.to_string()));
        detail.insert(
            "policy".into(),
            serde_json::to_value(&project.policy).unwrap_or(Value::Null),
        );
        detail.insert(
            "expires".into(),
            json!(project.expires.map(|d| d.to_string())),
        );
        append_tx(&tx, "project.create", actor, detail).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(project)
    }

    fn row_to_project(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Project>> {
        let id: String = r.get(0)?;
        let tables: String = r.get(3)?;
        let policy: String = r.get(4)?;
        let expires: Option<String> = r.get(5)?;
        let created: String = r.get(6)?;
        let title: String = r.get(1)?;
        let release: String = r.get(2)?;
        Ok((|| {
            Ok(Project {
                tables: serde_json::from_str(&tables)
                    .map_err(|e| self.corrupt(format!("project {id}"), e))?,
                policy: serde_json::from_str(&policy)
                    .map_err(|e| self.corrupt(format!("project {id}"), e))?,
                expires: expires
                    .map(|d| parse_date(&d))
                    .transpose()
                    .map_err(|e| self.corrupt(format!("project {id}"), e))?,
                created: DateTime::parse_from_rfc3339(&created)
                    .map_err(|e| self.corrupt(format!("project {id}"), e))?
                    .with_timezone(&Utc),
                title,
                release,
                id,
            })
        })())
    }

    /// One project.
    pub fn project(&self, id: &str) -> Result<Project> {
        let conn = self.conn();
        let got = conn
            .query_row(
                "SELECT id, title, release, tables, policy, expires, created FROM projects WHERE id = ?1",
                [id],
                |r| self.row_to_project(r),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        match got {
            Some(p) => p,
            None => Err(GovernError::NotFound {
                kind: "project",
                id: id.to_owned(),
                hint: "`dhub project list` shows the projects",
            }),
        }
    }

    /// Every project, by id.
    pub fn projects(&self) -> Result<Vec<Project>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT id, title, release, tables, policy, expires, created FROM projects ORDER BY id")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| self.row_to_project(r))
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(|e| self.sql(e))??);
        }
        Ok(out)
    }

    // ---- researchers and partners ----------------------------------------------------

    /// Adds a researcher to a project and returns their new token: 256 random bits,
    /// URL-safe base64 after [`TOKEN_PREFIX`]. Only its SHA-256 is stored; the token is
    /// returned once and can never be shown again.
    pub fn add_researcher(
        &self,
        name: &str,
        project: &str,
        expires: Option<NaiveDate>,
        actor: &str,
    ) -> Result<String> {
        self.add_holder(Holder::Researcher, name, project, expires, actor)
    }

    /// Adds an innovation-hub partner to a project and returns their new token (as for
    /// researchers). A partner token opens only the partner's released extracts; it
    /// cannot run SQL, and a researcher token cannot download extracts.
    pub fn add_partner(
        &self,
        name: &str,
        project: &str,
        expires: Option<NaiveDate>,
        actor: &str,
    ) -> Result<String> {
        self.add_holder(Holder::Partner, name, project, expires, actor)
    }

    fn add_holder(
        &self,
        holder: Holder,
        name: &str,
        project: &str,
        expires: Option<NaiveDate>,
        actor: &str,
    ) -> Result<String> {
        check_name(holder.name_kind(), name)?;
        let mut raw = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| GovernError::Invalid("the system random generator failed".into()))?;
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let hash = token_hash(&token);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let has_project = tx
            .query_row(
                "SELECT 1 FROM projects WHERE id = ?1",
                [project],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.sql(e))?
            .is_some();
        if !has_project {
            return Err(GovernError::NotFound {
                kind: "project",
                id: project.to_owned(),
                hint: "`dhub project list` shows the projects",
            });
        }
        let table = holder.table();
        let exists = tx
            .query_row(
                &format!("SELECT 1 FROM {table} WHERE name = ?1"),
                [name],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.sql(e))?
            .is_some();
        if exists {
            return Err(GovernError::Exists {
                kind: holder.kind(),
                id: name.to_owned(),
            });
        }
        tx.execute(
            &format!("INSERT INTO {table} (name, project, token_sha256, created, expires, revoked) VALUES (?1, ?2, ?3, ?4, ?5, NULL)"),
            params![name, project, hash, ts(now()), expires.map(|d| d.to_string())],
        )
        .map_err(|e| self.sql(e))?;
        let mut detail = Map::new();
        detail.insert(holder.kind().into(), json!(name));
        detail.insert("project".into(), json!(project));
        detail.insert("expires".into(), json!(expires.map(|d| d.to_string())));
        // binds the row's token hash to this entry: `dhub audit verify` finds a token
        // swapped in the table (the hash of a 256-bit random token reveals nothing)
        detail.insert("token_sha256".into(), json!(hash));
        append_tx(&tx, &format!("{}.add", holder.kind()), actor, detail)
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(token)
    }

    /// Revokes a researcher's token (audited).
    pub fn revoke_researcher(&self, name: &str, actor: &str) -> Result<()> {
        self.revoke_holder(Holder::Researcher, name, actor)
    }

    /// Revokes a partner's token (audited).
    pub fn revoke_partner(&self, name: &str, actor: &str) -> Result<()> {
        self.revoke_holder(Holder::Partner, name, actor)
    }

    fn revoke_holder(&self, holder: Holder, name: &str, actor: &str) -> Result<()> {
        let table = holder.table();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let n = tx
            .execute(
                &format!("UPDATE {table} SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL"),
                params![name, ts(now())],
            )
            .map_err(|e| self.sql(e))?;
        if n == 0 {
            let exists = tx
                .query_row(
                    &format!("SELECT 1 FROM {table} WHERE name = ?1"),
                    [name],
                    |_| Ok(()),
                )
                .optional()
                .map_err(|e| self.sql(e))?
                .is_some();
            if !exists {
                return Err(GovernError::NotFound {
                    kind: holder.kind(),
                    id: name.to_owned(),
                    hint: holder.list_hint(),
                });
            }
            return Ok(());
        }
        let mut detail = Map::new();
        detail.insert(holder.kind().into(), json!(name));
        append_tx(&tx, &format!("{}.revoke", holder.kind()), actor, detail)
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn row_to_researcher(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Researcher, String)> {
        let created: String = r.get(2)?;
        let expires: Option<String> = r.get(3)?;
        let revoked: Option<String> = r.get(4)?;
        let parse_ts = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        Ok((
            Researcher {
                name: r.get(0)?,
                project: r.get(1)?,
                created: parse_ts(&created),
                expires: expires.and_then(|d| parse_date(&d).ok()),
                revoked: revoked.as_deref().map(parse_ts),
            },
            r.get(5)?,
        ))
    }

    /// Every researcher (never their tokens), by name.
    pub fn researchers(&self) -> Result<Vec<Researcher>> {
        self.holders(Holder::Researcher)
    }

    /// Every partner (never their tokens), by name.
    pub fn partners(&self) -> Result<Vec<Partner>> {
        self.holders(Holder::Partner)
    }

    fn holders(&self, holder: Holder) -> Result<Vec<Researcher>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!("SELECT name, project, created, expires, revoked, token_sha256 FROM {} ORDER BY name", holder.table()))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], Self::row_to_researcher)
            .map_err(|e| self.sql(e))?;
        rows.map(|r| r.map(|(x, _)| x).map_err(|e| self.sql(e)))
            .collect()
    }

    /// Checks a researcher's bearer token: `Ok(Ok(principal))` when it may act now.
    pub fn check_token(&self, token: &str) -> Result<std::result::Result<Principal, AuthFailure>> {
        Ok(self
            .check_holder_token(Holder::Researcher, token)?
            .map_err(|r| r.failure))
    }

    /// Like [`Govern::check_token`], naming the researcher of a refused token that dhub
    /// issued (revoked, expired, or of an expired project), for the audit log.
    pub fn check_token_refused(
        &self,
        token: &str,
    ) -> Result<std::result::Result<Principal, Refused>> {
        self.check_holder_token(Holder::Researcher, token)
    }

    /// Like [`Govern::check_partner_token`], naming the partner of a refused token.
    pub fn check_partner_token_refused(
        &self,
        token: &str,
    ) -> Result<std::result::Result<Principal, Refused>> {
        self.check_holder_token(Holder::Partner, token)
    }

    /// Checks a partner's bearer token: `Ok(Ok(principal))` (the partner in
    /// `principal.researcher`) when it may download now.
    pub fn check_partner_token(
        &self,
        token: &str,
    ) -> Result<std::result::Result<Principal, AuthFailure>> {
        Ok(self
            .check_holder_token(Holder::Partner, token)?
            .map_err(|r| r.failure))
    }

    fn check_holder_token(
        &self,
        holder: Holder,
        token: &str,
    ) -> Result<std::result::Result<Principal, Refused>> {
        let unknown = Refused {
            failure: AuthFailure::Unknown,
            name: None,
            project: None,
        };
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(Err(unknown));
        }
        let hash = token_hash(token);
        let found = {
            let conn = self.conn();
            conn.query_row(
                &format!("SELECT name, project, created, expires, revoked, token_sha256 FROM {} WHERE token_sha256 = ?1", holder.table()),
                [&hash],
                Self::row_to_researcher,
            )
            .optional()
            .map_err(|e| self.sql(e))?
        };
        let Some((researcher, _)) = found else {
            return Ok(Err(unknown));
        };
        let refused = |failure| {
            Ok(Err(Refused {
                failure,
                name: Some(researcher.name.clone()),
                project: Some(researcher.project.clone()),
            }))
        };
        let t = now();
        if researcher.revoked.is_some() {
            return refused(AuthFailure::Revoked);
        }
        if researcher.expires.is_some_and(|d| t.date_naive() > d) {
            return refused(AuthFailure::Expired);
        }
        let project = self.project(&researcher.project)?;
        if project.expired(t) {
            return refused(AuthFailure::ProjectExpired);
        }
        Ok(Ok(Principal {
            researcher,
            project,
        }))
    }

    /// Like [`Govern::check_token`], with a refusal as an error.
    pub fn authenticate(&self, token: &str) -> Result<Principal> {
        self.check_token(token)?
            .map_err(|f| GovernError::Invalid(f.to_string()))
    }

    // ---- audit -----------------------------------------------------------------------

    /// Appends an audit entry `{kind, time, actor, …fields}` to the chain, committed
    /// before this returns. Returns its sequence number.
    pub fn audit(&self, kind: &str, actor: &str, fields: Map<String, Value>) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let seq = append_tx(&tx, kind, actor, fields).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(seq)
    }

    /// Appends several entries `(kind, actor, fields)` in one transaction (one write to
    /// disk), in order. Returns the last sequence number (0 when `entries` is empty).
    pub fn audit_many(&self, entries: Vec<(String, String, Map<String, Value>)>) -> Result<i64> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let mut seq = 0;
        for (kind, actor, fields) in entries {
            seq = append_tx(&tx, &kind, &actor, fields).map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(seq)
    }

    /// Verifies what the database alone can show: the chain, and that every project,
    /// researcher and partner has its creation entry. `Ok(Ok(count))` when intact,
    /// `Ok(Err(break))` naming the first problem. Checkpoints: [`Govern::audit_verify_with`].
    pub fn audit_verify(&self) -> Result<std::result::Result<i64, ChainBreak>> {
        Ok(self.audit_verify_with(&[])?.map(|v| v.entries))
    }

    /// [`Govern::audit_verify`] and the signed checkpoints (already opened with the
    /// trusted public key, [`Checkpoint::open`]): the log must reach every checkpoint's
    /// entry and have its hash there, so a cut, renumbered, emptied or re-chained log
    /// fails. One read transaction: a consistent view while the server appends.
    pub fn audit_verify_with(
        &self,
        checkpoints: &[Checkpoint],
    ) -> Result<std::result::Result<Verified, ChainBreak>> {
        let wanted: std::collections::BTreeSet<i64> = checkpoints.iter().map(|c| c.seq).collect();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let mut chain = audit::ChainCheck::new();
        let mut hashes = std::collections::BTreeMap::new();
        let mut created = Created::default();
        let mut last_hash = audit::GENESIS.to_owned();
        {
            let mut st = tx
                .prepare("SELECT seq, entry, prev_hash, hash FROM audit ORDER BY rowid")
                .map_err(|e| self.sql(e))?;
            let mut rows = st.query([]).map_err(|e| self.sql(e))?;
            while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
                let seq: i64 = r.get(0).map_err(|e| self.sql(e))?;
                let json: String = r.get(1).map_err(|e| self.sql(e))?;
                let prev: String = r.get(2).map_err(|e| self.sql(e))?;
                let hash: String = r.get(3).map_err(|e| self.sql(e))?;
                let v = match chain.push(seq, &json, &prev, &hash) {
                    Ok(v) => v,
                    Err(b) => return Ok(Err(b)),
                };
                if wanted.contains(&seq) {
                    hashes.insert(seq, hash.clone());
                }
                created.note(seq, v);
                last_hash = hash;
            }
        }
        let head: Option<(i64, String)> = tx
            .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.sql(e))?;
        let entries = match chain.finish(head) {
            Ok(n) => n,
            Err(b) => return Ok(Err(b)),
        };
        if let Err(b) = audit::check_checkpoints(checkpoints, entries, &hashes) {
            return Ok(Err(b));
        }
        let records = match self.check_records(&tx, &created)? {
            Ok(n) => n,
            Err(b) => return Ok(Err(b)),
        };
        Ok(Ok(Verified {
            entries,
            head_hash: last_hash,
            checkpoints: checkpoints.len(),
            newest_checkpoint: wanted.last().copied(),
            records,
        }))
    }

    /// Every project, researcher and partner row against its creation entry (and a
    /// revoked token still revoked). Returns the number of rows checked.
    fn check_records(
        &self,
        tx: &rusqlite::Transaction<'_>,
        created: &Created,
    ) -> Result<std::result::Result<usize, ChainBreak>> {
        let mut n = 0usize;
        let mut st = tx
            .prepare("SELECT id, release, tables, policy, expires FROM projects ORDER BY id")
            .map_err(|e| self.sql(e))?;
        let rows: Vec<ProjectRow> = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(|e| self.sql(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.sql(e))?;
        for (id, release, tables, policy, expires) in rows {
            let Some((seq, e)) = created.projects.get(&id) else {
                return Ok(Err(record_break(format!(
                    "project `{id}` is in the governance tables but the audit log has no entry creating it: it was inserted outside dhub, or its entry was removed"
                ))));
            };
            let tables = serde_json::from_str::<Grant>(&tables)
                .map(|g| g.to_string())
                .unwrap_or(tables);
            let policy: Value = serde_json::from_str(&policy).unwrap_or(Value::String(policy));
            let differs = [
                ("release", e.get("release") != Some(&json!(release))),
                ("tables", e.get("tables") != Some(&json!(tables))),
                ("output policy", e.get("policy") != Some(&policy)),
                ("expiry", e.get("expires") != Some(&json!(expires))),
            ];
            if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
                return Ok(Err(ChainBreak {
                    seq: *seq,
                    reason: format!(
                        "project `{id}` has another {what} than this entry that created it: the table was changed outside dhub"
                    ),
                }));
            }
            n += 1;
        }
        for holder in [Holder::Researcher, Holder::Partner] {
            let kind = holder.kind();
            let mut st = tx
                .prepare(&format!(
                    "SELECT name, project, token_sha256, expires, revoked FROM {} ORDER BY name",
                    holder.table()
                ))
                .map_err(|e| self.sql(e))?;
            let rows: Vec<HolderRow> = st
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(|e| self.sql(e))?
                .collect::<rusqlite::Result<_>>()
                .map_err(|e| self.sql(e))?;
            for (name, project, token, expires, revoked) in rows {
                let key = (kind, name.clone());
                let Some((seq, e)) = created.holders.get(&key) else {
                    return Ok(Err(record_break(format!(
                        "{kind} `{name}` is in the governance tables but the audit log has no entry adding them: they were inserted outside dhub, or the entry was removed"
                    ))));
                };
                let differs = [
                    ("project", e.get("project") != Some(&json!(project))),
                    ("expiry", e.get("expires") != Some(&json!(expires))),
                    // entries before this field existed do not bind the token
                    (
                        "token",
                        e.get("token_sha256").is_some_and(|t| *t != json!(token)),
                    ),
                ];
                if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
                    return Ok(Err(ChainBreak {
                        seq: *seq,
                        reason: format!(
                            "{kind} `{name}` has another {what} than this entry that added them: the table was changed outside dhub"
                        ),
                    }));
                }
                if let Some(rseq) = created.revoked.get(&key)
                    && revoked.is_none()
                {
                    return Ok(Err(ChainBreak {
                        seq: *rseq,
                        reason: format!(
                            "{kind} `{name}` was revoked by this entry but the table shows their token active: it was un-revoked outside dhub"
                        ),
                    }));
                }
                n += 1;
            }
        }
        Ok(Ok(n))
    }

    /// The last `n` entries, oldest first.
    pub fn audit_tail(&self, n: usize) -> Result<Vec<AuditEntry>> {
        self.audit_entries(
            "SELECT seq, entry, prev_hash, hash FROM (SELECT * FROM audit ORDER BY seq DESC LIMIT ?1) ORDER BY seq",
            params![i64::try_from(n).unwrap_or(i64::MAX)],
        )
    }

    /// Entries of `kind` whose `field` equals `value`, oldest first (e.g. the queries of
    /// one project).
    pub fn audit_find(&self, kind: &str, field: &str, value: &str) -> Result<Vec<AuditEntry>> {
        self.audit_entries(
            "SELECT seq, entry, prev_hash, hash FROM audit WHERE json_extract(entry, '$.kind') = ?1 AND json_extract(entry, ?2) = ?3 ORDER BY seq",
            params![kind, format!("$.{field}"), value],
        )
    }

    /// The `query` entries of query `query_id`, oldest first: a lookup through the
    /// `audit_query_id` index (migration 3), not a scan of the log.
    pub fn audit_find_query(&self, query_id: &str) -> Result<Vec<AuditEntry>> {
        self.audit_entries(AUDIT_FIND_QUERY, params![query_id])
    }

    /// Audit entries selected by `sql` (columns `seq, entry, prev_hash, hash`).
    fn audit_entries(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<AuditEntry>> {
        let conn = self.conn();
        let mut st = conn.prepare(sql).map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (seq, entry, prev_hash, hash) = r.map_err(|e| self.sql(e))?;
            out.push(AuditEntry {
                seq,
                entry: serde_json::from_str(&entry)
                    .map_err(|e| self.corrupt(format!("audit entry {seq}"), e))?,
                prev_hash,
                hash,
            });
        }
        Ok(out)
    }

    /// Writes the whole audit log to a Parquet file (columns `seq`, `time`, `kind`,
    /// `actor`, `project`, `entry` (canonical JSON), `prev_hash`, `hash`). Returns the
    /// number of entries.
    pub fn audit_export(&self, out: &Path) -> Result<usize> {
        use std::sync::Arc;

        use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
        use arrow_schema::{DataType, Field, Schema};

        let err = |m: String| GovernError::Export {
            path: out.to_owned(),
            message: m,
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("seq", DataType::Int64, false),
            Field::new("time", DataType::Utf8, true),
            Field::new("kind", DataType::Utf8, true),
            Field::new("actor", DataType::Utf8, true),
            Field::new("project", DataType::Utf8, true),
            Field::new("entry", DataType::Utf8, false),
            Field::new("prev_hash", DataType::Utf8, false),
            Field::new("hash", DataType::Utf8, false),
        ]));
        let file = std::fs::File::create(out).map_err(|e| err(e.to_string()))?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| err(e.to_string()))?;
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT seq, entry, prev_hash, hash FROM audit ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        let mut rows = st.query([]).map_err(|e| self.sql(e))?;
        let mut total = 0usize;
        let mut cols = ExportCols::default();
        let flush = |w: &mut parquet::arrow::ArrowWriter<std::fs::File>,
                     c: &mut ExportCols|
         -> Result<()> {
            if c.seq.is_empty() {
                return Ok(());
            }
            let t = std::mem::take(c);
            let arrays: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(t.seq)),
                Arc::new(StringArray::from(t.time)),
                Arc::new(StringArray::from(t.kind)),
                Arc::new(StringArray::from(t.actor)),
                Arc::new(StringArray::from(t.project)),
                Arc::new(StringArray::from(t.entry)),
                Arc::new(StringArray::from(t.prev_hash)),
                Arc::new(StringArray::from(t.hash)),
            ];
            let b = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| err(e.to_string()))?;
            w.write(&b).map_err(|e| err(e.to_string()))
        };
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            let seq: i64 = r.get(0).map_err(|e| self.sql(e))?;
            let entry: String = r.get(1).map_err(|e| self.sql(e))?;
            let v: Value = serde_json::from_str(&entry).unwrap_or(Value::Null);
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            cols.seq.push(seq);
            cols.time.push(s("time"));
            cols.kind.push(s("kind"));
            cols.actor.push(s("actor"));
            cols.project.push(s("project"));
            cols.entry.push(entry);
            cols.prev_hash.push(r.get(2).map_err(|e| self.sql(e))?);
            cols.hash.push(r.get(3).map_err(|e| self.sql(e))?);
            total += 1;
            if cols.seq.len() >= 8192 {
                flush(&mut w, &mut cols)?;
            }
        }
        flush(&mut w, &mut cols)?;
        w.close().map_err(|e| err(e.to_string()))?;
        Ok(total)
    }
}

/// The lookup of [`Govern::audit_find_query`]: its `json_extract(entry, '$.query_id')`
/// term is the indexed expression, written the same way, so SQLite uses the index.
const AUDIT_FIND_QUERY: &str = "SELECT seq, entry, prev_hash, hash FROM audit
    WHERE json_extract(entry, '$.query_id') = ?1 AND json_extract(entry, '$.kind') = 'query'
    ORDER BY seq";

/// Columns of the audit export, filled row by row.
#[derive(Default)]
struct ExportCols {
    seq: Vec<i64>,
    time: Vec<Option<String>>,
    kind: Vec<Option<String>>,
    actor: Vec<Option<String>>,
    project: Vec<Option<String>>,
    entry: Vec<String>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

/// Appends inside an open (immediate) transaction.
fn append_tx(
    tx: &rusqlite::Transaction<'_>,
    kind: &str,
    actor: &str,
    mut fields: Map<String, Value>,
) -> rusqlite::Result<i64> {
    audit::bound_fields(&mut fields);
    fields.insert("kind".into(), json!(kind));
    fields.insert("actor".into(), json!(actor));
    fields.insert("time".into(), json!(ts(now())));
    let json = audit::canonical_json(&Value::Object(fields));
    let (prev_seq, prev_hash): (i64, String) = tx
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .unwrap_or((0, audit::GENESIS.to_owned()));
    let seq = prev_seq + 1;
    let hash = audit::chain_hash(&prev_hash, seq, &json);
    tx.execute(
        "INSERT INTO audit (seq, entry, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)",
        params![seq, json, prev_hash, hash],
    )?;
    tx.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        params![seq, hash],
    )?;
    Ok(seq)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let sql = |source| GovernError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(GovernError::TooNew {
            path: path.to_owned(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    for (i, m) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(m).map_err(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(sql)?;
        tracing::info!(path = %path.display(), version = i + 1, "governance store migrated");
    }
    tx.commit().map_err(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Govern) {
        let d = tempfile::tempdir().unwrap();
        let g = Govern::open(&d.path().join("g.db")).unwrap();
        (d, g)
    }

    #[test]
    fn migrations_are_versioned_and_a_newer_file_is_refused() {
        let (d, g) = store();
        assert_eq!(g.schema_version().unwrap(), SCHEMA_VERSION);
        drop(g);
        // reopening is a no-op migration
        let g = Govern::open(&d.path().join("g.db")).unwrap();
        assert_eq!(g.schema_version().unwrap(), SCHEMA_VERSION);
        g.conn()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(g);
        let e = Govern::open(&d.path().join("g.db")).unwrap_err();
        assert!(e.to_string().contains("newer than this dhub"), "{e}");
        // a file at version 0 gets every migration
        let p = d.path().join("old.db");
        drop(Connection::open(&p).unwrap());
        let g = Govern::open(&p).unwrap();
        assert_eq!(g.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn tokens_are_random_stored_hashed_and_checked() {
        let (d, g) = store();
        g.create_project(
            "p1",
            "",
            "r1",
            Grant::All,
            OutputPolicy::default(),
            None,
            "dm",
        )
        .unwrap();
        let t1 = g.add_researcher("ada", "p1", None, "dm").unwrap();
        let t2 = g
            .add_researcher("bob", "p1", parse_date("2000-01-01").ok(), "dm")
            .unwrap();
        assert!(t1.starts_with(TOKEN_PREFIX) && t1.len() == TOKEN_PREFIX.len() + 43);
        assert_ne!(t1, t2);
        // only the hash is in the file
        drop(g);
        let bytes = std::fs::read(d.path().join("g.db")).unwrap();
        let wal = std::fs::read(d.path().join("g.db-wal")).unwrap_or_default();
        for b in [&bytes, &wal] {
            let s = String::from_utf8_lossy(b);
            assert!(!s.contains(&t1[5..]) && !s.contains(&t2[5..]));
        }
        let g = Govern::open(&d.path().join("g.db")).unwrap();
        assert_eq!(g.check_token(&t1).unwrap().unwrap().researcher.name, "ada");
        assert_eq!(
            g.check_token(&t2).unwrap().unwrap_err(),
            AuthFailure::Expired
        );
        assert_eq!(
            g.check_token("dhub_nope").unwrap().unwrap_err(),
            AuthFailure::Unknown
        );
        assert_eq!(
            g.check_token("").unwrap().unwrap_err(),
            AuthFailure::Unknown
        );
        g.revoke_researcher("ada", "dm").unwrap();
        assert_eq!(
            g.check_token(&t1).unwrap().unwrap_err(),
            AuthFailure::Revoked
        );
        assert!(g.add_researcher("ada", "p1", None, "dm").is_err());
        assert!(g.add_researcher("cy", "nope", None, "dm").is_err());
        // project.create, two researcher.add, one researcher.revoke
        assert_eq!(g.audit_verify().unwrap(), Ok(4));
    }

    #[test]
    fn expired_projects_refuse_their_researchers() {
        let (_d, g) = store();
        g.create_project(
            "old",
            "",
            "r1",
            Grant::All,
            OutputPolicy::default(),
            parse_date("2001-01-01").ok(),
            "dm",
        )
        .unwrap();
        let t = g.add_researcher("x", "old", None, "dm").unwrap();
        assert_eq!(
            g.check_token(&t).unwrap().unwrap_err(),
            AuthFailure::ProjectExpired
        );
    }

    #[test]
    fn the_audit_chain_detects_edits_deletions_insertions_and_reordering() {
        let (_d, g) = store();
        for i in 0..6 {
            let mut m = Map::new();
            m.insert("n".into(), json!(i));
            g.audit("test", "t", m).unwrap();
        }
        assert_eq!(g.audit_verify().unwrap(), Ok(6));
        let conn = || g.conn();
        // edit
        conn()
            .execute(
                "UPDATE audit SET entry = replace(entry, '\"n\":2', '\"n\":7') WHERE seq = 3",
                [],
            )
            .unwrap();
        assert_eq!(g.audit_verify().unwrap().unwrap_err().seq, 3);
        conn()
            .execute(
                "UPDATE audit SET entry = replace(entry, '\"n\":7', '\"n\":2') WHERE seq = 3",
                [],
            )
            .unwrap();
        assert_eq!(g.audit_verify().unwrap(), Ok(6));
        // delete
        let saved: (String, String, String) = conn()
            .query_row(
                "SELECT entry, prev_hash, hash FROM audit WHERE seq = 4",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        conn()
            .execute("DELETE FROM audit WHERE seq = 4", [])
            .unwrap();
        assert_eq!(g.audit_verify().unwrap().unwrap_err().seq, 4);
        conn()
            .execute(
                "INSERT INTO audit (seq, entry, prev_hash, hash) VALUES (4, ?1, ?2, ?3)",
                params![saved.0, saved.1, saved.2],
            )
            .unwrap();
        // putting back exactly what was deleted restores the chain
        assert_eq!(g.audit_verify().unwrap(), Ok(6));
        // reorder: entries 2 and 3 swap places (each keeps its own hashes)
        conn().execute_batch(
            "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (2, 3);
             UPDATE audit SET entry = (SELECT entry FROM t WHERE seq = 3), prev_hash = (SELECT prev_hash FROM t WHERE seq = 3), hash = (SELECT hash FROM t WHERE seq = 3) WHERE seq = 2;
             UPDATE audit SET entry = (SELECT entry FROM t WHERE seq = 2), prev_hash = (SELECT prev_hash FROM t WHERE seq = 2), hash = (SELECT hash FROM t WHERE seq = 2) WHERE seq = 3;",
        ).unwrap();
        assert_eq!(g.audit_verify().unwrap().unwrap_err().seq, 2);
        // an insertion of a forged entry at the end (head not updated)
        let (d2, g2) = store();
        g2.audit("a", "t", Map::new()).unwrap();
        g2.conn()
            .execute(
                "INSERT INTO audit (seq, entry, prev_hash, hash) VALUES (2, '{}', 'x', 'y')",
                [],
            )
            .unwrap();
        assert_eq!(g2.audit_verify().unwrap().unwrap_err().seq, 2);
        drop(d2);
        // the tail deleted
        let (_d3, g3) = store();
        g3.audit("a", "t", Map::new()).unwrap();
        g3.audit("b", "t", Map::new()).unwrap();
        g3.conn()
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        assert_eq!(g3.audit_verify().unwrap().unwrap_err().seq, 2);
    }

    #[test]
    fn concurrent_writers_keep_one_chain() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.db");
        Govern::open(&p).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let g = Govern::open(&p).unwrap();
                    for i in 0..25 {
                        let mut m = Map::new();
                        m.insert("t".into(), json!(t));
                        m.insert("i".into(), json!(i));
                        g.audit("test", "t", m).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(Govern::open(&p).unwrap().audit_verify().unwrap(), Ok(100));
    }

    #[test]
    fn query_lookups_use_the_index_including_entries_written_before_it() {
        // a file at schema version 2 (before the index), with query entries in its log
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v2.db");
        {
            let mut c = Connection::open(&p).unwrap();
            for m in &MIGRATIONS[..2] {
                c.execute_batch(m).unwrap();
            }
            c.pragma_update(None, "user_version", 2).unwrap();
            let tx = c.transaction().unwrap();
            for i in 0..50 {
                let mut m = Map::new();
                m.insert("query_id".into(), json!(format!("{i:032x}")));
                m.insert("project".into(), json!("p1"));
                append_tx(&tx, "query", "ada", m).unwrap();
                append_tx(&tx, "auth.refused", "anonymous", Map::new()).unwrap();
            }
            tx.commit().unwrap();
        }
        let g = Govern::open(&p).unwrap();
        assert_eq!(g.schema_version().unwrap(), SCHEMA_VERSION);
        // the old entries are found (the index covers them) and the chain still verifies
        let found = g.audit_find_query(&format!("{:032x}", 7)).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].seq, 15);
        assert_eq!(found[0].entry["query_id"], json!(format!("{:032x}", 7)));
        assert!(g.audit_find_query("nope").unwrap().is_empty());
        // a new entry is found too
        let mut m = Map::new();
        m.insert("query_id".into(), json!("f".repeat(32)));
        g.audit("query", "ada", m).unwrap();
        assert_eq!(g.audit_find_query(&"f".repeat(32)).unwrap()[0].seq, 101);
        // another kind with the same field is not a query entry
        let mut m = Map::new();
        m.insert("query_id".into(), json!("f".repeat(32)));
        g.audit("other", "ada", m).unwrap();
        assert_eq!(g.audit_find_query(&"f".repeat(32)).unwrap().len(), 1);
        assert_eq!(g.audit_verify().unwrap(), Ok(102));
        // and SQLite answers it through the index, not by scanning the log
        let plan: Vec<String> = {
            let c = g.conn();
            let mut st = c
                .prepare(&format!("EXPLAIN QUERY PLAN {AUDIT_FIND_QUERY}"))
                .unwrap();
            st.query_map(params!["x"], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let plan = plan.join("\n");
        assert!(plan.contains("USING INDEX audit_query_id"), "{plan}");
        assert!(!plan.contains("SCAN audit"), "{plan}");
    }

    #[test]
    fn export_writes_every_entry_to_parquet() {
        let (d, g) = store();
        for _ in 0..3 {
            g.audit("x", "t", Map::new()).unwrap();
        }
        let out = d.path().join("audit.parquet");
        assert_eq!(g.audit_export(&out).unwrap(), 3);
        let f = std::fs::File::open(&out).unwrap();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        let rows: usize = r.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 3);
    }

    /// A store with a project, two researchers (one revoked) and a few queries.
    fn populated() -> (tempfile::TempDir, Govern) {
        let (d, g) = store();
        g.create_project(
            "p1",
            "",
            "r1",
            Grant::All,
            OutputPolicy::default(),
            None,
            "dm",
        )
        .unwrap();
        g.add_researcher("ada", "p1", None, "dm").unwrap();
        g.add_researcher("bob", "p1", None, "dm").unwrap();
        g.revoke_researcher("bob", "dm").unwrap();
        for i in 0..4 {
            let mut m = Map::new();
            m.insert("researcher".into(), json!("ada"));
            m.insert("sql".into(), json!(format!("SELECT {i}")));
            g.audit("query", "ada", m).unwrap();
        }
        (d, g)
    }

    fn audit_key() -> ring::signature::Ed25519KeyPair {
        ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap()
    }

    fn public(k: &ring::signature::Ed25519KeyPair) -> [u8; 32] {
        use ring::signature::KeyPair;
        k.public_key().as_ref().try_into().unwrap()
    }

    /// Signs the current head as `dhub audit checkpoint` does; returns the stored
    /// document opened again (signature checked).
    fn checkpoint(g: &Govern, k: &ring::signature::Ed25519KeyPair) -> Checkpoint {
        let v = g.audit_verify_with(&[]).unwrap().unwrap();
        let cp = Checkpoint {
            seq: v.entries,
            hash: v.head_hash,
            time: "2026-12-02T00:00:00Z".into(),
            public_key: audit::hex(&public(k)),
        };
        let doc = cp.document(k.sign(&cp.signed_bytes()).as_ref());
        Checkpoint::open(&Checkpoint::object_name(cp.seq), &doc, &public(k)).unwrap()
    }

    /// The attacker's tool: rewrites the whole log from `entries` (canonical JSON), with
    /// fresh numbers, a recomputed chain and a matching head.
    fn rewrite(g: &Govern, entries: &[String]) {
        let conn = g.conn();
        conn.execute_batch("DELETE FROM audit; DELETE FROM audit_head;")
            .unwrap();
        let mut prev = audit::GENESIS.to_owned();
        for (i, e) in entries.iter().enumerate() {
            let seq = i as i64 + 1;
            let h = audit::chain_hash(&prev, seq, e);
            conn.execute(
                "INSERT INTO audit (seq, entry, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)",
                params![seq, e, prev, h],
            )
            .unwrap();
            prev = h;
        }
        if !entries.is_empty() {
            conn.execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)",
                params![entries.len() as i64, prev],
            )
            .unwrap();
        }
    }

    fn stored(g: &Govern) -> Vec<(i64, String, String, String)> {
        let conn = g.conn();
        let mut st = conn
            .prepare("SELECT seq, entry, prev_hash, hash FROM audit ORDER BY seq")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn head(g: &Govern) -> Option<(i64, String)> {
        g.conn()
            .query_row("SELECT seq, hash FROM audit_head", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .unwrap()
    }

    #[test]
    fn checkpoints_catch_a_rechained_renumbered_cut_or_emptied_log() {
        let k = audit_key();
        type Tamper = fn(&mut Vec<String>);
        let cases: [(&str, Tamper, &str); 5] = [
            (
                "an entry edited and the chain recomputed",
                |e| e[5] = e[5].replace("SELECT 1", "SELECT 9"),
                "does not match the signed checkpoint",
            ),
            (
                "an entry deleted and the rest renumbered",
                |e| {
                    e.remove(5);
                },
                "entries were deleted",
            ),
            ("the tail cut", |e| e.truncate(6), "entries were deleted"),
            ("every entry deleted", |e| e.clear(), "entries were deleted"),
            (
                "a forged entry inserted in the middle",
                |e| e.insert(5, r#"{"actor":"x","kind":"query"}"#.to_owned()),
                "does not match the signed checkpoint",
            ),
        ];
        for (what, tamper, says) in cases {
            let (_d, g) = populated();
            let cp = checkpoint(&g, &k);
            assert_eq!(cp.seq, 8);
            assert!(
                g.audit_verify_with(std::slice::from_ref(&cp))
                    .unwrap()
                    .is_ok()
            );
            let mut entries: Vec<String> = stored(&g).into_iter().map(|r| r.1).collect();
            tamper(&mut entries);
            rewrite(&g, &entries);
            // the chain alone (all that `dhub audit verify` checked before) accepts it
            assert!(
                audit::verify_rows(stored(&g), head(&g)).is_ok(),
                "{what}: the chain alone should not see this"
            );
            // the signed checkpoint does not
            let b = g.audit_verify_with(&[cp]).unwrap().unwrap_err();
            assert!(b.reason.contains(says), "{what}: {b}");
        }
    }

    #[test]
    fn governance_rows_need_their_creation_entries() {
        type Edit = &'static str;
        let cases: [(Edit, &str); 5] = [
            (
                "INSERT INTO projects (id, title, release, tables, policy, expires, created) SELECT 'evil', 'evil', release, tables, policy, NULL, created FROM projects WHERE id = 'p1'",
                "project `evil` is in the governance tables but the audit log has no entry",
            ),
            (
                "INSERT INTO researchers (name, project, token_sha256, created) VALUES ('eve', 'p1', 'x', '2026-01-01T00:00:00Z')",
                "researcher `eve` is in the governance tables",
            ),
            (
                "UPDATE researchers SET revoked = NULL WHERE name = 'bob'",
                "un-revoked outside dhub",
            ),
            (
                "UPDATE researchers SET token_sha256 = 'f00d' WHERE name = 'ada'",
                "has another token",
            ),
            (
                "UPDATE projects SET policy = replace(policy, '\"mode\":\"aggregate\"', '\"mode\":\"record\"')",
                "has another output policy",
            ),
        ];
        for (sql, says) in cases {
            let (_d, g) = populated();
            assert_eq!(g.audit_verify().unwrap(), Ok(8));
            assert_eq!(g.audit_verify_with(&[]).unwrap().unwrap().records, 3);
            assert_eq!(g.conn().execute(sql, []).unwrap(), 1, "{sql}");
            // the chain itself is untouched
            assert!(audit::verify_rows(stored(&g), head(&g)).is_ok());
            let b = g.audit_verify().unwrap().unwrap_err();
            assert!(b.to_string().contains(says), "{sql}: {b}");
        }
        // a project whose creation entry is removed and the chain recomputed is caught
        // by the records check alone
        let (_d, g) = populated();
        let entries: Vec<String> = stored(&g)
            .into_iter()
            .map(|r| r.1)
            .filter(|e| !e.contains("project.create"))
            .collect();
        rewrite(&g, &entries);
        let b = g.audit_verify().unwrap().unwrap_err();
        assert!(b.to_string().starts_with("project `p1`"), "{b}");
    }

    #[test]
    fn checkpoint_documents_are_checked_against_the_trusted_key() {
        let (_d, g) = populated();
        let k = audit_key();
        let cp = checkpoint(&g, &k);
        let doc = cp.document(k.sign(&cp.signed_bytes()).as_ref());
        let name = Checkpoint::object_name(8);
        assert_eq!(name, "00000000000000000008.json");
        assert!(Checkpoint::open(&name, &doc, &public(&k)).is_ok());
        // another key (a forger with store access) does not verify
        let other = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap();
        let forged = cp.document(other.sign(&cp.signed_bytes()).as_ref());
        let e = Checkpoint::open(&name, &forged, &public(&k)).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // an edited hash or entry number breaks the signature
        let text = String::from_utf8(doc.clone()).unwrap();
        let edited = text.replace(&cp.hash, &"0".repeat(64));
        assert!(Checkpoint::open(&name, edited.as_bytes(), &public(&k)).is_err());
        let edited = text.replace("\"seq\": 8", "\"seq\": 7");
        assert!(
            Checkpoint::open(&Checkpoint::object_name(7), edited.as_bytes(), &public(&k)).is_err()
        );
        // a renamed document
        let e = Checkpoint::open(&Checkpoint::object_name(9), &doc, &public(&k)).unwrap_err();
        assert!(e.contains("renamed"), "{e}");
        assert!(Checkpoint::open(&name, b"not json", &public(&k)).is_err());
    }

    #[test]
    fn long_texts_keep_a_prefix_their_hash_and_length() {
        let mut m = Map::new();
        audit::bound_text(&mut m, "sql", "SELECT 1", audit::TEXT_LIMIT);
        assert_eq!(m["sql"], "SELECT 1");
        assert_eq!(m.len(), 1);
        // 8 MiB with a multi-byte character across the cut
        let long = format!(
            "{}é{}",
            "x".repeat(audit::TEXT_PREFIX - 1),
            "y".repeat(8 << 20)
        );
        let mut m = Map::new();
        audit::bound_text(&mut m, "sql", &long, audit::TEXT_LIMIT);
        assert_eq!(
            m["sql"].as_str().unwrap(),
            "x".repeat(audit::TEXT_PREFIX - 1)
        );
        assert_eq!(m["sql_bytes"], long.len());
        assert_eq!(m["sql_sha256"], audit::sha256_hex(long.as_bytes()));
        assert_eq!(m["sql_truncated"], true);
        // the append bounds any huge field itself
        let (_d, g) = store();
        let mut m = Map::new();
        m.insert("error".into(), json!("e".repeat(1 << 20)));
        g.audit("query", "t", m).unwrap();
        let e = &g.audit_tail(1).unwrap()[0].entry;
        assert!(e["error"].as_str().unwrap().len() <= audit::FIELD_LIMIT);
        assert_eq!(e["error_bytes"], 1 << 20);
        assert!(serde_json::to_string(e).unwrap().len() < 4096);
    }

    #[test]
    fn a_refused_token_names_its_holder_when_dhub_issued_it() {
        let (_d, g) = populated();
        let t = g.add_researcher("cy", "p1", None, "dm").unwrap();
        g.revoke_researcher("cy", "dm").unwrap();
        let r = g.check_token_refused(&t).unwrap().unwrap_err();
        assert_eq!(r.failure, AuthFailure::Revoked);
        assert_eq!(r.name.as_deref(), Some("cy"));
        assert_eq!(r.project.as_deref(), Some("p1"));
        let r = g.check_token_refused("dhub_unknown").unwrap().unwrap_err();
        assert_eq!((r.failure, r.name), (AuthFailure::Unknown, None));
        // several entries in one transaction
        let before = g.audit_verify().unwrap().unwrap();
        let last = g
            .audit_many(vec![
                ("a".into(), "x".into(), Map::new()),
                ("b".into(), "y".into(), Map::new()),
            ])
            .unwrap();
        assert_eq!(last, before + 2);
        assert_eq!(g.audit_verify().unwrap(), Ok(before + 2));
    }
}
