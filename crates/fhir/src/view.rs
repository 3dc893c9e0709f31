//! SQL on FHIR v2 ViewDefinitions: read from JSON, checked and compiled once
//! ([`View::from_json`]), then run over resources ([`View::rows`]).
//!
//! A view is refused before any resource is read when it has no `resource` or no
//! `select`, a column without a name or a FHIR type, two columns of one name, a path that
//! does not compile (an unknown function, a bad argument, an undefined constant), a
//! constant without a value, two of `forEach`/`forEachOrNull`/`repeat` on one select, or
//! `unionAll` branches whose columns differ in name, order or type. Each error names the
//! view and the column or path, and says what to do.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{RowError, ViewError};
use crate::json::{NodeId, Tape};
use crate::path::eval::{Coll, Ctx, Val, describe, strict_truth};
use crate::path::parse::{Constants, Expr, Lit};
use crate::path::{compile, types};

/// One output column of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    /// The FHIR primitive type the view declares (`string`, `dateTime`, `integer`, …).
    pub fhir_type: &'static str,
    /// `collection: true`: the column holds a list.
    pub collection: bool,
    /// The FHIRPath of the first select that fills the column (the others, in `unionAll`
    /// branches, fill the same column).
    pub path: String,
    /// What the column's paths (every branch, and the `forEach`/`forEachOrNull`/`repeat`
    /// paths above them) touch, for a pipeline's fail-closed checks.
    pub reach: Reach,
}

/// What a column's paths touch: the element names they navigate, the string literals
/// they compare with, and whether they give a resource or reference key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Element names navigated (`name`, `telecom`, `identifier`, `value`, …), from the
    /// resource down to the column.
    pub members: Vec<String>,
    /// String literals and constants compared or passed (such as an identifier system).
    pub literals: Vec<String>,
    /// `Some(None)`: `getResourceKey()`; `Some(Some(T))`: `getReferenceKey(T)`;
    /// `Some(Some(""))`: an untyped `getReferenceKey()`; `None`: not a key.
    pub key: Option<Option<String>>,
    /// The last element the column's own path navigates to (`reference` for
    /// `subject.reference`), if it ends on one.
    pub last: Option<String>,
}

impl Reach {
    fn add(&mut self, e: &Expr) {
        e.walk(&mut |x| match x {
            Expr::Member(_, m) if !self.members.contains(m) => self.members.push(m.clone()),
            Expr::Lit(Lit::Str(s)) if !self.literals.contains(s) => self.literals.push(s.clone()),
            Expr::Call(_, crate::path::parse::Func::Extension(url))
                if !self.literals.contains(url) =>
            {
                self.literals.push(url.clone())
            }
            _ => {}
        });
    }
}

/// A compiled ViewDefinition.
#[derive(Debug, Clone)]
pub struct View {
    name: String,
    resource: String,
    columns: Vec<ColumnDef>,
    wheres: Vec<(String, Expr)>,
    select: Vec<Select>,
}

#[derive(Debug, Clone)]
struct Select {
    iter: Iter,
    columns: Vec<Column>,
    select: Vec<Select>,
    union_all: Vec<Select>,
}

#[derive(Debug, Clone)]
enum Iter {
    Once,
    ForEach(Expr),
    ForEachOrNull(Expr),
    Repeat(Vec<Expr>),
}

