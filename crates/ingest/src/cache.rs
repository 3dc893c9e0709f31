//! Pseudonymising with a per-column memo: most identifier columns of event tables
//! (patient, provider, organisation, payer) repeat a few values many times, so each
//! distinct value is hashed once. A column whose values rarely repeat (a table's own
//! row ids) turns the memo off after a sample, so it costs nothing there.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::Array;
use dhub_deid::{IdFormat, Pseudonymiser, Reason, RuleError, RuleOutput};

/// Distinct values remembered per column before the memo is cleared.
const MAX_ENTRIES: usize = 1 << 18;
/// Rows sampled before deciding whether the memo pays.
const SAMPLE_ROWS: u64 = 1 << 16;

/// A memoised outcome: the 32 hex bytes of a pseudonym, `None` for a blank value, or why
/// the value failed.
type Memo = Result<Option<[u8; 32]>, Reason>;

/// A pseudonymiser for one column, with an adaptive memo of pseudonyms.
pub struct CachedPseudonymiser {
    p: Arc<Pseudonymiser>,
    format: IdFormat,
    /// foldhash: several times faster than SipHash on short keys; randomly seeded.
    memo: HashMap<Box<[u8]>, Memo, foldhash::fast::RandomState>,
    enabled: bool,
    rows: u64,
    hits: u64,
    /// The previous row's raw value and outcome: event tables come grouped by patient,
    /// so a value often repeats on the next row, found without hashing it.
    last: Vec<u8>,
    last_memo: Option<Memo>,
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
            memo: HashMap::default(),
            enabled: true,
            rows: 0,
            hits: 0,
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
        let format = self.format;
        let memo = &mut self.memo;
        let (last, last_memo) = (&mut self.last, &mut self.last_memo);
        let (mut rows, mut hits) = (0u64, 0u64);
        let out = p.pseudonymise_with(input, format, &mut |raw: &[u8],
                                                           compute: &mut dyn FnMut()
            -> Result<
            Option<[u8; 32]>,
            Reason,
        >| {
            rows += 1;
            if let Some(v) = last_memo
                && raw == last.as_slice()
            {
                hits += 1;
                return *v;
            }
            let v = if let Some(v) = memo.get(raw) {
                hits += 1;
                *v
            } else {
                let v = compute();
                if memo.len() >= MAX_ENTRIES {
                    memo.clear();
                }
                memo.insert(raw.into(), v);
                v
            };
            last.clear();
            last.extend_from_slice(raw);
            *last_memo = Some(v);
            v
        });
        self.rows += rows;
        self.hits += hits;
        if self.rows >= SAMPLE_ROWS && self.hits * 2 < self.rows {
            // values rarely repeat: hashing directly is cheaper than remembering
            self.enabled = false;
            self.memo = HashMap::default();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;
    use dhub_deid::MasterKey;

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
}
