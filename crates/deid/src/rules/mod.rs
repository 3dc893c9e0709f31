//! The column-rule vocabulary ([`Rule`]), its dispatch over Arrow arrays
//! ([`Rule::apply`]), and what a rule reports ([`RuleOutput`], [`RowFailure`]).
//!
//! Every rule takes a column and returns a new column of the same length plus the rows
//! it could not handle ([`RuleOutput::failures`]). A failed row's output is null and
//! its reason says why, without the value, so the ingest can quarantine the row. A rule
//! never passes a value it cannot handle through unchanged. Null in, null out.
//!
//! | rule | [`Rule`] variant | function |
//! | --- | --- | --- |
//! | `keep` | [`Rule::Keep`] | [`convert`] (to the declared [`OutType`]; text read by [`keep::TypedCol`]) |
//! | `drop` | [`Rule::Drop`] | the column is not written (the caller leaves it out) |
//! | `pseudonymise` | [`Rule::Pseudonymise`] | [`Pseudonymiser::pseudonymise`](crate::Pseudonymiser::pseudonymise), memoised by [`CachedPseudonymiser`] |
//! | `date_shift` | [`Rule::DateShift`] | [`date_shift`](crate::temporal::date_shift), by the shifts of [`DateShifter`](crate::DateShifter) |
//! | `truncate_date` | [`Rule::TruncateDate`] | [`truncate_date_floored`](crate::temporal::truncate_date_floored) |
//! | `age_band` | [`Rule::AgeBand`] | [`age_band`](crate::temporal::age_band) |
//! | `generalise_postcode` | [`Rule::GeneralisePostcode`] | [`generalise_postcode`](crate::geo::generalise_postcode) |
//! | `zip3` | [`Rule::Zip3`] | [`zip3`](crate::geo::zip3) |
//! | `round` | [`Rule::Round`] | [`round`] |
//! | `top_code` | [`Rule::TopCode`] | [`top_code`] |
//! | `redact` | [`Rule::Redact`] | a null column of the declared type (see also [`redact`], which keeps the input's type) |
//! | `map` | [`Rule::Map`] | [`map`] |
//!
//! How a rule is written in a pipeline spec (TOML) is parsed by `dhub-ingest`; what it
//! does to a column is decided here.

mod basic;
pub mod keep;

use std::collections::HashMap;

use arrow_array::{Array, ArrayRef, new_null_array};
use arrow_schema::DataType;

use crate::IdFormat;
use crate::error::{Reason, RuleError};
use crate::geo::PostcodeLevel;
use crate::memo::CachedPseudonymiser;
use crate::temporal::{self, AgeAt, DateUnit, TextDates, TruncateOutput};

pub(crate) use basic::visit_strings;
pub use basic::{map, redact, round, top_code};
pub use keep::convert;

/// One row a rule could not handle. Holds the row index within the batch and the
/// reason, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowFailure {
    /// Row index within the array (0-based).
    pub row: usize,
    /// The rule that failed.
    pub rule: &'static str,
    /// Why.
    pub reason: Reason,
}

impl RowFailure {
    pub(crate) fn new(row: usize, rule: &'static str, reason: Reason) -> Self {
        Self { row, rule, reason }
    }
}

/// A rule's result: the new column and the rows that failed (null in the column).
#[derive(Debug, Clone)]
pub struct RuleOutput {
    /// The de-identified column, as long as the input.
    pub array: ArrayRef,
    /// Rows the rule could not handle, in row order.
    pub failures: Vec<RowFailure>,
}

impl RuleOutput {
    /// A result without failures.
    pub fn ok(array: ArrayRef) -> Self {
        Self {
            array,
            failures: Vec::new(),
        }
    }
}

/// The type of an output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutType {
    /// Utf8.
    String,
    /// Int32.
    Int32,
    /// Int64.
    Int64,
    /// Float64.
    Float64,
    /// Boolean (`true`/`false`, `t`/`f`, `1`/`0`, case-insensitive).
    Boolean,
    /// Date32.
    Date,
    /// Timestamp(Microsecond, "UTC").
    Timestamp,
}

impl OutType {
    /// The type named as in specs: string, int32, int64, float64, boolean, date,
    /// timestamp.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "int32" => Self::Int32,
            "int64" => Self::Int64,
            "float64" => Self::Float64,
            "boolean" => Self::Boolean,
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            _ => return None,
        })
    }

    /// The Arrow type of this output type.
    pub fn arrow(self) -> DataType {
        use arrow_schema::TimeUnit;
        match self {
            Self::String => DataType::Utf8,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Float64 => DataType::Float64,
            Self::Boolean => DataType::Boolean,
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// A compiled column rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Keep the value, converted to `OutType`.
    Keep(OutType),
    /// Leave the column out.
    Drop,
    /// Keyed pseudonym of the value.
    Pseudonymise {
        /// Entity (pseudonym domain).
        entity: String,
        /// Normalisation.
        format: IdFormat,
    },
    /// Per-person date shift.
    DateShift(TextDates),
    /// Truncate to year or month; dates before the floor (days since epoch) are raised
    /// to it first.
    TruncateDate(DateUnit, TruncateOutput, Option<i32>),
    /// Age band at an event date (a source column) or a fixed date (days since epoch).
    AgeBand {
        /// Source column of the event date.
        at_column: Option<String>,
        /// Fixed date.
        at_date: Option<i32>,
        /// Band width in years.
        width: u32,
        /// Top band.
        top: Option<u32>,
    },
    /// UK postcode generalisation.
    GeneralisePostcode(PostcodeLevel),
    /// US ZIP to three digits (safe harbor).
    Zip3,
    /// Round to a multiple of `base`.
    Round(f64, OutType),
    /// Values above `max` become `max`.
    TopCode(f64, OutType),
    /// Always null.
    Redact(OutType),
    /// Lookup table.
    Map(HashMap<String, String>, Option<String>),
}

/// The rules this build knows, for error messages.
pub const RULES: &str = "keep, drop, pseudonymise, date_shift, truncate_date, age_band, generalise_postcode, zip3, round, top_code, redact, map";

/// What a rule reads besides its own column, per batch.
#[derive(Debug, Default)]
pub struct RuleInputs<'a> {
    /// `pseudonymise`: the column's pseudonymiser (keyed for the rule's entity).
    pub pseudonymiser: Option<&'a mut CachedPseudonymiser>,
    /// `date_shift`: each row's shift in days (`None` where the row has no person);
    /// without it every non-null value fails with [`Reason::NoPerson`].
    pub shifts: Option<&'a [Option<i32>]>,
    /// `age_band` at a column: that column of the batch.
    pub at_column: Option<&'a dyn Array>,
}

