//! Stores for the unit tests of every module.

use serde_json::{Map, json};

use crate::{Govern, NewProject};

pub(crate) fn store() -> (tempfile::TempDir, Govern) {
    let d = tempfile::tempdir().unwrap();
    let g = Govern::open(&d.path().join("g.db")).unwrap();
    (d, g)
}

/// A store with a project, two researchers (one revoked) and a few queries.
pub(crate) fn populated() -> (tempfile::TempDir, Govern) {
    let (d, g) = store();
    g.create_project(&NewProject::new("p1", "r1"), "dm")
        .unwrap();
    g.add_researcher("ada", "p1", None, "dm").unwrap();
    g.add_researcher("bob", "p1", None, "dm").unwrap();
    g.revoke_researcher("bob", "dm").unwrap();
    for i in 0..4 {
        let mut m = Map::new();
        m.insert("researcher".into(), json!("ada"));
        m.insert("sql".into(), json!(format!("SELECT {i}")));
        g.audit_raw("query", "ada", m).unwrap();
    }
    (d, g)
}
