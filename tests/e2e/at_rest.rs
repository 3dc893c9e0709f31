//! Data at rest on `file://`: everything dhub writes (research store, quarantine,
//! extracts, governance database, keys, reports, synthetic output) is private to the
//! account that runs it, checked by mode and by an unprivileged user trying to read
//! it; and a root that other users may read is refused at start-up with the fix.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// `p` and every path beneath it, directories included.
fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0")
}

/// Which of `paths` the unprivileged user `nobody` (uid/gid 65534, no groups) can read
/// (files) or list (directories); `None` when this test cannot switch users (not root,
/// or no `setpriv`).
fn readable_by_nobody(paths: &[PathBuf]) -> Option<Vec<PathBuf>> {
    if !running_as_root() {
        return None;
    }
    let script = r#"for p in "$@"; do
  if [ -d "$p" ]; then ls "$p" >/dev/null 2>&1 && echo "$p"
  else cat "$p" >/dev/null 2>&1 && echo "$p"; fi
done"#;
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .args(paths)
        .output()
        .ok()?;
    assert!(out.status.success(), "setpriv: {}", text(&out.stderr));
    Some(text(&out.stdout).lines().map(PathBuf::from).collect())
}

#[test]
fn everything_dhub_writes_is_private_to_its_account() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // the working directory itself is open to everyone, as a shared one would be:
    // what dhub creates inside it must not be
    chmod(d, 0o755);
    ok(dhub(d).args(["keys", "generate"]).output().unwrap());
    ok(dhub(d).args(["keys", "generate-signing"]).output().unwrap());
    let raw = synth(d, "synthea", 120, 7, 0.01, "raw");
    ok(dhub(d)
        .arg("ingest")
        .arg(repo().join("pipelines/synthea.toml"))
        .arg("--source")
        .arg(&raw)
        .args(["--max-reject-rate", "1", "--report", "ingest-report.json"])
        .output()
        .unwrap());
    ok(dhub(d).args(["release", "create", "r1"]).output().unwrap());
    create_project(d, "pa", false);
    add_researcher(d, "rita", "pa");
    // an extract, run with a report
    let specs = d.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(
        specs.join("c.toml"),
        "project = \"pa\"\nrecipient = \"Uni\"\nk = 5\nquasi_identifiers = [\"sex\"]\n[rekey]\npatient = \"person\"\n",
    )
    .unwrap();
    std::fs::write(
        specs.join("c.sql"),
        "SELECT d.person_id AS patient, d.sex FROM demographics d",
    )
    .unwrap();
    let views = repo().join("sql/views");
    let (id, _) = ok(dhub(d)
        .args(["extract", "request"])
        .arg(specs.join("c.toml"))
        .args(["--by", "ada", "--views"])
        .arg(&views)
        .output()
        .unwrap());
    let id = id.trim().to_owned();
    ok(dhub(d)
        .args(["extract", "approve", &id, "--by", "grace"])
        .output()
        .unwrap());
    // an old report left world-readable is narrowed when rewritten
    std::fs::write(d.join("extract-report.json"), "old").unwrap();
    chmod(&d.join("extract-report.json"), 0o644);
    ok(dhub(d)
        .args([
            "extract",
            "run",
            &id,
            "--report",
            "extract-report.json",
            "--views",
        ])
        .arg(&views)
        .output()
        .unwrap());
    ok(dhub(d)
        .args(["audit", "export", "--out", "audit.parquet"])
        .output()
        .unwrap());

    // what dhub wrote (the specs are the test's own)
    let data = d.join("dhub-data");
    let quarantined = walk(&data.join("quarantine"))
        .into_iter()
        .filter(|p| p.is_file())
        .count();
    assert!(quarantined > 0, "the run quarantined nothing");
    let extracted = walk(&data.join("extracts"))
        .into_iter()
        .filter(|p| p.is_file())
        .count();
    assert!(extracted >= 3, "the extract wrote no files");
    let mut written = Vec::new();
    for top in [
        "dhub-data",
        "dhub-keys",
        "raw",
        "ingest-report.json",
        "extract-report.json",
        "audit.parquet",
    ] {
        written.extend(walk(&d.join(top)));
    }
    assert!(written.iter().any(|p| p.ends_with("govern.db")));
    assert!(written.len() > 50, "{}", written.len());
    let open: Vec<String> = written
        .iter()
        .filter(|p| mode(p) & 0o077 != 0)
        .map(|p| format!("{} {:04o}", p.display(), mode(p)))
        .collect();
    assert!(open.is_empty(), "open to other users: {open:#?}");
    for p in &written {
        let m = mode(p);
        if p.is_dir() {
            assert_eq!(m, 0o700, "{}", p.display());
        } else {
            assert_eq!(m & 0o777, 0o600, "{}", p.display());
        }
    }

    // as an unprivileged local user: nothing can be read or listed; a file the test
    // itself leaves world-readable can (the check can fail)
    let control = d.join("control.txt");
    std::fs::write(&control, "public").unwrap();
    chmod(&control, 0o644);
    let mut probe = written.clone();
    probe.push(control.clone());
    match readable_by_nobody(&probe) {
        Some(readable) => assert_eq!(readable, vec![control], "readable by nobody"),
        None => eprintln!("not root: the modes were checked, not a second user's reads"),
    }
}

