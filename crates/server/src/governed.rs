//! The governed path: the one room every front end (HTTP, Flight SQL, and the web
//! console to come) goes through to reach a project's data.
//!
//! A front end does three things: it reads the bearer token
//! ([`crate::credentials::bearer`]), names its [`Caller`], and calls [`Governed`]. Every
//! rule lives here, not in a front end:
//!
//! | behaviour | where |
//! | --- | --- |
//! | the failed-authentication limit per address (429 `rate_limited`) | [`Governed::throttle`], [`Governed::failed_authentication`] (counts in `conn::Net`) |
//! | a researcher's or partner's token, checked; a refusal counted and audited | [`Governed::authenticate`], [`Governed::authenticate_partner`]; the counts in `governed::refusals` |
//! | a project's scope (its release's versions of the granted tables) | [`Governed::scope`] |
//! | a place in the admission queue (fair, bounded; 429 `busy`) | [`crate::queue`], taken by [`Governed::query`] and [`Governed::tables`] |
//! | an isolated query worker (guard, session, disclosure control, limits) | [`Governed::query`] over `dhub_query::WorkerPool` |
//! | the audit entry of a query, written before the answer, whatever the outcome | [`Governed::query`] |
//! | the token checked again before an answer is sent | [`Governed::recheck`] |
//! | the audit entry of any other request (tables, whoami, disclosure lookups, …) | [`Governed::audit_request`] |
//! | a query's disclosure record | [`Governed::disclosure`] |
//! | partner extract listings and downloads | [`extracts`] |
//!
//! **The governance store is SQLite (synchronous)**: every call into it from async
//! code — token checks, audit writes, project and extract lookups, disclosure lookups,
//! refusal counts — runs on the blocking thread pool through one helper,
//! [`Governed::with_govern`]; nothing else here holds the store.

pub mod extracts;
pub(crate) mod refusals;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dhub_govern::{AuditEvent, AuthFailure, Govern, Principal, QueryEvent, Refused, RequestEvent};
use dhub_query::{Answer, QueryError, QueryOutput, Scope, TableInfo, WorkerPool, WorkerRequest};
use dhub_store::{Release, Store};
use serde_json::{Value, json};

use crate::ServerConfig;
use crate::conn::Net;
use crate::error::{ApiError, Context};
use crate::metrics::Metrics;
use crate::queue;

/// What a governed query returns to its front end.
#[derive(Debug)]
pub struct Answered {
    /// The query id (also in the audit log).
    pub id: String,
    /// The result.
    pub output: QueryOutput,
}

/// Who is asking, from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Client address.
    pub addr: String,
    /// Front end (`http`, `flight`).
    pub via: &'static str,
}

/// The state every front end shares: the governance store, the research store, the
/// worker pool and its admission queue, the failed-authentication limiter, refusal
/// counts and metrics.
#[derive(Debug)]
pub struct Governed {
    govern: Arc<Govern>,
    store: Store,
    extracts: dhub_store::Location,
    pool: WorkerPool,
    admission: queue::Admission,
    net: Arc<Net>,
    flight_answer_ttl: Duration,
    releases: tokio::sync::Mutex<HashMap<String, Release>>,
    /// Refused tokens counted per client and minute, not yet in the audit log.
    refusals: refusals::Refusals,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// A new random id (128 bits, hex).
pub fn new_id() -> Result<String, ApiError> {
    Ok(dhub_govern::new_id()?)
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

impl Governed {
    /// Opens the stores, starts the worker pool and sets up the connection limits
    /// (fitted to the process's open-file limit).
    pub fn open(config: &ServerConfig) -> Result<Self, ApiError> {
        let govern = Govern::open(&config.govern)?;
        let store = Store::open(&config.store)?;
        let extracts =
            dhub_store::Location::parse(&config.extracts).context("opening the extracts area")?;
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
            net: Net::new(crate::conn::fit_to_file_limit(config.net.clone())),
            flight_answer_ttl: config.flight_answer_ttl,
            releases: tokio::sync::Mutex::new(HashMap::new()),
            refusals: refusals::Refusals::default(),
            metrics,
        })
    }

