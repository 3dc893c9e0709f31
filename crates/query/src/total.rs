//! Total expressions: in aggregate mode no expression may fail on a row.
//!
//! A data-dependent runtime error turns a hidden condition into a yes/no answer: `CASE
//! WHEN <something about one person> THEN 1/0 ELSE 1 END` answers "error" when that
//! person exists and "ok" when not, without passing through disclosure control. So in
//! aggregate mode, after the disclosure-control rewrite, every expression of the plan
//! (subqueries included) is made **total** — it gives NULL where it would have failed:
//!
//! * `CAST(x AS t)` becomes `TRY_CAST(x AS t)` unless the cast can never fail (widening
//!   numbers, anything to text, text between its encodings, …: [`cast_is_total`]);
//! * `a / b` and `a % b` on numbers give NULL for a zero divisor or an overflow
//!   (`i64::MIN / -1`) instead of an error;
//! * every scalar function (built-in or registered later: `to_date`, `to_timestamp`,
//!   `regexp_*` with a per-row pattern, `make_date`, `arrow_cast`, `abs`, `power`, …) is
//!   wrapped so that a batch that fails is evaluated again row by row, each failing row
//!   giving NULL. The common case (no failure) costs nothing extra.
//!
//! Errors that do not depend on the rows — a malformed or oversized literal regular
//! expression, a type mismatch, an unknown function — are still found while planning and
//! answered as a 400 with a message. What remains at execution (memory, time, result
//! limits) depends on the volume of data, not on the value of one row, and every other
//! execution error is answered with one uniform message (`crate::service`).

use std::any::Any;
use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{ArrayRef, new_null_array};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, ExprSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Documentation, Expr, ExprSchemable, LogicalPlan, Operator,
    ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TryCast, Volatility,
};

/// Makes every expression of `plan` (and of its subqueries) total.
pub fn plan(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let schema = input_schema(&node)?;
        let t = node.map_expressions(|e| expr(e, schema.as_deref()))?;
        if t.transformed {
            t.map_data(LogicalPlan::recompute_schema)
        } else {
            Ok(t)
        }
    })
    .map(|t| t.data)
}

