//! One ingest run: check every source against the spec, stream each table through the
//! rules into staged Delta files, then commit every table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use dhub_deid::{DateShifter, MasterKey, Pseudonymiser};
use dhub_store::{CommitTag, Location, Staged, Store, TableWrite, WriteOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::csv::{CsvReader, Record};
use crate::deidentify::TablePlan;
use crate::error::IngestError;
use crate::optout::OptOuts;
use crate::quarantine::QuarantineWriter;
use crate::report::{REPORT_FORMAT, RunReport, TableReport};
use crate::source::{ByteCounter, SourceRoot};
use crate::spec::{Pipeline, Rule, SourceFormat, TableSpec};
use crate::worker::{self, Counts, Msg, Sender};

/// Where an ingest reads and writes.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Research store URL.
    pub store: String,
    /// Directory or object-store URL holding the spec's source files.
    pub source: String,
    /// Quarantine area URL (identifiable; never inside the store).
    pub quarantine: String,
    /// National data opt-out list (one id per line).
    pub opt_out: Option<PathBuf>,
    /// Parquet and file-size settings.
    pub write: WriteOptions,
    /// Overrides every table's `max_reject_rate` for this run (0.0 to 1.0).
    pub max_reject_rate: Option<f64>,
}

/// Receives progress of a run (the CLI draws bars from it).
pub trait Progress: Send + Sync {
    /// A table starts; its source has `source_bytes` bytes.
    fn table_started(&self, _table: &str, _source_bytes: u64) {}
    /// `bytes_read` of the table's source have been read.
    fn table_progress(&self, _table: &str, _bytes_read: u64) {}
    /// A table's rows are all staged.
    fn table_finished(&self, _table: &str, _report: &TableReport) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// A table checked against its source, ready to run.
struct Prepared {
    spec: TableSpec,
    /// The source's column names, in order.
    cols: Vec<String>,
    known: HashSet<String>,
}

fn src_err(name: &str, message: impl Into<String>) -> IngestError {
    IngestError::Source {
        source_name: name.to_owned(),
        message: message.into(),
    }
}

/// Reads a source's column names (CSV header, first NDJSON object's keys, Parquet schema).
async fn source_columns(source: &SourceRoot, t: &TableSpec) -> Result<Vec<String>, IngestError> {
    match t.format {
        SourceFormat::Csv | SourceFormat::Ndjson => {
            let (reader, _) = source.open_blocking(&t.source, t.gzip).await?;
            let (fmt, delim, quote, name) = (t.format, t.delimiter, t.quote, t.source.clone());
            tokio::task::spawn_blocking(move || -> Result<Vec<String>, IngestError> {
                if fmt == SourceFormat::Csv {
                    // the header only: a small block (a remote file is not read further)
                    let mut r =
                        CsvReader::new(reader, delim, quote, false).with_block_size(64 << 10);
                    let mut rec = Record::default();
                    match r
                        .next(&mut rec)
                        .map_err(|e| src_err(&name, format!("read failed: {e}")))?
                    {
                        None => Err(src_err(
                            &name,
                            "the file is empty: a CSV source needs a header line",
                        )),
                        Some(Err(e)) => Err(src_err(
                            &name,
                            format!("the header line is malformed: {}", e.reason()),
                        )),
                        Some(Ok(())) => Ok((0..rec.fields.len())
                            .map(|i| rec.field(i).to_owned())
                            .collect()),
                    }
                } else {
                    let mut reader = reader;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        let n = std::io::BufRead::read_line(&mut reader, &mut line)
                            .map_err(|e| src_err(&name, format!("read failed: {e}")))?;
                        if n == 0 {
                            return Ok(Vec::new());
                        }
                        if line.trim().is_empty() {
                            continue;
                        }
                        let obj: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_str(&line).map_err(|_| {
                                src_err(&name, "the first line is not a JSON object")
                            })?;
                        return Ok(obj.keys().cloned().collect());
                    }
                }
            })
            .await
            .map_err(|e| IngestError::Internal(e.to_string()))?
        }
        SourceFormat::Parquet => {
            let (store, path) = source.object(&t.source)?;
            let reader = dhub_store::parquet_reader(store, path);
            let b = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
                .await
                .map_err(|e| src_err(&t.source, format!("not a readable Parquet file: {e}")))?;
            Ok(b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect())
        }
    }
}

