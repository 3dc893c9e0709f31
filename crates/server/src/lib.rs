//! # dhub-server: the researcher API
//!
//! `dhub serve` answers approved researchers over HTTP (axum; TLS with rustls when a
//! certificate is given). Every request that reaches a project, accepted or refused,
//! writes one entry to the tamper-evident audit log **before** its response is sent.
//! Queries take the one governed path ([`Governed::query`]), which every front end
//! shares: token → project → release scope → a place in the admission queue (fair
//! across researchers, bounded; [`queue`]) → an isolated query worker (guard, session,
//! disclosure control, limits) → audit. SQLite work (the audit write, disclosure
//! lookups) runs on the blocking thread pool, never on the async threads.
//!
//! | endpoint | what |
//! | --- | --- |
//! | `POST /v1/query` | `{"sql": "…", "format": "json"\|"csv"\|"arrow"\|"parquet"}` with `Authorization: Bearer TOKEN` |
//! | `GET /v1/tables` | the granted tables and views, their columns and descriptions |
//! | `GET /v1/whoami` | the researcher, project, release and output policy |
//! | `GET /v1/queries/{id}/disclosure` | the disclosure record of one of the project's queries |
//! | `GET /healthz` | liveness |
//! | `GET /metrics` | Prometheus text (with the metrics token only; see [`ServerConfig::metrics_token`]) |
//! | `GET /openapi.json` | the whole API |

mod audit;
mod conn;
mod error;
mod extracts;
pub mod flight;
mod format;
mod guard;
mod metrics;
mod openapi;
pub mod queue;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dhub_govern::{Govern, Principal};
use dhub_query::{Answer, QueryError, QueryOutput, Scope, TableInfo, WorkerPool, WorkerRequest};
use dhub_store::{Release, Store};
use serde_json::{Map, Value, json};

pub use conn::NetLimits;
pub use error::{ApiError, status_of};
pub use guard::{basic_credentials, bearer_token};
pub use metrics::Metrics;

/// Server settings (from `dhub serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTP listen address (port 0 = any free port).
    pub listen: SocketAddr,
    /// Arrow Flight SQL listen address, if Flight SQL is served (port 0 = any free port).
    pub flight_listen: Option<SocketAddr>,
    /// TLS certificate and key (PEM), if TLS (HTTP and Flight SQL).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Research store URL.
    pub store: String,
    /// Extracts area URL (released partner extracts).
    pub extracts: String,
    /// Governance store file.
    pub govern: PathBuf,
    /// How to start query workers.
    pub worker: dhub_query::WorkerCommand,
    /// Query workers = global concurrency.
    pub workers: usize,
    /// Concurrent queries per researcher.
    pub per_researcher: usize,
    /// Queries waiting for a worker at once, server-wide (0: none wait).
    pub queue: usize,
    /// Queries of one researcher waiting for a worker at once.
    pub queue_per_researcher: usize,
    /// The longest a query waits for a worker before it is refused (429).
    pub queue_wait: Duration,
    /// How long a Flight SQL answer is held for its `DoGet`.
    pub flight_answer_ttl: Duration,
    /// Per-query time limit.
    pub time_limit: Duration,
    /// Write the bound address here once listening (tests, scripts).
    pub ready_file: Option<PathBuf>,
    /// Connection caps, timeouts and the failed-authentication limit.
    pub net: NetLimits,
    /// The bearer token that opens `GET /metrics` (`None`: `/metrics` answers 404).
    pub metrics_token: Option<String>,
}

/// What a governed query returns to its front end.
#[derive(Debug)]
pub struct Answered {
    /// The query id (also in the audit log).
    pub id: String,
    /// The result.
    pub output: QueryOutput,
}

/// The state every front end shares: the governance store, the research store, the
/// worker pool, concurrency counters and metrics.
#[derive(Debug)]
pub struct Governed {
    govern: Arc<Govern>,
    store: Store,
    extracts: dhub_store::Location,
    pool: WorkerPool,
    admission: queue::Admission,
    flight_answer_ttl: Duration,
    releases: tokio::sync::Mutex<HashMap<String, Release>>,
    /// Refused tokens counted per client and minute, not yet in the audit log.
    refusals: audit::Refusals,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// Who is asking, from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Client address.
    pub addr: String,
    /// Front end (`http`, `flight`).
    pub via: &'static str,
}

