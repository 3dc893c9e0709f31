//! The blocking side of a table's ingest: read the source ([`csv`], [`ndjson`],
//! [`parquet`], one function per source format), build batches of source columns,
//! de-identify them, and hand batches and quarantined rows to the writer.

use std::io::BufRead;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_buffer::{Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use dhub_deid::rules::keep::{TypedCol, TypedInput};
use tokio::sync::mpsc;

use crate::csv::{CsvReader, Record};
use crate::deidentify::{Processed, RawRows, SourceBatch, TablePlan};
use crate::error::IngestError;
use crate::quarantine::QuarantinedRow;

/// What the worker sends to the writer.
#[derive(Debug)]
pub enum Msg {
    /// De-identified rows.
    Batch(RecordBatch),
    /// Rows for the quarantine.
    Quarantine(Vec<QuarantinedRow>),
}

/// Counts of one table's rows.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Records read.
    pub read: u64,
    /// Rows sent to be written.
    pub written: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Rows of opted-out people.
    pub opted_out: u64,
}

/// Appends `data[s..s + n]` to `values` by copying `W` bytes from `s` and cutting the
/// rest off again; `false` (nothing appended) when `data` ends before `s + W`.
#[inline(always)]
fn over_copy<const W: usize>(values: &mut Vec<u8>, data: &[u8], s: usize, n: usize) -> bool {
    let Some(wide) = data.get(s..s + W) else {
        return false;
    };
    let len = values.len();
    values.extend_from_slice(wide);
    values.truncate(len + n);
    true
}

/// An input column under construction.
enum Col {
    Text(StrCol),
    Typed(TypedCol),
}

impl Col {
    fn push(&mut self, v: &[u8]) {
        match self {
            Col::Text(c) => c.push(v),
            Col::Typed(c) => c.push(v),
        }
    }

    fn push_null(&mut self) {
        match self {
            Col::Text(c) => c.push_null(),
            Col::Typed(c) => c.push_null(),
        }
    }
}

/// A text column under construction (empty fields become nulls).
struct StrCol {
    values: Vec<u8>,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl StrCol {
    fn new(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            values: Vec::with_capacity(rows * 16),
            offsets,
            nulls: NullBufferBuilder::new(rows),
        }
    }

    #[inline]
    fn push(&mut self, v: &[u8]) {
        if v.is_empty() {
            self.nulls.append_null();
        } else {
            self.values.extend_from_slice(v);
            self.nulls.append_non_null();
        }
        self.offsets
            .push(i32::try_from(self.values.len()).unwrap_or(i32::MAX));
    }

    /// Pushes `data[s..e]`. A value of up to 64 bytes is copied as a fixed 16, 32, 48
    /// or 64 bytes (then cut back to its length) when `data` has them: a fixed-size copy
    /// is a few vector moves, not a library call per field.
    #[inline]
    fn push_in(&mut self, data: &[u8], s: usize, e: usize) {
        let n = e - s;
        let copied = match n {
            1..=16 => over_copy::<16>(&mut self.values, data, s, n),
            17..=32 => over_copy::<32>(&mut self.values, data, s, n),
            33..=48 => over_copy::<48>(&mut self.values, data, s, n),
            49..=64 => over_copy::<64>(&mut self.values, data, s, n),
            _ => false,
        };
        if !copied {
            return self.push(&data[s..e]);
        }
        self.nulls.append_non_null();
        self.offsets
            .push(i32::try_from(self.values.len()).unwrap_or(i32::MAX));
    }

    fn push_null(&mut self) {
        self.nulls.append_null();
        self.offsets
            .push(i32::try_from(self.values.len()).unwrap_or(i32::MAX));
    }

