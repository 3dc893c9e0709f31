//! The `keep` rule with a declared type ([`convert`]), and text into typed columns
//! (`keep` with a declared number or timestamp type, and the days of `truncate_date`'s
//! input), one value at a time, by an ingest's reading thread from a line's fields or
//! from a text column: the same [`TypedCol`] either way. Surrounding white space is
//! ignored, blank means null, and a value that does not convert is a row failure,
//! never a silent null.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray, new_null_array,
};
use arrow_buffer::{NullBufferBuilder, ScalarBuffer};
use arrow_cast::parse::Parser;
use arrow_schema::{DataType, TimeUnit};

use crate::error::Reason;
use crate::rules::{OutType, RowFailure, RuleOutput};
use crate::temporal::{self, Temporal};

/// A value without its surrounding white space; most values have none.
#[inline]
fn trimmed(v: &str) -> &str {
    match v.as_bytes() {
        [f, .., l] if f.is_ascii_graphic() && l.is_ascii_graphic() => v,
        [c] if c.is_ascii_graphic() => v,
        _ => v.trim(),
    }
}

/// A float: a plain decimal (`-123.45`, at most 15 digits) exactly, anything else with
/// Arrow's parser (what a cast accepts: exponents, `inf`, `NaN`, …).
#[inline]
fn parse_float(s: &str) -> Option<f64> {
    plain_decimal(s.as_bytes()).or_else(|| Float64Type::parse(s))
}

/// A typed column built by the reading thread straight from the fields of its rows (an
/// input that only typed rules read, see [`TypedInput`]): no text column is built for
/// it, and the rows that do not convert are kept as failures of the rule that reads it,
/// exactly as that rule would report them from the text column.
#[derive(Debug)]
pub struct TypedCol {
    values: TypedValues,
    /// The rule a value that does not convert fails.
    rule: &'static str,
    nulls: NullBufferBuilder,
    failures: Vec<RowFailure>,
    rows: usize,
}

#[derive(Debug)]
enum TypedValues {
    Float64(Vec<f64>),
    Int64(Vec<i64>),
    Int32(Vec<i32>),
    Timestamp(Vec<i64>),
    Days(Vec<i32>),
}

impl TypedValues {
    /// Appends a date or instant to a Timestamp (microseconds; a date is its midnight)
    /// or Days column (called only for those two).
    #[inline]
    fn push_temporal(&mut self, t: Temporal) {
        match self {
            TypedValues::Timestamp(v) => v.push(t.micros()),
            TypedValues::Days(v) => v.push(t.days()),
            TypedValues::Float64(_) | TypedValues::Int64(_) | TypedValues::Int32(_) => {}
        }
    }
}

/// How a reading thread builds an input column that only typed rules read (an ingest
/// decides which inputs qualify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedInput {
    /// `keep` with a declared type (Float64, Int64, Int32 or Timestamp): the output
    /// column itself.
    Keep(OutType),
    /// `truncate_date`: each date or instant as its UTC day (Date32), exactly as the
    /// rule reads a text column; a value that is not one fails `truncate_date`.
    Days,
}

impl TypedCol {
    /// A builder for `kind` (`None` for a `keep` type other than Float64, Int64, Int32
    /// or Timestamp).
    pub fn new(kind: TypedInput, cap: usize) -> Option<Self> {
        let (values, rule) = match kind {
            TypedInput::Keep(t) => (
                match t {
                    OutType::Float64 => TypedValues::Float64(Vec::with_capacity(cap)),
                    OutType::Int64 => TypedValues::Int64(Vec::with_capacity(cap)),
                    OutType::Int32 => TypedValues::Int32(Vec::with_capacity(cap)),
                    OutType::Timestamp => TypedValues::Timestamp(Vec::with_capacity(cap)),
                    OutType::String | OutType::Boolean | OutType::Date => return None,
                },
                "keep",
            ),
            TypedInput::Days => (TypedValues::Days(Vec::with_capacity(cap)), "truncate_date"),
        };
        Some(Self {
            values,
            rule,
            nulls: NullBufferBuilder::new(cap),
            failures: Vec::new(),
            rows: 0,
        })
    }

