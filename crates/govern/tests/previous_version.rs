//! A governance file written by the dhub before the typed audit events
//! (`tests/fixtures/govern-v3/`, made as its README says): every kind of entry that
//! version wrote. Its chain, signed checkpoints and records still verify, and every
//! entry is an [`AuditEvent`] whose canonical form is, byte for byte, the stored text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dhub_govern::{AuditEvent, Checkpoint, Govern, audit};
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/govern-v3")
}

/// A copy of the fixture's file (the test never writes the committed one).
fn open_copy() -> (tempfile::TempDir, Govern) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("govern.db");
    std::fs::copy(fixture().join("govern.db"), &p).unwrap();
    let g = Govern::open(&p).unwrap();
    (d, g)
}

fn checkpoints() -> Vec<Checkpoint> {
    let key = std::fs::read_to_string(fixture().join("audit-public-key.hex")).unwrap();
    let key: [u8; 32] = audit::unhex(&key).unwrap().try_into().unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir(fixture().join(audit::CHECKPOINT_DIR)).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        out.push(Checkpoint::open(&name, &std::fs::read(e.path()).unwrap(), &key).unwrap());
    }
    out
}

#[test]
fn the_previous_versions_store_verifies_with_its_checkpoints() {
    let (_d, g) = open_copy();
    let cps = checkpoints();
    assert!(!cps.is_empty());
    let v = g.audit_verify_with(&cps).unwrap().unwrap();
    assert_eq!(v.checkpoints, cps.len());
    // the last checkpoint was made after the last entry
    assert_eq!(v.newest_checkpoint, Some(v.entries));
    assert!(v.records >= 6, "{v:?}");
}

#[test]
fn every_entry_written_before_is_a_typed_event_with_the_same_bytes() {
    let (_d, g) = open_copy();
    let mut kinds = BTreeSet::new();
    let entries = g.audit_tail(usize::MAX).unwrap();
    assert!(!entries.is_empty());
    for e in &entries {
        let event = AuditEvent::from_entry(&e.entry)
            .unwrap_or_else(|| panic!("entry {} is not a typed event: {}", e.seq, e.entry));
        assert_eq!(Some(event.kind()), e.entry["kind"].as_str(), "{}", e.entry);
        let mut fields = event.fields();
        for k in ["actor", "time"] {
            fields.insert(k.into(), e.entry[k].clone());
        }
        assert_eq!(
            audit::canonical_json(&Value::Object(fields)),
            audit::canonical_json(&e.entry),
            "entry {}",
            e.seq
        );
        kinds.insert(event.kind());
        // a query is found again by its id, typed, through the index
        if let AuditEvent::Query(q) = &event {
            let found = g.query_events(&q.query_id).unwrap();
            assert_eq!(found.as_slice(), std::slice::from_ref(q));
        }
    }
    for k in [
        "project.create",
        "researcher.add",
        "researcher.revoke",
        "partner.add",
        "partner.revoke",
        "extract.request",
        "extract.approve",
        "extract.release",
        "extract.revoke",
        "query",
        "query.invalid",
        "tables",
        "whoami",
        "disclosure.lookup",
        "auth.refused",
        "extract.list",
        "extract.download",
    ] {
        assert!(
            kinds.contains(k),
            "the fixture has no `{k}` entry: {kinds:?}"
        );
    }
}
