//! `dhub synth` and `dhub quickstart` through the real binary.

use crate::support::*;

#[test]
fn synth_is_deterministic_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    for out in ["a", "b"] {
        let (_, err) = ok(dhub(dir.path())
            .args([
                "synth",
                "--format",
                "uk",
                "--patients",
                "60",
                "--seed",
                "11",
                "--out",
                out,
            ])
            .output()
            .unwrap());
        assert!(err.contains("synth: 60 patients"), "{err}");
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.contains(&"person.csv".to_owned()), "{names:?}");
    for n in names {
        let a = std::fs::read(dir.path().join("a").join(&n)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(&n)).unwrap();
        assert!(a == b, "{n} differs between two runs with the same seed");
    }
}

#[test]
fn synth_refuses_bad_arguments_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dhub(dir.path())
        .args(["synth", "--format", "fhir", "--out", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--format"),
        "{}",
        text(&out.stderr)
    );
    let out = dhub(dir.path())
        .args(["synth", "--defects", "0.9", "--out", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn quickstart_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = ok(dhub(dir.path())
        .args(["quickstart", "--patients", "40"])
        .output()
        .unwrap());
    assert!(dir.path().join("dhub-keys/master.key").exists());
    assert!(
        dir.path()
            .join("dhub-data/raw/synthea/patients.csv")
            .exists()
    );
    assert!(out.contains("Next:"), "{out}");
    assert!(out.contains("holds 18 tables"), "{out}");
    let key = std::fs::read_to_string(dir.path().join("dhub-keys/master.key")).unwrap();
    assert!(!format!("{out}{err}").contains(&key.trim()[..16]));
    for t in [
        "patients",
        "encounters",
        "observations",
        "claims_transactions",
    ] {
        assert!(
            dir.path()
                .join("dhub-data/store")
                .join(t)
                .join("_delta_log")
                .is_dir(),
            "{t} was not written"
        );
    }
    // a second run reuses the key and the sample, and makes a second release
    let (_, err2) = ok(dhub(dir.path()).args(["quickstart"]).output().unwrap());
    assert!(err2.contains("existing master key"), "{err2}");
    assert!(err2.contains("existing sample"), "{err2}");
    let (list, _) = ok(dhub(dir.path()).args(["release", "list"]).output().unwrap());
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(
        names[0].ends_with("-v0") && names[1].ends_with("-v1"),
        "{list}"
    );
}

#[test]
fn quickstart_next_lines_work_as_printed() {
    // A newcomer runs the quickstart, then each line it prints under "Next:" exactly as
    // printed (through `sh`), ending with the researcher's side: `serve` and one query
    // with the demo token. Only the port changes (8080 may be taken on a test machine).
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = ok(dhub(dir.path())
        .args(["quickstart", "--patients", "40"])
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO")
        .output()
        .unwrap());
    let token_file = dir.path().join("dhub-data/quickstart.token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        !format!("{out}{err}").contains(token.trim()),
        "token printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "token file is readable by others: {mode:o}"
        );
    }
    let next: Vec<String> = out
        .split("Next:\n")
        .nth(1)
        .expect("a Next: section")
        .lines()
        .map(|l| {
            l.split("    # ")
                .next()
                .unwrap()
                .trim()
                .replace("127.0.0.1:8080", "127.0.0.1:PORT")
        })
        .filter(|l| !l.is_empty())
        .collect();
    assert!(next.len() >= 4, "{out}");
    let bin = dhub_bin().display().to_string();
    for l in &next {
        assert!(
            l.starts_with(&bin) || l.starts_with("echo ") || l.starts_with("curl "),
            "{l}"
        );
    }
    let port = free_port();
    let sh = |line: &str| {
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg(line.replace("PORT", &port.to_string()))
            .current_dir(dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("DHUB_") {
                c.env_remove(k);
            }
        }
        c.env("DHUB_LISTEN", format!("127.0.0.1:{port}"));
        c
    };
    let serve = next
        .iter()
        .position(|l| l.contains(" serve"))
        .expect("a serve line");
    for l in &next[..serve] {
        let o = sh(l).output().unwrap();
        assert!(o.status.success(), "`{l}` failed: {}", text(&o.stderr));
    }
    let mut server = sh(&next[serve]);
    server
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _server = Child(server.spawn().unwrap());
    wait_for_port(port, 60, "the printed serve command");
    let query = next
        .iter()
        .find(|l| l.starts_with("curl "))
        .expect("a query line");
    let o = sh(query).output().unwrap();
    assert!(o.status.success(), "`{query}` failed: {}", text(&o.stderr));
    let answer: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)));
    let body = answer.to_string();
    assert!(body.contains("\"gender\""), "{body}");
    assert!(body.contains("\"n\""), "{body}");
}
