//! The dominance and p-ratio checks as an aggregate function: for one group of a SUM or
//! AVG, are a few persons most of the total?
//!
//! `dhub_sensitive(person, value)` sums each person's contributions (absolute values)
//! within the group and returns `true` when the group must not be released:
//!
//! * **dominance (n, k)**: the n largest persons hold more than k of the total
//!   (ACRO default n = 2, k = 0.90);
//! * **p-ratio p**: the total minus the two largest persons is less than p times the
//!   largest, so the second-largest could estimate the largest within p
//!   (ACRO default p = 0.10).
//!
//! The thresholds are fixed per instance (one per project policy).
//!
//! It is a groups accumulator: per group, a table of person (a 64-bit hash of the
//! person's value, as in [`crate::persons`]) → sum, with the latest person's sum kept
//! aside so that a run of one person's rows costs no lookup; partial states are lists
//! of (person, sum). A hash collision sums two persons as one, which can only make a
//! group look more dominated (more suppression), never less.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
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
pub const NAME: &str = "dhub_sensitive";

/// The policy thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Dominance n.
    pub n: u32,
    /// Dominance k.
    pub k: f64,
    /// p-ratio.
    pub p: f64,
}

impl Thresholds {
    /// Whether per-person totals `v` (any order, non-negative) make the group sensitive.
    /// Reorders `v`; linear in its length (no sort).
    pub fn sensitive(&self, v: &mut [f64]) -> bool {
        let total: f64 = v.iter().sum();
        if v.is_empty() || total <= 0.0 {
            return false;
        }
        let n = usize::try_from(self.n).unwrap_or(usize::MAX).min(v.len());
        if n > 0 && n < v.len() {
            // the n largest to the front, in any order
            v.select_nth_unstable_by(n - 1, |a, b| b.total_cmp(a));
        }
        let top: f64 = v[..n].iter().sum();
        if self.k < 1.0 && top / total > self.k {
            return true;
        }
        if self.p > 0.0 {
            let (mut x1, mut x2) = (0.0f64, 0.0f64);
            for &x in v.iter() {
                if x > x1 {
                    x2 = x1;
                    x1 = x;
                } else if x > x2 {
                    x2 = x;
                }
            }
            if total - x1 - x2 < self.p * x1 {
                return true;
            }
        }
        false
    }
}

#[derive(Debug)]
struct Sensitive {
    t: Thresholds,
    signature: Signature,
}

impl PartialEq for Sensitive {
    fn eq(&self, o: &Self) -> bool {
        self.t.n == o.t.n
            && self.t.k.to_bits() == o.t.k.to_bits()
            && self.t.p.to_bits() == o.t.p.to_bits()
    }
}
impl Eq for Sensitive {}
impl Hash for Sensitive {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.t.n.hash(h);
        self.t.k.to_bits().hash(h);
        self.t.p.to_bits().hash(h);
    }
}

/// The aggregate function for `t`: `dhub_sensitive(person, value)`, the person of any
/// type (text is hashed as it is, anything else as its text), the value `Float64`.
pub fn udaf(t: Thresholds) -> AggregateUDF {
    AggregateUDF::new_from_impl(Sensitive {
        t,
        signature: Signature::any(2, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for Sensitive {
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
        let mut groups = Groups::new(self.t);
        groups.sums.push(PersonSums::default());
        Ok(Box::new(One {
            groups,
            zeros: Zeros::default(),
        }))
    }
    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(crate::persons::list_fields(&[
            ("persons", DataType::UInt64),
            ("sums", DataType::Float64),
        ]))
    }
    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::new(self.t)))
    }
}

/// A hasher for keys that are already well-mixed 64-bit hashes.
#[derive(Debug, Default, Clone, Copy)]
struct Ident(u64);

