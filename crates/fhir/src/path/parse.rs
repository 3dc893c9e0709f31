//! FHIRPath text → [`Expr`], once per view. Constants (`%name`) are substituted here, so
//! a path that names an undefined constant, an unknown function or a wrong argument is
//! refused before any resource is read.

use super::types;
use crate::error::PathError;

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Int(i64),
    /// A decimal and the number of digits after its point.
    Dec(f64, u8),
    Bool(bool),
    Date(String),
    DateTime(String),
    Time(String),
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `$this`, and the implicit focus of a path that starts with a name.
    This,
    /// `%rowIndex`: the index of the current `forEach`/`forEachOrNull`/`repeat` item.
    RowIndex,
    /// `%resource`/`%rootResource`: the resource being read.
    Resource,
    Lit(Lit),
    /// `{}`
    Empty,
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Func),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Is(Box<Expr>, TypeName),
    As(Box<Expr>, TypeName),
}

impl Expr {
    /// Calls `f` on this expression and every expression inside it.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Member(t, _) | Expr::Neg(t) | Expr::Is(t, _) | Expr::As(t, _) => t.walk(f),
            Expr::Index(a, b) | Expr::Bin(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Call(t, func) => {
                t.walk(f);
                match func {
                    Func::Where(e)
                    | Func::Select(e)
                    | Func::All(e)
                    | Func::Skip(e)
                    | Func::Take(e)
                    | Func::StartsWith(e)
                    | Func::EndsWith(e)
                    | Func::Contains(e)
                    | Func::Exists(Some(e)) => e.walk(f),
                    Func::Iif(a, b, c) => {
                        a.walk(f);
                        b.walk(f);
                        if let Some(c) = c {
                            c.walk(f);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// The last element name the expression navigates to (`subject.reference` →
    /// `reference`, `name.first().family` → `family`), looking through functions that
    /// keep or narrow their input (`first()`, `where(…)`, `ofType(…)`, …).
    pub fn last_member(&self) -> Option<&str> {
        match self {
            Expr::Member(_, m) => Some(m),
            Expr::Index(t, _) | Expr::As(t, _) => t.last_member(),
            Expr::Call(
                t,
                Func::First
                | Func::Last
                | Func::Single
                | Func::Tail
                | Func::Skip(_)
                | Func::Take(_)
                | Func::Where(_)
                | Func::OfType(_)
                | Func::Distinct
                | Func::Join(_)
                | Func::Lower
                | Func::Upper
                | Func::ToString,
            ) => t.last_member(),
            _ => None,
        }
    }

    /// The resource key this expression gives, when it is `getResourceKey()` or
    /// `getReferenceKey(…)` (possibly followed by `first()`): `Some(None)` for the
    /// resource's own key, `Some(Some(type))` for a typed reference key, and
    /// `Some(Some(""))` for an untyped one.
    pub fn key(&self) -> Option<Option<String>> {
        match self {
            Expr::Call(t, Func::First | Func::Single) => t.key(),
            Expr::Call(_, Func::GetResourceKey) => Some(None),
            Expr::Call(_, Func::GetReferenceKey(t)) => Some(Some(t.clone().unwrap_or_default())),
            _ => None,
        }
    }
}

/// A type named in `ofType()`, `is` or `as`.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeName {
    /// A FHIR data type (primitive or complex).
    Data(&'static str),
    /// A resource type (matched against `resourceType`).
    Resource(String),
}

/// The functions dhub supports (the SQL on FHIR v2 subset, and a few more).
#[derive(Debug, Clone, PartialEq)]
pub enum Func {
    Where(Box<Expr>),
    Select(Box<Expr>),
    Exists(Option<Box<Expr>>),
    All(Box<Expr>),
    Empty,
    First,
    Last,
    Tail,
    Skip(Box<Expr>),
    Take(Box<Expr>),
    Single,
    Count,
    Distinct,
    Not,
    HasValue,
    OfType(TypeName),
    Extension(String),
    Join(String),
    GetResourceKey,
    GetReferenceKey(Option<String>),
    LowBoundary,
    HighBoundary,
    StartsWith(Box<Expr>),
    EndsWith(Box<Expr>),
    Contains(Box<Expr>),
    Lower,
    Upper,
    Length,
    ToString,
    ToInteger,
    ToDecimal,
    Iif(Box<Expr>, Box<Expr>, Option<Box<Expr>>),
}

/// The names [`Func`] accepts, for the error that lists them.
pub const FUNCTIONS: &[&str] = &[
    "where",
    "select",
    "exists",
    "all",
    "empty",
    "first",
    "last",
    "tail",
    "skip",
    "take",
    "single",
    "count",
    "distinct",
    "not",
    "hasValue",
    "ofType",
    "extension",
    "join",
    "getResourceKey",
    "getReferenceKey",
    "lowBoundary",
    "highBoundary",
    "startsWith",
    "endsWith",
    "contains",
    "lower",
    "upper",
    "length",
    "toString",
    "toInteger",
    "toDecimal",
    "iif",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Mul,
    Div,
    IntDiv,
    Mod,
    Add,
    Sub,
    Concat,
    Union,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    Equiv,
    NotEquiv,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// A name in backticks: never a keyword.
    Quoted(String),
    Str(String),
    Num(String),
    Date(String),
    DateTime(String),
    Time(String),
    Dollar(String),
    Percent(String),
    Punct(&'static str),
}

/// Resolves `%name` to a literal (the view's constants); `None` for an unknown name.
pub trait Constants {
    fn constant(&self, name: &str) -> Option<Lit>;
}

/// Compiles `text`.
pub fn compile(text: &str, constants: &dyn Constants) -> Result<Expr, PathError> {
    let toks = lex(text)?;
    let mut p = Parser {
        text,
        toks,
        i: 0,
        constants,
    };
    if p.toks.is_empty() {
        return Err(p.err(0, "the path is empty".into()));
    }
    let e = p.expr(0)?;
    if p.i < p.toks.len() {
        let at = p.toks[p.i].0;
        return Err(p.err(at, "unexpected text after the expression".into()));
    }
    Ok(e)
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, PathError> {
    let err = |offset: usize, message: &str| PathError {
        expression: text.to_owned(),
        offset,
        message: message.to_owned(),
    };
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .ok_or_else(|| err(i, "unterminated comment"))?;
                i += end + 4;
                continue;
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((start, Tok::Ident(text[start..i].to_owned())));
            }
            b'`' => {
                let end = text[i + 1..]
                    .find('`')
                    .ok_or_else(|| err(i, "unterminated `name`"))?;
                out.push((start, Tok::Quoted(text[i + 1..i + 1 + end].to_owned())));
                i += end + 2;
            }
            b'\'' => {
                let (s, next) = string_literal(text, i)
                    .ok_or_else(|| err(i, "unterminated or malformed string literal"))?;
                out.push((start, Tok::Str(s)));
                i = next;
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                out.push((start, Tok::Num(text[start..i].to_owned())));
            }
            b'@' => {
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'-' | b':' | b'.' | b'+'))
                {
                    i += 1;
                }
                let lit = &text[start + 1..i];
                out.push((
                    start,
                    temporal_literal(lit)
                        .ok_or_else(|| err(start, "malformed date or time literal"))?,
                ));
            }
            b'$' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((start, Tok::Dollar(text[start + 1..i].to_owned())));
            }
            b'%' => {
                i += 1;
                let name = match b.get(i) {
                    Some(b'`') => {
                        let end = text[i + 1..]
                            .find('`')
                            .ok_or_else(|| err(i, "unterminated %`name`"))?;
                        let n = text[i + 1..i + 1 + end].to_owned();
                        i += end + 2;
                        n
                    }
                    Some(b'\'') => {
                        let (s, next) =
                            string_literal(text, i).ok_or_else(|| err(i, "malformed %'name'"))?;
                        i = next;
                        s
                    }
                    _ => {
                        let s = i;
                        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                            i += 1;
                        }
                        text[s..i].to_owned()
                    }
                };
                if name.is_empty() {
                    return Err(err(start, "`%` must be followed by a name"));
                }
                out.push((start, Tok::Percent(name)));
            }
            _ => {
                const PUNCT: &[&str] = &[
                    "<=", ">=", "!=", "!~", ".", "[", "]", "(", ")", "{", "}", ",", "+", "-", "*",
                    "/", "&", "|", "=", "~", "<", ">",
                ];
                let Some(p) = PUNCT.iter().find(|p| text[i..].starts_with(**p)) else {
                    return Err(err(i, "unexpected character"));
                };
                out.push((start, Tok::Punct(p)));
                i += p.len();
            }
        }
    }
    Ok(out)
}

