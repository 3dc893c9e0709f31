//! Keyed pseudonyms (DESIGN.md): the first 16 bytes of
//! `HMAC-SHA256(K("pseudonym:<entity>"), normalised value)`, as 32 lowercase hex characters.

use std::fmt;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, StringArray};
use arrow_buffer::{Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use ring::hmac;

use crate::domain::Domain;
use crate::error::{Reason, RuleError};
use crate::key::{DomainKey, MasterKey, hex_into};
use crate::nhs;
use crate::rules::{RowFailure, RuleOutput, visit_strings};

/// What a memo for [`Pseudonymiser::pseudonymise_with`] holds for one raw value: the
/// 32 hex bytes of its pseudonym, `None` for a blank value, or why it failed.
pub type MemoResult = Result<Option<[u8; PSEUDONYM_LEN]>, Reason>;

/// Length of a pseudonym in characters.
pub const PSEUDONYM_LEN: usize = 32;

/// How a source identifier is normalised before it is hashed. The same value must
/// normalise the same way in every table and every run, so joins keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdFormat {
    /// Surrounding white space trimmed; nothing else changes.
    #[default]
    Text,
    /// A UUID (8-4-4-4-12 hex digits), trimmed and lower-cased; anything else is refused.
    Uuid,
    /// An NHS number: trimmed, inner spaces and hyphens removed, modulus-11 checked.
    NhsNumber,
}

impl std::str::FromStr for IdFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "uuid" => Ok(Self::Uuid),
            "nhs_number" | "nhs-number" | "nhs" => Ok(Self::NhsNumber),
            other => Err(format!(
                "unknown identifier format `{other}`; use text, uuid or nhs_number"
            )),
        }
    }
}

impl fmt::Display for IdFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Uuid => "uuid",
            Self::NhsNumber => "nhs_number",
        })
    }
}

const LANES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// 0x80 in each byte of `x` that is strictly between `lo` and `hi` (and below 0x80),
/// 0 in the others; `lo` and `hi` at most 127 and 128. No lane borrows from or carries
/// into another: (127 + hi) - (x & 127) never goes below 0, and (x & 127) + (127 - lo)
/// never reaches 256.
#[inline]
fn between(x: u64, lo: u8, hi: u8) -> u64 {
    let low7 = x & (LANES * 127);
    ((LANES * (127 + u64::from(hi))).wrapping_sub(low7)
        & !x
        & (low7 + LANES * (127 - u64::from(lo))))
        & HIGH
}

/// Checks a UUID (8-4-4-4-12 hex digits, either case) and writes it lower-cased into
/// `out`, eight bytes at a time; `false` when it is not one.
#[inline]
fn lower_uuid(b: &[u8; 36], out: &mut [u8; 36]) -> bool {
    // 8-byte words at these offsets cover the 36 bytes (the last two overlap); the
    // hyphens' lanes in each
    const WORDS: [(usize, u64); 5] = [
        (0, 0),
        (8, 0x80 | 0x80 << 40),
        (16, 0x80 << 16 | 0x80 << 56),
        (24, 0),
        (28, 0),
    ];
    let mut ok = true;
    for (at, hyphens) in WORDS {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        let x = u64::from_le_bytes(w);
        // letters to lower case; digits and hyphens already have that bit
        let lower = x | (LANES * 0x20);
        let hex = between(x, b'0' - 1, b'9' + 1) | between(lower, b'a' - 1, b'f' + 1);
        let hyphen = between(x, b'-' - 1, b'-' + 1);
        ok &= (hex | hyphens) == HIGH && hyphen & hyphens == hyphens;
        out[at..at + 8].copy_from_slice(&lower.to_le_bytes());
    }
    ok
}

/// Scratch space for one normalised value: lives on the stack, so normalising does not
/// allocate. Text values are borrowed, not copied.
struct Normalised {
    buf: [u8; 36],
}

impl Normalised {
    fn new() -> Self {
        Self { buf: [0; 36] }
    }

    /// The normalised bytes of `raw`, or `None` for a blank value (treated as null).
    #[inline]
    fn apply<'a>(&'a mut self, raw: &'a str, format: IdFormat) -> Result<Option<&'a [u8]>, Reason> {
        // Fast path: most identifiers start and end with a visible ASCII character.
        let t = match raw.as_bytes() {
            [f, .., l] if (0x21..0x7f).contains(f) && (0x21..0x7f).contains(l) => raw,
            _ => raw.trim(),
        };
        if t.is_empty() {
            return Ok(None);
        }
        match format {
            IdFormat::Text => Ok(Some(t.as_bytes())),
            IdFormat::Uuid => {
                let b: &[u8; 36] = t.as_bytes().try_into().map_err(|_| Reason::InvalidUuid)?;
                if !lower_uuid(b, &mut self.buf) {
                    return Err(Reason::InvalidUuid);
                }
                Ok(Some(&self.buf[..36]))
            }
            IdFormat::NhsNumber => match nhs::normalise(t) {
                Some(d) => {
                    self.buf[..10].copy_from_slice(&d);
                    Ok(Some(&self.buf[..10]))
                }
                None => Err(Reason::InvalidNhsNumber),
            },
        }
    }
}

