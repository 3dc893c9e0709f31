//! Resources out of a byte stream, one at a time, into a reused [`Tape`]: Bulk Data NDJSON
//! (one resource a line) and Bundle JSON (the resources of `entry[].resource`), streamed:
//! memory holds one line or one bundle entry, whatever the file's size. The caller opens
//! the stream (a file, an object-store object, a gzip decoder); this module does no I/O of
//! its own.

use std::io::BufRead;

use crate::error::{JsonError, SourceError};
use crate::json::{Kind, NodeId, Tape};

/// The longest line or bundle entry read; a longer one is an error (its bytes are skipped
/// and the reading goes on), so one malformed record cannot exhaust memory.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// Where a resource came from, for quarantine and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of an NDJSON file.
    Line(u64),
    /// 0-based index in a bundle's `entry` array.
    Entry(u64),
}

impl Location {
    /// The line (1-based) or entry index (0-based) as a number.
    pub fn number(&self) -> u64 {
        match self {
            Location::Line(n) | Location::Entry(n) => *n,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(l) => write!(f, "line {l}"),
            Location::Entry(e) => write!(f, "entry {e}"),
        }
    }
}

/// What one read gave.
#[derive(Debug)]
pub enum Record {
    /// A resource, at this node of the tape.
    Resource(Location, NodeId),
    /// A record that is not a resource: malformed JSON, no `resourceType`, a bundle entry
    /// without `resource`. The reading goes on.
    Bad(Location, String),
}

/// NDJSON: one resource a line; blank lines are skipped.
#[derive(Debug)]
pub struct NdjsonReader<R> {
    inner: R,
    line: u64,
}

impl<R: BufRead> NdjsonReader<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, line: 0 }
    }

    /// The next record, or `None` at the end of the stream.
    pub fn next_into(&mut self, tape: &mut Tape) -> Result<Option<Record>, SourceError> {
        loop {
            let buf = tape.input_mut();
            buf.clear();
            let too_long = read_line_capped(&mut self.inner, buf)?;
            if buf.is_empty() && !too_long {
                return Ok(None);
            }
            self.line += 1;
            let loc = Location::Line(self.line);
            if too_long {
                return Ok(Some(Record::Bad(
                    loc,
                    format!("the line is longer than {MAX_RECORD_BYTES} bytes"),
                )));
            }
            while let Some(b'\n' | b'\r') = buf.last() {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(resource_record(tape, loc)));
        }
    }
}

fn resource_record(tape: &mut Tape, loc: Location) -> Record {
    match tape.parse() {
        Err(e) => Record::Bad(loc, e.to_string()),
        Ok(()) => check_resource(tape, tape.root(), loc),
    }
}

fn check_resource(tape: &Tape, node: NodeId, loc: Location) -> Record {
    if tape.kind(node) != Kind::Object {
        return Record::Bad(loc, "not a JSON object".into());
    }
    match tape.get_str(node, "resourceType") {
        Some(t) if !t.is_empty() => Record::Resource(loc, node),
        _ => Record::Bad(loc, "the resource has no resourceType".into()),
    }
}

/// Reads up to and including `\n` into `buf`, keeping at most [`MAX_RECORD_BYTES`];
/// returns whether the line was longer (its rest is consumed and dropped).
fn read_line_capped<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut too_long = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(too_long);
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > MAX_RECORD_BYTES {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(take);
        if done {
            return Ok(too_long);
        }
    }
}

