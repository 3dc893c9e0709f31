//! The governed path of one query, in process: guard → session with only the project's
//! tables → plan → policy → execute under limits. Query workers ([`crate::worker`]) run
//! this; so do the golden-file tests.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use dhub_govern::OutputPolicy;
use dhub_store::{DeltaTable, Store};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, QueryError, from_datafusion};
use crate::guard::{self, Catalog, GuardLimits};
use crate::sdc::{self, Disclosure};

/// Per-query resource limits (server configuration).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Limits {
    /// Wall time for planning and execution.
    pub time: Duration,
    /// Memory the engine may track per query (sorts, joins, aggregates), bytes.
    pub memory_bytes: usize,
    /// Most result rows.
    pub max_rows: usize,
    /// Most result bytes (Arrow in memory).
    pub max_bytes: usize,
    /// Statement size bounds.
    pub guard: GuardLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(60),
            memory_bytes: 1 << 30,
            max_rows: 1_000_000,
            max_bytes: 512 << 20,
            guard: GuardLimits::default(),
        }
    }
}

/// What a project may see: its release's versions of the granted tables, and its
/// output policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scope {
    /// Project id.
    pub project: String,
    /// Release name.
    pub release: String,
    /// Granted table → Delta version in the release.
    pub tables: BTreeMap<String, u64>,
    /// Disclosure control.
    pub policy: OutputPolicy,
}

impl Scope {
    /// The scope of `project`: `release`'s versions of the tables it is granted, and its
    /// output policy.
    pub fn for_project(project: &dhub_govern::Project, release: &dhub_store::Release) -> Self {
        let tables = release
            .tables
            .iter()
            .filter(|(t, _)| project.tables.allows(t))
            .map(|(t, v)| (t.clone(), *v))
            .collect();
        Scope {
            project: project.id.clone(),
            release: release.name.clone(),
            tables,
            policy: project.policy.clone(),
        }
    }
}

/// One query to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryRequest {
    /// Request id (also the query id).
    pub id: String,
    /// The SQL text.
    pub sql: String,
    /// The project's scope.
    pub scope: Scope,
}

/// A finished query.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Result schema.
    pub schema: SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
    /// Row count.
    pub rows: usize,
    /// Arrow bytes in memory.
    pub bytes: usize,
    /// What disclosure control did.
    pub disclosure: Disclosure,
}

/// A column of a table or view, for `GET /v1/tables`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Name.
    pub name: String,
    /// Arrow type, as text.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A table or view a project may query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Name.
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    /// Description (views: their leading comment).
    pub description: String,
    /// The column holding the person pseudonym, if person-level.
    pub person_column: Option<String>,
    /// Columns.
    pub columns: Vec<ColumnInfo>,
}

/// A curated researcher view from `sql/views/<name>.sql`.
#[derive(Debug, Clone)]
pub struct View {
    /// Name (the file stem).
    pub name: String,
    /// The SELECT.
    pub sql: String,
    /// Its leading `--` comment lines.
    pub description: String,
}

