//! The rules without a module of their own: `redact`, `map`, `round` and `top_code`,
//! and the visitor over text and integer columns that several rules share.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, Float64Array, PrimitiveArray, new_null_array};
use arrow_schema::DataType;

use crate::error::{Reason, RuleError};
use crate::rules::{RowFailure, RuleOutput};

const STRING_TYPES_HINT: &str = "it takes text (Utf8, LargeUtf8, Utf8View) or integer columns";

/// Calls `f(row, value)` for every row of a text or integer column, integers formatted
/// in decimal on the stack. Errors for other types.
pub(crate) fn visit_strings(
    array: &dyn Array,
    rule: &'static str,
    mut f: impl FnMut(usize, Option<&str>),
) -> Result<(), RuleError> {
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            let mut buf = [0u8; 24];
            for (i, v) in a.iter().enumerate() {
                match v {
                    None => f(i, None),
                    Some(v) => f(i, Some(fmt_int(i128::from(v), &mut buf))),
                }
            }
        }};
    }
    match array.data_type() {
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .enumerate()
            .for_each(|(i, v)| f(i, v)),
        DataType::LargeUtf8 => array
            .as_string::<i64>()
            .iter()
            .enumerate()
            .for_each(|(i, v)| f(i, v)),
        DataType::Utf8View => array
            .as_string_view()
            .iter()
            .enumerate()
            .for_each(|(i, v)| f(i, v)),
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        other => {
            return Err(RuleError::UnsupportedType {
                rule,
                data_type: other.clone(),
                hint: STRING_TYPES_HINT,
            });
        }
    }
    Ok(())
}

/// Formats an integer in decimal into `buf`, returning the text.
pub(crate) fn fmt_int(v: i128, buf: &mut [u8; 24]) -> &str {
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

/// `redact`: a column of nulls of the same type and length.
pub fn redact(array: &dyn Array) -> RuleOutput {
    RuleOutput::ok(new_null_array(array.data_type(), array.len()))
}

/// `map`: replaces each value by its entry in `table` (keys compared after trimming).
/// A value missing from the table becomes `default` when one is given, and fails with
/// [`Reason::Unmapped`] otherwise. Output is Utf8.
pub fn map(
    array: &dyn Array,
    table: &HashMap<String, String>,
    default: Option<&str>,
) -> Result<RuleOutput, RuleError> {
    let mut b = StringBuilder::with_capacity(array.len(), array.len() * 8);
    let mut failures = Vec::new();
    visit_strings(array, "map", |row, v| match v {
        None => b.append_null(),
        Some(v) => match table.get(v.trim()).map(String::as_str).or(default) {
            Some(m) => b.append_value(m),
            None => {
                failures.push(RowFailure::new(row, "map", Reason::Unmapped));
                b.append_null();
            }
        },
    })?;
    Ok(RuleOutput {
        array: Arc::new(b.finish()),
        failures,
    })
}

/// Applies `f` to every value of a numeric column, keeping integer columns integer
/// when `int_f` is given, and parsing text columns as numbers (output Float64).
fn numeric_map(
    array: &dyn Array,
    rule: &'static str,
    f: impl Fn(f64) -> f64,
    int_f: Option<&dyn Fn(i64) -> i64>,
) -> Result<RuleOutput, RuleError> {
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            match int_f {
                Some(g) => {
                    let mut failures = Vec::new();
                    let out: PrimitiveArray<$t> = a
                        .iter()
                        .enumerate()
                        .map(|(row, v)| {
                            v.and_then(|v| {
                                let r = <_>::try_from(g(i64::try_from(v).ok()?)).ok();
                                if r.is_none() {
                                    failures.push(RowFailure::new(row, rule, Reason::NotANumber));
                                }
                                r
                            })
                        })
                        .collect();
                    return Ok(RuleOutput {
                        array: Arc::new(out),
                        failures,
                    });
                }
                None => a
                    .iter()
                    .map(|v| v.map(|v| f(v as f64)))
                    .collect::<Float64Array>(),
            }
        }};
    }
    let out: Float64Array = match array.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Float32 => array
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(|v| f(f64::from(v))))
            .collect(),
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(&f))
            .collect(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut failures = Vec::new();
            let mut vals = Vec::with_capacity(array.len());
            visit_strings(array, rule, |row, v| {
                vals.push(v.map(str::trim).filter(|s| !s.is_empty()).and_then(|s| {
                    match s.parse::<f64>().ok().filter(|x| x.is_finite()) {
                        Some(x) => Some(f(x)),
                        None => {
                            failures.push(RowFailure::new(row, rule, Reason::NotANumber));
                            None
                        }
                    }
                }));
            })?;
            return Ok(RuleOutput {
                array: Arc::new(Float64Array::from(vals)),
                failures,
            });
        }
        other => {
            return Err(RuleError::UnsupportedType {
                rule,
                data_type: other.clone(),
                hint: "it takes integer, float or numeric text columns",
            });
        }
    };
    Ok(RuleOutput::ok(Arc::new(out)))
}