/// A new random id (128 bits, hex).
pub fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The 429 of a request the admission queue did not take.
fn busy(r: queue::Refusal) -> ApiError {
    use queue::Refusal;
    let message = match r {
        Refusal::QueueFull(n) => format!(
            "every query worker is busy and {n} queries are already waiting, the most the server queues; retry in a moment"
        ),
        Refusal::ResearcherQueueFull { running, waiting } => format!(
            "you already have {running} queries running and {waiting} waiting, the most per researcher; wait for one to finish"
        ),
        Refusal::Waited(t) => format!(
            "no query worker came free within {} s; retry in a moment",
            t.as_secs_f64()
        ),
    };
    QueryError::new(dhub_query::ErrorCode::Busy, message).into()
}

/// Runs SQLite work on the blocking thread pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))?
}

impl Governed {
    /// Opens the stores and starts the worker pool.
    pub fn open(config: &ServerConfig) -> Result<Self, ApiError> {
        let govern = Govern::open(&config.govern).map_err(|e| ApiError::internal(e.to_string()))?;
        let store = Store::open(&config.store).map_err(|e| ApiError::internal(e.to_string()))?;
        let extracts = dhub_store::Location::parse(&config.extracts)
            .map_err(|e| ApiError::internal(format!("opening the extracts area: {e}")))?;
        let pool = WorkerPool::new(config.worker.clone(), config.workers, config.time_limit);
        pool.warm().map_err(|e| ApiError::internal(e.detail))?;
        let metrics = Arc::new(Metrics::default());
        // the queue admits at most the pool's size at once, so an admitted request
        // always finds a worker free
        let admission = queue::Admission::new(
            queue::QueueConfig {
                workers: pool.size(),
                per_researcher: config.per_researcher.max(1),
                max_queued: config.queue,
                max_queued_per_researcher: config.queue_per_researcher.max(1),
                max_wait: config.queue_wait,
            },
            metrics.clone(),
        );
        Ok(Self {
            govern: Arc::new(govern),
            store,
            extracts,
            pool,
            admission,
            flight_answer_ttl: config.flight_answer_ttl,
            releases: tokio::sync::Mutex::new(HashMap::new()),
            refusals: audit::Refusals::default(),
            metrics,
        })
    }

    /// The governance store.
    pub fn govern(&self) -> &Govern {
        &self.govern
    }

    /// What confines the query workers (`/healthz`).
    pub fn worker_sandbox(&self) -> &dhub_query::sandbox::SandboxStatus {
        self.pool.sandbox()
    }

    /// Free query slots (global).
    pub fn slots_free(&self) -> usize {
        self.pool.available()
    }

    /// How long a Flight SQL answer is held for its `DoGet`.
    pub fn flight_answer_ttl(&self) -> Duration {
        self.flight_answer_ttl
    }

    /// [`Governed::authenticate`] on the blocking thread pool (it reads, and on a
    /// refusal writes, the governance store).
    pub async fn authenticate_blocking(
        self: &Arc<Self>,
        token: Option<&str>,
        caller: &Caller,
    ) -> Result<Principal, ApiError> {
        let (g, token, caller) = (self.clone(), token.map(str::to_owned), caller.clone());
        blocking(move || g.authenticate(token.as_deref(), &caller)).await
    }

    /// Checks a researcher's bearer token.
    pub fn authenticate(
        &self,
        token: Option<&str>,
        caller: &Caller,
    ) -> Result<Principal, ApiError> {
        let token = token.unwrap_or_default();
        self.refused_audited(self.govern.check_token_refused(token), "researcher", caller)
    }

    /// Checks a partner's bearer token (extract downloads).
    pub fn authenticate_partner(
        &self,
        token: Option<&str>,
        caller: &Caller,
    ) -> Result<Principal, ApiError> {
        let token = token.unwrap_or_default();
        self.refused_audited(
            self.govern.check_partner_token_refused(token),
            "partner",
            caller,
        )
    }

