//! Running an approved extract: plan the frozen query over the project's release,
//! check k-anonymity over the quasi-identifiers (a first, aggregating pass: nothing is
//! written if it fails), then stream the rows (second pass) through re-keying to the
//! project pseudonym into Parquet or CSV files, and finish with `manifest.json` and
//! `manifest.sig`.
//!
//! Memory stays bounded whatever the extract size: both passes stream batch by batch,
//! the first holds one count per equivalence class, the writers hold one row group.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::prelude::{ident, lit};
use dhub_deid::{MasterKey, Pseudonymiser};
use dhub_govern::{ExtractRecord, ExtractStatus};
use dhub_query::{QueryService, Scope};
use dhub_store::Location;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::async_writer::AsyncFileWriter;
use tokio::io::AsyncWriteExt;

use crate::error::{ExtractError, Result};
use crate::manifest::{
    MANIFEST_FILE, MANIFEST_FORMAT, Manifest, ManifestColumn, ManifestFile, SIGNATURE_FILE,
    SignatureInfo,
};
use crate::signing::SigningKey;
use crate::spec::{ExtractSpec, Format, LoadedSpec, hex, sha256_hex};

/// Rows per output file when the spec gives none.
pub const DEFAULT_ROWS_PER_FILE: u64 = 1_000_000;

/// The project pseudonymiser: HMAC-SHA256 under `K("project:<id>")` of the research
/// pseudonym, first 16 bytes, hex (DESIGN.md, "Project pseudonym").
///
/// ```
/// use dhub_deid::MasterKey;
/// let key = MasterKey::from_bytes([3u8; 32]);
/// let p = dhub_extract::project_pseudonymiser(&key, "asthma-2026").unwrap();
/// let research = "0123456789abcdef0123456789abcdef";
/// let a = p.pseudonym_of_normalised(research.as_bytes());
/// let b = dhub_extract::project_pseudonymiser(&key, "copd-2026").unwrap()
///     .pseudonym_of_normalised(research.as_bytes());
/// assert_ne!(a, b); // two projects cannot link their extracts
/// ```
pub fn project_pseudonymiser(master: &MasterKey, project: &str) -> Result<Pseudonymiser> {
    Pseudonymiser::for_project(master, project).map_err(|e| ExtractError::Spec {
        path: Default::default(),
        message: e.to_string(),
    })
}