/// Checks every literal regular expression of `plan` (the pattern of `regexp_*`, `~`,
/// `~*`, `!~`, `!~*`, `SIMILAR TO`) while planning, so that a malformed or oversized
/// pattern is the researcher's error, answered with a message, not a failure of every
/// row at run time; and, in aggregate mode (`aggregate`), refuses `SIMILAR TO` with a
/// pattern computed per row. Returns the message.
pub fn check_patterns(plan: &LogicalPlan, aggregate: bool) -> std::result::Result<(), String> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut bad: Option<String> = None;
    let mut row_similar = false;
    let mut check = |p: &Expr| {
        if let Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) = p
            && let Err(e) = regex::Regex::new(s)
        {
            let why = match e {
                regex::Error::CompiledTooBig(limit) => format!(
                    "a regular expression in the query compiles to more than {limit} bytes, the limit; simplify it (fewer or smaller repetitions)"
                ),
                _ => "a regular expression in the query is not valid (check its brackets, repetitions and escapes)".to_owned(),
            };
            bad = Some(why);
        }
    };
    let _ = plan.apply_with_subqueries(|n| {
        n.apply_expressions(|e| {
            e.apply(|x| {
                match x {
                    Expr::ScalarFunction(f) if f.func.name().starts_with("regexp_") => {
                        if let Some(p) = f.args.get(1) {
                            check(p);
                        }
                    }
                    Expr::BinaryExpr(b)
                        if matches!(
                            b.op,
                            Operator::RegexMatch
                                | Operator::RegexIMatch
                                | Operator::RegexNotMatch
                                | Operator::RegexNotIMatch
                        ) =>
                    {
                        check(&b.right);
                    }
                    Expr::SimilarTo(l) => {
                        check(&l.pattern);
                        row_similar |= aggregate && !is_constant(&l.pattern);
                    }
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    if row_similar {
        return Err("SIMILAR TO with a pattern computed per row is not allowed in an aggregate-mode project (a pattern that fails on one row would answer a question about it); use regexp_like(value, pattern)".to_owned());
    }
    match bad {
        Some(m) => Err(m),
        None => Ok(()),
    }
}

/// The schema a node's expressions are written against.
pub(crate) fn input_schema(node: &LogicalPlan) -> Result<Option<Arc<DFSchema>>> {
    Ok(match node {
        LogicalPlan::Join(j) => Some(Arc::new(j.left.schema().join(j.right.schema())?)),
        _ => match node.inputs().as_slice() {
            [one] => Some(one.schema().clone()),
            [] => Some(node.schema().clone()),
            _ => None,
        },
    })
}

/// `e` made total; `schema` gives the types of its columns (`None`: unknown, so every
/// cast of a column becomes a `TRY_CAST`).
pub fn expr(e: Expr, schema: Option<&DFSchema>) -> Result<Transformed<Expr>> {
    e.transform_up(|e| {
        let type_of = |x: &Expr| schema.and_then(|s| x.get_type(s).ok());
        match e {
            Expr::Cast(c) if !is_constant(&c.expr) => {
                let to = c.field.data_type().clone();
                let total = type_of(&c.expr).is_some_and(|from| cast_is_total(&from, &to));
                if total {
                    Ok(Transformed::no(Expr::Cast(c)))
                } else {
                    Ok(Transformed::yes(Expr::TryCast(TryCast::new(c.expr, to))))
                }
            }
            Expr::BinaryExpr(b) if matches!(b.op, Operator::Divide | Operator::Modulo) => {
                let numeric = |x: &Expr| type_of(x).is_some_and(|t| t.is_numeric());
                if numeric(&b.left) && numeric(&b.right) {
                    let f = ScalarUDF::new_from_impl(TotalOp::new(b.op));
                    Ok(Transformed::yes(Expr::ScalarFunction(
                        ScalarFunction::new_udf(Arc::new(f), vec![*b.left, *b.right]),
                    )))
                } else {
                    Ok(Transformed::no(Expr::BinaryExpr(b)))
                }
            }
            // a regular expression matched against a per-row pattern can fail on a row
            // (the pattern does not compile): through `regexp_like`, made total
            Expr::BinaryExpr(b) if is_row_regex(&b) => {
                let (negated, flags) = match b.op {
                    Operator::RegexMatch => (false, None),
                    Operator::RegexIMatch => (false, Some("i")),
                    Operator::RegexNotMatch => (true, None),
                    _ => (true, Some("i")),
                };
                let mut args = vec![*b.left, *b.right];
                args.extend(flags.map(datafusion::prelude::lit));
                let like = ScalarUDF::new_from_impl(Total {
                    inner: datafusion::functions::regex::regexp_like().as_ref().clone(),
                });
                let call = Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(like), args));
                Ok(Transformed::yes(if negated {
                    Expr::Not(Box::new(call))
                } else {
                    call
                }))
            }
            Expr::ScalarFunction(f) if !is_total_wrapper(&f.func) => {
                let wrapped = ScalarUDF::new_from_impl(Total {
                    inner: f.func.as_ref().clone(),
                });
                Ok(Transformed::yes(Expr::ScalarFunction(
                    ScalarFunction::new_udf(Arc::new(wrapped), f.args),
                )))
            }
            other => Ok(Transformed::no(other)),
        }
    })
}

/// A regular-expression operator whose pattern is computed per row.
fn is_row_regex(b: &BinaryExpr) -> bool {
    matches!(
        b.op,
        Operator::RegexMatch
            | Operator::RegexIMatch
            | Operator::RegexNotMatch
            | Operator::RegexNotIMatch
    ) && !is_constant(&b.right)
}

fn is_total_wrapper(f: &ScalarUDF) -> bool {
    let any = f.inner().as_ref() as &dyn Any;
    any.is::<Total>() || any.is::<TotalOp>()
}

/// An expression without columns: its failure cannot depend on the data.
pub(crate) fn is_constant(e: &Expr) -> bool {
    e.column_refs().is_empty()
        && !e
            .exists(|x| {
                Ok(matches!(
                    x,
                    Expr::OuterReferenceColumn(..)
                        | Expr::ScalarSubquery(_)
                        | Expr::Exists(_)
                        | Expr::InSubquery(_)
                        | Expr::AggregateFunction(_)
                        | Expr::WindowFunction(_)
                ))
            })
            .unwrap_or(true)
}

/// Casts that never fail whatever the value: to the same type, widening integers and
/// floats, any number or boolean to a float, anything but binary to text, text between
/// its encodings, dates to wider dates, timestamps to another time zone of the same unit,
/// and NULL to anything.
pub fn cast_is_total(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    fn int_range(t: &DataType) -> Option<(i128, i128)> {
        Some(match t {
            Int8 => (i8::MIN.into(), i8::MAX.into()),
            Int16 => (i16::MIN.into(), i16::MAX.into()),
            Int32 => (i32::MIN.into(), i32::MAX.into()),
            Int64 => (i64::MIN.into(), i64::MAX.into()),
            UInt8 => (0, u8::MAX.into()),
            UInt16 => (0, u16::MAX.into()),
            UInt32 => (0, u32::MAX.into()),
            UInt64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }
    if from == to || matches!(from, Null) {
        return true;
    }
    if let Dictionary(_, v) = from {
        return cast_is_total(v, to);
    }
    match to {
        Utf8 | LargeUtf8 | Utf8View => {
            !matches!(from, Binary | LargeBinary | BinaryView | FixedSizeBinary(_))
                && !from.is_nested()
        }
        Float64 => from.is_numeric() || matches!(from, Boolean),
        Float32 => matches!(from, Float16 | Int8 | Int16 | UInt8 | UInt16 | Boolean),
        Date64 => matches!(from, Date32),
        Timestamp(unit, _) => matches!(from, Timestamp(u, _) if u == unit),
        _ => match (int_range(from), int_range(to)) {
            (Some((a, b)), Some((c, d))) => c <= a && b <= d,
            _ => matches!(from, Boolean) && int_range(to).is_some(),
        },
    }
}

/// Whether an error may be turned into NULL: every error but running out of memory
/// (which depends on the volume of data, not on one row, and must stop the query).
fn swallowable(e: &DataFusionError) -> bool {
    !matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
}

/// Evaluates `f` over `args`; where the batch fails, row by row, NULL for each row that
/// fails.
fn total_invoke(
    args: ScalarFunctionArgs,
    f: &dyn Fn(ScalarFunctionArgs) -> Result<ColumnarValue>,
) -> Result<ColumnarValue> {
    let retry = ScalarFunctionArgs {
        args: args.args.clone(),
        arg_fields: args.arg_fields.clone(),
        number_rows: args.number_rows,
        return_field: args.return_field.clone(),
        config_options: args.config_options.clone(),
    };
    let err = match f(args) {
        Ok(v) => return Ok(v),
        Err(e) if !swallowable(&e) => return Err(e),
        Err(e) => e,
    };
    let rt = retry.return_field.data_type().clone();
    if retry
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)))
    {
        tracing::debug!(error = %err, "a scalar evaluation failed; NULL instead");
        return ScalarValue::try_from(&rt).map(ColumnarValue::Scalar);
    }
    let n = retry.number_rows;
    let mut parts: Vec<ArrayRef> = Vec::with_capacity(n);
    for i in 0..n {
        let row = ScalarFunctionArgs {
            args: retry
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Array(x) => ColumnarValue::Array(x.slice(i, 1)),
                    s @ ColumnarValue::Scalar(_) => s.clone(),
                })
                .collect(),
            arg_fields: retry.arg_fields.clone(),
            number_rows: 1,
            return_field: retry.return_field.clone(),
            config_options: retry.config_options.clone(),
        };
        let one = match f(row) {
            Ok(v) => v.into_array(1)?,
            Err(e) if !swallowable(&e) => return Err(e),
            Err(_) => new_null_array(&rt, 1),
        };
        let one = if one.data_type() == &rt {
            one
        } else {
            arrow::compute::cast(&one, &rt)?
        };
        parts.push(one);
    }
    let refs: Vec<&dyn arrow::array::Array> = parts.iter().map(AsRef::as_ref).collect();
    if refs.is_empty() {
        return Ok(ColumnarValue::Array(new_null_array(&rt, 0)));
    }
    Ok(ColumnarValue::Array(arrow::compute::concat(&refs)?))
}

fn nullable(f: FieldRef) -> FieldRef {
    if f.is_nullable() {
        f
    } else {
        Arc::new(Field::clone(&f).with_nullable(true))
    }
}

/// A scalar function that gives NULL where the function it wraps fails. Everything else
/// (name, column name, signature, types, simplifications, orderings) is the wrapped
/// function's, so plans and result column names are unchanged.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Total {
    inner: ScalarUDF,
}

