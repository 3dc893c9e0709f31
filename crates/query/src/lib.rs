//! # dhub-query: governed SQL over a release
//!
//! Approved researchers query a release of the research store with SQL. Nothing they
//! send may read a file, change state, see another project's tables, exhaust the
//! server, or go unrecorded. This crate is the governed path every front end (HTTP,
//! Flight SQL) calls:
//!
//! 1. **Guard** ([`guard`]): the statement is parsed and checked *before* planning:
//!    exactly one read-only query (or `EXPLAIN` of one), bounded in size, naming only
//!    the project's tables and views.
//! 2. **Session** ([`QueryService`]): a fresh DataFusion session per request, holding
//!    only the project's granted tables (Delta providers at the release's versions)
//!    and the curated views of `sql/views`; an object-store registry that reaches only
//!    the research store, read-only ([`scoped`]); a memory pool of its own;
//!    `repeat`/`lpad`/`rpad` capped ([`caps`]). Each request's session is a copy of an
//!    immutable template built once per scope (granted tables at their versions), so
//!    table metadata and planned views are reused and nothing one request does (the
//!    guard admits no `SET` or DDL) reaches another.
//! 3. **Policy** ([`sdc`]): output disclosure control on the logical plan (order
//!    statistics through [`order`]), and a disclosure record of what was applied; in
//!    aggregate mode every expression is then made total ([`total`]), so no row's
//!    value can show through an error.
//! 4. **Limits**: time, memory, result rows and bytes; each query runs in a separate
//!    worker process ([`worker`]) so a runaway query is killed, never the server;
//!    workers start with a cleared environment, a CPU-time limit and, where the kernel
//!    has Landlock, read-only access to the store alone ([`sandbox`]).
//!
//! Errors ([`QueryError`]) carry a researcher-safe message and an audit-only detail.

pub mod caps;
pub mod dominance;
pub mod error;
pub mod guard;
pub mod order;
pub mod persons;
pub mod review;
pub mod sandbox;
pub mod scoped;
pub mod sdc;
mod service;
pub mod total;
pub mod worker;

pub use error::{ErrorCode, QueryError};
pub use sdc::Disclosure;
pub use service::{
    ColumnInfo, Limits, QueryOutput, QueryRequest, QueryService, Scope, TableInfo, View,
    load_views, timeout,
};
pub use worker::{Answer, WorkerCommand, WorkerConfig, WorkerPool, WorkerRequest, worker_main};
