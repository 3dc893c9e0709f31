//! Text columns into typed ones (`keep` with a declared number or timestamp type), in
//! one pass over the values: surrounding white space ignored, blank means null, and a
//! value that does not convert is a row failure, never a silent null.

use arrow_array::types::{Float64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray, StringArray};
use arrow_buffer::{NullBufferBuilder, ScalarBuffer};
use arrow_cast::parse::Parser;
use dhub_deid::temporal::{self, Temporal};
use dhub_deid::{Reason, RowFailure};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A value without its surrounding white space; most values have none.
#[inline]
fn trimmed(v: &str) -> &str {
    match v.as_bytes() {
        [f, .., l] if f.is_ascii_graphic() && l.is_ascii_graphic() => v,
        [c] if c.is_ascii_graphic() => v,
        _ => v.trim(),
    }
}

/// Parses every value of `input` with `parse`: nulls and blanks give null, a value
/// `parse` refuses gives null and a failure with `reason`.
fn parse_column<T: ArrowPrimitiveType>(
    input: &StringArray,
    reason: Reason,
    mut parse: impl FnMut(&str) -> Option<T::Native>,
) -> (PrimitiveArray<T>, Vec<RowFailure>) {
    let n = input.len();
    let mut values = Vec::with_capacity(n);
    let mut nulls = NullBufferBuilder::new(n);
    let mut failures = Vec::new();
    for (row, v) in input.iter().enumerate() {
        let parsed = match v.map(trimmed) {
            None | Some("") => None,
            Some(s) => {
                let p = parse(s);
                if p.is_none() {
                    failures.push(RowFailure {
                        row,
                        rule: "keep",
                        reason,
                    });
                }
                p
            }
        };
        match parsed {
            Some(x) => {
                values.push(x);
                nulls.append_non_null();
            }
            None => {
                values.push(T::Native::default());
                nulls.append_null();
            }
        }
    }
    let array = PrimitiveArray::<T>::new(ScalarBuffer::from(values), nulls.finish());
    (array, failures)
}

/// Integers: `T`'s Arrow parser (what a cast accepts).
pub(crate) fn integers<T: ArrowPrimitiveType + Parser>(
    input: &StringArray,
) -> (PrimitiveArray<T>, Vec<RowFailure>) {
    parse_column::<T>(input, Reason::NotANumber, T::parse)
}

/// Floats: a plain decimal (`-123.45`, at most 15 digits) exactly, anything else with
/// Arrow's parser (what a cast accepts: exponents, `inf`, `NaN`, …).
pub(crate) fn floats(input: &StringArray) -> (PrimitiveArray<Float64Type>, Vec<RowFailure>) {
    parse_column::<Float64Type>(input, Reason::NotANumber, |s| {
        plain_decimal(s.as_bytes()).or_else(|| Float64Type::parse(s))
    })
}

/// Powers of ten that are exact in an f64.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `-?digits[.digits]` with at most 15 digits in all: the digits as an integer are exact
/// in an f64 (< 2^53), and so is the power of ten, so one IEEE division gives the
/// correctly rounded value, the same a full parser gives. `None` for anything else.
#[inline]
fn plain_decimal(b: &[u8]) -> Option<f64> {
    let (neg, b) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    if b.is_empty() || b.len() > 16 || !b[0].is_ascii_digit() {
        return None;
    }
    let mut mantissa = 0u64;
    let mut point = None;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            mantissa = mantissa * 10 + u64::from(c - b'0');
        } else if c == b'.' && point.is_none() {
            point = Some(i);
        } else {
            return None;
        }
    }
    let scale = match point {
        None if b.len() <= 15 => 0,
        Some(i) if i + 1 < b.len() => b.len() - i - 1,
        _ => return None,
    };
    let v = mantissa as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// Timestamps (microseconds, UTC) of ISO date or date-time text; a bare date is
/// midnight UTC.
pub(crate) fn timestamps(
    input: &StringArray,
) -> (PrimitiveArray<TimestampMicrosecondType>, Vec<RowFailure>) {
    parse_column::<TimestampMicrosecondType>(input, Reason::UnparseableDate, |s| {
        match temporal::parse_temporal(s)? {
            Temporal::Timestamp(us) => Some(us),
            Temporal::Date(d) => Some(i64::from(d) * MICROS_PER_DAY),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals_match_the_full_parser() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "1",
            "0.1",
            "0.3",
            "123.45",
            "-123.45",
            "999999999999999",
            "99999999999999.9",
            "0.000000000000001",
            "1.0",
            "00012.50",
            "7.",
            ".5",
            "-",
            "1e3",
            "1.2.3",
            "+1",
            "9999999999999999",
            "1234567890123456",
            "0.1234567890123456",
            "12a",
            "--1",
            "inf",
            "NaN",
            "-.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // a deterministic spread of shapes: digits before and after the point
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let int_digits = (x % 12) as usize;
            let frac_digits = ((x >> 8) % 9) as usize;
            let digits = format!("{:020}", x >> 3);
            let mut s = String::new();
            if x & 1 == 1 {
                s.push('-');
            }
            s.push_str(&digits[..int_digits.max(1)]);
            if frac_digits > 0 {
                s.push('.');
                s.push_str(&digits[20 - frac_digits..]);
            }
            cases.push(s);
        }
        let mut fast = 0;
        for s in &cases {
            let full = Float64Type::parse(s);
            if let Some(v) = plain_decimal(s.as_bytes()) {
                fast += 1;
                let full = full.unwrap_or_else(|| panic!("{s} parsed only by the fast path"));
                assert_eq!(v.to_bits(), full.to_bits(), "{s}");
            }
        }
        assert!(fast > 150_000, "the fast path took only {fast} cases");
    }

    #[test]
    fn columns_trim_blank_to_null_and_report_failures() {
        let input = StringArray::from(vec![
            Some(" 1.5"),
            None,
            Some("  "),
            Some("x"),
            Some("2e3 "),
            Some("-0.25"),
        ]);
        let (a, f) = floats(&input);
        let got: Vec<_> = a.iter().collect();
        assert_eq!(
            got,
            vec![Some(1.5), None, None, None, Some(2000.0), Some(-0.25)]
        );
        assert_eq!(f.iter().map(|f| f.row).collect::<Vec<_>>(), vec![3]);
        let (a, f) = integers::<arrow_array::types::Int32Type>(&StringArray::from(vec![
            "7", " -3 ", "1.5", "",
        ]));
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![Some(7), Some(-3), None, None]
        );
        assert_eq!(f.iter().map(|f| f.row).collect::<Vec<_>>(), vec![2]);
        let (a, f) = timestamps(&StringArray::from(vec![
            "1970-01-02",
            "1970-01-01T00:00:01Z",
            "1970-13-01",
        ]));
        let got: Vec<_> = a.iter().collect();
        assert_eq!(got, vec![Some(MICROS_PER_DAY), Some(1_000_000), None]);
        assert_eq!(f.iter().map(|f| f.row).collect::<Vec<_>>(), vec![2]);
    }
}
