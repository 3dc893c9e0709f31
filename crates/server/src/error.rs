//! The server's one error type and its statuses, mapped in one place.
//!
//! Every failure a front end answers is an [`ApiError`]: a [`Kind`] (what sort of
//! failure), a stable code word, the message the client reads and an audit-only detail.
//! The libraries' errors become one through `From` — [`QueryError`], [`AuthFailure`],
//! [`GovernError`], [`StoreError`], [`ExtractError`] and a failed blocking task — so
//! handlers use `?`. [`statuses`] is the ONE mapping of a kind to its HTTP status and
//! its gRPC code: HTTP answers through `IntoResponse`, Flight SQL through
//! `From<ApiError> for tonic::Status`, and a third front end through either.
//!
//! HTTP bodies are `{"error": {"code": …, "message": …}}`; over gRPC the code word is in
//! the `x-dhub-error-code` metadata and the message is the status message. A message
//! never holds a data value, a token, a key or a server path: a failure inside dhub is a
//! generic 500 whose cause stays in the detail (audit log, server log).
//!
//! A user's mistake is a 4xx with a message saying what to do; which library errors are
//! mistakes is decided in the `From` impls below:
//!
//! | error | kind |
//! | --- | --- |
//! | `QueryError` | by its code: refused, not found, query failed → 400; timeout → 504; too large, resources exhausted → 413; busy → 429; internal → 500 |
//! | `AuthFailure` | unknown token → 401; revoked, expired, project expired → 403 |
//! | `GovernError` | no such thing → 404; a bad name → 400; exists → 409; anything else → 500 (the store itself, and `Invalid`, whose messages may name server paths or internal failures) |
//! | `StoreError` | 500: a researcher or partner never names a store object, so a store failure is the server's |
//! | `ExtractError` | k-anonymity, row limit, pseudonym columns, the extract query → 400; the governance store → as `GovernError`; spec, files, signing key, verification → 500 (their messages name server paths) |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dhub_extract::ExtractError;
use dhub_govern::{AuthFailure, GovernError};
use dhub_query::{ErrorCode, QueryError};
use dhub_store::StoreError;

/// What sort of failure an [`ApiError`] is; [`statuses`] gives its HTTP status and gRPC
/// code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A malformed or refused request (400).
    BadRequest,
    /// No valid credentials (401).
    Unauthorized,
    /// Valid credentials that may not do this (now): revoked, expired (403).
    Forbidden,
    /// No such endpoint or thing, as far as the caller may know (404).
    NotFound,
    /// The request did not arrive in time (408).
    RequestTimeout,
    /// The thing already exists (409).
    Conflict,
    /// The request or its answer is over a limit (413).
    TooLarge,
    /// A byte range outside the file (416).
    RangeNotSatisfiable,
    /// Too many requests: the admission queue is full, or the address failed
    /// authentication too often (429).
    TooManyRequests,
    /// The query's time limit ran out (504).
    Timeout,
    /// Something inside dhub failed (500).
    Internal,
}

/// The ONE mapping of an error kind to its HTTP status and its gRPC code.
pub const fn statuses(kind: Kind) -> (StatusCode, tonic::Code) {
    use tonic::Code;
    match kind {
        Kind::BadRequest => (StatusCode::BAD_REQUEST, Code::InvalidArgument),
        Kind::Unauthorized => (StatusCode::UNAUTHORIZED, Code::Unauthenticated),
        Kind::Forbidden => (StatusCode::FORBIDDEN, Code::PermissionDenied),
        Kind::NotFound => (StatusCode::NOT_FOUND, Code::NotFound),
        Kind::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, Code::DeadlineExceeded),
        Kind::Conflict => (StatusCode::CONFLICT, Code::AlreadyExists),
        Kind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, Code::ResourceExhausted),
        Kind::RangeNotSatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, Code::OutOfRange),
        Kind::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted),
        Kind::Timeout => (StatusCode::GATEWAY_TIMEOUT, Code::DeadlineExceeded),
        Kind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
    }
}

impl Kind {
    /// The kind of a query-service error code.
    pub const fn of_query(code: ErrorCode) -> Self {
        match code {
            ErrorCode::Refused | ErrorCode::NotFound | ErrorCode::QueryFailed => Kind::BadRequest,
            ErrorCode::Timeout => Kind::Timeout,
            ErrorCode::TooLarge | ErrorCode::ResourcesExhausted => Kind::TooLarge,
            ErrorCode::Busy => Kind::TooManyRequests,
            ErrorCode::Internal => Kind::Internal,
        }
    }
}

