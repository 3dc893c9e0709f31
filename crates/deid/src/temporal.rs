//! Date rules: `date_shift`, `truncate_date`, `age_band`, and the ISO date parser they
//! share for text columns. The per-person shifts `date_shift` applies are keyed, and
//! made in [`crate::shift`].
//!
//! Dates are handled as days since 1970-01-01 (Arrow's Date32) and date-times as UTC
//! instants. Text values must be `YYYY-MM-DD` or `YYYY-MM-DD[T ]HH:MM[:SS[.fff…]]`
//! with an optional `Z` or `±hh[:]mm` offset (no offset means UTC).

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, Int32Array, PrimitiveArray, TimestampMicrosecondArray,
};
use arrow_buffer::{NullBufferBuilder, ScalarBuffer};
use arrow_schema::{DataType, TimeUnit};
use chrono::{Datelike, NaiveDate};

use crate::error::{Reason, RuleError};
use crate::rules::{RowFailure, RuleOutput, visit_strings};

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// A parsed temporal value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    /// A calendar date, as days since 1970-01-01.
    Date(i32),
    /// A UTC instant, as microseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
}

impl Temporal {
    /// The calendar day (UTC) of this value, as days since 1970-01-01.
    pub fn days(self) -> i32 {
        match self {
            Temporal::Date(d) => d,
            Temporal::Timestamp(us) => {
                i32::try_from(us.div_euclid(MICROS_PER_DAY)).unwrap_or(i32::MAX)
            }
        }
    }

    /// This value as microseconds since 1970-01-01T00:00:00Z (a date is its midnight,
    /// UTC).
    ///
    /// ```
    /// use dhub_deid::temporal::Temporal;
    /// assert_eq!(Temporal::Date(1).micros(), 86_400_000_000);
    /// assert_eq!(Temporal::Timestamp(5).micros(), 5);
    /// ```
    pub fn micros(self) -> i64 {
        match self {
            Temporal::Date(d) => i64::from(d) * MICROS_PER_DAY,
            Temporal::Timestamp(us) => us,
        }
    }
}

/// The number written by `b`, which must be all ASCII digits (and not empty).
#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut acc = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc = acc * 10 + u32::from(d);
    }
    Some(acc)
}

/// Years a date may have (chrono's `NaiveDate` range, so every day here converts).
const YEARS: std::ops::RangeInclusive<i32> = -262_143..=262_142;

const fn is_leap(y: i32) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

const MONTH_DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// Days since 1970-01-01 of a valid date (the proleptic Gregorian calendar in 400-year
/// eras; years start on 1 March, so the leap day is the last of its year).
const fn civil_days(y: i32, m: u32, d: u32) -> i64 {
    let y = y as i64 - (m <= 2) as i64;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = ((m + 9) % 12) as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// First year of [`YEAR_STARTS`].
const TABLE_FROM: i32 = 1850;
/// 1 January of each year from [`TABLE_FROM`] on, as days since 1970-01-01: the years
/// nearly every record's dates fall in are a lookup away.
const YEAR_STARTS: [i32; 256] = {
    let mut t = [0i32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = civil_days(TABLE_FROM + i as i32, 1, 1) as i32;
        i += 1;
    }
    t
};
/// Days before each month in a common year.
const MONTH_STARTS: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/// Days since 1970-01-01 of a civil date, if it exists.
///
/// ```
/// use dhub_deid::temporal::days_from_ymd;
/// assert_eq!(days_from_ymd(1970, 1, 1), Some(0));
/// assert_eq!(days_from_ymd(2000, 2, 29), Some(11_016));
/// assert_eq!(days_from_ymd(1900, 2, 29), None);
/// ```
#[inline]
pub fn days_from_ymd(y: i32, m: u32, d: u32) -> Option<i32> {
    if !(1..=12).contains(&m) || d == 0 || !YEARS.contains(&y) {
        return None;
    }
    let leap = is_leap(y);
    if d > MONTH_DAYS[m as usize - 1] + u32::from(m == 2 && leap) {
        return None;
    }
    if let Some(&start) = YEAR_STARTS.get(y.wrapping_sub(TABLE_FROM) as usize) {
        let after_feb = u32::from(m > 2 && leap);
        return Some(start + (MONTH_STARTS[m as usize - 1] + after_feb + d - 1) as i32);
    }
    i32::try_from(civil_days(y, m, d)).ok()
}

/// The civil year, month and day of a day count (the inverse of [`days_from_ymd`]),
/// if it is within the date range.
///
/// ```
/// use dhub_deid::temporal::ymd_from_days;
/// assert_eq!(ymd_from_days(0), Some((1970, 1, 1)));
/// assert_eq!(ymd_from_days(-1), Some((1969, 12, 31)));
/// ```
pub fn ymd_from_days(days: i32) -> Option<(i32, u32, u32)> {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).ok()?;
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).ok()?;
    let y = i32::try_from(yoe + era * 400 + i64::from(m <= 2)).ok()?;
    YEARS.contains(&y).then_some((y, m, d))
}

