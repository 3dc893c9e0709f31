//! Delta Lake tables under the store root: open at a version, stream batches into one
//! atomic commit, list tables.
//!
//! Data files are zstd Parquet, written while batches arrive (memory stays bounded by
//! the open row group), rolled at a target file size. Nothing is visible until the one
//! commit at the end: a run that fails or is killed before it leaves the table at its
//! previous version (unreferenced files are left for `VACUUM`).
//!
//! Text and binary values that are not dictionary-encoded (a table's own pseudonymised
//! ids, or text whose dictionary outgrew its limit) are written
//! `DELTA_LENGTH_BYTE_ARRAY`: all lengths first, delta-packed, then the values' bytes
//! back to back, so zstd sees only the characters. For 32-hex pseudonyms that is a
//! smaller column and much less compression work than `PLAIN`, whose 4-byte length
//! before each value breaks up the text (a 5.3M-row ingest: 6% less CPU, a 4% smaller
//! store; BENCHMARKS.md). It is a standard Parquet encoding: DataFusion, the Python
//! `deltalake` package, polars and DuckDB read it in the test suite.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, StructType};
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::TryStreamExt;
use object_store::path::Path;
use url::Url;

use crate::error::{Result, StoreError};
use crate::location::root_store;

/// How a write replaces or extends the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// The commit replaces every row of the table (history is kept).
    #[default]
    Overwrite,
    /// The commit adds rows; the schema must match the table's.
    Append,
}

/// Parquet and file-size settings of a write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Roll to a new data file once one reaches this many bytes.
    pub target_file_size: u64,
    /// zstd level (1-22). Level 1 compresses de-identified tables (hex pseudonyms,
    /// codes, dates) within a few percent of level 3 at about half the CPU.
    pub zstd_level: i32,
    /// Rows per Parquet row group (the writer holds one open row group in memory).
    pub row_group_rows: usize,
    /// Per-column settings, by column name (see [`ColumnWriteOptions`]).
    pub columns: HashMap<String, ColumnWriteOptions>,
}

/// Parquet settings of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColumnWriteOptions {
    /// Dictionary encoding: worth it for repeated values, wasted work for unique ones
    /// (a table's own pseudonymised ids), where the writer builds a dictionary only to
    /// throw it away at its size limit.
    pub dictionary: Option<bool>,
    /// Min/max statistics: useless for pseudonyms (uniformly random hex), useful for
    /// dates, numbers and codes.
    pub statistics: Option<bool>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            target_file_size: 128 * 1024 * 1024,
            zstd_level: 1,
            // two or more row groups from 64K rows on, so a query engine can scan even a
            // modest table (100,000 patients) on more than one core
            row_group_rows: 64 * 1024,
            columns: HashMap::new(),
        }
    }
}

/// What one commit wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The table's new version.
    pub version: u64,
    /// Data files added.
    pub files: usize,
    /// Bytes of data files added.
    pub bytes: u64,
    /// Rows added.
    pub rows: u64,
}

/// Object stores for deltalake: our shared in-memory stores and cloud clients, so that
/// every open of a URL in this process sees the same objects.
struct DhubStoreFactory;

impl ObjectStoreFactory for DhubStoreFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        root_store(url).map_err(|e| DeltaTableError::InvalidTableLocation(e.to_string()))
    }
}

/// The default (conditional-put) log store for the cloud schemes, whose object stores
/// all support create-only puts (`PutMode::Create`).
struct DhubLogStoreFactory;

impl LogStoreFactory for DhubLogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Registers dhub's object stores with deltalake (once per process).
pub(crate) fn register_with_deltalake() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for scheme in ["memory://", "s3://", "az://", "gs://"] {
            if let Ok(u) = Url::parse(scheme) {
                object_store_factories().insert(u.clone(), Arc::new(DhubStoreFactory));
                logstore_factories().insert(u, Arc::new(DhubLogStoreFactory));
            }
        }
    });
}