    fn finish(&mut self, rows: usize) -> Result<ArrayRef, String> {
        // the next batch's buffer sized from this one's, so it never regrows (each
        // regrowth of a large buffer is a copy of everything pushed so far)
        let next = (self.values.len() + self.values.len() / 8).max(rows * 16);
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(next));
        let mut offsets = std::mem::replace(&mut self.offsets, Vec::with_capacity(rows + 1));
        self.offsets.push(0);
        if values.len() > i32::MAX as usize {
            return Err("a batch's text column exceeds 2 GiB; lower batch_rows".into());
        }
        if offsets.is_empty() {
            offsets.push(0);
        }
        let nulls = self.nulls.finish();
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        debug_assert!(
            std::str::from_utf8(&values).is_ok(),
            "a column was given bytes that are not UTF-8"
        );
        // SAFETY: every value pushed is valid UTF-8: CSV fields are cut at ASCII
        // delimiters (or have ASCII quotes removed) from lines checked with
        // `str::from_utf8` before any field is pushed, and NDJSON values come from
        // `String`s. The offsets are monotonic and end at `values.len()` (built by
        // `push`/`push_null`). Checking again here cost ~1% of an ingest.
        #[allow(unsafe_code)]
        let a = unsafe { StringArray::new_unchecked(offsets, Buffer::from_vec(values), nulls) };
        Ok(Arc::new(a) as ArrayRef)
    }
}

/// Rows of source columns under construction.
pub(crate) struct BatchBuilder {
    cols: Vec<Col>,
    lines: Vec<u64>,
    /// Copied raw lines (NDJSON) and their end offsets.
    raw: Vec<u8>,
    raw_ends: Vec<usize>,
    /// Raw lines left in their input blocks (CSV): the blocks, the id of the last one,
    /// and each row's block index and range.
    blocks: Vec<Buffer>,
    last_block: Option<u64>,
    spans: Vec<(u32, usize, usize)>,
    rows: usize,
    /// Rows of the batch being built: the first batches are small so the stages after
    /// reading start early, then each doubles up to `max_cap`.
    cap: usize,
    max_cap: usize,
}

/// Batches that wait for de-identification (the depth of [`pipelined`]'s channel).
const DEID_QUEUE: usize = 1;

/// Messages that wait for the table's writer (the depth of its channel).
pub(crate) const WRITER_QUEUE: usize = 2;

/// Batches in flight between reading and writing at most: those waiting for and in
/// de-identification, and those waiting for and in the writer.
const IN_FLIGHT: usize = DEID_QUEUE + 1 + WRITER_QUEUE + 1;

/// Rows of a source's first batch. At least the 8,192 rows the writer samples from the
/// first batch to choose its Parquet settings, so the ramp does not change them (nor
/// the row groups, which are cut by row count; only where a data file rolls over may
/// move by a batch).
const FIRST_BATCH_ROWS: usize = 8192;

impl BatchBuilder {
    /// A builder of `kinds.len()` input columns: text, or typed where a kind is given
    /// (see [`TablePlan::input_kinds`]).
    pub(crate) fn new(kinds: &[Option<TypedInput>], max_cap: usize) -> Self {
        let cap = max_cap.min(FIRST_BATCH_ROWS);
        Self {
            cols: kinds
                .iter()
                .map(|k| match k.and_then(|t| TypedCol::new(t, cap)) {
                    Some(t) => Col::Typed(t),
                    None => Col::Text(StrCol::new(cap)),
                })
                .collect(),
            lines: Vec::with_capacity(cap),
            // (sized on first use: a CSV batch never copies its raw lines)
            raw: Vec::new(),
            raw_ends: Vec::new(),
            blocks: Vec::new(),
            last_block: None,
            spans: Vec::new(),
            rows: 0,
            cap,
            max_cap,
        }
    }

    /// Adds a CSV record's row: its raw line stays in its block.
    fn push_record(&mut self, rec: &Record) {
        let (block, id, start, end) = rec.block();
        if self.last_block != Some(id) {
            self.blocks.push(block.clone());
            self.last_block = Some(id);
        }
        let index = u32::try_from(self.blocks.len() - 1).unwrap_or(u32::MAX);
        self.spans.push((index, start, end));
        self.lines.push(rec.line);
        self.rows += 1;
    }