/// The civil date of a day count.
pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_DAYS_FROM_CE)?)
}

/// Parses an ISO date or date-time (see the module docs). `None` when it is not one.
///
/// ```
/// use dhub_deid::temporal::{parse_temporal, Temporal};
/// assert_eq!(parse_temporal("1970-01-02"), Some(Temporal::Date(1)));
/// assert_eq!(parse_temporal("1970-01-01T00:00:01Z"), Some(Temporal::Timestamp(1_000_000)));
/// assert_eq!(parse_temporal("1970-01-01T01:00:00+01:00"), Some(Temporal::Timestamp(0)));
/// assert_eq!(parse_temporal("2019-13-45"), None);
/// ```
pub fn parse_temporal(s: &str) -> Option<Temporal> {
    let b = match s.as_bytes() {
        // most values have no surrounding white space
        [f, .., l] if f.is_ascii_digit() && l.is_ascii_graphic() => s.as_bytes(),
        _ => s.trim().as_bytes(),
    };
    parse_temporal_bytes(b)
}

/// [`parse_temporal`] of bytes that have no surrounding white space (a field cut from
/// a line, say): the accepted shapes are all ASCII, so no UTF-8 check is needed first.
/// White space around the value is not trimmed here and makes it unparseable.
///
/// ```
/// use dhub_deid::temporal::{parse_temporal, parse_temporal_bytes};
/// let s = "2019-03-04T10:11:12Z";
/// assert_eq!(parse_temporal_bytes(s.as_bytes()), parse_temporal(s));
/// assert_eq!(parse_temporal_bytes(b" 2019-03-04"), None);
/// ```
#[inline]
pub fn parse_temporal_bytes(b: &[u8]) -> Option<Temporal> {
    match parse_utc_seconds(b) {
        Some(t) => Some(t),
        None => parse_general(b),
    }
}

/// Every shape [`parse_temporal_bytes`] accepts, field by field.
fn parse_general(b: &[u8]) -> Option<Temporal> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = i32::try_from(digits(&b[0..4])?).ok()?;
    let days = days_from_ymd(y, digits(&b[5..7])?, digits(&b[8..10])?)?;
    if b.len() == 10 {
        return Some(Temporal::Date(days));
    }
    if !matches!(b[10], b'T' | b' ') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let h = digits(&b[11..13])?;
    let mi = digits(&b[14..16])?;
    let mut i = 16;
    let mut sec = 0;
    let mut micros = 0u32;
    if b.get(i) == Some(&b':') {
        sec = digits(b.get(i + 1..i + 3)?)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let frac = &b[start..i];
            if frac.is_empty() {
                return None;
            }
            for (k, &d) in frac.iter().take(6).enumerate() {
                micros += u32::from(d - b'0') * 10u32.pow(5 - k as u32);
            }
        }
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let offset_secs: i64 = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (oh, om) = match rest {
                [a, b2, b':', c, d] => (digits(&[*a, *b2])?, digits(&[*c, *d])?),
                [a, b2, c, d] => (digits(&[*a, *b2])?, digits(&[*c, *d])?),
                [a, b2] => (digits(&[*a, *b2])?, 0),
                _ => return None,
            };
            if oh > 18 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = i64::from(h * 3600 + mi * 60 + sec) - offset_secs;
    Some(Temporal::Timestamp(
        i64::from(days) * MICROS_PER_DAY + secs * 1_000_000 + i64::from(micros),
    ))
}