/// Opens the table at `url` (newest version, or `version`); `None` when no table exists.
pub async fn open_table(url: &Url, name: &str, version: Option<u64>) -> Result<Option<DeltaTable>> {
    register_with_deltalake();
    // No `_delta_log/` entry: no table (deltalake refuses a missing local directory
    // with a location error rather than "not a table").
    let (os, base) = root_store(url)?;
    let log = base.join("_delta_log");
    let first = os
        .list(Some(&log))
        .try_next()
        .await
        .map_err(|e| StoreError::os(&log, e))?;
    if first.is_none() {
        return Ok(None);
    }
    let mut b = DeltaTableBuilder::from_url(url.clone()).map_err(|e| StoreError::delta(name, e))?;
    if let Some(v) = version {
        b = b.with_version(v);
    }
    match b.load().await {
        Ok(t) => Ok(Some(t)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(DeltaTableError::InvalidVersion(_)) if version.is_some() => Err(StoreError::Write {
            table: name.to_owned(),
            message: format!("version {} does not exist", version.unwrap_or_default()),
        }),
        Err(e) => Err(StoreError::delta(name, e)),
    }
}

/// A write in progress: batches stream into Parquet files; [`TableWrite::commit`] makes
/// them visible in one Delta commit, dropping it without a commit leaves the table as it
/// was.
pub struct TableWrite {
    name: String,
    url: Url,
    schema: SchemaRef,
    existing: Option<DeltaTable>,
    writer: RecordBatchWriter,
    rows: u64,
}

impl std::fmt::Debug for TableWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWrite")
            .field("table", &self.name)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

fn writer_properties(
    opts: &WriteOptions,
    schema: &arrow_schema::Schema,
) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(opts.zstd_level).map_err(|e| StoreError::Write {
        table: String::new(),
        message: format!("zstd level {}: {e}", opts.zstd_level),
    })?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(opts.row_group_rows.max(1024)))
        .set_created_by(format!("dhub {}", env!("CARGO_PKG_VERSION")));
    for f in schema.fields() {
        if is_byte_array(f.data_type()) {
            // (the encoding of values not dictionary-encoded: see the module docs)
            b = b.set_column_encoding(
                deltalake::parquet::schema::types::ColumnPath::from(f.name().as_str()),
                deltalake::parquet::basic::Encoding::DELTA_LENGTH_BYTE_ARRAY,
            );
        }
    }
    for (name, c) in &opts.columns {
        let path = deltalake::parquet::schema::types::ColumnPath::from(name.as_str());
        if let Some(d) = c.dictionary {
            b = b.set_column_dictionary_enabled(path.clone(), d);
        }
        if let Some(st) = c.statistics {
            b = b.set_column_statistics_enabled(
                path,
                if st {
                    deltalake::parquet::file::properties::EnabledStatistics::Page
                } else {
                    deltalake::parquet::file::properties::EnabledStatistics::None
                },
            );
        }
    }
    Ok(b.build())
}

/// Whether a column of this type is a Parquet `BYTE_ARRAY` column.
fn is_byte_array(t: &arrow_schema::DataType) -> bool {
    use arrow_schema::DataType::*;
    matches!(
        t,
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView
    )
}

