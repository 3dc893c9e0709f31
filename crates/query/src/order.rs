//! Order statistics under disclosure control: a median or a percentile is released only
//! when at least `min_cell` distinct persons lie strictly on each side of it.
//!
//! A percentile is one person's value (or between two persons' values): at level 0 or 1
//! it is the minimum or the maximum, and in a small or skewed group even the median can
//! be one person's. "At least `cap` distinct persons have a value below `v`" holds
//! exactly when the `cap`-th smallest of the persons' own minima is below `v`, and
//! likewise above with the persons' maxima. So [`crate::sdc`] adds, beside each order
//! statistic, `dhub_order_bound(person, value)` twice: the `cap`-th smallest
//! per-person minimum (`low`) and the `cap`-th largest per-person maximum (`high`), each
//! NULL when the group has fewer than `cap` persons; the cell is released only when
//! `low < cell < high`, checked against the value actually released (for `median`,
//! `approx_median`, `percentile_cont` and `approx_percentile_cont` alike). Levels at or
//! beyond 0 and 1 are refused before planning.
//!
//! Memory and time: at most `cap` (value, person) pairs per group and side, whatever the
//! group's size; a row is hashed only when its value could enter a side's `cap`
//! smallest (or largest), which after the first rows of a group is rare. Persons are held
//! as 64-bit hashes ([`crate::persons`]); two persons with the same hash count once,
//! which can only make a side look smaller (more suppression). NULL values, NULL persons
//! and NaN are not counted.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray, UInt64Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use crate::persons::{Zeros, for_each_person, hash_bytes};

/// The function's name in plans.
pub const NAME: &str = "dhub_order_bound";

/// Which side of an order statistic a bound is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The `cap`-th smallest per-person minimum: `cap` persons lie below any value above it.
    Low,
    /// The `cap`-th largest per-person maximum: `cap` persons lie above any value below it.
    High,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderBound {
    side: Side,
    cap: usize,
    signature: Signature,
}

/// The bound on `side` with `cap` persons: `dhub_order_bound(person, value)`, a Float64.
pub fn udaf(side: Side, cap: u32) -> AggregateUDF {
    AggregateUDF::new_from_impl(OrderBound {
        side,
        cap: usize::try_from(cap.max(1)).unwrap_or(usize::MAX),
        signature: Signature::any(2, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for OrderBound {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Single {
            bounds: self.groups(),
            zeros: Zeros::default(),
        }))
    }
    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(crate::persons::list_fields(&[
            ("persons", DataType::UInt64),
            ("values", DataType::Float64),
        ]))
    }
    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(self.groups()))
    }
}

impl OrderBound {
    fn groups(&self) -> Bounds {
        Bounds {
            sign: match self.side {
                Side::Low => 1.0,
                Side::High => -1.0,
            },
            cap: self.cap,
            groups: Vec::new(),
        }
    }
}

/// One group's `cap` persons with the smallest minima (values already signed, so the
/// high side keeps the largest maxima as the smallest negated ones).
#[derive(Debug, Default, Clone)]
struct Smallest {
    /// (value, person), at most `cap`, one entry per person.
    entries: Vec<(f64, u64)>,
    /// The largest value in `entries` once it is full (+inf before): a value at or above
    /// it cannot change the bound.
    worst: f64,
}

impl Smallest {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            worst: f64::INFINITY,
        }
    }

    #[inline]
    fn wants(&self, x: f64) -> bool {
        x < self.worst
    }

    /// Adds person `p`'s value `x` (the caller checked [`Self::wants`]).
    fn insert(&mut self, x: f64, p: u64, cap: usize) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.1 == p) {
            if x < e.0 {
                e.0 = x;
            } else {
                return;
            }
        } else if self.entries.len() < cap {
            self.entries.push((x, p));
        } else if let Some(i) = self.worst_index() {
            self.entries[i] = (x, p);
        }
        if self.entries.len() >= cap {
            self.worst = self
                .entries
                .iter()
                .map(|e| e.0)
                .fold(f64::NEG_INFINITY, f64::max);
        }
    }

    fn worst_index(&self) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
            .map(|(i, _)| i)
    }

    /// The `cap`-th smallest per-person value, if `cap` persons were seen.
    fn bound(&self, cap: usize) -> Option<f64> {
        (self.entries.len() >= cap).then_some(self.worst)
    }
}

