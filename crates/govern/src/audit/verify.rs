//! Verifying the audit log: the chain entry by entry, the signed checkpoints, and every
//! project, researcher and partner row against the entry that created it.

use rusqlite::OptionalExtension;
use serde_json::{Value, json};

use crate::audit::{self, ChainBreak, Checkpoint};
use crate::error::Result;
use crate::holders::Holder;
use crate::{Govern, Grant};

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

impl Govern {
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
}

#[cfg(test)]
mod tests {
    use rusqlite::{OptionalExtension, params};
    use serde_json::{Map, json};

    use super::*;
    use crate::testutil::{populated, store};

    #[test]
    fn the_audit_chain_detects_edits_deletions_insertions_and_reordering() {
        let (_d, g) = store();
        for i in 0..6 {
            let mut m = Map::new();
            m.insert("n".into(), json!(i));
            g.audit_raw("test", "t", m).unwrap();
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
        g2.audit_raw("a", "t", Map::new()).unwrap();
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
        g3.audit_raw("a", "t", Map::new()).unwrap();
        g3.audit_raw("b", "t", Map::new()).unwrap();
        g3.conn()
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        assert_eq!(g3.audit_verify().unwrap().unwrap_err().seq, 2);
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
}