/// Normalises one identifier as the pseudonymiser would, returning the normalised
/// text (for tools that list or compare identifiers; never log it).
pub fn normalise_id(raw: &str, format: IdFormat) -> Result<Option<String>, Reason> {
    let mut n = Normalised::new();
    Ok(n.apply(raw, format)?
        .map(|b| String::from_utf8_lossy(b).into_owned()))
}

/// Pseudonyms for one entity (`person`, `encounter`, `provider`, …), or for a project
/// (`project:<id>`, re-keying research pseudonyms). The HMAC key is computed once.
///
/// ```
/// use dhub_deid::{IdFormat, MasterKey, Pseudonymiser};
/// let key = MasterKey::from_bytes([1u8; 32]);
/// let p = Pseudonymiser::new(&key, "person").unwrap();
/// let a = p.pseudonym(" 943 476 5919", IdFormat::NhsNumber).unwrap().unwrap();
/// let b = p.pseudonym("943-476-5919", IdFormat::NhsNumber).unwrap().unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.len(), 32);
/// assert!(p.pseudonym("9434765918", IdFormat::NhsNumber).is_err());
/// ```
pub struct Pseudonymiser {
    domain: Domain,
    key: hmac::Key,
}

impl fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymiser")
            .field("domain", &self.domain.to_string())
            .finish_non_exhaustive()
    }
}

impl Pseudonymiser {
    /// The pseudonymiser of `entity`, keyed with `K("pseudonym:<entity>")`.
    pub fn new(master: &MasterKey, entity: &str) -> Result<Self, RuleError> {
        Ok(Self::from_domain_key(
            &master.domain_key(&Domain::pseudonym(entity)?),
        ))
    }

    /// The project re-keying pseudonymiser, keyed with `K("project:<id>")`.
    pub fn for_project(master: &MasterKey, project: &str) -> Result<Self, RuleError> {
        Ok(Self::from_domain_key(
            &master.domain_key(&Domain::project(project)?),
        ))
    }

    /// A pseudonymiser over any domain key.
    pub fn from_domain_key(key: &DomainKey) -> Self {
        Self {
            domain: key.domain().clone(),
            key: key.hmac_key(),
        }
    }

    /// The domain this pseudonymiser is keyed for.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The pseudonym of already-normalised bytes, as 32 lowercase hex ASCII bytes.
    #[inline]
    pub fn pseudonym_of_normalised(&self, normalised: &[u8]) -> [u8; PSEUDONYM_LEN] {
        let tag = hmac::sign(&self.key, normalised);
        let mut out = [0u8; PSEUDONYM_LEN];
        hex_into(&tag.as_ref()[..PSEUDONYM_LEN / 2], &mut out);
        out
    }

    /// The pseudonym of one raw value: `Ok(None)` for a blank value, `Err` with the
    /// reason when the value does not normalise under `format`.
    pub fn pseudonym(&self, raw: &str, format: IdFormat) -> Result<Option<String>, Reason> {
        let mut n = Normalised::new();
        Ok(n.apply(raw, format)?
            .map(|b| String::from_utf8_lossy(&self.pseudonym_of_normalised(b)).into_owned()))
    }

    /// The pseudonym of one raw value as hex bytes: `Ok(None)` for blank.
    #[inline]
    fn hash_raw(
        &self,
        raw: &str,
        format: IdFormat,
        scratch: &mut Normalised,
    ) -> Result<Option<[u8; PSEUDONYM_LEN]>, Reason> {
        Ok(scratch
            .apply(raw, format)?
            .map(|b| self.pseudonym_of_normalised(b)))
    }

    /// Pseudonymises a column (Utf8, LargeUtf8, Utf8View or integer) into a Utf8
    /// column of 32-character pseudonyms. Nulls and blank values stay null; a value that
    /// does not normalise becomes null and is reported in [`RuleOutput::failures`].
    ///
    /// The hot loop does not allocate per value: each value is normalised on the stack
    /// and its pseudonym hexed straight into the output buffer.
    pub fn pseudonymise(
        &self,
        array: &dyn Array,
        format: IdFormat,
    ) -> Result<RuleOutput, RuleError> {
        self.run(
            array,
            format,
            None::<fn(&[u8], &mut dyn FnMut() -> MemoResult) -> MemoResult>,
        )
    }

    /// Like [`Pseudonymiser::pseudonymise`], but asks `memo` for each raw value first:
    /// `memo(raw, compute)` returns the remembered result for `raw` or calls `compute`
    /// (normalise and hash) and may remember it. Lets callers hash each distinct value
    /// of a low-cardinality column once.
    pub fn pseudonymise_with<M>(
        &self,
        array: &dyn Array,
        format: IdFormat,
        memo: M,
    ) -> Result<RuleOutput, RuleError>
    where
        M: FnMut(&[u8], &mut dyn FnMut() -> MemoResult) -> MemoResult,
    {
        self.run(array, format, Some(memo))
    }

