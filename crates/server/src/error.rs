//! API errors and their HTTP statuses, mapped in one place. Bodies are
//! `{"error": {"code": …, "message": …}}`; a message never holds a data value, a token,
//! a key or a server path (the query service's audit-only detail stays in the audit log).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dhub_govern::AuthFailure;
use dhub_query::{ErrorCode, QueryError};

/// An error answered to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Audit-only detail.
    pub detail: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            code,
            detail: message.clone(),
            message,
        }
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 500, generic to the client.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the error was recorded for the data manager",
        );
        e.detail = detail.into();
        e
    }

    /// A failure to start serving (a taken port, an unreadable certificate): the
    /// message is for the operator who started the server, who reads it on stderr.
    pub fn startup(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "startup", message)
    }

    /// The audit outcome word for this error.
    pub fn outcome(&self) -> &'static str {
        self.code
    }
}

/// The status of each query-service error code. The one mapping of dhub's errors to
/// HTTP; the Flight SQL front end maps the same codes to gRPC statuses.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Refused | ErrorCode::NotFound | ErrorCode::QueryFailed => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::TooLarge | ErrorCode::ResourcesExhausted => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Busy => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        Self {
            status: status_of(e.code),
            code: e.code.as_str(),
            message: e.message,
            detail: e.detail,
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Unknown => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send a valid researcher token as `Authorization: Bearer TOKEN`",
            ),
            AuthFailure::Revoked => Self::new(StatusCode::FORBIDDEN, "revoked", f.to_string()),
            AuthFailure::Expired => Self::new(StatusCode::FORBIDDEN, "expired", f.to_string()),
            AuthFailure::ProjectExpired => {
                Self::new(StatusCode::FORBIDDEN, "project_expired", f.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS
            && !r.headers().contains_key(axum::http::header::RETRY_AFTER)
        {
            // busy: the admission queue was full or the wait for a worker ran out
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        r
    }
}

impl From<ApiError> for tonic::Status {
    /// The gRPC status of an API error, for the Flight SQL front end: the same code
    /// word (in the `x-dhub-error-code` metadata) and the same message as over HTTP.
    fn from(e: ApiError) -> Self {
        use tonic::Code;
        let code = match e.status {
            StatusCode::BAD_REQUEST => Code::InvalidArgument,
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => Code::DeadlineExceeded,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
                Code::ResourceExhausted
            }
            _ => Code::Internal,
        };
        let mut s = tonic::Status::new(code, e.message);
        if let Ok(v) = e.code.parse() {
            s.metadata_mut().insert("x-dhub-error-code", v);
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
