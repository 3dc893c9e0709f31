//! Evaluation of a compiled [`Expr`] over one resource's [`Tape`].

use super::parse::{BinOp, Expr, Func, Lit, TypeName, is_date, is_time, split_tz};
use super::types;
use crate::json::{Kind, NodeId, Tape};

/// One item of a FHIRPath collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A JSON node of the resource, with its FHIR type when the path told it (the suffix
    /// of a choice element, such as `valueQuantity`).
    Node(NodeId, Option<&'static str>),
    Str(String),
    Int(i64),
    /// A decimal and the number of digits after its point.
    Dec(f64, u8),
    Bool(bool),
    Date(String),
    DateTime(String),
    Time(String),
}

/// The evaluation context of one resource.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'t> {
    pub tape: &'t Tape,
    /// The resource (the root of the tape, or a bundle entry's resource).
    pub resource: NodeId,
    pub row_index: i64,
}

pub type Coll = Vec<Val>;

type R<T> = Result<T, String>;

/// A comparable view of one item.
#[derive(Debug, Clone, Copy)]
enum Scalar<'a> {
    Str(&'a str),
    /// Date, dateTime, instant or time text.
    Temporal(&'a str),
    Int(i64),
    Num(f64),
    Bool(bool),
    Complex(NodeId),
}

impl From<&Lit> for Val {
    fn from(l: &Lit) -> Self {
        match l {
            Lit::Str(s) => Val::Str(s.clone()),
            Lit::Int(i) => Val::Int(*i),
            Lit::Dec(v, s) => Val::Dec(*v, *s),
            Lit::Bool(b) => Val::Bool(*b),
            Lit::Date(d) => Val::Date(d.clone()),
            Lit::DateTime(d) => Val::DateTime(d.clone()),
            Lit::Time(t) => Val::Time(t.clone()),
        }
    }
}

/// What kind of thing an item is, for error messages.
pub fn describe(v: &Val, tape: &Tape) -> &'static str {
    match v {
        Val::Node(id, ty) => match tape.kind(*id) {
            Kind::Object => "an object (a complex type)",
            Kind::Array => "an array",
            Kind::String => match ty {
                Some(t) if !types::is_stringish(t) => "a value of another type",
                _ => "a string",
            },
            Kind::Number => "a number",
            Kind::True | Kind::False => "a boolean",
            Kind::Null => "null",
        },
        Val::Str(_) => "a string",
        Val::Int(_) => "an integer",
        Val::Dec(..) => "a decimal",
        Val::Bool(_) => "a boolean",
        Val::Date(_) | Val::DateTime(_) | Val::Time(_) => "a date or time",
    }
}

fn decimal_scale(text: &str) -> u8 {
    match text.split_once('.') {
        Some((_, frac)) => frac.bytes().take_while(u8::is_ascii_digit).count().min(255) as u8,
        None => 0,
    }
}

fn scalar<'a>(v: &'a Val, tape: &'a Tape) -> Option<Scalar<'a>> {
    Some(match v {
        Val::Node(id, ty) => match tape.kind(*id) {
            Kind::String => {
                let s = tape.str(*id)?;
                match ty {
                    Some("date" | "dateTime" | "instant" | "time") => Scalar::Temporal(s),
                    _ => Scalar::Str(s),
                }
            }
            Kind::Number => {
                let s = tape.str(*id)?;
                match s.parse::<i64>() {
                    Ok(i) => Scalar::Int(i),
                    Err(_) => Scalar::Num(s.parse().ok()?),
                }
            }
            Kind::True => Scalar::Bool(true),
            Kind::False => Scalar::Bool(false),
            Kind::Object | Kind::Array => Scalar::Complex(*id),
            Kind::Null => return None,
        },
        Val::Str(s) => Scalar::Str(s),
        Val::Int(i) => Scalar::Int(*i),
        Val::Dec(d, _) => Scalar::Num(*d),
        Val::Bool(b) => Scalar::Bool(*b),
        Val::Date(s) | Val::DateTime(s) | Val::Time(s) => Scalar::Temporal(s),
    })
}

fn num(s: Scalar<'_>) -> Option<f64> {
    match s {
        Scalar::Int(i) => Some(i as f64),
        Scalar::Num(f) => Some(f),
        _ => None,
    }
}