impl Hasher for Ident {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// One group's contributions: person (64-bit hash of its value) → sum of its values.
/// Two persons with the same hash would be summed as one, which can only make the
/// group look *more* dominated (the largest contributions grow): never less safe.
///
/// Rows of one person tend to come together (tables are written grouped by patient),
/// so the latest person's sum is kept aside and added to the map only when another
/// person comes: most rows then cost no hash-table lookup.
#[derive(Debug, Default)]
struct PersonSums {
    map: HashMap<u64, f64, BuildHasherDefault<Ident>>,
    last: Option<(u64, f64)>,
}

impl PersonSums {
    #[inline]
    fn add(&mut self, person: u64, x: f64) -> usize {
        match &mut self.last {
            Some((p, sum)) if *p == person => {
                *sum += x;
                0
            }
            last => {
                let added = last.take().map_or(0, |(p, sum)| self.push(p, sum));
                self.last = Some((person, x));
                added
            }
        }
    }

    /// Adds `x` to `person` in the map; 1 when the person is new.
    fn push(&mut self, person: u64, x: f64) -> usize {
        let before = self.map.len();
        *self.map.entry(person).or_default() += x;
        self.map.len() - before
    }

    /// Moves the kept-aside sum into the map.
    fn settle(&mut self) -> usize {
        self.last.take().map_or(0, |(p, sum)| self.push(p, sum))
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Per-person sums of many groups.
#[derive(Debug)]
struct Groups {
    t: Thresholds,
    sums: Vec<PersonSums>,
    /// Entries held (for [`GroupsAccumulator::size`], which must not walk the groups).
    entries: usize,
}

impl Groups {
    fn new(t: Thresholds) -> Self {
        Self {
            t,
            sums: Vec::new(),
            entries: 0,
        }
    }

    #[inline]
    fn add_one(&mut self, g: usize, person: u64, x: f64) {
        self.entries += self.sums[g].add(person, x);
    }

    /// Adds each row's value to its person in its group; a null person or value, or a
    /// filter false or null, skips the row.
    fn add(
        &mut self,
        persons: &ArrayRef,
        values: &ArrayRef,
        groups: &[usize],
        filter: Option<&BooleanArray>,
    ) -> Result<()> {
        let values = arrow::compute::cast(values, &DataType::Float64)?;
        let v = values.as_primitive::<Float64Type>();
        for_each_person(persons, filter, |i, p| {
            if v.is_valid(i) {
                self.add_one(groups[i], hash_bytes(p), v.value(i));
            }
        })
    }

    fn merge(&mut self, states: &[ArrayRef], groups: &[usize]) -> Result<()> {
        let persons: &ListArray = states[0].as_list::<i32>();
        let sums: &ListArray = states[1].as_list::<i32>();
        for (i, &g) in groups.iter().enumerate() {
            if persons.is_null(i) || sums.is_null(i) {
                continue;
            }
            let p = persons.value(i);
            let s = sums.value(i);
            let (p, s) = (
                p.as_primitive::<UInt64Type>(),
                s.as_primitive::<Float64Type>(),
            );
            for (h, x) in p.values().iter().zip(s.values()) {
                self.add_one(g, *h, *x);
            }
        }
        Ok(())
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<PersonSums> {
        let mut taken = emit_to.take_needed(&mut self.sums);
        for m in &mut taken {
            self.entries += m.settle();
        }
        self.entries -= taken.iter().map(PersonSums::len).sum::<usize>();
        taken
    }

    fn flags(&self, groups: &[PersonSums]) -> ArrayRef {
        let mut scratch = Vec::new();
        Arc::new(BooleanArray::from_iter(groups.iter().map(|m| {
            scratch.clear();
            scratch.extend(m.map.values().map(|x| x.abs()));
            Some(!scratch.is_empty() && self.t.sensitive(&mut scratch))
        })))
    }

    fn lists(groups: &[PersonSums]) -> Result<Vec<ArrayRef>> {
        let n: usize = groups.iter().map(PersonSums::len).sum();
        let (mut persons, mut sums) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for m in groups {
            for (p, s) in &m.map {
                persons.push(*p);
                sums.push(*s);
            }
        }
        let list = |values: ArrayRef, t: DataType| -> Result<ArrayRef> {
            Ok(Arc::new(ListArray::try_new(
                Arc::new(Field::new_list_field(t, true)),
                OffsetBuffer::from_lengths(groups.iter().map(PersonSums::len)),
                values,
                None,
            )?))
        };
        Ok(vec![
            list(Arc::new(UInt64Array::from(persons)), DataType::UInt64)?,
            list(Arc::new(Float64Array::from(sums)), DataType::Float64)?,
        ])
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.sums.resize_with(total_num_groups, PersonSums::default);
        self.add(&values[0], &values[1], group_indices, opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = self.take(emit_to);
        Ok(self.flags(&groups))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.take(emit_to);
        Self::lists(&groups)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.sums.resize_with(total_num_groups, PersonSums::default);
        self.merge(values, group_indices)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // each row its own group
        let mut one = Groups::new(self.t);
        let n = values[0].len();
        one.sums.resize_with(n, PersonSums::default);
        let groups: Vec<usize> = (0..n).collect();
        one.add(&values[0], &values[1], &groups, opt_filter)?;
        let all = one.take(EmitTo::All);
        Self::lists(&all)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.sums.capacity() * std::mem::size_of::<PersonSums>()
            + self.entries * 24
    }
}

/// The same for an aggregate without groups: group 0 of a [`Groups`] of one.
#[derive(Debug)]
struct One {
    groups: Groups,
    zeros: Zeros,
}

impl One {
    fn settle(&mut self) {
        for m in &mut self.groups.sums {
            self.groups.entries += m.settle();
        }
    }
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zeros = self.zeros.get(values[0].len());
        self.groups.add(&values[0], &values[1], zeros, None)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.settle();
        let flags = self.groups.flags(&self.groups.sums);
        ScalarValue::try_from_array(&flags, 0)
    }

    fn size(&self) -> usize {
        self.groups.size() + self.zeros.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.settle();
        Groups::lists(&self.groups.sums)?
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let zeros = self.zeros.get(states[0].len());
        self.groups.merge(states, zeros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, seed: u64) -> (Vec<String>, Vec<f64>, Vec<usize>) {
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut persons, mut values, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let r = next();
            // rows come in runs of one group and of one person, as tables grouped by
            // patient do, with a random jump now and then
            let g = (i / 37 + usize::from(r % 5 == 0)) % 7;
            let run = (i as u64 / 4 + u64::from(r % 7 == 0)) % 13;
            // group 0: two persons (dominated); group 1: one person with huge values
            // (dominated); the others: 13 persons of similar weight
            let person = match g {
                0 => run % 2,
                _ => run,
            };
            let value = if g == 1 && person == 5 {
                1e6
            } else {
                (r % 100) as f64 - 10.0
            };
            persons.push(format!("p{person}"));
            values.push(value);
            groups.push(g);
        }
        (persons, values, groups)
    }

    /// The flags computed directly: per group, per person sums, then the rule.
    fn reference(t: Thresholds, p: &[String], v: &[f64], g: &[usize], groups: usize) -> Vec<bool> {
        let mut sums: Vec<HashMap<&str, f64>> = vec![HashMap::new(); groups];
        for ((p, v), g) in p.iter().zip(v).zip(g) {
            *sums[*g].entry(p).or_default() += v;
        }
        sums.iter()
            .map(|m| {
                let mut x: Vec<f64> = m.values().map(|x| x.abs()).collect();
                !x.is_empty() && t.sensitive(&mut x)
            })
            .collect()
    }

    fn bools(a: &ArrayRef) -> Vec<bool> {
        a.as_boolean().iter().map(|b| b.unwrap_or(false)).collect()
    }

    #[test]
    fn groups_accumulator_equals_the_direct_computation_through_batches_and_merges() {
        let t = Thresholds {
            n: 2,
            k: 0.6,
            p: 0.10,
        };
        let (p, v, g) = rows(5000, 0x2545_F491_4F6C_DD1D);
        let want = reference(t, &p, &v, &g, 7);
        assert!(want.contains(&true) && want.contains(&false), "{want:?}");
        let persons: ArrayRef = Arc::new(arrow::array::StringArray::from(p.clone()));
        let values: ArrayRef = Arc::new(Float64Array::from(v.clone()));
        // in batches of 700 rows
        let mut acc = Groups::new(t);
        for start in (0..p.len()).step_by(700) {
            let len = 700.min(p.len() - start);
            acc.update_batch(
                &[persons.slice(start, len), values.slice(start, len)],
                &g[start..start + len],
                None,
                7,
            )
            .unwrap();
        }
        assert_eq!(bools(&acc.evaluate(EmitTo::All).unwrap()), want);
        // the per-person sums themselves, through the state
        let mut acc = Groups::new(t);
        acc.update_batch(&[persons.clone(), values.clone()], &g, None, 7)
            .unwrap();
        let st = acc.state(EmitTo::All).unwrap();
        let (hs, ss) = (st[0].as_list::<i32>(), st[1].as_list::<i32>());
        for group in 0..7 {
            let mut want: HashMap<u64, f64> = HashMap::new();
            for ((p, v), gi) in p.iter().zip(&v).zip(&g) {
                if *gi == group {
                    *want.entry(hash_bytes(p.as_bytes())).or_default() += v;
                }
            }
            let got: HashMap<u64, f64> = hs
                .value(group)
                .as_primitive::<UInt64Type>()
                .values()
                .iter()
                .copied()
                .zip(
                    ss.value(group)
                        .as_primitive::<Float64Type>()
                        .values()
                        .iter()
                        .copied(),
                )
                .collect();
            assert_eq!(got, want, "group {group}");
        }
        // two partial accumulators, their states merged into a third
        let half = p.len() / 2;
        let mut parts = Vec::new();
        for (s, e) in [(0, half), (half, p.len())] {
            let mut a = Groups::new(t);
            a.update_batch(
                &[persons.slice(s, e - s), values.slice(s, e - s)],
                &g[s..e],
                None,
                7,
            )
            .unwrap();
            parts.push(a.state(EmitTo::All).unwrap());
        }
        let mut merged = Groups::new(t);
        for st in &parts {
            merged
                .merge_batch(st, &(0..7).collect::<Vec<_>>(), 7)
                .unwrap();
        }
        assert_eq!(
            bools(&merged.evaluate(EmitTo::First(3)).unwrap()),
            want[..3]
        );
        assert_eq!(bools(&merged.evaluate(EmitTo::All).unwrap()), want[3..]);
        // rows as their own groups (no pre-aggregation), merged into the groups
        let mut direct = Groups::new(t);
        let st = direct
            .convert_to_state(&[persons.clone(), values.clone()], None)
            .unwrap();
        direct.merge_batch(&st, &g, 7).unwrap();
        assert_eq!(bools(&direct.evaluate(EmitTo::All).unwrap()), want);
        // without groups: the whole input is one group
        let mut one = Sensitive {
            t,
            signature: Signature::any(2, Volatility::Immutable),
        }
        .accumulator(AccumulatorArgs {
            return_field: Arc::new(Field::new("x", DataType::Boolean, true)),
            schema: &arrow::datatypes::Schema::empty(),
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: "x",
            is_distinct: false,
            exprs: &[],
            expr_fields: &[],
        })
        .unwrap();
        one.update_batch(&[persons.clone(), values.clone()])
            .unwrap();
        let all = reference(t, &p, &v, &vec![0; p.len()], 1)[0];
        assert_eq!(one.evaluate().unwrap(), ScalarValue::Boolean(Some(all)));
    }

    #[test]
    fn dominance_and_p_ratio_fire_at_their_boundaries() {
        let t = Thresholds {
            n: 2,
            k: 0.90,
            p: 0.10,
        };
        // two persons hold 95% of the total: dominance
        assert!(t.sensitive(&mut [50.0, 45.0, 5.0]));
        // two persons hold 90% exactly: not dominant; remainder 10 >= 0.1 * 50
        assert!(!t.sensitive(&mut [50.0, 40.0, 10.0]));
        // p-ratio: remainder 4 < 0.1 * 50 although the top two hold only 60%
        let p = Thresholds {
            n: 2,
            k: 1.0,
            p: 0.10,
        };
        assert!(p.sensitive(&mut [50.0, 10.0, 4.0]));
        assert!(!p.sensitive(&mut [50.0, 10.0, 6.0]));
        // one person: always sensitive
        assert!(t.sensitive(&mut [7.0]));
        // many similar contributors: fine
        assert!(!t.sensitive(&mut vec![1.0; 50]));
        // rules switched off
        let off = Thresholds {
            n: 2,
            k: 1.0,
            p: 0.0,
        };
        assert!(!off.sensitive(&mut [100.0, 1.0]));
    }
}
