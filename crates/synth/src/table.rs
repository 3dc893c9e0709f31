//! Streaming CSV tables: hand-written field formatting into one reusable line
//! buffer per table, buffered (optionally gzipped) output, and the injection of
//! defective rows with their ground truth in `_defects.csv`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::rng::{Rng, domain};
use crate::time::{date10, datetime20};
use crate::{FileReport, SynthError};

/// What a column holds; decides which defects a row can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    /// A UUID or other identifier.
    Id,
    /// Free or enumerated text (names, descriptions, statuses).
    Text,
    /// `YYYY-MM-DD` (may be empty when optional).
    Date,
    /// `YYYY-MM-DDTHH:MM:SSZ` (may be empty when optional).
    DateTime,
    /// A number.
    Num,
    /// A code (terminology code, ZIP, SSN, phone).
    Code,
    /// An NHS number.
    Nhs,
}

/// A table's file stem and its columns, in order.
#[derive(Debug)]
pub(crate) struct TableSpec {
    pub name: &'static str,
    pub cols: &'static [(&'static str, Col)],
}

/// The kinds of defect written to `_defects.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefectKind {
    WrongColumnCount,
    UnparseableDate,
    InvalidNhsNumber,
    InvalidUtf8,
    UnterminatedQuote,
}

impl DefectKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            DefectKind::WrongColumnCount => "wrong_column_count",
            DefectKind::UnparseableDate => "unparseable_date",
            DefectKind::InvalidNhsNumber => "invalid_nhs_number",
            DefectKind::InvalidUtf8 => "invalid_utf8",
            DefectKind::UnterminatedQuote => "unterminated_quote",
        }
    }
}

const BUF: usize = 256 * 1024;

enum Sink {
    Plain(BufWriter<File>),
    Gzip(Box<BufWriter<GzEncoder<BufWriter<File>>>>),
}

impl Sink {
    #[inline]
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gzip(w) => w.write_all(b),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => {
                let gz = w.into_inner().map_err(io::IntoInnerError::into_error)?;
                let mut inner = gz.finish()?;
                inner.flush()
            }
        }
    }
}

