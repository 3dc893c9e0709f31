//! Pseudonymising a column with a memo ([`CachedPseudonymiser`], what the
//! `pseudonymise` rule runs): most identifier columns of event tables
//! (patient, provider, organisation, payer) repeat a few values many times, so each
//! distinct value is hashed once. A column whose values rarely repeat (a table's own
//! row ids) turns the memo off after a sample, so it costs nothing there.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::RuleError;
use crate::pseudonym::{IdFormat, MemoResult, Pseudonymiser};
use crate::rules::RuleOutput;
use arrow_array::Array;

/// Distinct values remembered per column before the memo is cleared.
const MAX_ENTRIES: usize = 1 << 18;
/// Rows sampled before deciding whether the memo pays.
const SAMPLE_ROWS: u64 = 1 << 16;
/// Raw values up to this long are memo keys held inline (a UUID is 36 bytes).
const INLINE: usize = 47;

/// A short raw value as a fixed-size key: six words, the value's bytes zero-padded and
/// its length in the top byte. Building, hashing and comparing it needs no library call
/// and no allocation.
#[derive(Clone, Copy, Eq)]
struct InlineKey([u64; 6]);

impl std::hash::Hash for InlineKey {
    /// The words, as the derived `Hash` of `[u64; 6]` would (equal keys are equal
    /// words, so they hash alike).
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for InlineKey {
    /// Word by word, with no early exit: the derived comparison of `[u64; 6]` is a
    /// `bcmp` call on every probe of the memo.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .fold(0, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl InlineKey {
    #[inline]
    fn new(raw: &[u8]) -> Option<Self> {
        if raw.len() > INLINE {
            return None;
        }
        let mut w = [0u64; 6];
        let (chunks, tail) = raw.as_chunks::<8>();
        for (d, c) in w.iter_mut().zip(chunks) {
            *d = u64::from_le_bytes(*c);
        }
        // at most 47 bytes: at most five whole words, the tail in the next
        *w.get_mut(chunks.len())? = tail_word(tail);
        w[5] |= (raw.len() as u64) << 56;
        Some(Self(w))
    }
}

/// The (fewer than eight) bytes of `t` as one little-endian word, zero-padded.
#[inline]
fn tail_word(t: &[u8]) -> u64 {
    t.iter().rev().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Byte equality without a library call for short values (the previous row's value is
/// compared on every row).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (ac, at) = a.as_chunks::<8>();
    let (bc, bt) = b.as_chunks::<8>();
    ac.iter().zip(bc).all(|(x, y)| x == y) && tail_word(at) == tail_word(bt)
}

type Hasher = foldhash::fast::RandomState;

/// The remembered outcome of `query` in `map`, or `compute`d and remembered under
/// `key()` (the map is cleared first when full); counts a found one in `hits`.
#[inline]
fn remembered<K, Q>(
    map: &mut HashMap<K, MemoResult, Hasher>,
    query: &Q,
    key: impl FnOnce() -> K,
    compute: &mut dyn FnMut() -> MemoResult,
    hits: &mut u64,
) -> MemoResult
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(v) = map.get(query) {
        *hits += 1;
        return *v;
    }
    let v = compute();
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key(), v);
    v
}

/// A pseudonymiser for one column, with an adaptive memo of pseudonyms.
pub struct CachedPseudonymiser {
    p: Arc<Pseudonymiser>,
    format: IdFormat,
    /// foldhash: several times faster than SipHash on short keys; randomly seeded.
    short: HashMap<InlineKey, MemoResult, Hasher>,
    long: HashMap<Box<[u8]>, MemoResult, Hasher>,
    enabled: bool,
    /// Whether the table is worth keeping: a column in runs of one value each (a
    /// patient column of a table sorted by patient) is served by the previous-row
    /// shortcut, and remembering every value would only fill the table.
    use_table: bool,
    rows: u64,
    /// Rows found from the previous row or in the table.
    hits: u64,
    table_hits: u64,
    /// The previous row's raw value and outcome: event tables come grouped by patient,
    /// so a value often repeats on the next row, found without hashing it.
    last: Vec<u8>,
    last_memo: Option<MemoResult>,
}