/// `round`: rounds to the nearest multiple of `base` (halves away from zero). Integer
/// columns stay integer when `base` is a whole number; text is parsed (output Float64).
///
/// ```
/// use arrow_array::{Int64Array, cast::AsArray, types::Int64Type};
/// let out = dhub_deid::rules::round(&Int64Array::from(vec![Some(7), Some(8), None]), 5.0).unwrap();
/// let v: Vec<_> = out.array.as_primitive::<Int64Type>().iter().collect();
/// assert_eq!(v, vec![Some(5), Some(10), None]);
/// ```
pub fn round(array: &dyn Array, base: f64) -> Result<RuleOutput, RuleError> {
    if !(base.is_finite() && base > 0.0) {
        return Err(RuleError::BadParameter {
            rule: "round",
            message: format!("base must be a positive number, got {base}"),
        });
    }
    let f = move |x: f64| (x / base).round() * base;
    if base.fract() == 0.0 && base <= 1e15 {
        let b = base as i64;
        let g = move |x: i64| {
            let q = x.div_euclid(b);
            let r = x.rem_euclid(b);
            // halves away from zero
            let up = if x >= 0 { 2 * r >= b } else { 2 * r > b };
            (q + i64::from(up)) * b
        };
        numeric_map(array, "round", f, Some(&g))
    } else {
        numeric_map(array, "round", f, None)
    }
}

/// `top_code`: values above `max` become `max` (e.g. ages over 89 become 90 with
/// `max = 90`). Integer columns stay integer; text is parsed (output Float64).
pub fn top_code(array: &dyn Array, max: f64) -> Result<RuleOutput, RuleError> {
    if !max.is_finite() {
        return Err(RuleError::BadParameter {
            rule: "top_code",
            message: "max must be a finite number".into(),
        });
    }
    let f = move |x: f64| x.min(max);
    if max.fract() == 0.0 && max.abs() <= 1e15 {
        let m = max as i64;
        numeric_map(array, "top_code", f, Some(&move |x: i64| x.min(m)))
    } else {
        numeric_map(array, "top_code", f, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, StringArray};

    #[test]
    fn map_with_and_without_default() {
        let t: HashMap<String, String> = [("M", "male"), ("F", "female")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
        let a = StringArray::from(vec![Some("M"), Some(" F "), None, Some("X")]);
        let o = map(&a, &t, None).unwrap();
        assert_eq!(
            o.failures,
            vec![RowFailure::new(3, "map", Reason::Unmapped)]
        );
        let s = o.array.as_string::<i32>();
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![Some("male"), Some("female"), None, None]
        );
        let o = map(&a, &t, Some("other")).unwrap();
        assert!(o.failures.is_empty());
        assert_eq!(o.array.as_string::<i32>().value(3), "other");
    }

    #[test]
    fn round_halves_and_negatives() {
        let a = Int32Array::from(vec![
            Some(0),
            Some(2),
            Some(3),
            Some(7),
            Some(8),
            Some(-3),
            Some(-2),
            None,
        ]);
        let o = round(&a, 5.0).unwrap();
        let v: Vec<_> = o.array.as_primitive::<Int32Type>().iter().collect();
        assert_eq!(
            v,
            vec![
                Some(0),
                Some(0),
                Some(5),
                Some(5),
                Some(10),
                Some(-5),
                Some(0),
                None
            ]
        );
        let f = Float64Array::from(vec![1.26, 1.24]);
        let o = round(&f, 0.1).unwrap();
        let v: Vec<_> = o.array.as_primitive::<Float64Type>().values().to_vec();
        assert!((v[0] - 1.3).abs() < 1e-9 && (v[1] - 1.2).abs() < 1e-9);
        assert!(round(&f, 0.0).is_err());
    }

    #[test]
    fn top_code_and_text_numbers() {
        let a = StringArray::from(vec![Some("95"), Some("40"), Some(""), Some("abc"), None]);
        let o = top_code(&a, 90.0).unwrap();
        assert_eq!(
            o.failures,
            vec![RowFailure::new(3, "top_code", Reason::NotANumber)]
        );
        let v: Vec<_> = o.array.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(v, vec![Some(90.0), Some(40.0), None, None, None]);
    }

    #[test]
    fn redact_keeps_type_and_length() {
        let a = Int32Array::from(vec![1, 2, 3]);
        let o = redact(&a);
        assert_eq!(o.array.len(), 3);
        assert_eq!(o.array.null_count(), 3);
        assert_eq!(o.array.data_type(), &DataType::Int32);
    }

    #[test]
    fn fmt_int_edges() {
        let mut b = [0u8; 24];
        assert_eq!(fmt_int(0, &mut b), "0");
        assert_eq!(fmt_int(-120, &mut b), "-120");
        assert_eq!(
            fmt_int(i128::from(u64::MAX), &mut b),
            "18446744073709551615"
        );
    }
}
