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

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// The real Synthea sample (`../shared/data/synthea-27` beside the repository). Its
/// absence is a failure, never a skip.
pub fn synthea27() -> PathBuf {
    let dir = repo().join("../shared/data/synthea-27");
    assert!(
        dir.join("patients.csv").is_file(),
        "the real Synthea sample is missing: expected {} (../shared/data/synthea-27 beside the repository)",
        dir.display()
    );
    dir
}

/// A tool the test command installs, found through an environment variable or under
/// `~/.cache/dhub`; its absence fails the test with the command that installs it.
fn tool(var: &str, default: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".cache/dhub").join(default)
    });
    assert!(
        p.exists(),
        "{} is missing ({var} unset or wrong): run the suite with ./scripts/test, which installs it",
        p.display()
    );
    p
}

/// Python in the venv made by ./scripts/test (deltalake, polars, pyarrow, duckdb, ...).
pub fn python() -> PathBuf {
    tool("DHUB_PYTHON", "venv/bin/python")
}

/// The S3-compatible server (moto, from PyPI).
pub fn moto_server() -> PathBuf {
    tool("DHUB_MOTO", "venv/bin/moto_server")
}

/// Azurite's blob service (Microsoft's Azure Storage emulator, from npm).
pub fn azurite() -> PathBuf {
    tool("DHUB_AZURITE", "node/node_modules/.bin/azurite-blob")
}

/// Runs `tests/py/<script>` with `args` and `envs`; returns stdout, failing on error.
pub fn run_python(script: &str, args: &[&str], envs: &[(String, String)]) -> String {
    let mut c = Command::new(python());
    c.arg(repo().join("tests/py").join(script)).args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("run python");
    assert!(
        out.status.success(),
        "python {script} failed:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// What the independent readers (deltalake, polars) see of `tables` under `root`.
pub fn delta_read(
    root: &str,
    tables: &[&str],
    values: &[&str],
    envs: &[(String, String)],
) -> serde_json::Value {
    let mut args: Vec<&str> = vec![root];
    args.extend_from_slice(tables);
    for v in values {
        args.push("--values");
        args.push(v);
    }
    serde_json::from_str(&run_python("delta_read.py", &args, envs)).expect("delta_read.py JSON")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Waits until something listens on `port` (or panics after `secs`).
pub fn wait_for_port(port: u16, secs: u64, what: &str) {
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed().as_secs() < secs,
            "{what} did not start listening on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A child process killed when dropped (servers started by a test).
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The records of a CSV file (RFC 4180 quoting; the header is record 0).
pub fn csv_records(path: &Path) -> Vec<Vec<String>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8_lossy(&data);
    let mut out = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => rec.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                rec.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut rec));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !rec.is_empty() {
        rec.push(field);
        out.push(rec);
    }
    out
}

/// The values of `column` in a CSV file with a header.
pub fn csv_column(path: &Path, column: &str) -> Vec<String> {
    let recs = csv_records(path);
    let i = recs[0]
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {}", path.display()));
    recs[1..].iter().map(|r| r[i].clone()).collect()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every cell of a Parquet file rendered as text (for leak scans).
pub fn parquet_cells(path: &Path) -> Vec<String> {
    use arrow_array::Array;
    let f = std::fs::File::open(path).expect("open parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut out = Vec::new();
    for b in reader {
        let b = b.expect("batch");
        for col in b.columns() {
            // named time zones need chrono-tz to print; the instant is what matters here
            let col = match col.data_type() {
                arrow_schema::DataType::Timestamp(unit, Some(_)) => {
                    arrow_cast::cast(col, &arrow_schema::DataType::Timestamp(*unit, None))
                        .expect("cast")
                }
                _ => col.clone(),
            };
            let s = arrow_cast::cast(&col, &arrow_schema::DataType::Utf8).expect("cast to text");
            let s = s
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("utf8");
            out.extend(s.iter().flatten().map(str::to_owned));
        }
    }
    out
}

/// Generates with `dhub synth` into `dir/out`.
pub fn synth(
    dir: &Path,
    format: &str,
    patients: u32,
    seed: u32,
    defects: f64,
    out: &str,
) -> PathBuf {
    ok(dhub(dir)
        .args([
            "synth",
            "--format",
            format,
            "--patients",
            &patients.to_string(),
            "--seed",
        ])
        .arg(seed.to_string())
        .args(["--defects", &defects.to_string(), "--out", out])
        .output()
        .expect("synth"));
    dir.join(out)
}

/// A running `dhub serve` (killed when dropped).
pub struct Server {
    /// Its base URL.
    pub base: String,
    /// Its Flight SQL address (`host:port`), when started with `--flight-listen`.
    pub flight: Option<String>,
    child: Child,
}

impl Server {
    /// Starts `dhub serve` in `dir` on a free port with `args`, waiting until it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        Self::start_with_env(dir, args, &[])
    }

    /// [`Server::start`] with extra environment variables (object-store settings).
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(String, String)]) -> Server {
        let ready = dir.join(format!("ready-{}", free_port()));
        let mut cmd = dhub(dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--views"])
            .arg(repo().join("sql/views"))
            .arg("--ready-file")
            .arg(&ready)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dhub serve");
        let mut child = Child(child);
        let t = std::time::Instant::now();
        while !ready.exists() {
            if let Ok(Some(status)) = child.0.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.0.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("dhub serve exited ({status}): {err}");
            }
            assert!(t.elapsed().as_secs() < 60, "dhub serve did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let addr = std::fs::read_to_string(&ready).expect("ready file");
        // keep draining stderr so the server never blocks on a full pipe
        if let Some(mut e) = child.0.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut e, &mut std::io::sink());
            });
        }
        let mut lines = addr.lines();
        let http = lines.next().unwrap_or_default().trim().to_owned();
        let flight = lines.next().map(|l| l.trim().to_owned());
        Server {
            base: format!("http://{http}"),
            flight,
            child,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child.0.try_wait().ok().flatten().is_none()
    }

    /// Waits for it to exit, returning whether it exited successfully.
    pub fn wait(&mut self) -> bool {
        self.child.0.wait().map(|s| s.success()).unwrap_or(false)
    }
}

