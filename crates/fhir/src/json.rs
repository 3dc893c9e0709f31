//! A JSON tree for one FHIR resource at a time, built in buffers that are reused from
//! one resource to the next (no allocation per resource once they have grown).
//!
//! Strings and numbers point into the input; a string with escapes is unescaped once
//! into a side buffer. Numbers keep their text, so a decimal's precision (`1.0` against
//! `1`) survives to `lowBoundary()` and `highBoundary()` and to the column.

use crate::error::JsonError;

/// Nesting deeper than this is refused: no real resource comes close, and it bounds the
/// parser's stack on hostile input.
pub const MAX_DEPTH: usize = 256;

const ESCAPED: u32 = 1 << 31;

/// One node of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    True,
    False,
    /// `a..b`: the number's text in the input.
    Number,
    /// `a..b`: the string's text (in the input, or in the unescaped buffer when `a` has
    /// the high bit set).
    String,
    /// `a..a+b`: indices into the item list.
    Array,
    /// `a..a+b`: indices into the member list.
    Object,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    kind: Kind,
    a: u32,
    b: u32,
}

/// A span of text: in the input, or (high bit of `start`) in the unescaped buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// A parsed JSON document.
#[derive(Debug, Default)]
pub struct Tape {
    input: Vec<u8>,
    unescaped: String,
    nodes: Vec<Node>,
    items: Vec<u32>,
    members: Vec<(Span, u32)>,
    scratch_items: Vec<u32>,
    scratch_members: Vec<(Span, u32)>,
    root: u32,
}

/// A reference to one node of a [`Tape`].
pub type NodeId = u32;

impl Tape {
    pub fn new() -> Self {
        Self::default()
    }

    /// The input buffer, to fill before [`Tape::parse`] (an NDJSON reader reads a line
    /// straight into it).
    pub fn input_mut(&mut self) -> &mut Vec<u8> {
        &mut self.input
    }

    /// The text last parsed (a resource's line, or a bundle entry).
    pub fn input(&self) -> &[u8] {
        &self.input
    }

    /// Parses `text` (copied into the tape).
    pub fn parse_bytes(&mut self, text: &[u8]) -> Result<(), JsonError> {
        self.input.clear();
        self.input.extend_from_slice(text);
        self.parse()
    }

    /// Parses the input buffer as one JSON value (surrounding white space allowed).
    pub fn parse(&mut self) -> Result<(), JsonError> {
        self.unescaped.clear();
        self.nodes.clear();
        self.items.clear();
        self.members.clear();
        if self.input.len() >= ESCAPED as usize {
            return Err(JsonError::at(0, "the document is larger than 2 GiB"));
        }
        if let Err(e) = std::str::from_utf8(&self.input) {
            return Err(JsonError::at(
                e.valid_up_to(),
                "the text is not valid UTF-8",
            ));
        }
        let mut p = Parser {
            src: &self.input,
            pos: 0,
            tape_nodes: &mut self.nodes,
            items: &mut self.items,
            members: &mut self.members,
            scratch_items: &mut self.scratch_items,
            scratch_members: &mut self.scratch_members,
            unescaped: &mut self.unescaped,
        };
        p.skip_ws();
        let root = p.value(0)?;
        p.skip_ws();
        if p.pos != p.src.len() {
            return Err(JsonError::at(p.pos, "unexpected text after the JSON value"));
        }
        self.root = root;
        Ok(())
    }

    /// The document's top node (nodes are stored children first).
    pub fn root(&self) -> NodeId {
        self.root
    }

    pub fn kind(&self, id: NodeId) -> Kind {
        self.nodes[id as usize].kind
    }

