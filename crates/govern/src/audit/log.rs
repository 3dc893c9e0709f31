//! Appending to the audit chain and reading it back: one entry or several in one
//! transaction, the tail, lookups (a query's entries through the `audit_query_id`
//! index), and the Parquet export.

use std::path::Path;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value, json};

use crate::audit::{self, AuditEntry, AuditEvent, QueryEvent};
use crate::error::{GovernError, Result};
use crate::{Govern, now, ts};

impl Govern {
    /// Appends `event` as an audit entry `{kind, actor, time, …its fields}` to the chain,
    /// committed before this returns. Returns its sequence number.
    pub fn audit(&self, event: &AuditEvent, actor: &str) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let seq = append_tx(&tx, event, actor).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(seq)
    }

    /// Appends several `(event, actor)` entries in one transaction (one write to disk),
    /// in order. Returns the last sequence number (0 when `entries` is empty).
    pub fn audit_many(&self, entries: &[(AuditEvent, String)]) -> Result<i64> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let mut seq = 0;
        for (event, actor) in entries {
            seq = append_tx(&tx, event, actor).map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(seq)
    }

    /// Appends an entry of any `kind` with untyped `fields` (the unit tests' chains).
    #[cfg(test)]
    pub(crate) fn audit_raw(
        &self,
        kind: &str,
        actor: &str,
        fields: Map<String, Value>,
    ) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let seq = append_entry(&tx, kind, actor, fields).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(seq)
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

    /// The `query` events of query `query_id`, oldest first, typed: the same lookup
    /// through the `audit_query_id` index as [`Govern::audit_find_query`].
    pub fn query_events(&self, query_id: &str) -> Result<Vec<QueryEvent>> {
        let mut out = Vec::new();
        for e in self.audit_find_query(query_id)? {
            match AuditEvent::from_entry(&e.entry) {
                Some(AuditEvent::Query(q)) => out.push(q),
                _ => {
                    return Err(self.corrupt(
                        format!("audit entry {}", e.seq),
                        "not a query entry of the known form",
                    ));
                }
            }
        }
        Ok(out)
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

/// Appends `event` inside an open (immediate) transaction.
pub(crate) fn append_tx(
    tx: &rusqlite::Transaction<'_>,
    event: &AuditEvent,
    actor: &str,
) -> rusqlite::Result<i64> {
    append_entry(tx, event.kind(), actor, event.fields())
}

/// Appends `{kind, actor, time, …fields}` (a field longer than [`audit::FIELD_LIMIT`]
/// bounded) inside an open (immediate) transaction.
fn append_entry(
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

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::schema::{MIGRATIONS, SCHEMA_VERSION};
    use crate::testutil::store;

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
                        g.audit_raw("test", "t", m).unwrap();
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
                append_entry(&tx, "query", "ada", m).unwrap();
                append_entry(&tx, "auth.refused", "anonymous", Map::new()).unwrap();
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
        g.audit_raw("query", "ada", m).unwrap();
        assert_eq!(g.audit_find_query(&"f".repeat(32)).unwrap()[0].seq, 101);
        // another kind with the same field is not a query entry
        let mut m = Map::new();
        m.insert("query_id".into(), json!("f".repeat(32)));
        g.audit_raw("other", "ada", m).unwrap();
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
            g.audit_raw("x", "t", Map::new()).unwrap();
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
        g.audit_raw("query", "t", m).unwrap();
        let e = &g.audit_tail(1).unwrap()[0].entry;
        assert!(e["error"].as_str().unwrap().len() <= audit::FIELD_LIMIT);
        assert_eq!(e["error_bytes"], 1 << 20);
        assert!(serde_json::to_string(e).unwrap().len() < 4096);
    }
}
