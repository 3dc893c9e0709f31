//! A line-oriented CSV reader built for quarantine: a malformed line (wrong field count,
//! invalid UTF-8, unterminated quote) is reported with its line number and never
//! swallows the lines after it. Quoted fields may contain the delimiter and doubled
//! quotes; they may span lines only when the spec sets `multiline = true`.
//!
//! The input is read in large blocks ([`BLOCK`] bytes) that records point into: a
//! record's raw bytes are never copied out of its block, so a batch can keep its rows'
//! raw lines for the quarantine by holding the blocks they lie in ([`Record::block`]).
//! Blocks nobody holds any more are reused, so a long ingest stops allocating.

use std::io::Read;

use arrow_buffer::Buffer;

/// Bytes read from the input at a time (a record longer than this gets a larger block).
pub const BLOCK: usize = 4 << 20;

/// Retired blocks kept for reuse (a batch in flight holds a few; they come back once
/// its rows are written).
const POOL: usize = 32;

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

/// One record: its raw line(s) in a block of the input, and its fields as ranges into
/// [`Record::data`].
#[derive(Debug, Default)]
pub struct Record {
    block: Buffer,
    block_id: u64,
    start: usize,
    end: usize,
    /// The unescaped field bytes (used instead of the raw line when it has quotes).
    unescaped: Vec<u8>,
    quoted: bool,
    /// Field ranges into `data()`.
    pub fields: Vec<(usize, usize)>,
    /// First line number of the record (1-based; the header is line 1).
    pub line: u64,
}

impl Record {
    /// The raw bytes of the record's line(s), without the final line ending.
    pub fn raw(&self) -> &[u8] {
        &self.block[self.start..self.end]
    }

    /// The block holding the record, its id (the same id is the same block) and the
    /// record's byte range in it.
    pub fn block(&self) -> (&Buffer, u64, usize, usize) {
        (&self.block, self.block_id, self.start, self.end)
    }

    /// The bytes the field ranges point into.
    pub fn data(&self) -> &[u8] {
        if self.quoted {
            &self.unescaped
        } else {
            self.raw()
        }
    }

    /// [`Record::data`] and whatever follows it in its block: a field range is valid in
    /// it too, and a copy of a fixed width that is then cut back may run past the field.
    pub fn data_and_beyond(&self) -> &[u8] {
        if self.quoted {
            &self.unescaped
        } else {
            &self.block[self.start..]
        }
    }

    /// Field `i` as text (the whole record was checked to be UTF-8).
    pub fn field(&self, i: usize) -> &str {
        let (s, e) = self.fields[i];
        std::str::from_utf8(&self.data()[s..e]).unwrap_or_default()
    }
}

/// Reads CSV records line by line, out of large blocks of the input.
#[derive(Debug)]
pub struct CsvReader<R> {
    r: R,
    delimiter: u8,
    quote: u8,
    multiline: bool,
    line: u64,
    bytes: u64,
    /// The current block (`block[..]` is all data read into it).
    block: Buffer,
    block_id: u64,
    /// Next unread byte of `block`.
    pos: usize,
    /// Start of the record being read: a refill keeps everything from here.
    mark: usize,
    eof: bool,
    /// Retired blocks, reused once nothing else holds them.
    pool: Vec<Buffer>,
    /// Bytes read at a time.
    block_size: usize,
    /// Blocks allocated (not reused) so far.
    allocated: u64,
    /// Where the structural scan stands in the current block (see [`Scan`]); `None`
    /// once the block changes.
    scan: Option<Scan>,
}

/// The structural scan: delimiters, quotes and line feeds are found 64 bytes at a time
/// as a bit mask, then taken one set bit at a time, so splitting a line costs a few
/// instructions per field, not a search call per field.
#[derive(Debug, Clone, Copy)]
struct Scan {
    /// First byte of the 64 the mask covers.
    base: usize,
    /// Structural bytes of `base..base + 64` not yet taken.
    mask: u64,
    /// The last byte at or above 0x80 seen by the scan: a line wholly before it (or a
    /// line when there is none) is ASCII, so valid UTF-8 without a check.
    non_ascii: Option<usize>,
}