    fn push_row(&mut self, line: u64, raw: &[u8]) {
        self.lines.push(line);
        self.raw.extend_from_slice(raw);
        self.raw_ends.push(self.raw.len());
        self.rows += 1;
    }

    fn full(&self) -> bool {
        self.rows >= self.cap
    }

    /// Near the end of the input, batches go back to [`FIRST_BATCH_ROWS`] rows, so the
    /// batches still queued for the writer when reading ends are small ones and the
    /// writer's last stretch, with reading and de-identification done and a core idle,
    /// is short. Changes neither the rows nor the row groups (cut by row count).
    fn taper(&mut self) {
        self.max_cap = self.max_cap.min(FIRST_BATCH_ROWS);
        self.cap = self.cap.min(self.max_cap);
    }

    /// Whether `remaining` bytes of input, at `bytes_per_row`, are few enough to taper:
    /// twice the small batches the pipeline can hold. (The full batches already in
    /// flight then may outnumber the tail; a tail long enough to drain them all first
    /// measured slower, BENCHMARKS.md.)
    fn near_end(&self, remaining: u64, bytes_per_row: u64) -> bool {
        self.max_cap > FIRST_BATCH_ROWS
            && remaining <= (2 * IN_FLIGHT * FIRST_BATCH_ROWS) as u64 * bytes_per_row
    }

    fn take(&mut self, table: &str) -> Result<SourceBatch, IngestError> {
        let rows = self.rows;
        self.cap = (self.cap * 2).min(self.max_cap);
        let mut columns = Vec::with_capacity(self.cols.len());
        let mut input_failures = Vec::with_capacity(self.cols.len());
        for c in &mut self.cols {
            let (array, failures) = match c {
                Col::Text(c) => (
                    c.finish(rows).map_err(|message| IngestError::Arrow {
                        table: table.to_owned(),
                        message,
                    })?,
                    Vec::new(),
                ),
                Col::Typed(c) => c.finish(),
            };
            columns.push(array);
            input_failures.push(failures);
        }
        self.rows = 0;
        let raw = if self.spans.is_empty() {
            let next_raw = (self.raw.len() + self.raw.len() / 8).max(self.cap * 128);
            RawRows::Lines(
                std::mem::replace(&mut self.raw, Vec::with_capacity(next_raw)),
                std::mem::replace(&mut self.raw_ends, Vec::with_capacity(self.cap)),
            )
        } else {
            self.last_block = None;
            RawRows::Blocks(
                std::mem::take(&mut self.blocks),
                std::mem::replace(&mut self.spans, Vec::with_capacity(self.cap)),
            )
        };
        Ok(SourceBatch {
            lines: std::mem::replace(&mut self.lines, Vec::with_capacity(self.cap)),
            raw,
            columns,
            input_failures,
        })
    }
}

/// Sends messages to the writer, reporting a closed channel as an error.
pub(crate) struct Sender {
    tx: mpsc::Sender<Msg>,
}

impl Sender {
    pub(crate) fn new(tx: mpsc::Sender<Msg>) -> Self {
        Self { tx }
    }

    fn send(&self, m: Msg) -> Result<(), IngestError> {
        self.tx
            .blocking_send(m)
            .map_err(|_| IngestError::Internal("the table writer stopped".into()))
    }

    pub(crate) fn processed(&self, p: Processed, counts: &mut Counts) -> Result<(), IngestError> {
        counts.opted_out += p.opted_out;
        counts.quarantined += p.quarantined.len() as u64;
        if !p.quarantined.is_empty() {
            self.send(Msg::Quarantine(p.quarantined))?;
        }
        if let Some(b) = p.batch {
            counts.written += b.num_rows() as u64;
            self.send(Msg::Batch(b))?;
        }
        Ok(())
    }