/// The bound of every group (grouped queries), or of group 0 ([`Single`]).
#[derive(Debug)]
struct Bounds {
    /// 1 for the low side, -1 for the high side (values are negated on the way in and
    /// out, so both sides keep the smallest).
    sign: f64,
    cap: usize,
    groups: Vec<Smallest>,
}

impl Bounds {
    /// Adds each kept row's (value, person) to its group; NULL persons or values, NaN
    /// and rows `filter` does not keep are skipped.
    fn add(
        &mut self,
        persons: &ArrayRef,
        values: &ArrayRef,
        groups: &[usize],
        filter: Option<&BooleanArray>,
    ) -> Result<()> {
        let values = arrow::compute::cast(values, &DataType::Float64)?;
        let v = values.as_primitive::<Float64Type>();
        let (sign, cap, sets) = (self.sign, self.cap, &mut self.groups);
        for_each_person(persons, filter, |i, p| {
            if v.is_null(i) {
                return;
            }
            let x = sign * v.value(i);
            let s = &mut sets[groups[i]];
            if !x.is_nan() && s.wants(x) {
                s.insert(x, hash_bytes(p), cap);
            }
        })
    }

    fn evaluate_sets(&self, sets: &[Smallest]) -> ArrayRef {
        let out: Float64Array = sets
            .iter()
            .map(|s| s.bound(self.cap).map(|b| self.sign * b))
            .collect();
        Arc::new(out)
    }

    /// The (persons, values) list state of `sets`, one list of each per group (values
    /// signed as held).
    fn lists(sets: &[Smallest]) -> Result<Vec<ArrayRef>> {
        let offsets = || OffsetBuffer::from_lengths(sets.iter().map(|s| s.entries.len()));
        let entries = || sets.iter().flat_map(|s| s.entries.iter());
        let persons: UInt64Array = entries().map(|(_, p)| *p).collect();
        let values: Float64Array = entries().map(|(x, _)| *x).collect();
        let list = |values: ArrayRef, t: DataType| -> Result<ArrayRef> {
            Ok(Arc::new(ListArray::try_new(
                Arc::new(Field::new_list_field(t, true)),
                offsets(),
                values,
                None,
            )?))
        };
        Ok(vec![
            list(Arc::new(persons), DataType::UInt64)?,
            list(Arc::new(values), DataType::Float64)?,
        ])
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[usize]) {
        let persons: &ListArray = states[0].as_list::<i32>();
        let values: &ListArray = states[1].as_list::<i32>();
        for (i, &g) in groups.iter().enumerate().take(persons.len()) {
            if persons.is_null(i) || values.is_null(i) {
                continue;
            }
            let (p, x) = (persons.value(i), values.value(i));
            let (p, x) = (
                p.as_primitive::<UInt64Type>(),
                x.as_primitive::<Float64Type>(),
            );
            let s = &mut self.groups[g];
            for (&x, &p) in x.values().iter().zip(p.values()) {
                if s.wants(x) {
                    s.insert(x, p, self.cap);
                }
            }
        }
    }
}

impl GroupsAccumulator for Bounds {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Smallest::new);
        self.add(&values[0], &values[1], group_indices, opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let sets = emit_to.take_needed(&mut self.groups);
        Ok(self.evaluate_sets(&sets))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Self::lists(&emit_to.take_needed(&mut self.groups))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Smallest::new);
        self.merge(values, group_indices);
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // each row its own group
        let n = values[0].len();
        let mut one = Bounds {
            sign: self.sign,
            cap: self.cap,
            groups: vec![Smallest::new(); n],
        };
        let rows: Vec<usize> = (0..n).collect();
        one.add(&values[0], &values[1], &rows, opt_filter)?;
        Self::lists(&one.groups)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.groups.capacity() * (std::mem::size_of::<Smallest>() + self.cap * 16)
    }
}