/// One output table being streamed to disk.
pub(crate) struct Table {
    file_name: String,
    path: PathBuf,
    cols: &'static [(&'static str, Col)],
    sink: Sink,
    line: Vec<u8>,
    starts: Vec<u32>,
    /// Index just past the last quoted field of the current row.
    quoted_after: usize,
    rows: u64,
    threshold: u64,
    rng: Rng,
    pending: Vec<(u64, DefectKind)>,
    scratch: Vec<usize>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("file_name", &self.file_name)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl Table {
    fn create(
        dir: &Path,
        spec: &TableSpec,
        index: u64,
        gzip: bool,
        rate: f64,
        seed: u64,
    ) -> Result<Table, SynthError> {
        let file_name = if gzip {
            format!("{}.csv.gz", spec.name)
        } else {
            format!("{}.csv", spec.name)
        };
        let path = dir.join(&file_name);
        let file = File::create(&path).map_err(|source| SynthError::Write {
            path: path.clone(),
            source,
        })?;
        let sink = if gzip {
            let gz = GzEncoder::new(
                BufWriter::with_capacity(BUF, file),
                Compression::new(GZIP_LEVEL),
            );
            Sink::Gzip(Box::new(BufWriter::with_capacity(BUF, gz)))
        } else {
            Sink::Plain(BufWriter::with_capacity(BUF, file))
        };
        // rate is validated to [0, 0.5], so the product fits in u64.
        let threshold = (rate * 18_446_744_073_709_551_616.0) as u64;
        let mut t = Table {
            file_name,
            path,
            cols: spec.cols,
            sink,
            line: Vec::with_capacity(4096),
            starts: Vec::with_capacity(spec.cols.len() + 1),
            quoted_after: 0,
            rows: 0,
            threshold,
            rng: Rng::stream(seed, domain::DEFECTS, index),
            pending: Vec::new(),
            scratch: Vec::new(),
        };
        let mut header = Vec::new();
        for (i, (name, _)) in spec.cols.iter().enumerate() {
            if i > 0 {
                header.push(b',');
            }
            header.extend_from_slice(name.as_bytes());
        }
        header.push(b'\n');
        t.sink.write_all(&header).map_err(|e| t.err(e))?;
        Ok(t)
    }

    #[cold]
    fn err(&self, source: io::Error) -> SynthError {
        SynthError::Write {
            path: self.path.clone(),
            source,
        }
    }

    #[inline]
    fn open(&mut self) {
        if !self.starts.is_empty() {
            self.line.push(b',');
        }
        self.starts.push(self.line.len() as u32);
    }

    /// A text field, quoted (with doubled quotes) only when it contains a
    /// comma, a quote or a line break.
    #[inline]
    pub(crate) fn str(&mut self, s: &str) {
        self.open();
        let b = s.as_bytes();
        if b.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r')) {
            debug_assert!(
                !b.contains(&b'\n') && !b.contains(&b'\r'),
                "records never span lines"
            );
            self.line.push(b'"');
            for &c in b {
                if c == b'"' {
                    self.line.push(b'"');
                }
                self.line.push(c);
            }
            self.line.push(b'"');
            self.quoted_after = self.starts.len();
        } else {
            self.line.extend_from_slice(b);
        }
    }

    /// A field whose bytes need no quoting (identifiers, codes, formatted numbers).
    #[inline]
    pub(crate) fn raw(&mut self, b: &[u8]) {
        debug_assert!(!b.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r')));
        self.open();
        self.line.extend_from_slice(b);
    }

    /// A field built from several unquoted pieces.
    #[inline]
    pub(crate) fn raw2(&mut self, a: &[u8], b: &[u8]) {
        self.open();
        self.line.extend_from_slice(a);
        self.line.extend_from_slice(b);
    }

    #[inline]
    pub(crate) fn empty(&mut self) {
        self.open();
    }

    #[inline]
    pub(crate) fn u64(&mut self, v: u64) {
        self.open();
        let mut b = itoa::Buffer::new();
        self.line.extend_from_slice(b.format(v).as_bytes());
    }

    /// A fixed-point number with two decimals from an integer count of hundredths.
    #[inline]
    pub(crate) fn cents(&mut self, c: i64) {
        self.open();
        fixed(&mut self.line, c, 100);
    }

    /// A fixed-point number with one decimal from an integer count of tenths.
    #[inline]
    pub(crate) fn tenths(&mut self, t: i64) {
        self.open();
        fixed(&mut self.line, t, 10);
    }

    /// A floating-point number in its shortest round-trip form (like Java's `Double.toString`).
    #[inline]
    pub(crate) fn f64(&mut self, v: f64) {
        self.open();
        if v.is_finite() {
            let mut b = ryu::Buffer::new();
            self.line.extend_from_slice(b.format_finite(v).as_bytes());
        } else {
            self.line.extend_from_slice(b"NaN");
        }
    }

    #[inline]
    pub(crate) fn date(&mut self, days: i64) {
        self.open();
        self.line.extend_from_slice(&date10(days));
    }

    #[inline]
    pub(crate) fn datetime(&mut self, secs: i64) {
        self.open();
        self.line.extend_from_slice(&datetime20(secs));
    }

    /// Ends the row: maybe replaces it with a defective one, then writes it.
    #[inline]
    pub(crate) fn end(&mut self) -> Result<(), SynthError> {
        debug_assert_eq!(self.starts.len(), self.cols.len(), "{}", self.file_name);
        if self.threshold != 0 && self.rng.next_u64() < self.threshold {
            let kind = self.inject();
            // header is line 1, the first row line 2
            self.pending.push((self.rows + 2, kind));
        }
        self.line.push(b'\n');
        if let Err(e) = self.sink.write_all(&self.line) {
            return Err(self.err(e));
        }
        self.rows += 1;
        self.line.clear();
        self.starts.clear();
        self.quoted_after = 0;
        Ok(())
    }

    fn field(&self, i: usize) -> (usize, usize) {
        let start = self.starts[i] as usize;
        let end = match self.starts.get(i + 1) {
            Some(&next) => next as usize - 1,
            None => self.line.len(),
        };
        (start, end)
    }

    fn candidates(&mut self, want: &[Col]) -> usize {
        self.scratch.clear();
        for i in 0..self.starts.len() {
            let (s, e) = self.field(i);
            if e > s && want.contains(&self.cols[i].1) {
                self.scratch.push(i);
            }
        }
        self.scratch.len()
    }

    /// Rewrites the current row (without its newline) into a defective one.
    fn inject(&mut self) -> DefectKind {
        let mut kinds = [DefectKind::WrongColumnCount; 5];
        let mut n = 0;
        for (k, ok) in [
            (DefectKind::WrongColumnCount, true),
            (DefectKind::UnterminatedQuote, true),
            (
                DefectKind::UnparseableDate,
                self.candidates(&[Col::Date, Col::DateTime]) > 0,
            ),
            (
                DefectKind::InvalidNhsNumber,
                self.candidates(&[Col::Nhs]) > 0,
            ),
            (DefectKind::InvalidUtf8, self.candidates(&[Col::Text]) > 0),
        ] {
            if ok {
                kinds[n] = k;
                n += 1;
            }
        }
        let kind = kinds[self.rng.index(n)];
        match kind {
            DefectKind::WrongColumnCount => self.wrong_column_count(),
            DefectKind::UnterminatedQuote => {
                let n = self.starts.len();
                if self.quoted_after == n {
                    // the last field is quoted: drop its closing quote
                    self.line.pop();
                } else {
                    // open a quote in a field after which no quote follows
                    let i = self.quoted_after + self.rng.index(n - self.quoted_after);
                    let at = self.starts[i] as usize;
                    self.line.insert(at, b'"');
                }
            }
            DefectKind::UnparseableDate => {
                self.candidates(&[Col::Date, Col::DateTime]);
                let i = self.scratch[self.rng.index(self.scratch.len())];
                self.bad_date(i);
            }
            DefectKind::InvalidNhsNumber => {
                self.candidates(&[Col::Nhs]);
                let i = self.scratch[self.rng.index(self.scratch.len())];
                self.bad_nhs(i);
            }
            DefectKind::InvalidUtf8 => {
                self.candidates(&[Col::Text]);
                let i = self.scratch[self.rng.index(self.scratch.len())];
                self.bad_utf8(i);
            }
        }
        kind
    }

    fn wrong_column_count(&mut self) {
        let n = self.starts.len();
        let variant = if n < 2 { 0 } else { self.rng.below(3) };
        match variant {
            1 => {
                // drop the last field
                let cut = self.starts[n - 1] as usize - 1;
                self.line.truncate(cut);
            }
            2 => {
                // merge two unquoted neighbours: a comma typed as a semicolon
                let mut pairs = Vec::new();
                for i in 0..n - 1 {
                    let (a, _) = self.field(i);
                    let (b, _) = self.field(i + 1);
                    if self.line.get(a) != Some(&b'"') && self.line.get(b) != Some(&b'"') {
                        pairs.push(i);
                    }
                }
                if pairs.is_empty() {
                    self.line.extend_from_slice(b",");
                } else {
                    let i = pairs[self.rng.index(pairs.len())];
                    let sep = self.starts[i + 1] as usize - 1;
                    self.line[sep] = b';';
                }
            }
            _ => {
                // an extra trailing field
                if self.rng.chance(0.5) {
                    self.line.push(b',');
                } else {
                    self.line.extend_from_slice(b",N/A");
                }
            }
        }
    }

    fn bad_date(&mut self, i: usize) {
        let (s, e) = self.field(i);
        let year: [u8; 4] = match self.line.get(s..s + 4) {
            Some(y) if y.iter().all(u8::is_ascii_digit) => [y[0], y[1], y[2], y[3]],
            _ => *b"2019",
        };
        let y = std::str::from_utf8(&year).unwrap_or("2019");
        let timestamp = self.cols[i].1 == Col::DateTime;
        let bad = match (self.rng.below(5), timestamp) {
            (0, false) => format!("{y}-13-45"),
            (0, true) => format!("{y}-13-45T10:00:00Z"),
            (1, false) => format!("31/02/{y}"),
            (1, true) => format!("31/02/{y} 10:00"),
            (2, _) => "not-a-date".to_string(),
            (3, false) => format!("{y}-02-30"),
            (3, true) => format!("{y}-02-30T25:61:00Z"),
            (_, false) => "0000-00-00".to_string(),
            (_, true) => format!("{y}-00-00T00:00:00Z"),
        };
        self.line.splice(s..e, bad.bytes());
    }

    fn bad_nhs(&mut self, i: usize) {
        let (s, e) = self.field(i);
        let spaced = self.line[s..e].contains(&b' ');
        let mut digits: Vec<u8> = self.line[s..e]
            .iter()
            .filter(|b| b.is_ascii_digit())
            .map(|b| b - b'0')
            .collect();
        match self.rng.below(3) {
            0 if digits.len() >= 10 => {
                let mut nine = [0u8; 9];
                nine.copy_from_slice(&digits[..9]);
                let wrong = match dhub_deid::nhs::check_digit(&nine) {
                    Some(c) => (c + 1 + self.rng.below(9) as u8) % 10,
                    None => self.rng.below(10) as u8,
                };
                digits.truncate(9);
                digits.push(wrong);
            }
            1 => {
                digits.pop();
            }
            _ => digits.push(self.rng.below(10) as u8),
        }
        let mut out = Vec::with_capacity(14);
        for (k, d) in digits.iter().enumerate() {
            if spaced && (k == 3 || k == 6) {
                out.push(b' ');
            }
            out.push(b'0' + d);
        }
        self.line.splice(s..e, out);
    }

    fn bad_utf8(&mut self, i: usize) {
        const BAD: [&[u8]; 6] = [
            &[0xC3, 0x28],
            &[0xFF],
            &[0xE2, 0x28, 0xA1],
            &[0x80],
            &[0xC0, 0xAF],
            &[0xFE],
        ];
        let (s, e) = self.field(i);
        let quoted = self.line[s] == b'"';
        let (lo, hi) = if quoted { (s + 1, e - 1) } else { (s, e) };
        let mut at = lo + self.rng.index(hi - lo + 1);
        while at < hi && (0x80..0xC0).contains(&self.line[at]) {
            at += 1;
        }
        let bad = BAD[self.rng.index(BAD.len())];
        self.line.splice(at..at, bad.iter().copied());
    }

    fn finish(self) -> Result<FileReport, SynthError> {
        let Table {
            file_name,
            path,
            sink,
            rows,
            ..
        } = self;
        sink.finish().map_err(|source| SynthError::Write {
            path: path.clone(),
            source,
        })?;
        let bytes = std::fs::metadata(&path)
            .map_err(|source| SynthError::Write { path, source })?
            .len();
        Ok(FileReport {
            name: file_name,
            rows,
            bytes,
        })
    }
}