/// A `'...'` literal starting at `i`: its value and the index after it.
fn string_literal(text: &str, i: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = text[i + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '\'' => return Some((out, i + 1 + k + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    '\'' | '"' | '`' | '\\' | '/' => out.push(e),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let mut v = 0u32;
                        for _ in 0..4 {
                            v = v * 16 + chars.next()?.1.to_digit(16)?;
                        }
                        out.push(char::from_u32(v)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

fn temporal_literal(lit: &str) -> Option<Tok> {
    if let Some(t) = lit.strip_prefix('T') {
        return is_time(t).then(|| Tok::Time(t.to_owned()));
    }
    match lit.split_once('T') {
        None => is_date(lit).then(|| Tok::Date(lit.to_owned())),
        Some((d, t)) => {
            let ok = is_date(d)
                && (t.is_empty() || {
                    let (time, _tz) = split_tz(t);
                    is_time(time)
                });
            ok.then(|| Tok::DateTime(lit.to_owned()))
        }
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
pub(crate) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    match b.len() {
        4 => digits(0..4),
        7 => digits(0..4) && b[4] == b'-' && digits(5..7),
        10 => digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
        _ => false,
    }
}

/// `HH`, `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff…`.
pub(crate) fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    match b.len() {
        2 => digits(0..2),
        5 => digits(0..2) && b[2] == b':' && digits(3..5),
        8 => digits(0..2) && b[2] == b':' && digits(3..5) && b[5] == b':' && digits(6..8),
        n if n > 9 => {
            digits(0..2)
                && b[2] == b':'
                && digits(3..5)
                && b[5] == b':'
                && digits(6..8)
                && b[8] == b'.'
                && digits(9..n)
        }
        _ => false,
    }
}

/// Splits a time of day from its zone (`Z`, `+HH:MM`, `-HH:MM`).
pub(crate) fn split_tz(t: &str) -> (&str, &str) {
    if let Some(p) = t.strip_suffix('Z') {
        return (p, "Z");
    }
    match t.rfind(['+', '-']) {
        Some(k) => (&t[..k], &t[k..]),
        None => (t, ""),
    }
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    i: usize,
    constants: &'a dyn Constants,
}

/// Binding power of each infix operator (higher binds tighter).
fn infix(tok: &Tok) -> Option<(u8, BinOp)> {
    Some(match tok {
        Tok::Punct("*") => (10, BinOp::Mul),
        Tok::Punct("/") => (10, BinOp::Div),
        Tok::Ident(s) if s == "div" => (10, BinOp::IntDiv),
        Tok::Ident(s) if s == "mod" => (10, BinOp::Mod),
        Tok::Punct("+") => (9, BinOp::Add),
        Tok::Punct("-") => (9, BinOp::Sub),
        Tok::Punct("&") => (9, BinOp::Concat),
        Tok::Punct("|") => (7, BinOp::Union),
        Tok::Punct("<") => (6, BinOp::Lt),
        Tok::Punct(">") => (6, BinOp::Gt),
        Tok::Punct("<=") => (6, BinOp::Le),
        Tok::Punct(">=") => (6, BinOp::Ge),
        Tok::Punct("=") => (5, BinOp::Eq),
        Tok::Punct("!=") => (5, BinOp::Ne),
        Tok::Punct("~") => (5, BinOp::Equiv),
        Tok::Punct("!~") => (5, BinOp::NotEquiv),
        Tok::Ident(s) if s == "in" => (4, BinOp::In),
        Tok::Ident(s) if s == "contains" => (4, BinOp::Contains),
        Tok::Ident(s) if s == "and" => (3, BinOp::And),
        Tok::Ident(s) if s == "or" => (2, BinOp::Or),
        Tok::Ident(s) if s == "xor" => (2, BinOp::Xor),
        Tok::Ident(s) if s == "implies" => (1, BinOp::Implies),
        _ => return None,
    })
}

impl Parser<'_> {
    fn err(&self, offset: usize, message: String) -> PathError {
        PathError {
            expression: self.text.to_owned(),
            offset,
            message,
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.1)
    }

    fn here(&self) -> usize {
        self.toks.get(self.i).map_or(self.text.len(), |t| t.0)
    }

    fn expect(&mut self, p: &'static str) -> Result<(), PathError> {
        if self.peek() == Some(&Tok::Punct(p)) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(self.here(), format!("expected `{p}`")))
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, PathError> {
        let mut lhs = self.unary()?;
        loop {
            // `is` and `as` (binding power 8) take a type name, not an expression.
            if let Some(Tok::Ident(kw)) = self.peek()
                && (kw == "is" || kw == "as")
                && 8 >= min
            {
                let is = kw == "is";
                self.i += 1;
                let t = self.type_name()?;
                lhs = if is {
                    Expr::Is(Box::new(lhs), t)
                } else {
                    Expr::As(Box::new(lhs), t)
                };
                continue;
            }
            let Some((bp, op)) = self.peek().and_then(infix) else {
                break;
            };
            if bp < min {
                break;
            }
            self.i += 1;
            let rhs = self.expr(bp + 1)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn type_name(&mut self) -> Result<TypeName, PathError> {
        let at = self.here();
        let mut name = match self.toks.get(self.i).map(|t| t.1.clone()) {
            Some(Tok::Ident(s) | Tok::Quoted(s)) => s,
            _ => return Err(self.err(at, "expected a type name".into())),
        };
        self.i += 1;
        if self.peek() == Some(&Tok::Punct("."))
            && let Some((_, Tok::Ident(s) | Tok::Quoted(s))) = self.toks.get(self.i + 1)
        {
            name = format!("{name}.{s}");
            self.i += 2;
        }
        type_from_name(&name).ok_or_else(|| self.err(at, format!("unknown type `{name}`")))
    }

    fn unary(&mut self) -> Result<Expr, PathError> {
        match self.peek() {
            Some(Tok::Punct("-")) => {
                self.i += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(Tok::Punct("+")) => {
                self.i += 1;
                self.unary()
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, PathError> {
        let mut e = self.term()?;
        loop {
            match self.peek() {
                Some(Tok::Punct(".")) => {
                    self.i += 1;
                    e = self.invocation(e)?;
                }
                Some(Tok::Punct("[")) => {
                    self.i += 1;
                    let idx = self.expr(0)?;
                    self.expect("]")?;
                    e = Expr::Index(Box::new(e), Box::new(idx));
                }
                _ => return Ok(e),
            }
        }
    }

    fn term(&mut self) -> Result<Expr, PathError> {
        let at = self.here();
        let Some((_, tok)) = self.toks.get(self.i).cloned() else {
            return Err(self.err(at, "the expression ends too early".into()));
        };
        match tok {
            Tok::Punct("(") => {
                self.i += 1;
                let e = self.expr(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Punct("{") => {
                self.i += 1;
                self.expect("}")?;
                Ok(Expr::Empty)
            }
            Tok::Str(s) => {
                self.i += 1;
                Ok(Expr::Lit(Lit::Str(s)))
            }
            Tok::Num(n) => {
                self.i += 1;
                number_literal(&n)
                    .map(Expr::Lit)
                    .ok_or_else(|| self.err(at, "number out of range".into()))
            }
            Tok::Date(d) => {
                self.i += 1;
                Ok(Expr::Lit(Lit::Date(d)))
            }
            Tok::DateTime(d) => {
                self.i += 1;
                Ok(Expr::Lit(Lit::DateTime(d)))
            }
            Tok::Time(t) => {
                self.i += 1;
                Ok(Expr::Lit(Lit::Time(t)))
            }
            Tok::Dollar(name) => {
                self.i += 1;
                match name.as_str() {
                    "this" => Ok(Expr::This),
                    _ => Err(self.err(at, format!("`${name}` is not supported (only `$this`)"))),
                }
            }
            Tok::Percent(name) => {
                self.i += 1;
                match name.as_str() {
                    "rowIndex" => Ok(Expr::RowIndex),
                    "resource" | "rootResource" | "context" => Ok(Expr::Resource),
                    _ => match self.constants.constant(&name) {
                        Some(l) => Ok(Expr::Lit(l)),
                        None => Err(self.err(
                            at,
                            format!("`%{name}` is not a constant of this view; declare it under `constant` or fix the name"),
                        )),
                    },
                }
            }
            Tok::Ident(ref s) if s == "true" || s == "false" => {
                self.i += 1;
                Ok(Expr::Lit(Lit::Bool(s == "true")))
            }
            Tok::Ident(_) | Tok::Quoted(_) => self.invocation(Expr::This),
            Tok::Punct(p) => Err(self.err(at, format!("unexpected `{p}`"))),
        }
    }

    /// A member name or a function call applied to `target`.
    fn invocation(&mut self, target: Expr) -> Result<Expr, PathError> {
        let at = self.here();
        let (name, quoted) = match self.toks.get(self.i).map(|t| t.1.clone()) {
            Some(Tok::Ident(s)) => (s, false),
            Some(Tok::Quoted(s)) => (s, true),
            _ => return Err(self.err(at, "expected a name after `.`".into())),
        };
        self.i += 1;
        if quoted || self.peek() != Some(&Tok::Punct("(")) {
            return Ok(Expr::Member(Box::new(target), name));
        }
        self.i += 1;
        let mut args = Vec::new();
        if self.peek() == Some(&Tok::Punct(")")) {
            self.i += 1;
        } else {
            loop {
                args.push(self.expr(0)?);
                match self.peek() {
                    Some(Tok::Punct(",")) => self.i += 1,
                    Some(Tok::Punct(")")) => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.err(self.here(), "expected `,` or `)`".into())),
                }
            }
        }
        let f = self.function(at, &name, args)?;
        Ok(Expr::Call(Box::new(target), f))
    }

    fn function(&self, at: usize, name: &str, mut args: Vec<Expr>) -> Result<Func, PathError> {
        let n = args.len();
        let arity = |lo: usize, hi: usize| -> Result<(), PathError> {
            if (lo..=hi).contains(&n) {
                Ok(())
            } else if lo == hi {
                Err(self.err(at, format!("{name}() takes {lo} argument(s), not {n}")))
            } else {
                Err(self.err(
                    at,
                    format!("{name}() takes {lo} to {hi} arguments, not {n}"),
                ))
            }
        };
        let one = |args: &mut Vec<Expr>| Box::new(args.remove(0));
        let f = match name {
            "where" => {
                arity(1, 1)?;
                Func::Where(one(&mut args))
            }
            "select" => {
                arity(1, 1)?;
                Func::Select(one(&mut args))
            }
            "all" => {
                arity(1, 1)?;
                Func::All(one(&mut args))
            }
            "exists" => {
                arity(0, 1)?;
                Func::Exists((n == 1).then(|| one(&mut args)))
            }
            "empty" => {
                arity(0, 0)?;
                Func::Empty
            }
            "first" => {
                arity(0, 0)?;
                Func::First
            }
            "last" => {
                arity(0, 0)?;
                Func::Last
            }
            "tail" => {
                arity(0, 0)?;
                Func::Tail
            }
            "skip" => {
                arity(1, 1)?;
                Func::Skip(one(&mut args))
            }
            "take" => {
                arity(1, 1)?;
                Func::Take(one(&mut args))
            }
            "single" => {
                arity(0, 0)?;
                Func::Single
            }
            "count" => {
                arity(0, 0)?;
                Func::Count
            }
            "distinct" => {
                arity(0, 0)?;
                Func::Distinct
            }
            "not" => {
                arity(0, 0)?;
                Func::Not
            }
            "hasValue" => {
                arity(0, 0)?;
                Func::HasValue
            }
            "lowBoundary" => {
                arity(0, 1)?;
                Func::LowBoundary
            }
            "highBoundary" => {
                arity(0, 1)?;
                Func::HighBoundary
            }
            "getResourceKey" => {
                arity(0, 0)?;
                Func::GetResourceKey
            }
            "lower" => {
                arity(0, 0)?;
                Func::Lower
            }
            "upper" => {
                arity(0, 0)?;
                Func::Upper
            }
            "length" => {
                arity(0, 0)?;
                Func::Length
            }
            "toString" => {
                arity(0, 0)?;
                Func::ToString
            }
            "toInteger" => {
                arity(0, 0)?;
                Func::ToInteger
            }
            "toDecimal" => {
                arity(0, 0)?;
                Func::ToDecimal
            }
            "startsWith" => {
                arity(1, 1)?;
                Func::StartsWith(one(&mut args))
            }
            "endsWith" => {
                arity(1, 1)?;
                Func::EndsWith(one(&mut args))
            }
            "contains" => {
                arity(1, 1)?;
                Func::Contains(one(&mut args))
            }
            "iif" => {
                arity(2, 3)?;
                let c = one(&mut args);
                let t = one(&mut args);
                Func::Iif(c, t, (n == 3).then(|| one(&mut args)))
            }
            "ofType" => {
                arity(1, 1)?;
                let spec = type_spec(&args[0]).ok_or_else(|| {
                    self.err(
                        at,
                        "ofType() takes a type name, such as ofType(Quantity)".into(),
                    )
                })?;
                Func::OfType(
                    type_from_name(&spec)
                        .ok_or_else(|| self.err(at, format!("ofType(): unknown type `{spec}`")))?,
                )
            }
            "extension" => {
                arity(1, 1)?;
                match &args[0] {
                    Expr::Lit(Lit::Str(url)) => Func::Extension(url.clone()),
                    _ => {
                        return Err(self.err(
                            at,
                            "extension() takes the extension's URL as a string".into(),
                        ));
                    }
                }
            }
            "join" => {
                arity(0, 1)?;
                match args.first() {
                    None => Func::Join(String::new()),
                    Some(Expr::Lit(Lit::Str(s))) => Func::Join(s.clone()),
                    Some(_) => return Err(self.err(at, "join() takes a separator string".into())),
                }
            }
            "getReferenceKey" => {
                arity(0, 1)?;
                match args.first() {
                    None => Func::GetReferenceKey(None),
                    Some(a) => {
                        let spec = type_spec(a)
                            .filter(|s| s.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
                            .ok_or_else(|| self.err(at, "getReferenceKey() takes a resource type, such as getReferenceKey(Patient)".into()))?;
                        Func::GetReferenceKey(Some(spec))
                    }
                }
            }
            _ => {
                return Err(self.err(
                    at,
                    format!(
                        "unknown or unsupported function `{name}()`; dhub supports: {}",
                        FUNCTIONS.join(", ")
                    ),
                ));
            }
        };
        Ok(f)
    }
}

/// A type name written as a path (`Quantity`, `FHIR.Quantity`) back to its text.
fn type_spec(e: &Expr) -> Option<String> {
    match e {
        Expr::Member(t, name) => match t.as_ref() {
            Expr::This => Some(name.clone()),
            inner => type_spec(inner).map(|ns| format!("{ns}.{name}")),
        },
        _ => None,
    }
}

fn type_from_name(name: &str) -> Option<TypeName> {
    if let Some(t) = types::resolve(name) {
        return Some(TypeName::Data(t));
    }
    let bare = name.strip_prefix("FHIR.").unwrap_or(name);
    (bare.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && bare.chars().all(|c| c.is_ascii_alphanumeric()))
    .then(|| TypeName::Resource(bare.to_owned()))
}

fn number_literal(n: &str) -> Option<Lit> {
    match n.split_once('.') {
        None => n.parse().ok().map(Lit::Int),
        Some((_, frac)) => n
            .parse()
            .ok()
            .map(|v| Lit::Dec(v, frac.len().min(255) as u8)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoConstants;
    impl Constants for NoConstants {
        fn constant(&self, _: &str) -> Option<Lit> {
            None
        }
    }

    fn ok(s: &str) -> Expr {
        compile(s, &NoConstants).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn precedence() {
        let e = ok("a = 1 and b or c");
        let Expr::Bin(BinOp::Or, l, _) = e else {
            panic!("{e:?}")
        };
        assert!(matches!(*l, Expr::Bin(BinOp::And, _, _)));
        let e = ok("1 + 2 * 3");
        let Expr::Bin(BinOp::Add, _, r) = e else {
            panic!("{e:?}")
        };
        assert!(matches!(*r, Expr::Bin(BinOp::Mul, _, _)));
    }

    #[test]
    fn refuses_bad_paths_with_their_place() {
        for bad in [
            "@@",
            "name.",
            "name.where(",
            "foo()",
            "name.first(1)",
            "%nope",
            "ofType(Banana1.x)",
            "a ++",
            "",
            "'abc",
        ] {
            let e = compile(bad, &NoConstants).expect_err(bad);
            assert!(!e.message.is_empty(), "{bad}");
        }
        let e = compile("name.soundex()", &NoConstants).expect_err("unknown");
        assert!(
            e.message.contains("soundex") && e.message.contains("where"),
            "{}",
            e.message
        );
    }

    #[test]
    fn literals() {
        assert_eq!(ok("'a\\'b'"), Expr::Lit(Lit::Str("a'b".into())));
        assert_eq!(ok("1.50"), Expr::Lit(Lit::Dec(1.5, 2)));
        assert_eq!(ok("@2020-01"), Expr::Lit(Lit::Date("2020-01".into())));
        assert_eq!(
            ok("@2020-01-02T10:00:00Z"),
            Expr::Lit(Lit::DateTime("2020-01-02T10:00:00Z".into()))
        );
        assert_eq!(ok("@T10:30"), Expr::Lit(Lit::Time("10:30".into())));
    }
}