/// The bound of a query without `GROUP BY`: one group, run on [`Bounds`] with group
/// index 0 for every row (the indices kept between batches).
#[derive(Debug)]
struct Single {
    bounds: Bounds,
    zeros: Zeros,
}

impl Accumulator for Single {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zeros = self.zeros.get(values[0].len());
        GroupsAccumulator::update_batch(&mut self.bounds, values, zeros, None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.bounds.groups.resize_with(1, Smallest::new);
        ScalarValue::try_from_array(&self.bounds.evaluate_sets(&self.bounds.groups), 0)
    }

    fn size(&self) -> usize {
        GroupsAccumulator::size(&self.bounds) + self.zeros.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.bounds.groups.resize_with(1, Smallest::new);
        Bounds::lists(&self.bounds.groups)?
            .iter()
            .map(|l| ScalarValue::try_from_array(l, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.bounds.groups.resize_with(1, Smallest::new);
        let zeros = self.zeros.get(states[0].len());
        self.bounds.merge(states, zeros);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The definition: at least `cap` distinct persons strictly below and above `v`.
    fn reference(pairs: &[(f64, u64)], v: f64, cap: usize) -> bool {
        let count = |f: &dyn Fn(f64) -> bool| {
            pairs
                .iter()
                .filter(|(x, _)| f(*x))
                .map(|(_, p)| *p)
                .collect::<HashSet<_>>()
                .len()
        };
        count(&|x| x < v) >= cap && count(&|x| x > v) >= cap
    }

    /// The check as sdc.rs makes it from the two bounds: `low < v < high`.
    fn by_bounds(pairs: &[(f64, u64)], v: f64, cap: usize, split: usize) -> bool {
        let side = |sign: f64| {
            // two partial states merged, as the engine's two-phase plan does
            let mut a = Smallest::new();
            let mut b = Smallest::new();
            for (i, &(x, p)) in pairs.iter().enumerate() {
                let s = if i < split { &mut a } else { &mut b };
                if s.wants(sign * x) {
                    s.insert(sign * x, p, cap);
                }
            }
            for &(x, p) in &b.entries {
                if a.wants(x) {
                    a.insert(x, p, cap);
                }
            }
            a.bound(cap).map(|b| sign * b)
        };
        matches!((side(1.0), side(-1.0)), (Some(lo), Some(hi)) if lo < v && v < hi)
    }

    #[test]
    fn bounds_agree_with_the_definition() {
        // pseudo-random groups of many shapes: ties, few persons, one person with many
        // rows, any row order; every candidate value v (each value, and midpoints)
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300 {
            let n = 1 + (next() % 50) as usize;
            let distinct_values = 1 + next() % 12;
            let persons = 1 + next() % 25;
            let pairs: Vec<(f64, u64)> = (0..n)
                .map(|_| ((next() % distinct_values) as f64 * 1.5, next() % persons))
                .collect();
            let split = (next() % (n as u64 + 1)) as usize;
            for k in 0..=(2 * distinct_values) {
                let v = k as f64 * 0.75;
                for cap in [1, 2, 3, 5, 10] {
                    assert_eq!(
                        by_bounds(&pairs, v, cap, split),
                        reference(&pairs, v, cap),
                        "round {round} v {v} cap {cap} split {split} pairs {pairs:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_side_needs_cap_persons() {
        // 21 persons with values 0..=20: the median 10 has 10 persons on each side
        let v: Vec<(f64, u64)> = (0..=20).map(|i| (f64::from(i), i as u64)).collect();
        assert!(by_bounds(&v, 10.0, 10, 7));
        assert!(!by_bounds(&v, 10.0, 11, 7));
        // the 90th percentile (18) has 2 persons above it
        assert!(!by_bounds(&v, 18.0, 10, 7));
        // one person with many rows is one person
        let w: Vec<(f64, u64)> = (0..=20)
            .map(|i| (f64::from(i), u64::from(i > 10)))
            .collect();
        assert!(!by_bounds(&w, 10.0, 2, 3));
        assert!(!by_bounds(&[], 0.5, 1, 0));
    }
}
