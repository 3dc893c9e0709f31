//! # dhub-fhir
//!
//! FHIR R4 resources into tables, by the HL7 standard for it: **SQL on FHIR v2
//! ViewDefinitions**. No I/O of its own and no de-identification: the caller (dhub-ingest)
//! opens the streams, and applies dhub-deid's rules to the columns a view gives.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`json`] | a JSON tree per resource, in buffers reused from one resource to the next; numbers keep their text |
//! | [`source`] | Bulk Data NDJSON (a resource a line) and Bundle JSON (`entry[].resource`), streamed one record at a time |
//! | [`path`] | FHIRPath: compiled once per view, evaluated per resource |
//! | [`view`] | ViewDefinitions: checked and compiled before any resource is read; `forEach`, `forEachOrNull`, `repeat`, `unionAll`, nested `select`, `where`, `constant`, `%rowIndex` |
//! | [`batch`] | a view's rows into Arrow record batches |
//!
//! The official SQL on FHIR v2 test suite runs in `tests/conformance.rs` (from
//! `../shared/conformance/sql-on-fhir-v2`): all its tests pass, the 123 `shareable` ones
//! and the 11 `experimental` ones (boundaries and `join`).
//!
//! ```
//! use dhub_fhir::{json::Tape, view::{View, row_json}};
//!
//! let view = View::parse(r#"{
//!   "resource": "Patient",
//!   "select": [{"column": [
//!     {"name": "id", "path": "getResourceKey()", "type": "id"},
//!     {"name": "birth_date", "path": "birthDate", "type": "date"}
//!   ]}]
//! }"#).unwrap();
//! let mut tape = Tape::new();
//! tape.parse_bytes(br#"{"resourceType":"Patient","id":"p1","birthDate":"1970-06-02"}"#).unwrap();
//! let rows = view.rows(&tape, tape.root()).unwrap();
//! assert_eq!(row_json(&view, &rows[0]), serde_json::json!({"id": "p1", "birth_date": "1970-06-02"}));
//! ```

pub mod batch;
pub mod error;
pub mod json;
pub mod path;
pub mod source;
pub mod view;

pub use error::{JsonError, PathError, RowError, SourceError, ViewError};
pub use view::{Cell, ColumnDef, Row, View};
