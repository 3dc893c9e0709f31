//! Differencing review: groups of a project's queries that differ only by one predicate.
//!
//! Two released aggregates over the same groups, one with an extra condition, can be
//! subtracted to reveal a small group that neither shows (the differencing attack);
//! disclosure control refuses the plain pair within one query, but not across queries.
//! A data manager reviews such pairs with `dhub audit review --project ID`, which reads
//! the project's audited queries and lists every group of queries that have the same
//! shape once their `WHERE` conditions are removed, and whose conditions differ by
//! exactly one predicate.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Select, Statement, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde::Serialize;

/// Queries of one shape that differ by single predicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewGroup {
    /// The query with its conditions removed.
    pub shape: String,
    /// (audit sequence number, the query's conditions), oldest first.
    pub queries: Vec<(i64, Vec<String>)>,
    /// Pairs of sequence numbers whose conditions differ by exactly one predicate.
    pub pairs: Vec<(i64, i64)>,
}

fn conjuncts(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other.to_string()),
    }
}

struct Strip(Vec<String>);

impl VisitorMut for Strip {
    type Break = ();
    fn pre_visit_select(&mut self, s: &mut Select) -> ControlFlow<()> {
        if let Some(w) = s.selection.take() {
            conjuncts(&w, &mut self.0);
        }
        if let Some(h) = s.having.take() {
            conjuncts(&h, &mut self.0);
        }
        ControlFlow::Continue(())
    }
}

/// The shape of a query and its predicates, or `None` when it does not parse as one
/// query.
pub fn shape(sql: &str) -> Option<(String, BTreeSet<String>)> {
    let mut stmts = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    if stmts.len() != 1 {
        return None;
    }
    let mut stmt = stmts.pop()?;
    if !matches!(stmt, Statement::Query(_)) {
        return None;
    }
    let mut v = Strip(Vec::new());
    let _ = stmt.visit(&mut v);
    Some((stmt.to_string(), v.0.into_iter().collect()))
}

/// Groups `(sequence number, SQL)` by shape and reports those with pairs differing by
/// one predicate.
pub fn differencing_groups(queries: &[(i64, String)]) -> Vec<ReviewGroup> {
    let mut by_shape: BTreeMap<String, Vec<(i64, BTreeSet<String>)>> = BTreeMap::new();
    for (seq, sql) in queries {
        if let Some((s, p)) = shape(sql) {
            by_shape.entry(s).or_default().push((*seq, p));
        }
    }
    let mut out = Vec::new();
    for (shape, qs) in by_shape {
        let mut pairs = Vec::new();
        for (i, (a, pa)) in qs.iter().enumerate() {
            for (b, pb) in &qs[i + 1..] {
                let only_a = pa.difference(pb).count();
                let only_b = pb.difference(pa).count();
                if only_a + only_b == 1 || (only_a == 1 && only_b == 1) {
                    pairs.push((*a, *b));
                }
            }
        }
        if !pairs.is_empty() {
            out.push(ReviewGroup {
                shape,
                queries: qs
                    .into_iter()
                    .map(|(s, p)| (s, p.into_iter().collect()))
                    .collect(),
                pairs,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_differing_by_one_predicate_are_grouped() {
        let q = |s: &str| s.to_owned();
        let g = differencing_groups(&[
            (
                1,
                q("SELECT gender, count(*) FROM patients WHERE race = 'white' GROUP BY gender"),
            ),
            (
                2,
                q(
                    "SELECT gender, count(*) FROM patients WHERE race = 'white' AND zip = '021' GROUP BY gender",
                ),
            ),
            (
                3,
                q("SELECT gender, count(*) FROM patients WHERE race = 'asian' GROUP BY gender"),
            ),
            (4, q("SELECT count(*) FROM encounters")),
            (5, q("SELECT count(*) FROM encounters WHERE code = '1'")),
            (
                6,
                q("SELECT count(*) FROM encounters WHERE code = '1' AND a = 1 AND b = 2"),
            ),
            (7, q("not sql at all")),
        ]);
        assert_eq!(g.len(), 2, "{g:#?}");
        let enc = g.iter().find(|x| x.shape.contains("encounters")).unwrap();
        assert_eq!(enc.pairs, vec![(4, 5)]);
        let pat = g.iter().find(|x| x.shape.contains("patients")).unwrap();
        assert_eq!(pat.pairs, vec![(1, 2), (1, 3)]);
    }
}