    pub(crate) fn quarantine(
        &self,
        rows: Vec<QuarantinedRow>,
        counts: &mut Counts,
    ) -> Result<(), IngestError> {
        counts.quarantined += rows.len() as u64;
        if rows.is_empty() {
            Ok(())
        } else {
            self.send(Msg::Quarantine(rows))
        }
    }
}

/// Runs `produce` (reading and parsing a source into batches) on this thread and
/// de-identification (`plan.apply`) on a second one, so the two overlap; batches pass
/// through a channel one deep, so memory stays bounded. `produce` gets a function that
/// hands a batch on, and the table name for its errors. Returns both stages' counts.
fn pipelined(
    plan: &mut TablePlan,
    out: &Sender,
    produce: impl FnOnce(
        &mut dyn FnMut(SourceBatch) -> Result<(), IngestError>,
        &str,
    ) -> Result<Counts, IngestError>,
) -> Result<Counts, IngestError> {
    let table = plan.table.clone();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<SourceBatch>(DEID_QUEUE);
        let deid = std::thread::Builder::new()
            .name("dhub-deid".into())
            .spawn_scoped(s, move || -> Result<Counts, IngestError> {
                let mut c = Counts::default();
                for sb in rx {
                    out.processed(plan.apply(&sb)?, &mut c)?;
                }
                Ok(c)
            })
            .map_err(|e| {
                IngestError::Internal(format!(
                    "cannot start the de-identification thread ({e}); the machine is out of threads or memory: stop other jobs and run again"
                ))
            })?;
        let produced = {
            let mut send = |sb: SourceBatch| {
                tx.send(sb).map_err(|_| {
                    IngestError::Internal("the de-identification stage stopped".into())
                })
            };
            produce(&mut send, &table)
        };
        drop(tx);
        let deidentified = deid
            .join()
            .map_err(|_| IngestError::Internal("the de-identification stage panicked".into()))?;
        // a failed de-identification is the cause of a failed send: report it first
        let d = deidentified?;
        let mut c = produced?;
        c.written += d.written;
        c.quarantined += d.quarantined;
        c.opted_out += d.opted_out;
        Ok(c)
    })
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
/// Ingests a CSV source: `header_index[k]` is the header position of input `k`;
/// `width` the header's field count; `size` the source's size in bytes when reading
/// counts them (not for a compressed source), to taper the last batches.
pub(crate) fn csv(
    reader: Box<dyn BufRead + Send>,
    size: Option<u64>,
    delimiter: u8,
    quote: u8,
    multiline: bool,
    header_index: &[usize],
    width: usize,
    plan: &mut TablePlan,
    batch_rows: usize,
    out: &Sender,
) -> Result<Counts, IngestError> {
    let kinds = plan.input_kinds();
    pipelined(plan, out, |send, table| {
        let mut r = CsvReader::new(reader, delimiter, quote, multiline);
        let mut rec = Record::default();
        let mut counts = Counts::default();
        let mut b = BatchBuilder::new(&kinds, batch_rows);
        let mut bad: Vec<QuarantinedRow> = Vec::new();
        let io = |e: std::io::Error| IngestError::Source {
            source_name: table.to_owned(),
            message: format!("read failed: {e}"),
        };
        // the header was checked before any row was read
        let _ = r.next(&mut rec).map_err(io)?;
        loop {
            let res = r.next(&mut rec).map_err(|e| IngestError::Source {
                source_name: table.to_owned(),
                message: format!("read failed after line {}: {e}", rec.line),
            })?;
            let Some(res) = res else { break };
            counts.read += 1;
            match res {
                Err(e) => bad.push(QuarantinedRow {
                    line: rec.line,
                    column: None,
                    rule: "parse",
                    reason: e.reason().to_owned(),
                    raw: rec.raw().to_vec(),
                }),
                Ok(()) if rec.fields.len() != width => bad.push(QuarantinedRow {
                    line: rec.line,
                    column: None,
                    rule: "parse",
                    reason: format!("expected {width} fields, found {}", rec.fields.len()),
                    raw: rec.raw().to_vec(),
                }),
                Ok(()) => {
                    let data = rec.data_and_beyond();
                    for (col, &h) in b.cols.iter_mut().zip(header_index) {
                        let (s, e) = rec.fields[h];
                        match col {
                            Col::Text(c) => c.push_in(data, s, e),
                            Col::Typed(c) => c.push(&data[s..e]),
                        }
                    }
                    b.push_record(&rec);
                    if b.full() {
                        if let Some(size) = size {
                            let done = r.bytes_read();
                            if b.near_end(size.saturating_sub(done), done / counts.read.max(1)) {
                                b.taper();
                            }
                        }
                        send(b.take(table)?)?;
                        out.quarantine(std::mem::take(&mut bad), &mut counts)?;
                    }
                }
            }
            if bad.len() >= 4096 {
                out.quarantine(std::mem::take(&mut bad), &mut counts)?;
            }
        }
        if b.rows > 0 {
            send(b.take(table)?)?;
        }
        out.quarantine(bad, &mut counts)?;
        Ok(counts)
    })
}