/// The most common shape, `YYYY-MM-DDTHH:MM:SSZ`, read at fixed positions: `Some` when
/// `b` has that shape with digits where digits go and is a valid instant (the result
/// [`parse_temporal`] gives it), `None` to take the general path (which also rejects
/// what is not valid).
#[inline]
fn parse_utc_seconds(b: &[u8]) -> Option<Temporal> {
    let b: &[u8; 20] = b.try_into().ok()?;
    // The whole shape checked a word at a time: each byte XOR its template byte is
    // 0..=9 where a digit goes ('0' in the template) and 0 where a separator goes; the
    // per-byte addend (0x76 for a digit, 0x7f for a separator) sets a byte's top bit
    // exactly when it is out of range (a byte already >= 0x80 is caught by `| x`, and
    // only such a byte can carry into its neighbour).
    const T0: u64 = u64::from_le_bytes(*b"0000-00-");
    const T1: u64 = u64::from_le_bytes(*b"00T00:00");
    const T2: u64 = u32::from_le_bytes(*b":00Z") as u64;
    const A0: u64 = u64::from_le_bytes([0x76, 0x76, 0x76, 0x76, 0x7f, 0x76, 0x76, 0x7f]);
    const A1: u64 = u64::from_le_bytes([0x76, 0x76, 0x7f, 0x76, 0x76, 0x7f, 0x76, 0x76]);
    const A2: u64 = u32::from_le_bytes([0x7f, 0x76, 0x76, 0x7f]) as u64;
    let (w0, w1, w2) = {
        let (a, rest) = b.split_first_chunk::<8>()?;
        let (c, rest) = rest.split_first_chunk::<8>()?;
        let e: &[u8; 4] = rest.try_into().ok()?;
        (
            u64::from_le_bytes(*a),
            u64::from_le_bytes(*c),
            u64::from(u32::from_le_bytes(*e)),
        )
    };
    let out_of_range = |w: u64, t: u64, add: u64| {
        let x = w ^ t;
        (x.wrapping_add(add) | x) & 0x8080_8080_8080_8080
    };
    if out_of_range(w0, T0, A0) | out_of_range(w1, T1, A1) | out_of_range(w2, T2, A2) != 0 {
        return None;
    }
    let d = |i: usize| u32::from(b[i] - b'0');
    let two = |i: usize| d(i) * 10 + d(i + 1);
    let (y, m, day) = (two(0) * 100 + two(2), two(5), two(8));
    let (h, mi, sec) = (two(11), two(14), two(17));
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_ymd(y as i32, m, day)?;
    let secs = i64::from(h * 3600 + mi * 60 + sec);
    Some(Temporal::Timestamp(
        i64::from(days) * MICROS_PER_DAY + secs * 1_000_000,
    ))
}

/// What a text column holds, for rules whose output keeps the column's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextDates {
    /// Dates: output Date32 (a time of day, if present, is dropped).
    #[default]
    Date,
    /// Date-times: output `Timestamp(Microsecond, "UTC")` (a bare date is midnight UTC).
    Timestamp,
}

/// The unit `truncate_date` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateUnit {
    /// 1 January of the year.
    Year,
    /// The first of the month.
    Month,
}

/// What `truncate_date` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TruncateOutput {
    /// A Date32 (first day of the year or month).
    #[default]
    Date,
    /// The year as an Int32 (only with [`DateUnit::Year`]).
    YearNumber,
}

const TEMPORAL_HINT: &str =
    "it takes Date32, Date64, Timestamp or ISO date text (Utf8, LargeUtf8, Utf8View) columns";

/// Per-row calendar days (UTC) of any temporal or text column, with the rows whose
/// text does not parse.
pub fn days_of(
    array: &dyn Array,
    rule: &'static str,
) -> Result<(Vec<Option<i32>>, Vec<RowFailure>), RuleError> {
    fn ts_days<T: arrow_array::ArrowPrimitiveType<Native = i64>>(
        a: &dyn Array,
        per_day: i64,
    ) -> Vec<Option<i32>> {
        a.as_primitive::<T>()
            .iter()
            .map(|v| v.and_then(|v| i32::try_from(v.div_euclid(per_day)).ok()))
            .collect()
    }
    let mut failures = Vec::new();
    let days = match array.data_type() {
        DataType::Date32 => array.as_primitive::<Date32Type>().iter().collect(),
        DataType::Date64 => ts_days::<Date64Type>(array, 86_400_000),
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => ts_days::<TimestampSecondType>(array, 86_400),
            TimeUnit::Millisecond => ts_days::<TimestampMillisecondType>(array, 86_400_000),
            TimeUnit::Microsecond => ts_days::<TimestampMicrosecondType>(array, MICROS_PER_DAY),
            TimeUnit::Nanosecond => {
                ts_days::<TimestampNanosecondType>(array, MICROS_PER_DAY * 1000)
            }
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut out = Vec::with_capacity(array.len());
            visit_strings(array, rule, |row, v| {
                out.push(match v.map(str::trim).filter(|s| !s.is_empty()) {
                    None => None,
                    Some(s) => match parse_temporal(s) {
                        Some(t) => Some(t.days()),
                        None => {
                            failures.push(RowFailure::new(row, rule, Reason::UnparseableDate));
                            None
                        }
                    },
                });
            })?;
            out
        }
        other => {
            return Err(RuleError::UnsupportedType {
                rule,
                data_type: other.clone(),
                hint: TEMPORAL_HINT,
            });
        }
    };
    Ok((days, failures))
}

