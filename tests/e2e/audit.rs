//! The audit log against an attacker who can write the database (signed checkpoints,
//! governance records without their entries) and against a flood (bounded texts,
//! refusals counted per client and minute), through the real binary.

use std::path::Path;
use std::process::Stdio;

use crate::support::*;

/// Runs a Python (standard library) script with the governance database as `db`.
fn sqlite(d: &Path, script: &str) {
    let db = d.join("dhub-data/govern.db");
    let prelude = format!(
        r#"
import hashlib, sqlite3
c = sqlite3.connect({:?})
def rewrite(entries):
    """The attacker's tool: the whole log rewritten from these entries, renumbered,
    with a recomputed chain and head."""
    c.execute("DELETE FROM audit"); c.execute("DELETE FROM audit_head")
    prev = "0" * 64
    for i, e in enumerate(entries, 1):
        h = hashlib.sha256((prev + "\n" + str(i) + "\n" + e).encode()).hexdigest()
        c.execute("INSERT INTO audit (seq, entry, prev_hash, hash) VALUES (?, ?, ?, ?)", (i, e, prev, h))
        prev = h
    if entries:
        c.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)", (len(entries), prev))
def entries():
    return [r[0] for r in c.execute("SELECT entry FROM audit ORDER BY seq")]
"#,
        db.to_str().unwrap()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &format!("{prelude}\n{script}\nc.commit()")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn copy_db(from: &Path, to: &Path) {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "import sqlite3; s = sqlite3.connect({:?}); d = sqlite3.connect({:?}); s.backup(d); d.close()",
                from.to_str().unwrap(),
                to.to_str().unwrap()
            ),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn signed_checkpoints_and_governance_records_catch_a_rewritten_log() {
    let dir = released_store("uk", "uk-shared-care", 50, 1, "r1");
    let d = dir.path();
    // the checkpoint key: 0600, never overwritten, its public key printed
    let (_, err) = ok(dhub(d).args(["keys", "generate-audit"]).output().unwrap());
    let key = d.join("dhub-keys/audit.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (public, _) = ok(dhub(d).args(["keys", "public-audit"]).output().unwrap());
    let public = public.trim().to_owned();
    assert_eq!(public.len(), 64);
    assert!(err.contains(&public), "{err}");
    let again = dhub(d).args(["keys", "generate-audit"]).output().unwrap();
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("never overwritten"));

    // every governance change is followed by a signed checkpoint
    let (_, err) = ok(dhub(d)
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
    assert!(err.contains("audit checkpoint signed at entry 1"), "{err}");
    // 1 project.create p, 2 researcher.add a, 3 researcher.add b, 4 researcher.revoke b,
    // 5 researcher.add c
    for n in ["a", "b"] {
        ok(dhub(d)
            .args(["researcher", "add", n, "--project", "p"])
            .output()
            .unwrap());
    }
    ok(dhub(d)
        .args(["researcher", "revoke", "b"])
        .output()
        .unwrap());
    ok(dhub(d)
        .args(["researcher", "add", "c", "--project", "p"])
        .output()
        .unwrap());
    let checkpoints = d.join("dhub-data/store/_audit");
    let mut names: Vec<String> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(names[4], "00000000000000000005.json");
    // a second checkpoint of the same head writes nothing new
    let (out, _) = ok(dhub(d).args(["audit", "checkpoint"]).output().unwrap());
    assert!(
        out.contains("entry 5") && out.contains("already in"),
        "{out}"
    );
    let (out, _) = ok(dhub(d).args(["audit", "verify"]).output().unwrap());
    assert!(
        out.contains("intact: 5 entries") && out.contains("5 signed checkpoint(s)"),
        "{out}"
    );
    // an auditor without the private key verifies with the public one
    let (out, _) = ok(dhub(d)
        .args([
            "audit",
            "verify",
            "--audit-key",
            "nope.key",
            "--public-key",
            &public,
        ])
        .output()
        .unwrap());
    assert!(out.contains("intact: 5 entries"), "{out}");

    let db = d.join("dhub-data/govern.db");
    let pristine = d.join("pristine.db");
    copy_db(&db, &pristine);
    let verify = || dhub(d).args(["audit", "verify"]).output().unwrap();
    // what the database alone shows (no checkpoints: an empty place, no key): the
    // chain and the governance records, all the old `dhub audit verify` had and more
    let verify_db_only = || {
        dhub(d)
            .args(["audit", "verify", "--audit-key", "none.key"])
            .args(["--audit-checkpoints", "file://./no-checkpoints"])
            .output()
            .unwrap()
    };
    for (what, script, db_only_passes, says) in [
        (
            "an entry edited and the chain recomputed",
            "e = entries(); e[1] = e[1].replace('\"actor\":\"', '\"actor\":\"mallory-'); rewrite(e)",
            true,
            "audit entry 2: the chain does not match the signed checkpoint",
        ),
        (
            "an entry deleted and the rest renumbered",
            "e = entries(); del e[3]; rewrite(e)",
            true,
            // checkpoint 4 now covers what was entry 5
            "audit entry 4: the chain does not match the signed checkpoint",
        ),
        (
            "the tail cut (and the row it created)",
            "e = entries(); rewrite(e[:3]); c.execute(\"UPDATE researchers SET revoked = NULL WHERE name = 'b'\"); c.execute(\"DELETE FROM researchers WHERE name = 'c'\")",
            true,
            "entries were deleted",
        ),
        (
            "every entry deleted",
            "rewrite([])",
            false,
            "audit entry 1: the log ends at entry 0",
        ),
        (
            "every entry and every record deleted",
            "rewrite([]); c.execute('DELETE FROM researchers'); c.execute('DELETE FROM projects')",
            true,
            "the log ends at entry 0",
        ),
        (
            "a project inserted without its entry",
            "c.execute(\"INSERT INTO projects SELECT 'evil', title, release, tables, policy, expires, created FROM projects WHERE id = 'p'\")",
            false,
            "project `evil` is in the governance tables but the audit log has no entry creating it",
        ),
        (
            "a revoked token made active again",
            "c.execute(\"UPDATE researchers SET revoked = NULL WHERE name = 'b'\")",
            false,
            "was un-revoked outside dhub",
        ),
        (
            "a researcher's token hash swapped for the attacker's",
            "c.execute(\"UPDATE researchers SET token_sha256 = 'f00d' WHERE name = 'a'\")",
            false,
            "researcher `a` has another token",
        ),
    ] {
        copy_db(&pristine, &db);
        assert!(verify().status.success(), "{what}: restore");
        sqlite(d, script);
        let only = verify_db_only();
        assert_eq!(
            only.status.success(),
            db_only_passes,
            "{what}: database-only verify: {}",
            text(&only.stderr)
        );
        let out = verify();
        assert!(!out.status.success(), "{what}: passed verification");
        assert!(
            text(&out.stderr).contains(says),
            "{what}: {}",
            text(&out.stderr)
        );
    }
    copy_db(&pristine, &db);
    assert!(verify().status.success());
    // a checkpoint forged with another key (an attacker with store access) is caught
    let forged_dir = tempfile::tempdir().unwrap();
    ok(dhub(forged_dir.path())
        .args(["keys", "generate-audit"])
        .output()
        .unwrap());
    let other_key = forged_dir.path().join("dhub-keys/audit.key");
    ok(dhub(d)
        .args([
            "audit",
            "checkpoint",
            "--audit-key",
            other_key.to_str().unwrap(),
        ])
        .args(["--audit-checkpoints", "file://./elsewhere"])
        .output()
        .unwrap());
    std::fs::copy(
        d.join("elsewhere/_audit/00000000000000000005.json"),
        checkpoints.join("00000000000000000006.json"),
    )
    .unwrap();
    let out = verify();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not verify with the audit public key"),
        "{}",
        text(&out.stderr)
    );
    // deleting every checkpoint (store access) while the key exists is caught too
    std::fs::remove_dir_all(&checkpoints).unwrap();
    let out = verify();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("holds no signed checkpoint"),
        "{}",
        text(&out.stderr)
    );
    // a log that does not verify is never signed
    ok(dhub(d).args(["audit", "checkpoint"]).output().unwrap());
    assert!(verify().status.success());
    sqlite(
        d,
        "c.execute(\"UPDATE researchers SET revoked = NULL WHERE name = 'b'\")",
    );
    let out = dhub(d).args(["audit", "checkpoint"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not verify, so its head is not signed"),
        "{}",
        text(&out.stderr)
    );
}

fn sha256(bytes: &[u8]) -> String {
    let out = run_with_stdin(
        {
            let mut c = std::process::Command::new("python3");
            c.args([
                "-c",
                "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
            ]);
            c
        },
        bytes,
    );
    assert!(out.status.success());
    text(&out.stdout).trim().to_owned()
}

#[test]
fn audit_volume_is_bounded_and_every_authenticated_request_is_audited() {
    let dir = released_store("uk", "uk-shared-care", 50, 1, "r1");
    let d = dir.path();
    create_project(d, "p", false);
    let ada = add_researcher(d, "ada", "p");
    let rev = add_researcher(d, "rev", "p");
    ok(dhub(d)
        .args(["researcher", "revoke", "rev"])
        .output()
        .unwrap());
    // the per-address limit on failed authentications is raised so that all 50 reach
    // the token check (throttled requests are not audited, by design)
    let mut s = Server::start(d, &["--auth-failures", "1000"]);
    let b = s.base.clone();
    let before = audit_entries(d).len();

    // 50 bad tokens from one address within one minute
    let secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 60
    };
    if secs() > 40 {
        std::thread::sleep(std::time::Duration::from_secs(62 - secs()));
    }
    for _ in 0..50 {
        assert_eq!(
            get_as(&b, Some("dhub_not-a-token"), "/v1/whoami").status,
            401
        );
    }
    // a revoked token
    assert_eq!(get_as(&b, Some(&rev), "/v1/whoami").status, 403);
    // the researcher's requests other than queries
    assert_eq!(get_as(&b, Some(&ada), "/v1/whoami").status, 200);
    assert_eq!(get_as(&b, Some(&ada), "/v1/tables").status, 200);
    let missing = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        get_as(&b, Some(&ada), &format!("/v1/queries/{missing}/disclosure")).status,
        404
    );
    let post = |body: Vec<u8>| {
        http()
            .post(format!("{b}/v1/query"))
            .header("Authorization", &format!("Bearer {ada}"))
            .header("Content-Type", "application/json")
            .send(&body[..])
            .map(|r| r.status().as_u16())
    };
    // a body that is not JSON
    assert_eq!(post(b"{\"sql\": SELECT 1".to_vec()).unwrap(), 400);
    // a body over the limit is refused before anything reads it (413 or the connection
    // closed while it was still sent), so nothing of it reaches the log
    let huge = format!("{{\"sql\": \"SELECT '{}'\"}}", "x".repeat(8 << 20));
    if let Ok(status) = post(huge.into_bytes()) {
        assert_eq!(status, 413);
    }
    // a refused query of 200 KiB keeps a prefix, its hash and its length
    let long_sql = format!(
        "SELECT * FROM person WHERE person_id = '{}'",
        "y".repeat(200 * 1024)
    );
    let r = query_as(&b, &ada, &long_sql, "json");
    assert_ne!(r.status, 200);
    let ok_q = query_as(&b, &ada, "SELECT count(*) AS n FROM person", "json");
    assert_eq!(ok_q.status, 200, "{}", text(&ok_q.body));
    let qid = ok_q.json()["query_id"].as_str().unwrap().to_owned();
    assert_eq!(
        get_as(&b, Some(&ada), &format!("/v1/queries/{qid}/disclosure")).status,
        200
    );

    // the refusal counts are written when their minute is over, or at shutdown
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(s.wait(), "dhub serve did not exit cleanly");
    let audit = audit_entries(d);
    let new = &audit[before..];
    let kinds: Vec<&str> = new.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let refused: Vec<&serde_json::Value> =
        new.iter().filter(|e| e["kind"] == "auth.refused").collect();
    assert_eq!(refused.len(), 2, "{kinds:?}");
    let anon = refused.iter().find(|e| e["actor"] == "anonymous").unwrap();
    assert_eq!(anon["count"], 50, "{anon}");
    assert_eq!(anon["client"], "127.0.0.1");
    assert_eq!(anon["reason"], "unknown");
    let r = refused.iter().find(|e| e["actor"] == "rev").unwrap();
    assert_eq!(r["researcher"], "rev");
    assert_eq!(r["project"], "p");
    assert_eq!(r["reason"], "revoked");
    assert_eq!(r["count"], 1);
    let by_ada = |kind: &str| -> Vec<&serde_json::Value> {
        new.iter()
            .filter(|e| e["kind"] == kind && e["researcher"] == "ada")
            .collect()
    };
    assert_eq!(by_ada("whoami").len(), 1, "{kinds:?}");
    assert_eq!(by_ada("whoami")[0]["outcome"], "ok");
    assert_eq!(by_ada("tables").len(), 1, "{kinds:?}");
    let lookups = by_ada("disclosure.lookup");
    assert_eq!(lookups.len(), 2, "{kinds:?}");
    assert_eq!(lookups[0]["lookup_query_id"], missing);
    assert_eq!(lookups[0]["status"], 404);
    assert_eq!(lookups[1]["lookup_query_id"], qid.as_str());
    assert_eq!(lookups[1]["outcome"], "ok");
    let invalid = by_ada("query.invalid");
    assert_eq!(invalid.len(), 1, "{kinds:?}");
    assert_eq!(invalid[0]["status"], 400);
    assert_eq!(invalid[0]["body"], "{\"sql\": SELECT 1");
    let q = by_ada("query")
        .into_iter()
        .find(|e| e["outcome"] != "ok")
        .unwrap();
    assert_eq!(q["sql_truncated"], true);
    assert_eq!(q["sql_bytes"], long_sql.len());
    assert_eq!(q["sql_sha256"], sha256(long_sql.as_bytes()));
    assert!(long_sql.starts_with(q["sql"].as_str().unwrap()));
    assert!(q["sql"].as_str().unwrap().len() <= 2048);
    // no entry is large
    for e in new {
        let n = serde_json::to_string(e).unwrap().len();
        assert!(n < 16 * 1024, "an entry of {n} bytes: {}", e["kind"]);
    }
    assert!(!serde_json::to_string(new).unwrap().contains("not-a-token"));
    let (v, _) = ok(dhub(d).args(["audit", "verify"]).output().unwrap());
    assert!(v.contains("intact"), "{v}");
}