/// `=` of two items: `Some(bool)`, or `None` when the answer is empty (temporal values of
/// different precision).
fn item_eq(a: &Val, b: &Val, tape: &Tape) -> Option<bool> {
    let (x, y) = (scalar(a, tape)?, scalar(b, tape)?);
    Some(match (x, y) {
        (Scalar::Temporal(p), Scalar::Temporal(q))
        | (Scalar::Temporal(p), Scalar::Str(q))
        | (Scalar::Str(p), Scalar::Temporal(q)) => {
            if precision(p) != precision(q) {
                return None;
            }
            p == q
        }
        (Scalar::Str(p), Scalar::Str(q)) => p == q,
        (Scalar::Bool(p), Scalar::Bool(q)) => p == q,
        (Scalar::Complex(p), Scalar::Complex(q)) => tape.deep_eq(p, q),
        (p, q) => match (num(p), num(q)) {
            (Some(p), Some(q)) => p == q,
            _ => false,
        },
    })
}

/// The precision of a temporal text: how many components it has, so `2020-01` and
/// `2020-01-02` compare as empty rather than false.
fn precision(s: &str) -> usize {
    let core = match s.split_once('T') {
        Some((d, t)) => {
            let (t, _) = split_tz(t);
            return d.len() + 1 + t.split(['.']).next().map_or(0, str::len);
        }
        None => s,
    };
    core.len()
}

fn item_cmp(a: &Val, b: &Val, tape: &Tape) -> R<Option<std::cmp::Ordering>> {
    let (Some(x), Some(y)) = (scalar(a, tape), scalar(b, tape)) else {
        return Ok(None);
    };
    Ok(match (x, y) {
        (Scalar::Str(p), Scalar::Str(q)) => Some(p.cmp(q)),
        (Scalar::Temporal(p), Scalar::Temporal(q))
        | (Scalar::Temporal(p), Scalar::Str(q))
        | (Scalar::Str(p), Scalar::Temporal(q)) => {
            if precision(p) != precision(q) {
                None
            } else {
                Some(p.cmp(q))
            }
        }
        (p, q) => match (num(p), num(q)) {
            (Some(p), Some(q)) => p.partial_cmp(&q),
            _ => return Err("cannot compare values of different types".into()),
        },
    })
}

/// Boolean value of a collection in a boolean context: empty → None; one boolean → it;
/// one other item → true (FHIRPath singleton evaluation); more → error.
fn truth(c: &[Val], tape: &Tape) -> R<Option<bool>> {
    match c {
        [] => Ok(None),
        [v] => Ok(Some(match scalar(v, tape) {
            Some(Scalar::Bool(b)) => b,
            _ => true,
        })),
        _ => Err(format!(
            "a boolean operand gives {} values, not one",
            c.len()
        )),
    }
}

/// Like [`truth`], but only a boolean counts (a view's `where`).
pub fn strict_truth(c: &[Val], tape: &Tape) -> Result<Option<bool>, &'static str> {
    match c {
        [] => Ok(None),
        [v] => match scalar(v, tape) {
            Some(Scalar::Bool(b)) => Ok(Some(b)),
            _ => Err(describe(v, tape)),
        },
        _ => Err("several values"),
    }
}

fn bool_coll(b: Option<bool>) -> Coll {
    b.map(|b| vec![Val::Bool(b)]).unwrap_or_default()
}

/// The text of a string-like item.
pub fn text_of<'a>(v: &'a Val, tape: &'a Tape) -> Option<&'a str> {
    match v {
        Val::Node(id, _) if tape.kind(*id) == Kind::String => tape.str(*id),
        Val::Str(s) | Val::Date(s) | Val::DateTime(s) | Val::Time(s) => Some(s),
        _ => None,
    }
}

fn to_text(v: &Val, tape: &Tape) -> Option<String> {
    match scalar(v, tape)? {
        Scalar::Str(s) | Scalar::Temporal(s) => Some(s.to_owned()),
        Scalar::Int(i) => Some(i.to_string()),
        Scalar::Num(_) => match v {
            Val::Node(id, _) => tape.str(*id).map(str::to_owned),
            Val::Dec(d, s) => Some(format!("{d:.*}", *s as usize)),
            _ => None,
        },
        Scalar::Bool(b) => Some(b.to_string()),
        Scalar::Complex(_) => None,
    }
}

