//! Location rules: UK postcodes (`generalise_postcode`) and US ZIP codes (`zip3`).

use std::sync::Arc;

use arrow_array::Array;
use arrow_array::builder::StringBuilder;

use crate::error::{Reason, RuleError};
use crate::rules::{RowFailure, RuleOutput, visit_strings};

/// How much of a UK postcode `generalise_postcode` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostcodeLevel {
    /// The outward code: `SW1A 1AA` → `SW1A` (about 8,000 areas of ~3,000 households).
    Outward,
    /// The sector: `SW1A 1AA` → `SW1A 1` (about 12,000 sectors).
    Sector,
}

/// A validated, normalised UK postcode: outward code and inward code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postcode {
    buf: [u8; 7],
    outward_len: usize,
    len: usize,
}

impl Postcode {
    /// Parses a UK postcode, ignoring case and spaces, checking the format
    /// (outward `A9`, `A99`, `AA9`, `AA99`, `A9A`, `AA9A`, or `GIR`; inward `9AA`).
    ///
    /// ```
    /// use dhub_deid::geo::Postcode;
    /// let p = Postcode::parse("sw1a1aa").unwrap();
    /// assert_eq!((p.outward(), p.sector().as_str()), ("SW1A", "SW1A 1"));
    /// assert!(Postcode::parse("SW1A 1A").is_none());
    /// ```
    pub fn parse(raw: &str) -> Option<Self> {
        let mut buf = [0u8; 7];
        let mut len = 0;
        for c in raw.trim().bytes() {
            if c == b' ' {
                continue;
            }
            if len == 7 || !c.is_ascii_alphanumeric() {
                return None;
            }
            buf[len] = c.to_ascii_uppercase();
            len += 1;
        }
        if len < 5 {
            return None;
        }
        let outward_len = len - 3;
        let (out, inw) = buf[..len].split_at(outward_len);
        let a = |c: u8| c.is_ascii_uppercase();
        let d = |c: u8| c.is_ascii_digit();
        let inward_ok = d(inw[0])
            && a(inw[1])
            && a(inw[2])
            && !b"CIKMOV".contains(&inw[1])
            && !b"CIKMOV".contains(&inw[2]);
        let outward_ok = match *out {
            [x, y] => a(x) && d(y),
            [x, y, z] => {
                (a(x) && d(y) && d(z))
                    || (a(x) && a(y) && d(z))
                    || (a(x) && d(y) && a(z))
                    || out == *b"GIR"
            }
            [w, x, y, z] => (a(w) && a(x) && d(y) && d(z)) || (a(w) && a(x) && d(y) && a(z)),
            _ => false,
        };
        // the first letter of a postcode area is never Q, V or X
        (inward_ok && outward_ok && !b"QVX".contains(&out[0])).then_some(Self {
            buf,
            outward_len,
            len,
        })
    }

    /// The outward code (`SW1A`).
    pub fn outward(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.outward_len]).unwrap_or_default()
    }

    /// The sector (`SW1A 1`).
    pub fn sector(&self) -> String {
        format!(
            "{} {}",
            self.outward(),
            char::from(self.buf[self.outward_len])
        )
    }

    /// The full postcode in its standard form (`SW1A 1AA`).
    pub fn full(&self) -> String {
        let inward = std::str::from_utf8(&self.buf[self.outward_len..self.len]).unwrap_or_default();
        format!("{} {}", self.outward(), inward)
    }
}

