//! The Arrow Flight SQL front end (`dhub serve --flight-listen`), for ADBC drivers,
//! polars, DBeaver's Flight SQL JDBC driver and any Flight SQL client.
//!
//! It is a thin adapter over [`Governed`]: every statement goes through
//! [`Governed::query`], the one governed path HTTP uses (token, concurrency, isolated
//! worker with the guard, disclosure control and limits, audit entry written before the
//! answer), so a refused statement fails with the same message as over HTTP, mapped to
//! a gRPC status in one place ([`crate::error::statuses`], through
//! `From<ApiError> for tonic::Status`). Tokens are read by the same function as over
//! HTTP ([`crate::credentials::bearer`]), checked on the blocking thread pool, and an
//! address that fails too often is throttled by the same limit
//! ([`Governed::throttle`]).
//!
//! * **Authentication**: `authorization: Bearer TOKEN` on every call, or the Flight
//!   handshake with HTTP Basic credentials whose password is the token (what ADBC and
//!   JDBC send for `username`/`password`); the handshake answers with the bearer header
//!   to use afterwards.
//! * **Statements**: `GetFlightInfo(CommandStatementQuery)` runs the query and keeps the
//!   answer for its `DoGet` ticket (one fetch, expires after `--flight-answer-ttl`,
//!   default [`RESULT_TTL`]). The disclosure record comes back as the `FlightInfo`'s
//!   `app_metadata` (JSON) and in the `x-dhub-query-id` and `x-dhub-disclosure` response
//!   metadata.
//! * **Prepared statements** (read-only, no parameters): creating one runs it through
//!   the governed path (so its result schema is exact and a refused statement fails at
//!   once); the answer of that run waits for the first execution's `DoGet`; each later
//!   execution runs it again and is audited again.
//! * **The answer budget**: every answer held for a `DoGet` — of a statement or of a
//!   prepared statement — counts in one budget per researcher of
//!   [`MAX_PENDING_PER_RESEARCHER`] answers (a newer one evicts the oldest; an evicted
//!   prepared statement's answer is simply computed again when it is executed), and
//!   expires after the TTL. A researcher holds at most [`MAX_PREPARED_PER_RESEARCHER`]
//!   prepared statements (a newer one closes the least recently used), each closed
//!   after [`PREPARED_IDLE`] unused. Every [`REVOCATION_CHECK`] the service drops every
//!   answer and prepared statement of a researcher who has been revoked.
//! * **Metadata**: `GetCatalogs`, `GetDbSchemas`, `GetTables` (granted tables and
//!   views only, with their schemas), `GetTableTypes`, `GetSqlInfo`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::credentials::{authorization, basic_credentials, bearer, bearer_token};
use crate::error::ApiError;
use crate::governed::{Answered, Caller, Governed};

/// How long an answer waits for its `DoGet`.
pub const RESULT_TTL: Duration = Duration::from_secs(300);

/// Answers one researcher may have waiting for their `DoGet` at once, of statements
/// and prepared statements together; a newer one evicts the oldest (each is bounded by
/// the result byte limit).
pub const MAX_PENDING_PER_RESEARCHER: usize = 4;

/// Prepared statements one researcher may hold open; a newer one closes the least
/// recently used.
pub const MAX_PREPARED_PER_RESEARCHER: usize = 16;

/// A prepared statement unused this long is closed.
pub const PREPARED_IDLE: Duration = Duration::from_secs(3600);

/// How often held answers are expired and revoked researchers' holdings dropped.
pub const REVOCATION_CHECK: Duration = Duration::from_secs(2);

/// The catalog and schema every table and view is in (DataFusion's defaults).
pub const CATALOG: &str = "datafusion";
/// See [`CATALOG`].
pub const SCHEMA: &str = "public";

struct Pending {
    researcher: String,
    answered: Answered,
    created: Instant,
}

struct Prepared {
    researcher: String,
    sql: String,
    /// The handle under which the answer of the run made when it was created is held
    /// (in the answer budget), until the first execution.
    first: Option<String>,
    used: Instant,
}

/// The Flight SQL service over the shared governed state.
pub struct DhubFlightSql {
    g: Arc<Governed>,
    results: Mutex<HashMap<String, Pending>>,
    prepared: Mutex<HashMap<String, Prepared>>,
    sql_info: SqlInfoData,
}

impl std::fmt::Debug for DhubFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhubFlightSql").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::from(ApiError::internal(e.to_string()))
}

type DoGetStream = <DhubFlightSql as FlightService>::DoGetStream;

fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        t => t.clone(),
    }
}