/// Ingests an NDJSON source: one JSON object per line; `known` holds every field the
/// spec has a rule for (a field without one sends its row to the quarantine).
pub(crate) fn ndjson(
    mut reader: Box<dyn BufRead + Send>,
    known: &std::collections::HashSet<String>,
    plan: &mut TablePlan,
    batch_rows: usize,
    out: &Sender,
) -> Result<Counts, IngestError> {
    let inputs = plan.inputs.clone();
    let kinds = plan.input_kinds();
    pipelined(plan, out, |send, table| {
        let mut counts = Counts::default();
        let mut b = BatchBuilder::new(&kinds, batch_rows);
        let mut bad = Vec::new();
        let mut line = Vec::new();
        let mut n = 0u64;
        let mut text = String::new();
        loop {
            line.clear();
            let got = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| IngestError::Source {
                    source_name: table.to_owned(),
                    message: format!("read failed after line {n}: {e}"),
                })?;
            if got == 0 {
                break;
            }
            n += 1;
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            counts.read += 1;
            let quarantine = |reason: String, column: Option<String>| QuarantinedRow {
                line: n,
                column,
                rule: "parse",
                reason,
                raw: line.clone(),
            };
            let obj: serde_json::Map<String, serde_json::Value> = match std::str::from_utf8(&line) {
                Err(_) => {
                    bad.push(quarantine("line is not valid UTF-8".into(), None));
                    continue;
                }
                Ok(s) => match serde_json::from_str(s) {
                    Ok(o) => o,
                    Err(e) => {
                        bad.push(quarantine(
                            format!("not a JSON object (column {})", e.column()),
                            None,
                        ));
                        continue;
                    }
                },
            };
            if let Some(k) = obj.keys().find(|k| !known.contains(*k)) {
                bad.push(quarantine(
                    "field has no rule in the pipeline spec".into(),
                    Some(k.clone()),
                ));
                continue;
            }
            for (col, name) in b.cols.iter_mut().zip(&inputs) {
                match obj.get(name) {
                    None | Some(serde_json::Value::Null) => col.push_null(),
                    Some(serde_json::Value::String(s)) => col.push(s.as_bytes()),
                    Some(v) => {
                        text.clear();
                        use std::fmt::Write;
                        let _ = write!(text, "{v}");
                        col.push(text.as_bytes());
                    }
                }
            }
            b.push_row(n, &line);
            if b.full() {
                send(b.take(table)?)?;
                out.quarantine(std::mem::take(&mut bad), &mut counts)?;
            }
        }
        if b.rows > 0 {
            send(b.take(table)?)?;
        }
        out.quarantine(bad, &mut counts)?;
        Ok(counts)
    })
}