async fn prepare(
    pipeline: &Pipeline,
    t: &TableSpec,
    source: &SourceRoot,
) -> Result<Prepared, IngestError> {
    let cols = source_columns(source, t).await?;
    let file = source.describe(&t.source);
    let mut seen = HashSet::new();
    for c in &cols {
        if !seen.insert(c.as_str()) {
            return Err(src_err(
                &t.source,
                format!("column `{c}` appears twice in the header; rename one"),
            ));
        }
    }
    let ruled: HashSet<&str> = t.columns.iter().map(|c| c.source.as_str()).collect();
    for c in &cols {
        if !ruled.contains(c.as_str()) {
            return Err(pipeline
                .err_at(t.at, format!(
                    "table `{}`: source column `{c}` of {file} has no rule; every column needs one (e.g. `{c} = {{ rule = \"drop\" }}`); rules: {}",
                    t.name,
                    crate::spec::RULES
                ))
                .into());
        }
    }
    if t.format != SourceFormat::Ndjson {
        for c in &t.columns {
            if !seen.contains(c.source.as_str()) {
                return Err(pipeline
                    .err_at(
                        c.at,
                        format!(
                            "table `{}`: column `{}` is not in {file}, whose columns are: {}",
                            t.name,
                            c.source,
                            cols.join(", ")
                        ),
                    )
                    .into());
            }
        }
    }
    for c in &t.columns {
        for (cond, _) in &c.redact_when {
            let known = if t.format == SourceFormat::Ndjson {
                ruled.contains(cond.as_str())
            } else {
                seen.contains(cond.as_str())
            };
            if !known {
                return Err(pipeline
                    .err_at(
                        c.at,
                        format!(
                            "table `{}`: column `{}`: redact_when names `{cond}`, which is not a column of {file}",
                            t.name, c.source
                        ),
                    )
                    .into());
            }
        }
    }
    // output columns in source order
    let mut spec = t.clone();
    spec.columns.sort_by_key(|c| {
        cols.iter()
            .position(|x| *x == c.source)
            .unwrap_or(usize::MAX)
    });
    Ok(Prepared {
        cols,
        known: t.columns.iter().map(|c| c.source.clone()).collect(),
        spec,
    })
}