#[derive(Debug, Clone)]
struct Column {
    slot: usize,
    name: String,
    path: String,
    fhir_type: &'static str,
    collection: bool,
    expr: Expr,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Dec(f64),
    Bool(bool),
    List(Vec<Cell<'a>>),
}

/// One output row, a value per column of [`View::columns`].
pub type Row<'a> = Vec<Cell<'a>>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawView {
    resource: Option<Value>,
    name: Option<String>,
    #[serde(default)]
    constant: Vec<serde_json::Map<String, Value>>,
    #[serde(default)]
    select: Vec<RawSelect>,
    #[serde(default, rename = "where")]
    wheres: Vec<RawWhere>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSelect {
    #[serde(default)]
    column: Vec<RawColumn>,
    #[serde(default)]
    select: Vec<RawSelect>,
    for_each: Option<String>,
    for_each_or_null: Option<String>,
    repeat: Option<Vec<String>>,
    #[serde(default)]
    union_all: Vec<RawSelect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: Option<String>,
    path: Option<String>,
    #[serde(rename = "type")]
    fhir_type: Option<String>,
    collection: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    tag: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhere {
    path: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

struct ViewConstants(Vec<(String, Lit)>);

impl Constants for ViewConstants {
    fn constant(&self, name: &str) -> Option<Lit> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.clone())
    }
}

fn constant_lit(key: &str, v: &Value) -> Option<Lit> {
    let ty = key.strip_prefix("value")?;
    Some(match ty {
        "Boolean" => Lit::Bool(v.as_bool()?),
        "Integer" | "PositiveInt" | "UnsignedInt" | "Integer64" => Lit::Int(v.as_i64()?),
        "Decimal" => {
            let f = v.as_f64()?;
            let scale = v
                .to_string()
                .split_once('.')
                .map_or(0, |(_, f)| f.len().min(255) as u8);
            Lit::Dec(f, scale)
        }
        "Date" => Lit::Date(v.as_str()?.to_owned()),
        "DateTime" | "Instant" => Lit::DateTime(v.as_str()?.to_owned()),
        "Time" => Lit::Time(v.as_str()?.to_owned()),
        "String" | "Code" | "Id" | "Uri" | "Url" | "Canonical" | "Oid" | "Uuid" | "Markdown"
        | "Base64Binary" => Lit::Str(v.as_str()?.to_owned()),
        _ => return None,
    })
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|c| c.is_ascii_alphabetic())
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Compiler<'a> {
    view: &'a str,
    constants: &'a ViewConstants,
}

impl Compiler<'_> {
    fn err(&self, message: String) -> ViewError {
        ViewError {
            view: self.view.to_owned(),
            message,
        }
    }

    fn path(&self, what: &str, text: &str) -> Result<Expr, ViewError> {
        compile(text, self.constants).map_err(|e| self.err(format!("{what}: {e}")))
    }