/// `generalise_postcode`: keeps the outward code or the sector of each UK postcode.
/// A value that is not a UK postcode fails with [`Reason::MalformedPostcode`]. Output Utf8.
pub fn generalise_postcode(
    array: &dyn Array,
    level: PostcodeLevel,
) -> Result<RuleOutput, RuleError> {
    const RULE: &str = "generalise_postcode";
    let mut b = StringBuilder::with_capacity(array.len(), array.len() * 6);
    let mut failures = Vec::new();
    let mut sector = [0u8; 6];
    visit_strings(array, RULE, |row, v| {
        let Some(v) = v.filter(|s| !s.trim().is_empty()) else {
            b.append_null();
            return;
        };
        match Postcode::parse(v) {
            Some(p) => match level {
                PostcodeLevel::Outward => b.append_value(p.outward()),
                PostcodeLevel::Sector => {
                    let n = p.outward_len;
                    sector[..n].copy_from_slice(&p.buf[..n]);
                    sector[n] = b' ';
                    sector[n + 1] = p.buf[n];
                    b.append_value(std::str::from_utf8(&sector[..n + 2]).unwrap_or_default());
                }
            },
            None => {
                failures.push(RowFailure::new(row, RULE, Reason::MalformedPostcode));
                b.append_null();
            }
        }
    })?;
    Ok(RuleOutput {
        array: Arc::new(b.finish()),
        failures,
    })
}

/// Three-digit ZIP prefixes whose area holds 20,000 people or fewer; HIPAA safe harbor
/// (45 CFR 164.514(b)(2)(i)(B)) requires them to become `000`. This is the union of the
/// lists published for the 2000 and the 2010 US census, so a prefix restricted under
/// either is never released.
pub const RESTRICTED_ZIP3: [&str; 21] = [
    "036", "059", "063", "102", "203", "205", "369", "556", "692", "753", "772", "790", "821",
    "823", "830", "831", "878", "879", "884", "890", "893",
];

/// The safe-harbor three-digit ZIP of one value: `Ok(None)` for blank, `Err` when the
/// value is not a 5-digit ZIP or ZIP+4 (`12345-6789` or `123456789`).
///
/// A ZIP of 3 or 4 digits is one that lost its leading zeros on the way through a
/// spreadsheet or a numeric column (Synthea's own exports hold `1850` for `01850`): it is
/// padded back to 5 digits before the prefix is taken, since no other reading exists.
pub fn zip3_of(raw: &str) -> Result<Option<[u8; 3]>, Reason> {
    let t = raw.trim().as_bytes();
    if t.is_empty() {
        return Ok(None);
    }
    let ok = match t.len() {
        3..=5 | 9 => t.iter().all(u8::is_ascii_digit),
        10 => t[5] == b'-' && t[..5].iter().chain(&t[6..]).all(u8::is_ascii_digit),
        _ => false,
    };
    if !ok {
        return Err(Reason::MalformedZip);
    }
    let mut five = [b'0'; 5];
    if t.len() < 5 {
        five[5 - t.len()..].copy_from_slice(t);
    } else {
        five.copy_from_slice(&t[..5]);
    }
    let p = [five[0], five[1], five[2]];
    if RESTRICTED_ZIP3.iter().any(|r| r.as_bytes() == p) {
        Ok(Some(*b"000"))
    } else {
        Ok(Some(p))
    }
}