/// Runs `pipeline`: every table is written and staged first; only when all succeeded
/// (reconciled, under their reject rate) is each committed. Returns the report.
pub async fn run(
    pipeline: &Pipeline,
    key: &MasterKey,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<RunReport, IngestError> {
    let started = Utc::now();
    let t0 = Instant::now();
    let store = Store::open(&opts.store)?;
    let qloc = Location::parse(&opts.quarantine)?;
    let (s, q) = (store.url().as_str(), qloc.url().as_str());
    if q == s || q.starts_with(&format!("{s}/")) || s.starts_with(&format!("{q}/")) {
        return Err(IngestError::QuarantineInStore {
            quarantine: q.to_owned(),
            store: s.to_owned(),
        });
    }
    let source = SourceRoot::parse(&opts.source)?;

    let mut pseudonymisers: HashMap<String, Arc<Pseudonymiser>> = HashMap::new();
    let mut entities: Vec<&str> = vec![pipeline.person_entity.as_str()];
    for t in &pipeline.tables {
        for c in &t.columns {
            if let Rule::Pseudonymise { entity, .. } = &c.rule {
                entities.push(entity);
            }
        }
    }
    for e in entities {
        if !pseudonymisers.contains_key(e) {
            let p = Pseudonymiser::new(key, e).map_err(|source| IngestError::Rule {
                table: String::new(),
                column: String::new(),
                source,
            })?;
            pseudonymisers.insert(e.to_owned(), Arc::new(p));
        }
    }
    let shifter = match pipeline.date_shift_days {
        Some(d) => Some(Arc::new(DateShifter::new(key, d).map_err(|source| {
            IngestError::Rule {
                table: String::new(),
                column: String::new(),
                source,
            }
        })?)),
        None => None,
    };
    let opt_outs = Arc::new(match &opts.opt_out {
        Some(p) => OptOuts::load(
            p,
            pipeline.opt_out_format,
            &pseudonymisers[&pipeline.person_entity],
        )?,
        None => OptOuts::default(),
    });

    // 1. every source against the spec, before any row is read
    let mut prepared = Vec::new();
    for t in &pipeline.tables {
        prepared.push(prepare(pipeline, t, &source).await?);
    }

    // 2. stage every table
    let run_id = format!(
        "{}-{}",
        started.format("%Y%m%dT%H%M%SZ"),
        dhub_deid::random_id(4)?
    );
    let mut staged: Vec<(Staged, TableReport, Option<String>)> = Vec::new();
    for prep in prepared {
        let (s, report, person) = ingest_table(
            pipeline,
            prep,
            &store,
            &qloc,
            &run_id,
            &source,
            &pseudonymisers,
            shifter.clone(),
            opt_outs.clone(),
            opts,
            progress,
        )
        .await?;
        staged.push((s, report, person));
    }

    // 3. commit
    let mut tables = Vec::new();
    let key_id = key.key_id().to_string();
    for (s, mut report, person_column) in staged {
        let mode = pipeline
            .tables
            .iter()
            .find(|t| t.name == report.table)
            .map(|t| t.mode)
            .unwrap_or_default();
        let tag = CommitTag {
            key_id: key_id.clone(),
            pipeline: pipeline.name.clone(),
            spec_sha256: pipeline.sha256.clone(),
            run_id: run_id.clone(),
            person_column,
        };
        let c = s.commit(mode, tag.app_metadata()).await?;
        report.delta_version = Some(c.version);
        report.files = c.files;
        report.bytes = c.bytes;
        tracing::info!(table = %report.table, version = c.version, rows = c.rows, "committed");
        tables.push(report);
    }
    Ok(RunReport {
        format: REPORT_FORMAT,
        run_id,
        pipeline: pipeline.name.clone(),
        spec_sha256: pipeline.sha256.clone(),
        key_id,
        store: store.url().to_string(),
        quarantine: qloc.url().to_string(),
        opt_out_people: opt_outs.len(),
        started,
        seconds: t0.elapsed().as_secs_f64(),
        committed: true,
        tables,
    })
}

/// Reads, de-identifies and stages one table: its reader runs on a blocking thread
/// ([`start_reader`]), batches and quarantined rows are written as they come
/// ([`write_all`]), and the table is staged only when its counts reconcile and its
/// reject rate is within the limit ([`check_counts`]).
#[allow(clippy::too_many_arguments)]
async fn ingest_table(
    pipeline: &Pipeline,
    prep: Prepared,
    store: &Store,
    qloc: &Location,
    run_id: &str,
    source: &SourceRoot,
    pseudonymisers: &HashMap<String, Arc<Pseudonymiser>>,
    shifter: Option<Arc<DateShifter>>,
    opt_outs: Arc<OptOuts>,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<(Staged, TableReport, Option<String>), IngestError> {
    let t0 = Instant::now();
    let t = prep.spec.clone();
    let plan = TablePlan::new(&t, pseudonymisers, shifter, opt_outs);
    let person = plan.person_column().map(str::to_owned);
    let pseudonym_columns = plan.pseudonym_columns();
    let mut writer = store
        .begin_write(&t.name, plan.schema(), t.mode, &opts.write)
        .await?;
    let mut quarantine =
        QuarantineWriter::new(qloc.clone(), &pipeline.name, run_id, &t.name, &t.source);
    let total = source.size(&t.source).await?;
    progress.table_started(&t.name, total);
    let (tx, rx) = mpsc::channel::<Msg>(worker::WRITER_QUEUE);
    let (worker, counter) =
        start_reader(prep, source, plan, pipeline.batch_rows, total, tx).await?;
    let mut sink = Sink {
        writer: &mut writer,
        quarantine: &mut quarantine,
        write: &opts.write,
        pseudonym_columns: &pseudonym_columns,
        progress,
        counter: counter.as_ref(),
        table: &t.name,
    };
    let written = write_all(rx, &mut sink).await;
    let counts = worker
        .await
        .map_err(|e| IngestError::Internal(format!("table worker: {e}")));
    let qfile = quarantine.finish().await;
    let (received, reasons) = written?;
    let counts = counts??;
    let qfile = qfile?;
    let seconds = t0.elapsed().as_secs_f64();
    let report = TableReport {
        table: t.name.clone(),
        source: t.source.clone(),
        rows_read: counts.read,
        rows_written: received,
        rows_quarantined: counts.quarantined,
        rows_opted_out: counts.opted_out,
        delta_version: None,
        files: 0,
        bytes: 0,
        source_bytes: total,
        seconds,
        rows_per_second: counts.read as f64 / seconds.max(1e-9),
        quarantine_reasons: reasons,
        quarantine_file: qfile,
    };
    let limit = opts.max_reject_rate.unwrap_or(t.max_reject_rate);
    if let Err(e) = check_counts(&t, &report, &counts, writer.rows(), limit, qloc) {
        writer.abort();
        return Err(e);
    }
    progress.table_finished(&t.name, &report);
    let staged = writer.finish().await?;
    Ok((staged, report, person))
}

/// The reading side of one table, started on a blocking thread: one worker function
/// per source format ([`worker::csv`], [`worker::ndjson`], [`worker::parquet`]). Returns
/// its handle and, for text sources, the counter of source bytes read (for progress).
async fn start_reader(
    prep: Prepared,
    source: &SourceRoot,
    mut plan: TablePlan,
    batch_rows: usize,
    total: u64,
    tx: mpsc::Sender<Msg>,
) -> Result<(Reader, Option<ByteCounter>), IngestError> {
    let t = &prep.spec;
    Ok(match t.format {
        SourceFormat::Csv => {
            let (reader, c) = source.open_blocking(&t.source, t.gzip).await?;
            // header position of each plan input
            let header_index: Vec<usize> = plan
                .inputs
                .iter()
                .map(|i| prep.cols.iter().position(|c| c == i).unwrap_or(0))
                .collect();
            let width = prep.cols.len();
            let (d, q, m) = (t.delimiter, t.quote, t.multiline);
            let size = (!t.gzip).then_some(total);
            let handle = tokio::task::spawn_blocking(move || {
                let out = Sender::new(tx);
                worker::csv(
                    reader,
                    size,
                    d,
                    q,
                    m,
                    &header_index,
                    width,
                    &mut plan,
                    batch_rows,
                    &out,
                )
            });
            (handle, Some(c))
        }
        SourceFormat::Ndjson => {
            let (reader, c) = source.open_blocking(&t.source, t.gzip).await?;
            let known = prep.known;
            let handle = tokio::task::spawn_blocking(move || {
                let out = Sender::new(tx);
                worker::ndjson(reader, &known, &mut plan, batch_rows, &out)
            });
            (handle, Some(c))
        }
        SourceFormat::Parquet => {
            let (os, path) = source.object(&t.source)?;
            let name = t.source.clone();
            let rt = tokio::runtime::Handle::current();
            let handle = tokio::task::spawn_blocking(move || {
                let out = Sender::new(tx);
                worker::parquet(&rt, os, path, &name, &mut plan, batch_rows, &out)
            });
            (handle, None)
        }
    })
}

/// A table's reading thread: its counts when the source is read to the end.
type Reader = JoinHandle<Result<Counts, IngestError>>;

/// Where one table's de-identified batches and quarantined rows go.
struct Sink<'a> {
    writer: &'a mut TableWrite,
    quarantine: &'a mut QuarantineWriter,
    write: &'a WriteOptions,
    pseudonym_columns: &'a HashSet<String>,
    progress: &'a dyn Progress,
    counter: Option<&'a ByteCounter>,
    table: &'a str,
}

/// Writes every message of the reader until it is done: batches to the table (its
/// Parquet settings tuned from the first), quarantined rows to the quarantine. Returns
/// the rows written and the quarantine's count per `rule: reason`.
async fn write_all(
    mut rx: mpsc::Receiver<Msg>,
    sink: &mut Sink<'_>,
) -> Result<(u64, BTreeMap<String, u64>), IngestError> {
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut received = 0u64;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Batch(b) => {
                if received == 0 {
                    sink.writer
                        .tune(&tuned(sink.write, &b, sink.pseudonym_columns))?;
                }
                received += b.num_rows() as u64;
                sink.writer.write(b).await?;
            }
            Msg::Quarantine(rows) => {
                for r in &rows {
                    *reasons
                        .entry(format!("{}: {}", r.rule, r.reason))
                        .or_default() += 1;
                }
                sink.quarantine.write(&rows).await?;
            }
        }
        if let Some(c) = sink.counter {
            sink.progress.table_progress(sink.table, c.get());
        }
    }
    Ok((received, reasons))
}

