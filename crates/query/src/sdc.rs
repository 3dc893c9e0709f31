//! Output disclosure control, applied to **every** result by rewriting the logical plan,
//! and the disclosure record that says exactly what was done.
//!
//! # Aggregate mode
//!
//! Every output row must come from an aggregation over person-level data: under
//! projections, sorts, limits, `HAVING`/`WHERE` filters, aliases, window functions over
//! aggregates, `DISTINCT` and `UNION`, each branch of the final plan must end in an
//! `Aggregate`. Anything else is refused with an example of how to rewrite it. Each such
//! top aggregate is rewritten:
//!
//! * **persons per group**: a hidden count of distinct persons is added
//!   ([`crate::persons`]: capped at `min_cell`, exact where totals need a ranking; the
//!   query's own `count(DISTINCT person)` when it has one), through the
//!   tables' declared person columns (the column each ingest recorded), followed through
//!   aliases, views, subqueries and joins, so a person is counted once across
//!   `patients ⋈ encounters`; where a subquery selected only other columns the person
//!   column is carried up to the aggregation, hidden (not through `DISTINCT`,
//!   aggregations or unions, whose rows it would change). Groups with fewer than
//!   `min_cell` distinct persons are suppressed (the row is removed; groups of zero
//!   persons included).
//! * **rounding**: counts, and sums of 0/1 indicators, are rounded to the nearest
//!   multiple of `rounding` inside the plan, so everything computed from them (rates,
//!   `HAVING`, ordering) sees only rounded values.
//! * **dominance and p-ratio**: every `SUM`/`AVG` gets a hidden check of its group's
//!   per-person contributions ([`crate::dominance`]); a failing cell becomes null.
//! * **secondary suppression**: when a result also holds totals (a `UNION` of
//!   aggregates, grouping sets), a suppressed cell could be recovered by subtraction;
//!   the next-smallest group of the same branch is suppressed too, and when none is left
//!   the other branches (the totals) are.
//! * **restricted cells**: every restriction of a cell's input — its `FILTER`, NULL
//!   arguments, zeros of a sum, each branch of a `CASE` or other conditional inside it
//!   ([`restrictions`]) — must leave at least `min_cell` distinct persons (counted over
//!   every person column of the input: a join is as small as its smaller side), or the
//!   cell is NULL.
//! * **inner aggregates** (subqueries, joined CTEs, derived tables) get the same rules,
//!   their small cells NULL before anything is computed from them (`govern_inner`).
//! * **order statistics** ([`ORDER_STATISTICS`]): released only with `min_cell`
//!   persons strictly on each side ([`crate::order`]); levels 0 and 1 refused.
//! * **refused**: a predicate comparing a person identifier with literal values, in any
//!   clause ([`IDENTIFIER_LITERAL`]); aggregates that reveal single values (`min`, `max`,
//!   `first_value`, `last_value`, `array_agg`, `string_agg`, bits and booleans, …): only
//!   the reviewed functions in [`ALLOWED_AGGREGATES`] and [`ORDER_STATISTICS`] pass, so
//!   an aggregate a later DataFusion adds is refused until it is reviewed
//!   ([`SINGLE_VALUE_AGGREGATES`] lists the reviewed refusals); window functions over
//!   person-level rows, grouping by
//!   or aggregating a person identifier (other than counting distinct persons), an
//!   aggregation over already aggregated person-level data (its groups' persons cannot
//!   be counted), and the plain differencing pair: one aggregate subtracted from
//!   another in the same query.
//!
//! Residual risk (documented for data managers): two *separate* queries that differ by
//! one predicate can still difference a small group out of two large ones; rounding
//! blurs it and `dhub audit review` lists such query pairs per project for review.
//!
//! Execution errors are not a side channel either: after this rewrite the query service
//! makes every expression total ([`crate::total`]).
//!
//! # Record mode
//!
//! Rows are returned as they are (approved projects only), still row- and byte-limited
//! and audited.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{Int64Type, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Case, Expr, LogicalPlan, Operator, Projection, SubqueryAlias, Union,
    Window, cast, col, lit,
};
use dhub_govern::{Mode, OutputPolicy, Suppression};

use crate::order::Side;
use serde::{Deserialize, Serialize};

use crate::error::QueryError;

/// Visible column added under `suppression = null`: whether the row's values were
/// suppressed (nulled).
pub const SUPPRESSED: &str = "dhub_suppressed";

/// Hidden column: distinct persons of the row's group.
pub const PERSONS: &str = "__dhub_persons";
/// Hidden column: how many sums of the row failed dominance or p-ratio.
pub const DOMINANT: &str = "__dhub_dominant";
/// Hidden column: how many of the row's cells were nulled because a restriction of
/// their input (FILTER, CASE, NULLs) left fewer than `min_cell` persons.
pub const RESTRICTED: &str = "__dhub_restricted";
/// Hidden column: which UNION branch the row came from.
pub const BRANCH: &str = "__dhub_branch";
/// Hidden column: the grouping set of the row (0 = the full group, otherwise a subtotal).
pub const GROUPING: &str = "__dhub_grouping";

/// Aggregate functions allowed in aggregate mode (they summarise a group rather than
/// reveal one member's value). Each is governed: its cell is released only when at
/// least `min_cell` distinct persons contribute to it after every restriction
/// (`FILTER`, `CASE`, NULLs; see [`restrictions`]), counts are rounded, and sums and
/// averages pass the dominance and p-ratio rules.
pub const ALLOWED_AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "mean",
    "approx_distinct",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "var",
    "var_samp",
    "var_pop",
    "variance",
    "corr",
    "covar",
    "covar_samp",
    "covar_pop",
    "regr_slope",
    "regr_intercept",
    "regr_count",
    "regr_r2",
    "regr_avgx",
    "regr_avgy",
    "regr_sxx",
    "regr_syy",
    "regr_sxy",
    "grouping",
];

/// Order statistics: each is one person's value (or between two), so each is
/// governed: released only when at least `min_cell` distinct persons lie strictly on
/// each side of it ([`crate::order`]), at a level strictly between 0 and 1
/// (`approx_percentile_cont(x, 1.0)` is the maximum: refused).
pub const ORDER_STATISTICS: &[&str] = &[
    "median",
    "approx_median",
    "percentile_cont",
    "approx_percentile_cont",
];

/// Aggregates refused in aggregate mode because they return (or are built from) single
/// values: one person's value, the set of values, or a bit of any one person; and the
/// weighted percentile, whose sides cannot be counted in persons.
pub const SINGLE_VALUE_AGGREGATES: &[&str] = &[
    "approx_percentile_cont_with_weight",
    "percentile_disc",
    "mode",
    "min",
    "max",
    "first_value",
    "last_value",
    "nth_value",
    "array_agg",
    "string_agg",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "every",
    "any_value",
];

/// Why an aggregate function may not be used in aggregate mode (`None`: allowed). An
/// aggregate that is in none of the lists (one a later DataFusion adds) is refused too.
pub fn refusal_of_aggregate(name: &str) -> Option<String> {
    if ALLOWED_AGGREGATES.contains(&name) || ORDER_STATISTICS.contains(&name) {
        None
    } else {
        Some(format!(
            "aggregate `{name}` can reveal a single person's value and is not allowed in aggregate mode, in subqueries too; use count, sum, avg, stddev, variance, median or percentiles (allowed: {}, {})",
            ALLOWED_AGGREGATES.join(", "),
            ORDER_STATISTICS.join(", ")
        ))
    }
}

