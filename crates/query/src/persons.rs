//! Distinct persons per group, counted only as far as the policy needs: the aggregate
//! behind the minimum-cell rule.
//!
//! `dhub_persons(person)` returns the number of distinct non-null persons of its
//! group, **capped** at the instance's cap (the project's `min_cell`): a group is either
//! small (the exact count, under the cap) or large enough (the cap). That is all the
//! minimum-cell rule asks, and it is far cheaper than `count(DISTINCT person)` on
//! large groups: once a group has reached the cap its rows are not even hashed, and no
//! group holds more than `cap` entries, so memory is bounded by `groups × cap`.
//!
//! Persons are held as 64-bit hashes of their values. Two persons with the same hash
//! count once, so a collision can only make a group look *smaller* (more
//! suppression), never larger: the rule cannot be bypassed through it.
//!
//! Where a result must rank groups by their persons (secondary suppression, see
//! [`crate::sdc`]) the exact `count(DISTINCT …)` is used instead.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, UInt64Array, UInt64Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

/// The function's name in plans.
pub const NAME: &str = "dhub_persons";

#[derive(Debug)]
struct Persons {
    cap: usize,
    signature: Signature,
}

impl PartialEq for Persons {
    fn eq(&self, o: &Self) -> bool {
        self.cap == o.cap
    }
}
impl Eq for Persons {}
impl Hash for Persons {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.cap.hash(h);
    }
}

/// The aggregate counting distinct persons up to `cap` (at least 1).
pub fn udaf(cap: u32) -> AggregateUDF {
    AggregateUDF::new_from_impl(Persons {
        cap: usize::try_from(cap.max(1)).unwrap_or(usize::MAX),
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for Persons {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn is_nullable(&self) -> bool {
        false
    }
    fn default_value(&self, _: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(One::new(self.cap)))
    }
    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![state_field()])
    }
    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::new(self.cap)))
    }
}

fn state_field() -> FieldRef {
    Arc::new(Field::new_list(
        "persons",
        Field::new_list_field(DataType::UInt64, true),
        true,
    ))
}

/// Partial-state fields that are lists of `(name, item type)`: the state of the
/// per-person aggregates ([`crate::dominance`], [`crate::order`]).
pub(crate) fn list_fields(lists: &[(&str, DataType)]) -> Vec<FieldRef> {
    lists
        .iter()
        .map(|(name, t)| {
            Arc::new(Field::new_list(
                *name,
                Field::new_list_field(t.clone(), true),
                true,
            ))
        })
        .collect()
}

/// A well-mixed 64-bit hash of a person's value.
#[inline]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = K ^ (b.len() as u64);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    // splitmix64 finaliser
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// Calls `f(row, person)` for each row with a non-null person that `filter` keeps (false
/// or null skips a row); the person as bytes: text as it is, any other type as its
/// text. The one reading of a person column, shared with [`crate::dominance`].
pub(crate) fn for_each_person(
    persons: &ArrayRef,
    filter: Option<&BooleanArray>,
    mut f: impl FnMut(usize, &[u8]),
) -> Result<()> {
    let keep = |i: usize| filter.is_none_or(|f| f.is_valid(i) && f.value(i));
    macro_rules! each {
        ($a:expr) => {{
            let a = $a;
            for i in 0..a.len() {
                if a.is_valid(i) && keep(i) {
                    let v: &str = a.value(i);
                    f(i, v.as_bytes());
                }
            }
        }};
    }
    match persons.data_type() {
        DataType::Utf8View => each!(persons.as_string_view()),
        DataType::Utf8 => each!(persons.as_string::<i32>()),
        DataType::LargeUtf8 => each!(persons.as_string::<i64>()),
        _ => {
            let text = arrow::compute::cast(persons, &DataType::Utf8)?;
            each!(text.as_string::<i32>());
        }
    }
    Ok(())
}

/// The distinct-person sets of many groups, each sorted and at most `cap` long.
#[derive(Debug)]
struct Groups {
    cap: usize,
    sets: Vec<Vec<u64>>,
    /// Hashes held (for [`GroupsAccumulator::size`], which must not walk the groups).
    entries: usize,
}