/// `truncate_date`: keeps only the year or the year and month of every value.
///
/// ```
/// use arrow_array::{StringArray, cast::AsArray, types::Int32Type};
/// use dhub_deid::temporal::{truncate_date, DateUnit, TruncateOutput};
/// let a = StringArray::from(vec!["1987-06-15", "1987-06-15T10:00:00Z"]);
/// let o = truncate_date(&a, DateUnit::Year, TruncateOutput::YearNumber).unwrap();
/// assert_eq!(o.array.as_primitive::<Int32Type>().values().to_vec(), vec![1987, 1987]);
/// ```
pub fn truncate_date(
    array: &dyn Array,
    unit: DateUnit,
    output: TruncateOutput,
) -> Result<RuleOutput, RuleError> {
    truncate_date_floored(array, unit, output, None)
}

/// [`truncate_date`] with a floor: a date before `floor` (days since 1970-01-01) is
/// raised to `floor` before it is truncated. This is how ages over 89 are top-coded
/// under HIPAA safe harbor when only the birth year is released: with `floor` set to
/// 1 January of (release year − 90), everyone aged 90 or over shares one birth year,
/// which reads "that year or earlier".
///
/// ```
/// use arrow_array::{Array, Int32Array, StringArray, cast::AsArray, types::Int32Type};
/// use dhub_deid::temporal::{DateUnit, TruncateOutput, days_from_ymd, truncate_date_floored};
/// let births = StringArray::from(vec![Some("1930-05-17"), Some("1981-02-03"), None]);
/// let floor = days_from_ymd(1936, 1, 1);
/// let o = truncate_date_floored(&births, DateUnit::Year, TruncateOutput::YearNumber, floor).unwrap();
/// let years: Vec<_> = o.array.as_primitive::<Int32Type>().iter().collect();
/// assert_eq!(years, vec![Some(1936), Some(1981), None]);
/// ```
pub fn truncate_date_floored(
    array: &dyn Array,
    unit: DateUnit,
    output: TruncateOutput,
    floor: Option<i32>,
) -> Result<RuleOutput, RuleError> {
    if output == TruncateOutput::YearNumber && unit != DateUnit::Year {
        return Err(RuleError::BadParameter {
            rule: "truncate_date",
            message: "a year-number output needs unit = \"year\"".into(),
        });
    }
    let (days, mut failures) = days_of(array, "truncate_date")?;
    let n = days.len();
    let mut out: Vec<i32> = Vec::with_capacity(n);
    let mut nulls = NullBufferBuilder::new(n);
    for (row, d) in days.into_iter().enumerate() {
        let Some(d) = d else {
            out.push(0);
            nulls.append_null();
            continue;
        };
        let d = floor.map_or(d, |f| d.max(f));
        let t = ymd_from_days(d).and_then(|(y, _, day)| match unit {
            DateUnit::Year => days_from_ymd(y, 1, 1).map(|d| (d, y)),
            // the first of the month is `day - 1` days back
            DateUnit::Month => Some((d - (day as i32 - 1), y)),
        });
        match t {
            Some((start, year)) => {
                out.push(match output {
                    TruncateOutput::Date => start,
                    TruncateOutput::YearNumber => year,
                });
                nulls.append_non_null();
            }
            None => {
                failures.push(RowFailure::new(
                    row,
                    "truncate_date",
                    Reason::DateOutOfRange,
                ));
                out.push(0);
                nulls.append_null();
            }
        }
    }
    failures.sort_by_key(|f| f.row);
    let (out, nulls) = (ScalarBuffer::from(out), nulls.finish());
    let array: ArrayRef = match output {
        TruncateOutput::Date => Arc::new(Date32Array::new(out, nulls)),
        TruncateOutput::YearNumber => Arc::new(Int32Array::new(out, nulls)),
    };
    Ok(RuleOutput { array, failures })
}