#[test]
fn start_up_refuses_roots_other_users_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(dhub(d).args(["keys", "generate"]).output().unwrap());
    let raw = synth(d, "synthea", 10, 1, 0.0, "raw");
    let refused = |args: &[&str], what: &str, path: &Path| {
        let out = dhub(d).args(args).output().unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
        assert!(
            err.contains(&format!("chmod -R go-rwx {}", path.display())),
            "{args:?}: {err}"
        );
    };

    // a research store made by hand with the default modes (0755)
    let store = d.join("dhub-data/store");
    std::fs::create_dir_all(&store).unwrap();
    for m in [0o755, 0o750, 0o711] {
        chmod(&store, m);
        refused(&["release", "list"], "research store", &store);
    }
    let ingest = |c: &mut Command| {
        c.arg("ingest")
            .arg(repo().join("pipelines/synthea.toml"))
            .arg("--source")
            .arg(&raw);
    };
    let mut c = dhub(d);
    ingest(&mut c);
    let out = c.output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("chmod -R go-rwx"));
    assert!(
        std::fs::read_dir(&store).unwrap().next().is_none(),
        "nothing is written into a refused store"
    );
    chmod(&store, 0o700);
    ok(dhub(d).args(["release", "list"]).output().unwrap());

    // the quarantine (raw identifiable lines)
    let q = d.join("dhub-data/quarantine");
    std::fs::create_dir_all(&q).unwrap();
    chmod(&q, 0o755);
    let mut c = dhub(d);
    ingest(&mut c);
    let out = c.output().unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("quarantine"), "{err}");
    assert!(
        err.contains(&format!("chmod -R go-rwx {}", q.display())),
        "{err}"
    );
    assert!(std::fs::read_dir(&store).unwrap().next().is_none());
    chmod(&q, 0o700);
    let mut c = dhub(d);
    ingest(&mut c);
    ok(c.output().unwrap());

    // the extracts area, and the governance database file
    let x = d.join("dhub-data/extracts");
    std::fs::create_dir_all(&x).unwrap();
    chmod(&x, 0o755);
    refused(&["extract", "list"], "extracts area", &x);
    chmod(&x, 0o700);
    ok(dhub(d).args(["extract", "list"]).output().unwrap());
    let db = d.join("dhub-data/govern.db");
    assert!(db.exists());
    assert_eq!(mode(&db), 0o600);
    chmod(&db, 0o644);
    refused(&["project", "list"], "governance database", &db);
    chmod(&db, 0o600);
    ok(dhub(d).args(["project", "list"]).output().unwrap());

    // a store given by URL is checked the same way
    let other = d.join("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    chmod(&other, 0o775);
    let url = format!("file://{}", other.display());
    refused(
        &["--store", &url, "release", "list"],
        "research store",
        &other,
    );
}