impl Groups {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            sets: Vec::new(),
            entries: 0,
        }
    }

    #[inline]
    fn insert(&mut self, g: usize, h: u64) {
        let s = &mut self.sets[g];
        if s.len() >= self.cap {
            return;
        }
        if let Err(at) = s.binary_search(&h) {
            s.insert(at, h);
            self.entries += 1;
        }
    }

    #[inline]
    fn full(&self, g: usize) -> bool {
        self.sets[g].len() >= self.cap
    }

    /// Adds each row's person to its group; `filter` false or null skips a row.
    fn add(
        &mut self,
        values: &ArrayRef,
        groups: &[usize],
        filter: Option<&BooleanArray>,
    ) -> Result<()> {
        for_each_person(values, filter, |i, v| {
            let g = groups[i];
            if !self.full(g) {
                self.insert(g, hash_bytes(v));
            }
        })
    }

    fn merge(&mut self, states: &ArrayRef, groups: &[usize]) -> Result<()> {
        let lists: &ListArray = states.as_list::<i32>();
        for (i, &g) in groups.iter().enumerate() {
            if lists.is_null(i) {
                continue;
            }
            let v = lists.value(i);
            for h in v.as_primitive::<UInt64Type>().values() {
                if self.full(g) {
                    break;
                }
                self.insert(g, *h);
            }
        }
        Ok(())
    }

    fn counts(sets: &[Vec<u64>]) -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            sets.iter()
                .map(|s| i64::try_from(s.len()).unwrap_or(i64::MAX)),
        ))
    }

    fn lists(sets: &[Vec<u64>]) -> Result<ArrayRef> {
        let mut values = UInt64Builder::with_capacity(sets.iter().map(Vec::len).sum());
        for s in sets {
            values.append_slice(s);
        }
        let offsets = OffsetBuffer::from_lengths(sets.iter().map(Vec::len));
        let values: UInt64Array = values.finish();
        Ok(Arc::new(ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::UInt64, true)),
            offsets,
            Arc::new(values),
            None,
        )?))
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
        self.sets.resize_with(total_num_groups, Vec::new);
        self.add(&values[0], group_indices, opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let sets = emit_to.take_needed(&mut self.sets);
        self.entries -= sets.iter().map(Vec::len).sum::<usize>();
        Ok(Self::counts(&sets))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let sets = emit_to.take_needed(&mut self.sets);
        self.entries -= sets.iter().map(Vec::len).sum::<usize>();
        Ok(vec![Self::lists(&sets)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.sets.resize_with(total_num_groups, Vec::new);
        self.merge(&values[0], group_indices)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // each row its own group
        let mut one = Groups::new(self.cap);
        let n = values[0].len();
        one.sets.resize_with(n, Vec::new);
        let groups: Vec<usize> = (0..n).collect();
        one.add(&values[0], &groups, opt_filter)?;
        Ok(vec![Self::lists(&one.sets)?])
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.sets.capacity() * std::mem::size_of::<Vec<u64>>()
            + self.entries * 8
    }
}

/// Group index 0 for every row of a batch, kept between batches: how an aggregate
/// without groups runs on a groups accumulator (here and in [`crate::dominance`]).
#[derive(Debug, Default)]
pub(crate) struct Zeros(Vec<usize>);

impl Zeros {
    /// `n` zeros.
    pub(crate) fn get(&mut self, n: usize) -> &[usize] {
        if self.0.len() < n {
            self.0.resize(n, 0);
        }
        &self.0[..n]
    }

    /// Bytes held.
    pub(crate) fn size(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<usize>()
    }
}

/// The same for an aggregate without groups: group 0 of a [`Groups`] of one.
#[derive(Debug)]
struct One {
    groups: Groups,
    zeros: Zeros,
}

impl One {
    fn new(cap: usize) -> Self {
        let mut groups = Groups::new(cap);
        groups.sets.push(Vec::new());
        Self {
            groups,
            zeros: Zeros::default(),
        }
    }
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.groups
            .add(&values[0], self.zeros.get(values[0].len()), None)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let n = self.groups.sets[0].len();
        Ok(ScalarValue::Int64(Some(
            i64::try_from(n).unwrap_or(i64::MAX),
        )))
    }

    fn size(&self) -> usize {
        self.groups.size() + self.zeros.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = Groups::lists(&self.groups.sets)?;
        Ok(vec![ScalarValue::List(Arc::new(
            list.as_list::<i32>().clone(),
        ))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.groups
            .merge(&states[0], self.zeros.get(states[0].len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    fn strings(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    #[test]
    fn counts_distinct_persons_up_to_the_cap_and_merges_states() {
        let mut g = Groups::new(3);
        // group 0: a, a, b (2 persons); group 1: a, b, c, d (capped at 3); group 2: null only
        let v = strings(&[
            Some("a"),
            Some("a"),
            Some("b"),
            Some("a"),
            Some("b"),
            Some("c"),
            Some("d"),
            None,
        ]);
        g.update_batch(&[v], &[0, 0, 0, 1, 1, 1, 1, 2], None, 3)
            .unwrap();
        let state = g.state(EmitTo::All).unwrap();
        // a second accumulator merges the state twice and one more person for group 0
        let mut h = Groups::new(3);
        h.merge_batch(&state, &[0, 1, 2], 3).unwrap();
        h.merge_batch(&state, &[0, 1, 2], 3).unwrap();
        h.update_batch(&[strings(&[Some("z"), Some("a")])], &[0, 2], None, 3)
            .unwrap();
        let out = h.evaluate(EmitTo::All).unwrap();
        let out = out.as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(out.values().to_vec(), vec![3, 3, 1]);
    }

    #[test]
    fn a_filter_skips_rows_and_other_types_are_counted_by_value() {
        let mut g = Groups::new(10);
        let ints: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![1, 1, 2, 3]));
        let f = BooleanArray::from(vec![Some(true), Some(true), None, Some(false)]);
        g.update_batch(&[ints], &[0, 0, 0, 0], Some(&f), 1).unwrap();
        let out = g.evaluate(EmitTo::All).unwrap();
        assert_eq!(
            out.as_primitive::<arrow::datatypes::Int64Type>().value(0),
            1
        );
    }

    #[test]
    fn distinct_values_hash_apart() {
        let hs: std::collections::HashSet<u64> = (0..100_000)
            .map(|i| hash_bytes(format!("{i:032x}").as_bytes()))
            .collect();
        assert_eq!(hs.len(), 100_000);
    }
}