impl Rule {
    /// The rule's name as written in specs.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Keep(_) => "keep",
            Rule::Drop => "drop",
            Rule::Pseudonymise { .. } => "pseudonymise",
            Rule::DateShift(_) => "date_shift",
            Rule::TruncateDate(..) => "truncate_date",
            Rule::AgeBand { .. } => "age_band",
            Rule::GeneralisePostcode(_) => "generalise_postcode",
            Rule::Zip3 => "zip3",
            Rule::Round(..) => "round",
            Rule::TopCode(..) => "top_code",
            Rule::Redact(_) => "redact",
            Rule::Map(..) => "map",
        }
    }

    /// The output column's type (`None` for `drop`).
    pub fn out_type(&self) -> Option<OutType> {
        Some(match self {
            Rule::Keep(t) | Rule::Round(_, t) | Rule::TopCode(_, t) | Rule::Redact(t) => *t,
            Rule::Drop => return None,
            Rule::DateShift(TextDates::Date) => OutType::Date,
            Rule::DateShift(TextDates::Timestamp) => OutType::Timestamp,
            Rule::TruncateDate(_, TruncateOutput::Date, _) => OutType::Date,
            Rule::TruncateDate(_, TruncateOutput::YearNumber, _) => OutType::Int32,
            Rule::Pseudonymise { .. }
            | Rule::AgeBand { .. }
            | Rule::GeneralisePostcode(_)
            | Rule::Zip3
            | Rule::Map(..) => OutType::String,
        })
    }

    /// Applies the rule to one column of a batch: the output column (of
    /// [`Rule::out_type`]) and the rows that failed. `drop` gives a null text column
    /// (the caller does not write it).
    ///
    /// ```
    /// use arrow_array::{Int64Array, cast::AsArray, types::Int64Type};
    /// use dhub_deid::rules::{OutType, Rule, RuleInputs};
    /// let ages = Int64Array::from(vec![Some(93), Some(40), None]);
    /// let out = Rule::TopCode(90.0, OutType::Int64).apply(&ages, RuleInputs::default()).unwrap();
    /// let v: Vec<_> = out.array.as_primitive::<Int64Type>().iter().collect();
    /// assert_eq!(v, vec![Some(90), Some(40), None]);
    /// ```
    pub fn apply(&self, input: &dyn Array, with: RuleInputs<'_>) -> Result<RuleOutput, RuleError> {
        match self {
            Rule::Keep(t) => Ok(convert(input, *t)),
            Rule::Drop => Ok(RuleOutput::ok(new_null_array(&DataType::Utf8, input.len()))),
            Rule::Pseudonymise { .. } => match with.pseudonymiser {
                Some(p) => p.pseudonymise(input),
                None => Err(RuleError::BadParameter {
                    rule: "pseudonymise",
                    message: "no key for this entity".into(),
                }),
            },
            Rule::DateShift(text) => {
                let empty;
                let s = match with.shifts {
                    Some(s) => s,
                    None => {
                        empty = vec![None; input.len()];
                        &empty
                    }
                };
                // normalise typed inputs to the output type first
                temporal::date_shift(input, s, *text).map(|o| {
                    let t = match text {
                        TextDates::Date => OutType::Date,
                        TextDates::Timestamp => OutType::Timestamp,
                    };
                    cast_output(o, t)
                })
            }
            Rule::TruncateDate(unit, out, floor) => {
                temporal::truncate_date_floored(input, *unit, *out, *floor)
            }
            Rule::AgeBand {
                at_date,
                width,
                top,
                ..
            } => {
                let at = match (with.at_column, at_date) {
                    (Some(a), _) => AgeAt::Column(a),
                    (None, Some(d)) => AgeAt::Date(*d),
                    (None, None) => AgeAt::Date(0),
                };
                temporal::age_band(input, at, *width, *top)
            }
            Rule::GeneralisePostcode(level) => crate::geo::generalise_postcode(input, *level),
            Rule::Zip3 => crate::geo::zip3(input),
            Rule::Round(base, t) => round(input, *base).map(|o| cast_output(o, *t)),
            Rule::TopCode(max, t) => top_code(input, *max).map(|o| cast_output(o, *t)),
            Rule::Redact(t) => Ok(RuleOutput::ok(new_null_array(&t.arrow(), input.len()))),
            Rule::Map(table, default) => map(input, table, default.as_deref()),
        }
    }
}

/// Casts a rule's output to the declared type (a numeric rule over text gives Float64).
fn cast_output(mut o: RuleOutput, t: OutType) -> RuleOutput {
    let target = t.arrow();
    if o.array.data_type() != &target
        && let Ok(a) = arrow_cast::cast(&o.array, &target)
    {
        o.array = a;
    }
    o
}