/// gzip level: fast, since generation speed matters more than the last few percent.
const GZIP_LEVEL: u32 = 1;

/// Appends `v / scale` with `log10(scale)` decimals.
#[inline]
fn fixed(out: &mut Vec<u8>, v: i64, scale: i64) {
    if v < 0 {
        out.push(b'-');
    }
    let a = v.unsigned_abs();
    let s = scale as u64;
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(a / s).as_bytes());
    out.push(b'.');
    let frac = a % s;
    if s == 100 {
        out.push(b'0' + (frac / 10) as u8);
        out.push(b'0' + (frac % 10) as u8);
    } else {
        out.push(b'0' + frac as u8);
    }
}

/// All tables of one run plus the defects ground truth.
pub(crate) struct Output {
    pub(crate) tables: Vec<Table>,
    defects: BufWriter<File>,
    defects_path: PathBuf,
    defect_count: u64,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("tables", &self.tables)
            .field("defect_count", &self.defect_count)
            .finish_non_exhaustive()
    }
}

/// The ground-truth file name.
pub(crate) const DEFECTS_FILE: &str = "_defects.csv";

impl Output {
    pub(crate) fn create(
        dir: &Path,
        specs: &[TableSpec],
        gzip: bool,
        rate: f64,
        seed: u64,
    ) -> Result<Output, SynthError> {
        let defects_path = dir.join(DEFECTS_FILE);
        let file = File::create(&defects_path).map_err(|source| SynthError::Write {
            path: defects_path.clone(),
            source,
        })?;
        let mut defects = BufWriter::with_capacity(64 * 1024, file);
        defects
            .write_all(b"file,line,kind\n")
            .map_err(|source| SynthError::Write {
                path: defects_path.clone(),
                source,
            })?;
        let tables = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| Table::create(dir, spec, i as u64, gzip, rate, seed))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Output {
            tables,
            defects,
            defects_path,
            defect_count: 0,
        })
    }

    /// Moves the defects recorded so far into `_defects.csv`.
    pub(crate) fn flush_defects(&mut self) -> Result<(), SynthError> {
        let mut line = Vec::with_capacity(64);
        for t in &mut self.tables {
            for (n, kind) in t.pending.drain(..) {
                line.clear();
                line.extend_from_slice(t.file_name.as_bytes());
                line.push(b',');
                line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                line.push(b',');
                line.extend_from_slice(kind.name().as_bytes());
                line.push(b'\n');
                self.defects
                    .write_all(&line)
                    .map_err(|source| SynthError::Write {
                        path: self.defects_path.clone(),
                        source,
                    })?;
                self.defect_count += 1;
            }
        }
        Ok(())
    }

    /// Flushes and closes everything; returns the per-file reports and the number of defects.
    pub(crate) fn finish(mut self) -> Result<(Vec<FileReport>, u64), SynthError> {
        self.flush_defects()?;
        let Output {
            tables,
            mut defects,
            defects_path,
            defect_count,
        } = self;
        defects.flush().map_err(|source| SynthError::Write {
            path: defects_path,
            source,
        })?;
        let reports = tables
            .into_iter()
            .map(Table::finish)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((reports, defect_count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point() {
        let mut v = Vec::new();
        fixed(&mut v, 7749, 100);
        v.push(b' ');
        fixed(&mut v, 5, 100);
        v.push(b' ');
        fixed(&mut v, -1279, 10);
        v.push(b' ');
        fixed(&mut v, 0, 10);
        assert_eq!(std::str::from_utf8(&v).ok(), Some("77.49 0.05 -127.9 0.0"));
    }
}