/// The schema clients see: string and binary *views* (DataFusion's in-memory form) as
/// plain Utf8 and Binary, which every Flight SQL client reads and which encode compactly
/// (a sliced view array would drag its whole shared data buffers into every message).
fn plain_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_data_type(plain_type(f.data_type())))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

fn plain_batch(
    schema: &SchemaRef,
    b: RecordBatch,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = b
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

fn stream_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> DoGetStream {
    let plain = plain_schema(&schema);
    let s2 = plain.clone();
    let batches = futures::stream::iter(batches)
        .map(move |b| plain_batch(&s2, b).map_err(arrow_flight::error::FlightError::from));
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(plain)
        .with_max_flight_data_size(4 << 20)
        .build(batches)
        .map_err(Status::from);
    Box::pin(stream)
}

fn stream_one<E: std::fmt::Display>(batch: Result<RecordBatch, E>) -> Result<DoGetStream, Status> {
    let batch = batch.map_err(internal)?;
    Ok(stream_batches(batch.schema(), vec![batch]))
}

fn not_found(what: &str) -> Status {
    Status::from(ApiError::not_found(format!(
        "{what} is unknown or has expired; run the statement again"
    )))
}

impl DhubFlightSql {
    /// A service over `g`.
    pub fn new(g: Arc<Governed>) -> Self {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "dhub");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, false);
        b.append(SqlInfo::SqlDdlTable, false);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(SqlInfo::SqlAllTablesAreSelectable, true);
        // the builder only fails on a conflicting type for one id, which cannot happen here
        let sql_info = b.build().unwrap_or_else(|_| {
            let mut b = SqlInfoDataBuilder::new();
            b.append(SqlInfo::FlightSqlServerName, "dhub");
            b.build().unwrap_or_else(|e| unreachable!("{e}"))
        });
        Self {
            g,
            results: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            sql_info,
        }
    }

    /// A service over `g` whose held answers expire, and go with their researcher's
    /// revocation, in the background (every [`REVOCATION_CHECK`], until the service is
    /// dropped). Call within the Tokio runtime.
    pub fn start(g: Arc<Governed>) -> Arc<Self> {
        let service = Arc::new(Self::new(g));
        let weak = Arc::downgrade(&service);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REVOCATION_CHECK).await;
                let Some(s) = weak.upgrade() else { break };
                s.sweep();
                s.drop_revoked().await;
            }
        });
        service
    }

    fn caller<T>(req: &Request<T>) -> Caller {
        Caller {
            addr: req
                .remote_addr()
                .map_or_else(|| "unknown".to_owned(), |a| a.to_string()),
            via: "flight",
        }
    }

    /// The researcher behind a call: its bearer token, checked (and a refusal audited)
    /// exactly as over HTTP. The token and caller are taken before the check, so the
    /// future does not hold the request.
    fn principal<T>(
        &self,
        req: &Request<T>,
    ) -> impl Future<Output = Result<dhub_govern::Principal, Status>> + Send + '_ {
        let token = bearer(req.metadata().as_ref()).map(str::to_owned);
        let caller = Self::caller(req);
        async move {
            self.g
                .authenticate(token.as_deref(), &caller)
                .await
                .map_err(Status::from)
        }
    }

    /// Expires held answers and idle prepared statements.
    fn sweep(&self) {
        let ttl = self.g.flight_answer_ttl();
        lock(&self.prepared).retain(|_, p| p.used.elapsed() < PREPARED_IDLE);
        let mut m = lock(&self.results);
        m.retain(|_, p| p.created.elapsed() < ttl);
        self.report(&m);
    }

    /// The held answers, for `/metrics`.
    fn report(&self, held: &HashMap<String, Pending>) {
        let bytes = held.values().map(|p| p.answered.output.bytes).sum();
        self.g.metrics.set_flight_held(held.len(), bytes);
    }

    /// Drops the answers and prepared statements of researchers who have been revoked
    /// (or removed) since they were made.
    async fn drop_revoked(&self) {
        let mut holders: Vec<String> = lock(&self.results)
            .values()
            .map(|p| p.researcher.clone())
            .chain(lock(&self.prepared).values().map(|p| p.researcher.clone()))
            .collect();
        if holders.is_empty() {
            return;
        }
        holders.sort();
        holders.dedup();
        let gone = match self.g.revoked_among(holders).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e.detail, "checking Flight SQL holders for revocation");
                return;
            }
        };
        if gone.is_empty() {
            return;
        }
        lock(&self.prepared).retain(|_, p| !gone.contains(&p.researcher));
        let mut m = lock(&self.results);
        let before = m.len();
        m.retain(|_, p| !gone.contains(&p.researcher));
        tracing::info!(
            researchers = gone.len(),
            answers = before - m.len(),
            "dropped the Flight SQL answers of revoked researchers"
        );
        self.report(&m);
    }

    /// A `FlightInfo` for an answer whose data waits under `handle`, with the
    /// disclosure record as app metadata and in the response metadata.
    fn info_for(
        &self,
        answered: &Answered,
        handle: &str,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = TicketStatementQuery {
            statement_handle: handle.to_owned().into(),
        };
        let disclosure = serde_json::to_vec(&answered.output.disclosure).map_err(internal)?;
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(&plain_schema(&answered.output.schema))
            .map_err(internal)?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor)
            .with_total_records(answered.output.rows as i64)
            .with_total_bytes(answered.output.bytes as i64)
            .with_ordered(true)
            .with_app_metadata(disclosure);
        let mut r = Response::new(info);
        if let Ok(v) = MetadataValue::from_str(&answered.id) {
            r.metadata_mut().insert("x-dhub-query-id", v);
        }
        if let Ok(v) = MetadataValue::from_str(&answered.output.disclosure.summary()) {
            r.metadata_mut().insert("x-dhub-disclosure", v);
        }
        Ok(r)
    }

    fn keep(&self, researcher: &str, answered: Answered) -> String {
        self.sweep();
        let handle = answered.id.clone();
        let mut m = lock(&self.results);
        let mut mine: Vec<(Instant, String)> = m
            .iter()
            .filter(|(_, p)| p.researcher == researcher)
            .map(|(h, p)| (p.created, h.clone()))
            .collect();
        if mine.len() >= MAX_PENDING_PER_RESEARCHER {
            mine.sort();
            for (_, h) in &mine[..=mine.len() - MAX_PENDING_PER_RESEARCHER] {
                m.remove(h);
            }
        }
        m.insert(
            handle.clone(),
            Pending {
                researcher: researcher.to_owned(),
                answered,
                created: Instant::now(),
            },
        );
        self.report(&m);
        handle
    }

    /// Removes a held answer (a prepared statement closed or evicted before its first
    /// execution).
    fn forget(&self, handle: &str) {
        let mut m = lock(&self.results);
        m.remove(handle);
        self.report(&m);
    }

    fn metadata_info(
        &self,
        schema: &Schema,
        any: Any,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(any.encode_to_vec()));
        Ok(Response::new(
            FlightInfo::new()
                .try_with_schema(schema)
                .map_err(internal)?
                .with_endpoint(endpoint)
                .with_descriptor(descriptor),
        ))
    }

    async fn run(
        &self,
        p: &dhub_govern::Principal,
        sql: &str,
        caller: &Caller,
    ) -> Result<Answered, Status> {
        self.g.query(p, sql, caller).await.map_err(Status::from)
    }
}

