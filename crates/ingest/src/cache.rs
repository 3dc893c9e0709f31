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
        let (mut rows, mut hits) = (0u64, 0u64);
        let out = p.pseudonymise_with(input, format, &mut |raw: &[u8],
                                                           compute: &mut dyn FnMut()
            -> Result<
            Option<[u8; 32]>,
            Reason,
        >| {
            rows += 1;
            if let Some(v) = memo.get(raw) {
                hits += 1;
                return *v;
            }
            let v = compute();
            if memo.len() >= MAX_ENTRIES {
                memo.clear();
            }
            memo.insert(raw.into(), v);
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