    /// Compiles `raw`, giving its columns the slots from `*next` on and recording them in
    /// `schema`.
    fn select(
        &self,
        raw: &RawSelect,
        next: &mut usize,
        schema: &mut Vec<ColumnDef>,
        above: &Reach,
    ) -> Result<Select, ViewError> {
        let iters = [
            raw.for_each.is_some(),
            raw.for_each_or_null.is_some(),
            raw.repeat.is_some(),
        ];
        if iters.iter().filter(|b| **b).count() > 1 {
            return Err(self.err("a select has more than one of forEach, forEachOrNull and repeat; split it into nested selects".into()));
        }
        let iter = if let Some(p) = &raw.for_each {
            Iter::ForEach(self.path("forEach", p)?)
        } else if let Some(p) = &raw.for_each_or_null {
            Iter::ForEachOrNull(self.path("forEachOrNull", p)?)
        } else if let Some(ps) = &raw.repeat {
            if ps.is_empty() {
                return Err(self.err("repeat needs at least one path".into()));
            }
            Iter::Repeat(
                ps.iter()
                    .map(|p| self.path("repeat", p))
                    .collect::<Result<_, _>>()?,
            )
        } else {
            Iter::Once
        };
        let mut reach = above.clone();
        match &iter {
            Iter::Once => {}
            Iter::ForEach(e) | Iter::ForEachOrNull(e) => reach.add(e),
            Iter::Repeat(es) => es.iter().for_each(|e| reach.add(e)),
        }
        let mut columns = Vec::new();
        for c in &raw.column {
            let name = c.name.clone().ok_or_else(|| {
                self.err("a column has no `name`; give every column a name".into())
            })?;
            if !valid_name(&name) {
                return Err(self.err(format!(
                    "column `{name}`: a name must start with a letter and hold only letters, digits and `_`"
                )));
            }
            let path = c
                .path
                .clone()
                .ok_or_else(|| self.err(format!("column `{name}` has no `path`")))?;
            let ty = c.fhir_type.as_deref().ok_or_else(|| {
                self.err(format!(
                    "column `{name}` has no `type`; declare its FHIR type (string, code, id, date, dateTime, integer, decimal, boolean, …) so its table column is typed"
                ))
            })?;
            let fhir_type = types::PRIMITIVES.iter().copied().find(|t| *t == ty).ok_or_else(|| {
                self.err(format!(
                    "column `{name}`: `{ty}` is not a FHIR primitive type; use one of {}, or select a primitive element of it",
                    types::PRIMITIVES.join(", ")
                ))
            })?;
            let expr = self.path(&format!("column `{name}`"), &path)?;
            let slot = *next;
            *next += 1;
            let collection = c.collection.unwrap_or(false);
            let mut col_reach = reach.clone();
            col_reach.add(&expr);
            col_reach.key = expr.key();
            col_reach.last = expr.last_member().map(str::to_owned);
            schema.push(ColumnDef {
                name: name.clone(),
                fhir_type,
                collection,
                path: path.clone(),
                reach: col_reach,
            });
            columns.push(Column {
                slot,
                name,
                path,
                fhir_type,
                collection,
                expr,
            });
        }
        let mut select = Vec::new();
        for s in &raw.select {
            select.push(self.select(s, next, schema, &reach)?);
        }
        let mut union_all = Vec::new();
        if let Some((first, rest)) = raw.union_all.split_first() {
            let start = *next;
            let first_col = schema.len();
            union_all.push(self.select(first, next, schema, &reach)?);
            for branch in rest {
                let mut n = start;
                let mut shape = Vec::new();
                let compiled = self.select(branch, &mut n, &mut shape, &reach)?;
                let same = shape.len() == schema[first_col..].len()
                    && shape.iter().zip(&schema[first_col..]).all(|(a, b)| {
                        a.name == b.name
                            && a.fhir_type == b.fhir_type
                            && a.collection == b.collection
                    });
                if !same {
                    let names = |cs: &[ColumnDef]| {
                        cs.iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    return Err(self.err(format!(
                        "unionAll branches give different columns ({} against {}); every branch must give the same columns, in the same order, of the same types",
                        names(&schema[first_col..]),
                        names(&shape)
                    )));
                }
                // The shared column's reach covers every branch; a key must be one in all.
                for (d, b) in schema[first_col..].iter_mut().zip(shape) {
                    for m in b.reach.members {
                        if !d.reach.members.contains(&m) {
                            d.reach.members.push(m);
                        }
                    }
                    for l in b.reach.literals {
                        if !d.reach.literals.contains(&l) {
                            d.reach.literals.push(l);
                        }
                    }
                    if d.reach.key != b.reach.key {
                        d.reach.key = None;
                    }
                    if d.reach.last.is_none() {
                        d.reach.last = b.reach.last;
                    }
                }
                union_all.push(compiled);
            }
        }
        Ok(Select {
            iter,
            columns,
            select,
            union_all,
        })
    }
}

impl View {
    /// Reads and compiles a ViewDefinition.
    pub fn from_json(json: &Value) -> Result<View, ViewError> {
        let label = json
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| json.get("title").and_then(Value::as_str))
            .unwrap_or("(unnamed)")
            .to_owned();
        let raw: RawView = serde_json::from_value(json.clone()).map_err(|e| ViewError {
            view: label.clone(),
            message: format!("not a valid ViewDefinition: {e}"),
        })?;
        let name = raw.name.clone().unwrap_or(label);
        let err = |message: String| ViewError {
            view: name.clone(),
            message,
        };
        let resource = match &raw.resource {
            Some(Value::String(r)) if valid_name(r) && r.starts_with(|c: char| c.is_ascii_uppercase()) => r.clone(),
            Some(_) => return Err(err("`resource` must be a FHIR resource type, such as \"Patient\"".into())),
            None => return Err(err("the view has no `resource`; name the FHIR resource type it reads, such as \"Patient\"".into())),
        };
        if raw.select.is_empty() {
            return Err(err(
                "the view has no `select`; add at least one select with columns".into(),
            ));
        }
        let mut constants = Vec::new();
        for c in &raw.constant {
            let cname = c
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| err("a constant has no `name`".into()))?;
            let values: Vec<_> = c.iter().filter(|(k, _)| k.starts_with("value")).collect();
            let lit = match values.as_slice() {
                [(k, v)] => constant_lit(k, v).ok_or_else(|| {
                    err(format!("constant `{cname}`: `{k}` is not a supported value type or its value does not match it"))
                })?,
                [] => return Err(err(format!("constant `{cname}` has no value; give it one value[x], such as valueString"))),
                _ => return Err(err(format!("constant `{cname}` has more than one value[x]"))),
            };
            constants.push((cname.to_owned(), lit));
        }
        let constants = ViewConstants(constants);
        let compiler = Compiler {
            view: &name,
            constants: &constants,
        };
        let mut wheres = Vec::new();
        for w in &raw.wheres {
            wheres.push((w.path.clone(), compiler.path("where", &w.path)?));
        }
        let mut next = 0;
        let mut columns = Vec::new();
        let mut select = Vec::new();
        for s in &raw.select {
            select.push(compiler.select(s, &mut next, &mut columns, &Reach::default())?);
        }
        if columns.is_empty() {
            return Err(err("the view selects no columns".into()));
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|d| d.name == c.name) {
                return Err(err(format!(
                    "two columns are named `{}`; column names must be unique",
                    c.name
                )));
            }
        }
        Ok(View {
            name,
            resource,
            columns,
            wheres,
            select,
        })
    }

    /// Parses and compiles a ViewDefinition from JSON text.
    pub fn parse(text: &str) -> Result<View, ViewError> {
        let json: Value = serde_json::from_str(text).map_err(|e| ViewError {
            view: "(unparsed)".into(),
            message: format!("not JSON: {e}"),
        })?;
        Self::from_json(&json)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resource type the view reads (`Patient`).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The output columns, in order.
    pub fn columns(&self) -> &[ColumnDef] {
        &self.columns
    }

    /// Whether the view reads this resource (its `resourceType` is the view's resource).
    pub fn reads(&self, tape: &Tape, resource: NodeId) -> bool {
        tape.get_str(resource, "resourceType") == Some(self.resource.as_str())
    }

    /// The rows this view makes of one resource (none when the resource is of another
    /// type or a `where` is not true).
    pub fn rows<'t>(&self, tape: &'t Tape, resource: NodeId) -> Result<Vec<Row<'t>>, RowError> {
        if !self.reads(tape, resource) {
            return Ok(Vec::new());
        }
        let ctx = Ctx {
            tape,
            resource,
            row_index: 0,
        };
        let focus = Val::Node(resource, None);
        for (path, w) in &self.wheres {
            let r = w
                .eval(std::slice::from_ref(&focus), &ctx)
                .map_err(|message| RowError::Eval {
                    path: path.clone(),
                    message,
                })?;
            match strict_truth(&r, tape) {
                Ok(Some(true)) => {}
                Ok(_) => return Ok(Vec::new()),
                Err(found) => {
                    return Err(RowError::WhereNotBoolean {
                        path: path.clone(),
                        found,
                    });
                }
            }
        }
        let width = self.columns.len();
        let mut acc: Vec<Row<'t>> = vec![vec![Cell::Null; width]];
        for s in &self.select {
            let rows = self.select_rows(s, &focus, &ctx, width)?;
            acc = product(acc, rows);
            if acc.is_empty() {
                break;
            }
        }
        Ok(acc)
    }

    fn select_rows<'t>(
        &self,
        s: &Select,
        focus: &Val,
        ctx: &Ctx<'t>,
        width: usize,
    ) -> Result<Vec<Row<'t>>, RowError> {
        let iter_err = |message: String| RowError::Eval {
            path: "forEach/repeat".into(),
            message,
        };
        let (foci, indexed) = match &s.iter {
            Iter::Once => (vec![focus.clone()], false),
            Iter::ForEach(e) | Iter::ForEachOrNull(e) => (
                e.eval(std::slice::from_ref(focus), ctx).map_err(iter_err)?,
                true,
            ),
            Iter::Repeat(es) => {
                let mut out = Vec::new();
                repeat(es, focus, ctx, &mut out, 0).map_err(iter_err)?;
                (out, true)
            }
        };
        if foci.is_empty() {
            let Iter::ForEachOrNull(_) = s.iter else {
                return Ok(Vec::new());
            };
            // One row of nulls: this select's own columns see an empty focus (so
            // `%rowIndex` is 0), nested selects and unionAll give nulls.
            let ctx = Ctx {
                row_index: 0,
                ..*ctx
            };
            let mut row = vec![Cell::Null; width];
            for c in &s.columns {
                let vals = c.expr.eval(&[], &ctx).map_err(|message| RowError::Eval {
                    path: c.path.clone(),
                    message,
                })?;
                row[c.slot] = cell(c, vals, ctx.tape)?;
            }
            return Ok(vec![row]);
        }
        let mut out = Vec::new();
        for (i, f) in foci.iter().enumerate() {
            let ctx = Ctx {
                row_index: if indexed { i as i64 } else { ctx.row_index },
                ..*ctx
            };
            let mut row = vec![Cell::Null; width];
            let here = std::slice::from_ref(f);
            for c in &s.columns {
                let vals = c.expr.eval(here, &ctx).map_err(|message| RowError::Eval {
                    path: c.path.clone(),
                    message,
                })?;
                row[c.slot] = cell(c, vals, ctx.tape)?;
            }
            let mut acc = vec![row];
            for child in &s.select {
                acc = product(acc, self.select_rows(child, f, &ctx, width)?);
                if acc.is_empty() {
                    break;
                }
            }
            if !s.union_all.is_empty() && !acc.is_empty() {
                let mut u = Vec::new();
                for b in &s.union_all {
                    u.extend(self.select_rows(b, f, &ctx, width)?);
                }
                acc = product(acc, u);
            }
            out.extend(acc);
        }
        Ok(out)
    }
}