/// Ingests a Parquet source: its typed columns go straight to the rules, rows numbered
/// from 1 in file order. `name` is the source's name for messages; `rt` runs the
/// object-store reads this blocking thread waits for.
pub(crate) fn parquet(
    rt: &tokio::runtime::Handle,
    store: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    name: &str,
    plan: &mut TablePlan,
    batch_rows: usize,
    out: &Sender,
) -> Result<Counts, IngestError> {
    let src_err = |message: String| IngestError::Source {
        source_name: name.to_owned(),
        message,
    };
    let reader = dhub_store::parquet_reader(store, path);
    let mut stream = rt
        .block_on(async {
            parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
                .await?
                .with_batch_size(batch_rows)
                .build()
        })
        .map_err(|e| src_err(format!("cannot read: {e}")))?;
    let mut counts = Counts::default();
    let mut row = 1u64;
    while let Some(b) = rt.block_on(futures::StreamExt::next(&mut stream)) {
        let b = b.map_err(|e| src_err(format!("read failed after row {row}: {e}")))?;
        let n = b.num_rows() as u64;
        typed_batch(&b, row, plan, out, &mut counts)?;
        row += n;
    }
    Ok(counts)
}

/// De-identifies one batch of a typed (Parquet) source, rows numbered from `first_row`.
fn typed_batch(
    batch: &RecordBatch,
    first_row: u64,
    plan: &mut TablePlan,
    out: &Sender,
    counts: &mut Counts,
) -> Result<(), IngestError> {
    let n = batch.num_rows();
    counts.read += n as u64;
    let mut columns = Vec::with_capacity(plan.inputs.len());
    for name in &plan.inputs {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| IngestError::Source {
                source_name: plan.table.clone(),
                message: format!("column `{name}` disappeared from the Parquet file"),
            })?;
        columns.push(c.clone());
    }
    let sb = SourceBatch {
        lines: (0..n as u64).map(|i| first_row + i).collect(),
        raw: RawRows::Typed(batch.clone()),
        columns,
        input_failures: Vec::new(),
    };
    out.processed(plan.apply(&sb)?, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;

    #[test]
    fn batches_ramp_up_then_taper_near_the_end() {
        let mut b = BatchBuilder::new(&[None], 1 << 16);
        let mut line = 0u64;
        let mut next = |b: &mut BatchBuilder| {
            while !b.full() {
                line += 1;
                b.cols[0].push(b"x");
                b.push_row(line, b"x");
            }
            let batch = b.take("t").unwrap();
            assert_eq!(batch.columns[0].len(), batch.lines.len());
            batch.lines.len()
        };
        let sizes: Vec<usize> = (0..5).map(|_| next(&mut b)).collect();
        assert_eq!(sizes, [8192, 16384, 32768, 65536, 65536]);
        // the tail: twice the small batches the pipeline holds, at 100 bytes a row
        let tail = (2 * IN_FLIGHT * FIRST_BATCH_ROWS) as u64 * 100;
        assert!(!b.near_end(tail + 1, 100));
        assert!(b.near_end(tail, 100));
        b.taper();
        let sizes: Vec<usize> = (0..3).map(|_| next(&mut b)).collect();
        assert_eq!(sizes, [8192; 3]);
        assert!(!b.near_end(0, 100), "tapered once");
        // a source no larger than one small batch never ramps, so never tapers
        assert!(!BatchBuilder::new(&[None], 4096).near_end(0, 100));
    }

    #[test]
    fn wide_copies_give_the_exact_values() {
        // every length 0-80 at every distance from the end of the data
        let data: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        let mut fast = StrCol::new(4);
        let mut plain = StrCol::new(4);
        let mut rows = 0;
        for n in 0..=80 {
            for s in (0..=data.len() - n).rev().take(70) {
                fast.push_in(&data, s, s + n);
                plain.push(&data[s..s + n]);
                rows += 1;
            }
        }
        let (f, p) = (fast.finish(rows).unwrap(), plain.finish(rows).unwrap());
        assert_eq!(f.as_string::<i32>(), p.as_string::<i32>());
        assert_eq!(f.null_count(), 70);
    }
}
