//! End-to-end tests: they drive the real `dhub` binary, as a user would.
//!
//! One test binary for the whole suite (each extra binary re-links the stack). The
//! `dhub` binary is the one `cargo test --workspace` builds beside this test.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod at_rest;
mod audit;
mod disclosure;
mod extract;
mod govern;
mod hardening;
mod ingest;
mod keys;
mod layout;
mod pseudonym;
mod queue;
mod serve;
mod support;
mod synth;
mod workers;