    /// Appends one field (bytes of a line that is valid UTF-8, cut at ASCII delimiters).
    #[inline]
    pub fn push(&mut self, field: &[u8]) {
        // the common shapes straight from the bytes (plain decimals, ISO dates and
        // instants without surrounding white space); anything else through the text path
        let fast = match (&mut self.values, field) {
            (TypedValues::Float64(v), _) => plain_decimal(field).map(|x| v.push(x)),
            (v @ (TypedValues::Timestamp(_) | TypedValues::Days(_)), [f, .., l])
                if f.is_ascii_digit() && l.is_ascii_graphic() =>
            {
                temporal::parse_temporal_bytes(field).map(|t| v.push_temporal(t))
            }
            _ => None,
        };
        if fast.is_some() {
            self.nulls.append_non_null();
            self.rows += 1;
            return;
        }
        match std::str::from_utf8(field) {
            Ok(text) => self.push_text(text),
            // (cannot happen: lines are checked first; refused, never a silent null)
            Err(_) => self.fail(),
        }
    }

    /// Appends one value: surrounding white space ignored, blank is null, a value that
    /// does not convert is a failure (and null).
    #[inline]
    pub fn push_text(&mut self, text: &str) {
        let text = trimmed(text);
        if text.is_empty() {
            return self.push_null();
        }
        let ok = match &mut self.values {
            TypedValues::Float64(v) => parse_float(text).map(|x| v.push(x)),
            TypedValues::Int64(v) => Int64Type::parse(text).map(|x| v.push(x)),
            TypedValues::Int32(v) => Int32Type::parse(text).map(|x| v.push(x)),
            v @ (TypedValues::Timestamp(_) | TypedValues::Days(_)) => {
                temporal::parse_temporal(text).map(|t| v.push_temporal(t))
            }
        };
        match ok {
            Some(()) => {
                self.nulls.append_non_null();
                self.rows += 1;
            }
            None => self.fail(),
        }
    }

    fn fail(&mut self) {
        let reason = match self.values {
            TypedValues::Timestamp(_) | TypedValues::Days(_) => Reason::UnparseableDate,
            _ => Reason::NotANumber,
        };
        self.failures.push(RowFailure {
            row: self.rows,
            rule: self.rule,
            reason,
        });
        self.push_null();
    }

    /// Appends a null.
    pub fn push_null(&mut self) {
        match &mut self.values {
            TypedValues::Float64(v) => v.push(0.0),
            TypedValues::Int64(v) | TypedValues::Timestamp(v) => v.push(0),
            TypedValues::Int32(v) | TypedValues::Days(v) => v.push(0),
        }
        self.nulls.append_null();
        self.rows += 1;
    }

    /// The column so far and its failures (row numbers from the last `finish`); the
    /// builder starts over, sized for as many rows.
    pub fn finish(&mut self) -> (ArrayRef, Vec<RowFailure>) {
        self.build(self.rows)
    }

    /// [`TypedCol::finish`], the next values sized for `cap` rows.
    fn build(&mut self, cap: usize) -> (ArrayRef, Vec<RowFailure>) {
        self.rows = 0;
        let nulls = self.nulls.finish();
        let array: ArrayRef = match &mut self.values {
            TypedValues::Float64(v) => Arc::new(Float64Array::new(
                ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap))),
                nulls,
            )),
            TypedValues::Int64(v) => Arc::new(Int64Array::new(
                ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap))),
                nulls,
            )),
            TypedValues::Int32(v) => Arc::new(Int32Array::new(
                ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap))),
                nulls,
            )),
            TypedValues::Timestamp(v) => Arc::new(
                TimestampMicrosecondArray::new(
                    ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap))),
                    nulls,
                )
                .with_timezone("UTC"),
            ),
            TypedValues::Days(v) => Arc::new(Date32Array::new(
                ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap))),
                nulls,
            )),
        };
        (array, std::mem::take(&mut self.failures))
    }
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

