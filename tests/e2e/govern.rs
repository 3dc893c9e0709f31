//! `dhub project`, `dhub researcher` and `dhub audit` through the real binary, against
//! a real SQLite governance store.

use crate::support::*;

fn setup() -> tempfile::TempDir {
    released_store("uk", "uk-shared-care", 50, 1, "r1")
}

#[test]
fn projects_researchers_tokens_and_the_audit_chain() {
    let dir = setup();
    let d = dir.path();
    // a project over a release; unknown releases and tables are refused
    ok(dhub(d)
        .args([
            "project",
            "create",
            "asthma",
            "--release",
            "r1",
            "--tables",
            "person,gp_event",
            "--mode",
            "aggregate",
        ])
        .output()
        .unwrap());
    for (args, says) in [
        (
            vec![
                "project",
                "create",
                "x",
                "--release",
                "nope",
                "--tables",
                "all",
            ],
            "no release named `nope`",
        ),
        (
            vec![
                "project",
                "create",
                "x",
                "--release",
                "r1",
                "--tables",
                "claims",
            ],
            "has no table `claims`",
        ),
        (
            vec![
                "project",
                "create",
                "asthma",
                "--release",
                "r1",
                "--tables",
                "all",
            ],
            "already exists",
        ),
        (
            vec![
                "project",
                "create",
                "y",
                "--release",
                "r1",
                "--tables",
                "all",
                "--mode",
                "record",
            ],
            "approver",
        ),
        (
            vec![
                "project",
                "create",
                "Bad Id",
                "--release",
                "r1",
                "--tables",
                "all",
            ],
            "not a valid project id",
        ),
    ] {
        let out = dhub(d).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    ok(dhub(d)
        .args([
            "project",
            "create",
            "linkage",
            "--release",
            "r1",
            "--tables",
            "all",
            "--mode",
            "record",
        ])
        .args([
            "--approved-by",
            "caldicott-guardian",
            "--reason",
            "linkage quality check",
            "--expires",
            "2099-12-31",
        ])
        .output()
        .unwrap());
    let (show, _) = ok(dhub(d)
        .args(["project", "show", "asthma"])
        .output()
        .unwrap());
    let p: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(p["policy"]["min_cell"], 10);
    assert_eq!(p["policy"]["rounding"], 5);
    assert_eq!(p["release"], "r1");
    let (list, _) = ok(dhub(d).args(["project", "list"]).output().unwrap());
    assert_eq!(list.lines().count(), 2, "{list}");
    // presets
    ok(dhub(d)
        .args([
            "project",
            "create",
            "os",
            "--release",
            "r1",
            "--tables",
            "all",
            "--sdc-preset",
            "opensafely",
        ])
        .output()
        .unwrap());
    let (show, _) = ok(dhub(d).args(["project", "show", "os"]).output().unwrap());
    let p: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(p["policy"]["min_cell"], 8);
    assert_eq!(p["policy"]["suppression"], "null");

    // a token: the only line on stdout, shown once, never stored or listed
    let (token, err) = ok(dhub(d)
        .args(["researcher", "add", "ada", "--project", "asthma"])
        .output()
        .unwrap());
    assert_eq!(token.lines().count(), 1);
    let token = token.trim().to_owned();
    assert!(token.starts_with("dhub_") && token.len() == 48, "{token}");
    assert!(!err.contains(&token));
    let (token2, _) = ok(dhub(d)
        .args(["researcher", "add", "bob", "--project", "asthma"])
        .output()
        .unwrap());
    assert_ne!(token, token2.trim());
    let (list, _) = ok(dhub(d).args(["researcher", "list"]).output().unwrap());
    assert!(
        list.contains("ada\tasthma") && !list.contains(&token),
        "{list}"
    );
    for f in files_under(&d.join("dhub-data")) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&token[5..]),
            "the token is in {}",
            f.display()
        );
    }
    ok(dhub(d)
        .args(["researcher", "revoke", "bob"])
        .output()
        .unwrap());
    let (list, _) = ok(dhub(d).args(["researcher", "list"]).output().unwrap());
    assert!(
        list.lines()
            .any(|l| l.starts_with("bob\t") && l.ends_with("REVOKED")),
        "{list}"
    );

    // the audit chain: intact, readable, exportable
    let (v, _) = ok(dhub(d).args(["audit", "verify"]).output().unwrap());
    assert!(v.contains("intact: 6 entries"), "{v}");
    let (tail, _) = ok(dhub(d).args(["audit", "tail", "-n", "2"]).output().unwrap());
    let kinds: Vec<String> = tail
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["entry"]["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["researcher.add", "researcher.revoke"]);
    let out = d.join("audit.parquet");
    ok(dhub(d)
        .args(["audit", "export", "--out", out.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(std::fs::metadata(&out).unwrap().len() > 100);
}

#[test]
fn audit_verify_names_the_first_tampered_entry() {
    let dir = setup();
    let d = dir.path();
    ok(dhub(d)
        .args([
            "project",
            "create",
            "p",
            "--release",
            "r1",
            "--tables",
            "all",
        ])
        .output()
        .unwrap());
    for n in ["a", "b", "c", "e"] {
        ok(dhub(d)
            .args(["researcher", "add", n, "--project", "p"])
            .output()
            .unwrap());
    }
    let db = d.join("dhub-data/govern.db");
    let sqlite = |sql: &str| {
        // edit the file as an attacker would, with Python's sqlite3 (the standard library)
        let out = std::process::Command::new("python3")
            .args(["-c", &format!("import sqlite3; c = sqlite3.connect({:?}); c.executescript({sql:?}); c.commit()", db.to_str().unwrap())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    let verify = || dhub(d).args(["audit", "verify"]).output().unwrap();
    assert!(verify().status.success());
    sqlite(
        "UPDATE audit SET entry = replace(entry, '\"researcher\":\"b\"', '\"researcher\":\"z\"') WHERE seq = 3",
    );
    let out = verify();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("audit entry 3"),
        "{}",
        text(&out.stderr)
    );
    sqlite(
        "UPDATE audit SET entry = replace(entry, '\"researcher\":\"z\"', '\"researcher\":\"b\"') WHERE seq = 3",
    );
    assert!(verify().status.success());
    sqlite("DELETE FROM audit WHERE seq = 2");
    let out = verify();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("audit entry 2"),
        "{}",
        text(&out.stderr)
    );
}
