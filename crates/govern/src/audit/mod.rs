//! The tamper-evident audit log.
//!
//! Every entry is a JSON object (its `kind`, `time` and whatever the event carries),
//! stored in canonical form (keys sorted, no white space) with its sequence number and
//! two hashes:
//!
//! ```text
//! hash(n) = SHA-256( hash(n-1) ‖ "\n" ‖ n ‖ "\n" ‖ canonical JSON of entry n )   (lowercase hex)
//! hash(0) = 64 zeros
//! ```
//!
//! A separate one-row head records the last sequence number and hash. Editing an entry,
//! deleting or inserting one, reordering entries, or dropping the tail breaks the chain
//! at the first entry affected, which [`crate::Govern::audit_verify`] names.
//!
//! The chain has no secret, so whoever can write the database can also recompute it
//! after an edit, renumber it after a deletion, cut its tail or empty it. Two checks need
//! more than the database:
//!
//! * **Signed checkpoints** ([`Checkpoint`]): the head `(seq, hash)` signed with an
//!   Ed25519 key that is not in the database (`dhub keys generate-audit`), written with a
//!   create-only put as `_audit/<seq, 20 digits>.json` outside the database (the research
//!   store, or `--audit-checkpoints`). A log shorter than a checkpoint, or whose hash at a
//!   checkpoint's entry differs from the signed one, fails verification.
//! * **Governance records**: every project, researcher and partner row must have its
//!   creation entry in the log with the same fields (a researcher's or partner's token
//!   hash too, for entries that record it), and a revoked one must still be revoked.
//!
//! Long texts are stored as a bounded prefix with the SHA-256 and length of the whole
//! ([`bound_text`]), so one request cannot write megabytes into the log.
//!
//! What an entry holds is typed: [`AuditEvent`] (`event.rs`), one variant per kind,
//! whose serde form is the entry's one canonical form. This module holds the format
//! (canonical JSON, the hash, bounded texts, checkpoints); `event.rs` the events;
//! `log.rs` the store's appends, reads, lookups (a query's entries through an index)
//! and export; `verify.rs` the store's verification.

mod event;
mod log;
mod verify;

use std::collections::BTreeMap;

use ring::digest;
use serde_json::{Map, Value, json};

pub use event::{AuditEvent, ExtractReleased, QueryEvent, RefusalCount, RequestEvent};
pub(crate) use log::append_tx;
pub use verify::Verified;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Sequence number, from 1.
    pub seq: i64,
    /// The entry (canonical JSON object).
    pub entry: Value,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Why the chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first bad entry's sequence number (or the position where one is missing).
    pub seq: i64,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.seq > 0 {
            write!(f, "audit entry {}: {}", self.seq, self.reason)
        } else {
            // not at one entry (a governance record, a checkpoint document)
            f.write_str(&self.reason)
        }
    }
}

/// The longest text stored whole in an audit entry field (bytes). Longer texts keep
/// their first [`TEXT_PREFIX`] bytes, their SHA-256 and their length.
pub const TEXT_LIMIT: usize = 4096;

/// How much of a longer text is kept.
pub const TEXT_PREFIX: usize = 2048;

/// The largest string stored whole in any top-level field of any entry (a backstop
/// applied by the append itself; callers bound their texts more tightly).
pub const FIELD_LIMIT: usize = 64 * 1024;

/// Inserts `text` as `fields[key]` when it is at most `limit` bytes; otherwise its first
/// `min(limit, TEXT_PREFIX)` bytes (cut at a character boundary) as `fields[key]`, with
/// `<key>_sha256` (hex SHA-256 of the whole text), `<key>_bytes` (its length) and
/// `<key>_truncated: true`, so the whole text can still be recognised.
pub fn bound_text(fields: &mut Map<String, Value>, key: &str, text: &str, limit: usize) {
    if text.len() <= limit {
        fields.insert(key.to_owned(), json!(text));
        return;
    }
    let mut cut = limit.min(TEXT_PREFIX);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    fields.insert(key.to_owned(), json!(&text[..cut]));
    fields.insert(format!("{key}_sha256"), json!(sha256_hex(text.as_bytes())));
    fields.insert(format!("{key}_bytes"), json!(text.len()));
    fields.insert(format!("{key}_truncated"), json!(true));
}