/// Whether `v` looks like a research pseudonym: 32 lowercase hex characters.
pub fn is_pseudonym(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

/// Checks the planned output against the spec: every quasi-identifier and `[rekey]`
/// column present, re-keyed columns hold text, column names unique. Returns the
/// output schema of the files.
pub fn check_output(spec: &ExtractSpec, schema: &Schema, path: &Path) -> Result<SchemaRef> {
    let err = |message: String| ExtractError::Spec {
        path: path.to_owned(),
        message,
    };
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for n in &names {
        if !seen.insert(*n) {
            return Err(err(format!(
                "the query's output has two columns named `{n}`; give them distinct aliases"
            )));
        }
    }
    let columns = names.join(", ");
    for q in &spec.quasi_identifiers {
        if !names.contains(&q.as_str()) {
            return Err(err(format!(
                "quasi-identifier `{q}` is not an output column of the query (it has: {columns})"
            )));
        }
    }
    for c in spec.rekey.keys() {
        match schema.field_with_name(c) {
            Err(_) => {
                return Err(err(format!(
                    "[rekey] column `{c}` is not an output column of the query (it has: {columns})"
                )));
            }
            Ok(f) if !is_string(f.data_type()) => {
                return Err(err(format!(
                    "[rekey] column `{c}` is {}, not text: only pseudonymised id columns can be re-keyed",
                    f.data_type()
                )));
            }
            Ok(_) => {}
        }
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let t = if is_string(f.data_type()) {
                DataType::Utf8
            } else {
                f.data_type().clone()
            };
            Field::new(f.name(), t, f.is_nullable())
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// Plans a loaded spec's query over `scope` and checks its output (request time).
pub async fn check_request(
    service: &QueryService,
    scope: &Scope,
    loaded: &LoadedSpec,
) -> Result<SchemaRef> {
    let (_, plan) = service.plan_extract(&loaded.sql, scope).await?;
    let schema = plan.schema().as_arrow().clone();
    check_output(&loaded.spec, &schema, &loaded.path)
}

/// Everything a run needs.
#[derive(Debug)]
pub struct RunInput<'a> {
    /// The approved extract.
    pub record: &'a ExtractRecord,
    /// A query service over the research store (its limits apply).
    pub service: &'a QueryService,
    /// The project's scope: its release's versions of the granted tables.
    pub scope: Scope,
    /// The master key (research pseudonyms were made under it).
    pub master: &'a MasterKey,
    /// The signing key.
    pub signer: &'a SigningKey,
    /// The extracts area (`--extracts`).
    pub out: &'a Location,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The manifest written.
    pub manifest: Manifest,
    /// Its exact text.
    pub manifest_json: String,
    /// URL of the extract's directory.
    pub location: String,
}

/// The extract's directory under the extracts area: `<project>/<extract-id>`.
pub fn extract_dir(project: &str, id: &str) -> String {
    format!("{project}/{id}")
}

struct Classes {
    classes: u64,
    rows: u64,
    smallest: Option<u64>,
    below: BTreeMap<u64, u64>,
}

async fn count_classes(
    ctx: &datafusion::prelude::SessionContext,
    plan: &datafusion::logical_expr::LogicalPlan,
    spec: &ExtractSpec,
) -> Result<Classes> {
    let df = ctx.execute_logical_plan(plan.clone()).await?;
    let groups = spec.quasi_identifiers.iter().map(ident).collect();
    let df = df.aggregate(groups, vec![count(lit(1)).alias("__dhub_class_size")])?;
    let mut stream = df.execute_stream().await?;
    let mut c = Classes {
        classes: 0,
        rows: 0,
        smallest: None,
        below: BTreeMap::new(),
    };
    while let Some(b) = stream.next().await {
        let b = b?;
        let col = b.column(b.num_columns() - 1);
        let Some(n) = col.as_any().downcast_ref::<Int64Array>() else {
            return Err(ExtractError::Query {
                message: format!("class sizes came back as {}", col.data_type()),
            });
        };
        for v in n.iter().flatten() {
            let v = u64::try_from(v).unwrap_or(0);
            if v == 0 {
                continue; // an empty input has one class of size 0 when there are no groups
            }
            c.classes += 1;
            c.rows += v;
            c.smallest = Some(c.smallest.map_or(v, |s| s.min(v)));
            if v < spec.k {
                *c.below.entry(v).or_default() += 1;
            }
        }
    }
    Ok(c)
}

/// Running SHA-256 and size of the bytes a writer has passed on.
#[derive(Clone)]
struct Digest(Arc<Mutex<(ring::digest::Context, u64)>>);

impl Digest {
    fn new() -> Self {
        Self(Arc::new(Mutex::new((
            ring::digest::Context::new(&ring::digest::SHA256),
            0,
        ))))
    }
    fn update(&self, b: &[u8]) {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0.update(b);
        g.1 += b.len() as u64;
    }
    fn finish(&self) -> (String, u64) {
        let g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (hex(g.0.clone().finish().as_ref()), g.1)
    }
}

/// An object-store upload that hashes what passes through it.
struct Hashing {
    inner: object_store::buffered::BufWriter,
    digest: Digest,
}

impl AsyncFileWriter for Hashing {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.digest.update(&bs);
        Box::pin(async move {
            self.inner
                .write_all(&bs)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            self.inner
                .shutdown()
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
}

enum Sink {
    Parquet(Box<AsyncArrowWriter<Hashing>>),
    Csv {
        w: Box<object_store::buffered::BufWriter>,
        header: bool,
    },
}

struct OpenFile {
    name: String,
    sink: Sink,
    digest: Digest,
    rows: u64,
}

fn io(action: &'static str, what: &str, e: impl std::fmt::Display) -> ExtractError {
    ExtractError::Io {
        action,
        what: what.to_owned(),
        message: e.to_string(),
    }
}

impl OpenFile {
    fn create(
        store: &Arc<dyn ObjectStore>,
        out: &Location,
        dir: &str,
        index: usize,
        format: Format,
        schema: &SchemaRef,
    ) -> Result<Self> {
        let name = format!("part-{index:05}.{}", format.extension());
        let path = out.path(&format!("{dir}/{name}"));
        let digest = Digest::new();
        let sink = match format {
            Format::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(
                        parquet::basic::ZstdLevel::try_new(3).unwrap_or_default(),
                    ))
                    .set_max_row_group_row_count(Some(128 * 1024))
                    .set_created_by("dhub extract".into())
                    .build();
                let w = Hashing {
                    inner: object_store::buffered::BufWriter::new(store.clone(), path),
                    digest: digest.clone(),
                };
                Sink::Parquet(Box::new(
                    AsyncArrowWriter::try_new(w, schema.clone(), Some(props))
                        .map_err(|e| io("creating", &name, e))?,
                ))
            }
            Format::Csv => Sink::Csv {
                w: Box::new(object_store::buffered::BufWriter::new(store.clone(), path)),
                header: true,
            },
        };
        Ok(Self {
            name,
            sink,
            digest,
            rows: 0,
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        match &mut self.sink {
            Sink::Parquet(w) => w
                .write(batch)
                .await
                .map_err(|e| io("writing", &self.name, e)),
            Sink::Csv { w, header } => {
                let mut buf = Vec::with_capacity(1 << 16);
                {
                    let mut cw = arrow::csv::WriterBuilder::new()
                        .with_header(*header)
                        .build(&mut buf);
                    cw.write(batch).map_err(|e| io("writing", &self.name, e))?;
                }
                *header = false;
                self.digest.update(&buf);
                w.write_all(&buf)
                    .await
                    .map_err(|e| io("writing", &self.name, e))
            }
        }
    }

    async fn finish(self) -> Result<ManifestFile> {
        match self.sink {
            Sink::Parquet(w) => {
                w.close().await.map_err(|e| io("closing", &self.name, e))?;
            }
            Sink::Csv { mut w, header } => {
                if header {
                    // no rows at all: still a header line
                    return Err(io("writing", &self.name, "no batches"));
                }
                w.shutdown()
                    .await
                    .map_err(|e| io("closing", &self.name, e))?;
            }
        }
        let (sha256, bytes) = self.digest.finish();
        Ok(ManifestFile {
            name: self.name,
            bytes,
            sha256,
            rows: self.rows,
        })
    }
}

/// Re-keys and normalises one batch. `first_row` is the 1-based number of its first
/// row in the extract (for error messages, which never hold a value).
fn transform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    spec: &ExtractSpec,
    project: &Pseudonymiser,
    first_row: u64,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (i, field) in schema.fields().iter().enumerate() {
        let col = batch.column(i);
        if !is_string(col.data_type()) {
            columns.push(col.clone());
            continue;
        }
        let utf8 = arrow::compute::cast(col, &DataType::Utf8).map_err(|e| ExtractError::Query {
            message: e.to_string(),
        })?;
        let s = utf8.as_string::<i32>();
        let name = field.name();
        if spec.rekey.contains_key(name) {
            let mut b = StringBuilder::with_capacity(s.len(), s.len() * 32);
            for (r, v) in s.iter().enumerate() {
                match v {
                    None => b.append_null(),
                    Some(v) if is_pseudonym(v) => {
                        let p = project.pseudonym_of_normalised(v.as_bytes());
                        b.append_value(std::str::from_utf8(&p).unwrap_or_default());
                    }
                    Some(_) => {
                        return Err(ExtractError::Pseudonyms {
                            message: format!(
                                "row {} of [rekey] column `{name}` is not a research pseudonym (32 hex characters): re-key only id columns the ingest pipeline pseudonymised, selected as they are",
                                first_row + r as u64
                            ),
                        });
                    }
                }
            }
            columns.push(Arc::new(b.finish()));
        } else {
            if let Some(r) = (0..s.len()).find(|&r| s.is_valid(r) && is_pseudonym(s.value(r))) {
                return Err(ExtractError::Pseudonyms {
                    message: format!(
                        "column `{name}` holds research pseudonyms (row {}): they would link this extract to other projects' data; map it in [rekey] to its entity, or leave it out of the query",
                        first_row + r as u64
                    ),
                });
            }
            columns.push(utf8);
        }
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| ExtractError::Query {
        message: e.to_string(),
    })
}

/// Runs an approved extract (see the module docs). `on_rows(written, total)` is called
/// as rows are written, for progress (`total` is known from the first pass).
pub async fn run(input: RunInput<'_>, on_rows: &(dyn Fn(u64, u64) + Sync)) -> Result<RunOutput> {
    let x = input.record;
    if x.status != ExtractStatus::Approved {
        return Err(ExtractError::Query {
            message: format!(
                "extract {} is {}; only an approved extract can be run",
                x.id, x.status
            ),
        });
    }
    if sha256_hex(x.spec.as_bytes()) != x.spec_sha256
        || sha256_hex(x.sql.as_bytes()) != x.sql_sha256
    {
        return Err(ExtractError::Query {
            message: format!(
                "the frozen spec or SQL of extract {} no longer matches the hash recorded at request time; the governance store was changed: revoke it and request again",
                x.id
            ),
        });
    }
    let spec_path = Path::new(&x.name).with_extension("toml");
    let spec = ExtractSpec::parse(&x.spec, &spec_path)?;
    let (ctx, plan) = input.service.plan_extract(&x.sql, &input.scope).await?;
    let schema = check_output(&spec, plan.schema().as_arrow(), &spec_path)?;

    // pass 1: equivalence classes over the quasi-identifiers, and the row count
    let classes = count_classes(&ctx, &plan, &spec).await?;
    if classes.rows > spec.max_rows {
        return Err(ExtractError::TooManyRows {
            rows: classes.rows,
            max_rows: spec.max_rows,
        });
    }
    if !classes.below.is_empty() {
        let below: u64 = classes.below.values().sum();
        return Err(ExtractError::KAnonymity {
            k: spec.k,
            quasi_identifiers: spec.quasi_identifiers.join(", "),
            classes: classes.classes,
            below,
            smallest: classes.smallest.unwrap_or(0),
            histogram: classes
                .below
                .iter()
                .map(|(s, n)| format!("{s}x{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            sizes: classes.below,
        });
    }

    // pass 2: stream, re-key, write
    let store = input.out.object_store().clone();
    let dir = extract_dir(&x.project, &x.id);
    // leftovers of an interrupted run of this extract (never released) go first
    let prefix = input.out.path(&dir);
    let mut old = store.list(Some(&prefix));
    while let Some(meta) = old.next().await {
        let meta = meta.map_err(|e| io("listing", &dir, e))?;
        store
            .delete(&meta.location)
            .await
            .map_err(|e| io("removing", meta.location.as_ref(), e))?;
    }
    drop(old);
    let project = project_pseudonymiser(input.master, &x.project)?;
    let rows_per_file = spec.rows_per_file.unwrap_or(DEFAULT_ROWS_PER_FILE);
    let df = ctx.execute_logical_plan(plan).await?;
    let mut stream = df.execute_stream().await?;
    let mut files = Vec::new();
    let mut current: Option<OpenFile> = None;
    let mut written = 0u64;
    while let Some(b) = stream.next().await {
        let b = b?;
        if b.num_rows() == 0 {
            continue;
        }
        let out = transform(&b, &schema, &spec, &project, written + 1)?;
        let mut offset = 0usize;
        while offset < out.num_rows() {
            let f = match current.as_mut() {
                Some(f) => f,
                None => current.insert(OpenFile::create(
                    &store,
                    input.out,
                    &dir,
                    files.len(),
                    spec.format,
                    &schema,
                )?),
            };
            let room = usize::try_from(rows_per_file - f.rows).unwrap_or(usize::MAX);
            let take = room.min(out.num_rows() - offset);
            f.write(&out.slice(offset, take)).await?;
            offset += take;
            written += take as u64;
            if f.rows >= rows_per_file
                && let Some(f) = current.take()
            {
                files.push(f.finish().await?);
            }
        }
        if written > spec.max_rows {
            return Err(ExtractError::TooManyRows {
                rows: written,
                max_rows: spec.max_rows,
            });
        }
        on_rows(written, classes.rows);
    }
    if current.is_none() && files.is_empty() {
        // an empty extract still has one file with the schema (a header for CSV)
        let mut f = OpenFile::create(&store, input.out, &dir, 0, spec.format, &schema)?;
        f.write(&RecordBatch::new_empty(schema.clone())).await?;
        current = Some(f);
    }
    if let Some(f) = current.take() {
        files.push(f.finish().await?);
    }
    if written != classes.rows {
        return Err(ExtractError::Query {
            message: format!(
                "the query returned {written} rows when written but {} when counted; nothing was released",
                classes.rows
            ),
        });
    }

    let fmt_ts = |t: Option<chrono::DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        extract_id: x.id.clone(),
        name: x.name.clone(),
        project: x.project.clone(),
        recipient: x.recipient.clone(),
        release: input.scope.release.clone(),
        release_tables: input.scope.tables.clone(),
        key_id: input.master.key_id().to_string(),
        project_key_id: dhub_deid::project_key_id(input.master, &x.project)
            .map_err(|e| ExtractError::Spec {
                path: Default::default(),
                message: e.to_string(),
            })?
            .to_string(),
        requested_by: x.requested_by.clone(),
        requested_at: fmt_ts(Some(x.requested)),
        approved_by: x.approved_by.clone().unwrap_or_default(),
        approved_at: fmt_ts(x.approved),
        created_at: fmt_ts(Some(Utc::now())),
        spec_sha256: x.spec_sha256.clone(),
        sql_sha256: x.sql_sha256.clone(),
        file_format: spec.format.extension().into(),
        rows: written,
        k: spec.k,
        k_achieved: classes.smallest,
        equivalence_classes: classes.classes,
        quasi_identifiers: spec.quasi_identifiers.clone(),
        rekeyed: spec.rekey.clone(),
        schema: schema
            .fields()
            .iter()
            .map(|f| ManifestColumn {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect(),
        files,
        signature: SignatureInfo {
            algorithm: "Ed25519".into(),
            public_key: input.signer.public_hex(),
            file: SIGNATURE_FILE.into(),
        },
    };
    let bytes = manifest.to_bytes()?;
    let sig = input.signer.sign(&bytes);
    store
        .put(
            &input.out.path(&format!("{dir}/{MANIFEST_FILE}")),
            PutPayload::from(bytes.clone()),
        )
        .await
        .map_err(|e| io("writing", MANIFEST_FILE, e))?;
    store
        .put(
            &input.out.path(&format!("{dir}/{SIGNATURE_FILE}")),
            PutPayload::from(sig.to_vec()),
        )
        .await
        .map_err(|e| io("writing", SIGNATURE_FILE, e))?;
    Ok(RunOutput {
        manifest,
        manifest_json: String::from_utf8_lossy(&bytes).into_owned(),
        location: input.out.child_url(&dir).to_string(),
    })
}
