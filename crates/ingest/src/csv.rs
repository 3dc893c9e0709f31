//! A line-oriented CSV reader built for quarantine: a malformed line (wrong field count,
//! invalid UTF-8, unterminated quote) is reported with its line number and never
//! swallows the lines after it. Quoted fields may contain the delimiter and doubled
//! quotes; they may span lines only when the spec sets `multiline = true`.

use std::io::BufRead;

/// Why a line is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// Not valid UTF-8.
    InvalidUtf8,
    /// A quote opened and never closed on the line.
    UnterminatedQuote,
    /// Text after a closing quote (`"ab"c`).
    StrayQuote,
}

impl LineError {
    /// A short reason for the quarantine.
    pub fn reason(self) -> &'static str {
        match self {
            LineError::InvalidUtf8 => "line is not valid UTF-8",
            LineError::UnterminatedQuote => "unterminated quote",
            LineError::StrayQuote => "characters after a closing quote",
        }
    }
}

/// One record: its fields as ranges into [`Record::data`].
#[derive(Debug, Default)]
pub struct Record {
    /// The raw bytes of the record's line(s), without the line ending.
    pub raw: Vec<u8>,
    /// The unescaped field bytes (equal to `raw` when the line has no quotes).
    unescaped: Vec<u8>,
    quoted: bool,
    /// Field ranges into `data()`.
    pub fields: Vec<(usize, usize)>,
    /// First line number of the record (1-based; the header is line 1).
    pub line: u64,
}

impl Record {
    /// The bytes the field ranges point into.
    pub fn data(&self) -> &[u8] {
        if self.quoted {
            &self.unescaped
        } else {
            &self.raw
        }
    }

    /// Field `i` as text (the whole record was checked to be UTF-8).
    pub fn field(&self, i: usize) -> &str {
        let (s, e) = self.fields[i];
        std::str::from_utf8(&self.data()[s..e]).unwrap_or_default()
    }
}

/// Reads CSV records line by line.
#[derive(Debug)]
pub struct CsvReader<R> {
    r: R,
    delimiter: u8,
    quote: u8,
    multiline: bool,
    line: u64,
    bytes: u64,
}