impl Expr {
    /// Evaluates the expression with `input` as its focus (`$this`).
    pub fn eval(&self, input: &[Val], ctx: &Ctx<'_>) -> R<Coll> {
        let tape = ctx.tape;
        Ok(match self {
            Expr::This => input.to_vec(),
            Expr::RowIndex => vec![Val::Int(ctx.row_index)],
            Expr::Resource => vec![Val::Node(ctx.resource, None)],
            Expr::Lit(l) => vec![l.into()],
            Expr::Empty => Vec::new(),
            Expr::Member(target, name) => {
                let base = target.eval(input, ctx)?;
                let mut out = Vec::new();
                for v in &base {
                    member(v, name, ctx, &mut out);
                }
                out
            }
            Expr::Index(target, idx) => {
                let base = target.eval(input, ctx)?;
                let i = idx.eval(input, ctx)?;
                match i.as_slice() {
                    [] => Vec::new(),
                    [v] => match scalar(v, tape) {
                        Some(Scalar::Int(i)) if i >= 0 => {
                            base.into_iter().nth(i as usize).into_iter().collect()
                        }
                        Some(Scalar::Int(_)) => Vec::new(),
                        _ => return Err("an index must be an integer".into()),
                    },
                    _ => return Err("an index gives several values".into()),
                }
            }
            Expr::Neg(e) => {
                let c = e.eval(input, ctx)?;
                match c.as_slice() {
                    [] => Vec::new(),
                    [v] => match scalar(v, tape) {
                        Some(Scalar::Int(i)) => vec![Val::Int(-i)],
                        Some(Scalar::Num(f)) => vec![Val::Dec(-f, dec_scale(v, tape))],
                        _ => return Err("unary minus needs a number".into()),
                    },
                    _ => return Err("unary minus on several values".into()),
                }
            }
            Expr::Is(e, t) => {
                let c = e.eval(input, ctx)?;
                match c.as_slice() {
                    [] => Vec::new(),
                    [v] => vec![Val::Bool(is_type(v, t, tape))],
                    _ => return Err("`is` on several values".into()),
                }
            }
            Expr::As(e, t) => {
                let c = e.eval(input, ctx)?;
                c.into_iter().filter(|v| is_type(v, t, tape)).collect()
            }
            Expr::Bin(op, l, r) => binary(*op, l, r, input, ctx)?,
            Expr::Call(target, f) => {
                let base = target.eval(input, ctx)?;
                call(f, base, input, ctx)?
            }
        })
    }
}

fn dec_scale(v: &Val, tape: &Tape) -> u8 {
    match v {
        Val::Dec(_, s) => *s,
        Val::Node(id, _) => tape.str(*id).map_or(0, decimal_scale),
        _ => 0,
    }
}

/// Appends what member `name` of `v` holds (array members flattened, JSON nulls dropped).
fn member(v: &Val, name: &str, ctx: &Ctx<'_>, out: &mut Coll) {
    let tape = ctx.tape;
    let Val::Node(id, _) = v else { return };
    if tape.kind(*id) != Kind::Object {
        return;
    }
    let mut push = |node: NodeId, ty: Option<&'static str>| match tape.kind(node) {
        Kind::Array => out.extend(
            tape.items(node)
                .iter()
                .filter(|i| tape.kind(**i) != Kind::Null)
                .map(|i| Val::Node(*i, ty)),
        ),
        Kind::Null => {}
        _ => out.push(Val::Node(node, ty)),
    };
    if let Some(node) = tape.get(*id, name) {
        push(node, None);
        return;
    }
    // A choice element: `value` finds `valueQuantity`, typed Quantity.
    for (k, node) in tape.members(*id) {
        if let Some(t) = types::choice_suffix(k, name) {
            push(node, Some(t));
        }
    }
}