    /// Runs work on the governance store (synchronous SQLite) on the blocking thread
    /// pool: the one way async code reaches the store.
    pub(crate) async fn with_govern<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Govern) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let govern = self.govern.clone();
        tokio::task::spawn_blocking(move || f(&govern)).await?
    }

    /// Writes one audit entry (on the blocking thread pool).
    pub(crate) async fn audit(&self, event: AuditEvent, actor: &str) -> Result<(), ApiError> {
        let actor = actor.to_owned();
        self.with_govern(move |g| {
            g.audit(&event, &actor)
                .map(|_| ())
                .context("writing the audit entry")
        })
        .await
    }

    /// The connection caps, timeouts and failed-authentication limiter both listeners
    /// accept through.
    pub fn net(&self) -> &Arc<Net> {
        &self.net
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

    /// Refuses (429 `rate_limited`, with when to retry) a request from an address that
    /// failed authentication too often. Every front end asks first, before any token is
    /// read; a throttled request is not audited (that is its point) but is counted.
    pub fn throttle(&self, ip: IpAddr) -> Result<(), ApiError> {
        match self.net.throttled(ip) {
            Some(secs) => Err(ApiError::rate_limited(secs)),
            None => Ok(()),
        }
    }

    /// Counts a failed authentication of an address (a 401 or 403 answered to it, or
    /// gRPC `Unauthenticated` or `PermissionDenied`), for [`Governed::throttle`].
    pub fn failed_authentication(&self, ip: IpAddr) {
        self.net.failed(ip);
    }

    /// Checks a researcher's bearer token (on the blocking thread pool); a refusal is
    /// counted and audited (never the token itself).
    pub async fn authenticate(
        &self,
        token: Option<&str>,
        caller: &Caller,
    ) -> Result<Principal, ApiError> {
        let token = token.unwrap_or_default().to_owned();
        let checked = self
            .with_govern(move |g| Ok(g.check_token_refused(&token)?))
            .await?;
        self.admit(checked, "researcher", caller).await
    }

    /// Checks a partner's bearer token (extract downloads), as
    /// [`Governed::authenticate`].
    pub async fn authenticate_partner(
        &self,
        token: Option<&str>,
        caller: &Caller,
    ) -> Result<Principal, ApiError> {
        let token = token.unwrap_or_default().to_owned();
        let checked = self
            .with_govern(move |g| Ok(g.check_partner_token_refused(&token)?))
            .await?;
        self.admit(checked, "partner", caller).await
    }

    async fn admit(
        &self,
        checked: Result<Principal, Refused>,
        role: &'static str,
        caller: &Caller,
    ) -> Result<Principal, ApiError> {
        match checked {
            Ok(p) => Ok(p),
            Err(r) => {
                // a refused token is audited too (never the token itself): counted per
                // client and minute, under its holder when dhub issued it
                self.note_refusal(&r, role, caller).await;
                Err(r.failure.into())
            }
        }
    }

    /// Counts a refused token; writes the counts whose minute is over.
    async fn note_refusal(&self, r: &Refused, role: &'static str, caller: &Caller) {
        self.metrics.count_auth_failure();
        if self.refusals.note(r, role, caller, Utc::now())
            && let Err(e) = self.flush_refusals(false).await
        {
            tracing::error!(error = %e.message, "writing refusal counts to the audit log");
        }
    }

    /// Writes the refusal counts whose minute is over (every count when `all`, as at
    /// shutdown) to the audit log, in one transaction, on the blocking thread pool.
    pub async fn flush_refusals(&self, all: bool) -> Result<(), ApiError> {
        let entries = self.refusals.take_events(Utc::now(), all);
        if entries.is_empty() {
            return Ok(());
        }
        self.with_govern(move |g| {
            g.audit_many(&entries)
                .map(|_| ())
                .context("writing the audit entry")
        })
        .await
    }

    /// Writes every open refusal count at once, on this thread: the backstop of a
    /// drop, where nothing can be awaited (normally the counts are written by then).
    pub(crate) fn flush_refusals_now(&self) {
        let entries = self.refusals.take_events(Utc::now(), true);
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.govern.audit_many(&entries) {
            tracing::error!(error = %e, "writing refusal counts to the audit log");
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
            .context(format!("release {name}"))?;
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
        let id = new_id()?;
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
        let mut event = QueryEvent {
            query_id: id.clone(),
            researcher: p.researcher.name.clone(),
            project: p.project.id.clone(),
            release: p.project.release.clone(),
            client: caller.addr.clone(),
            via: caller.via.to_owned(),
            // bounded by the event: whole for an answered query up to 64 KiB, up to
            // 4 KiB for a refused one (a prefix, its SHA-256 and its length)
            sql: sql.to_owned(),
            duration_ms: ms,
            queued_ms: queued.as_millis() as u64,
            ..QueryEvent::default()
        };
        match &result {
            Ok(o) => {
                event.outcome = "ok".to_owned();
                event.rows = Some(o.rows as u64);
                event.bytes = Some(o.bytes as u64);
                event.disclosure = Some(serde_json::to_value(&o.disclosure).unwrap_or(Value::Null));
            }
            Err(e) => {
                event.outcome = e.outcome().to_owned();
                event.status = Some(e.status().as_u16());
                event.error = Some(e.message.clone());
                event.detail = Some(e.detail.clone());
            }
        }
        self.audit(AuditEvent::Query(event), &p.researcher.name)
            .await?;
        self.metrics.count_query(
            result.as_ref().map_or_else(|e| e.code, |_| "ok"),
            started.elapsed(),
        );
        result.map(|output| Answered { id, output })
    }

    /// Checks, when query `query_id`'s answer is ready and before it is sent, that the
    /// token it was asked with still holds for the same researcher (not revoked or
    /// expired since, nor its project). A token that no longer holds withholds the
    /// answer: the refusal is audited (`query.withheld`, under the researcher) and the
    /// caller gets the same 403 as a request made with that token now.
    pub async fn recheck(
        &self,
        token: Option<&str>,
        p: &Principal,
        query_id: &str,
        caller: &Caller,
    ) -> Result<(), ApiError> {
        let (token, who, project) = (
            token.unwrap_or_default().to_owned(),
            p.researcher.name.clone(),
            p.project.id.clone(),
        );
        let (query_id, client, via) = (query_id.to_owned(), caller.addr.clone(), caller.via);
        let refused = self
            .with_govern(move |govern| {
                let failure = match govern.check_token(&token)? {
                    Ok(now) if now.researcher.name == who && now.project.id == project => {
                        return Ok(None);
                    }
                    Ok(_) => AuthFailure::Unknown,
                    Err(f) => f,
                };
                let event = AuditEvent::QueryWithheld {
                    query_id,
                    researcher: who.clone(),
                    project,
                    client,
                    via: via.to_owned(),
                    reason: format!("{failure:?}").to_lowercase(),
                };
                govern
                    .audit(&event, &who)
                    .context("writing the audit entry")?;
                Ok(Some(failure))
            })
            .await?;
        match refused {
            None => Ok(()),
            Some(failure) => {
                self.metrics.count_auth_failure();
                Err(failure.into())
            }
        }
    }

    /// Writes one entry for a request of an authenticated researcher other than a
    /// query (`tables`, `whoami`, `disclosure.lookup`, …: `event` makes it from who
    /// asked, from where, and the outcome), before the answer goes out. An entry that
    /// cannot be written fails the request.
    pub async fn audit_request(
        &self,
        p: &Principal,
        caller: &Caller,
        outcome: Result<(), &ApiError>,
        event: impl FnOnce(RequestEvent) -> AuditEvent,
    ) -> Result<(), ApiError> {
        let mut request = RequestEvent {
            researcher: p.researcher.name.clone(),
            project: p.project.id.clone(),
            release: p.project.release.clone(),
            client: caller.addr.clone(),
            via: caller.via.to_owned(),
            outcome: "ok".to_owned(),
            status: None,
            error: None,
        };
        if let Err(e) = outcome {
            request.outcome = e.outcome().to_owned();
            request.status = Some(e.status().as_u16());
            request.error = Some(e.message.clone());
        }
        self.audit(event(request), &p.researcher.name).await
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
    /// through the audit log's query-id index, on the blocking thread pool. An id that
    /// is not one dhub makes (32 hex digits) is not looked up.
    pub async fn disclosure(&self, p: &Principal, id: &str) -> Result<Value, ApiError> {
        let not_found = || ApiError::not_found("no query with that id in your project");
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let key = id.to_owned();
        let found = self.with_govern(move |g| Ok(g.query_events(&key)?)).await?;
        match found.into_iter().find(|q| q.project == p.project.id) {
            Some(q) => Ok(json!({
                "query_id": id,
                "outcome": q.outcome,
                "disclosure": q.disclosure,
            })),
            None => Err(not_found()),
        }
    }

    /// Of `holders` (researcher names), those revoked or removed since: a front end
    /// that holds answers or statements for them drops those.
    pub async fn revoked_among(&self, holders: Vec<String>) -> Result<Vec<String>, ApiError> {
        self.with_govern(move |g| {
            let all = g.researchers()?;
            Ok(holders
                .into_iter()
                .filter(|h| !all.iter().any(|r| &r.name == h && r.revoked.is_none()))
                .collect())
        })
        .await
    }
}

impl Drop for Governed {
    /// A backstop for any way out of `serve`: counts still open are written.
    fn drop(&mut self) {
        self.flush_refusals_now();
    }
}