/// `date_shift`: moves every value by its row's shift (see [`DateShifter`](crate::DateShifter)). Date32,
/// Date64 and Timestamp columns keep their type and time of day; text is parsed as
/// `text` says. A non-null value whose row has no shift (no person) fails with
/// [`Reason::NoPerson`].
pub fn date_shift(
    array: &dyn Array,
    shifts: &[Option<i32>],
    text: TextDates,
) -> Result<RuleOutput, RuleError> {
    const RULE: &str = "date_shift";
    if shifts.len() != array.len() {
        return Err(RuleError::LengthMismatch {
            rule: RULE,
            left: array.len(),
            right: shifts.len(),
        });
    }
    let mut failures = Vec::new();
    fn shift_prim<T: arrow_array::ArrowPrimitiveType>(
        a: &dyn Array,
        shifts: &[Option<i32>],
        failures: &mut Vec<RowFailure>,
        per_day: i64,
        conv: impl Fn(T::Native) -> i64,
        back: impl Fn(i64) -> Option<T::Native>,
    ) -> PrimitiveArray<T> {
        let a = a.as_primitive::<T>();
        let out: PrimitiveArray<T> = a
            .iter()
            .zip(shifts)
            .enumerate()
            .map(|(row, (v, s))| {
                let v = v?;
                let Some(s) = s else {
                    failures.push(RowFailure::new(row, RULE, Reason::NoPerson));
                    return None;
                };
                let r = conv(v).checked_add(i64::from(*s) * per_day).and_then(&back);
                if r.is_none() {
                    failures.push(RowFailure::new(row, RULE, Reason::DateOutOfRange));
                }
                r
            })
            .collect();
        out.with_data_type(a.data_type().clone())
    }
    let out: ArrayRef = match array.data_type() {
        DataType::Date32 => Arc::new(shift_prim::<Date32Type>(
            array,
            shifts,
            &mut failures,
            1,
            i64::from,
            |v| i32::try_from(v).ok(),
        )),
        DataType::Date64 => Arc::new(shift_prim::<Date64Type>(
            array,
            shifts,
            &mut failures,
            86_400_000,
            |v| v,
            Some,
        )),
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => Arc::new(shift_prim::<TimestampSecondType>(
                array,
                shifts,
                &mut failures,
                86_400,
                |v| v,
                Some,
            )),
            TimeUnit::Millisecond => Arc::new(shift_prim::<TimestampMillisecondType>(
                array,
                shifts,
                &mut failures,
                86_400_000,
                |v| v,
                Some,
            )),
            TimeUnit::Microsecond => Arc::new(shift_prim::<TimestampMicrosecondType>(
                array,
                shifts,
                &mut failures,
                MICROS_PER_DAY,
                |v| v,
                Some,
            )),
            TimeUnit::Nanosecond => Arc::new(shift_prim::<TimestampNanosecondType>(
                array,
                shifts,
                &mut failures,
                MICROS_PER_DAY * 1000,
                |v| v,
                Some,
            )),
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut vals: Vec<Option<i64>> = Vec::with_capacity(array.len());
            visit_strings(array, RULE, |row, v| {
                let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else {
                    vals.push(None);
                    return;
                };
                let Some(t) = parse_temporal(s) else {
                    failures.push(RowFailure::new(row, RULE, Reason::UnparseableDate));
                    vals.push(None);
                    return;
                };
                let Some(shift) = shifts[row] else {
                    failures.push(RowFailure::new(row, RULE, Reason::NoPerson));
                    vals.push(None);
                    return;
                };
                let r = match (text, t) {
                    (TextDates::Date, t) => Some(i64::from(t.days()) + i64::from(shift)),
                    (TextDates::Timestamp, Temporal::Date(d)) => {
                        (i64::from(d) + i64::from(shift)).checked_mul(MICROS_PER_DAY)
                    }
                    (TextDates::Timestamp, Temporal::Timestamp(us)) => {
                        us.checked_add(i64::from(shift) * MICROS_PER_DAY)
                    }
                };
                if r.is_none() {
                    failures.push(RowFailure::new(row, RULE, Reason::DateOutOfRange));
                }
                vals.push(r);
            })?;
            match text {
                TextDates::Date => Arc::new(Date32Array::from(
                    vals.into_iter()
                        .map(|v| v.and_then(|v| i32::try_from(v).ok()))
                        .collect::<Vec<_>>(),
                )),
                TextDates::Timestamp => {
                    Arc::new(TimestampMicrosecondArray::from(vals).with_timezone("UTC"))
                }
            }
        }
        other => {
            return Err(RuleError::UnsupportedType {
                rule: RULE,
                data_type: other.clone(),
                hint: TEMPORAL_HINT,
            });
        }
    };
    Ok(RuleOutput {
        array: out,
        failures,
    })
}