/// Reads `dir/*.sql` as views (none when the directory does not exist).
pub fn load_views(dir: &Path) -> Result<Vec<View>, QueryError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(QueryError::internal(format!(
                "reading views in {}: {e}",
                dir.display()
            )));
        }
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "sql") {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            if dhub_store::valid_name(&name) {
                let sql = std::fs::read_to_string(&p).map_err(|e| {
                    QueryError::internal(format!("reading view {}: {e}", p.display()))
                })?;
                let description = sql
                    .lines()
                    .take_while(|l| l.trim_start().starts_with("--"))
                    .map(|l| l.trim_start().trim_start_matches('-').trim())
                    .collect::<Vec<_>>()
                    .join(" ");
                out.push(View {
                    name,
                    sql,
                    description,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A table opened at a version, with its provider (cached across requests).
struct Loaded {
    table: DeltaTable,
    provider: Arc<dyn TableProvider>,
    person_column: Option<String>,
}

/// The in-process query service of one research store.
pub struct QueryService {
    store: Store,
    views: Vec<View>,
    limits: Limits,
    cache: Mutex<HashMap<(String, u64), Arc<Loaded>>>,
    /// The object stores research sessions may read: the store's own URL only. Shared
    /// by every session (what Delta registers in it is the same store each time).
    registry: Arc<crate::scoped::ScopedRegistry>,
    /// One immutable session template per scope (granted tables at their versions):
    /// functions, tables and planned views. A request's session is a copy of it with a
    /// runtime of its own (memory pool); nothing a request may run changes a session
    /// (the guard refuses DDL, DML and `SET`), so sharing the catalog is safe.
    templates: Mutex<HashMap<BTreeMap<String, u64>, Arc<Template>>>,
}

/// A scope's session template (see [`QueryService`]).
struct Template {
    state: datafusion::execution::SessionState,
    /// The views that planned over the scope's tables.
    views: Vec<String>,
    /// Each granted table's person column.
    persons: HashMap<String, Option<String>>,
    /// The names the guard admits: granted tables and those views.
    catalog: Catalog,
}

/// Templates kept at most (scopes are projects × releases: few); past this the cache
/// starts again.
const MAX_TEMPLATES: usize = 256;

impl std::fmt::Debug for QueryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryService")
            .field("store", &self.store.url().as_str())
            .field("views", &self.views.len())
            .finish_non_exhaustive()
    }
}

impl QueryService {
    /// A service over `store` with `views` and `limits`.
    pub fn new(store: Store, views: Vec<View>, limits: Limits) -> Self {
        Self {
            registry: Arc::new(crate::scoped::ScopedRegistry::new(store.url())),
            store,
            views,
            limits,
            cache: Mutex::new(HashMap::new()),
            templates: Mutex::new(HashMap::new()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn load(&self, name: &str, version: u64) -> Result<Arc<Loaded>, QueryError> {
        let key = (name.to_owned(), version);
        if let Some(l) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(l.clone());
        }
        let table = self
            .store
            .table(name, Some(version))
            .await
            .map_err(|e| QueryError::internal(format!("opening table {name}@{version}: {e}")))?
            .ok_or_else(|| {
                QueryError::internal(format!(
                    "table {name}@{version} of the release is missing from the store"
                ))
            })?;
        let provider = table
            .table_provider()
            .await
            .map_err(|e| QueryError::internal(format!("provider of {name}@{version}: {e}")))?;
        let person_column = self
            .store
            .commit_tag(name, version)
            .await
            .ok()
            .flatten()
            .and_then(|t| t.person_column);
        let loaded = Arc::new(Loaded {
            table,
            provider,
            person_column,
        });
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, loaded.clone());
        Ok(loaded)
    }

    /// A fresh session holding only `scope`'s tables and the views over them: a copy of
    /// the scope's template with a runtime (memory pool) of its own.
    async fn session(&self, scope: &Scope) -> Result<(SessionContext, Arc<Template>), QueryError> {
        let template = self.template(scope).await?;
        let state = SessionStateBuilder::new_from_existing(template.state.clone())
            .with_runtime_env(self.runtime()?)
            .build();
        Ok((SessionContext::new_with_state(state), template))
    }

    /// A runtime for one session: the shared, scoped object-store registry, no disk,
    /// and a memory pool of the query limit.
    fn runtime(&self) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>, QueryError> {
        // No spilling to disk: a query that needs more than its memory limit fails
        // cleanly. (DataFusion 55's out-of-memory fallback for nested-loop joins returns
        // wrong results: a 3-way cross join counted 0 rows under a 64 MiB pool.)
        let disk = datafusion::execution::disk_manager::DiskManagerBuilder::default()
            .with_mode(datafusion::execution::disk_manager::DiskManagerMode::Disabled);
        RuntimeEnvBuilder::new()
            .with_object_store_registry(self.registry.clone())
            .with_disk_manager_builder(disk)
            .with_memory_pool(Arc::new(FairSpillPool::new(self.limits.memory_bytes)))
            .build_arc()
            .map_err(|e| QueryError::internal(e.to_string()))
    }

    /// `scope`'s session template, built on first use.
    async fn template(&self, scope: &Scope) -> Result<Arc<Template>, QueryError> {
        let lock = || {
            self.templates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(t) = lock().get(&scope.tables) {
            return Ok(t.clone());
        }
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(2)
            .with_default_catalog_and_schema("datafusion", "public");
        let opts = config.options_mut();
        opts.explain.logical_plan_only = true;
        // Give up pre-aggregating early when it halves the rows at best: grouping by
        // (code, person) for `count(DISTINCT person)` keeps ~65% of the rows, and
        // shuffling them straight to the final aggregation is ~25% faster than the
        // default (0.8) on the research query set.
        opts.execution
            .skip_partial_aggregation_probe_ratio_threshold = 0.5;
        opts.sql_parser.enable_ident_normalization = true;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime()?)
            .with_default_features()
            .build();
        let ctx = SessionContext::new_with_state(state);
        let builtins: Vec<_> = ctx.state().scalar_functions().values().cloned().collect();
        for f in crate::caps::capped_udfs(&builtins) {
            ctx.register_udf(f);
        }
        let mut persons = HashMap::new();
        for (name, version) in &scope.tables {
            let l = self.load(name, *version).await?;
            l.table
                .update_datafusion_session(&ctx.state())
                .map_err(|e| QueryError::internal(e.to_string()))?;
            ctx.register_table(name.as_str(), l.provider.clone())
                .map_err(|e| QueryError::internal(e.to_string()))?;
            persons.insert(name.clone(), l.person_column.clone());
        }
        let mut views = Vec::new();
        for v in &self.views {
            // a view over a table this project may not see simply does not plan
            let Ok(plan) = ctx.state().create_logical_plan(&v.sql).await else {
                continue;
            };
            let view = datafusion::catalog::view::ViewTable::new(plan, Some(v.sql.clone()));
            if ctx.register_table(v.name.as_str(), Arc::new(view)).is_ok() {
                views.push(v.name.clone());
            }
        }
        let catalog = Catalog {
            tables: scope.tables.keys().chain(views.iter()).cloned().collect(),
        };
        let template = Arc::new(Template {
            state: ctx.state(),
            views,
            persons,
            catalog,
        });
        let mut templates = lock();
        if templates.len() >= MAX_TEMPLATES {
            templates.clear();
        }
        templates.insert(scope.tables.clone(), template.clone());
        Ok(template)
    }

    /// The tables and views `scope` may query, with their columns.
    pub async fn tables(&self, scope: &Scope) -> Result<Vec<TableInfo>, QueryError> {
        let (ctx, template) = self.session(scope).await?;
        let (views, persons) = (&template.views, &template.persons);
        let mut out = Vec::new();
        for name in scope.tables.keys().chain(views.iter()) {
            let Ok(t) = ctx.table_provider(name.as_str()).await else {
                continue;
            };
            let is_view = views.contains(name);
            out.push(TableInfo {
                name: name.clone(),
                kind: if is_view { "view" } else { "table" }.into(),
                description: if is_view {
                    self.views
                        .iter()
                        .find(|v| &v.name == name)
                        .map(|v| v.description.clone())
                        .unwrap_or_default()
                } else {
                    format!(
                        "release {}, Delta version {}",
                        scope.release, scope.tables[name]
                    )
                },
                person_column: persons.get(name).cloned().flatten(),
                columns: t
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| ColumnInfo {
                        name: f.name().clone(),
                        data_type: f.data_type().to_string(),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// The shared front of the governed path: a fresh session over `scope`, the guard,
    /// DataFusion's own statement checks and the scan check. Returns the session, the
    /// plan, whether it is an `EXPLAIN`, and the scope's template (person columns).
    async fn plan_guarded(
        &self,
        sql: &str,
        scope: &Scope,
    ) -> Result<(SessionContext, LogicalPlan, bool, Arc<Template>), QueryError> {
        let (ctx, template) = self.session(scope).await?;
        let catalog = &template.catalog;
        let guarded = guard::check(sql, catalog, &self.limits.guard)?;
        let explain = guarded.explain;
        let state = ctx.state();
        let plan = state
            .statement_to_plan(guarded.statement)
            .await
            .map_err(|e| from_datafusion(&e))?;
        datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| QueryError::refused(guard::ALLOWED).with_detail(e.to_string()))?;
        check_scans(&plan, catalog)?;
        Ok((ctx, plan, explain, template))
    }

    /// Plans an approved extract's query over `scope`: the same guard and checks as a
    /// researcher's query, without output disclosure control (an extract is
    /// record-level by approval and is checked for k-anonymity instead, by
    /// `dhub-extract`). The caller executes the plan in the returned session, whose
    /// memory pool is this service's limit.
    pub async fn plan_extract(
        &self,
        sql: &str,
        scope: &Scope,
    ) -> Result<(SessionContext, LogicalPlan), QueryError> {
        let (ctx, plan, explain, _) = self.plan_guarded(sql, scope).await?;
        if explain {
            return Err(QueryError::refused(
                "an extract query must be a SELECT (or WITH, VALUES, a set operation), not EXPLAIN",
            ));
        }
        Ok((ctx, plan))
    }

    /// Runs one query through the whole governed path.
    pub async fn run(&self, req: &QueryRequest) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        let (ctx, plan, explain, template) = self.plan_guarded(&req.sql, &req.scope).await?;
        let aggregate_mode = req.scope.policy.mode == dhub_govern::Mode::Aggregate;
        crate::total::check_patterns(&plan, aggregate_mode)
            .map_err(|m| QueryError::new(ErrorCode::QueryFailed, m.clone()).with_detail(m))?;
        let (plan, mut disclosure, rewritten) = if explain {
            (
                plan,
                Disclosure::for_policy(&req.scope.policy, "explain: no data returned"),
                sdc::Rewritten::default(),
            )
        } else {
            sdc::apply(plan, &req.scope.policy, &template.persons)?
        };
        // In aggregate mode nothing may fail on one row (an error would answer a yes/no
        // question about it): every expression is made total, and whatever still fails
        // while running gets one uniform answer.
        let aggregate = !explain && req.scope.policy.mode == dhub_govern::Mode::Aggregate;
        let plan = if aggregate {
            crate::total::plan(plan).map_err(|e| {
                QueryError::internal(format!("making the plan's expressions total: {e}"))
            })?
        } else {
            plan
        };
        let uniform = |e: QueryError| -> QueryError {
            if aggregate
                && !matches!(
                    e.code,
                    ErrorCode::Timeout | ErrorCode::TooLarge | ErrorCode::ResourcesExhausted
                )
            {
                QueryError::new(ErrorCode::QueryFailed, crate::error::EXECUTION_FAILED)
                    .with_detail(e.detail)
            } else {
                e
            }
        };
        let df = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| from_datafusion(&e))?;
        let remaining = self.limits.time.saturating_sub(started.elapsed());
        let collect = async {
            let mut stream = df
                .execute_stream()
                .await
                .map_err(|e| uniform(from_datafusion(&e)))?;
            // the physical schema: what the batches really hold (e.g. Utf8View)
            let schema: SchemaRef = stream.schema();
            let (mut rows, mut bytes, mut batches) = (0usize, 0usize, Vec::new());
            while let Some(b) = stream.next().await {
                let b = b.map_err(|e| uniform(from_datafusion(&e)))?;
                rows += b.num_rows();
                bytes += b.get_array_memory_size();
                if rows > self.limits.max_rows {
                    return Err(QueryError::new(
                        ErrorCode::TooLarge,
                        format!(
                            "the result has more than {} rows, the limit; aggregate, filter or add LIMIT",
                            self.limits.max_rows
                        ),
                    ));
                }
                if bytes > self.limits.max_bytes {
                    return Err(QueryError::new(
                        ErrorCode::TooLarge,
                        format!(
                            "the result is larger than {} MiB, the limit; select fewer columns or rows",
                            self.limits.max_bytes >> 20
                        ),
                    ));
                }
                batches.push(b);
            }
            Ok((schema, rows, bytes, batches))
        };
        let (schema, _, _, batches) = tokio::time::timeout(remaining, collect)
            .await
            .map_err(|_| timeout(self.limits.time))??;
        let (schema, batches) = sdc::finish(
            schema,
            batches,
            &req.scope.policy,
            &rewritten,
            &mut disclosure,
        )?;
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        Ok(QueryOutput {
            schema,
            rows,
            bytes,
            batches,
            disclosure,
        })
    }
}

/// The time-limit error.
pub fn timeout(limit: Duration) -> QueryError {
    QueryError::new(
        ErrorCode::Timeout,
        format!(
            "the query ran longer than {} s, the limit, and was stopped; filter earlier or aggregate",
            limit.as_secs()
        ),
    )
}

/// Defence in depth after planning: every scan is of a granted table or view.
fn check_scans(plan: &LogicalPlan, catalog: &Catalog) -> Result<(), QueryError> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut bad = None;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(s) = node {
            let t = s.table_name.table();
            if let Some(f) = t.strip_suffix("()")
                && guard::ALLOWED_TABLE_FUNCTIONS.contains(&f)
            {
                return Ok(TreeNodeRecursion::Continue);
            }
            let schema = s.table_name.schema();
            let ok = match schema {
                Some("information_schema") => true,
                None | Some("public") => catalog.tables.contains(t),
                _ => false,
            };
            if !ok {
                bad = Some(t.to_owned());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match bad {
        Some(t) => Err(QueryError::new(
            ErrorCode::NotFound,
            format!("table or view `{t}` does not exist or is not granted to this project"),
        )),
        None => Ok(()),
    }
}