    fn refused_audited(
        &self,
        checked: dhub_govern::Result<Result<Principal, dhub_govern::Refused>>,
        role: &'static str,
        caller: &Caller,
    ) -> Result<Principal, ApiError> {
        match checked {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(r)) => {
                // a refused token is audited too (never the token itself): counted per
                // client and minute, under its holder when dhub issued it
                self.note_refusal(&r, role, caller);
                Err(r.failure.into())
            }
            Err(e) => Err(ApiError::internal(e.to_string())),
        }
    }

    async fn release(&self, name: &str) -> Result<Release, ApiError> {
        let mut cache = self.releases.lock().await;
        if let Some(r) = cache.get(name) {
            return Ok(r.clone());
        }
        let r = self
            .store
            .release(name)
            .await
            .map_err(|e| ApiError::internal(format!("release {name}: {e}")))?;
        cache.insert(name.to_owned(), r.clone());
        Ok(r)
    }

    /// The scope of a researcher's project: its release's versions of the granted tables.
    pub async fn scope(&self, p: &Principal) -> Result<Scope, ApiError> {
        let release = self.release(&p.project.release).await?;
        Ok(Scope::for_project(&p.project, &release))
    }

    /// The governed query path shared by every front end: a place in the admission
    /// queue, an isolated worker (guard, session, disclosure control, limits) and the
    /// audit entry, written before this returns, whatever the outcome.
    pub async fn query(
        &self,
        p: &Principal,
        sql: &str,
        caller: &Caller,
    ) -> Result<Answered, ApiError> {
        let id = new_id();
        let started = Instant::now();
        let mut queued = Duration::ZERO;
        let result: Result<QueryOutput, ApiError> = async {
            let scope = self.scope(p).await?;
            let _permit = self
                .admission
                .acquire(&p.researcher.name)
                .await
                .map_err(busy)?;
            queued = started.elapsed();
            let req = WorkerRequest::Query(dhub_query::QueryRequest {
                id: id.clone(),
                sql: sql.to_owned(),
                scope,
            });
            match self.pool.ask(&req).await? {
                Answer::Result(o) => Ok(o),
                Answer::Tables(_) => Err(ApiError::internal("worker answered a query with tables")),
            }
        }
        .await;
        let ms = started.elapsed().as_millis() as u64;
        let mut m = Map::new();
        m.insert("query_id".into(), json!(id));
        m.insert("researcher".into(), json!(p.researcher.name));
        m.insert("project".into(), json!(p.project.id));
        m.insert("release".into(), json!(p.project.release));
        m.insert("client".into(), json!(caller.addr));
        m.insert("via".into(), json!(caller.via));
        // a long text is kept as a prefix, its SHA-256 and its length: whole for an
        // answered query up to 64 KiB, up to 4 KiB for a refused one
        let sql_limit = if result.is_ok() {
            dhub_govern::audit::FIELD_LIMIT
        } else {
            dhub_govern::audit::TEXT_LIMIT
        };
        dhub_govern::audit::bound_text(&mut m, "sql", sql, sql_limit);
        m.insert("duration_ms".into(), json!(ms));
        m.insert("queued_ms".into(), json!(queued.as_millis() as u64));
        match &result {
            Ok(o) => {
                m.insert("outcome".into(), json!("ok"));
                m.insert("rows".into(), json!(o.rows));
                m.insert("bytes".into(), json!(o.bytes));
                m.insert(
                    "disclosure".into(),
                    serde_json::to_value(&o.disclosure).unwrap_or(Value::Null),
                );
            }
            Err(e) => {
                m.insert("outcome".into(), json!(e.outcome()));
                m.insert("status".into(), json!(e.status.as_u16()));
                dhub_govern::audit::bound_text(
                    &mut m,
                    "error",
                    &e.message,
                    dhub_govern::audit::TEXT_LIMIT,
                );
                dhub_govern::audit::bound_text(
                    &mut m,
                    "detail",
                    &e.detail,
                    dhub_govern::audit::TEXT_LIMIT,
                );
            }
        }
        let (govern, who) = (self.govern.clone(), p.researcher.name.clone());
        blocking(move || {
            govern
                .audit("query", &who, m)
                .map_err(|e| ApiError::internal(format!("writing the audit entry: {e}")))
        })
        .await?;
        self.metrics.count_query(
            result.as_ref().map_or_else(|e| e.code, |_| "ok"),
            started.elapsed(),
        );
        result.map(|output| Answered { id, output })
    }

    /// The tables and views a researcher may query.
    pub async fn tables(&self, p: &Principal) -> Result<Vec<TableInfo>, ApiError> {
        let scope = self.scope(p).await?;
        let _permit = self
            .admission
            .acquire(&p.researcher.name)
            .await
            .map_err(busy)?;
        match self.pool.ask(&WorkerRequest::Tables(scope)).await? {
            Answer::Tables(t) => Ok(t),
            Answer::Result(_) => Err(ApiError::internal("worker answered tables with a result")),
        }
    }

    /// The disclosure record of query `id`, if it belongs to `p`'s project: one lookup
    /// through the audit log's query-id index, on the blocking thread pool.
    pub async fn disclosure(&self, p: &Principal, id: &str) -> Result<Value, ApiError> {
        let (govern, key) = (self.govern.clone(), id.to_owned());
        let found = blocking(move || {
            govern
                .audit_find_query(&key)
                .map_err(|e| ApiError::internal(e.to_string()))
        })
        .await?;
        let entry = found
            .into_iter()
            .map(|e| e.entry)
            .find(|e| e.get("project").and_then(Value::as_str) == Some(p.project.id.as_str()));
        match entry {
            Some(e) => Ok(json!({
                "query_id": id,
                "outcome": e.get("outcome").cloned().unwrap_or(Value::Null),
                "disclosure": e.get("disclosure").cloned().unwrap_or(Value::Null),
            })),
            None => Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no query with that id in your project",
            )),
        }
    }
}

