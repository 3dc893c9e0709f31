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
