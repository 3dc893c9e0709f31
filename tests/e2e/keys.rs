//! `dhub keys generate` and `dhub keys id`, and the key custody rules.

use crate::support::*;

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn generate_writes_0600_in_0700_dir_and_never_prints_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // default path ./dhub-keys/master.key relative to the working directory
    let (out, err) = ok(dhub(dir.path())
        .args(["keys", "generate"])
        .output()
        .unwrap());
    let path = dir.path().join("dhub-keys/master.key");
    assert!(path.exists());
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    let key_hex = std::fs::read_to_string(&path).unwrap();
    let key_hex = key_hex.trim();
    assert_eq!(key_hex.len(), 64);
    let all = format!("{out}{err}");
    assert!(
        !all.contains(key_hex) && !all.contains(&key_hex[..16]),
        "key printed"
    );
    assert!(out.contains("dhub-keys/master.key"), "path printed: {out}");

    let (id, _) = ok(dhub(dir.path()).args(["keys", "id"]).output().unwrap());
    let id = id.trim();
    assert_eq!(id.len(), 16);
    assert!(out.contains(id), "generate prints the key id");
    assert!(!key_hex.contains(id));
}

#[test]
fn generate_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k/master.key");
    ok(dhub(dir.path())
        .args(["keys", "generate", "--out"])
        .arg(&path)
        .output()
        .unwrap());
    let before = std::fs::read(&path).unwrap();
    let out = dhub(dir.path())
        .args(["keys", "generate", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("refusing to overwrite"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn key_flag_and_env_var_agree_and_match_the_vectors() {
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), v["master_key_hex"].as_str().unwrap());
    let (by_flag, e1) = ok(dhub(dir.path())
        .arg("--key")
        .arg(&key)
        .args(["keys", "id"])
        .output()
        .unwrap());
    let (by_env, e2) = ok(dhub(dir.path())
        .env("DHUB_KEY_FILE", &key)
        .args(["keys", "id"])
        .output()
        .unwrap());
    assert_eq!(by_flag.trim(), v["key_id"].as_str().unwrap());
    assert_eq!(by_flag, by_env);
    assert_no_secret(&format!("{by_flag}{e1}{e2}"), &secrets(&v));
}

#[cfg(unix)]
#[test]
fn readable_key_file_is_refused_with_a_fix() {
    use std::os::unix::fs::PermissionsExt;
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), v["master_key_hex"].as_str().unwrap());
    for m in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(m)).unwrap();
        for args in [
            &["keys", "id"][..],
            &["pseudonym", "--entity", "person", "x"][..],
        ] {
            let out = dhub(dir.path())
                .arg("--key")
                .arg(&key)
                .args(args)
                .output()
                .unwrap();
            assert!(!out.status.success(), "mode {m:o} accepted");
            let err = text(&out.stderr);
            assert!(err.contains("chmod 600"), "{err}");
            assert!(out.stdout.is_empty());
            assert_no_secret(&err, &secrets(&v));
        }
    }
}

#[test]
fn missing_or_malformed_key_file_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = dhub(dir.path()).args(["keys", "id"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("dhub keys generate"),
        "{}",
        text(&out.stderr)
    );

    let secret = "not-a-key-but-a-secret-looking-line-0123456789abcdef0123456789ab";
    let key = write_key(dir.path(), secret);
    let out = dhub(dir.path())
        .arg("--key")
        .arg(&key)
        .args(["keys", "id"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("64 hex"), "{err}");
    assert!(!err.contains(secret), "the file's content is echoed");
}