impl TableWrite {
    pub(crate) async fn begin(
        name: &str,
        url: Url,
        schema: SchemaRef,
        mode: WriteMode,
        opts: &WriteOptions,
    ) -> Result<Self> {
        let existing = open_table(&url, name, None).await?;
        if url.scheme() == "file"
            && let Ok(dir) = url.to_file_path()
        {
            crate::private::create_private_dir_all(&dir).map_err(|e| StoreError::Write {
                table: name.to_owned(),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        if let (Some(t), WriteMode::Append) = (&existing, mode) {
            let current = t
                .snapshot()
                .map_err(|e| StoreError::delta(name, e))?
                .snapshot()
                .arrow_schema();
            if !same_fields(&current, &schema) {
                return Err(StoreError::Write {
                    table: name.to_owned(),
                    message: "the new rows' columns differ from the table's; append needs the same columns and types (use write mode `overwrite` to replace the table)".into(),
                });
            }
        }
        let writer = RecordBatchWriter::try_new(url.as_str(), schema.clone(), None, None)
            .map_err(|e| StoreError::delta(name, e))?
            .with_writer_properties(writer_properties(opts, &schema)?)
            .with_target_file_size(opts.target_file_size);
        Ok(Self {
            name: name.to_owned(),
            url,
            schema,
            existing,
            writer,
            rows: 0,
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.name
    }

    /// Changes the Parquet settings before the first row is written (e.g. per-column
    /// choices made from the first batch). Refused once rows were written.
    pub fn tune(&mut self, opts: &WriteOptions) -> Result<()> {
        if self.rows > 0 {
            return Err(StoreError::Write {
                table: self.name.clone(),
                message: "Parquet settings can only change before the first row".into(),
            });
        }
        self.writer =
            RecordBatchWriter::try_new(self.url.as_str(), self.schema.clone(), None, None)
                .map_err(|e| StoreError::delta(&self.name, e))?
                .with_writer_properties(writer_properties(opts, &self.schema)?)
                .with_target_file_size(opts.target_file_size);
        Ok(())
    }

    /// Streams one batch into the open data file.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .await
            .map_err(|e| StoreError::delta(&self.name, e))
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finishes the data files (nothing is visible yet) and returns the staged write,
    /// to be committed later with [`Staged::commit`]. Lets a multi-table run write every
    /// table before it commits any.
    pub async fn finish(mut self) -> Result<Staged> {
        let adds = self
            .writer
            .flush()
            .await
            .map_err(|e| StoreError::delta(&self.name, e))?;
        Ok(Staged {
            name: self.name,
            url: self.url,
            schema: self.schema,
            existing: self.existing,
            adds,
            rows: self.rows,
        })
    }

    /// Finishes the files and commits them in one Delta commit.
    pub async fn commit(
        self,
        mode: WriteMode,
        app_metadata: BTreeMap<String, serde_json::Value>,
    ) -> Result<Committed> {
        self.finish().await?.commit(mode, app_metadata).await
    }

    /// Abandons the write: the table stays at its previous version.
    pub fn abort(mut self) {
        self.writer.reset();
    }
}

/// Data files written but not yet committed: invisible to every reader.
pub struct Staged {
    name: String,
    url: Url,
    schema: SchemaRef,
    existing: Option<DeltaTable>,
    adds: Vec<deltalake::kernel::Add>,
    rows: u64,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("table", &self.name)
            .field("files", &self.adds.len())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl Staged {
    /// The table's name.
    pub fn table(&self) -> &str {
        &self.name
    }

    /// Rows staged.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of the staged data files.
    pub fn bytes(&self) -> u64 {
        self.adds
            .iter()
            .map(|a| u64::try_from(a.size).unwrap_or(0))
            .sum()
    }

    /// Commits the staged files in one Delta commit. `app_metadata` is recorded in the
    /// commit's `commitInfo` (e.g. key id and pipeline spec hash).
    pub async fn commit(
        self,
        mode: WriteMode,
        app_metadata: BTreeMap<String, serde_json::Value>,
    ) -> Result<Committed> {
        let name = self.name.clone();
        let d = |e| StoreError::delta(&name, e);
        let files = self.adds.len();
        let bytes = self.bytes();
        let app: HashMap<String, serde_json::Value> = app_metadata.into_iter().collect();
        let mut actions: Vec<Action> = self.adds.into_iter().map(Action::Add).collect();
        let version = match self.existing {
            None => {
                let columns = <StructType as TryFromArrow<&arrow_schema::Schema>>::try_from_arrow(
                    self.schema.as_ref(),
                )
                .map_err(|e| d(DeltaTableError::from(e)))?;
                let table = deltalake::operations::create::CreateBuilder::new()
                    .with_location(self.url.as_str())
                    .with_table_name(&self.name)
                    .with_columns(columns.fields().cloned())
                    .with_actions(actions)
                    .with_commit_properties(
                        deltalake::kernel::transaction::CommitProperties::default()
                            .with_metadata(app),
                    )
                    .await
                    .map_err(d)?;
                table.version().unwrap_or(0)
            }
            Some(table) => {
                let snapshot = table.snapshot().map_err(d)?;
                let save_mode = match mode {
                    WriteMode::Overwrite => SaveMode::Overwrite,
                    WriteMode::Append => SaveMode::Append,
                };
                if mode == WriteMode::Overwrite {
                    let removes: Vec<Action> = table
                        .get_active_add_actions_by_partitions(&[])
                        .map_ok(|f| Action::Remove(f.remove_action(true)))
                        .try_collect()
                        .await
                        .map_err(d)?;
                    actions.extend(removes);
                    if !same_fields(&snapshot.snapshot().arrow_schema(), &self.schema) {
                        let columns =
                            <StructType as TryFromArrow<&arrow_schema::Schema>>::try_from_arrow(
                                self.schema.as_ref(),
                            )
                            .map_err(|e| d(DeltaTableError::from(e)))?;
                        let meta = deltalake::kernel::new_metadata(
                            &columns,
                            Vec::<String>::new(),
                            Vec::<(String, String)>::new(),
                        )
                        .map_err(|e| d(e.into()))?;
                        actions.push(Action::Metadata(meta));
                    }
                }
                let done = CommitBuilder::default()
                    .with_actions(actions)
                    .with_app_metadata(app)
                    .build(
                        Some(snapshot),
                        table.log_store(),
                        DeltaOperation::Write {
                            mode: save_mode,
                            partition_by: None,
                            predicate: None,
                        },
                    )
                    .await
                    .map_err(d)?;
                done.version()
            }
        };
        Ok(Committed {
            version,
            files,
            bytes,
            rows: self.rows,
        })
    }
}

fn same_fields(a: &arrow_schema::Schema, b: &arrow_schema::Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use deltalake::parquet::basic::Encoding;
    use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};

    /// The encodings of each column of the data files under `dir`, by column name.
    fn encodings(dir: &std::path::Path) -> BTreeMap<String, Vec<Encoding>> {
        let mut out: BTreeMap<String, Vec<Encoding>> = BTreeMap::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "parquet") {
                continue;
            }
            let r = SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
            for rg in r.metadata().row_groups() {
                for c in rg.columns() {
                    out.entry(c.column_path().string())
                        .or_default()
                        .extend(c.encodings());
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn text_without_a_dictionary_is_written_delta_length_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path().to_str().unwrap()).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("code", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let rows = 5000;
        let ids: Vec<String> = (0..rows).map(|i| format!("{:032x}", i * 7919)).collect();
        let codes: Vec<Option<&str>> = (0..rows)
            .map(|i| (i % 10 != 0).then_some(["a", "bb", "ccc"][i % 3]))
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(&ids)) as ArrayRef,
                Arc::new(StringArray::from(codes.clone())),
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
            ],
        )
        .unwrap();
        let mut opts = WriteOptions::default();
        opts.columns.insert(
            "id".into(),
            ColumnWriteOptions {
                dictionary: Some(false),
                statistics: Some(false),
            },
        );
        let mut w = store
            .begin_write("t", schema, WriteMode::Overwrite, &opts)
            .await
            .unwrap();
        w.write(batch).await.unwrap();
        w.commit(WriteMode::Overwrite, BTreeMap::new())
            .await
            .unwrap();

        let enc = encodings(&dir.path().join("t"));
        assert!(
            enc["id"].contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY),
            "{enc:?}"
        );
        assert!(!enc["id"].contains(&Encoding::PLAIN), "{enc:?}");
        // repeated text keeps its dictionary; numbers are untouched
        assert!(enc["code"].contains(&Encoding::RLE_DICTIONARY), "{enc:?}");
        assert!(
            !enc["n"].contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY),
            "{enc:?}"
        );

        use arrow_array::cast::AsArray;
        let mut got_ids: Vec<String> = Vec::new();
        for b in store.read_table("t", None).await.unwrap() {
            let c = b.column(0);
            if let Some(a) = c.as_string_opt::<i32>() {
                got_ids.extend(a.iter().flatten().map(str::to_owned));
            } else if let Some(a) = c.as_string_view_opt() {
                got_ids.extend(a.iter().flatten().map(str::to_owned));
            } else {
                panic!("id is {}", c.data_type());
            }
        }
        assert_eq!(got_ids, ids);
    }
}