impl std::fmt::Debug for CachedPseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedPseudonymiser")
            .field("domain", &self.p.domain())
            .field("format", &self.format)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl CachedPseudonymiser {
    /// A memoising pseudonymiser.
    pub fn new(p: Arc<Pseudonymiser>, format: IdFormat) -> Self {
        Self {
            p,
            format,
            short: HashMap::default(),
            long: HashMap::default(),
            enabled: true,
            use_table: true,
            rows: 0,
            hits: 0,
            table_hits: 0,
            last: Vec::new(),
            last_memo: None,
        }
    }

    /// Pseudonymises a column (see [`Pseudonymiser::pseudonymise`]).
    pub fn pseudonymise(&mut self, input: &dyn Array) -> Result<RuleOutput, RuleError> {
        if !self.enabled {
            return self.p.pseudonymise(input, self.format);
        }
        let p = self.p.clone();
        let (short, long) = (&mut self.short, &mut self.long);
        let (last, last_memo) = (&mut self.last, &mut self.last_memo);
        let (mut rows, mut hits, mut table_hits) = (0u64, 0u64, 0u64);
        let use_table = self.use_table;
        let out = p.pseudonymise_with(input, self.format, |raw, compute| {
            rows += 1;
            if let Some(v) = last_memo
                && same(raw, last)
            {
                hits += 1;
                return *v;
            }
            let v = if !use_table {
                compute()
            } else if let Some(key) = InlineKey::new(raw) {
                remembered(short, &key, || key, compute, &mut table_hits)
            } else {
                remembered(long, raw, || raw.into(), compute, &mut table_hits)
            };
            last.clear();
            last.extend_from_slice(raw);
            *last_memo = Some(v);
            v
        });
        self.rows += rows;
        self.hits += hits + table_hits;
        self.table_hits += table_hits;
        if self.rows >= SAMPLE_ROWS && self.use_table {
            if self.hits * 2 < self.rows {
                // values rarely repeat: hashing directly is cheaper than remembering
                self.enabled = false;
            } else if self.table_hits * 8 < self.rows - (self.hits - self.table_hits) {
                // (of the rows the previous row did not answer) repeats come in runs:
                // the previous row is all the memory needed
                self.use_table = false;
            }
            if !self.enabled || !self.use_table {
                self.short = HashMap::default();
                self.long = HashMap::default();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;
    use arrow_array::StringArray;

    #[test]
    fn inline_keys_and_same_agree_with_byte_equality() {
        // every length up to the inline limit and past it, values that differ in one
        // byte or only by trailing zero bytes
        let mut values: Vec<Vec<u8>> = Vec::new();
        for len in 0..=INLINE + 2 {
            let v: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            for i in 0..len {
                let mut w = v.clone();
                w[i] ^= 0x80;
                values.push(w);
            }
            let mut z = v.clone();
            z.push(0);
            values.push(z);
            values.push(v);
        }
        for a in &values {
            for b in &values {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
                if let (Some(x), Some(y)) = (InlineKey::new(a), InlineKey::new(b)) {
                    assert_eq!(x == y, a == b, "{a:?} {b:?}");
                }
            }
            assert_eq!(InlineKey::new(a).is_some(), a.len() <= INLINE);
        }
    }

    #[test]
    fn memo_and_repeat_shortcut_give_the_plain_pseudonyms() {
        let p = Arc::new(Pseudonymiser::new(&MasterKey::from_bytes([7u8; 32]), "person").unwrap());
        let mut cached = CachedPseudonymiser::new(p.clone(), IdFormat::Text);
        // runs, returns to earlier values, blanks and nulls, over several batches
        let batches = [
            vec![Some("a"), Some("a"), Some("b"), Some("a"), None, Some("a")],
            vec![
                Some("a"),
                Some(""),
                Some("c"),
                Some("c"),
                Some("b"),
                Some("b"),
            ],
            vec![None, None, Some("b"), Some("a")],
        ];
        for values in batches {
            let input = StringArray::from(values);
            let got = cached.pseudonymise(&input).unwrap();
            let want = p.pseudonymise(&input, IdFormat::Text).unwrap();
            assert_eq!(got.array.as_ref(), want.array.as_ref());
            assert_eq!(got.failures.len(), want.failures.len());
        }
        assert!(cached.hits > 0);
    }

    #[test]
    fn long_values_near_misses_and_failures() {
        let key = MasterKey::from_bytes([9u8; 32]);
        let p = Arc::new(Pseudonymiser::new(&key, "encounter").unwrap());
        let long = "x".repeat(47);
        let longer = "x".repeat(48);
        let longest = format!("{}y", "x".repeat(99));
        let near = format!("{}z", "x".repeat(99));
        let text = [
            Some(long.as_str()),
            Some(longer.as_str()),
            Some(long.as_str()),
            Some(longest.as_str()),
            Some(near.as_str()),
            Some(longest.as_str()),
            Some("abcdefgh1"),
            Some("abcdefgh2"),
            Some("abcdefgh1"),
            Some(longer.as_str()),
        ];
        let uuids = [
            Some("6F9F3C2E-4C5B-4A6B-9C1D-2E3F4A5B6C7D"),
            Some("6f9f3c2e-4c5b-4a6b-9c1d-2e3f4a5b6c7d"),
            Some("not-a-uuid"),
            Some("6f9f3c2e-4c5b-4a6b-9c1d-2e3f4a5b6c7e"),
            Some("not-a-uuid"),
            Some(" 6f9f3c2e-4c5b-4a6b-9c1d-2e3f4a5b6c7d "),
            None,
            Some("not-a-uuid"),
        ];
        for (format, values) in [(IdFormat::Text, &text[..]), (IdFormat::Uuid, &uuids[..])] {
            let mut cached = CachedPseudonymiser::new(p.clone(), format);
            for _ in 0..3 {
                let input = StringArray::from(values.to_vec());
                let got = cached.pseudonymise(&input).unwrap();
                let want = p.pseudonymise(&input, format).unwrap();
                assert_eq!(got.array.as_ref(), want.array.as_ref(), "{format}");
                let rows = |o: &RuleOutput| o.failures.iter().map(|f| f.row).collect::<Vec<_>>();
                assert_eq!(rows(&got), rows(&want), "{format}");
            }
            assert!(cached.hits > 0);
        }
    }

    #[test]
    fn a_column_in_runs_keeps_only_the_previous_row() {
        let p = Arc::new(Pseudonymiser::new(&MasterKey::from_bytes([3u8; 32]), "person").unwrap());
        let mut cached = CachedPseudonymiser::new(p.clone(), IdFormat::Text);
        // runs of 4 of ever new values, then values seen long before
        let ids: Vec<String> = (0..SAMPLE_ROWS as usize * 2)
            .map(|i| format!("p{}", i / 4))
            .collect();
        let same_as_plain = |cached: &mut CachedPseudonymiser, input: &StringArray| {
            let got = cached.pseudonymise(input).unwrap();
            let want = p.pseudonymise(input, IdFormat::Text).unwrap();
            assert_eq!(got.array.as_ref(), want.array.as_ref());
        };
        for chunk in ids.chunks(8192) {
            same_as_plain(&mut cached, &StringArray::from_iter_values(chunk));
        }
        assert!(cached.enabled && !cached.use_table && cached.short.is_empty());
        same_as_plain(
            &mut cached,
            &StringArray::from_iter_values(["p7", "p7", "p1", "p9000"]),
        );
    }
}
