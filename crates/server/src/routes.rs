//! The HTTP routes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::format::{Format, encode};
use crate::{Caller, Governed};

type St = State<Arc<Governed>>;

/// The API's routes over the shared state.
pub fn router(g: Arc<Governed>) -> Router {
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
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; GET /openapi.json describes the API",
            )
        })
        .layer(DefaultBodyLimit::max(256 * 1024))
        .with_state(g)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
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
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let c = caller(addr);
    let p = g.authenticate(bearer(&headers), &c)?;
    // any content type: the body is JSON either way
    let body: QueryBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON {{\"sql\": \"…\", \"format\": \"json|csv|arrow|parquet\"}} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let format: Format = body.format.as_deref().unwrap_or("json").parse()?;
    let answered = g.query(&p, &body.sql, &c).await?;
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
    let p = g.authenticate(bearer(&headers), &caller(addr))?;
    let t = g.tables(&p).await?;
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
    let p = g.authenticate(bearer(&headers), &caller(addr))?;
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
    let p = g.authenticate(bearer(&headers), &caller(addr))?;
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no query with that id in your project",
        ));
    }
    Ok(axum::Json(g.disclosure(&p, &id)?).into_response())
}

async fn extracts(
    State(g): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = caller(addr);
    let p = g.authenticate_partner(bearer(&headers), &c)?;
    Ok(axum::Json(g.list_extracts(&p, &c)?).into_response())
}

async fn extract_file(
    State(g): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    use futures::TryStreamExt;

    let c = caller(addr);
    let p = g.authenticate_partner(bearer(&headers), &c)?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (d, content_type) = match g.fetch_extract_file(&p, &id, &name, range, &c).await? {
        crate::extracts::Fetched::Ok(d, t) => (d, t),
        crate::extracts::Fetched::Unsatisfiable(size) => {
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
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

async fn metrics(State(g): St) -> Response {
    let body = g.metrics.render(g.slots_free());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
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