/// The HTTP status of a query-service error code (through [`statuses`]).
pub fn status_of(code: ErrorCode) -> StatusCode {
    statuses(Kind::of_query(code)).0
}

/// An error answered to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// What sort of failure (its statuses: [`statuses`]).
    pub kind: Kind,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Audit-only detail.
    pub detail: String,
    /// Seconds after which to try again (`Retry-After`), when the error says.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A new error.
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            kind,
            code,
            detail: message.clone(),
            message,
            retry_after: None,
        }
    }

    /// Its HTTP status.
    pub fn status(&self) -> StatusCode {
        statuses(self.kind).0
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, "bad_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, "not_found", message)
    }

    /// 413 `too_large`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(Kind::TooLarge, "too_large", message)
    }

    /// 429 `rate_limited`: the address failed authentication too often; try again in
    /// `secs` seconds (HTTP `Retry-After`, gRPC `retry-after` metadata).
    pub fn rate_limited(secs: u64) -> Self {
        let mut e = Self::new(
            Kind::TooManyRequests,
            "rate_limited",
            format!(
                "too many failed authentications from your address; try again in {secs} s with a valid token"
            ),
        );
        e.retry_after = Some(secs);
        e
    }

    /// 500, generic to the client.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            Kind::Internal,
            "internal",
            "the server failed; the error was recorded for the data manager",
        );
        e.detail = detail.into();
        e
    }

    /// A failure to start serving (a taken port, an unreadable certificate): the
    /// message is for the operator who started the server, who reads it on stderr.
    pub fn startup(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, "startup", message)
    }

    /// The audit outcome word for this error.
    pub fn outcome(&self) -> &'static str {
        self.code
    }

    /// The same error with `what` before its detail (`what: detail`): where it happened,
    /// for the audit log and the operator; the client's message is unchanged.
    pub fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.detail = format!("{what}: {}", self.detail);
        self
    }
}

/// [`ApiError::context`] on a result whose error becomes an [`ApiError`].
pub trait Context<T> {
    /// The error, if any, as an [`ApiError`] with `what` before its detail.
    fn context(self, what: impl std::fmt::Display) -> Result<T, ApiError>;
}

impl<T, E: Into<ApiError>> Context<T> for Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, ApiError> {
        self.map_err(|e| e.into().context(what))
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        Self {
            kind: Kind::of_query(e.code),
            code: e.code.as_str(),
            message: e.message,
            detail: e.detail,
            retry_after: None,
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Unknown => Self::new(
                Kind::Unauthorized,
                "unauthorized",
                "send a valid researcher token as `Authorization: Bearer TOKEN`",
            ),
            AuthFailure::Revoked => Self::new(Kind::Forbidden, "revoked", f.to_string()),
            AuthFailure::Expired => Self::new(Kind::Forbidden, "expired", f.to_string()),
            AuthFailure::ProjectExpired => {
                Self::new(Kind::Forbidden, "project_expired", f.to_string())
            }
        }
    }
}