/// `keep` of a text column as a number or a timestamp (`None` for any other type):
/// each value as the reading thread reads a field (see [`TypedCol`]).
pub(crate) fn convert_text(input: &StringArray, t: OutType) -> Option<(ArrayRef, Vec<RowFailure>)> {
    let mut col = TypedCol::new(TypedInput::Keep(t), input.len())?;
    for v in input {
        match v {
            Some(text) => col.push_text(text),
            None => col.push_null(),
        }
    }
    Some(col.build(0))
}

/// `keep` with a declared type: converts the input, reporting rows that do not convert.
pub fn convert(input: &dyn Array, t: OutType) -> RuleOutput {
    let n = input.len();
    let is_text = matches!(
        input.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    let mut failures = Vec::new();
    let target = t.arrow();
    if input.data_type() == &target {
        return RuleOutput::ok(arrow_array::make_array(input.to_data()));
    }
    // text to numbers and timestamps in one pass (the common case of a CSV source)
    if let Some(s) = input.as_string_opt::<i32>()
        && let Some((array, failures)) = convert_text(s, t)
    {
        return RuleOutput { array, failures };
    }
    let array: ArrayRef = match (t, is_text) {
        (OutType::Date, true) => {
            let (days, f) = temporal::days_of(input, "keep").unwrap_or((vec![None; n], Vec::new()));
            failures = f;
            Arc::new(arrow_array::Date32Array::from(days))
        }
        (OutType::Timestamp, true) => {
            let strings = arrow_cast::cast(input, &DataType::Utf8)
                .unwrap_or_else(|_| new_null_array(&DataType::Utf8, n));
            let s = strings.as_string::<i32>();
            let mut v = Vec::with_capacity(n);
            for (i, x) in s.iter().enumerate() {
                v.push(match x.map(str::trim).filter(|x| !x.is_empty()) {
                    None => None,
                    Some(x) => match temporal::parse_temporal(x) {
                        Some(t) => Some(t.micros()),
                        None => {
                            failures.push(RowFailure {
                                row: i,
                                rule: "keep",
                                reason: Reason::UnparseableDate,
                            });
                            None
                        }
                    },
                });
            }
            Arc::new(arrow_array::TimestampMicrosecondArray::from(v).with_timezone("UTC"))
        }
        _ => {
            let target = match t {
                OutType::Timestamp => {
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                }
                _ => target,
            };
            let opts = arrow_cast::CastOptions {
                safe: true,
                ..Default::default()
            };
            // text: blank means null, and surrounding white space is ignored
            let trimmed: ArrayRef;
            let src: &dyn Array = if is_text {
                let s = arrow_cast::cast(input, &DataType::Utf8)
                    .unwrap_or_else(|_| new_null_array(&DataType::Utf8, n));
                let t: StringArray = s
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(str::trim).filter(|v| !v.is_empty()))
                    .collect();
                trimmed = Arc::new(t);
                trimmed.as_ref()
            } else {
                input
            };
            match arrow_cast::cast_with_options(src, &target, &opts) {
                Ok(out) => {
                    for i in 0..n {
                        if src.is_valid(i) && out.is_null(i) {
                            failures.push(RowFailure {
                                row: i,
                                rule: "keep",
                                reason: Reason::NotANumber,
                            });
                        }
                    }
                    out
                }
                Err(_) => {
                    for i in 0..n {
                        if src.is_valid(i) {
                            failures.push(RowFailure {
                                row: i,
                                rule: "keep",
                                reason: Reason::NotANumber,
                            });
                        }
                    }
                    new_null_array(&target, n)
                }
            }
        }
    };
    RuleOutput { array, failures }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringViewArray;
    use arrow_array::types::TimestampMicrosecondType;

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
        let (a, f) = convert_text(&input, OutType::Float64).unwrap();
        let got: Vec<_> = a.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(
            got,
            vec![Some(1.5), None, None, None, Some(2000.0), Some(-0.25)]
        );
        assert_eq!(f.iter().map(|f| f.row).collect::<Vec<_>>(), vec![3]);
        let (a, f) = convert_text(
            &StringArray::from(vec!["7", " -3 ", "1.5", ""]),
            OutType::Int32,
        )
        .unwrap();
        assert_eq!(
            a.as_primitive::<Int32Type>().iter().collect::<Vec<_>>(),
            vec![Some(7), Some(-3), None, None]
        );
        assert_eq!(f.iter().map(|f| f.row).collect::<Vec<_>>(), vec![2]);
        let (a, f) = convert_text(
            &StringArray::from(vec!["1970-01-02", "1970-01-01T00:00:01Z", "1970-13-01"]),
            OutType::Timestamp,
        )
        .unwrap();
        let got: Vec<_> = a
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect();
        assert_eq!(got, vec![Some(86_400_000_000), Some(1_000_000), None]);
        assert_eq!(f.iter().map(|f| f.row).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn typed_columns_read_fields_as_the_text_path_converts_them() {
        assert!(convert_text(&StringArray::from(vec!["1"]), OutType::String).is_none());
        let fields: Vec<&str> = vec![
            "12.5",
            " 7 ",
            "",
            "   ",
            "\u{a0}3\u{a0}",
            "x",
            "1e3",
            "-0",
            "2147483648",
            "-42",
            "2019-03-04",
            "2019-03-04T05:06:07Z",
            "2019-02-30",
            " 2019-03-04T05:06:07+01:00",
            "1.",
            ".5",
            "inf",
            "1234567.891",
            "-0.000001",
            "2019-03-04 05:06:07",
            "2019-03-04T05:06:07.25Z",
            "2019-03-04T05:06:07Z ",
            "2019-03-04T25:06:07Z",
            "2019-03-04T05:06:07-05:00",
            "20190304",
        ];
        // the text path: a CSV field that is empty is a null
        let text = StringArray::from(
            fields
                .iter()
                .map(|f| (!f.is_empty()).then_some(*f))
                .collect::<Vec<_>>(),
        );
        for t in [
            OutType::Float64,
            OutType::Int64,
            OutType::Int32,
            OutType::Timestamp,
        ] {
            let mut col = TypedCol::new(TypedInput::Keep(t), 4).unwrap();
            for _ in 0..2 {
                for f in &fields {
                    col.push(f.as_bytes());
                }
                let (got, got_failures) = col.finish();
                // the reference: `keep`'s general path, which a text column that is not
                // Utf8 takes (trimmed copy, then an Arrow cast or the ISO parser)
                let view: ArrayRef = Arc::new(StringViewArray::from_iter(text.iter()));
                let RuleOutput {
                    array: want,
                    failures: want_failures,
                } = convert(view.as_ref(), t);
                assert_eq!(got.as_ref(), want.as_ref(), "{t:?}");
                let rows =
                    |f: &[RowFailure]| f.iter().map(|f| (f.row, f.reason)).collect::<Vec<_>>();
                assert_eq!(rows(&got_failures), rows(&want_failures), "{t:?}");
                assert!(!got_failures.is_empty());
            }
        }
        assert!(TypedCol::new(TypedInput::Keep(OutType::String), 4).is_none());
        assert!(TypedCol::new(TypedInput::Keep(OutType::Date), 4).is_none());

        // the days `truncate_date` reads: what it makes of the text column
        let mut col = TypedCol::new(TypedInput::Days, 4).unwrap();
        for f in &fields {
            col.push(f.as_bytes());
        }
        let (got, got_failures) = col.finish();
        let (want, want_failures) = temporal::days_of(&text, "truncate_date").unwrap();
        assert_eq!(
            got.as_primitive::<arrow_array::types::Date32Type>()
                .iter()
                .collect::<Vec<_>>(),
            want
        );
        let rows = |f: &[RowFailure]| {
            f.iter()
                .map(|f| (f.row, f.rule, f.reason))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(&got_failures), rows(&want_failures));
        assert!(!got_failures.is_empty());
    }
}
