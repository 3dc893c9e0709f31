//! The HTTP front end: the routes, and the middleware every request passes first
//! (connection bookkeeping, the failed-authentication limit of [`Governed::throttle`],
//! the whole body within the header timeout and the size limit, and the headers every
//! response carries). Handlers read the token with [`bearer`], call [`Governed`] and
//! answer errors with `?` (statuses: [`crate::error::statuses`]); no rule lives here.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dhub_govern::AuditEvent;
use serde::Deserialize;
use serde_json::json;

use crate::conn::Registry;
use crate::credentials::bearer;
use crate::error::{ApiError, Kind};
use crate::format::{Format, encode};
use crate::governed::extracts::Fetched;
use crate::governed::{Caller, Governed};

type St = State<Arc<Governed>>;

/// The largest request body (a query's JSON), bytes.
pub const BODY_LIMIT: usize = 256 * 1024;

/// How much of an oversized body is read (and dropped) before the 413 is sent.
const DRAIN_LIMIT: usize = 4 << 20;

/// What the HTTP middleware needs beside the governed state.
#[derive(Debug)]
pub struct HttpGuard {
    /// The governed path (its failed-authentication limit and connection limits are
    /// shared with Flight SQL).
    pub g: Arc<Governed>,
    /// The HTTP listener's live connections.
    pub registry: Arc<Registry>,
    /// SHA-256 of the bearer token that opens `/metrics` (`None`: `/metrics` is off).
    pub metrics_token: Option<Vec<u8>>,
}

/// The API's routes over the shared state.
pub fn router(g: Arc<Governed>, web: Arc<HttpGuard>) -> Router {
    Router::new()
        .route("/v1/query", post(query))
        .route("/v1/tables", get(tables))
        .route("/v1/whoami", get(whoami))
        .route("/v1/queries/{id}/disclosure", get(disclosure))
        .route("/v1/extracts", get(extracts))
        .route("/v1/extracts/{id}/files/{name}", get(extract_file))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(|| async {
            ApiError::not_found("no such endpoint; GET /openapi.json describes the API")
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::Extension(web.clone()))
        .layer(axum::middleware::from_fn_with_state(web, guard))
        .with_state(g)
}

/// The headers every response carries: answers hold research data and must not be
/// cached or sniffed as another type.
fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Every request first: marks its connection busy (so the idle timeout spares a long
/// query), answers 429 with `Retry-After` to an address that failed authentication too
/// often, reads the whole body within the header timeout and [`BODY_LIMIT`] (408 and
/// 413 otherwise, JSON like every error), counts a 401 or 403 answer as a failed
/// authentication of the address, and adds the [`secured`] headers.
async fn guard(
    State(web): State<Arc<HttpGuard>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    use futures::StreamExt;

    let _active = web.registry.get(&addr).map(|c| c.begin());
    let ip = addr.ip();
    if req.uri().path() != "/healthz"
        && let Err(e) = web.g.throttle(ip)
    {
        return secured(e.into_response());
    }
    let too_large = || {
        ApiError::too_large(format!(
            "the request body is over {} KiB; send a shorter query",
            BODY_LIMIT / 1024
        ))
    };
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return secured(too_large().into_response());
    }
    // a body over the limit is still read (and dropped) up to DRAIN_LIMIT, so that the
    // client, still sending, can read the 413 instead of a reset connection
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut seen = 0usize;
        let mut over = declared.is_some_and(|n| n > BODY_LIMIT as u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::bad_request("the request body could not be read; send it again")
            })?;
            seen += chunk.len();
            if !over && buf.len() + chunk.len() > BODY_LIMIT {
                over = true;
                buf = Vec::new();
            }
            if over {
                if seen > DRAIN_LIMIT {
                    break;
                }
                continue;
            }
            buf.extend_from_slice(&chunk);
        }
        if over { Err(too_large()) } else { Ok(buf) }
    };
    let body = match tokio::time::timeout(web.g.net().limits().header_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return secured(e.into_response()),
        Err(_) => {
            return secured(
                ApiError::new(
                    Kind::RequestTimeout,
                    "request_timeout",
                    "the request body did not arrive in time; send the whole request at once",
                )
                .into_response(),
            );
        }
    };
    let r = next.run(Request::from_parts(parts, Body::from(body))).await;
    if matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        web.g.failed_authentication(ip);
    }
    secured(r)
}

