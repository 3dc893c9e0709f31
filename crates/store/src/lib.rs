//! # dhub-store: the research store
//!
//! Every byte the hub stores goes through one object-store URL: `file://` (relative or
//! absolute; the default is `file://./dhub-data/store`), `memory://NAME` (per process,
//! for tests), `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`.
//! Credentials and endpoints come from the environment exactly as `object_store` reads
//! them (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_USE_EMULATOR`, `GOOGLE_SERVICE_ACCOUNT`, …), never from the URL.
//!
//! Under the root:
//!
//! ```text
//! <table>/_delta_log/…   one Delta Lake table per research table (zstd Parquet)
//! _releases/<name>.json  releases (create-only)
//! _audit/<seq>.json      signed checkpoints of the audit log (create-only; `dhub audit checkpoint`)
//! ```
//!
//! ```no_run
//! # async fn demo(batch: arrow_array::RecordBatch) -> Result<(), dhub_store::StoreError> {
//! use dhub_store::{Store, WriteMode, WriteOptions};
//! let store = Store::open("file://./dhub-data/store")?;
//! let mut w = store.begin_write("patients", batch.schema(), WriteMode::Overwrite, &WriteOptions::default()).await?;
//! w.write(batch).await?;
//! let committed = w.commit(WriteMode::Overwrite, Default::default()).await?;
//! println!("patients is now at version {}", committed.version);
//! # Ok(()) }
//! ```

mod delta;
mod error;
mod location;
mod objects;
pub mod private;
mod release;

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

pub use delta::{ColumnWriteOptions, Committed, Staged, TableWrite, WriteMode, WriteOptions};
pub use deltalake::DeltaTable;
pub use error::{Result, StoreError};
pub use location::{Location, normalise_url};
pub use release::{RELEASE_FORMAT, Release, valid_name};

/// An async Parquet reader over one object.
///
/// `ParquetObjectReader` is deprecated in parquet 59 in favour of readers that run their
/// I/O on a dedicated runtime; dhub reads one file at a time per reader, on the caller's
/// runtime, which is what this reader does well. Kept in one place so the switch is one
/// change.
#[allow(deprecated)]
pub fn parquet_reader(
    store: std::sync::Arc<dyn ObjectStore>,
    path: object_store::path::Path,
) -> parquet::arrow::async_reader::ParquetObjectReader {
    parquet::arrow::async_reader::ParquetObjectReader::new(store, path)
}

/// Where releases live under the store root.
pub const RELEASES_DIR: &str = "_releases";

/// The research store at one URL.
#[derive(Debug, Clone)]
pub struct Store {
    loc: Location,
}

/// The dhub metadata recorded in a table commit (`commitInfo.dhub`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitTag {
    /// Key id of the master key that made the pseudonyms.
    pub key_id: String,
    /// Pipeline spec name.
    pub pipeline: String,
    /// SHA-256 of the pipeline spec.
    pub spec_sha256: String,
    /// The ingest run that wrote the commit.
    pub run_id: String,
    /// The output column holding the person pseudonym, if the table is person-level.
    pub person_column: Option<String>,
}

impl CommitTag {
    /// The commit's app metadata for [`TableWrite::commit`].
    pub fn app_metadata(&self) -> BTreeMap<String, serde_json::Value> {
        let mut m = BTreeMap::new();
        m.insert(
            "dhub".to_owned(),
            serde_json::to_value(self).unwrap_or_default(),
        );
        m
    }
}

impl Store {
    /// Opens (and for `file://`, creates) the store at `url`.
    pub fn open(url: &str) -> Result<Self> {
        delta::register_with_deltalake();
        Ok(Self {
            loc: Location::parse(url)?,
        })
    }

    /// The store's normalised root URL.
    pub fn url(&self) -> &Url {
        self.loc.url()
    }

    /// The store's location (object store and prefix).
    pub fn location(&self) -> &Location {
        &self.loc
    }