fn is_type(v: &Val, t: &TypeName, tape: &Tape) -> bool {
    match t {
        TypeName::Resource(r) => match v {
            Val::Node(id, _) => tape.get_str(*id, "resourceType") == Some(r.as_str()),
            _ => false,
        },
        TypeName::Data(t) => match v {
            Val::Node(id, Some(ty)) => {
                ty == t
                    || (*t == "Quantity"
                        && matches!(*ty, "Age" | "Count" | "Distance" | "Duration" | "Money"))
                    || tape.kind(*id) == Kind::Null
            }
            Val::Node(id, None) => match tape.kind(*id) {
                Kind::String => {
                    types::is_stringish(t)
                        && !matches!(*t, "date" | "dateTime" | "instant" | "time")
                        || match *t {
                            "date" => tape.str(*id).is_some_and(is_date),
                            "dateTime" | "instant" => {
                                tape.str(*id).is_some_and(|s| s.contains('T') || is_date(s))
                            }
                            "time" => tape.str(*id).is_some_and(|s| is_time(split_tz(s).0)),
                            _ => false,
                        }
                }
                Kind::Number => {
                    *t == "decimal"
                        || (types::is_integer(t)
                            && tape.str(*id).is_some_and(|s| s.parse::<i64>().is_ok()))
                }
                Kind::True | Kind::False => *t == "boolean",
                Kind::Object => t.starts_with(|c: char| c.is_ascii_uppercase()),
                _ => false,
            },
            Val::Str(_) => types::is_stringish(t),
            Val::Int(_) => types::is_integer(t),
            Val::Dec(..) => *t == "decimal",
            Val::Bool(_) => *t == "boolean",
            Val::Date(_) => *t == "date",
            Val::DateTime(_) => matches!(*t, "dateTime" | "instant"),
            Val::Time(_) => *t == "time",
        },
    }
}

fn single<'v>(c: &'v [Val], what: &str) -> R<Option<&'v Val>> {
    match c {
        [] => Ok(None),
        [v] => Ok(Some(v)),
        _ => Err(format!("{what} gives {} values, not one", c.len())),
    }
}

fn binary(op: BinOp, l: &Expr, r: &Expr, input: &[Val], ctx: &Ctx<'_>) -> R<Coll> {
    let tape = ctx.tape;
    let a = l.eval(input, ctx)?;
    // Short-circuit logic, three-valued.
    match op {
        BinOp::And | BinOp::Or | BinOp::Xor | BinOp::Implies => {
            let x = truth(&a, tape)?;
            let y = || -> R<Option<bool>> { truth(&r.eval(input, ctx)?, tape) };
            return Ok(bool_coll(match op {
                BinOp::And => match x {
                    Some(false) => Some(false),
                    _ => match (x, y()?) {
                        (_, Some(false)) => Some(false),
                        (Some(true), Some(true)) => Some(true),
                        _ => None,
                    },
                },
                BinOp::Or => match x {
                    Some(true) => Some(true),
                    _ => match (x, y()?) {
                        (_, Some(true)) => Some(true),
                        (Some(false), Some(false)) => Some(false),
                        _ => None,
                    },
                },
                BinOp::Xor => match (x, y()?) {
                    (Some(p), Some(q)) => Some(p != q),
                    _ => None,
                },
                _ => match x {
                    Some(false) => Some(true),
                    _ => match (x, y()?) {
                        (_, Some(true)) => Some(true),
                        (Some(true), Some(false)) => Some(false),
                        _ => None,
                    },
                },
            }));
        }
        _ => {}
    }
    let b = r.eval(input, ctx)?;
    Ok(match op {
        BinOp::Union => {
            let mut out: Coll = Vec::new();
            for v in a.into_iter().chain(b) {
                if !out.iter().any(|w| item_eq(w, &v, tape) == Some(true)) {
                    out.push(v);
                }
            }
            out
        }
        BinOp::Eq | BinOp::Ne => {
            if a.is_empty() || b.is_empty() {
                return Ok(Vec::new());
            }
            let eq = if a.len() != b.len() {
                Some(false)
            } else {
                let mut all = Some(true);
                for (x, y) in a.iter().zip(&b) {
                    match item_eq(x, y, tape) {
                        Some(true) => {}
                        Some(false) => {
                            all = Some(false);
                            break;
                        }
                        None => all = None,
                    }
                }
                all
            };
            bool_coll(if op == BinOp::Eq { eq } else { eq.map(|e| !e) })
        }
        BinOp::Equiv | BinOp::NotEquiv => {
            let eq =
                a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| equivalent(x, y, tape)));
            vec![Val::Bool(if op == BinOp::Equiv { eq } else { !eq })]
        }
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let (Some(x), Some(y)) = (single(&a, "a comparison")?, single(&b, "a comparison")?)
            else {
                return Ok(Vec::new());
            };
            use std::cmp::Ordering::*;
            bool_coll(item_cmp(x, y, tape)?.map(|o| match op {
                BinOp::Lt => o == Less,
                BinOp::Gt => o == Greater,
                BinOp::Le => o != Greater,
                _ => o != Less,
            }))
        }
        BinOp::In | BinOp::Contains => {
            let (item, coll) = if op == BinOp::In { (&a, &b) } else { (&b, &a) };
            match single(item, "`in`/`contains`")? {
                None => Vec::new(),
                Some(x) => vec![Val::Bool(
                    coll.iter().any(|y| item_eq(x, y, tape) == Some(true)),
                )],
            }
        }
        BinOp::Concat => {
            let s = |c: &Coll| -> R<String> {
                Ok(single(c, "`&`")?
                    .and_then(|v| to_text(v, tape))
                    .unwrap_or_default())
            };
            vec![Val::Str(s(&a)? + &s(&b)?)]
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::IntDiv | BinOp::Mod => {
            let (Some(x), Some(y)) = (single(&a, "arithmetic")?, single(&b, "arithmetic")?) else {
                return Ok(Vec::new());
            };
            arithmetic(op, x, y, tape)?
        }
        BinOp::And | BinOp::Or | BinOp::Xor | BinOp::Implies => Vec::new(),
    })
}