/// Bounds every top-level string field longer than [`FIELD_LIMIT`] (see [`bound_text`]).
pub(crate) fn bound_fields(fields: &mut Map<String, Value>) {
    let long: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) if s.len() > FIELD_LIMIT => Some((k.clone(), s.clone())),
            _ => None,
        })
        .collect();
    for (k, s) in long {
        bound_text(fields, &k, &s, FIELD_LIMIT);
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Serialises `v` canonically: object keys sorted, no insignificant white space.
/// (Independent of serde_json's map ordering features.)
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of entry `seq` with canonical JSON `json` after `prev`.
pub fn chain_hash(prev: &str, seq: i64, json: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(b"\n");
    ctx.update(seq.to_string().as_bytes());
    ctx.update(b"\n");
    ctx.update(json.as_bytes());
    hex(ctx.finish().as_ref())
}

/// Lowercase hex: the workspace's one encoder ([`dhub_deid::hex`]).
pub use dhub_deid::{hex, unhex};

/// Checks a chain entry by entry, in stored order, without holding it in memory.
#[derive(Debug)]
pub(crate) struct ChainCheck {
    prev: String,
    expect: i64,
}

impl ChainCheck {
    pub(crate) fn new() -> Self {
        Self {
            prev: GENESIS.to_owned(),
            expect: 1,
        }
    }

    /// Checks the next stored row and returns its entry.
    pub(crate) fn push(
        &mut self,
        seq: i64,
        json: &str,
        prev_hash: &str,
        hash: &str,
    ) -> Result<Value, ChainBreak> {
        let expect = self.expect;
        let brk = |reason: &str| ChainBreak {
            seq,
            reason: reason.to_owned(),
        };
        if seq != expect {
            return Err(ChainBreak {
                seq: expect.min(seq),
                reason: if seq > expect {
                    format!("entries {expect} to {} are missing (deleted)", seq - 1)
                } else {
                    format!(
                        "entry numbered {seq} appears where {expect} was expected (inserted or reordered)"
                    )
                },
            });
        }
        if prev_hash != self.prev {
            return Err(brk(
                "its previous-hash does not match the entry before it (an entry was inserted, deleted or reordered)",
            ));
        }
        let v = match serde_json::from_str::<Value>(json) {
            Ok(v) if v.is_object() => v,
            _ => return Err(brk("its content is not a JSON object (edited)")),
        };
        if canonical_json(&v) != json {
            return Err(brk("its content is not in canonical form (edited)"));
        }
        if chain_hash(&self.prev, seq, json) != hash {
            return Err(brk("its hash does not match its content (edited)"));
        }
        hash.clone_into(&mut self.prev);
        self.expect += 1;
        Ok(v)
    }

    /// Checks the head against the rows seen; returns the number of entries.
    pub(crate) fn finish(self, head: Option<(i64, String)>) -> Result<i64, ChainBreak> {
        let count = self.expect - 1;
        match head {
            None if count == 0 => Ok(0),
            None => Err(ChainBreak {
                seq: count,
                reason: "the audit head is missing (edited)".into(),
            }),
            Some((hseq, hhash)) => {
                if hseq > count {
                    Err(ChainBreak {
                        seq: count + 1,
                        reason: format!(
                            "the log ends at entry {count} but its head says {hseq}: entries were deleted from the end"
                        ),
                    })
                } else if hseq < count || hhash != self.prev {
                    Err(ChainBreak {
                        seq: hseq + 1,
                        reason: "entries after the recorded head were added outside dhub, or the head was edited".into(),
                    })
                } else {
                    Ok(count)
                }
            }
        }
    }
}

/// Checks rows `(seq, stored canonical JSON, prev_hash, hash)` in stored order, then the
/// head. Returns the number of entries. (The chain alone: what a database-level attacker
/// can recompute. [`crate::Govern::audit_verify`] adds the governance records and
/// checkpoints.)
pub fn verify_rows(
    rows: impl IntoIterator<Item = (i64, String, String, String)>,
    head: Option<(i64, String)>,
) -> Result<i64, ChainBreak> {
    let mut c = ChainCheck::new();
    for (seq, json, prev_hash, hash) in rows {
        c.push(seq, &json, &prev_hash, &hash)?;
    }
    c.finish(head)
}

// ---- signed checkpoints ------------------------------------------------------------

/// Where checkpoints live under their location's root.
pub const CHECKPOINT_DIR: &str = "_audit";

/// The format number of checkpoint documents.
pub const CHECKPOINT_FORMAT: i64 = 1;

/// A signed statement "the audit chain had `hash` at entry `seq`", kept outside the
/// database. The document (`_audit/<seq:020>.json`) is
///
/// ```text
/// {"checkpoint": {"format": 1, "kind": "dhub.audit.checkpoint", "seq": N, "hash": "…",
///                 "time": "…", "public_key": "…"},
///  "signature": "<128 hex: Ed25519 over the canonical JSON of `checkpoint`>"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The entry it covers (the log's length when it was made).
    pub seq: i64,
    /// That entry's chain hash.
    pub hash: String,
    /// When it was made (RFC 3339, UTC).
    pub time: String,
    /// The signer's Ed25519 public key (hex); informative only, verification uses the key
    /// the verifier trusts.
    pub public_key: String,
}