/// A table's counts must reconcile (`read = written + quarantined + opted_out`, and
/// the writer holds every row sent) and its quarantined share stay within `limit`.
fn check_counts(
    t: &TableSpec,
    report: &TableReport,
    counts: &Counts,
    writer_rows: u64,
    limit: f64,
    qloc: &Location,
) -> Result<(), IngestError> {
    let received = report.rows_written;
    if !report.reconciles() || received != counts.written || writer_rows != received {
        return Err(IngestError::Reconciliation {
            table: t.name.clone(),
            read: counts.read,
            written: received,
            quarantined: counts.quarantined,
            opted_out: counts.opted_out,
        });
    }
    let share = if counts.read == 0 {
        0.0
    } else {
        counts.quarantined as f64 / counts.read as f64
    };
    if share > limit {
        return Err(IngestError::TooManyRejects {
            table: t.name.clone(),
            read: counts.read,
            quarantined: counts.quarantined,
            share: share * 100.0,
            limit: limit * 100.0,
            quarantine: report
                .quarantine_file
                .clone()
                .unwrap_or_else(|| qloc.url().to_string()),
        });
    }
    Ok(())
}

/// Parquet settings chosen from a table's first batch:
///
/// * min/max statistics only where they can prune: a reader skips a row group or a file
///   by its range, which works for numbers, dates and times, and for text only when
///   rows come in (nearly) sorted order of it. Pseudonym columns (random hex) and text
///   in no order (codes and descriptions of event tables, whose every row group spans
///   almost the whole range) get none, so the writer does not compare every value twice
///   for nothing;
/// * text, number, date and time columns whose values barely repeat get no dictionary
///   (the writer would build one only to drop it at its size limit).
fn tuned(
    base: &WriteOptions,
    first: &arrow_array::RecordBatch,
    pseudonyms: &HashSet<String>,
) -> WriteOptions {
    use arrow_array::cast::AsArray;
    let mut w = base.clone();
    let n = first.num_rows();
    for (f, col) in first.schema().fields().iter().zip(first.columns()) {
        if w.columns.contains_key(f.name()) {
            continue;
        }
        let mut c = dhub_store::ColumnWriteOptions::default();
        if pseudonyms.contains(f.name())
            || (col.data_type() == &arrow_schema::DataType::Utf8
                && !nearly_sorted(col.as_string::<i32>()))
        {
            c.statistics = Some(false);
        }
        let sample = n.min(8192);
        if n >= 1024 {
            let distinct = if col.data_type() == &arrow_schema::DataType::Utf8 {
                let s = col.as_string::<i32>();
                s.iter()
                    .take(sample)
                    .flatten()
                    .collect::<HashSet<&str>>()
                    .len()
            } else if let Some(w) = col.data_type().primitive_width() {
                // numbers, dates, timestamps: distinct bit patterns of the values
                let data = col.to_data();
                let bytes = &data.buffers()[0].as_slice()[data.offset() * w..];
                bytes
                    .chunks_exact(w)
                    .take(sample)
                    .collect::<HashSet<&[u8]>>()
                    .len()
            } else {
                0
            };
            if distinct * 2 > sample {
                c.dictionary = Some(false);
            }
        }
        if c != dhub_store::ColumnWriteOptions::default() {
            w.columns.insert(f.name().clone(), c);
        }
    }
    w
}

