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

use ring::digest;
use serde_json::Value;

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
        write!(f, "audit entry {}: {}", self.seq, self.reason)
    }
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

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(H[usize::from(b >> 4)]));
        s.push(char::from(H[usize::from(b & 15)]));
    }
    s
}

/// Checks rows `(seq, stored canonical JSON, prev_hash, hash)` in stored order, then the
/// head. Returns the number of entries.
pub(crate) fn verify_rows(
    rows: impl IntoIterator<Item = (i64, String, String, String)>,
    head: Option<(i64, String)>,
) -> Result<i64, ChainBreak> {
    let mut prev = GENESIS.to_owned();
    let mut expect = 1i64;
    for (seq, json, prev_hash, hash) in rows {
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
        if prev_hash != prev {
            return Err(brk(
                "its previous-hash does not match the entry before it (an entry was inserted, deleted or reordered)",
            ));
        }
        let canon = match serde_json::from_str::<Value>(&json) {
            Ok(v) if v.is_object() => canonical_json(&v),
            _ => return Err(brk("its content is not a JSON object (edited)")),
        };
        if canon != json {
            return Err(brk("its content is not in canonical form (edited)"));
        }
        if chain_hash(&prev, seq, &json) != hash {
            return Err(brk("its hash does not match its content (edited)"));
        }
        prev = hash;
        expect += 1;
    }
    let count = expect - 1;
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
            } else if hseq < count || hhash != prev {
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