/// Chooses rustls's crypto provider for the whole process, once, before any TLS
/// configuration or listener exists: ring, dhub's one crypto library. Several rustls
/// back ends are compiled in through dependencies (ring and aws-lc-rs), and a TLS
/// configuration built without a process default fails, so leaving the choice to
/// whichever listener starts first made start-up depend on task scheduling.
fn choose_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // fails only when another thread installed one first: either way one is chosen
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The connection limits after the process's open-file limit: connections beyond half
/// of it would starve the server of descriptors for its store, workers and audit log.
fn fit_to_file_limit(mut net: NetLimits) -> NetLimits {
    #[cfg(unix)]
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let fit = usize::try_from(soft / 2).unwrap_or(usize::MAX).max(16);
        if net.max_connections > fit {
            tracing::warn!(
                max_connections = net.max_connections,
                open_file_limit = soft,
                "the connection cap is lowered to {fit}, half the open-file limit; raise the limit (ulimit -n) to allow more"
            );
            eprintln!(
                "dhub serve: the connection cap is lowered to {fit}, half the open-file limit ({soft}); raise `ulimit -n` to allow more"
            );
            net.max_connections = fit;
        }
    }
    net.max_connections_per_address = net.max_connections_per_address.min(net.max_connections);
    net
}

/// Warns, loudly, for every listener on a non-loopback address without TLS: tokens and
/// answers would cross the network in clear text.
fn warn_plaintext(config: &ServerConfig) {
    if config.tls.is_some() {
        return;
    }
    let listeners = [
        ("HTTP", Some(config.listen)),
        ("Flight SQL", config.flight_listen),
    ];
    for (what, addr) in listeners {
        let Some(addr) = addr else { continue };
        if addr.ip().is_loopback() {
            continue;
        }
        tracing::warn!(%addr, "{what} listens on a non-loopback address without TLS");
        eprintln!(
            "dhub serve: WARNING: {what} listens on {addr}, not a loopback address, WITHOUT TLS: \
             researchers' tokens and answers cross the network in clear text. Give --tls-cert and \
             --tls-key, or listen on 127.0.0.1 behind a TLS-terminating proxy."
        );
    }
}

/// Writes the ready file whole (a temporary file renamed into place), so a reader never
/// sees half of it.
fn write_ready(path: &std::path::Path, text: &str) -> Result<(), ApiError> {
    let tmp = path.with_extension("tmp-ready");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| ApiError::startup(format!("writing the ready file {}: {e}", path.display())))
}