/// The date at which `age_band` measures age.
#[derive(Debug, Clone, Copy)]
pub enum AgeAt<'a> {
    /// A fixed date for every row (days since 1970-01-01), e.g. the extract date.
    Date(i32),
    /// Each row's event date, from another column of the same batch.
    Column(&'a dyn Array),
}

/// Age in whole years on `at` of someone born on `birth`, or `None` if `at < birth`.
pub fn age_years(birth: NaiveDate, at: NaiveDate) -> Option<u32> {
    if at < birth {
        return None;
    }
    let mut age = at.year() - birth.year();
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    u32::try_from(age).ok()
}

/// `age_band`: the age on the event date, in bands of `width` years (`"40-44"`, or
/// `"37"` when `width` is 1), with every age at or above `top` in one band (`"90+"`).
/// Output is Utf8; a birth date after the event date fails with [`Reason::NegativeAge`].
///
/// ```
/// use arrow_array::{StringArray, cast::AsArray};
/// use dhub_deid::temporal::{age_band, days_from_ymd, AgeAt};
/// let births = StringArray::from(vec!["1980-06-01", "1920-01-01"]);
/// let at = days_from_ymd(2024, 5, 31).unwrap();
/// let o = age_band(&births, AgeAt::Date(at), 5, Some(90)).unwrap();
/// let v: Vec<_> = o.array.as_string::<i32>().iter().flatten().collect();
/// assert_eq!(v, vec!["40-44", "90+"]);
/// ```
pub fn age_band(
    birth: &dyn Array,
    at: AgeAt<'_>,
    width: u32,
    top: Option<u32>,
) -> Result<RuleOutput, RuleError> {
    const RULE: &str = "age_band";
    if width == 0 || width > 100 {
        return Err(RuleError::BadParameter {
            rule: RULE,
            message: format!("width must be between 1 and 100 years, got {width}"),
        });
    }
    let (births, mut failures) = days_of(birth, RULE)?;
    let ats: Vec<Option<i32>> = match at {
        AgeAt::Date(d) => vec![Some(d); births.len()],
        AgeAt::Column(c) => {
            if c.len() != births.len() {
                return Err(RuleError::LengthMismatch {
                    rule: RULE,
                    left: births.len(),
                    right: c.len(),
                });
            }
            let (d, f) = days_of(c, RULE)?;
            failures.extend(f);
            d
        }
    };
    let failed: std::collections::HashSet<usize> = failures.iter().map(|f| f.row).collect();
    let mut b = StringBuilder::with_capacity(births.len(), births.len() * 5);
    let mut label = String::with_capacity(12);
    for (row, (bd, ad)) in births.iter().zip(&ats).enumerate() {
        let (Some(bd), Some(ad)) = (bd, ad) else {
            b.append_null();
            continue;
        };
        if failed.contains(&row) {
            b.append_null();
            continue;
        }
        let age = date_from_days(*bd)
            .zip(date_from_days(*ad))
            .and_then(|(b0, a0)| age_years(b0, a0));
        let Some(age) = age else {
            failures.push(RowFailure::new(row, RULE, Reason::NegativeAge));
            b.append_null();
            continue;
        };
        label.clear();
        use std::fmt::Write;
        match top {
            Some(t) if age >= t => {
                let _ = write!(label, "{t}+");
            }
            _ => {
                let lo = age / width * width;
                let hi = lo + width - 1;
                let hi = top.map_or(hi, |t| hi.min(t.saturating_sub(1)));
                if width == 1 || lo == hi {
                    let _ = write!(label, "{lo}");
                } else {
                    let _ = write!(label, "{lo}-{hi}");
                }
            }
        }
        b.append_value(&label);
    }
    failures.sort_by_key(|f| f.row);
    failures.dedup_by_key(|f| f.row);
    Ok(RuleOutput {
        array: Arc::new(b.finish()),
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DateShifter, MasterKey};
    use arrow_array::StringArray;
    use arrow_array::types::Int32Type;

    #[test]
    fn civil_days_agree_with_chrono() {
        let to_chrono = |d: i32| date_from_days(d).map(|nd| (nd.year(), nd.month(), nd.day()));
        // every day of 1600-2400, and a stride over the whole range, both directions
        let days = (-135_000..160_000).chain((-95_000_000..95_000_000).step_by(99_991));
        for d in days.chain([-95_833_000, 95_000_000, i32::MIN, i32::MAX]) {
            let ymd = ymd_from_days(d);
            assert_eq!(ymd, to_chrono(d), "day {d}");
            if let Some((y, m, dd)) = ymd {
                assert_eq!(days_from_ymd(y, m, dd), Some(d), "{y}-{m}-{dd}");
            }
        }
        for y in (-400..2500).chain([-262_144, -262_143, 262_142, 262_143, i32::MIN, i32::MAX]) {
            for m in 0..=13 {
                for d in 0..=32 {
                    let chrono = NaiveDate::from_ymd_opt(y, m, d)
                        .map(|nd| nd.num_days_from_ce() - EPOCH_DAYS_FROM_CE);
                    assert_eq!(days_from_ymd(y, m, d), chrono, "{y}-{m}-{d}");
                }
            }
        }
    }

    #[test]
    fn the_fixed_shape_reads_like_the_general_parser() {
        // the same instant written in the fixed shape and with an explicit offset (which
        // takes the general path), valid or not
        let mut x: u64 = 0x1234_5678_9ABC_DEF1;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = |k: u32, m: u64| (x >> k) % m;
            let s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                1800 + f(0, 400),
                f(9, 14),
                f(13, 33),
                f(19, 26),
                f(25, 62),
                f(31, 62)
            );
            let fixed = format!("{s}Z");
            let general = parse_temporal(&format!("{s}+00:00"));
            // the fixed shape answers every valid instant itself
            assert_eq!(parse_utc_seconds(fixed.as_bytes()), general, "{fixed}");
            assert_eq!(parse_temporal(&fixed), general, "{fixed}");
        }
        // one byte replaced (any byte value, at every position): the fixed shape
        // answers only what the general path answers
        let good = *b"2019-03-04T10:11:12Z";
        for i in 0..good.len() {
            for v in 0..=255u8 {
                let mut b = good;
                b[i] = v;
                if let Some(t) = parse_utc_seconds(&b) {
                    assert_eq!(Some(t), parse_general(&b), "{b:?}");
                }
                assert_eq!(parse_temporal_bytes(&b), parse_general(&b), "{b:?}");
            }
        }
        for bad in [
            "2019-01-01T0a:00:00Z",
            "2019-01-01 00:00:00Z",
            "2019-02-29T00:00:00Z",
        ] {
            assert_eq!(parse_temporal(bad).is_some(), bad.contains(' '), "{bad}");
        }
    }

    #[test]
    fn parse_accepts_the_iso_shapes() {
        let base = days_from_ymd(2019, 3, 4).unwrap();
        assert_eq!(parse_temporal("2019-03-04"), Some(Temporal::Date(base)));
        let us = i64::from(base) * MICROS_PER_DAY + (10 * 3600 + 11 * 60 + 12) * 1_000_000;
        for s in [
            "2019-03-04T10:11:12Z",
            "2019-03-04 10:11:12",
            "2019-03-04T11:11:12+01:00",
            "2019-03-04T09:11:12-0100",
        ] {
            assert_eq!(parse_temporal(s), Some(Temporal::Timestamp(us)), "{s}");
        }
        assert_eq!(
            parse_temporal("2019-03-04T10:11:12.5Z"),
            Some(Temporal::Timestamp(us + 500_000))
        );
        assert_eq!(
            parse_temporal("2019-03-04T10:11Z"),
            Some(Temporal::Timestamp(us - 12_000_000))
        );
    }

    #[test]
    fn parse_refuses_non_dates() {
        for s in [
            "",
            "2019-13-45",
            "31/02/2019",
            "not-a-date",
            "2019-02-29",
            "2019-3-4",
            "2019-03-04T25:00:00Z",
            "2019-03-04X10:00:00",
            "2019-03-04T10:00:00Q",
            "20190304",
            "2019-03-04T10:00:00.Z",
            "１９９０-01-01",
        ] {
            assert_eq!(parse_temporal(s), None, "{s:?}");
        }
    }

    #[test]
    fn truncate_month_and_year() {
        let a = StringArray::from(vec![
            Some("1987-06-15"),
            None,
            Some("2001-12-31T23:59:59Z"),
            Some("bad"),
        ]);
        let o = truncate_date(&a, DateUnit::Month, TruncateOutput::Date).unwrap();
        let v: Vec<_> = o.array.as_primitive::<Date32Type>().iter().collect();
        assert_eq!(
            v,
            vec![
                days_from_ymd(1987, 6, 1),
                None,
                days_from_ymd(2001, 12, 1),
                None
            ]
        );
        assert_eq!(o.failures.len(), 1);
        assert_eq!(o.failures[0].row, 3);
        assert_eq!(o.failures[0].reason, Reason::UnparseableDate);
        let o = truncate_date(&a, DateUnit::Year, TruncateOutput::YearNumber).unwrap();
        let v: Vec<_> = o.array.as_primitive::<Int32Type>().iter().collect();
        assert_eq!(v, vec![Some(1987), None, Some(2001), None]);
        assert!(truncate_date(&a, DateUnit::Month, TruncateOutput::YearNumber).is_err());
    }

    #[test]
    fn truncate_timestamps_with_negative_values() {
        // 1969-12-31T23:00:00Z is on 1969-12-31
        let a = TimestampMicrosecondArray::from(vec![-3_600_000_000]);
        let o = truncate_date(&a, DateUnit::Month, TruncateOutput::Date).unwrap();
        assert_eq!(
            o.array.as_primitive::<Date32Type>().value(0),
            days_from_ymd(1969, 12, 1).unwrap()
        );
    }

    #[test]
    fn date_shift_keeps_types_and_fails_closed() {
        let key = MasterKey::from_bytes([3u8; 32]);
        let s = DateShifter::new(&key, 50).unwrap();
        let p = "0123456789abcdef0123456789abcdef";
        let shift = s.shift_days(p);
        assert!((-50..=50).contains(&shift));
        let shifts = vec![Some(shift), Some(shift), None];
        let d = Date32Array::from(vec![Some(100), None, Some(5)]);
        let o = date_shift(&d, &shifts, TextDates::Date).unwrap();
        assert_eq!(o.array.as_primitive::<Date32Type>().value(0), 100 + shift);
        assert_eq!(
            o.failures,
            vec![RowFailure::new(2, "date_shift", Reason::NoPerson)]
        );
        let t =
            TimestampMicrosecondArray::from(vec![Some(1_000), Some(2), None]).with_timezone("UTC");
        let o = date_shift(&t, &shifts, TextDates::Date).unwrap();
        assert_eq!(o.array.data_type(), t.data_type());
        assert_eq!(
            o.array.as_primitive::<TimestampMicrosecondType>().value(0),
            1_000 + i64::from(shift) * MICROS_PER_DAY
        );
        let txt = StringArray::from(vec![Some("2020-01-01T10:00:00Z"), Some("garbage"), None]);
        let o = date_shift(&txt, &shifts, TextDates::Timestamp).unwrap();
        assert_eq!(
            o.failures,
            vec![RowFailure::new(1, "date_shift", Reason::UnparseableDate)]
        );
        assert!(o.array.is_null(1));
        assert!(date_shift(&txt, &shifts[..2], TextDates::Date).is_err());
        assert!(DateShifter::new(&key, 0).is_err());
    }

    #[test]
    fn age_bands_at_event_dates() {
        let births = StringArray::from(vec![
            Some("2000-03-01"),
            Some("2000-03-01"),
            Some("2010-01-01"),
            None,
            Some("1900-01-01"),
        ]);
        let events = StringArray::from(vec![
            Some("2010-02-28"),
            Some("2010-03-01"),
            Some("2009-12-31"),
            Some("2010-01-01"),
            Some("2000-01-01"),
        ]);
        let o = age_band(&births, AgeAt::Column(&events), 5, Some(90)).unwrap();
        let v: Vec<_> = o.array.as_string::<i32>().iter().collect();
        assert_eq!(v, vec![Some("5-9"), Some("10-14"), None, None, Some("90+")]);
        assert_eq!(
            o.failures,
            vec![RowFailure::new(2, "age_band", Reason::NegativeAge)]
        );
        let o = age_band(&births, AgeAt::Column(&events), 1, None).unwrap();
        assert_eq!(o.array.as_string::<i32>().value(0), "9");
        // a band never reaches past the top code
        let o = age_band(&births, AgeAt::Column(&events), 7, Some(90)).unwrap();
        assert_eq!(o.array.as_string::<i32>().value(4), "90+");
    }
}
