//! # dhub-extract: partner extracts
//!
//! Innovation-hub partners receive approved extracts, not SQL access. An extract is a
//! query from `sql/extracts/<name>.sql` with its spec `sql/extracts/<name>.toml`
//! ([`spec`]), requested by one person and approved by another (the four-eyes workflow
//! lives in `dhub-govern`), then run ([`run`]):
//!
//! 1. the frozen query is planned over the project's release through the same guard as
//!    researcher SQL (read-only, one statement, granted tables only);
//! 2. a first, aggregating pass counts the equivalence classes over the spec's
//!    quasi-identifiers: if any is smaller than `k` the run fails, writes nothing and
//!    reports the class sizes (never the values);
//! 3. a second pass streams the rows, re-keys every `[rekey]` column from the research
//!    pseudonym to the **project pseudonym** (HMAC-SHA256 under `K("project:<id>")`,
//!    DESIGN.md), refuses any other column that holds research pseudonyms, and writes
//!    Parquet (zstd) or CSV files to `<extracts>/<project>/<extract-id>/`;
//! 4. `manifest.json` (files with size and SHA-256, rows, schema, hashes, release, key
//!    ids, requester, approver, times, k achieved) and `manifest.sig` (Ed25519 over
//!    the manifest's bytes, [`signing`]) are written last.
//!
//! The hub's policy around a run lives here too ([`policy`]), so every front end (the
//! CLI's `dhub extract run`, the web console) calls the same functions: only an
//! approved extract of a project that has not expired runs ([`approved`]), and
//! [`run_and_record`] records every outcome in the governance store (released, or the
//! failure audited as `extract.run` with its reason).
//!
//! Partners download the files over HTTP ([`files`]) and check them with
//! [`manifest::verify_dir`] (`dhub extract verify`) or any Ed25519 tool.

pub mod error;
pub mod files;
pub mod manifest;
pub mod policy;
pub mod run;
pub mod signing;
pub mod spec;

pub use error::{ExtractError, Result};
pub use manifest::{Manifest, ManifestFile, Verified, verify_dir};
pub use policy::{Approved, RunContext, approved, project_scope, run_and_record};
pub use run::{
    RunInput, RunOutput, check_request, extract_dir, is_pseudonym, project_pseudonymiser, run,
};
pub use signing::SigningKey;
pub use spec::{ExtractSpec, Format, LoadedSpec, sha256_hex};
