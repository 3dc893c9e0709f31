//! The OpenAPI 3.1 description of the whole API (`GET /openapi.json`), kept beside the
//! routes and checked by a test to parse and to name every route.

/// The document.
pub const SPEC: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    #[test]
    fn the_spec_parses_and_names_every_route() {
        let v: serde_json::Value = serde_json::from_str(super::SPEC).unwrap();
        for p in [
            "/v1/query",
            "/v1/tables",
            "/v1/whoami",
            "/v1/queries/{id}/disclosure",
            "/healthz",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(v["paths"].get(p).is_some(), "{p} missing");
        }
    }
}
