//! Finding and running the real `dhub` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `dhub` binary built by `cargo test --workspace` (target/<profile>/dhub).
pub fn dhub_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/dhub
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("dhub{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "the dhub binary is missing at {}: run the suite with `cargo test --workspace` (or `cargo build -p dhub-cli` first)",
        bin.display()
    );
    bin
}

/// A `dhub` command run in `cwd`, with no DHUB_* variables inherited.
pub fn dhub(cwd: &Path) -> Command {
    let mut c = Command::new(dhub_bin());
    c.current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("DHUB_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Runs a command with `stdin` and returns its output.
pub fn run_with_stdin(mut c: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn dhub");
    let mut sin = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait dhub");
    writer.join().expect("stdin writer");
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Output of a command that must succeed.
pub fn ok(out: Output) -> (String, String) {
    assert!(
        out.status.success(),
        "dhub failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// The test vectors made by the independent Python implementation.
pub fn vectors() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/deid/tests/vectors/vectors.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("vectors.json")).expect("json")
}

/// Writes `hex` as a key file with mode 0600 in `dir` and returns its path.
pub fn write_key(dir: &Path, hex: &str) -> PathBuf {
    let path = dir.join("vector.key");
    std::fs::write(&path, format!("{hex}\n")).expect("write key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    path
}

/// Every secret that must never appear in any output: the master key and every
/// domain key, in hex.
pub fn secrets(v: &serde_json::Value) -> Vec<String> {
    let mut s = vec![v["master_key_hex"].as_str().expect("key").to_owned()];
    for dk in v["domain_keys"].as_object().expect("domain keys").values() {
        s.push(dk.as_str().expect("hex").to_owned());
    }
    s
}

/// Asserts that no secret (nor its first 16 hex characters) appears in `output`.
pub fn assert_no_secret(output: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!output.contains(s.as_str()), "a key appears in the output");
        assert!(
            !output.contains(&s[..16]),
            "part of a key appears in the output"
        );
        assert!(
            !output.to_uppercase().contains(&s[..16].to_uppercase()),
            "a key appears in upper case"
        );
    }
}