fn equivalent(a: &Val, b: &Val, tape: &Tape) -> bool {
    match (scalar(a, tape), scalar(b, tape)) {
        (
            Some(Scalar::Str(p) | Scalar::Temporal(p)),
            Some(Scalar::Str(q) | Scalar::Temporal(q)),
        ) => {
            let norm = |s: &str| {
                s.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase()
            };
            norm(p) == norm(q)
        }
        _ => item_eq(a, b, tape) == Some(true),
    }
}

fn arithmetic(op: BinOp, x: &Val, y: &Val, tape: &Tape) -> R<Coll> {
    let (Some(p), Some(q)) = (scalar(x, tape), scalar(y, tape)) else {
        return Ok(Vec::new());
    };
    if let (Scalar::Str(s), Scalar::Str(t)) = (p, q) {
        return match op {
            BinOp::Add => Ok(vec![Val::Str(format!("{s}{t}"))]),
            _ => Err("only `+` and `&` apply to strings".into()),
        };
    }
    if let (Scalar::Int(i), Scalar::Int(j)) = (p, q) {
        let r = match op {
            BinOp::Add => i.checked_add(j),
            BinOp::Sub => i.checked_sub(j),
            BinOp::Mul => i.checked_mul(j),
            BinOp::IntDiv => {
                if j == 0 {
                    return Ok(Vec::new());
                }
                i.checked_div(j)
            }
            BinOp::Mod => {
                if j == 0 {
                    return Ok(Vec::new());
                }
                i.checked_rem(j)
            }
            _ => {
                if j == 0 {
                    return Ok(Vec::new());
                }
                return Ok(vec![Val::Dec(i as f64 / j as f64, 8)]);
            }
        };
        return r
            .map(|v| vec![Val::Int(v)])
            .ok_or_else(|| "integer overflow".into());
    }
    let (Some(f), Some(g)) = (num(p), num(q)) else {
        return Err("arithmetic needs numbers".into());
    };
    let scale = dec_scale(x, tape).max(dec_scale(y, tape));
    Ok(match op {
        BinOp::Add => vec![Val::Dec(f + g, scale)],
        BinOp::Sub => vec![Val::Dec(f - g, scale)],
        BinOp::Mul => vec![Val::Dec(f * g, scale)],
        BinOp::Div if g == 0.0 => Vec::new(),
        BinOp::Div => vec![Val::Dec(f / g, 8)],
        BinOp::IntDiv if g == 0.0 => Vec::new(),
        BinOp::IntDiv => vec![Val::Int((f / g).trunc() as i64)],
        BinOp::Mod if g == 0.0 => Vec::new(),
        _ => vec![Val::Dec(f % g, scale)],
    })
}