impl Checkpoint {
    /// The object name under [`CHECKPOINT_DIR`]: the number padded so names sort.
    pub fn object_name(seq: i64) -> String {
        format!("{seq:020}.json")
    }

    fn payload(&self) -> Value {
        json!({
            "format": CHECKPOINT_FORMAT,
            "kind": "dhub.audit.checkpoint",
            "seq": self.seq,
            "hash": self.hash,
            "time": self.time,
            "public_key": self.public_key,
        })
    }

    /// The exact bytes that are signed: the canonical JSON of the payload.
    pub fn signed_bytes(&self) -> Vec<u8> {
        canonical_json(&self.payload()).into_bytes()
    }

    /// The document to store, given the signature of [`Checkpoint::signed_bytes`].
    pub fn document(&self, signature: &[u8]) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(
            &json!({"checkpoint": self.payload(), "signature": hex(signature)}),
        )
        .unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses the document stored as `name` and checks its signature with `public_key`.
    pub fn open(name: &str, bytes: &[u8], public_key: &[u8; 32]) -> Result<Self, String> {
        let bad = |why: &str| format!("checkpoint {name}: {why}");
        let doc: Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
        let p = doc
            .get("checkpoint")
            .filter(|p| p.is_object())
            .ok_or_else(|| bad("no `checkpoint` object"))?;
        let field = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
        if p.get("format").and_then(Value::as_i64) != Some(CHECKPOINT_FORMAT)
            || p.get("kind").and_then(Value::as_str) != Some("dhub.audit.checkpoint")
        {
            return Err(bad(
                "not a dhub audit checkpoint of a format this dhub knows",
            ));
        }
        let cp = Checkpoint {
            seq: p
                .get("seq")
                .and_then(Value::as_i64)
                .filter(|s| *s > 0)
                .ok_or_else(|| bad("no entry number"))?,
            hash: field("hash").ok_or_else(|| bad("no hash"))?,
            time: field("time").unwrap_or_default(),
            public_key: field("public_key").unwrap_or_default(),
        };
        if cp.payload() != *p {
            return Err(bad("unexpected fields (edited)"));
        }
        let sig = doc
            .get("signature")
            .and_then(Value::as_str)
            .and_then(unhex)
            .filter(|s| s.len() == 64)
            .ok_or_else(|| bad("no 64-byte signature"))?;
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
            .verify(&cp.signed_bytes(), &sig)
            .map_err(|_| {
                bad(&format!(
                    "its signature does not verify with the audit public key {}: it was forged or edited, or signed with another key (it names {})",
                    hex(public_key),
                    if cp.public_key.is_empty() { "none" } else { &cp.public_key }
                ))
            })?;
        if name != Self::object_name(cp.seq) {
            return Err(bad(&format!(
                "it covers entry {} but is stored under another name (renamed)",
                cp.seq
            )));
        }
        Ok(cp)
    }
}