/// A Bundle (transaction, collection, searchset, batch, …): the resources of
/// `entry[].resource`, one entry in memory at a time. A file that holds one resource
/// other than a Bundle gives that resource.
#[derive(Debug)]
pub struct BundleReader<R> {
    s: Scanner<R>,
    state: BundleState,
    entry: u64,
    /// Top-level members other than `entry`, kept to read `resourceType` (and the whole
    /// resource when the file is not a Bundle).
    header: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
enum BundleState {
    Start,
    Members,
    Entries,
    /// The top-level object has ended: check it on the next call.
    Finish,
    Done,
}

impl<R: BufRead> BundleReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            s: Scanner { r: inner, pos: 0 },
            state: BundleState::Start,
            entry: 0,
            header: Vec::new(),
        }
    }

    /// The next record, or `None` at the end of the bundle.
    pub fn next_into(&mut self, tape: &mut Tape) -> Result<Option<Record>, SourceError> {
        loop {
            match self.state {
                BundleState::Done => return Ok(None),
                BundleState::Finish => return self.finish(tape),
                BundleState::Start => {
                    self.s.ws()?;
                    if self.s.next()? != Some(b'{') {
                        return Err(SourceError::NotBundle(
                            "the file does not start with a JSON object",
                        ));
                    }
                    self.header.clear();
                    self.header.push(b'{');
                    self.s.ws()?;
                    if self.s.peek()? == Some(b'}') {
                        self.s.next()?;
                        self.state = BundleState::Finish;
                        continue;
                    }
                    self.state = BundleState::Members;
                }
                BundleState::Members => {
                    self.s.ws()?;
                    let mut key = Vec::new();
                    if self.s.peek()? != Some(b'"') {
                        return Err(self.s.err("expected a member name"));
                    }
                    self.s.copy_value(&mut key, 1 << 10)?;
                    self.s.ws()?;
                    if self.s.next()? != Some(b':') {
                        return Err(self.s.err("expected ':' after a member name"));
                    }
                    self.s.ws()?;
                    if key == b"\"entry\"" {
                        if self.s.next()? != Some(b'[') {
                            return Err(SourceError::NotBundle("`entry` is not an array"));
                        }
                        self.s.ws()?;
                        if self.s.peek()? == Some(b']') {
                            self.s.next()?;
                            self.after_member()?;
                        } else {
                            self.state = BundleState::Entries;
                        }
                        continue;
                    }
                    if self.header.len() > 1 {
                        self.header.push(b',');
                    }
                    self.header.extend_from_slice(&key);
                    self.header.push(b':');
                    let mut value = std::mem::take(&mut self.header);
                    let r = self.s.copy_value(&mut value, MAX_RECORD_BYTES);
                    self.header = value;
                    r?;
                    self.after_member()?;
                }
                BundleState::Entries => {
                    self.s.ws()?;
                    let loc = Location::Entry(self.entry);
                    self.entry += 1;
                    let buf = tape.input_mut();
                    buf.clear();
                    let copied = self.s.copy_value(buf, MAX_RECORD_BYTES);
                    self.s.ws()?;
                    match self.s.next()? {
                        Some(b',') => {}
                        Some(b']') => self.after_member()?,
                        _ => return Err(self.s.err("expected ',' or ']' after a bundle entry")),
                    }
                    if let Err(e) = copied {
                        match e {
                            SourceError::Json(j) => {
                                return Ok(Some(Record::Bad(loc, j.to_string())));
                            }
                            other => return Err(other),
                        }
                    }
                    if let Err(e) = tape.parse() {
                        return Ok(Some(Record::Bad(loc, e.to_string())));
                    }
                    let root = tape.root();
                    let record = match tape.get(root, "resource") {
                        Some(r) => check_resource(tape, r, loc),
                        None => Record::Bad(loc, "the bundle entry has no resource".into()),
                    };
                    return Ok(Some(record));
                }
            }
        }
    }

    /// After a top-level member: `,` (more) or `}` (end of the file's object).
    fn after_member(&mut self) -> Result<(), SourceError> {
        self.s.ws()?;
        match self.s.peek()? {
            Some(b',') => {
                self.s.next()?;
                self.state = BundleState::Members;
            }
            Some(b'}') => {
                self.s.next()?;
                self.state = BundleState::Finish;
            }
            _ => {
                return Err(self
                    .s
                    .err("expected ',' or '}' between the bundle's members"));
            }
        }
        Ok(())
    }

    /// The end of the top-level object: a Bundle gives nothing more; another resource is
    /// given whole.
    fn finish(&mut self, tape: &mut Tape) -> Result<Option<Record>, SourceError> {
        self.state = BundleState::Done;
        self.s.ws()?;
        if self.s.peek()?.is_some() {
            return Err(self.s.err("unexpected text after the bundle"));
        }
        self.header.push(b'}');
        let buf = tape.input_mut();
        buf.clear();
        buf.extend_from_slice(&self.header);
        tape.parse()?;
        match tape.get_str(tape.root(), "resourceType") {
            Some("Bundle") => Ok(None),
            Some(_) if self.entry == 0 => {
                Ok(Some(check_resource(tape, tape.root(), Location::Entry(0))))
            }
            Some(_) => Err(SourceError::NotBundle(
                "`entry` was read from a resource that is not a Bundle",
            )),
            None => Err(SourceError::NotBundle(
                "the top-level object has no resourceType",
            )),
        }
    }
}

/// A byte scanner over a `BufRead` that can copy or skip one JSON value.
#[derive(Debug)]
struct Scanner<R> {
    r: R,
    pos: u64,
}

impl<R: BufRead> Scanner<R> {
    fn err(&self, reason: &'static str) -> SourceError {
        SourceError::Json(JsonError {
            offset: self.pos as usize,
            reason,
        })
    }