fn call(f: &Func, base: Coll, input: &[Val], ctx: &Ctx<'_>) -> R<Coll> {
    let tape = ctx.tape;
    let one =
        |e: &Expr| -> R<Option<Val>> { Ok(single(&e.eval(input, ctx)?, "an argument")?.cloned()) };
    let int_arg = |e: &Expr| -> R<usize> {
        match one(e)?.as_ref().and_then(|v| scalar(v, tape)) {
            Some(Scalar::Int(i)) if i >= 0 => Ok(i as usize),
            _ => Err("expected a non-negative integer argument".into()),
        }
    };
    let str_fn = |base: &Coll, name: &str| -> R<Option<String>> {
        Ok(single(base, name)?
            .and_then(|v| text_of(v, tape))
            .map(str::to_owned))
    };
    Ok(match f {
        Func::Where(c) => {
            let mut out = Vec::new();
            for v in base {
                if truth(&c.eval(std::slice::from_ref(&v), ctx)?, tape)? == Some(true) {
                    out.push(v);
                }
            }
            out
        }
        Func::Select(e) => {
            let mut out = Vec::new();
            for v in &base {
                out.extend(e.eval(std::slice::from_ref(v), ctx)?);
            }
            out
        }
        Func::All(c) => {
            let mut all = true;
            for v in &base {
                if truth(&c.eval(std::slice::from_ref(v), ctx)?, tape)? != Some(true) {
                    all = false;
                    break;
                }
            }
            vec![Val::Bool(all)]
        }
        Func::Exists(None) => vec![Val::Bool(!base.is_empty())],
        Func::Exists(Some(c)) => {
            let mut any = false;
            for v in &base {
                if truth(&c.eval(std::slice::from_ref(v), ctx)?, tape)? == Some(true) {
                    any = true;
                    break;
                }
            }
            vec![Val::Bool(any)]
        }
        Func::Empty => vec![Val::Bool(base.is_empty())],
        Func::First => base.into_iter().take(1).collect(),
        Func::Last => base.into_iter().last().into_iter().collect(),
        Func::Tail => base.into_iter().skip(1).collect(),
        Func::Skip(n) => base.into_iter().skip(int_arg(n)?).collect(),
        Func::Take(n) => base.into_iter().take(int_arg(n)?).collect(),
        Func::Single => match base.len() {
            0 | 1 => base,
            n => return Err(format!("single() on {n} values")),
        },
        Func::Count => vec![Val::Int(base.len() as i64)],
        Func::Distinct => {
            let mut out: Coll = Vec::new();
            for v in base {
                if !out.iter().any(|w| item_eq(w, &v, tape) == Some(true)) {
                    out.push(v);
                }
            }
            out
        }
        Func::Not => bool_coll(truth(&base, tape)?.map(|b| !b)),
        Func::HasValue => vec![Val::Bool(
            matches!(base.as_slice(), [v] if !matches!(scalar(v, tape), None | Some(Scalar::Complex(_)))),
        )],
        Func::OfType(t) => base.into_iter().filter(|v| is_type(v, t, tape)).collect(),
        Func::Extension(url) => {
            let mut exts = Vec::new();
            for v in &base {
                member(v, "extension", ctx, &mut exts);
            }
            exts.into_iter()
                .filter(|e| matches!(e, Val::Node(id, _) if tape.get_str(*id, "url") == Some(url.as_str())))
                .collect()
        }
        Func::Join(sep) => {
            let mut parts = Vec::with_capacity(base.len());
            for v in &base {
                parts.push(to_text(v, tape).ok_or("join() applies to strings")?);
            }
            vec![Val::Str(parts.join(sep))]
        }
        Func::GetResourceKey => {
            let mut out = Vec::new();
            for v in &base {
                if let Val::Node(id, _) = v
                    && let Some(key) = tape.get_str(*id, "id")
                {
                    out.push(Val::Str(key.to_owned()));
                }
            }
            out
        }
        Func::GetReferenceKey(want) => {
            let mut out = Vec::new();
            for v in &base {
                let Val::Node(id, _) = v else { continue };
                let Some(reference) = tape.get_str(*id, "reference") else {
                    continue;
                };
                if let Some((ty, key)) = reference_key(reference)
                    && (want.is_none() || ty.is_none() || ty == want.as_deref())
                {
                    out.push(Val::Str(key.to_owned()));
                }
            }
            out
        }
        Func::LowBoundary | Func::HighBoundary => {
            let high = matches!(f, Func::HighBoundary);
            match single(&base, "a boundary function")? {
                None => Vec::new(),
                Some(v) => boundary(v, high, tape).into_iter().collect(),
            }
        }
        Func::StartsWith(a) | Func::EndsWith(a) | Func::Contains(a) => {
            let Some(s) = str_fn(&base, "a string function")? else {
                return Ok(Vec::new());
            };
            let Some(arg) = one(a)?
                .as_ref()
                .and_then(|v| text_of(v, tape).map(str::to_owned))
            else {
                return Ok(Vec::new());
            };
            vec![Val::Bool(match f {
                Func::StartsWith(_) => s.starts_with(&arg),
                Func::EndsWith(_) => s.ends_with(&arg),
                _ => s.contains(&arg),
            })]
        }
        Func::Lower => str_fn(&base, "lower()")?
            .map(|s| Val::Str(s.to_lowercase()))
            .into_iter()
            .collect(),
        Func::Upper => str_fn(&base, "upper()")?
            .map(|s| Val::Str(s.to_uppercase()))
            .into_iter()
            .collect(),
        Func::Length => str_fn(&base, "length()")?
            .map(|s| Val::Int(s.chars().count() as i64))
            .into_iter()
            .collect(),
        Func::ToString => single(&base, "toString()")?
            .and_then(|v| to_text(v, tape))
            .map(Val::Str)
            .into_iter()
            .collect(),
        Func::ToInteger => match single(&base, "toInteger()")?.and_then(|v| scalar(v, tape)) {
            Some(Scalar::Int(i)) => vec![Val::Int(i)],
            Some(Scalar::Str(s)) => s.parse().ok().map(Val::Int).into_iter().collect(),
            Some(Scalar::Bool(b)) => vec![Val::Int(b as i64)],
            _ => Vec::new(),
        },
        Func::ToDecimal => match single(&base, "toDecimal()")?.and_then(|v| scalar(v, tape)) {
            Some(Scalar::Int(i)) => vec![Val::Dec(i as f64, 0)],
            Some(Scalar::Num(f)) => vec![Val::Dec(f, 8)],
            Some(Scalar::Str(s)) => s
                .parse()
                .ok()
                .map(|f| Val::Dec(f, decimal_scale(s)))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        },
        Func::Iif(c, t, e) => {
            if truth(&c.eval(&base, ctx)?, tape)? == Some(true) {
                t.eval(input, ctx)?
            } else if let Some(e) = e {
                e.eval(input, ctx)?
            } else {
                Vec::new()
            }
        }
    })
}