impl From<GovernError> for ApiError {
    fn from(e: GovernError) -> Self {
        match &e {
            GovernError::NotFound { .. } => Self::not_found(e.to_string()),
            GovernError::BadName { .. } => Self::bad_request(e.to_string()),
            GovernError::Exists { .. } => Self::new(Kind::Conflict, "conflict", e.to_string()),
            // the store itself, and `Invalid`, which also carries failures inside dhub
            // (a directory it cannot create, the random generator): their messages may
            // name the server's files, so they stay in the detail
            _ => Self::internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // researchers and partners reach the store only through their project: a store
        // failure is the server's, and its message names URLs and tables of the server
        Self::internal(e.to_string())
    }
}

impl From<ExtractError> for ApiError {
    fn from(e: ExtractError) -> Self {
        match e {
            ExtractError::Govern(g) => g.into(),
            ExtractError::KAnonymity { .. }
            | ExtractError::TooManyRows { .. }
            | ExtractError::Pseudonyms { .. }
            | ExtractError::Query { .. } => Self::bad_request(e.to_string()),
            // spec files, extract files, the signing key: their messages name the
            // server's paths
            _ => Self::internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("a blocking task failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        match self.retry_after {
            Some(secs) => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            // busy: the admission queue was full or the wait for a worker ran out
            None if status == StatusCode::TOO_MANY_REQUESTS => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            None => {}
        }
        r
    }
}

impl From<ApiError> for tonic::Status {
    /// The gRPC status of an API error, for the Flight SQL front end: the same code
    /// word (in the `x-dhub-error-code` metadata) and the same message as over HTTP.
    fn from(e: ApiError) -> Self {
        let mut s = tonic::Status::new(statuses(e.kind).1, e.message);
        if let Ok(v) = e.code.parse() {
            s.metadata_mut().insert("x-dhub-error-code", v);
        }
        if let Some(secs) = e.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            s.metadata_mut().insert("retry-after", v);
        }
        s
    }
}

/// An error and its sources, `: `-joined (transport errors keep the cause in a source).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_keeps_its_http_and_grpc_status() {
        use tonic::Code;
        // the statuses each front end answered before the mapping was one function
        for (kind, http, grpc) in [
            (Kind::BadRequest, 400, Code::InvalidArgument),
            (Kind::Unauthorized, 401, Code::Unauthenticated),
            (Kind::Forbidden, 403, Code::PermissionDenied),
            (Kind::NotFound, 404, Code::NotFound),
            (Kind::RequestTimeout, 408, Code::DeadlineExceeded),
            (Kind::TooLarge, 413, Code::ResourceExhausted),
            (Kind::TooManyRequests, 429, Code::ResourceExhausted),
            (Kind::Timeout, 504, Code::DeadlineExceeded),
            (Kind::Internal, 500, Code::Internal),
        ] {
            let (h, g) = statuses(kind);
            assert_eq!((h.as_u16(), g), (http, grpc), "{kind:?}");
        }
    }

    #[test]
    fn query_codes_keep_their_statuses() {
        for (code, http) in [
            (ErrorCode::Refused, 400),
            (ErrorCode::NotFound, 400),
            (ErrorCode::QueryFailed, 400),
            (ErrorCode::Timeout, 504),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::ResourcesExhausted, 413),
            (ErrorCode::Busy, 429),
            (ErrorCode::Internal, 500),
        ] {
            assert_eq!(status_of(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn a_mistake_is_4xx_and_a_store_failure_is_a_generic_500() {
        let e = ApiError::from(GovernError::NotFound {
            kind: "extract",
            id: "x".into(),
            hint: "list them",
        });
        assert_eq!((e.status().as_u16(), e.code), (404, "not_found"));
        let e = ApiError::from(GovernError::BadName {
            kind: "extract id",
            value: "x y".into(),
            rule: "letters and digits",
        });
        assert_eq!((e.status().as_u16(), e.code), (400, "bad_request"));
        let e = ApiError::from(GovernError::Invalid("cannot create /srv/dhub".into()));
        assert_eq!(e.status().as_u16(), 500);
        assert!(!e.message.contains("/srv"), "{}", e.message);
        let e = ApiError::from(GovernError::Corrupt {
            path: "/srv/dhub/govern.db".into(),
            what: "project p".into(),
            message: "bad json".into(),
        });
        assert_eq!(e.status().as_u16(), 500);
        assert!(!e.message.contains("/srv"), "{}", e.message);
        assert!(e.detail.contains("/srv/dhub/govern.db"), "{}", e.detail);
        let e = ApiError::from(StoreError::NoSuchRelease { name: "r1".into() });
        assert_eq!((e.status().as_u16(), e.code), (500, "internal"));
        let e = ApiError::from(ExtractError::TooManyRows {
            rows: 10,
            max_rows: 5,
        });
        assert_eq!(e.status().as_u16(), 400);
        let e = ApiError::from(ExtractError::Govern(GovernError::NotFound {
            kind: "extract",
            id: "x".into(),
            hint: "",
        }));
        assert_eq!(e.status().as_u16(), 404);
    }

    #[test]
    fn context_prefixes_the_detail_only() {
        let e: Result<(), ApiError> =
            Err(GovernError::Invalid("x".into())).context("writing the audit entry");
        let e = e.unwrap_err();
        assert_eq!(e.code, "internal");
        assert_eq!(e.detail, "writing the audit entry: x");
        let e: Result<(), ApiError> = Err(ApiError::bad_request("y")).context("reading");
        let e = e.unwrap_err();
        assert_eq!((e.message.as_str(), e.detail.as_str()), ("y", "reading: y"));
    }

    #[test]
    fn rate_limited_says_when_to_retry_on_both_front_ends() {
        let e = ApiError::rate_limited(7);
        let r = e.clone().into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        let s = tonic::Status::from(e);
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert_eq!(s.metadata().get("retry-after").unwrap(), "7");
        assert_eq!(
            s.metadata().get("x-dhub-error-code").unwrap(),
            "rate_limited"
        );
        // busy (the queue) asks for a retry in a second over HTTP
        let busy: ApiError = QueryError::new(ErrorCode::Busy, "busy").into();
        assert_eq!(busy.into_response().headers()[header::RETRY_AFTER], "1");
    }
}