/// Whether at least 95% of the first 8,192 non-null values are in non-decreasing order
/// from one to the next (then a row group's min/max range is narrow enough to prune).
/// Too few values to tell counts as sorted.
fn nearly_sorted(s: &arrow_array::StringArray) -> bool {
    let mut values = s.iter().flatten().take(8192);
    let Some(mut prev) = values.next() else {
        return true;
    };
    let (mut pairs, mut ordered) = (0usize, 0usize);
    for v in values {
        pairs += 1;
        ordered += usize::from(prev <= v);
        prev = v;
    }
    pairs < 64 || ordered * 20 >= pairs * 19
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Date32Array, RecordBatch, StringArray};

    #[test]
    fn statistics_only_where_they_prune_and_dictionaries_only_for_repeats() {
        let n = 4096;
        let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values((0..n).map(f)))
        };
        let batch = RecordBatch::try_from_iter([
            (
                "person",
                text(&|i| format!("{:032x}", (i as u128).wrapping_mul(0x9E37_79B9))),
            ),
            // sorted with repeats (e.g. a table ordered by this column)
            ("sorted", text(&|i| format!("c{:05}", i / 7))),
            // 3% out of order still counts as sorted
            (
                "almost",
                text(&|i| format!("a{:05}", if i % 33 == 0 { 0 } else { i })),
            ),
            // codes in no order
            (
                "codes",
                text(&|i| ["b", "a", "c", "d"][(i * 7 + i / 3) % 4].to_owned()),
            ),
            ("unique", text(&|i| format!("{:08}", (i * 7919) % n))),
            (
                "day",
                Arc::new(Date32Array::from_iter_values((0..n as i32).map(|i| i % 50))),
            ),
        ])
        .unwrap();
        let pseudonyms = HashSet::from(["person".to_owned()]);
        let w = tuned(&WriteOptions::default(), &batch, &pseudonyms);
        let stats = |c: &str| w.columns.get(c).and_then(|o| o.statistics);
        let dict = |c: &str| w.columns.get(c).and_then(|o| o.dictionary);
        assert_eq!(stats("person"), Some(false));
        assert_eq!(stats("sorted"), None);
        assert_eq!(stats("almost"), None);
        assert_eq!(stats("codes"), Some(false));
        assert_eq!(stats("unique"), Some(false));
        assert_eq!(stats("day"), None);
        assert_eq!(dict("person"), Some(false));
        assert_eq!(dict("codes"), None);
        assert_eq!(dict("unique"), Some(false));
        assert_eq!(dict("day"), None);
        // a table's own settings win
        let mut base = WriteOptions::default();
        base.columns
            .insert("codes".into(), dhub_store::ColumnWriteOptions::default());
        assert_eq!(
            tuned(&base, &batch, &pseudonyms).columns["codes"].statistics,
            None
        );
    }
}
