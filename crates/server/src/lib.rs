//! # dhub-server: the researcher API
//!
//! `dhub serve` answers approved researchers over HTTP (axum; TLS with rustls when a
//! certificate is given) and Arrow Flight SQL. Every request that reaches a project,
//! accepted or refused, writes one entry to the tamper-evident audit log **before** its
//! response is sent. Queries take the one governed path ([`Governed::query`]), which
//! every front end shares: token → project → release scope → a place in the admission
//! queue (fair across researchers, bounded; [`queue`]) → an isolated query worker
//! (guard, session, disclosure control, limits) → audit. SQLite work (token checks,
//! audit writes, project, extract and disclosure lookups) runs on the blocking thread
//! pool, never on the async threads.
//!
//! ## Where each behaviour lives
//!
//! | module | what |
//! | --- | --- |
//! | [`governed`] | [`Governed`], the one governed path every front end calls: the failed-authentication limit, token checks and refusal counts, release scopes, admission, query workers, audit entries, the answer-time token recheck, disclosure lookups, and (in `governed::extracts`) partner extract listings and downloads; every call into the SQLite governance store goes through its one blocking-pool helper |
//! | [`credentials`] | the one bearer-token parser ([`bearer_token`]) and the one place a token is read from HTTP headers or gRPC metadata ([`credentials::bearer`]); HTTP Basic for the Flight SQL handshake |
//! | [`error`] | [`ApiError`] and `From` every library error (query, auth, governance store, research store, extracts); [`error::statuses`], the one mapping of an error kind to its HTTP status and gRPC code |
//! | `routes` | the HTTP front end (axum): routes, the request middleware (body limits and timeouts, `no-store` headers), response formats through `format` |
//! | [`flight`] | the Arrow Flight SQL front end (tonic): statements, prepared statements, catalog metadata, held answers |
//! | `conn` | connection caps, header and idle timeouts, and the failed-authentication counts, for both listeners ([`NetLimits`]) |
//! | [`queue`] | the admission queue to the query workers |
//! | `metrics` | `/metrics` counters ([`Metrics`]) |
//! | `serve` | [`serve`] and [`ServerConfig`]: start-up (crypto provider, every listener bound first, ready file) and graceful shutdown |
//!
//! A new front end (the web console comes next) reads the token with
//! [`credentials::bearer`], names its [`Caller`], calls [`Governed`] and answers its
//! errors through [`ApiError`]'s HTTP or gRPC form; it holds no rule of its own.
//!
//! ## HTTP endpoints
//!
//! | endpoint | what |
//! | --- | --- |
//! | `POST /v1/query` | `{"sql": "…", "format": "json"\|"csv"\|"arrow"\|"parquet"}` with `Authorization: Bearer TOKEN` |
//! | `GET /v1/tables` | the granted tables and views, their columns and descriptions |
//! | `GET /v1/whoami` | the researcher, project, release and output policy |
//! | `GET /v1/queries/{id}/disclosure` | the disclosure record of one of the project's queries |
//! | `GET /v1/extracts`, `GET /v1/extracts/{id}/files/{name}` | a partner's released extracts and their files |
//! | `GET /healthz` | liveness |
//! | `GET /metrics` | Prometheus text (with the metrics token only; see [`ServerConfig::metrics_token`]) |
//! | `GET /openapi.json` | the whole API |

mod conn;
pub mod credentials;
pub mod error;
pub mod flight;
mod format;
pub mod governed;
mod metrics;
mod openapi;
pub mod queue;
mod routes;
mod serve;

pub use conn::NetLimits;
pub use credentials::{basic_credentials, bearer_token};
pub use error::{ApiError, status_of};
pub use governed::{Answered, Caller, Governed, new_id};
pub use metrics::Metrics;
pub use serve::{ServerConfig, serve};