/// Serves HTTP (and Flight SQL, with `flight_listen`) until SIGTERM or Ctrl-C;
/// in-flight queries finish (and are audited) before the process exits.
///
/// Start-up is all or nothing: the TLS crypto provider is chosen first, then every
/// listener is bound and every TLS configuration built; only when all of them stand are
/// the "listening" lines printed and the ready file written. Any failure, then or later
/// (a listener that stops while the server runs), ends the process with an error that
/// names the listener and the reason.
pub async fn serve(config: ServerConfig) -> Result<(), ApiError> {
    choose_crypto_provider();
    warn_plaintext(&config);
    let governed = Arc::new(tokio::task::block_in_place(|| Governed::open(&config))?);
    // refused tokens counted per client and minute reach the audit log every few
    // seconds, and all of them when this function returns, however it returns
    let _refusals = audit::RefusalFlusher::start(&governed);
    let net = conn::Net::new(fit_to_file_limit(config.net.clone()));

    // bind every listener and build every TLS configuration before serving anything
    let http_listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| ApiError::startup(format!("cannot listen on {}: {e}", config.listen)))?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|e| ApiError::startup(format!("the HTTP listener's address: {e}")))?;
    let rustls = match &config.tls {
        Some((cert, key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| {
                    ApiError::startup(format!(
                        "loading the TLS certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?,
        ),
        None => None,
    };
    let flight = match config.flight_listen {
        Some(addr) => {
            let listener = flight::bind(addr).await?;
            let bound = listener.local_addr().map_err(|e| {
                ApiError::startup(format!("the Flight SQL listener's address: {e}"))
            })?;
            let registry = Arc::new(conn::Registry::default());
            let router = flight::server(
                governed.clone(),
                config.tls.as_ref(),
                net.clone(),
                registry.clone(),
            )?;
            Some((bound, listener, router, registry))
        }
        None => None,
    };

    // serve
    let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
    let grace = config.time_limit + Duration::from_secs(5);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        h.graceful_shutdown(Some(grace));
        let _ = stop_tx.send(true);
    });
    let registry = Arc::new(conn::Registry::default());
    let web = Arc::new(routes::HttpGuard {
        net: net.clone(),
        registry: registry.clone(),
        metrics_token: config.metrics_token.as_deref().map(|t| {
            ring::digest::digest(&ring::digest::SHA256, t.trim().as_bytes())
                .as_ref()
                .to_vec()
        }),
    });
    let svc =
        routes::router(governed.clone(), web).into_make_service_with_connect_info::<SocketAddr>();
    let acceptor = conn::GuardAcceptor {
        net: net.clone(),
        registry,
    };
    let http_server = axum_server::from_tcp(http_listener)
        .map_err(|e| ApiError::startup(format!("serving on {http_addr}: {e}")))?
        .handle(handle.clone());
    let mut http_task = match rustls {
        Some(tls) => {
            let server = http_server.acceptor(
                axum_server::tls_rustls::RustlsAcceptor::new(tls)
                    .handshake_timeout(config.net.header_timeout)
                    .acceptor(acceptor),
            );
            tokio::spawn(server.serve(svc))
        }
        None => tokio::spawn(http_server.acceptor(acceptor).serve(svc)),
    };
    let mut flight_task = flight.map(|(bound, listener, router, registry)| {
        let mut rx = stop_rx.clone();
        let task = tokio::spawn(flight::serve_flight(
            router,
            listener,
            net.clone(),
            registry,
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        ));
        (bound, task)
    });

    // every listener is bound and configured: announce
    let tls = config.tls.is_some();
    let scheme = if tls { "https" } else { "http" };
    tracing::info!(addr = %http_addr, "listening");
    eprintln!("dhub serve: listening on {scheme}://{http_addr}");
    let mut ready_text = http_addr.to_string();
    if let Some((f, _)) = &flight_task {
        let grpc = if tls { "grpc+tls" } else { "grpc" };
        tracing::info!(addr = %f, "Flight SQL listening");
        eprintln!("dhub serve: Flight SQL on {grpc}://{f}");
        ready_text.push_str(&format!("\n{f}"));
    }
    if let Some(p) = &config.ready_file {
        write_ready(p, &ready_text)?;
    }

    // run until shutdown; a listener that stops before it is an error that ends both
    let stopping = || *stop_rx.borrow();
    let flight_done = async {
        match &mut flight_task {
            Some((_, t)) => Some(t.await),
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        r = &mut http_task => {
            let r = match r {
                Ok(Ok(())) if stopping() => Ok(()),
                Ok(Ok(())) => Err(ApiError::startup("the HTTP listener stopped unexpectedly")),
                Ok(Err(e)) => Err(ApiError::startup(format!("serving HTTP on {http_addr}: {e}"))),
                Err(e) => Err(ApiError::startup(format!("the HTTP listener failed: {e}"))),
            };
            if r.is_err() {
                handle.shutdown();
                if let Some((_, t)) = &flight_task {
                    t.abort();
                }
                return r;
            }
            if let Some((_, t)) = flight_task {
                match t.await {
                    Ok(r) => r?,
                    Err(e) => return Err(ApiError::startup(format!("the Flight SQL listener failed: {e}"))),
                }
            }
            r
        }
        Some(r) = flight_done => {
            let r = match r {
                Ok(Ok(())) if stopping() => Ok(()),
                Ok(Ok(())) => Err(ApiError::startup("the Flight SQL listener stopped unexpectedly")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(ApiError::startup(format!("the Flight SQL listener failed: {e}"))),
            };
            if r.is_err() {
                handle.shutdown();
                http_task.abort();
                return r;
            }
            match http_task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ApiError::startup(format!("serving HTTP on {http_addr}: {e}"))),
                Err(e) => Err(ApiError::startup(format!("the HTTP listener failed: {e}"))),
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