impl ScalarUDFImpl for Total {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args).map(nullable)
    }
    fn is_nullable(&self, _args: &[Expr], _schema: &dyn ExprSchema) -> bool {
        true
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        total_invoke(args, &|a| self.inner.invoke_with_args(a))
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        // a simplification may produce a new cast or call (`arrow_cast` becomes a CAST):
        // made total too
        let kept = args.clone();
        Ok(match self.inner.simplify(args, info)? {
            // `regexp_like` with a per-row pattern would become the `~` operator again,
            // which fails on a row: it stays this total function
            ExprSimplifyResult::Simplified(e)
                if e.exists(|x| Ok(matches!(x, Expr::BinaryExpr(b) if is_row_regex(b))))? =>
            {
                ExprSimplifyResult::Original(kept)
            }
            ExprSimplifyResult::Simplified(e) => {
                ExprSimplifyResult::Simplified(expr(e, None)?.data)
            }
            ExprSimplifyResult::Original(args) => ExprSimplifyResult::Original(args),
        })
    }
    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }
    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.conditional_arguments(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// `a / b` or `a % b` on numbers, NULL where the row's operation fails (a zero divisor,
/// an overflow). Its column name is the operator's (`a / b`), so result names are
/// unchanged.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TotalOp {
    op: Operator,
    signature: Signature,
}