/// Bit `i` set where `chunk[i]` is `a`, `b` or a line feed, and where it is not ASCII.
#[cfg(target_arch = "x86_64")]
#[inline]
fn masks64(chunk: &[u8; 64], a: u8, b: u8) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let (mut hits, mut high) = (0u64, 0u64);
    // SAFETY: SSE2 is part of the x86_64 baseline, so these instructions exist on every
    // x86_64 CPU; each load reads 16 bytes at `chunk + 16k`, k < 4, inside the 64-byte
    // array (`loadu` has no alignment requirement).
    #[allow(unsafe_code)]
    unsafe {
        let va = _mm_set1_epi8(a as i8);
        let vb = _mm_set1_epi8(b as i8);
        let vn = _mm_set1_epi8(b'\n' as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(chunk.as_ptr().add(16 * k).cast::<__m128i>());
            let hit = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)),
                _mm_cmpeq_epi8(v, vn),
            );
            hits |= u64::from(_mm_movemask_epi8(hit) as u16) << (16 * k);
            high |= u64::from(_mm_movemask_epi8(v) as u16) << (16 * k);
        }
    }
    (hits, high)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn masks64(chunk: &[u8; 64], a: u8, b: u8) -> (u64, u64) {
    masks_short(chunk, a, b)
}

/// [`masks64`] for fewer than 64 bytes (the end of a block).
fn masks_short(bytes: &[u8], a: u8, b: u8) -> (u64, u64) {
    let (mut hits, mut high) = (0u64, 0u64);
    for (i, &c) in bytes.iter().enumerate().take(64) {
        hits |= u64::from(c == a || c == b || c == b'\n') << i;
        high |= u64::from(c >= 0x80) << i;
    }
    (hits, high)
}

/// The masks of the (up to) 64 bytes of `data` from `at`.
#[inline]
fn masks_at(data: &[u8], at: usize, delimiter: u8, quote: u8) -> (u64, u64) {
    let bytes = &data[at..];
    match bytes.first_chunk::<64>() {
        Some(chunk) => masks64(chunk, delimiter, quote),
        None => masks_short(bytes, delimiter, quote),
    }
}

/// The position of the last byte outside ASCII in the 64 from `at`, if any.
#[inline]
fn last_high(at: usize, high: u64) -> Option<usize> {
    (high != 0).then(|| at + 63 - high.leading_zeros() as usize)
}

/// A line found by the scan.
struct Line {
    start: usize,
    /// End without the line ending.
    end: usize,
    /// It has a quote: its fields were not split.
    quoted: bool,
    /// It may have bytes outside ASCII.
    non_ascii: bool,
}

impl<R: Read> CsvReader<R> {
    /// A reader over `r`.
    pub fn new(r: R, delimiter: u8, quote: u8, multiline: bool) -> Self {
        Self {
            r,
            delimiter,
            quote,
            multiline,
            line: 0,
            bytes: 0,
            block: Buffer::from_vec(Vec::<u8>::new()),
            block_id: 0,
            pos: 0,
            mark: 0,
            eof: false,
            pool: Vec::new(),
            block_size: BLOCK,
            allocated: 0,
            scan: None,
        }
    }

    /// Blocks allocated so far (the rest were reused).
    pub fn blocks_allocated(&self) -> u64 {
        self.allocated
    }