/// `zip3`: the first three digits of each US ZIP code, `000` for restricted prefixes
/// ([`RESTRICTED_ZIP3`]). Integer columns, and text ZIPs of 3 or 4 digits, are read as
/// ZIPs that lost their leading zeros. Output Utf8.
///
/// ```
/// use arrow_array::{StringArray, cast::AsArray};
/// let a = StringArray::from(vec![Some("02155"), Some("03601-1234"), Some(""), Some("2155"), Some("2155-x")]);
/// let o = dhub_deid::geo::zip3(&a).unwrap();
/// let v: Vec<_> = o.array.as_string::<i32>().iter().collect();
/// assert_eq!(v, vec![Some("021"), Some("000"), None, Some("021"), None]);
/// assert_eq!(o.failures.len(), 1); // "2155-x" is not a ZIP
/// ```
pub fn zip3(array: &dyn Array) -> Result<RuleOutput, RuleError> {
    const RULE: &str = "zip3";
    let is_int = array.data_type().is_integer();
    let mut b = StringBuilder::with_capacity(array.len(), array.len() * 3);
    let mut failures = Vec::new();
    let mut padded = [b'0'; 5];
    visit_strings(array, RULE, |row, v| {
        let Some(mut v) = v else {
            b.append_null();
            return;
        };
        if is_int && v.len() < 5 && !v.starts_with('-') {
            padded = [b'0'; 5];
            padded[5 - v.len()..].copy_from_slice(v.as_bytes());
            v = std::str::from_utf8(&padded).unwrap_or_default();
        }
        match zip3_of(v) {
            Ok(Some(z)) => b.append_value(std::str::from_utf8(&z).unwrap_or_default()),
            Ok(None) => b.append_null(),
            Err(reason) => {
                failures.push(RowFailure::new(row, RULE, reason));
                b.append_null();
            }
        }
    })?;
    Ok(RuleOutput {
        array: Arc::new(b.finish()),
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::{Int64Array, StringArray};

    #[test]
    fn postcode_formats() {
        for (raw, out, sec) in [
            ("M1 1AE", "M1", "M1 1"),
            ("m60 1nw", "M60", "M60 1"),
            ("CR2 6XH", "CR2", "CR2 6"),
            ("DN55 1PT", "DN55", "DN55 1"),
            ("W1A 1HQ", "W1A", "W1A 1"),
            ("EC1A1BB", "EC1A", "EC1A 1"),
            (" LS1  4AP ", "LS1", "LS1 4"),
        ] {
            let p = Postcode::parse(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(p.outward(), out);
            assert_eq!(p.sector(), sec);
        }
        for bad in [
            "",
            "M1",
            "12345",
            "SW1A 1A",
            "SW1A-1AA",
            "SW1A 1CA",
            "QA1 1AA",
            "AAAA 1AA",
            "SW1A 1AAA",
            "ＳＷ1A 1AA",
        ] {
            assert!(Postcode::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Postcode::parse("sw1a 1aa").unwrap().full(), "SW1A 1AA");
    }

    #[test]
    fn generalise_column() {
        let a = StringArray::from(vec![Some("LS1 4AP"), None, Some("bogus"), Some(" ")]);
        let o = generalise_postcode(&a, PostcodeLevel::Sector).unwrap();
        let v: Vec<_> = o.array.as_string::<i32>().iter().collect();
        assert_eq!(v, vec![Some("LS1 4"), None, None, None]);
        assert_eq!(
            o.failures,
            vec![RowFailure::new(2, RULE_PC, Reason::MalformedPostcode)]
        );
    }
    const RULE_PC: &str = "generalise_postcode";

    #[test]
    fn zip3_restricted_and_malformed() {
        for r in RESTRICTED_ZIP3 {
            assert_eq!(zip3_of(&format!("{r}12")), Ok(Some(*b"000")));
        }
        assert_eq!(zip3_of("90210"), Ok(Some(*b"902")));
        // leading zeros lost to a numeric column
        assert_eq!(zip3_of("1850"), Ok(Some(*b"018")));
        assert_eq!(zip3_of("3601"), Ok(Some(*b"000")), "03601 is restricted");
        assert_eq!(zip3_of("501"), Ok(Some(*b"005")));
        assert!(zip3_of("12").is_err());
        assert!(zip3_of("123456").is_err());
        assert_eq!(zip3_of("902101234"), Ok(Some(*b"902")));
        assert_eq!(zip3_of(" "), Ok(None));
        for bad in ["90210-12", "9021O", "902101", "abcde", "12"] {
            assert_eq!(zip3_of(bad), Err(Reason::MalformedZip), "{bad}");
        }
        let ints = Int64Array::from(vec![Some(2155), Some(3601), None]);
        let o = zip3(&ints).unwrap();
        let v: Vec<_> = o.array.as_string::<i32>().iter().collect();
        assert_eq!(v, vec![Some("021"), Some("000"), None]);
    }
}