/// Compares the chain with the checkpoints: `hashes` holds the stored hash at each
/// checkpointed entry that exists, `count` the number of entries.
pub(crate) fn check_checkpoints(
    checkpoints: &[Checkpoint],
    count: i64,
    hashes: &BTreeMap<i64, String>,
) -> Result<(), ChainBreak> {
    let mut sorted: Vec<&Checkpoint> = checkpoints.iter().collect();
    sorted.sort_by_key(|c| c.seq);
    for cp in sorted {
        if cp.seq > count {
            return Err(ChainBreak {
                seq: count + 1,
                reason: format!(
                    "the log ends at entry {count} but a signed checkpoint ({}) covers entries up to {}: entries were deleted (the tail cut, entries deleted and renumbered, or the log emptied)",
                    cp.time, cp.seq
                ),
            });
        }
        if hashes.get(&cp.seq) != Some(&cp.hash) {
            return Err(ChainBreak {
                seq: cp.seq,
                reason: format!(
                    "the chain does not match the signed checkpoint ({}) of this entry: entries up to {} were rewritten (edited and re-chained, or deleted and renumbered)",
                    cp.time, cp.seq
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_keys_at_every_level() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[3,{"z":1,"y":2}],"c":"x"}}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn chain_hash_is_sha256_of_the_documented_bytes() {
        // independent: SHA-256 of "0…0\n1\n{}" computed with coreutils' sha256sum
        let h = chain_hash(GENESIS, 1, "{}");
        let expected = {
            let mut c = digest::Context::new(&digest::SHA256);
            c.update(format!("{GENESIS}\n1\n{{}}").as_bytes());
            hex(c.finish().as_ref())
        };
        assert_eq!(h, expected);
        assert_eq!(h.len(), 64);
    }

    fn chain(n: i64) -> Vec<(i64, String, String, String)> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let json = format!(r#"{{"kind":"test","n":{seq}}}"#);
                let h = chain_hash(&prev, seq, &json);
                let row = (seq, json, prev.clone(), h.clone());
                prev = h;
                row
            })
            .collect()
    }

    #[test]
    fn every_tampering_names_the_first_bad_entry() {
        let good = chain(5);
        let head = Some((5, good[4].3.clone()));
        assert_eq!(verify_rows(good.clone(), head.clone()), Ok(5));
        // edit
        let mut e = good.clone();
        e[2].1 = r#"{"kind":"test","n":99}"#.into();
        assert_eq!(verify_rows(e, head.clone()).unwrap_err().seq, 3);
        // delete from the middle
        let mut d = good.clone();
        d.remove(1);
        assert_eq!(verify_rows(d, head.clone()).unwrap_err().seq, 2);
        // reorder
        let mut r = good.clone();
        r.swap(1, 2);
        assert_eq!(verify_rows(r, head.clone()).unwrap_err().seq, 2);
        // delete the tail
        let t = good[..4].to_vec();
        assert_eq!(verify_rows(t, head.clone()).unwrap_err().seq, 5);
        // renumber after a deletion (seq and prev fixed up, hash not recomputable without care)
        let mut rn = good.clone();
        rn.remove(1);
        for (i, row) in rn.iter_mut().enumerate() {
            row.0 = i as i64 + 1;
        }
        assert_eq!(verify_rows(rn, head).unwrap_err().seq, 2);
    }
}