impl TotalOp {
    fn new(op: Operator) -> Self {
        Self {
            op,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    fn coercer<'a>(
        &'a self,
        l: &'a DataType,
        r: &'a DataType,
    ) -> datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer<'a> {
        datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer::new(l, &self.op, r)
    }
}

impl ScalarUDFImpl for TotalOp {
    fn name(&self) -> &str {
        match self.op {
            Operator::Divide => "dhub_divide",
            _ => "dhub_modulo",
        }
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        match args {
            [l, r] => Ok(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(l.clone()),
                self.op,
                Box::new(r.clone()),
            ))
            .schema_name()
            .to_string()),
            _ => Err(DataFusionError::Internal(format!(
                "{} takes two arguments",
                self.name()
            ))),
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] => self.coercer(l, r).get_result_type(),
            _ => Err(DataFusionError::Internal(format!(
                "{} takes two arguments",
                self.name()
            ))),
        }
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        // the operands as the operator itself would have them coerced
        match arg_types {
            [l, r] => {
                let (l, r) = self.coercer(l, r).get_input_types()?;
                Ok(vec![l, r])
            }
            _ => Err(DataFusionError::Internal(format!(
                "{} takes two arguments",
                self.name()
            ))),
        }
    }
    fn is_nullable(&self, _args: &[Expr], _schema: &dyn ExprSchema) -> bool {
        true
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let op = self.op;
        total_invoke(args, &|a| {
            let [l, r] = a.args.as_slice() else {
                return Err(DataFusionError::Internal(
                    "a total operator takes two arguments".into(),
                ));
            };
            let kernel = match op {
                Operator::Divide => arrow::compute::kernels::numeric::div,
                _ => arrow::compute::kernels::numeric::rem,
            };
            let out = datafusion::physical_expr_common::datum::apply(l, r, kernel)?;
            let rt = a.return_field.data_type();
            match out {
                ColumnarValue::Array(x) if x.data_type() != rt => {
                    Ok(ColumnarValue::Array(arrow::compute::cast(&x, rt)?))
                }
                ColumnarValue::Scalar(s) if &s.data_type() != rt => {
                    Ok(ColumnarValue::Scalar(s.cast_to(rt)?))
                }
                v => Ok(v),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_is_total_and_parsing_is_not() {
        use DataType::*;
        assert!(cast_is_total(&Int32, &Int64));
        assert!(cast_is_total(&Int64, &Float64));
        assert!(cast_is_total(&Date32, &Utf8));
        assert!(cast_is_total(&Utf8, &Utf8View));
        assert!(!cast_is_total(&Int64, &Int32));
        assert!(!cast_is_total(&UInt64, &Int64));
        assert!(!cast_is_total(&Utf8, &Int64));
        assert!(!cast_is_total(&Utf8, &Date32));
        assert!(!cast_is_total(&Float64, &Int64));
        assert!(!cast_is_total(&Binary, &Utf8));
    }
}
