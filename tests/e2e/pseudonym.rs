//! `dhub pseudonym` against the vectors of the independent Python implementation.

use std::collections::BTreeMap;

use crate::support::*;

/// Vectors grouped by (entity, format): (value, expected line, valid?).
type Groups = BTreeMap<(String, String), Vec<(String, String, bool)>>;

fn groups(v: &serde_json::Value) -> Groups {
    let mut g: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for r in v["pseudonyms"].as_array().unwrap() {
        let key = (
            r["entity"].as_str().unwrap().to_owned(),
            r["format"].as_str().unwrap().to_owned(),
        );
        let value = r["value"].as_str().unwrap().to_owned();
        let valid = r.get("error").is_none();
        let line = r
            .get("pseudonym")
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_owned();
        g.entry(key).or_default().push((value, line, valid));
    }
    g
}

#[test]
fn arguments_and_stdin_give_the_vector_pseudonyms_in_order() {
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), v["master_key_hex"].as_str().unwrap());
    let secrets = secrets(&v);
    for ((entity, format), rows) in groups(&v) {
        let cli_format = format.replace('_', "-");
        let expected: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        let invalid = rows.iter().filter(|r| !r.2).count();

        // values as arguments
        let out = dhub(dir.path())
            .arg("--key")
            .arg(&key)
            .args([
                "pseudonym",
                "--entity",
                &entity,
                "--format",
                &cli_format,
                "--",
            ])
            .args(rows.iter().map(|r| r.0.as_str()))
            .output()
            .unwrap();
        // values on stdin, one per line
        let input: String = rows.iter().map(|r| format!("{}\n", r.0)).collect();
        let mut c = dhub(dir.path());
        c.arg("--key")
            .arg(&key)
            .args(["pseudonym", "--entity", &entity, "--format", &cli_format]);
        let out2 = run_with_stdin(c, input.as_bytes());

        for o in [&out, &out2] {
            let stdout = text(&o.stdout);
            let lines: Vec<&str> = stdout.lines().collect();
            assert_eq!(lines, expected, "{entity}/{format}");
            let stderr = text(&o.stderr);
            assert_eq!(
                o.status.success(),
                invalid == 0,
                "{entity}/{format}: {stderr}"
            );
            assert_no_secret(&format!("{stdout}{stderr}"), &secrets);
            // errors name the position, never the value
            for (value, _, valid) in &rows {
                if !valid && value.trim().len() > 3 {
                    assert!(
                        !stderr.contains(value.trim()),
                        "stderr echoes an invalid value: {stderr}"
                    );
                }
            }
        }
    }
}

#[test]
fn stdin_streams_many_values_and_crlf() {
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), v["master_key_hex"].as_str().unwrap());
    let rows = &groups(&v)[&("person".to_owned(), "uuid".to_owned())];
    let (value, expected, _) = &rows[0];
    let n = 50_000;
    let input = format!("{value}\r\n").repeat(n);
    let mut c = dhub(dir.path());
    c.arg("--key")
        .arg(&key)
        .args(["pseudonym", "--entity", "person", "--format", "uuid"]);
    let (out, _) = ok(run_with_stdin(c, input.as_bytes()));
    assert_eq!(out.lines().count(), n);
    assert!(out.lines().all(|l| l == expected));
}

#[test]
fn no_key_material_in_any_output_even_at_trace_level() {
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), v["master_key_hex"].as_str().unwrap());
    let secrets = secrets(&v);
    for args in [
        vec!["-vvv", "keys", "id"],
        vec![
            "-vvv",
            "pseudonym",
            "--entity",
            "person",
            "--format",
            "nhs-number",
            "9434765919",
            "123",
        ],
        vec!["-vvv", "pseudonym", "--entity", "Bad Entity!", "x"],
        vec![
            "-vvv",
            "pseudonym",
            "--entity",
            "person",
            "--format",
            "sha1",
            "x",
        ],
    ] {
        let out = dhub(dir.path())
            .env("DHUB_LOG", "trace")
            .arg("--key")
            .arg(&key)
            .args(&args)
            .output()
            .unwrap();
        assert_no_secret(
            &format!("{}{}", text(&out.stdout), text(&out.stderr)),
            &secrets,
        );
    }
    // generating a new key at trace level: its bytes never appear either
    let out = dhub(dir.path())
        .env("DHUB_LOG", "trace")
        .args(["-vvv", "keys", "generate", "--out", "new.key"])
        .output()
        .unwrap();
    let fresh = std::fs::read_to_string(dir.path().join("new.key")).unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(fresh.trim()) && !all.contains(&fresh[..16]));
}

#[test]
fn bad_entity_and_format_are_explained() {
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), v["master_key_hex"].as_str().unwrap());
    let out = dhub(dir.path())
        .arg("--key")
        .arg(&key)
        .args(["pseudonym", "--entity", "Person X", "a"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("a-z, 0-9"),
        "{}",
        text(&out.stderr)
    );
    let out = dhub(dir.path())
        .arg("--key")
        .arg(&key)
        .args(["pseudonym", "--entity", "person", "--format", "md5", "a"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("text, uuid or nhs_number"),
        "{}",
        text(&out.stderr)
    );
}
