//! # dhub-sqllogictest: golden files for dhub's SQL behaviour
//!
//! `sql/test_files/*.slt` ([sqllogictest] format) run through the same governed path as
//! the server ([`dhub_query::QueryService`]: guard, session over a release, disclosure
//! control, limits) on a fixed dataset: a 300-patient Synthea sample generated with seed
//! 5, ingested with `pipelines/synthea.toml` under a fixed test key, released as `r1`.
//! Results are therefore stable to the byte, pseudonyms included.
//!
//! A file's project settings come from a header line:
//!
//! ```text
//! # dhub: mode=aggregate min_cell=10 rounding=5 tables=all
//! ```
//!
//! (`mode` aggregate|record, `min_cell`, `suppression` remove|null, `rounding`, `dominance=N,K`, `p_ratio`,
//! `tables` = all or a comma list.) Refusals are pinned with `statement error <regex>`
//! or `query error <regex>` against the researcher-facing message.
//!
//! ```text
//! cargo test -p dhub-sqllogictest                      # check every file
//! cargo test -p dhub-sqllogictest -- views             # files whose name contains "views"
//! cargo test -p dhub-sqllogictest -- --complete        # rewrite expected results
//! ```
//!
//! [sqllogictest]: https://www.sqlite.org/sqllogictest/doc/trunk/about.wiki

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dhub_govern::{Approval, Mode, OutputPolicy};
use dhub_query::{Limits, QueryError, QueryRequest, QueryService, Scope};
use sqllogictest::{DBOutput, DefaultColumnType};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fixed test key (the test vectors' master key).
pub const KEY_HEX: &str = "64687562207465737420766563746f7273206f6e6c792c206e65766572207573";

/// The generated, ingested and released dataset every file runs against.
#[derive(Debug)]
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// The query service over its store.
    pub service: Arc<QueryService>,
    /// Table → version in release `r1`.
    pub release: BTreeMap<String, u64>,
}

/// Builds the fixture: synthesise, ingest, release.
pub async fn fixture() -> Result<Fixture, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let raw = dir.path().join("raw");
    dhub_synth::generate(
        &dhub_synth::SynthConfig {
            format: dhub_synth::Format::Synthea,
            patients: 300,
            seed: 5,
            out: raw.clone(),
            defects: 0.0,
            gzip: false,
        },
        &|_| {},
    )
    .map_err(|e| e.to_string())?;
    let key = dhub_deid::MasterKey::from_hex(KEY_HEX).map_err(|e| e.to_string())?;
    let pipeline = dhub_ingest::Pipeline::load(&repo().join("pipelines/synthea.toml"))
        .map_err(|e| e.to_string())?;
    let store_url = format!("file://{}", dir.path().join("store").display());
    let opts = dhub_ingest::IngestOptions {
        store: store_url.clone(),
        source: raw.display().to_string(),
        quarantine: format!("file://{}", dir.path().join("quarantine").display()),
        opt_out: None,
        write: Default::default(),
        max_reject_rate: None,
    };
    dhub_ingest::run(&pipeline, &key, &opts, &dhub_ingest::NoProgress)
        .await
        .map_err(|e| e.to_string())?;
    let store = dhub_store::Store::open(&store_url).map_err(|e| e.to_string())?;
    let release = store
        .release_of_current("r1")
        .await
        .map_err(|e| e.to_string())?;
    let views = dhub_query::load_views(&repo().join("sql/views")).map_err(|e| e.detail)?;
    let limits = Limits {
        time: std::time::Duration::from_secs(120),
        ..Limits::default()
    };
    Ok(Fixture {
        _dir: dir,
        service: Arc::new(QueryService::new(store, views, limits)),
        release: release.tables,
    })
}

/// Reads a file's `# dhub:` header into a project scope.
pub fn scope_of(text: &str, release: &BTreeMap<String, u64>) -> Result<Scope, String> {
    let mut policy = OutputPolicy::default();
    let mut tables: Option<Vec<String>> = None;
    if let Some(line) = text.lines().find_map(|l| l.trim().strip_prefix("# dhub:")) {
        for kv in line.split_whitespace() {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("bad header item `{kv}`"))?;
            let num = |v: &str| {
                v.parse::<f64>()
                    .map_err(|_| format!("`{k}` needs a number"))
            };
            match k {
                "mode" => {
                    policy.mode = v.parse::<Mode>().map_err(|e| e.to_string())?;
                    if policy.mode == Mode::Record {
                        policy.approval = Some(Approval {
                            by: "test".into(),
                            reason: "golden files".into(),
                        });
                    }
                }
                "min_cell" => policy.min_cell = num(v)? as u32,
                "suppression" => policy.suppression = v.parse().map_err(|e| format!("{e}"))?,
                "rounding" => policy.rounding = num(v)? as u32,
                "p_ratio" => policy.p_ratio = num(v)?,
                "dominance" => {
                    let (n, kk) = v.split_once(',').ok_or("dominance=N,K")?;
                    policy.dominance_n = num(n)? as u32;
                    policy.dominance_k = num(kk)?;
                }
                "tables" if v != "all" => tables = Some(v.split(',').map(str::to_owned).collect()),
                "tables" => {}
                other => return Err(format!("unknown header item `{other}`")),
            }
        }
    }
    let tables = release
        .iter()
        .filter(|(t, _)| tables.as_ref().is_none_or(|ts| ts.contains(t)))
        .map(|(t, v)| (t.clone(), *v))
        .collect();
    Ok(Scope {
        project: "golden".into(),
        release: "r1".into(),
        tables,
        policy,
    })
}

/// One file's connection: the service and the file's scope.
#[derive(Debug, Clone)]
pub struct Db {
    /// The service.
    pub service: Arc<QueryService>,
    /// The scope.
    pub scope: Scope,
}

fn cell(a: &dyn Array, f: &ArrayFormatter<'_>, i: usize) -> String {
    if a.is_null(i) {
        return "NULL".into();
    }
    match a.data_type() {
        DataType::Float32 | DataType::Float64 => {
            let v: f64 = f.value(i).to_string().parse().unwrap_or(f64::NAN);
            let s = format!("{v:.6}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s.is_empty() || s == "-" {
                "0".into()
            } else {
                s.to_owned()
            }
        }
        _ => {
            let s = f.value(i).to_string();
            if s.is_empty() { "(empty)".into() } else { s }
        }
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = QueryError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, QueryError> {
        let out = self
            .service
            .run(&QueryRequest {
                id: "golden".into(),
                sql: sql.to_owned(),
                scope: self.scope.clone(),
            })
            .await?;
        let types = out
            .schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let opts = FormatOptions::default();
        let mut rows = Vec::with_capacity(out.rows);
        for b in &out.batches {
            let fmts: Vec<ArrayFormatter<'_>> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<Result<_, _>>()
                .map_err(|e| QueryError::internal(e.to_string()))?;
            for i in 0..b.num_rows() {
                rows.push(
                    b.columns()
                        .iter()
                        .zip(&fmts)
                        .map(|(c, f)| cell(c.as_ref(), f, i))
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "dhub"
    }
}