/// `repeat`: every node the paths reach, depth first, each followed by what the paths
/// reach from it.
fn repeat(
    es: &[Expr],
    focus: &Val,
    ctx: &Ctx<'_>,
    out: &mut Coll,
    depth: usize,
) -> Result<(), String> {
    if depth > 64 {
        return Err("repeat goes deeper than 64 levels".into());
    }
    for e in es {
        for child in e.eval(std::slice::from_ref(focus), ctx)? {
            out.push(child.clone());
            repeat(es, &child, ctx, out, depth + 1)?;
        }
    }
    Ok(())
}

/// Every pairing of a row of `a` with a row of `b` (each fills its own columns).
fn product<'t>(a: Vec<Row<'t>>, b: Vec<Row<'t>>) -> Vec<Row<'t>> {
    if a.len() == 1 && b.len() == 1 {
        let (mut x, y) = (
            a.into_iter().next().unwrap_or_default(),
            b.into_iter().next().unwrap_or_default(),
        );
        merge(&mut x, y);
        return vec![x];
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in &a {
        for y in &b {
            let mut r = x.clone();
            merge(&mut r, y.clone());
            out.push(r);
        }
    }
    out
}

fn merge<'t>(into: &mut Row<'t>, from: Row<'t>) {
    for (slot, c) in into.iter_mut().zip(from) {
        if c != Cell::Null {
            *slot = c;
        }
    }
}