/// An HTTP response: status, headers we look at, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub query_id: Option<String>,
    pub disclosure: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&self.body)))
    }

    /// The error code of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The error message of an error body.
    pub fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A real HTTP client (ureq) that returns error statuses as responses.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(180)))
        .build()
        .into()
}

fn resp(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("HTTP request");
    let h = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (query_id, disclosure, content_type) = (
        h("x-dhub-query-id"),
        h("x-dhub-disclosure"),
        h("content-type"),
    );
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 31)
        .read_to_vec()
        .expect("read body");
    Resp {
        status,
        query_id,
        disclosure,
        content_type,
        body,
    }
}

/// `POST /v1/query`.
pub fn query_as(base: &str, token: &str, sql: &str, format: &str) -> Resp {
    resp(
        http()
            .post(format!("{base}/v1/query"))
            .header("Authorization", &format!("Bearer {token}"))
            .send_json(serde_json::json!({"sql": sql, "format": format})),
    )
}

/// A GET, with a token if given.
pub fn get_as(base: &str, token: Option<&str>, path: &str) -> Resp {
    let mut r = http().get(format!("{base}{path}"));
    if let Some(t) = token {
        r = r.header("Authorization", &format!("Bearer {t}"));
    }
    resp(r.call())
}

/// The notebooks the suite executes; `every_notebook_is_executed` fails when
/// `notebooks/` holds one that is not listed here (and so not run by any test).
pub const NOTEBOOKS: &[&str] = &["partner-extract.ipynb", "researcher-quickstart.ipynb"];

/// Executes `notebooks/NAME` headless (nbclient, a real Jupyter kernel) with `env`,
/// in `workdir`; returns the text of all its outputs. Any cell error fails the test.
pub fn run_notebook(name: &str, workdir: &Path, env: &[(&str, &str)]) -> String {
    assert!(NOTEBOOKS.contains(&name), "list {name} in NOTEBOOKS");
    let out = run_python(
        "run_notebook.py",
        &[
            repo().join("notebooks").join(name).to_str().unwrap(),
            workdir.to_str().unwrap(),
        ],
        &env.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>(),
    );
    let v: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or_default()).expect("notebook summary");
    v["text"].as_str().unwrap_or_default().to_owned()
}

/// A temporary directory with a master key (`dhub keys generate`) and a research store
/// made from `patients` generated people in `format` (`synth`, into `raw/`), ingested
/// with `pipelines/<pipeline>.toml` and released as `release`.
pub fn released_store(
    format: &str,
    pipeline: &str,
    patients: u32,
    seed: u32,
    release: &str,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(dhub(d).args(["keys", "generate"]).output().expect("dhub"));
    let src = synth(d, format, patients, seed, 0.0, "raw");
    ok(dhub(d)
        .arg("ingest")
        .arg(repo().join("pipelines").join(format!("{pipeline}.toml")))
        .arg("--source")
        .arg(&src)
        .output()
        .expect("dhub"));
    ok(dhub(d)
        .args(["release", "create", release])
        .output()
        .expect("dhub"));
    dir
}

/// Creates project `name` over every table of release `r1`: in aggregate mode, or in
/// record mode (approved by `cg` for `QA`).
pub fn create_project(dir: &Path, name: &str, record: bool) {
    let mut c = dhub(dir);
    c.args([
        "project",
        "create",
        name,
        "--release",
        "r1",
        "--tables",
        "all",
    ]);
    if record {
        c.args(["--mode", "record", "--approved-by", "cg", "--reason", "QA"]);
    }
    ok(c.output().expect("dhub"));
}

/// Adds researcher `who` to `project`; returns their token.
pub fn add_researcher(dir: &Path, who: &str, project: &str) -> String {
    let (t, _) = ok(dhub(dir)
        .args(["researcher", "add", who, "--project", project])
        .output()
        .expect("dhub"));
    t.trim().to_owned()
}

/// The audit log's entries (`dhub audit tail`), oldest first, as JSON.
pub fn audit_entries(dir: &Path) -> Vec<serde_json::Value> {
    let (out, _) = ok(dhub(dir)
        .args(["audit", "tail", "-n", "100000"])
        .output()
        .expect("dhub"));
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("audit JSON")["entry"].clone())
        .collect()
}