/// One disclosure rule and whether it changed the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// The rule (`aggregate_only`, `min_cell`, `rounding`, `dominance`, …).
    pub rule: String,
    /// Whether it changed anything.
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
    /// Result cells nulled or removed.
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

    fn rule(&mut self, rule: &str, fired: bool, detail: impl Into<String>) {
        self.rules.push(RuleRecord {
            rule: rule.into(),
            fired,
            detail: detail.into(),
        });
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

/// What the rewrite found, for [`finish`].
#[derive(Debug, Clone, Default)]
pub struct Rewritten {
    /// Whether the result holds totals next to details (union, grouping sets).
    pub totals: bool,
    /// Rounded count columns per top aggregate (for the record).
    pub rounded_columns: usize,
    /// Whether any top aggregate counts persons.
    pub person_level: bool,
    /// Output names of the top aggregates' aggregate columns.
    agg_names: HashSet<String>,
    /// Whether small groups were removed in the plan, below a window function (so that
    /// a window total cannot include them).
    pub prefiltered: bool,
}

fn func_name(e: &Expr) -> Option<(&str, &AggregateFunction)> {
    match e {
        Expr::AggregateFunction(f) => Some((f.func.name(), f)),
        Expr::Alias(a) => func_name(&a.expr),
        _ => None,
    }
}

fn columns_of(e: &Expr) -> HashSet<Column> {
    e.column_refs().into_iter().cloned().collect()
}

/// The name of a person column carried up through a projection that dropped it.
const CARRIED: &str = "__dhub_person";

/// `plan` with a person column added where projections dropped it, so an aggregation
/// above can count its persons; its own columns are unchanged. Goes through
/// projections, aliases, filters, sorts, limits, windows and joins; not through
/// `DISTINCT`, aggregations or unions, whose rows an extra column would change. `None`
/// when there is no person column to carry.
fn carry_person(
    plan: &LogicalPlan,
    persons: &HashMap<String, Option<String>>,
) -> Option<LogicalPlan> {
    if !person_columns(plan, persons).is_empty() {
        return Some(plan.clone());
    }
    match plan {
        LogicalPlan::Projection(p) => {
            let input = carry_person(&p.input, persons)?;
            let person = person_columns(&input, persons).into_iter().next()?;
            let mut exprs = p.expr.clone();
            exprs.push(Expr::Column(person).alias(CARRIED));
            Projection::try_new(exprs, Arc::new(input))
                .ok()
                .map(LogicalPlan::Projection)
        }
        LogicalPlan::SubqueryAlias(a) => {
            let input = carry_person(&a.input, persons)?;
            SubqueryAlias::try_new(Arc::new(input), a.alias.clone())
                .ok()
                .map(LogicalPlan::SubqueryAlias)
        }
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Window(_)
        | LogicalPlan::Join(_) => {
            let inputs = plan
                .inputs()
                .into_iter()
                .map(|i| carry_person(i, persons).unwrap_or_else(|| i.clone()))
                .collect::<Vec<_>>();
            let carried = plan.with_new_exprs(plan.expressions(), inputs).ok()?;
            (!person_columns(&carried, persons).is_empty()).then_some(carried)
        }
        _ => None,
    }
}

/// Does the subtree scan any person-level table?
fn has_person_tables(plan: &LogicalPlan, persons: &HashMap<String, Option<String>>) -> bool {
    let mut found = false;
    let _ = plan.apply(|n| {
        if let LogicalPlan::TableScan(s) = n
            && persons
                .get(s.table_name.table())
                .is_some_and(Option::is_some)
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// The columns of `plan`'s output that hold person pseudonyms.
pub fn person_columns(
    plan: &LogicalPlan,
    persons: &HashMap<String, Option<String>>,
) -> Vec<Column> {
    let out_col = |plan: &LogicalPlan, i: usize| Column::from(plan.schema().qualified_field(i));
    match plan {
        LogicalPlan::TableScan(s) => match persons.get(s.table_name.table()).cloned().flatten() {
            Some(p)
                if s.projected_schema
                    .index_of_column_by_name(Some(&s.table_name), &p)
                    .is_some() =>
            {
                vec![Column::new(Some(s.table_name.clone()), p)]
            }
            _ => vec![],
        },
        LogicalPlan::Projection(p) => {
            let inp = person_columns(&p.input, persons);
            p.expr
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match e.clone().unalias() {
                    Expr::Column(c) if inp.contains(&c) => Some(out_col(plan, i)),
                    _ => None,
                })
                .collect()
        }
        LogicalPlan::SubqueryAlias(a) => {
            let inp = person_columns(&a.input, persons);
            inp.iter()
                .filter_map(|c| a.input.schema().index_of_column(c).ok())
                .map(|i| out_col(plan, i))
                .collect()
        }
        LogicalPlan::Filter(f) => person_columns(&f.input, persons),
        LogicalPlan::Sort(s) => person_columns(&s.input, persons),
        LogicalPlan::Limit(l) => person_columns(&l.input, persons),
        LogicalPlan::Repartition(r) => person_columns(&r.input, persons),
        LogicalPlan::Distinct(d) => person_columns(d.input(), persons),
        LogicalPlan::Window(w) => person_columns(&w.input, persons),
        LogicalPlan::Join(j) => {
            let mut v = person_columns(&j.left, persons);
            v.extend(person_columns(&j.right, persons));
            v.retain(|c| plan.schema().has_column(c));
            v
        }
        LogicalPlan::Aggregate(a) => {
            let inp = person_columns(&a.input, persons);
            a.group_expr
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match e.clone().unalias() {
                    Expr::Column(c) if inp.contains(&c) => Some(out_col(plan, i)),
                    _ => None,
                })
                .collect()
        }
        LogicalPlan::Union(u) => {
            let sets: Vec<Vec<usize>> = u
                .inputs
                .iter()
                .map(|i| {
                    person_columns(i, persons)
                        .iter()
                        .filter_map(|c| i.schema().index_of_column(c).ok())
                        .collect()
                })
                .collect();
            (0..plan.schema().fields().len())
                .filter(|k| sets.iter().all(|s| s.contains(k)))
                .map(|k| out_col(plan, k))
                .collect()
        }
        _ => vec![],
    }
}

fn refused(m: impl Into<String>) -> QueryError {
    QueryError::refused(m)
}

fn df(e: datafusion::error::DataFusionError) -> QueryError {
    QueryError::internal(format!("disclosure-control rewrite: {e}"))
}

/// `sum(CASE … THEN 1 ELSE 0 END)`, `sum(CAST(bool AS …))`: a count in disguise.
fn is_indicator(e: &Expr) -> bool {
    let zero_one = |e: &Expr| matches!(e.clone().unalias(), Expr::Literal(v, _) if matches!(v.to_string().as_str(), "0" | "1"));
    match e.clone().unalias() {
        Expr::Case(Case {
            when_then_expr,
            else_expr,
            ..
        }) => {
            when_then_expr.iter().all(|(_, t)| zero_one(t))
                && else_expr.as_deref().is_none_or(zero_one)
        }
        Expr::Cast(c) => {
            c.expr
                .as_ref()
                .clone()
                .unalias()
                .to_string()
                .contains(" = ")
                || matches!(
                    c.expr.as_ref(),
                    Expr::BinaryExpr(_) | Expr::IsNull(_) | Expr::IsNotNull(_) | Expr::Not(_)
                )
        }
        _ => false,
    }
}

/// Is `e` a subtraction whose two sides are both aggregates (the differencing pair)?
fn differencing(e: &Expr, agg_names: &HashSet<String>) -> bool {
    let mut found = false;
    let _ = e.apply(|x| {
        if let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Minus,
            right,
        }) = x
        {
            let aggy = |s: &Expr| {
                s.column_refs().iter().any(|c| agg_names.contains(&c.name))
                    || s.apply(|y| {
                        Ok(
                            if matches!(y, Expr::AggregateFunction(_) | Expr::ScalarSubquery(_)) {
                                TreeNodeRecursion::Stop
                            } else {
                                TreeNodeRecursion::Continue
                            },
                        )
                    })
                    .map(|r| r == TreeNodeRecursion::Stop)
                    .unwrap_or(false)
            };
            if aggy(left) && aggy(right) {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

struct Ctx<'a> {
    policy: &'a OutputPolicy,
    persons: &'a HashMap<String, Option<String>>,
    out: Rewritten,
}

fn hidden_exprs(plan: &LogicalPlan) -> Vec<Expr> {
    plan.schema()
        .iter()
        .filter(|(_, f)| {
            [PERSONS, DOMINANT, RESTRICTED, BRANCH, GROUPING].contains(&f.name().as_str())
        })
        .map(|(q, f)| Expr::Column(Column::from((q, f))))
        .collect()
}

/// Rewrites one aggregate for disclosure control; `govern_input`: govern the aggregates
/// below it first (false when the caller already has).
fn rewrite_aggregate(
    a: &Aggregate,
    cx: &mut Ctx<'_>,
    govern_input: bool,
) -> Result<LogicalPlan, QueryError> {
    let policy = cx.policy;
    // 1. what may be aggregated
    for e in &a.aggr_expr {
        if let Some((name, _)) = func_name(e)
            && let Some(why) = refusal_of_aggregate(name)
        {
            return Err(refused(why));
        }
    }
    if a.group_expr
        .iter()
        .any(|g| matches!(g, Expr::GroupingSet(_)))
    {
        cx.out.totals = true;
    }
    // A subquery that selects only some columns (`FROM (SELECT gender AS sex FROM
    // patients)`) still counts its persons: their column is carried up to here, hidden.
    let inner = if govern_input {
        govern_inner(a.input.as_ref().clone(), cx)?
    } else {
        a.input.as_ref().clone()
    };
    let input = match carry_person(&inner, cx.persons) {
        Some(carried) => Arc::new(carried),
        None => Arc::new(inner),
    };
    let all_ps = person_columns(&input, cx.persons);
    let classes = equated(&input, &all_ps);
    // one person column per class of equal ones: the ones counted
    let ps: Vec<Column> = classes.iter().map(|c| c[0].clone()).collect();
    let person_level = !ps.is_empty();
    if !person_level && has_person_tables(&input, cx.persons) {
        return Err(refused(
            "this query aggregates results that were already aggregated, so the persons behind each group cannot be counted; write it as one aggregation over the tables (GROUP BY the categories you need)",
        ));
    }
    let pset: HashSet<&Column> = all_ps.iter().collect();
    for g in &a.group_expr {
        if columns_of(g).iter().any(|c| pset.contains(c)) {
            return Err(refused(
                "grouping by a person identifier puts one person in each group; group by characteristics (sex, age band, year, code) and count persons with count(DISTINCT …)",
            ));
        }
    }
    for e in &a.aggr_expr {
        if let Some((name, f)) = func_name(e) {
            let uses_person = f
                .params
                .args
                .iter()
                .any(|x| columns_of(x).iter().any(|c| pset.contains(c)));
            if uses_person && !matches!(name, "count" | "approx_distinct") {
                return Err(refused(format!(
                    "`{name}` over a person identifier reveals pseudonyms; only counting persons (count(DISTINCT …)) is allowed"
                )));
            }
        }
    }
    cx.out.person_level |= person_level;

    // 2. hidden aggregates: distinct persons, restricted persons per cell, dominance flags
    let n_aggr = a.aggr_expr.len();
    let mut aggr = a.aggr_expr.clone();
    let persons_of = |filter: Option<Expr>, exact: bool| -> Vec<Expr> {
        ps.iter()
            .map(|p| {
                let f = if exact {
                    datafusion::functions_aggregate::expr_fn::count_distinct(Expr::Column(
                        p.clone(),
                    ))
                } else {
                    Arc::new(crate::persons::udaf(policy.min_cell))
                        .call(vec![Expr::Column(p.clone())])
                };
                with_filter(f, filter.clone())
            })
            .collect()
    };
    // A query that already counts distinct persons (through its one person column) gives
    // the exact count for free; a second aggregate would also stop DataFusion planning
    // `count(DISTINCT …)` as a cheaper two-step group-by.
    let reuse = match classes.as_slice() {
        [class] => a.aggr_expr.iter().position(|e| {
            func_name(e).is_some_and(|(name, f)| {
                name == "count"
                    && f.params.distinct
                    && f.params.filter.is_none()
                    && matches!(f.params.args.as_slice(), [Expr::Column(c)] if class.contains(c))
            })
        }),
        _ => None,
    };
    // the group's persons: the least over every person column of the input (a join of
    // two person-level inputs is as small as its smaller side)
    let mut person_cols: Vec<String> = Vec::new();
    if reuse.is_none() && person_level {
        // Secondary suppression ranks groups by their persons, so a result with totals
        // needs the exact count; otherwise "small or not" is all the rule asks.
        for (j, e) in persons_of(None, cx.out.totals).into_iter().enumerate() {
            let name = format!("{PERSONS}{j}");
            aggr.push(e.alias(&name));
            person_cols.push(name);
        }
    }
    // Every restriction of a cell's input (FILTER, NULL arguments, zeros of a sum, each
    // branch of a CASE) must still hold `min_cell` persons, or the cell is suppressed.
    let input_schema = input.schema().clone();
    let mut restricted: Vec<(usize, Vec<Vec<String>>)> = Vec::new();
    if person_level {
        for (k, e) in a.aggr_expr.iter().enumerate() {
            let Some((name, f)) = func_name(e) else {
                continue;
            };
            let preds = restrictions(name, f, &input_schema, &pset);
            let mut sets = Vec::new();
            for (m, pred) in preds.into_iter().enumerate() {
                let mut names = Vec::new();
                for (j, h) in persons_of(Some(pred), false).into_iter().enumerate() {
                    let name = format!("__dhub_r{k}_{m}_{j}");
                    aggr.push(h.alias(&name));
                    names.push(name);
                }
                sets.push(names);
            }
            if !sets.is_empty() {
                restricted.push((k, sets));
            }
        }
    }
    // order statistics: released only with min_cell persons on each side
    let mut ordered: Vec<(usize, String)> = Vec::new();
    for (k, e) in a.aggr_expr.iter().enumerate() {
        let Some((name, f)) = func_name(e) else {
            continue;
        };
        if !ORDER_STATISTICS.contains(&name) {
            continue;
        }
        // levels at or beyond 0 and 1 are refused here
        order_level(name, f)?;
        if let (Some(p), Some(x)) = (ps.first(), f.params.args.first()) {
            // the cell is released only strictly between the two bounds (crate::order)
            let flag = format!("__dhub_ord{k}");
            for (side, suffix) in [(Side::Low, "lo"), (Side::High, "hi")] {
                let bound = with_filter(
                    Arc::new(crate::order::udaf(side, policy.min_cell)).call(vec![
                        Expr::Column(p.clone()),
                        cast(x.clone(), arrow::datatypes::DataType::Float64),
                    ]),
                    f.params.filter.as_deref().cloned(),
                );
                aggr.push(bound.alias(format!("{flag}{suffix}")));
            }
            ordered.push((k, flag));
        }
    }
    let dominance_on = policy.dominance_k < 1.0 || policy.p_ratio > 0.0;
    let mut flags: Vec<(usize, String)> = Vec::new(); // aggregate index -> flag name
    if let (Some(p), true) = (ps.first(), dominance_on) {
        let f = Arc::new(crate::dominance::udaf(crate::dominance::Thresholds {
            n: policy.dominance_n,
            k: policy.dominance_k,
            p: policy.p_ratio,
        }));
        for (i, e) in a.aggr_expr.iter().enumerate() {
            if let Some((name @ ("sum" | "avg" | "mean"), fun)) = func_name(e)
                && let Some(arg) = fun.params.args.first()
                && !(name == "sum" && is_indicator(arg))
            {
                let flag = format!("__dhub_dom{i}");
                // the same rows as the cell: its FILTER applies to the check too
                let check = with_filter(
                    f.call(vec![
                        Expr::Column(p.clone()),
                        cast(arg.clone(), arrow::datatypes::DataType::Float64),
                    ]),
                    fun.params.filter.as_deref().cloned(),
                );
                aggr.push(check.alias(&flag));
                flags.push((i, flag));
            }
        }
    }
    let extra = aggr.len() - n_aggr;
    let agg =
        LogicalPlan::Aggregate(Aggregate::try_new(input, a.group_expr.clone(), aggr).map_err(df)?);

    // 3. a projection over it: rounded counts, dominance-suppressed sums, restricted
    // cells nulled, hidden columns
    let schema = agg.schema().clone();
    let n_fields = schema.fields().len();
    let first_aggr = n_fields - extra - n_aggr;
    let persons = match reuse {
        Some(k) => Expr::Column(Column::from(schema.qualified_field(first_aggr + k))),
        None if person_cols.is_empty() => cast(
            lit(ScalarValue::Int64(None)),
            arrow::datatypes::DataType::Int64,
        ),
        None => least(person_cols.iter().map(|c| col(c.as_str())).collect()),
    };
    let min = lit(i64::from(policy.min_cell));
    let base = f64::from(policy.rounding);
    let mut exprs = Vec::new();
    let mut rounded = 0;
    let mut restricted_flags: Vec<Expr> = Vec::new();
    let null_mode = policy.suppression == Suppression::Null && person_level;
    for i in 0..n_fields - extra {
        let (q, f) = schema.qualified_field(i);
        let c = Expr::Column(Column::from((q, f)));
        let mut e = c.clone();
        if i >= first_aggr {
            let k = i - first_aggr;
            cx.out.agg_names.insert(f.name().clone());
            let is_count = func_name(&a.aggr_expr[k]).is_some_and(|(n, fun)| {
                n == "count"
                    || n == "regr_count"
                    || (n == "sum" && fun.params.args.first().is_some_and(is_indicator))
            });
            if is_count && policy.rounding > 0 && f.data_type().is_numeric() {
                let r = datafusion::functions::math::expr_fn::round(vec![
                    cast(e.clone(), arrow::datatypes::DataType::Float64) / lit(base),
                ]);
                e = cast(r * lit(base), f.data_type().clone());
                rounded += 1;
            }
            let null = || -> Result<Box<Expr>, QueryError> {
                Ok(Box::new(lit(
                    ScalarValue::try_from(f.data_type()).map_err(df)?
                )))
            };
            if let Some((_, flag)) = flags.iter().find(|(j, _)| *j == k) {
                e = Expr::Case(Case::new(
                    None,
                    vec![(Box::new(col(flag.as_str())), null()?)],
                    Some(Box::new(e)),
                ));
            }
            let restriction = restricted.iter().find(|(j, _)| *j == k);
            let order = ordered.iter().find(|(j, _)| *j == k);
            if restriction.is_some() || order.is_some() {
                // small if any restriction leaves fewer than min_cell persons, or an
                // order statistic has fewer on a side
                let small = restriction
                    .into_iter()
                    .flat_map(|(_, sets)| sets)
                    .map(|names| {
                        least(names.iter().map(|n| col(n.as_str())).collect()).lt(min.clone())
                    })
                    .chain(order.map(|(_, flag)| {
                        // released only strictly between the two bounds
                        let v = cast(c.clone(), arrow::datatypes::DataType::Float64);
                        col(format!("{flag}lo").as_str())
                            .lt(v.clone())
                            .and(v.lt(col(format!("{flag}hi").as_str())))
                            .is_not_true()
                    }))
                    .reduce(Expr::or)
                    .unwrap_or_else(|| lit(false));
                e = Expr::Case(Case::new(
                    None,
                    vec![(Box::new(small.clone()), null()?)],
                    Some(Box::new(e)),
                ));
                restricted_flags.push(small);
            }
            if null_mode {
                // suppression by nulling: the group stays, its values do not
                e = Expr::Case(Case::new(
                    None,
                    vec![(Box::new(persons.clone().lt(min.clone())), null()?)],
                    Some(Box::new(e)),
                ));
            }
        }
        if f.name() == "__grouping_id" {
            // keep the grouping set of each row, hidden, for secondary suppression
            exprs.push(e.alias(GROUPING));
            continue;
        }
        if e != c {
            e = e.alias_qualified(q.cloned(), f.name());
        }
        exprs.push(e);
    }
    cx.out.rounded_columns = cx.out.rounded_columns.max(rounded);
    exprs.push(persons.alias(PERSONS));
    let sum_flags = |v: Vec<Expr>| {
        v.into_iter()
            .map(|x| cast(x, arrow::datatypes::DataType::Int64))
            .reduce(|a, b| a + b)
            .unwrap_or_else(|| lit(0i64))
    };
    exprs.push(sum_flags(flags.iter().map(|(_, f)| col(f.as_str())).collect()).alias(DOMINANT));
    exprs.push(sum_flags(restricted_flags).alias(RESTRICTED));
    Ok(LogicalPlan::Projection(
        Projection::try_new(exprs, Arc::new(agg)).map_err(df)?,
    ))
}

/// The level of an order statistic: 0.5 for the medians, the literal second argument of
/// a percentile (`1 - level` under `WITHIN GROUP (ORDER BY x DESC)`), strictly between 0
/// and 1.
fn order_level(name: &str, f: &AggregateFunction) -> Result<f64, QueryError> {
    let level = match name {
        "median" | "approx_median" => 0.5,
        _ => {
            let given = match f.params.args.get(1).map(|e| e.clone().unalias()) {
                Some(Expr::Literal(v, _)) => v.to_string().parse::<f64>().ok(),
                _ => None,
            };
            let Some(l) = given else {
                return Err(refused(format!(
                    "`{name}` needs its level as a number literal (e.g. {name}(x, 0.9)) in aggregate mode"
                )));
            };
            if f.params.order_by.first().is_some_and(|s| !s.asc) {
                1.0 - l
            } else {
                l
            }
        }
    };
    if level > 0.0 && level < 1.0 {
        Ok(level)
    } else {
        Err(refused(format!(
            "`{name}` at level {level} is the minimum or maximum, one person's value: levels must be strictly between 0 and 1 (a percentile is released only with at least min_cell persons on each side)"
        )))
    }
}

/// The person columns `ps` in classes of columns that an inner join or a filter of
/// `input` makes equal (`patients p JOIN encounters e ON e.patient = p.id`): their
/// distinct counts are the same on every row that reaches the aggregate, so one per
/// class is counted. Each class in the order of `ps`. (Not through outer joins,
/// subqueries or aggregations.)
fn equated(input: &LogicalPlan, ps: &[Column]) -> Vec<Vec<Column>> {
    use datafusion::logical_expr::JoinType;
    use datafusion::logical_expr::utils::split_conjunction;
    if ps.len() < 2 {
        return ps.iter().map(|c| vec![c.clone()]).collect();
    }
    let mut pairs: Vec<(Column, Column)> = Vec::new();
    let mut eq = |e: &Expr| {
        for c in split_conjunction(e) {
            if let Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) = c
                && let (Expr::Column(a), Expr::Column(b)) = (left.as_ref(), right.as_ref())
            {
                pairs.push((a.clone(), b.clone()));
            }
        }
    };
    let _ = input.apply(|n| {
        match n {
            LogicalPlan::Join(j) if j.join_type == JoinType::Inner => {
                for (l, r) in &j.on {
                    eq(&l.clone().eq(r.clone()));
                }
                if let Some(f) = &j.filter {
                    eq(f);
                }
            }
            LogicalPlan::Filter(f) => eq(&f.predicate),
            LogicalPlan::Aggregate(_) | LogicalPlan::Union(_) | LogicalPlan::Distinct(_) => {
                return Ok(TreeNodeRecursion::Jump);
            }
            LogicalPlan::Join(_) => return Ok(TreeNodeRecursion::Jump),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    // union-find over the person columns, keeping the first of each class
    let mut class: Vec<usize> = (0..ps.len()).collect();
    let find = |class: &Vec<usize>, mut i: usize| {
        while class[i] != i {
            i = class[i];
        }
        i
    };
    for (a, b) in &pairs {
        let (Some(i), Some(j)) = (
            ps.iter().position(|c| c == a),
            ps.iter().position(|c| c == b),
        ) else {
            continue;
        };
        let (ri, rj) = (find(&class, i), find(&class, j));
        if ri != rj {
            class[ri.max(rj)] = ri.min(rj);
        }
    }
    let mut out: Vec<(usize, Vec<Column>)> = Vec::new();
    for (i, c) in ps.iter().enumerate() {
        let root = find(&class, i);
        match out.iter_mut().find(|(r, _)| *r == root) {
            Some((_, members)) => members.push(c.clone()),
            None => out.push((root, vec![c.clone()])),
        }
    }
    out.into_iter().map(|(_, members)| members).collect()
}

/// `f` (an aggregate call) with `filter` as its FILTER clause.
fn with_filter(f: Expr, filter: Option<Expr>) -> Expr {
    match (f, filter) {
        (Expr::AggregateFunction(mut a), Some(p)) => {
            a.params.filter = Some(Box::new(match a.params.filter.take() {
                Some(q) => q.and(p),
                None => p,
            }));
            Expr::AggregateFunction(a)
        }
        (f, _) => f,
    }
}

/// The least of `v` (NULLs ignored), as nested CASEs.
fn least(v: Vec<Expr>) -> Expr {
    v.into_iter()
        .reduce(|a, b| {
            Expr::Case(Case::new(
                None,
                vec![(
                    Box::new(a.clone().is_null().or(b.clone().lt(a.clone()))),
                    Box::new(b),
                )],
                Some(Box::new(a)),
            ))
        })
        .unwrap_or_else(|| lit(ScalarValue::Int64(None)))
}

fn and_all(v: impl IntoIterator<Item = Expr>) -> Option<Expr> {
    v.into_iter().reduce(Expr::and)
}

/// The restrictions of one aggregate cell's input, each a predicate over the
/// aggregate's input rows that must hold for `min_cell` distinct persons or the cell is
/// suppressed:
///
/// * its contributing rows: the `FILTER` clause, arguments not NULL (every allowed
///   aggregate ignores NULLs) and, for `sum`, not zero (a zero adds nothing): so
///   `avg(x) FILTER (WHERE …)`, `avg(CASE WHEN … THEN x END)` and
///   `sum(CASE WHEN … THEN x ELSE 0 END)` are computed over at least `min_cell` persons;
/// * each branch of every conditional inside an argument (`CASE`, a boolean cast to a
///   number, `nullif`, `coalesce`/`nvl`/`ifnull`): `sum(CASE WHEN <one person> THEN
///   1e6 ELSE 1 END)` would otherwise reveal that person through the total. A branch
///   that gives the whole argument NULL (or, for `sum`, zero) adds nothing and is left
///   out; every other branch, nested ones included, is a restriction.
///
/// Person columns themselves and arguments that cannot be NULL add no restriction, so a
/// plain `count(*)` or `count(DISTINCT patient)` adds nothing.
pub fn restrictions(
    name: &str,
    f: &AggregateFunction,
    schema: &datafusion::common::DFSchema,
    persons: &HashSet<&Column>,
) -> Vec<Expr> {
    use datafusion::logical_expr::ExprSchemable;
    if name == "grouping" {
        return vec![];
    }
    let is_constant = |e: &Expr| e.column_refs().is_empty();
    let mut contributing: Vec<Expr> = f.params.filter.as_deref().cloned().into_iter().collect();
    for arg in &f.params.args {
        if is_constant(arg) || arg.column_refs().iter().all(|c| persons.contains(c)) {
            continue;
        }
        if arg.nullable(schema).unwrap_or(true) {
            contributing.push(arg.clone().is_not_null());
        }
        if name == "sum" && arg.get_type(schema).is_ok_and(|t| t.is_numeric()) {
            contributing.push(arg.clone().not_eq(lit(0i64)));
        }
    }
    let base = and_all(contributing.clone());
    let mut out: Vec<Expr> = base.iter().cloned().collect();
    let mut branches = Vec::new();
    for arg in &f.params.args {
        conditionals(arg, None, true, schema, &mut branches);
    }
    for (cond, value, top) in branches {
        let neutral = |v: &Option<Expr>| match v {
            None => true,
            Some(Expr::Literal(x, _)) => {
                x.is_null() || (name == "sum" && matches!(x.to_string().as_str(), "0" | "0.0"))
            }
            Some(_) => false,
        };
        if top && neutral(&value) {
            continue;
        }
        out.push(match &base {
            Some(b) => b.clone().and(cond),
            None => cond,
        });
    }
    out
}

/// Collects `(condition, value, top)` for each branch of each conditional in `e`:
/// `condition` selects the rows that take the branch (under `path`), `value` is what
/// the branch gives (`None` for NULL), and `top` says whether that value is the whole
/// argument's value on those rows.
fn conditionals(
    e: &Expr,
    path: Option<Expr>,
    top: bool,
    schema: &datafusion::common::DFSchema,
    out: &mut Vec<(Expr, Option<Expr>, bool)>,
) {
    use datafusion::logical_expr::ExprSchemable;
    let under = |c: Expr| match &path {
        Some(p) => p.clone().and(c),
        None => c,
    };
    let branch = |out: &mut Vec<_>, cond: Expr, value: Option<Expr>| {
        let cond = under(cond);
        out.push((cond.clone(), value.clone(), top));
        if let Some(v) = value {
            conditionals(&v, Some(cond), top, schema, out);
        }
    };
    match e {
        Expr::Alias(a) => conditionals(&a.expr, path, top, schema, out),
        Expr::Case(c) => {
            let mut taken: Vec<Expr> = Vec::new();
            for (w, t) in &c.when_then_expr {
                let w = match &c.expr {
                    Some(base) => base.as_ref().clone().eq(w.as_ref().clone()),
                    None => w.as_ref().clone(),
                };
                let cond = and_all(
                    taken
                        .iter()
                        .map(|x| x.clone().is_not_true())
                        .chain([w.clone().is_true()]),
                )
                .unwrap_or_else(|| lit(true));
                let value = match t.as_ref() {
                    Expr::Literal(v, _) if v.is_null() => None,
                    v => Some(v.clone()),
                };
                branch(out, cond, value);
                taken.push(w);
            }
            let cond =
                and_all(taken.iter().map(|x| x.clone().is_not_true())).unwrap_or_else(|| lit(true));
            let value = match c.else_expr.as_deref() {
                None => None,
                Some(Expr::Literal(v, _)) if v.is_null() => None,
                Some(v) => Some(v.clone()),
            };
            branch(out, cond, value);
        }
        Expr::Cast(datafusion::logical_expr::Cast { expr, field })
        | Expr::TryCast(datafusion::logical_expr::TryCast { expr, field })
            if field.data_type().is_numeric()
                && expr
                    .get_type(schema)
                    .is_ok_and(|t| t == arrow::datatypes::DataType::Boolean) =>
        {
            branch(out, expr.as_ref().clone().is_true(), Some(lit(1i64)));
            branch(out, expr.as_ref().clone().is_false(), Some(lit(0i64)));
        }
        Expr::ScalarFunction(f) => match (f.func.name(), f.args.as_slice()) {
            ("nullif", [a, b]) => {
                branch(out, a.clone().eq(b.clone()).is_true(), None);
                branch(out, a.clone().eq(b.clone()).is_not_true(), Some(a.clone()));
            }
            ("coalesce" | "nvl" | "ifnull", args) if args.len() >= 2 => {
                for (i, x) in args.iter().enumerate() {
                    let cond = and_all(
                        args[..i]
                            .iter()
                            .map(|p| p.clone().is_null())
                            .chain([x.clone().is_not_null()]),
                    )
                    .unwrap_or_else(|| lit(true));
                    branch(out, cond, Some(x.clone()));
                }
            }
            _ => {
                for x in &f.args {
                    conditionals(x, path.clone(), false, schema, out);
                }
            }
        },
        other => {
            let _ = other.apply_children(|x| {
                conditionals(x, path.clone(), false, schema, out);
                Ok(TreeNodeRecursion::Continue)
            });
        }
    }
}

fn has_aggregate(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply(|n| {
        if matches!(n, LogicalPlan::Aggregate(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Governs the aggregates *inside* a query, below or beside its released aggregates: in
/// subqueries (`WHERE x > (SELECT avg(x) FROM … WHERE <one person>)`), CTEs joined in,
/// derived tables. Their values are not released as rows, but whatever is computed from
/// them is, so each cell obeys the same rules (at least `min_cell` persons after every
/// restriction, counts rounded) and is NULL otherwise; the rows stay. Aggregates grouped
/// by a person column (per-person values, as in `WHERE id IN (SELECT patient FROM
/// encounters GROUP BY patient HAVING count(*) > 5)`) are person-level data and are
/// counted by the aggregate above them instead.
fn govern_inner(plan: LogicalPlan, cx: &Ctx<'_>) -> Result<LogicalPlan, QueryError> {
    let mut refusal: Option<QueryError> = None;
    let out = plan.transform_up_with_subqueries(|n| {
        let LogicalPlan::Aggregate(a) = &n else {
            return Ok(datafusion::common::tree_node::Transformed::no(n));
        };
        match inner_aggregate(a, cx) {
            Ok(Some(p)) => Ok(datafusion::common::tree_node::Transformed::yes(p)),
            Ok(None) => Ok(datafusion::common::tree_node::Transformed::no(n)),
            Err(e) => {
                refusal = Some(e);
                Err(datafusion::error::DataFusionError::Plan(
                    "refused by disclosure control".into(),
                ))
            }
        }
    });
    match (out, refusal) {
        (_, Some(e)) => Err(e),
        (Ok(t), None) => Ok(t.data),
        (Err(e), None) => Err(df(e)),
    }
}

/// One inner aggregate governed (see [`govern_inner`]); `None` when it needs nothing.
fn inner_aggregate(a: &Aggregate, cx: &Ctx<'_>) -> Result<Option<LogicalPlan>, QueryError> {
    let input = carry_person(&a.input, cx.persons).unwrap_or_else(|| a.input.as_ref().clone());
    let ps = person_columns(&input, cx.persons);
    if ps.is_empty() && !has_person_tables(&input, cx.persons) {
        return Ok(None);
    }
    let pset: HashSet<&Column> = ps.iter().collect();
    if a.group_expr
        .iter()
        .any(|g| columns_of(g).iter().any(|c| pset.contains(c)))
    {
        return Ok(None);
    }
    let policy = OutputPolicy {
        suppression: Suppression::Null,
        ..cx.policy.clone()
    };
    let mut scratch = Ctx {
        policy: &policy,
        persons: cx.persons,
        out: Rewritten::default(),
    };
    let rewritten = rewrite_aggregate(a, &mut scratch, false)?;
    // the aggregate's own columns, under their own names: nothing hidden goes up
    let exprs = a
        .schema
        .iter()
        .enumerate()
        .map(|(i, (q, f))| {
            let (rq, rf) = rewritten.schema().qualified_field(i);
            Expr::Column(Column::from((rq, rf))).alias_qualified(q.cloned(), f.name())
        })
        .collect::<Vec<_>>();
    Ok(Some(LogicalPlan::Projection(
        Projection::try_new(exprs, Arc::new(rewritten)).map_err(df)?,
    )))
}

fn rewrite_top(plan: &LogicalPlan, cx: &mut Ctx<'_>) -> Result<LogicalPlan, QueryError> {
    let one = |p: &LogicalPlan, input: LogicalPlan| -> Result<LogicalPlan, QueryError> {
        p.with_new_exprs(p.expressions(), vec![input]).map_err(df)
    };
    // subqueries in this node's expressions (a HAVING … IN (SELECT …)) are governed too
    let governed;
    let plan = {
        let mut refusal = None;
        let t = plan.clone().map_subqueries(|s| match govern_inner(s, cx) {
            Ok(p) => Ok(datafusion::common::tree_node::Transformed::yes(p)),
            Err(e) => {
                refusal = Some(e);
                Err(datafusion::error::DataFusionError::Plan(
                    "refused by disclosure control".into(),
                ))
            }
        });
        governed = match (t, refusal) {
            (_, Some(e)) => return Err(e),
            (Ok(t), None) => t.data,
            (Err(e), None) => return Err(df(e)),
        };
        &governed
    };
    match plan {
        LogicalPlan::Aggregate(a) => rewrite_aggregate(a, cx, true),
        LogicalPlan::Projection(p) => {
            let input = rewrite_top(&p.input, cx)?;
            for e in &p.expr {
                if differencing(e, &cx.out.agg_names) {
                    return Err(refused(
                        "subtracting one aggregate from another in the same query can recover a suppressed group (differencing); return the counts separately",
                    ));
                }
                let mut subquery = false;
                let _ = e.apply(|x| {
                    if matches!(x, Expr::ScalarSubquery(_)) {
                        subquery = true;
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
                if subquery {
                    return Err(refused(
                        "a subquery in the result columns is not checked by disclosure control; compute it as a separate aggregation (or join an aggregated CTE)",
                    ));
                }
            }
            let mut exprs = p.expr.clone();
            exprs.extend(hidden_exprs(&input));
            Ok(LogicalPlan::Projection(
                Projection::try_new(exprs, Arc::new(input)).map_err(df)?,
            ))
        }
        LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::Repartition(_) => {
            let input = rewrite_top(plan.inputs()[0], cx)?;
            one(plan, input)
        }
        LogicalPlan::Distinct(d) => {
            let input = rewrite_top(d.input(), cx)?;
            one(plan, input)
        }
        LogicalPlan::SubqueryAlias(a) => {
            let input = rewrite_top(&a.input, cx)?;
            Ok(LogicalPlan::SubqueryAlias(
                SubqueryAlias::try_new(Arc::new(input), a.alias.clone()).map_err(df)?,
            ))
        }
        LogicalPlan::Window(w) => {
            if !has_aggregate(&w.input) {
                return Err(refused(
                    "window functions over person-level rows reveal individual records; apply them to the result of an aggregation (e.g. rank() OVER (ORDER BY n) over a GROUP BY)",
                ));
            }
            let mut input = rewrite_top(&w.input, cx)?;
            // A window over groups (`sum(count(*)) OVER ()`, a rank) is computed before
            // the result is checked: small groups must be gone by then, or a window total
            // minus the released cells would recover them. Under `suppression = null`
            // their values are already NULL in the plan.
            if cx.policy.suppression == Suppression::Remove {
                let persons = input
                    .schema()
                    .iter()
                    .find(|(_, f)| f.name() == PERSONS)
                    .map(|(q, f)| Expr::Column(Column::from((q, f))));
                if let Some(p) = persons {
                    let keep = p
                        .clone()
                        .is_null()
                        .or(p.gt_eq(lit(i64::from(cx.policy.min_cell))));
                    input = LogicalPlan::Filter(
                        datafusion::logical_expr::Filter::try_new(keep, Arc::new(input))
                            .map_err(df)?,
                    );
                    cx.out.prefiltered = true;
                }
            }
            Ok(LogicalPlan::Window(
                Window::try_new(w.window_expr.clone(), Arc::new(input)).map_err(df)?,
            ))
        }
        LogicalPlan::Union(u) => {
            cx.out.totals |= u.inputs.len() > 1;
            let mut inputs = Vec::new();
            for (i, inp) in u.inputs.iter().enumerate() {
                let r = rewrite_top(inp, cx)?;
                let mut exprs: Vec<Expr> = r
                    .schema()
                    .iter()
                    .map(|(q, f)| Expr::Column(Column::from((q, f))))
                    .collect();
                exprs.push(lit(i as i64).alias(BRANCH));
                inputs.push(Arc::new(LogicalPlan::Projection(
                    Projection::try_new(exprs, Arc::new(r)).map_err(df)?,
                )));
            }
            Ok(LogicalPlan::Union(
                Union::try_new_with_loose_types(inputs).map_err(df)?,
            ))
        }
        _ => Err(refused(AGGREGATE_HINT)),
    }
}

/// Checks the whole plan, subqueries included: no aggregate outside
/// [`ALLOWED_AGGREGATES`], no window function over person-level rows, no scalar
/// subquery in the released columns.
fn check_everywhere(plan: &LogicalPlan) -> Result<(), QueryError> {
    let mut bad: Option<QueryError> = None;
    let _ = plan.apply_with_subqueries(|n| {
        match n {
            LogicalPlan::Aggregate(a) => {
                for e in &a.aggr_expr {
                    if let Some((name, _)) = func_name(e)
                        && let Some(why) = refusal_of_aggregate(name)
                    {
                        bad = Some(refused(why));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
            }
            LogicalPlan::Window(w) if !has_aggregate(&w.input) => {
                bad = Some(refused(
                    "window functions over person-level rows reveal individual records; apply them to the result of an aggregation (e.g. rank() OVER (ORDER BY n) over a GROUP BY)",
                ));
                return Ok(TreeNodeRecursion::Stop);
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match bad {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Why a predicate on a person identifier with literal values is refused.
pub const IDENTIFIER_LITERAL: &str = "comparing a person identifier with a literal value (`= '…'`, `IN ('…', …)`, LIKE, a range, a function of it) selects one person's records, so it is refused in aggregate mode in every clause (WHERE, ON, FILTER, CASE, HAVING); select people by their characteristics (sex, age band, year, code) instead";

/// Refuses, anywhere in the plan (subqueries included), a predicate that compares a
/// person identifier, or an expression of one, with literal values only.
fn check_identifier_literals(
    plan: &LogicalPlan,
    persons: &HashMap<String, Option<String>>,
) -> Result<(), QueryError> {
    let mut bad = false;
    let _ = plan.apply_with_subqueries(|node| {
        let ids: HashSet<Column> = node
            .inputs()
            .iter()
            .flat_map(|i| person_columns(i, persons))
            .collect();
        if ids.is_empty() {
            return Ok(TreeNodeRecursion::Continue);
        }
        let schema = crate::total::input_schema(node).ok().flatten();
        if node
            .expressions()
            .iter()
            .any(|e| singles_out(e, &ids, schema.as_deref()))
        {
            bad = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if bad {
        Err(refused(IDENTIFIER_LITERAL))
    } else {
        Ok(())
    }
}

/// Does `e` hold a comparison (or a boolean function) whose operands are each either
/// an expression of a person identifier or a constant, with at least one of each?
fn singles_out(
    e: &Expr,
    ids: &HashSet<Column>,
    schema: Option<&datafusion::common::DFSchema>,
) -> bool {
    use datafusion::logical_expr::ExprSchemable;
    let split = |ops: Vec<&Expr>| {
        let id = ops
            .iter()
            .filter(|o| o.column_refs().iter().any(|c| ids.contains(*c)))
            .count();
        let constant = ops.iter().filter(|o| crate::total::is_constant(o)).count();
        id > 0 && constant > 0 && id + constant == ops.len()
    };
    e.exists(|x| {
        Ok(match x {
            Expr::BinaryExpr(b)
                if matches!(
                    b.op,
                    Operator::Eq
                        | Operator::NotEq
                        | Operator::Lt
                        | Operator::LtEq
                        | Operator::Gt
                        | Operator::GtEq
                        | Operator::IsDistinctFrom
                        | Operator::IsNotDistinctFrom
                        | Operator::LikeMatch
                        | Operator::ILikeMatch
                        | Operator::NotLikeMatch
                        | Operator::NotILikeMatch
                        | Operator::RegexMatch
                        | Operator::RegexIMatch
                        | Operator::RegexNotMatch
                        | Operator::RegexNotIMatch
                ) =>
            {
                split(vec![&b.left, &b.right])
            }
            Expr::Like(l) | Expr::SimilarTo(l) => split(vec![&l.expr, &l.pattern]),
            Expr::InList(i) => split(std::iter::once(i.expr.as_ref()).chain(&i.list).collect()),
            Expr::Between(b) => split(vec![&b.expr, &b.low, &b.high]),
            Expr::ScalarFunction(f)
                if schema.is_some_and(|s| {
                    x.get_type(s)
                        .is_ok_and(|t| t == arrow::datatypes::DataType::Boolean)
                }) =>
            {
                split(f.args.iter().collect())
            }
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// Applies the project's policy to a planned query.
pub fn apply(
    plan: LogicalPlan,
    policy: &OutputPolicy,
    persons: &HashMap<String, Option<String>>,
) -> Result<(LogicalPlan, Disclosure, Rewritten), QueryError> {
    match policy.mode {
        Mode::Record => {
            let mut d = Disclosure::for_policy(
                policy,
                "record mode: rows returned as they are, under the row and byte limits",
            );
            d.rule(
                "record_mode",
                false,
                match &policy.approval {
                    Some(a) => format!("approved by {}", a.by),
                    None => "approved".into(),
                },
            );
            Ok((plan, d, Rewritten::default()))
        }
        Mode::Aggregate => {
            check_everywhere(&plan)?;
            check_identifier_literals(&plan, persons)?;
            let mut cx = Ctx {
                policy,
                persons,
                out: Rewritten::default(),
            };
            let plan = rewrite_top(&plan, &mut cx)?;
            let mut d = Disclosure::for_policy(policy, "aggregate mode");
            d.rule("aggregate_only", false, "every output row is an aggregate");
            Ok((plan, d, cx.out))
        }
    }
}

/// Suppression and clean-up on the collected result: removes groups under `min_cell`
/// (and secondary cells when totals are present), counts what dominance and rounding did
/// and drops the hidden columns. Returns the released schema and rows.
pub fn finish(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    policy: &OutputPolicy,
    rw: &Rewritten,
    d: &mut Disclosure,
) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
    let idx = |n: &str| schema.fields().iter().position(|f| f.name() == n);
    let (Some(pi), Some(di)) = (idx(PERSONS), idx(DOMINANT)) else {
        return Ok((schema, batches));
    };
    let bi = idx(BRANCH);
    let gi = idx(GROUPING);
    let ri = idx(RESTRICTED);
    let all = arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| QueryError::internal(e.to_string()))?;
    let n = all.num_rows();
    let visible: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| i != pi && i != di && Some(i) != bi && Some(i) != gi && Some(i) != ri)
        .collect();
    let as_i64 = |a: &ArrayRef| -> Result<Vec<Option<i64>>, QueryError> {
        let c = arrow::compute::cast(a, &arrow::datatypes::DataType::Int64)
            .map_err(|e| QueryError::internal(e.to_string()))?;
        Ok(c.as_primitive::<Int64Type>().iter().collect())
    };
    let persons = as_i64(all.column(pi))?;
    let dominated = as_i64(all.column(di))?;
    let branch = match bi {
        Some(b) => as_i64(all.column(b))?,
        None => vec![Some(0); n],
    };
    let min = i64::from(policy.min_cell);
    // under `suppression = null` a small group stays, its values already nulled in the
    // plan, and is flagged; otherwise it is removed
    let null_mode = policy.suppression == dhub_govern::Suppression::Null && rw.person_level;
    let mut keep = vec![true; n];
    let mut small = vec![false; n];
    let mut primary = 0u64;
    let mut by_branch: HashMap<i64, (u64, Vec<usize>)> = HashMap::new();
    for r in 0..n {
        let b = branch[r].unwrap_or(0);
        let e = by_branch.entry(b).or_default();
        match persons[r] {
            Some(p) if p < min => {
                small[r] = true;
                keep[r] = null_mode;
                primary += 1;
                e.0 += 1;
            }
            _ => e.1.push(r),
        }
    }
    d.rule(
        "min_cell",
        primary > 0 || rw.prefiltered,
        if !rw.person_level {
            "no person-level data in this result".into()
        } else if null_mode {
            format!(
                "{primary} group(s) with fewer than {min} distinct persons suppressed: values nulled, `{SUPPRESSED}` true"
            )
        } else if rw.prefiltered {
            format!(
                "groups with fewer than {min} distinct persons removed before the window functions were computed (not counted here)"
            )
        } else {
            format!("{primary} group(s) with fewer than {min} distinct persons removed")
        },
    );
    let mut secondary = 0u64;
    if let (Some(g), true) = (gi, primary > 0) {
        // grouping sets: a suppressed detail could be recovered from any subtotal over
        // it, so once a detail row is suppressed every subtotal row goes too
        let grouping = as_i64(all.column(g))?;
        let detail_suppressed = (0..n).any(|r| small[r] && grouping[r] == Some(0));
        if detail_suppressed {
            for r in 0..n {
                if keep[r] && !small[r] && grouping[r] != Some(0) {
                    keep[r] = false;
                    secondary += 1;
                }
            }
        }
    } else if rw.totals && primary > 0 {
        let branches: Vec<i64> = by_branch.keys().copied().collect();
        for b in &branches {
            let (suppressed, visible_rows) = by_branch[b].clone();
            if suppressed == 0 {
                continue;
            }
            let smallest = visible_rows
                .iter()
                .filter(|&&r| persons[r].is_some())
                .min_by_key(|&&r| persons[r].unwrap_or(i64::MAX));
            match smallest {
                Some(&r) => {
                    keep[r] = false;
                    secondary += 1;
                }
                None => {
                    // nothing left to hide it among: the totals go
                    for o in branches.iter().filter(|o| *o != b) {
                        for &r in &by_branch[o].1 {
                            if keep[r] {
                                keep[r] = false;
                                secondary += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    d.rule(
        "secondary_suppression",
        secondary > 0,
        if rw.totals {
            format!("{secondary} further group(s) removed so no suppressed group can be recovered from a total")
        } else {
            "no totals in this result".into()
        },
    );
    let kept: usize = keep.iter().filter(|k| **k).count();
    let dominated_cells: u64 = dominated
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(x, _)| u64::try_from(x.unwrap_or(0)).unwrap_or(0))
        .sum();
    let dominance_on = policy.dominance_k < 1.0 || policy.p_ratio > 0.0;
    d.rule(
        "dominance",
        dominated_cells > 0,
        if dominance_on {
            format!(
                "{dominated_cells} sum/average cell(s) nulled: a few persons held most of the total (n={}, k={}, p={})",
                policy.dominance_n, policy.dominance_k, policy.p_ratio
            )
        } else {
            "off".into()
        },
    );
    let restricted_cells: u64 = match ri {
        Some(r) => as_i64(all.column(r))?
            .iter()
            .enumerate()
            .filter(|(r, _)| keep[*r] && !small[*r])
            .map(|(_, x)| u64::try_from(x.unwrap_or(0)).unwrap_or(0))
            .sum(),
        None => 0,
    };
    d.rule(
        "restricted_cells",
        restricted_cells > 0,
        format!(
            "{restricted_cells} cell(s) nulled: a restriction of their input (FILTER, CASE, NULL values) left fewer than {min} distinct persons"
        ),
    );
    let rounded = (rw.rounded_columns * kept) as u64;
    d.rule(
        "rounding",
        rounded > 0,
        if policy.rounding > 0 {
            format!(
                "counts rounded to the nearest {} ({rounded} cell(s))",
                policy.rounding
            )
        } else {
            "off".into()
        },
    );
    let removed = (n - kept) as u64;
    // cells nulled in kept small groups
    let nulled: u64 = (0..n)
        .filter(|&r| small[r] && keep[r])
        .map(|r| {
            visible
                .iter()
                .filter(|&&i| all.column(i).is_null(r))
                .count() as u64
        })
        .sum();
    d.rows_suppressed = removed;
    d.cells_suppressed =
        removed * visible.len() as u64 + nulled + dominated_cells + restricted_cells;
    d.cells_rounded = rounded;
    let flags: Vec<bool> = small
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(s, _)| *s)
        .collect();
    let mask = BooleanArray::from(keep);
    let filtered = arrow::compute::filter_record_batch(&all, &mask)
        .map_err(|e| QueryError::internal(e.to_string()))?;
    let mut fields: Vec<arrow::datatypes::FieldRef> = visible
        .iter()
        .map(|&i| schema.fields()[i].clone())
        .collect();
    let mut cols: Vec<ArrayRef> = visible
        .iter()
        .map(|&i| filtered.column(i).clone())
        .collect();
    if null_mode {
        fields.push(Arc::new(arrow::datatypes::Field::new(
            SUPPRESSED,
            arrow::datatypes::DataType::Boolean,
            false,
        )));
        cols.push(Arc::new(BooleanArray::from(flags)));
    }
    let out_schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(out_schema.clone(), cols)
        .map_err(|e| QueryError::internal(e.to_string()))?;
    Ok((out_schema, vec![batch]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every aggregate function the engine registers (names and aliases) has been
    /// reviewed: allowed and governed, or refused with a reason. A new DataFusion version
    /// that adds an aggregate fails here until it is classified (it is refused meanwhile).
    #[test]
    fn every_registered_aggregate_is_reviewed() {
        let ctx = datafusion::prelude::SessionContext::new();
        let state = ctx.state();
        let mut unreviewed = Vec::new();
        // keyed by every name and alias; a plan names the function by its canonical
        // name (`quantile_cont` is planned as `percentile_cont`), which is what is checked
        for f in state.aggregate_functions().values() {
            let n = f.name();
            let reviewed = ALLOWED_AGGREGATES.contains(&n)
                || ORDER_STATISTICS.contains(&n)
                || SINGLE_VALUE_AGGREGATES.contains(&n);
            if !reviewed {
                unreviewed.push(n.to_owned());
            }
        }
        unreviewed.sort();
        unreviewed.dedup();
        assert!(
            unreviewed.is_empty(),
            "aggregates not reviewed for aggregate mode: {unreviewed:?}"
        );
        for n in SINGLE_VALUE_AGGREGATES {
            assert!(refusal_of_aggregate(n).is_some(), "{n}");
        }
        for n in ALLOWED_AGGREGATES.iter().chain(ORDER_STATISTICS) {
            assert!(refusal_of_aggregate(n).is_none(), "{n}");
        }
        assert!(refusal_of_aggregate("some_future_aggregate").is_some());
        assert!(refusal_of_aggregate("count").is_none());
    }
}