fn cell<'t>(c: &Column, vals: Coll, tape: &'t Tape) -> Result<Cell<'t>, RowError> {
    if c.collection {
        let mut items = Vec::with_capacity(vals.len());
        for v in vals {
            items.push(convert(c, v, tape)?);
        }
        return Ok(Cell::List(items));
    }
    match vals.len() {
        0 => Ok(Cell::Null),
        1 => vals
            .into_iter()
            .next()
            .map_or(Ok(Cell::Null), |v| convert(c, v, tape)),
        n => Err(RowError::NotSingle {
            column: c.name.clone(),
            count: n,
        }),
    }
}

fn convert<'t>(c: &Column, v: Val, tape: &'t Tape) -> Result<Cell<'t>, RowError> {
    use crate::json::Kind;
    let mismatch = |v: &Val| RowError::Type {
        column: c.name.clone(),
        expected: match c.fhir_type {
            "boolean" => "a boolean",
            "decimal" => "a decimal",
            t if types::is_integer(t) => "an integer",
            _ => "a string",
        },
        found: describe(v, tape),
    };
    let t = c.fhir_type;
    Ok(match t {
        "boolean" => match &v {
            Val::Bool(b) => Cell::Bool(*b),
            Val::Node(id, _) if tape.kind(*id) == Kind::True => Cell::Bool(true),
            Val::Node(id, _) if tape.kind(*id) == Kind::False => Cell::Bool(false),
            _ => return Err(mismatch(&v)),
        },
        "decimal" => match &v {
            Val::Int(i) => Cell::Dec(*i as f64),
            Val::Dec(d, _) => Cell::Dec(*d),
            Val::Node(id, _) if tape.kind(*id) == Kind::Number => Cell::Dec(
                tape.str(*id)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| mismatch(&v))?,
            ),
            _ => return Err(mismatch(&v)),
        },
        t if types::is_integer(t) => match &v {
            Val::Int(i) => Cell::Int(*i),
            Val::Node(id, _) if tape.kind(*id) == Kind::Number => Cell::Int(
                tape.str(*id)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| mismatch(&v))?,
            ),
            _ => return Err(mismatch(&v)),
        },
        _ => match v {
            Val::Node(id, _) => match tape.kind(id) {
                Kind::String | Kind::Number => {
                    Cell::Str(Cow::Borrowed(tape.str(id).unwrap_or_default()))
                }
                Kind::True => Cell::Str(Cow::Borrowed("true")),
                Kind::False => Cell::Str(Cow::Borrowed("false")),
                _ => return Err(mismatch(&v)),
            },
            Val::Str(s) | Val::Date(s) | Val::DateTime(s) | Val::Time(s) => {
                Cell::Str(Cow::Owned(s))
            }
            Val::Int(i) => Cell::Str(Cow::Owned(i.to_string())),
            Val::Dec(d, s) => Cell::Str(Cow::Owned(format!("{d:.*}", s as usize))),
            Val::Bool(b) => Cell::Str(Cow::Borrowed(if b { "true" } else { "false" })),
        },
    })
}

impl Cell<'_> {
    /// The cell as JSON (the view runner's NDJSON output and the conformance suite).
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Str(s) => Value::String(s.to_string()),
            Cell::Int(i) => Value::from(*i),
            Cell::Dec(d) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::List(items) => Value::Array(items.iter().map(Cell::to_json).collect()),
        }
    }
}

/// A row as a JSON object keyed by column name.
pub fn row_json(view: &View, row: &Row<'_>) -> Value {
    Value::Object(
        view.columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.name.clone(), v.to_json()))
            .collect(),
    )
}