fn table_schema(t: &dhub_query::TableInfo) -> Schema {
    Schema::new(
        t.columns
            .iter()
            .map(|c| {
                Field::new(
                    &c.name,
                    DataType::from_str(&c.data_type).unwrap_or(DataType::Utf8),
                    true,
                )
            })
            .collect::<Vec<_>>(),
    )
}

#[tonic::async_trait]
impl FlightSqlService for DhubFlightSql {
    type FlightService = DhubFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        // Basic credentials (the password is the token), a bearer header, or the token
        // as the handshake payload
        // padded base64 or not: clients differ (Go's ADBC driver sends no padding)
        let token = authorization(request.metadata().as_ref()).and_then(|h| {
            basic_credentials(h)
                .map(|(_, password)| password)
                .or_else(|| bearer_token(h).map(str::to_owned))
        });
        let caller = Self::caller(&request);
        let token = match token {
            Some(t) => t,
            None => {
                let mut s = request.into_inner();
                match s.next().await {
                    Some(Ok(m)) => String::from_utf8(m.payload.to_vec()).unwrap_or_default(),
                    _ => String::new(),
                }
            }
        };
        let p = self.g.authenticate(Some(token.trim()), &caller).await?;
        tracing::info!(researcher = %p.researcher.name, "flight handshake");
        let out = futures::stream::iter(vec![Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.trim().as_bytes().to_vec().into(),
        })]);
        let mut r: Response<Pin<Box<dyn Stream<Item = _> + Send>>> = Response::new(Box::pin(out));
        if let Ok(v) = MetadataValue::from_str(&format!("Bearer {}", token.trim())) {
            r.metadata_mut().insert("authorization", v);
        }
        Ok(r)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = self.principal(&request).await?;
        let caller = Self::caller(&request);
        let answered = self.run(&p, &query.query, &caller).await?;
        let handle = answered.id.clone();
        let r = self.info_for(&answered, &handle, request.into_inner())?;
        self.keep(&p.researcher.name, answered);
        Ok(r)
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let p = self.principal(&request).await?;
        let handle = String::from_utf8_lossy(&ticket.statement_handle).into_owned();
        let pending = {
            let mut m = lock(&self.results);
            match m.get(&handle) {
                // another researcher's ticket does not exist for this one
                Some(x) if x.researcher == p.researcher.name => {
                    let taken = m.remove(&handle);
                    self.report(&m);
                    taken
                }
                _ => None,
            }
        };
        let Some(pending) = pending else {
            return Err(not_found("the ticket"));
        };
        let o = pending.answered.output;
        Ok(Response::new(stream_batches(o.schema, o.batches)))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let p = self.principal(&request).await?;
        let caller = Self::caller(&request);
        let answered = self.run(&p, &query.query, &caller).await?;
        let options = arrow::ipc::writer::IpcWriteOptions::default();
        let IpcMessage(schema) = SchemaAsIpc::new(&plain_schema(&answered.output.schema), &options)
            .try_into()
            .map_err(internal)?;
        let handle = crate::governed::new_id().map_err(Status::from)?;
        let who = p.researcher.name.clone();
        // the first answer waits in the researcher's answer budget like any other
        let first = self.keep(&who, answered);
        let closed: Vec<Option<String>> = {
            let mut m = lock(&self.prepared);
            let mut mine: Vec<(Instant, String)> = m
                .iter()
                .filter(|(_, x)| x.researcher == who)
                .map(|(h, x)| (x.used, h.clone()))
                .collect();
            let mut closed = Vec::new();
            if mine.len() >= MAX_PREPARED_PER_RESEARCHER {
                mine.sort();
                for (_, h) in &mine[..=mine.len() - MAX_PREPARED_PER_RESEARCHER] {
                    closed.extend(m.remove(h).map(|x| x.first));
                }
            }
            m.insert(
                handle.clone(),
                Prepared {
                    researcher: who,
                    sql: query.query,
                    first: Some(first),
                    used: Instant::now(),
                },
            );
            closed
        };
        for h in closed.into_iter().flatten() {
            self.forget(&h);
        }
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: schema,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        let p = self.principal(&request).await?;
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).into_owned();
        let closed = {
            let mut m = lock(&self.prepared);
            if m.get(&handle)
                .is_some_and(|x| x.researcher == p.researcher.name)
            {
                m.remove(&handle)
            } else {
                None
            }
        };
        if let Some(h) = closed.and_then(|x| x.first) {
            self.forget(&h);
        }
        Ok(())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = self.principal(&request).await?;
        let caller = Self::caller(&request);
        let handle = String::from_utf8_lossy(&cmd.prepared_statement_handle).into_owned();
        self.sweep();
        let (sql, first) = {
            let mut m = lock(&self.prepared);
            match m.get_mut(&handle) {
                Some(x) if x.researcher == p.researcher.name => {
                    x.used = Instant::now();
                    (x.sql.clone(), x.first.take())
                }
                _ => return Err(not_found("the prepared statement")),
            }
        };
        let descriptor = request.into_inner();
        // the answer of the run made at creation, if it is still held (not evicted
        // by newer answers, not expired): it waits under its own handle for DoGet
        if let Some(h) = first {
            let m = lock(&self.results);
            if let Some(held) = m.get(&h).filter(|x| x.researcher == p.researcher.name) {
                return self.info_for(&held.answered, &h, descriptor);
            }
        }
        let answered = self.run(&p, &sql, &caller).await?;
        let id = answered.id.clone();
        let r = self.info_for(&answered, &id, descriptor)?;
        self.keep(&p.researcher.name, answered);
        Ok(r)
    }

    async fn do_put_prepared_statement_query(
        &self,
        _query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.principal(&request).await?;
        Err(ApiError::bad_request(
            "dhub prepared statements take no parameters: write the values into the SQL",
        )
        .into())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        let schema = query.into_builder().schema();
        self.metadata_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(&request).await?;
        let mut b = query.into_builder();
        b.append(CATALOG);
        Ok(Response::new(stream_one(b.build())?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        let schema = query.clone().into_builder().schema();
        self.metadata_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(&request).await?;
        let mut b = query.into_builder();
        b.append(CATALOG, SCHEMA);
        Ok(Response::new(stream_one(b.build())?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        let schema = query.clone().into_builder().schema();
        self.metadata_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let p = self.principal(&request).await?;
        let tables = self.g.tables(&p).await?;
        let mut b = query.into_builder();
        for t in &tables {
            let kind = if t.kind == "view" { "VIEW" } else { "TABLE" };
            b.append(CATALOG, SCHEMA, &t.name, kind, &table_schema(t))
                .map_err(internal)?;
        }
        Ok(Response::new(stream_one(b.build())?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        let schema = query.into_builder().schema();
        self.metadata_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(&request).await?;
        let mut b = query.into_builder();
        b.append("TABLE");
        b.append("VIEW");
        Ok(Response::new(stream_one(b.build())?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        let schema = query.clone().into_builder(&self.sql_info).schema();
        self.metadata_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(&request).await?;
        Ok(Response::new(stream_one(
            query.into_builder(&self.sql_info).build(),
        )?))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// What the Flight SQL middleware needs.
#[derive(Debug)]
struct FlightGuard {
    g: Arc<Governed>,
    registry: Arc<crate::conn::Registry>,
}

/// Every call first: marks its connection busy (so the idle timeout spares a running
/// statement), refuses an address that failed authentication too often
/// (`ResourceExhausted` with `retry-after`, code word `rate_limited`), and counts an
/// `Unauthenticated` or `PermissionDenied` answer as a failed authentication of the
/// address (the same limiter as HTTP's).
async fn flight_guard(
    axum::extract::State(w): axum::extract::State<Arc<FlightGuard>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let ext = req.extensions();
    let peer = ext
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        });
    let _active = peer.and_then(|p| w.registry.get(&p)).map(|c| c.begin());
    if let Some(ip) = peer.map(|p| p.ip())
        && let Err(e) = w.g.throttle(ip)
    {
        return Status::from(e).into_http::<axum::body::Body>();
    }
    let r = next.run(req).await;
    let code = r
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    if let Some(ip) = peer.map(|p| p.ip())
        && matches!(
            code.map(tonic::Code::from_i32),
            Some(tonic::Code::Unauthenticated | tonic::Code::PermissionDenied)
        )
    {
        w.g.failed_authentication(ip);
    }
    r
}

/// The Flight SQL server, TLS included, built before anything is served so that a bad
/// certificate or key stops start-up instead of silently losing a listener. TLS uses
/// the process's rustls crypto provider, which [`crate::serve`] chooses before this.
pub fn server(
    g: Arc<Governed>,
    tls: Option<&(std::path::PathBuf, std::path::PathBuf)>,
    registry: Arc<crate::conn::Registry>,
) -> Result<tonic::transport::server::Router, ApiError> {
    let header_timeout = g.net().limits().header_timeout;
    let svc = arrow_flight::flight_service_server::FlightServiceServer::from_arc(
        DhubFlightSql::start(g.clone()),
    )
    .max_decoding_message_size(16 << 20)
    .max_encoding_message_size(64 << 20);
    let mut builder = tonic::transport::Server::builder();
    if let Some((cert, key)) = tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| {
                ApiError::startup(format!(
                    "reading the TLS file {} for Flight SQL: {e}",
                    p.display()
                ))
            })
        };
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        builder = builder
            .tls_config(
                tonic::transport::ServerTlsConfig::new()
                    .identity(identity)
                    .timeout(header_timeout),
            )
            .map_err(|e| {
                ApiError::startup(format!(
                    "the TLS certificate and key for Flight SQL: {}",
                    crate::error::chain(&e)
                ))
            })?;
    }
    let guard = Arc::new(FlightGuard { g, registry });
    let routes = tonic::service::Routes::new(svc)
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(guard, flight_guard));
    Ok(builder.add_routes(tonic::service::Routes::from(routes)))
}

/// Serves Flight SQL on `listener` (its connections under `net`'s caps and timeouts)
/// until `shutdown` resolves.
pub async fn serve_flight(
    router: tonic::transport::server::Router,
    listener: tokio::net::TcpListener,
    net: Arc<crate::conn::Net>,
    registry: Arc<crate::conn::Registry>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    router
        .serve_with_incoming_shutdown(crate::conn::incoming(listener, net, registry), shutdown)
        .await
        .map_err(|e| ApiError::startup(format!("serving Flight SQL: {}", crate::error::chain(&e))))
}

/// Binds the Flight SQL listener (so its address is known, and a taken port stops
/// start-up, before anything is served).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ApiError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ApiError::startup(format!("cannot listen for Flight SQL on {addr}: {e}")))
}