    fn text(&self, span: Span) -> &str {
        let bytes = if span.start & ESCAPED != 0 {
            &self.unescaped.as_bytes()[(span.start & !ESCAPED) as usize..span.end as usize]
        } else {
            &self.input[span.start as usize..span.end as usize]
        };
        // Spans start and end at ASCII delimiters of text checked as UTF-8 in `parse`.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// The text of a string node or of a number node (as written); `None` otherwise.
    pub fn str(&self, id: NodeId) -> Option<&str> {
        let n = self.nodes[id as usize];
        match n.kind {
            Kind::String | Kind::Number => Some(self.text(Span {
                start: n.a,
                end: n.b,
            })),
            _ => None,
        }
    }

    /// The items of an array node (empty for anything else).
    pub fn items(&self, id: NodeId) -> &[u32] {
        let n = self.nodes[id as usize];
        match n.kind {
            Kind::Array => &self.items[n.a as usize..(n.a + n.b) as usize],
            _ => &[],
        }
    }

    /// The members of an object node, as (key, value) pairs, in document order.
    pub fn members(&self, id: NodeId) -> impl Iterator<Item = (&str, NodeId)> + '_ {
        let n = self.nodes[id as usize];
        let range = match n.kind {
            Kind::Object => n.a as usize..(n.a + n.b) as usize,
            _ => 0..0,
        };
        self.members[range].iter().map(|(k, v)| (self.text(*k), *v))
    }

    /// The value of member `key` of an object node.
    pub fn get(&self, id: NodeId, key: &str) -> Option<NodeId> {
        self.members(id).find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The string value of member `key` of an object node.
    pub fn get_str(&self, id: NodeId, key: &str) -> Option<&str> {
        self.get(id, key)
            .filter(|v| self.kind(*v) == Kind::String)
            .and_then(|v| self.str(v))
    }

    /// Structural equality of two nodes (object members compared by key, in any order).
    pub fn deep_eq(&self, a: NodeId, b: NodeId) -> bool {
        let (ka, kb) = (self.kind(a), self.kind(b));
        if ka != kb {
            return false;
        }
        match ka {
            Kind::Null | Kind::True | Kind::False => true,
            Kind::String => self.str(a) == self.str(b),
            Kind::Number => match (self.str(a), self.str(b)) {
                (Some(x), Some(y)) => {
                    x == y
                        || x.parse::<f64>()
                            .ok()
                            .zip(y.parse::<f64>().ok())
                            .is_some_and(|(x, y)| x == y)
                }
                _ => false,
            },
            Kind::Array => {
                let (x, y) = (self.items(a), self.items(b));
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| self.deep_eq(*x, *y))
            }
            Kind::Object => {
                let n = self.members(a).count();
                n == self.members(b).count()
                    && self
                        .members(a)
                        .all(|(k, v)| self.get(b, k).is_some_and(|w| self.deep_eq(v, w)))
            }
        }
    }

    /// Writes a node back as compact JSON (used for diagnostics and the view runner's
    /// NDJSON output of complex values).
    pub fn to_json(&self, id: NodeId) -> serde_json::Value {
        use serde_json::Value;
        match self.kind(id) {
            Kind::Null => Value::Null,
            Kind::True => Value::Bool(true),
            Kind::False => Value::Bool(false),
            Kind::Number => self
                .str(id)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null),
            Kind::String => Value::String(self.str(id).unwrap_or_default().to_owned()),
            Kind::Array => Value::Array(self.items(id).iter().map(|i| self.to_json(*i)).collect()),
            Kind::Object => Value::Object(
                self.members(id)
                    .map(|(k, v)| (k.to_owned(), self.to_json(v)))
                    .collect(),
            ),
        }
    }
}

