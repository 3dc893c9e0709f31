//! Order statistics under disclosure control: a median or a percentile is released only
//! when at least `min_cell` distinct persons lie strictly on each side of it.
//!
//! A percentile is one person's value (or between two persons' values): at level 0 or 1
//! it is the minimum or the maximum, and in a small or skewed group even the median can
//! be one person's. `dhub_order_safe(person, value)` collects the group's
//! (value, person) pairs, computes the percentile at its level exactly as
//! `percentile_cont` does (linear interpolation between the two nearest ranks), and
//! returns `true` only when at least `cap` distinct persons have a value below it and
//! `cap` above it. [`crate::sdc`] nulls every order-statistic cell whose check is not
//! `true`, for `median`, `approx_median`, `percentile_cont` and `approx_percentile_cont`
//! alike (the approximate ones are checked at their level over the exact values).
//! Levels at or beyond 0 and 1 are refused before planning.
//!
//! Memory: 16 bytes per row of the group (the engine's own `median` holds every value
//! too). Persons are held as 64-bit hashes ([`crate::persons`]); two persons with the
//! same hash count once, which can only make a side look smaller (more suppression).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, UInt64Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use crate::persons::{for_each_person, hash_bytes};

/// The function's name in plans.
pub const NAME: &str = "dhub_order_safe";

#[derive(Debug)]
struct OrderSafe {
    level: f64,
    cap: usize,
    signature: Signature,
}

impl PartialEq for OrderSafe {
    fn eq(&self, o: &Self) -> bool {
        self.level.to_bits() == o.level.to_bits() && self.cap == o.cap
    }
}
impl Eq for OrderSafe {}
impl Hash for OrderSafe {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.level.to_bits().hash(h);
        self.cap.hash(h);
    }
}

/// The check for the percentile at `level` (0 < level < 1), with `cap` persons needed
/// on each side: `dhub_order_safe(person, value)`.
pub fn udaf(level: f64, cap: u32) -> AggregateUDF {
    AggregateUDF::new_from_impl(OrderSafe {
        level,
        cap: usize::try_from(cap.max(1)).unwrap_or(usize::MAX),
        signature: Signature::any(2, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for OrderSafe {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Values {
            level: self.level,
            cap: self.cap,
            pairs: Vec::new(),
        }))
    }
    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(crate::persons::list_fields(&[
            ("persons", DataType::UInt64),
            ("values", DataType::Float64),
        ]))
    }
}

/// One group's (value, person) pairs.
#[derive(Debug)]
struct Values {
    level: f64,
    cap: usize,
    pairs: Vec<(f64, u64)>,
}

/// Whether at least `cap` distinct persons lie strictly below and strictly above the
/// percentile at `level` of `pairs` (sorted here).
fn safe(pairs: &mut [(f64, u64)], level: f64, cap: usize) -> bool {
    if pairs.is_empty() {
        return false;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pairs.len();
    #[allow(clippy::cast_precision_loss)]
    let pos = level * (n - 1) as f64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (a, b) = (pairs[lo.min(n - 1)].0, pairs[hi.min(n - 1)].0);
    let v = a + (pos - pos.floor()) * (b - a);
    let side = |it: &mut dyn Iterator<Item = &(f64, u64)>| {
        let mut seen = HashSet::new();
        for (_, p) in it {
            seen.insert(*p);
            if seen.len() >= cap {
                return true;
            }
        }
        false
    };
    side(&mut pairs.iter().filter(|(x, _)| *x < v))
        && side(&mut pairs.iter().rev().filter(|(x, _)| *x > v))
}

impl Values {
    fn add(&mut self, persons: &ArrayRef, values: &ArrayRef) -> Result<()> {
        let values = arrow::compute::cast(values, &DataType::Float64)?;
        let v = values.as_primitive::<Float64Type>();
        let pairs = &mut self.pairs;
        for_each_person(persons, None, |i, p| {
            if v.is_valid(i) && !v.value(i).is_nan() {
                pairs.push((v.value(i), hash_bytes(p)));
            }
        })
    }
}

impl Accumulator for Values {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], &values[1])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Boolean(Some(safe(
            &mut self.pairs,
            self.level,
            self.cap,
        ))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.pairs.capacity() * 16
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |values: ArrayRef, t: DataType| -> Result<ScalarValue> {
            let l = ListArray::try_new(
                Arc::new(Field::new_list_field(t, true)),
                OffsetBuffer::from_lengths([values.len()]),
                values,
                None,
            )?;
            ScalarValue::try_from_array(&l, 0)
        };
        let persons: UInt64Array = self.pairs.iter().map(|(_, p)| *p).collect();
        let values: Float64Array = self.pairs.iter().map(|(x, _)| *x).collect();
        Ok(vec![
            list(Arc::new(persons), DataType::UInt64)?,
            list(Arc::new(values), DataType::Float64)?,
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let persons: &ListArray = states[0].as_list::<i32>();
        let values: &ListArray = states[1].as_list::<i32>();
        for i in 0..persons.len() {
            if persons.is_null(i) || values.is_null(i) {
                continue;
            }
            let (p, x) = (persons.value(i), values.value(i));
            let (p, x) = (
                p.as_primitive::<UInt64Type>(),
                x.as_primitive::<Float64Type>(),
            );
            self.pairs
                .extend(x.values().iter().copied().zip(p.values().iter().copied()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_needs_cap_persons() {
        // 21 persons with values 0..=20: the median 10 has 10 persons on each side
        let mut v: Vec<(f64, u64)> = (0..=20).map(|i| (f64::from(i), i as u64)).collect();
        assert!(safe(&mut v, 0.5, 10));
        assert!(!safe(&mut v, 0.5, 11));
        // the 90th percentile (18) has 2 persons above it
        assert!(!safe(&mut v, 0.9, 10));
        // one person with many rows is one person
        let mut w: Vec<(f64, u64)> = (0..=20)
            .map(|i| (f64::from(i), u64::from(i > 10)))
            .collect();
        assert!(!safe(&mut w, 0.5, 2));
        assert!(!safe(&mut [], 0.5, 1));
    }
}