/// The type and id a reference names: `Patient/123` → (Patient, 123); an absolute URL
/// ending in `Type/id` likewise; `Patient/123/_history/2` drops the version;
/// `urn:uuid:…` and `urn:oid:…` → (no type, the uuid or oid); `#contained` → none.
pub fn reference_key(reference: &str) -> Option<(Option<&str>, &str)> {
    if let Some(rest) = reference
        .strip_prefix("urn:uuid:")
        .or_else(|| reference.strip_prefix("urn:oid:"))
    {
        return (!rest.is_empty()).then_some((None, rest));
    }
    if reference.starts_with('#') || reference.is_empty() {
        return None;
    }
    let path = match reference.find("/_history/") {
        Some(k) => &reference[..k],
        None => reference,
    };
    let mut parts = path.rsplit('/');
    let id = parts.next().filter(|s| !s.is_empty())?;
    let ty = parts.next().filter(|t| {
        t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && t.chars().all(|c| c.is_ascii_alphanumeric())
    });
    match ty {
        Some(t) => Some((Some(t), id)),
        None => None,
    }
}

const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

fn days_in(year: i32, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if month == 2 && leap {
        29
    } else {
        DAYS[(month.clamp(1, 12) - 1) as usize]
    }
}

/// lowBoundary()/highBoundary() of a decimal (by its precision), a date, a dateTime or a
/// time (by the components it lacks; a dateTime without a zone spans +14:00 to -12:00).
fn boundary(v: &Val, high: bool, tape: &Tape) -> Option<Val> {
    match scalar(v, tape)? {
        Scalar::Int(i) => Some(Val::Dec(i as f64 + if high { 0.5 } else { -0.5 }, 1)),
        Scalar::Num(f) => {
            let s = dec_scale(v, tape);
            let half = 0.5 * 10f64.powi(-(s as i32));
            let r = if high { f + half } else { f - half };
            Some(Val::Dec(r, s + 1))
        }
        Scalar::Str(s) | Scalar::Temporal(s) => {
            let kind = match v {
                Val::Node(_, Some(t)) => *t,
                Val::Date(_) => "date",
                Val::DateTime(_) => "dateTime",
                Val::Time(_) => "time",
                _ if is_date(s) => "date",
                _ if s.contains('T') => "dateTime",
                _ if is_time(split_tz(s).0) => "time",
                _ => return None,
            };
            match kind {
                "date" => date_boundary(s, high).map(Val::Date),
                "dateTime" | "instant" => {
                    let (d, t) = s.split_once('T').unwrap_or((s, ""));
                    let day = date_boundary(d, high)?;
                    let (time, tz) = split_tz(t);
                    let time = time_boundary(if time.is_empty() { "" } else { time }, high)?;
                    let tz = if tz.is_empty() {
                        if high { "-12:00" } else { "+14:00" }
                    } else {
                        tz
                    };
                    Some(Val::DateTime(format!("{day}T{time}{tz}")))
                }
                "time" => time_boundary(split_tz(s).0, high).map(Val::Time),
                _ => None,
            }
        }
        _ => None,
    }
}

