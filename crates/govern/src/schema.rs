//! The SQLite schema: its migrations, in order, and the forward migration run on open
//! (`PRAGMA user_version` holds the version; a file from a newer dhub is refused).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{GovernError, Result};

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

/// Migrates `conn` (the file at `path`) forward to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
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
    use rusqlite::Connection;

    use super::*;
    use crate::Govern;
    use crate::testutil::store;

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
}