    fn peek(&mut self) -> Result<Option<u8>, SourceError> {
        loop {
            match self.r.fill_buf() {
                Ok(b) => return Ok(b.first().copied()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn next(&mut self) -> Result<Option<u8>, SourceError> {
        let b = self.peek()?;
        if b.is_some() {
            self.r.consume(1);
            self.pos += 1;
        }
        Ok(b)
    }

    fn ws(&mut self) -> Result<(), SourceError> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek()? {
            self.next()?;
        }
        Ok(())
    }

    /// Copies one JSON value (structure checked for balance; the tape parser checks the
    /// rest) into `out`, keeping at most `cap` bytes; a longer value is consumed and
    /// reported as an error.
    fn copy_value(&mut self, out: &mut Vec<u8>, cap: usize) -> Result<(), SourceError> {
        let start_len = out.len();
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escape = false;
        let mut over = false;
        let mut started = false;
        loop {
            let chunk = loop {
                match self.r.fill_buf() {
                    Ok(b) => break b,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            if chunk.is_empty() {
                return Err(SourceError::Json(JsonError {
                    offset: self.pos as usize,
                    reason: "the file ends inside a value",
                }));
            }
            let mut end = None;
            for (i, &b) in chunk.iter().enumerate() {
                if in_str {
                    if escape {
                        escape = false;
                    } else if b == b'\\' {
                        escape = true;
                    } else if b == b'"' {
                        in_str = false;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => {
                        in_str = true;
                        started = true;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        started = true;
                    }
                    b'}' | b']' => {
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    b',' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    b' ' | b'\n' | b'\r' | b'\t' if depth == 0 && started => {
                        end = Some(i);
                        break;
                    }
                    _ => started = true,
                }
            }
            let take = end.unwrap_or(chunk.len());
            if !over {
                if out.len() - start_len + take > cap {
                    over = true;
                } else {
                    out.extend_from_slice(&chunk[..take]);
                }
            }
            self.r.consume(take);
            self.pos += take as u64;
            if end.is_some() {
                if over {
                    out.truncate(start_len);
                    return Err(SourceError::Json(JsonError {
                        offset: self.pos as usize,
                        reason: "a bundle entry or member is larger than 256 MiB",
                    }));
                }
                if out.len() == start_len {
                    return Err(self.err("expected a JSON value"));
                }
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_of_bundle(text: &str) -> Result<Vec<Result<String, String>>, SourceError> {
        let mut r = BundleReader::new(std::io::BufReader::with_capacity(7, text.as_bytes()));
        let mut tape = Tape::new();
        let mut out = Vec::new();
        while let Some(rec) = r.next_into(&mut tape)? {
            out.push(match rec {
                Record::Resource(_, n) => Ok(tape.get_str(n, "id").unwrap_or("-").to_owned()),
                Record::Bad(loc, why) => Err(format!("{loc}: {why}")),
            });
        }
        Ok(out)
    }

    #[test]
    fn bundle_entries_are_streamed_in_order() {
        let b = r#"{"resourceType":"Bundle","type":"transaction","entry":[
            {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","id":"p1","name":[{"family":"a,b}]"}]},"request":{"method":"POST"}},
            {"resource":{"resourceType":"Observation","id":"o1","valueQuantity":{"value":1.5}}},
            {"request":{"method":"DELETE"}},
            {"resource":{"id":"x"}}
        ],"total":4}"#;
        let got = ids_of_bundle(b).expect("read");
        assert_eq!(got[0], Ok("p1".into()));
        assert_eq!(got[1], Ok("o1".into()));
        assert!(
            got[2]
                .as_ref()
                .is_err_and(|e| e.starts_with("entry 2") && e.contains("no resource")),
            "{got:?}"
        );
        assert!(
            got[3].as_ref().is_err_and(|e| e.contains("resourceType")),
            "{got:?}"
        );
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_malformed_entry_is_one_bad_record_and_reading_goes_on() {
        let b = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"p1",}},{"resource":{"resourceType":"Patient","id":"p2"}}]}"#;
        let got = ids_of_bundle(b).expect("read");
        assert!(got[0].is_err(), "{got:?}");
        assert_eq!(got[1], Ok("p2".into()));
    }

    #[test]
    fn resource_type_after_the_entries_and_single_resources() {
        let b = r#"{"entry":[{"resource":{"resourceType":"Patient","id":"p1"}}],"resourceType":"Bundle"}"#;
        assert_eq!(ids_of_bundle(b).expect("read"), vec![Ok("p1".to_owned())]);
        let single = r#"{"resourceType":"Patient","id":"solo","name":[{"family":"x"}]}"#;
        assert_eq!(
            ids_of_bundle(single).expect("read"),
            vec![Ok("solo".to_owned())]
        );
        let empty = r#"{"resourceType":"Bundle","type":"searchset","entry":[]}"#;
        assert!(ids_of_bundle(empty).expect("read").is_empty());
        assert!(
            ids_of_bundle(
                r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient""#
            )
            .is_err()
        );
        assert!(ids_of_bundle("[1,2]").is_err());
    }

    #[test]
    fn ndjson_lines_blank_lines_and_bad_lines() {
        let text = "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\r\n\n   \n{not json}\n{\"id\":\"x\"}\n{\"resourceType\":\"Patient\",\"id\":\"p2\"}";
        let mut r = NdjsonReader::new(std::io::BufReader::with_capacity(5, text.as_bytes()));
        let mut tape = Tape::new();
        let mut got = Vec::new();
        while let Some(rec) = r.next_into(&mut tape).expect("read") {
            got.push(match rec {
                Record::Resource(loc, n) => {
                    format!("{loc} {}", tape.get_str(n, "id").unwrap_or("-"))
                }
                Record::Bad(loc, _) => format!("{loc} bad"),
            });
        }
        assert_eq!(got, ["line 1 p1", "line 4 bad", "line 5 bad", "line 6 p2"]);
    }
}