fn caller(addr: SocketAddr) -> Caller {
    Caller {
        addr: addr.to_string(),
        via: "http",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    sql: String,
    #[serde(default)]
    format: Option<String>,
}

async fn query(
    State(g): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<bytes::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(addr);
    let p = g.authenticate(bearer(&headers), &c).await?;
    // any content type: the body is JSON either way
    let parsed = body
        .as_ref()
        .map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(r.body_text())
            } else {
                ApiError::bad_request(r.body_text())
            }
        })
        .and_then(|b| {
            serde_json::from_slice::<QueryBody>(b).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body must be JSON {{\"sql\": \"…\", \"format\": \"json|csv|arrow|parquet\"}} (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })
        })
        .and_then(|q| {
            let f: Format = q.format.as_deref().unwrap_or("json").parse()?;
            Ok((q, f))
        });
    let (body, format) = match parsed {
        Ok(x) => x,
        Err(e) => {
            // a body that is not a query is audited too (a bounded prefix of it)
            let (body_bytes, body) = match &body {
                Ok(b) => (
                    Some(b.len() as u64),
                    Some(String::from_utf8_lossy(b).into_owned()),
                ),
                Err(_) => (None, None),
            };
            g.audit_request(&p, &c, Err(&e), |request| AuditEvent::QueryInvalid {
                request,
                body_bytes,
                body,
            })
            .await?;
            return Err(e);
        }
    };
    let answered = g.query(&p, &body.sql, &c).await?;
    // the token may have been revoked (or have expired) while the query ran
    g.recheck(bearer(&headers), &p, &answered.id, &c).await?;
    let disclosure = answered.output.disclosure.clone();
    let (content_type, bytes) = encode(format, &answered)?;
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&answered.id) {
        h.insert("x-dhub-query-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&disclosure.summary()) {
        h.insert("x-dhub-disclosure", v);
    }
    Ok(r)
}

async fn tables(
    State(g): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = caller(addr);
    let p = g.authenticate(bearer(&headers), &c).await?;
    let t = g.tables(&p).await;
    let tables = t.as_ref().ok().map(|t| t.len() as u64);
    g.audit_request(&p, &c, t.as_ref().map(|_| ()), |request| {
        AuditEvent::Tables { request, tables }
    })
    .await?;
    let t = t?;
    Ok(
        axum::Json(json!({"project": p.project.id, "release": p.project.release, "tables": t}))
            .into_response(),
    )
}

async fn whoami(
    State(g): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = caller(addr);
    let p = g.authenticate(bearer(&headers), &c).await?;
    g.audit_request(&p, &c, Ok(()), AuditEvent::Whoami).await?;
    Ok(axum::Json(json!({
        "researcher": p.researcher.name,
        "project": p.project.id,
        "title": p.project.title,
        "release": p.project.release,
        "tables": p.project.tables.to_string(),
        "policy": p.project.policy,
        "expires": p.researcher.expires.or(p.project.expires).map(|d| d.to_string()),
    }))
    .into_response())
}

async fn disclosure(
    State(g): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = caller(addr);
    let p = g.authenticate(bearer(&headers), &c).await?;
    let found = g.disclosure(&p, &id).await;
    // every lookup is audited, found or not (the id asked for, bounded)
    g.audit_request(&p, &c, found.as_ref().map(|_| ()), |request| {
        AuditEvent::DisclosureLookup {
            request,
            lookup_query_id: id.clone(),
        }
    })
    .await?;
    Ok(axum::Json(found?).into_response())
}

async fn extracts(
    State(g): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = caller(addr);
    let p = g.authenticate_partner(bearer(&headers), &c).await?;
    Ok(axum::Json(g.list_extracts(&p, &c).await?).into_response())
}

async fn extract_file(
    State(g): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    use futures::TryStreamExt;

    let c = caller(addr);
    let p = g.authenticate_partner(bearer(&headers), &c).await?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (d, content_type) = match g.fetch_extract_file(&p, &id, &name, range, &c).await? {
        Fetched::Ok(d, t) => (d, t),
        Fetched::Unsatisfiable(size) => {
            let mut r = ApiError::new(
                Kind::RangeNotSatisfiable,
                "range_not_satisfiable",
                format!("the file has {size} bytes; ask for a range inside it"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let status = if d.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let len = d.range.end - d.range.start;
    let content_range = format!(
        "bytes {}-{}/{}",
        d.range.start,
        d.range.end.saturating_sub(1),
        d.size
    );
    let etag = d.sha256.clone();
    let body = axum::body::Body::from_stream(d.body.map_err(std::io::Error::other));
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if d.partial
        && let Ok(v) = HeaderValue::from_str(&content_range)
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Some(e) = etag.and_then(|e| HeaderValue::from_str(&format!("\"{e}\"")).ok()) {
        h.insert(header::ETAG, e);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// `GET /metrics`: only with the metrics bearer token (`DHUB_METRICS_TOKEN`); off (404)
/// when the server has none.
async fn metrics(
    State(g): St,
    axum::Extension(web): axum::Extension<Arc<HttpGuard>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(want) = &web.metrics_token else {
        return Err(ApiError::not_found(
            "the metrics endpoint is off; start dhub serve with DHUB_METRICS_TOKEN set and send that token as `Authorization: Bearer TOKEN`",
        ));
    };
    let given = bearer(&headers).map(|t| ring::digest::digest(&ring::digest::SHA256, t.as_bytes()));
    if given.as_ref().map(|d| d.as_ref()) != Some(want.as_slice()) {
        return Err(ApiError::new(
            Kind::Unauthorized,
            "unauthorized",
            "send the metrics token as `Authorization: Bearer TOKEN`",
        ));
    }
    let mut body = g.metrics.render(g.slots_free());
    body.push_str(&g.net().render());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::SPEC,
    )
        .into_response()
}

/// Liveness: `ok` as text, or with `Accept: application/json`, `{"status": "ok",
/// "sandbox": {…}}`: what confines the query workers ([`dhub_query::sandbox`]). The
/// `x-dhub-sandbox` header carries its one-line summary either way.
async fn healthz(State(g): St, headers: HeaderMap) -> Response {
    let sandbox = g.worker_sandbox();
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let mut r = if json {
        axum::Json(json!({"status": "ok", "sandbox": sandbox})).into_response()
    } else {
        "ok\n".into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&sandbox.summary()) {
        r.headers_mut().insert("x-dhub-sandbox", v);
    }
    r
}
