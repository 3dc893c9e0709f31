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

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

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
    pub fn sensitive(&self, v: &mut [f64]) -> bool {
        v.sort_by(|a, b| b.total_cmp(a));
        let total: f64 = v.iter().sum();
        if total <= 0.0 {
            return false;
        }
        let top: f64 = v.iter().take(self.n as usize).sum();
        if self.k < 1.0 && top / total > self.k {
            return true;
        }
        if self.p > 0.0 {
            let x1 = v[0];
            let x2 = v.get(1).copied().unwrap_or(0.0);
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

/// The aggregate function for `t`.
pub fn udaf(t: Thresholds) -> AggregateUDF {
    AggregateUDF::new_from_impl(Sensitive {
        t,
        signature: Signature::exact(
            vec![DataType::Utf8, DataType::Float64],
            Volatility::Immutable,
        ),
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
        Ok(Box::new(Acc {
            t: self.t,
            sums: HashMap::new(),
        }))
    }
    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new_list(
                "persons",
                Field::new_list_field(DataType::Utf8, true),
                true,
            )),
            Arc::new(Field::new_list(
                "sums",
                Field::new_list_field(DataType::Float64, true),
                true,
            )),
        ])
    }
}

#[derive(Debug)]
struct Acc {
    t: Thresholds,
    sums: HashMap<String, f64>,
}

impl Acc {
    fn add(&mut self, persons: &dyn Array, values: &dyn Array) {
        let v = values.as_primitive::<Float64Type>();
        match persons.data_type() {
            DataType::Utf8 => {
                for (p, x) in persons.as_string::<i32>().iter().zip(v.iter()) {
                    if let (Some(p), Some(x)) = (p, x) {
                        *self.sums.entry(p.to_owned()).or_default() += x;
                    }
                }
            }
            DataType::Utf8View => {
                for (p, x) in persons.as_string_view().iter().zip(v.iter()) {
                    if let (Some(p), Some(x)) = (p, x) {
                        *self.sums.entry(p.to_owned()).or_default() += x;
                    }
                }
            }
            _ => {}
        }
    }
}

impl Accumulator for Acc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = arrow::compute::cast(&values[1], &DataType::Float64)?;
        self.add(values[0].as_ref(), v.as_ref());
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut v: Vec<f64> = self.sums.values().map(|x| x.abs()).collect();
        Ok(ScalarValue::Boolean(Some(
            !v.is_empty() && self.t.sensitive(&mut v),
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sums.capacity() * 64
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let persons: Vec<ScalarValue> = self
            .sums
            .keys()
            .map(|k| ScalarValue::Utf8(Some(k.clone())))
            .collect();
        let sums: Vec<ScalarValue> = self
            .sums
            .values()
            .map(|v| ScalarValue::Float64(Some(*v)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&persons, &DataType::Utf8)),
            ScalarValue::List(ScalarValue::new_list_nullable(&sums, &DataType::Float64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let persons: &ListArray = states[0].as_list::<i32>();
        let sums: &ListArray = states[1].as_list::<i32>();
        for i in 0..persons.len() {
            if persons.is_null(i) || sums.is_null(i) {
                continue;
            }
            let p = persons.value(i);
            let s = sums.value(i);
            self.add(p.as_ref(), s.as_ref());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