/// `dhub audit verify` on a governance file written by the dhub before the typed audit
/// events (`tests/fixtures/govern-v3/`, every kind of entry it wrote, with its signed
/// checkpoints): the chain, the checkpoints and the records still verify.
#[test]
fn a_store_written_by_the_previous_version_still_verifies() {
    let fx = repo().join("tests/fixtures/govern-v3");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(fx.join("govern.db"), d.join("govern.db")).unwrap();
    let audit = d.join("checkpoints/_audit");
    std::fs::create_dir_all(&audit).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [d.join("checkpoints"), audit.clone()] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        // dhub refuses a governance file other local users may read
        std::fs::set_permissions(d.join("govern.db"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    for e in std::fs::read_dir(fx.join("_audit")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), audit.join(e.file_name())).unwrap();
    }
    let key = std::fs::read_to_string(fx.join("audit-public-key.hex")).unwrap();
    let (out, _) = ok(dhub(d)
        .args(["audit", "verify", "--public-key", key.trim(), "--govern"])
        .arg(d.join("govern.db"))
        .arg("--audit-checkpoints")
        .arg(d.join("checkpoints"))
        .output()
        .unwrap());
    assert!(
        out.contains("audit log intact: 31 entries; 6 project, researcher and partner records"),
        "{out}"
    );
    assert!(
        out.contains("9 signed checkpoint(s) at")
            && out.contains("the newest covers entry 31, so 0 later entries"),
        "{out}"
    );
}
