//! Per-person date shifts (DESIGN.md, "Pseudonyms and keys"): the keyed half of the
//! `date_shift` rule. [`DateShifter`] gives each person (by research pseudonym) one
//! whole number of days under `K("date-shift")`; the rule itself, which moves a
//! column's dates by its rows' shifts, is [`date_shift`](crate::temporal::date_shift).

use std::collections::HashMap;
use std::fmt;

use arrow_array::StringArray;
use ring::hmac;

use crate::domain::Domain;
use crate::error::RuleError;
use crate::key::MasterKey;

/// Per-person date shifts: a whole number of days in `[-range, +range]`, taken from
/// `HMAC-SHA256(K("date-shift"), person pseudonym)`: the first 8 bytes of the tag as a
/// big-endian unsigned integer `v`, shift = `v mod (2·range + 1) − range`. The same
/// person gets the same shift for every date, in every table and run.
pub struct DateShifter {
    key: hmac::Key,
    range: u32,
}

impl fmt::Debug for DateShifter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DateShifter")
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl DateShifter {
    /// Largest supported range, in days (about 27 years).
    pub const MAX_RANGE: u32 = 10_000;

    /// A shifter over `[-range, +range]` days, keyed with `K("date-shift")`
    /// ([`Domain::DateShift`]).
    pub fn new(master: &MasterKey, range: u32) -> Result<Self, RuleError> {
        if range == 0 || range > Self::MAX_RANGE {
            return Err(RuleError::BadParameter {
                rule: "date_shift",
                message: format!(
                    "range must be between 1 and {} days, got {range}",
                    Self::MAX_RANGE
                ),
            });
        }
        Ok(Self {
            key: master.domain_key(&Domain::DateShift).hmac_key(),
            range,
        })
    }

    /// The range in days.
    pub fn range(&self) -> u32 {
        self.range
    }

    /// The shift in days of the person with this pseudonym (its 32 hex characters).
    pub fn shift_days(&self, person_pseudonym: &str) -> i32 {
        let tag = hmac::sign(&self.key, person_pseudonym.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        let v = u64::from_be_bytes(first);
        let span = 2 * u64::from(self.range) + 1;
        // v % span <= 2 * MAX_RANGE, which fits i32.
        (v % span) as i32 - self.range as i32
    }

    /// Per-row shifts for a column of person pseudonyms (`None` where it is null).
    pub fn shifts(&self, persons: &StringArray) -> Vec<Option<i32>> {
        persons
            .iter()
            .map(|p| p.map(|p| self.shift_days(p)))
            .collect()
    }

    /// [`DateShifter::shifts`], computing each person's shift once per call (event
    /// tables repeat a person over many rows).
    pub fn shifts_memoised(&self, persons: &StringArray) -> Vec<Option<i32>> {
        let mut memo: HashMap<&str, i32> = HashMap::new();
        persons
            .iter()
            .map(|p| p.map(|p| *memo.entry(p).or_insert_with(|| self.shift_days(p))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_spread_over_the_whole_range() {
        let key = MasterKey::from_bytes([9u8; 32]);
        let s = DateShifter::new(&key, 3).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..500 {
            seen.insert(s.shift_days(&format!("{i:032x}")));
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            vec![-3, -2, -1, 0, 1, 2, 3]
        );
    }

    #[test]
    fn memoised_shifts_equal_the_plain_ones() {
        let s = DateShifter::new(&MasterKey::from_bytes([5u8; 32]), 50).unwrap();
        let ps = StringArray::from(vec![Some("a"), Some("b"), Some("a"), None, Some("b")]);
        assert_eq!(s.shifts_memoised(&ps), s.shifts(&ps));
    }
}
