//! End-to-end tests of the `dhub` binary live in `e2e/`.