fn date_boundary(d: &str, high: bool) -> Option<String> {
    if !is_date(d) {
        return None;
    }
    let year: i32 = d[..4].parse().ok()?;
    Some(match d.len() {
        4 => {
            if high {
                format!("{year:04}-12-31")
            } else {
                format!("{year:04}-01-01")
            }
        }
        7 => {
            let m: u32 = d[5..7].parse().ok()?;
            if high {
                format!("{d}-{:02}", days_in(year, m))
            } else {
                format!("{d}-01")
            }
        }
        _ => d.to_owned(),
    })
}

fn time_boundary(t: &str, high: bool) -> Option<String> {
    let (lo, hi) = match t.len() {
        0 => ("00:00:00.000".to_owned(), "23:59:59.999".to_owned()),
        2 => (format!("{t}:00:00.000"), format!("{t}:59:59.999")),
        5 => (format!("{t}:00.000"), format!("{t}:59.999")),
        8 => (format!("{t}.000"), format!("{t}.999")),
        _ if is_time(t) => {
            let frac = &t[9..];
            let pad = |c: char| -> String {
                format!(
                    "{}.{}",
                    &t[..8],
                    format!("{frac:c<3}").replace('c', &c.to_string())
                )
            };
            (pad('0'), pad('9'))
        }
        _ => return None,
    };
    Some(if high { hi } else { lo })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_keys() {
        assert_eq!(reference_key("Patient/p1"), Some((Some("Patient"), "p1")));
        assert_eq!(
            reference_key("http://x.org/fhir/Patient/p1/_history/3"),
            Some((Some("Patient"), "p1"))
        );
        assert_eq!(reference_key("urn:uuid:abc"), Some((None, "abc")));
        assert_eq!(reference_key("#c1"), None);
        assert_eq!(reference_key("p1"), None);
    }

    #[test]
    fn boundaries() {
        assert_eq!(
            date_boundary("1970-06", true).as_deref(),
            Some("1970-06-30")
        );
        assert_eq!(
            date_boundary("2024-02", true).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(date_boundary("1970", false).as_deref(), Some("1970-01-01"));
        assert_eq!(
            time_boundary("12:34:00", true).as_deref(),
            Some("12:34:00.999")
        );
        assert_eq!(
            time_boundary("12:34:00.5", false).as_deref(),
            Some("12:34:00.500")
        );
    }
}