    fn check_name(kind: &'static str, name: &str) -> Result<()> {
        if valid_name(name) {
            Ok(())
        } else {
            Err(StoreError::BadName {
                kind,
                name: name.to_owned(),
            })
        }
    }

    /// The URL of table `name`.
    pub fn table_url(&self, name: &str) -> Result<Url> {
        Self::check_name("table", name)?;
        Ok(self.loc.child_url(name))
    }

    /// Opens table `name` at its newest version or at `version`; `None` if it does not exist.
    pub async fn table(&self, name: &str, version: Option<u64>) -> Result<Option<DeltaTable>> {
        delta::open_table(&self.table_url(name)?, name, version).await
    }

    /// The newest version of table `name`, if it exists.
    pub async fn table_version(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.table(name, None).await?.and_then(|t| t.version()))
    }

    /// The names of the tables in the store, sorted.
    pub async fn tables(&self) -> Result<Vec<String>> {
        let store = self.loc.object_store();
        let listing = store
            .list_with_delimiter(Some(self.loc.prefix()))
            .await
            .map_err(|e| StoreError::os(self.url(), e))?;
        let mut names = Vec::new();
        for dir in listing.common_prefixes {
            let Some(name) = dir.filename().map(str::to_owned) else {
                continue;
            };
            if !valid_name(&name) {
                continue;
            }
            let log = dir.clone().join("_delta_log");
            let mut entries = store.list(Some(&log));
            if entries
                .next()
                .await
                .transpose()
                .map_err(|e| StoreError::os(&log, e))?
                .is_some()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Starts a write of table `name` (created on commit if it does not exist).
    pub async fn begin_write(
        &self,
        name: &str,
        schema: SchemaRef,
        mode: WriteMode,
        opts: &WriteOptions,
    ) -> Result<TableWrite> {
        let url = self.table_url(name)?;
        TableWrite::begin(name, url, schema, mode, opts).await
    }

    /// The dhub tag of the commit that made `version` of table `name`, if any.
    pub async fn commit_tag(&self, name: &str, version: u64) -> Result<Option<CommitTag>> {
        let Some(table) = self.table(name, Some(version)).await? else {
            return Ok(None);
        };
        let history: Vec<_> = table
            .history(Some(1))
            .try_collect()
            .await
            .map_err(|e| StoreError::delta(name, e))?;
        Ok(history
            .into_iter()
            .next()
            .and_then(|ci| ci.info.get("dhub").cloned())
            .and_then(|v| serde_json::from_value(v).ok()))
    }

    /// Reads table `name` at `version` (or newest) as Arrow batches, file by file.
    pub async fn read_table(&self, name: &str, version: Option<u64>) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(self.scan(name, version).await?);
        while let Some(b) = stream.try_next().await? {
            out.push(b);
        }
        Ok(out)
    }

    /// Streams table `name` at `version` (or newest), one Parquet file after another.
    pub async fn scan(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> Result<impl futures::Stream<Item = Result<RecordBatch>> + use<>> {
        let table = self
            .table(name, version)
            .await?
            .ok_or_else(|| StoreError::NoSuchTable {
                table: name.to_owned(),
                store: self.url().to_string(),
            })?;
        let files: Vec<String> = table
            .get_active_add_actions_by_partitions(&[])
            .map_ok(|f| f.path().to_string())
            .try_collect()
            .await
            .map_err(|e| StoreError::delta(name, e))?;
        let store = self.loc.object_store().clone();
        let base = self.loc.path(name);
        let table_name = name.to_owned();
        let stream = futures::stream::iter(files)
            .then(move |f| {
                let store = store.clone();
                let path = object_store::path::Path::parse(format!("{base}/{f}"));
                let table_name = table_name.clone();
                async move {
                    let path = path.map_err(|e| StoreError::Write {
                        table: table_name.clone(),
                        message: e.to_string(),
                    })?;
                    let reader = parquet_reader(store, path);
                    let s = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
                        .await
                        .map_err(|e| StoreError::Write {
                            table: table_name.clone(),
                            message: e.to_string(),
                        })?
                        .build()
                        .map_err(|e| StoreError::Write {
                            table: table_name.clone(),
                            message: e.to_string(),
                        })?;
                    Ok::<_, StoreError>(s.map_err(move |e| StoreError::Write {
                        table: table_name.clone(),
                        message: e.to_string(),
                    }))
                }
            })
            .try_flatten();
        Ok(stream)
    }

    /// Creates a release document; fails with [`StoreError::ReleaseExists`] if the name
    /// is taken (create-only put: never overwritten, even by a concurrent writer).
    pub async fn create_release(&self, release: &Release) -> Result<()> {
        Self::check_name("release", &release.name)?;
        let path = self
            .loc
            .path(&format!("{RELEASES_DIR}/{}.json", release.name));
        let mut json = serde_json::to_vec_pretty(release).map_err(|e| StoreError::Json {
            what: format!("release {}", release.name),
            source: e,
        })?;
        json.push(b'\n');
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .loc
            .object_store()
            .put_opts(&path, PutPayload::from(Bytes::from(json)), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(StoreError::ReleaseExists {
                name: release.name.clone(),
            }),
            Err(e) => Err(StoreError::os(path, e)),
        }
    }

    /// Builds release `name` from the newest version of every table in the store: the
    /// key id and pipeline spec hashes come from each table's newest dhub commit. Refuses
    /// an empty store and a store whose tables were made with different master keys.
    /// Nothing is written; pass the result to [`Store::create_release`].
    pub async fn release_of_current(&self, name: &str) -> Result<Release> {
        Self::check_name("release", name)?;
        let names = self.tables().await?;
        if names.is_empty() {
            return Err(StoreError::EmptyStore {
                store: self.url().to_string(),
            });
        }
        let mut tables = BTreeMap::new();
        let mut pipelines = BTreeMap::new();
        let mut key_ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in names {
            let Some(version) = self.table_version(&t).await? else {
                continue;
            };
            if let Some(tag) = self.commit_tag(&t, version).await? {
                key_ids.entry(tag.key_id).or_default().push(t.clone());
                pipelines.insert(tag.pipeline, tag.spec_sha256);
            } else {
                key_ids.entry(String::new()).or_default().push(t.clone());
            }
            tables.insert(t, version);
        }
        if key_ids.len() != 1 || key_ids.contains_key("") {
            let detail = key_ids
                .iter()
                .map(|(k, ts)| {
                    format!(
                        "{}: {}",
                        if k.is_empty() {
                            "not written by dhub ingest"
                        } else {
                            k
                        },
                        ts.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(StoreError::MixedKeys { detail });
        }
        let key_id = key_ids.into_keys().next().unwrap_or_default();
        Ok(Release {
            format: RELEASE_FORMAT,
            name: name.to_owned(),
            created: chrono::Utc::now(),
            key_id,
            tables,
            pipelines,
        })
    }

    /// Reads release `name`.
    pub async fn release(&self, name: &str) -> Result<Release> {
        Self::check_name("release", name)?;
        let path = self.loc.path(&format!("{RELEASES_DIR}/{name}.json"));
        let bytes = match self.loc.object_store().get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| StoreError::os(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NoSuchRelease {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(StoreError::os(path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Json {
            what: format!("release document {path}"),
            source: e,
        })
    }

    /// All releases, oldest first.
    pub async fn releases(&self) -> Result<Vec<Release>> {
        let dir = self.loc.path(RELEASES_DIR);
        let metas: Vec<_> = self
            .loc
            .object_store()
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| StoreError::os(&dir, e))?;
        let mut out = Vec::new();
        for m in metas {
            if let Some(name) = m.location.filename().and_then(|f| f.strip_suffix(".json")) {
                out.push(self.release(name).await?);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }
}