    fn run<M>(
        &self,
        array: &dyn Array,
        format: IdFormat,
        mut memo: Option<M>,
    ) -> Result<RuleOutput, RuleError>
    where
        M: FnMut(&[u8], &mut dyn FnMut() -> MemoResult) -> MemoResult,
    {
        let len = array.len();
        let cap = len
            .checked_mul(PSEUDONYM_LEN)
            .filter(|&c| c <= i32::MAX as usize);
        let Some(cap) = cap else {
            return Err(RuleError::BadParameter {
                rule: "pseudonymise",
                message: format!(
                    "a batch of {len} rows is too large; use batches under 60 million rows"
                ),
            });
        };
        let mut values: Vec<u8> = Vec::with_capacity(cap);
        let mut offsets: Vec<i32> = Vec::with_capacity(len + 1);
        offsets.push(0);
        let mut nulls = NullBufferBuilder::new(len);
        let mut failures = Vec::new();
        let mut scratch = Normalised::new();
        visit_strings(array, "pseudonymise", |row, v| {
            let result = match (v, memo.as_mut()) {
                (None, _) => Ok(None),
                (Some(raw), None) => self.hash_raw(raw, format, &mut scratch),
                (Some(raw), Some(m)) => m(raw.as_bytes(), &mut || {
                    self.hash_raw(raw, format, &mut scratch)
                }),
            };
            match result {
                Ok(Some(hex)) => {
                    values.extend_from_slice(&hex);
                    nulls.append_non_null();
                }
                Ok(None) => nulls.append_null(),
                Err(reason) => {
                    failures.push(RowFailure::new(row, "pseudonymise", reason));
                    nulls.append_null();
                }
            }
            // `values.len() <= cap <= i32::MAX`, checked above.
            offsets.push(values.len() as i32);
        })?;
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let nulls = nulls.finish();
        if offsets.len() != len + 1 || nulls.as_ref().is_some_and(|n| n.len() != len) {
            return Err(RuleError::BadParameter {
                rule: "pseudonymise",
                message: "internal error: output length mismatch".into(),
            });
        }
        // SAFETY (the one justified `unsafe` of dhub-deid): `StringArray::try_new` would
        // re-scan every output byte for UTF-8 validity, a measurable share of the hot
        // loop. Every byte in `values` comes from `HEX_PAIRS` (ASCII `0-9a-f`), so the
        // buffer is valid UTF-8; `offsets` start at 0, never decrease (each value appends
        // 0 or 32 bytes) and end at `values.len()`, which is at most `i32::MAX` (checked
        // above); its length and that of `nulls` equal `len + 1` and `len` (checked just
        // above). Those are the invariants `new_unchecked` requires.
        #[allow(unsafe_code)]
        let out = unsafe { StringArray::new_unchecked(offsets, Buffer::from_vec(values), nulls) };
        Ok(RuleOutput {
            array: Arc::new(out) as ArrayRef,
            failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lower-cases a hex digit; everything else maps to 0x80 (invalid).
    const HEX_LOWER: [u8; 256] = {
        let mut t = [0x80u8; 256];
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            t[c] = match b {
                b'0'..=b'9' | b'a'..=b'f' => b,
                b'A'..=b'F' => b + 32,
                _ => 0x80,
            };
            c += 1;
        }
        t
    };

    /// The byte-at-a-time check `lower_uuid` replaced.
    fn reference(b: &[u8; 36]) -> Option<[u8; 36]> {
        if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        let mut out = [0u8; 36];
        let mut bad = 0u8;
        for (start, end) in [(0, 8), (9, 13), (14, 18), (19, 23), (24, 36)] {
            for (&c, o) in b[start..end].iter().zip(&mut out[start..end]) {
                let l = HEX_LOWER[usize::from(c)];
                bad |= l;
                *o = l;
            }
        }
        for i in [8, 13, 18, 23] {
            out[i] = b'-';
        }
        (bad & 0x80 == 0).then_some(out)
    }

    #[test]
    fn word_at_a_time_uuids_match_the_byte_at_a_time_check() {
        let base = *b"6F9f3c2e-4C5b-4a6b-9c1d-2e3f4A5b6c7D";
        // every byte value at every position, then random mixes of tricky bytes
        let mut cases = vec![base];
        for pos in 0..36 {
            for v in 0..=255u8 {
                let mut c = base;
                c[pos] = v;
                cases.push(c);
            }
        }
        let tricky = b"0189afAFgG-/:@`{ \x7f\x80\xc3\xff";
        let mut x: u64 = 0x0DDB_1A5E_5BAD_5EED;
        for _ in 0..50_000 {
            let mut c = base;
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c[(x % 36) as usize] = tricky[((x >> 8) % tricky.len() as u64) as usize];
            }
            cases.push(c);
        }
        let mut valid = 0;
        for c in &cases {
            let mut out = [0u8; 36];
            let got = lower_uuid(c, &mut out).then_some(out);
            assert_eq!(got, reference(c), "{:?}", String::from_utf8_lossy(c));
            valid += usize::from(got.is_some());
        }
        assert!(valid > 1000 && valid < cases.len() / 2, "{valid}");
    }
}