struct Parser<'t> {
    src: &'t [u8],
    pos: usize,
    tape_nodes: &'t mut Vec<Node>,
    items: &'t mut Vec<u32>,
    members: &'t mut Vec<(Span, u32)>,
    scratch_items: &'t mut Vec<u32>,
    scratch_members: &'t mut Vec<(Span, u32)>,
    unescaped: &'t mut String,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.src.get(self.pos) {
            self.pos += 1;
        }
    }

    fn push(&mut self, kind: Kind, a: u32, b: u32) -> u32 {
        let id = self.tape_nodes.len() as u32;
        self.tape_nodes.push(Node { kind, a, b });
        id
    }

    fn value(&mut self, depth: usize) -> Result<u32, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::at(self.pos, "nested deeper than 256 levels"));
        }
        match self.src.get(self.pos) {
            None => Err(JsonError::at(self.pos, "unexpected end of the text")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let s = self.string()?;
                Ok(self.push(Kind::String, s.start, s.end))
            }
            Some(b't') => self.word(b"true", Kind::True),
            Some(b'f') => self.word(b"false", Kind::False),
            Some(b'n') => self.word(b"null", Kind::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(JsonError::at(self.pos, "expected a JSON value")),
        }
    }

    fn word(&mut self, w: &[u8], kind: Kind) -> Result<u32, JsonError> {
        if self.src[self.pos..].starts_with(w) {
            self.pos += w.len();
            Ok(self.push(kind, 0, 0))
        } else {
            Err(JsonError::at(self.pos, "expected a JSON value"))
        }
    }

    fn number(&mut self) -> Result<u32, JsonError> {
        let start = self.pos;
        let s = self.src;
        let mut i = self.pos;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        match s.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = s.get(i) {
                    i += 1;
                }
            }
            _ => return Err(JsonError::at(i, "malformed number")),
        }
        if s.get(i) == Some(&b'.') {
            i += 1;
            let d = i;
            while let Some(b'0'..=b'9') = s.get(i) {
                i += 1;
            }
            if i == d {
                return Err(JsonError::at(
                    i,
                    "malformed number: no digits after the point",
                ));
            }
        }
        if let Some(b'e' | b'E') = s.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = s.get(i) {
                i += 1;
            }
            let d = i;
            while let Some(b'0'..=b'9') = s.get(i) {
                i += 1;
            }
            if i == d {
                return Err(JsonError::at(
                    i,
                    "malformed number: no digits in the exponent",
                ));
            }
        }
        self.pos = i;
        Ok(self.push(Kind::Number, start as u32, i as u32))
    }

    /// Parses a string at `pos` (which holds the opening quote).
    fn string(&mut self) -> Result<Span, JsonError> {
        self.pos += 1;
        let start = self.pos;
        let s = self.src;
        // Fast path: no escape before the closing quote.
        let Some(off) = memchr::memchr2(b'"', b'\\', &s[start..]) else {
            return Err(JsonError::at(start, "unterminated string"));
        };
        let end = start + off;
        if s[end] == b'"' {
            if s[start..end].iter().any(|b| *b < 0x20) {
                return Err(JsonError::at(start, "control character inside a string"));
            }
            self.pos = end + 1;
            return Ok(Span {
                start: start as u32,
                end: end as u32,
            });
        }
        // Slow path: unescape into the side buffer.
        let out_start = self.unescaped.len();
        let mut i = start;
        loop {
            let Some(off) = memchr::memchr2(b'"', b'\\', &s[i..]) else {
                return Err(JsonError::at(start, "unterminated string"));
            };
            let chunk = &s[i..i + off];
            if chunk.iter().any(|b| *b < 0x20) {
                return Err(JsonError::at(i, "control character inside a string"));
            }
            // `chunk` lies between ASCII delimiters of valid UTF-8.
            self.unescaped
                .push_str(std::str::from_utf8(chunk).unwrap_or_default());
            i += off;
            if s[i] == b'"' {
                self.pos = i + 1;
                return Ok(Span {
                    start: out_start as u32 | ESCAPED,
                    end: self.unescaped.len() as u32,
                });
            }
            let esc = s.get(i + 1).copied();
            i += 2;
            let c = match esc {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => {
                    let hi = self.hex4(i)?;
                    i += 4;
                    let code = if (0xD800..0xDC00).contains(&hi) {
                        if s.get(i) != Some(&b'\\') || s.get(i + 1) != Some(&b'u') {
                            return Err(JsonError::at(i, "unpaired surrogate in a \\u escape"));
                        }
                        let lo = self.hex4(i + 2)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return Err(JsonError::at(i, "unpaired surrogate in a \\u escape"));
                        }
                        i += 6;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    } else {
                        hi
                    };
                    char::from_u32(code).ok_or_else(|| JsonError::at(i, "invalid \\u escape"))?
                }
                _ => return Err(JsonError::at(i - 1, "invalid escape in a string")),
            };
            self.unescaped.push(c);
        }
    }

    fn hex4(&self, i: usize) -> Result<u32, JsonError> {
        let h = self
            .src
            .get(i..i + 4)
            .ok_or_else(|| JsonError::at(i, "truncated \\u escape"))?;
        let mut v = 0u32;
        for b in h {
            let d = (*b as char)
                .to_digit(16)
                .ok_or_else(|| JsonError::at(i, "invalid \\u escape"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn array(&mut self, depth: usize) -> Result<u32, JsonError> {
        self.pos += 1;
        let mark = self.scratch_items.len();
        self.skip_ws();
        if self.src.get(self.pos) == Some(&b']') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let v = self.value(depth + 1)?;
                self.scratch_items.push(v);
                self.skip_ws();
                match self.src.get(self.pos) {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(JsonError::at(self.pos, "expected ',' or ']' in an array")),
                }
            }
        }
        let start = self.items.len() as u32;
        self.items.extend_from_slice(&self.scratch_items[mark..]);
        let len = (self.scratch_items.len() - mark) as u32;
        self.scratch_items.truncate(mark);
        Ok(self.push(Kind::Array, start, len))
    }

    fn object(&mut self, depth: usize) -> Result<u32, JsonError> {
        self.pos += 1;
        let mark = self.scratch_members.len();
        self.skip_ws();
        if self.src.get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.src.get(self.pos) != Some(&b'"') {
                    return Err(JsonError::at(self.pos, "expected a member name in quotes"));
                }
                let key = self.string()?;
                self.skip_ws();
                if self.src.get(self.pos) != Some(&b':') {
                    return Err(JsonError::at(self.pos, "expected ':' after a member name"));
                }
                self.pos += 1;
                self.skip_ws();
                let v = self.value(depth + 1)?;
                self.scratch_members.push((key, v));
                self.skip_ws();
                match self.src.get(self.pos) {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(JsonError::at(self.pos, "expected ',' or '}' in an object")),
                }
            }
        }
        let start = self.members.len() as u32;
        self.members
            .extend_from_slice(&self.scratch_members[mark..]);
        let len = (self.scratch_members.len() - mark) as u32;
        self.scratch_members.truncate(mark);
        Ok(self.push(Kind::Object, start, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Tape, JsonError> {
        let mut t = Tape::new();
        t.parse_bytes(s.as_bytes())?;
        Ok(t)
    }

    #[test]
    fn agrees_with_serde_json_on_valid_documents() {
        let docs = [
            r#"{"a":[1,2.50,-3e2,{"b":null}],"c":"x\"y\\z\u00e9\ud83d\ude00","d":true,"e":false}"#,
            r#"  [ ]  "#,
            r#"{}"#,
            r#""\/\b\f\n\r\t""#,
            r#"[0, -0.0, 1E+3, "é", {"k": [[], {}]}]"#,
        ];
        for d in docs {
            let t = parse(d).expect(d);
            let expect: serde_json::Value = serde_json::from_str(d).expect(d);
            assert_eq!(t.to_json(t.root()), expect, "{d}");
        }
    }

    #[test]
    fn numbers_keep_their_text() {
        let t = parse(r#"{"v": 1.0}"#).expect("parse");
        let v = t.get(t.root(), "v").expect("v");
        assert_eq!(t.str(v), Some("1.0"));
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let bad = [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "1e",
            "\"abc",
            "tru",
            "{\"a\":1} x",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "[1 2]",
            "{1:2}",
            "nul",
        ];
        for d in bad {
            assert!(parse(d).is_err(), "accepted {d:?}");
            assert!(
                serde_json::from_str::<serde_json::Value>(d).is_err(),
                "serde accepts {d:?}"
            );
        }
        assert!(parse(&"[".repeat(300)).is_err());
        let mut t = Tape::new();
        t.input_mut().extend_from_slice(b"\"\xff\"");
        assert!(t.parse().is_err());
    }

    #[test]
    fn reuses_its_buffers() {
        let mut t = Tape::new();
        for i in 0..3 {
            t.parse_bytes(format!(r#"{{"id":"r{i}","x":[{i}]}}"#).as_bytes())
                .expect("parse");
            assert_eq!(t.get_str(t.root(), "id"), Some(format!("r{i}").as_str()));
            assert_eq!(t.items(t.get(t.root(), "x").expect("x")).len(), 1);
        }
    }
}