impl<R: BufRead> CsvReader<R> {
    /// A reader over `r`.
    pub fn new(r: R, delimiter: u8, quote: u8, multiline: bool) -> Self {
        Self {
            r,
            delimiter,
            quote,
            multiline,
            line: 0,
            bytes: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Reads the next physical line into `buf` (without its line ending). `false` at EOF.
    fn read_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        let start = buf.len();
        let n = self.r.read_until(b'\n', buf)?;
        if n == 0 {
            return Ok(false);
        }
        self.bytes += n as u64;
        self.line += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.len() > start && buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(true)
    }

    /// Reads the next record into `rec`. Returns `Ok(None)` at end of input,
    /// `Ok(Some(Err(e)))` for a malformed line (its raw bytes and line number are in
    /// `rec`), `Ok(Some(Ok(())))` for a record. Blank lines are skipped.
    pub fn next(&mut self, rec: &mut Record) -> std::io::Result<Option<Result<(), LineError>>> {
        loop {
            rec.raw.clear();
            rec.fields.clear();
            if !self.read_line(&mut rec.raw)? {
                return Ok(None);
            }
            rec.line = self.line;
            if rec.raw.is_empty() {
                continue;
            }
            if rec.line == 1 && rec.raw.starts_with(b"\xEF\xBB\xBF") {
                rec.raw.drain(..3);
            }
            break;
        }
        // one pass for delimiters and quotes: a line without quotes (the common case)
        // is split where it stands
        let mut start = 0;
        let mut has_quote = false;
        for i in memchr::memchr2_iter(self.delimiter, self.quote, &rec.raw) {
            if rec.raw[i] == self.quote {
                has_quote = true;
                break;
            }
            rec.fields.push((start, i));
            start = i + 1;
        }
        if !has_quote {
            rec.quoted = false;
            if std::str::from_utf8(&rec.raw).is_err() {
                rec.fields.clear();
                return Ok(Some(Err(LineError::InvalidUtf8)));
            }
            rec.fields.push((start, rec.raw.len()));
            return Ok(Some(Ok(())));
        }
        rec.fields.clear();
        rec.quoted = true;
        loop {
            match self.parse_quoted(rec) {
                Err(LineError::UnterminatedQuote) if self.multiline => {
                    rec.raw.push(b'\n');
                    if !self.read_line(&mut rec.raw)? {
                        return Ok(Some(Err(LineError::UnterminatedQuote)));
                    }
                }
                Err(e) => return Ok(Some(Err(e))),
                Ok(()) => break,
            }
        }
        if std::str::from_utf8(&rec.raw).is_err() {
            return Ok(Some(Err(LineError::InvalidUtf8)));
        }
        Ok(Some(Ok(())))
    }

    fn parse_quoted(&self, rec: &mut Record) -> Result<(), LineError> {
        rec.unescaped.clear();
        rec.fields.clear();
        let raw = &rec.raw;
        let (d, q) = (self.delimiter, self.quote);
        let mut i = 0;
        let n = raw.len();
        loop {
            let start = rec.unescaped.len();
            if i < n && raw[i] == q {
                // quoted field
                i += 1;
                loop {
                    match memchr::memchr(q, &raw[i..]) {
                        None => return Err(LineError::UnterminatedQuote),
                        Some(k) => {
                            rec.unescaped.extend_from_slice(&raw[i..i + k]);
                            i += k + 1;
                            if i < n && raw[i] == q {
                                rec.unescaped.push(q);
                                i += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
                rec.fields.push((start, rec.unescaped.len()));
                if i == n {
                    return Ok(());
                }
                if raw[i] != d {
                    return Err(LineError::StrayQuote);
                }
                i += 1;
            } else {
                let end = memchr::memchr(d, &raw[i..]).map_or(n, |k| i + k);
                let field = &raw[i..end];
                if memchr::memchr(q, field).is_some() {
                    // a quote inside an unquoted field: `ab"c` is malformed
                    return Err(LineError::StrayQuote);
                }
                rec.unescaped.extend_from_slice(field);
                rec.fields.push((start, rec.unescaped.len()));
                if end == n {
                    return Ok(());
                }
                i = end + 1;
            }
            if i == n {
                // trailing delimiter: one more empty field
                let s = rec.unescaped.len();
                rec.fields.push((s, s));
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8], multiline: bool) -> Vec<(u64, Result<Vec<String>, LineError>)> {
        let mut r = CsvReader::new(text, b',', b'"', multiline);
        let mut rec = Record::default();
        let mut out = Vec::new();
        while let Some(res) = r.next(&mut rec).unwrap() {
            out.push((
                rec.line,
                res.map(|()| {
                    (0..rec.fields.len())
                        .map(|i| rec.field(i).to_owned())
                        .collect()
                }),
            ));
        }
        out
    }

    #[test]
    fn plain_quoted_and_escaped_fields() {
        let out = all(
            b"a,b,c\r\n1,,3\n\"x,y\",\"he said \"\"hi\"\"\",z\n\n\"\",\"q\"\nlast,",
            false,
        );
        assert_eq!(out[0], (1, Ok(vec!["a".into(), "b".into(), "c".into()])));
        assert_eq!(out[1], (2, Ok(vec!["1".into(), "".into(), "3".into()])));
        assert_eq!(
            out[2],
            (
                3,
                Ok(vec!["x,y".into(), "he said \"hi\"".into(), "z".into()])
            )
        );
        assert_eq!(out[3], (5, Ok(vec!["".into(), "q".into()])));
        assert_eq!(out[4], (6, Ok(vec!["last".into(), "".into()])));
    }

    #[test]
    fn malformed_lines_do_not_swallow_the_next() {
        let out = all(
            b"h1,h2\n\"open,2\nok,1\nbad\xff,3\nx\"y,1\n\"a\"b,1\nfine,2\n",
            false,
        );
        let errs: Vec<_> = out
            .iter()
            .map(|(l, r)| (*l, r.as_ref().err().copied()))
            .collect();
        assert_eq!(
            errs,
            vec![
                (1, None),
                (2, Some(LineError::UnterminatedQuote)),
                (3, None),
                (4, Some(LineError::InvalidUtf8)),
                (5, Some(LineError::StrayQuote)),
                (6, Some(LineError::StrayQuote)),
                (7, None)
            ]
        );
    }

    #[test]
    fn multiline_records_when_allowed() {
        let out = all(b"a,b\n\"line1\nline2\",x\ny,z\n", true);
        assert_eq!(out[1], (2, Ok(vec!["line1\nline2".into(), "x".into()])));
        assert_eq!(out[2], (4, Ok(vec!["y".into(), "z".into()])));
    }

    #[test]
    fn a_quote_after_plain_fields_switches_to_the_quoted_parser() {
        let out = all(b"p,q,\"r,s\",t\nu,v,w,\"x\"\"y\"\n", false);
        let want = |v: &[&str]| Ok(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(out[0], (1, want(&["p", "q", "r,s", "t"])));
        assert_eq!(out[1], (2, want(&["u", "v", "w", "x\"y"])));
    }

    #[test]
    fn bom_is_stripped_from_the_header() {
        let out = all(b"\xEF\xBB\xBFId,X\n1,2\n", false);
        assert_eq!(out[0].1, Ok(vec!["Id".into(), "X".into()]));
    }
}