    /// Reads `n` bytes at a time instead of 4 MiB (tests use tiny blocks to put
    /// records across block boundaries).
    pub fn with_block_size(mut self, n: usize) -> Self {
        self.block_size = n.max(1);
        self
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// A buffer of at least `need` bytes, every one initialised (its length is its
    /// capacity), so reads go straight into it: a retired block nobody holds any more,
    /// or a new one.
    fn fresh(&mut self, need: usize) -> Vec<u8> {
        let free = self
            .pool
            .iter()
            .position(|b| b.strong_count() == 1 && b.capacity() >= need);
        if let Some(i) = free
            && let Ok(mut v) = self.pool.swap_remove(i).into_vec::<u8>()
        {
            // (only the part past what the block last held is written here: a reused
            // block was full but for the end of the input)
            v.resize(v.capacity(), 0);
            return v;
        }
        self.allocated += 1;
        vec![0u8; need]
    }

    /// Reads more input into a new block that starts with the unread record (from
    /// `mark`). `false` at end of input.
    ///
    /// The block is read into directly, not through `read_to_end`, which would zero the
    /// whole block first for a reader that does not say it never reads its buffer.
    fn refill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let tail = self.block.len() - self.mark;
        let need = self.block_size.max(tail * 2);
        let mut v = self.fresh(need);
        v[..tail].copy_from_slice(&self.block[self.mark..]);
        let mut filled = tail;
        while filled < v.len() {
            match self.r.read(&mut v[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let got = filled - tail;
        let old = std::mem::replace(
            &mut self.block,
            Buffer::from_vec(v).slice_with_length(0, filled),
        );
        // (a block grown for one very long record is let go, not kept)
        if self.pool.len() < POOL
            && (self.block_size..=2 * self.block_size).contains(&old.capacity())
        {
            self.pool.push(old);
        }
        self.block_id += 1;
        self.scan = None;
        self.pos -= self.mark;
        self.mark = 0;
        Ok(got > 0)
    }

    /// The next physical line as a range of the block (without its line ending), from
    /// `pos`. `None` at end of input.
    fn read_line(&mut self) -> std::io::Result<Option<(usize, usize)>> {
        let mut searched = self.pos;
        loop {
            if let Some(k) = memchr::memchr(b'\n', &self.block[searched..]) {
                let nl = searched + k;
                return Ok(Some(self.take_line(nl, nl + 1)));
            }
            let before = self.pos;
            searched = self.block.len();
            if !self.refill()? {
                // end of input: the last line may lack its line ending
                let len = self.block.len();
                return Ok((self.pos < len).then(|| self.take_line(len, len)));
            }
            // the block moved: positions shifted by what was dropped before `mark`
            searched -= before - self.pos;
        }
    }

    /// Consumes the line from `pos` to `end` (its line ending, if any, up to `next`):
    /// its range without a final `\r`.
    fn take_line(&mut self, end: usize, next: usize) -> (usize, usize) {
        let start = self.pos;
        self.bytes += (next - start) as u64;
        self.pos = next;
        self.line += 1;
        let end = if end > start && self.block[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        (start, end)
    }

    /// Points `rec` at `start..end` of the current block.
    fn set_raw(&self, rec: &mut Record, start: usize, end: usize) {
        if rec.block_id != self.block_id || rec.block.is_empty() {
            rec.block = self.block.clone();
            rec.block_id = self.block_id;
        }
        rec.start = start;
        rec.end = end;
    }

    /// The next physical line from `pos`, consumed, with its fields split into `fields`
    /// (ranges from the line's start) unless it has a quote. `None` at end of input.
    ///
    /// The scan runs on local copies of its state and an immutable view of the block,
    /// so the mask stays in a register from one field to the next.
    fn scan_line(&mut self, fields: &mut Vec<(usize, usize)>) -> std::io::Result<Option<Line>> {
        let (delimiter, quote) = (self.delimiter, self.quote);
        'line: loop {
            fields.clear();
            let start = self.pos;
            self.mark = start;
            let data: &[u8] = &self.block;
            let (mut base, mut mask, mut non_ascii);
            if let Some(sc) = self.scan
                && (sc.base..sc.base + 64).contains(&start)
            {
                (base, mask, non_ascii) = (
                    sc.base,
                    sc.mask & (!0u64 << (start - sc.base)),
                    sc.non_ascii,
                );
            } else if start < data.len() {
                let (hits, high) = masks_at(data, start, delimiter, quote);
                (base, mask, non_ascii) = (start, hits, last_high(start, high));
            } else {
                if !self.refill()? {
                    return Ok(None);
                }
                continue 'line;
            }
            let mut from = start;
            let mut quoted = false;
            let found = loop {
                if mask == 0 {
                    let at = base + 64;
                    if at >= data.len() {
                        break None;
                    }
                    let (hits, high) = masks_at(data, at, delimiter, quote);
                    (base, mask) = (at, hits);
                    non_ascii = last_high(at, high).or(non_ascii);
                    continue;
                }
                let p = base + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let c = data[p];
                if c == b'\n' {
                    break Some((p, p + 1));
                } else if c == quote {
                    quoted = true;
                } else if !quoted {
                    fields.push((from - start, p - start));
                    from = p + 1;
                }
            };
            self.scan = Some(Scan {
                base,
                mask,
                non_ascii,
            });
            let (end, next) = match found {
                Some(found) => found,
                None if self.eof => {
                    // the last line, without a line ending
                    let len = self.block.len();
                    if start == len {
                        return Ok(None);
                    }
                    (len, len)
                }
                None => {
                    // the line goes on past this block: read on and scan it again
                    if !self.refill()? && self.pos >= self.block.len() {
                        return Ok(None);
                    }
                    continue 'line;
                }
            };
            let (start, end) = self.take_line(end, next);
            if !quoted {
                // (`max`: a `\r` delimiter can sit inside a `\r\n` ending)
                fields.push((from - start, end.max(from) - start));
            }
            let non_ascii = non_ascii.is_some_and(|x| x >= start);
            return Ok(Some(Line {
                start,
                end,
                quoted,
                non_ascii,
            }));
        }
    }

    /// Reads the next record into `rec`. Returns `Ok(None)` at end of input,
    /// `Ok(Some(Err(e)))` for a malformed line (its raw bytes and line number are in
    /// `rec`), `Ok(Some(Ok(())))` for a record. Blank lines are skipped.
    pub fn next(&mut self, rec: &mut Record) -> std::io::Result<Option<Result<(), LineError>>> {
        let line = loop {
            let Some(line) = self.scan_line(&mut rec.fields)? else {
                rec.fields.clear();
                return Ok(None);
            };
            if line.end > line.start {
                break line;
            }
        };
        let mut start = line.start;
        rec.line = self.line;
        if rec.line == 1 && self.block[start..line.end].starts_with(b"\xEF\xBB\xBF") {
            start += 3;
            for f in &mut rec.fields {
                *f = (f.0.saturating_sub(3), f.1.saturating_sub(3));
            }
        }
        self.set_raw(rec, start, line.end);
        if !line.quoted {
            rec.quoted = false;
            if line.non_ascii && std::str::from_utf8(rec.raw()).is_err() {
                rec.fields.clear();
                return Ok(Some(Err(LineError::InvalidUtf8)));
            }
            return Ok(Some(Ok(())));
        }
        rec.fields.clear();
        rec.quoted = true;
        loop {
            match self.parse_quoted(rec) {
                Err(LineError::UnterminatedQuote) if self.multiline => {
                    // the record goes on: take the next line too (a refill keeps the
                    // record's start, at `mark`)
                    let offset = rec.start - self.mark;
                    let Some((_, e)) = self.read_line()? else {
                        return Ok(Some(Err(LineError::UnterminatedQuote)));
                    };
                    let s = self.mark + offset;
                    self.set_raw(rec, s, e);
                }
                Err(e) => return Ok(Some(Err(e))),
                Ok(()) => break,
            }
        }
        if std::str::from_utf8(rec.raw()).is_err() {
            return Ok(Some(Err(LineError::InvalidUtf8)));
        }
        Ok(Some(Ok(())))
    }

    fn parse_quoted(&self, rec: &mut Record) -> Result<(), LineError> {
        rec.unescaped.clear();
        rec.fields.clear();
        let raw = &rec.block[rec.start..rec.end];
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
        let whole = all_in_blocks(text, multiline, BLOCK);
        // the same records whatever the block size: every record across a boundary
        for block in [1, 2, 3, 5, 8, 13] {
            assert_eq!(
                all_in_blocks(text, multiline, block),
                whole,
                "block size {block}"
            );
        }
        whole
    }

    fn all_in_blocks(
        text: &[u8],
        multiline: bool,
        block: usize,
    ) -> Vec<(u64, Result<Vec<String>, LineError>)> {
        let mut r = CsvReader::new(text, b',', b'"', multiline).with_block_size(block);
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
    fn raw_lines_and_byte_counts_survive_block_boundaries() {
        // a pseudo-random mix of plain, quoted, escaped, multi-line, blank and CRLF
        // lines, read whole and in blocks of every small size
        let mut text = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let line: &[u8] = match x % 7 {
                0 => b"plain,fields,here",
                1 => b"\"quoted, with comma\",x,\"y\"\"z\"",
                2 => b"\"two\nlines\",a,b",
                3 => b"",
                4 => b"crlf,line,end\r",
                5 => b"\"open,unterminated",
                _ => b"a,b,\"c\"d",
            };
            text.extend_from_slice(line);
            if i % 11 == 0 {
                text.extend_from_slice(&vec![b'w'; (x % 40) as usize]);
            }
            text.push(b'\n');
        }
        for multiline in [false, true] {
            let mut whole = CsvReader::new(&text[..], b',', b'"', multiline);
            let mut want = Vec::new();
            let mut rec = Record::default();
            while let Some(res) = whole.next(&mut rec).unwrap() {
                want.push((rec.line, rec.raw().to_vec(), res.is_ok(), rec.fields.len()));
            }
            assert!(want.len() > 100);
            assert_eq!(whole.bytes_read(), text.len() as u64);
            for block in 1..=24 {
                let mut r = CsvReader::new(&text[..], b',', b'"', multiline).with_block_size(block);
                let mut got = Vec::new();
                while let Some(res) = r.next(&mut rec).unwrap() {
                    got.push((rec.line, rec.raw().to_vec(), res.is_ok(), rec.fields.len()));
                }
                assert_eq!(got, want, "block size {block}, multiline {multiline}");
                assert_eq!(r.bytes_read(), text.len() as u64);
            }
        }
    }

    #[test]
    fn the_scan_splits_like_a_plain_split() {
        // lines of every length around the scan's 64-byte steps, with empty fields,
        // CRLF endings, blank lines, two-byte characters and invalid bytes anywhere
        let mut text = Vec::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let len = (next() % 200) as usize;
            for _ in 0..len {
                let r = next();
                match r % 23 {
                    0..=3 => text.push(b','),
                    4 => text.extend_from_slice("é".as_bytes()),
                    5 if r % 97 == 5 => text.push(0xFF),
                    _ => text.push(b'a' + (r % 26) as u8),
                }
            }
            if next() % 5 == 0 {
                text.push(b'\r');
            }
            text.push(b'\n');
        }
        text.extend_from_slice(b"last,line");
        // the reference: split on line feeds, drop a final `\r`, skip blank lines
        let mut want = Vec::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let fields = std::str::from_utf8(line)
                .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
                .map_err(|_| LineError::InvalidUtf8);
            want.push((i as u64 + 1, fields));
        }
        assert!(want.iter().any(|(_, r)| r.is_err()));
        assert!(want.iter().filter(|(_, r)| r.is_ok()).count() > 1000);
        for block in [BLOCK, 64, 65, 100, 4096] {
            assert_eq!(
                all_in_blocks(&text, false, block),
                want,
                "block size {block}"
            );
        }
        assert_eq!(all(&text[..5000], false).len(), {
            let head = &text[..5000];
            head.split(|&b| b == b'\n')
                .filter(|l| !l.strip_suffix(b"\r").unwrap_or(l).is_empty())
                .count()
        });
    }

    #[test]
    fn blocks_are_reused_once_released() {
        let text = "a,b\n".repeat(10_000);
        let mut r = CsvReader::new(text.as_bytes(), b',', b'"', false).with_block_size(64);
        let mut rec = Record::default();
        let mut ids = std::collections::HashSet::new();
        let mut held = Vec::new();
        while let Some(res) = r.next(&mut rec).unwrap() {
            assert!(res.is_ok());
            let (b, id, _, _) = rec.block();
            if ids.insert(id) {
                // a batch holds the last few blocks
                held.push(b.clone());
                if held.len() > 3 {
                    held.remove(0);
                }
            }
        }
        // hundreds of blocks read through a handful of allocations
        assert!(ids.len() > 500, "{}", ids.len());
        assert!(
            r.blocks_allocated() <= 8,
            "{} allocations",
            r.blocks_allocated()
        );
    }

    #[test]
    fn bom_is_stripped_from_the_header() {
        let out = all(b"\xEF\xBB\xBFId,X\n1,2\n", false);
        assert_eq!(out[0].1, Ok(vec!["Id".into(), "X".into()]));
    }
}
