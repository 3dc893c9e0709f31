//! The server's soft spots (issue 17, items 9, 12 and 13), through the real binary and
//! raw sockets: connection caps and timeouts, the failed-authentication limiter over
//! HTTP and Flight SQL, the bearer scheme's case, the headers of data responses, the
//! 413 body, `/metrics` behind a token, an answer withheld when its token is revoked
//! while the query runs, the plaintext warning, past expiry dates, and a start-up that
//! is all or nothing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

/// A small released store with a record-mode project `rec` and an aggregate project
/// `agg`; returns the directory and the tokens of `rita` (rec) and `ada` (agg).
fn fixture() -> (tempfile::TempDir, String, String) {
    let dir = released_store("synthea", "synthea", 100, 7, "r1");
    let d = dir.path();
    create_project(d, "agg", false);
    create_project(d, "rec", true);
    let rita = add_researcher(d, "rita", "rec");
    let ada = add_researcher(d, "ada", "agg");
    (dir, rita, ada)
}

/// `host:port` of a server's HTTP listener.
fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

/// A raw HTTP/1.1 exchange: status, headers (lower-case names), body (de-chunked).
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&self.body)))
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(i) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(text(&b[..i]).split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[i + 2 + size + 2..];
    }
}

/// Sends `request` whole on a new connection and reads the answer to EOF.
fn raw(addr: &str, request: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", text(&buf)));
    let head = text(&buf[..end]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &buf[end + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Raw {
        status,
        headers,
        body,
    }
}

fn get(addr: &str, path: &str, authorization: Option<&str>) -> Raw {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn post_query(addr: &str, authorization: &str, sql: &str) -> Raw {
    let body = serde_json::json!({ "sql": sql }).to_string();
    raw(
        addr,
        format!(
            "POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// How long until the server closes `s` (EOF or reset), reading whatever it sends;
/// `None` if it is still open after `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 4096];
    while t.elapsed() < limit {
        match s.read(&mut b) {
            Ok(0) => return Some(t.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(t.elapsed()),
        }
    }
    None
}

/// Starts `dhub serve` keeping its stderr; returns the child, the ready file and the
/// stderr collected so far (a thread keeps reading it).
fn spawn_serve(dir: &Path, args: &[&str]) -> (Child, std::path::PathBuf, Arc<Mutex<String>>) {
    let ready = dir.join(format!("ready-{}", free_port()));
    let mut child = dhub(dir)
        .args(["serve", "--views"])
        .arg(repo().join("sql/views"))
        .arg("--ready-file")
        .arg(&ready)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().unwrap();
    let e2 = err.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut b) {
            if n == 0 {
                break;
            }
            e2.lock().unwrap().push_str(&text(&b[..n]));
        }
    });
    (Child(child), ready, err)
}

/// Waits for the ready file (or the process's exit, which fails the test).
fn wait_ready(child: &mut Child, ready: &Path, err: &Arc<Mutex<String>>) -> Vec<String> {
    let t = Instant::now();
    while !ready.exists() {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("dhub serve exited ({status}): {}", err.lock().unwrap());
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "dhub serve did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(ready)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Item 12: the bearer scheme in any case, no-store and nosniff on answers, a JSON
/// 413, `/metrics` only with its token, and no token born expired.
#[test]
fn bearer_case_response_headers_json_413_metrics_token_and_past_expiry() {
    let (dir, rita, _) = fixture();
    let d = dir.path();
    // a token whose last day is already past is refused at issue, with the reason
    let out = dhub(d)
        .args([
            "researcher",
            "add",
            "late",
            "--project",
            "rec",
            "--expires",
            "2001-01-01",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a token born expired was issued");
    assert!(text(&out.stdout).trim().is_empty(), "a token was printed");
    let err = text(&out.stderr);
    assert!(err.contains("in the past"), "{err}");
    let out = dhub(d)
        .args([
            "partner",
            "add",
            "late",
            "--project",
            "rec",
            "--expires",
            "2001-01-01",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a partner token born expired was issued"
    );
    // today is the last day of a token that expires today: fine
    let today = text(
        &std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .unwrap()
            .stdout,
    );
    ok(dhub(d)
        .args([
            "researcher",
            "add",
            "today",
            "--project",
            "rec",
            "--expires",
            today.trim(),
        ])
        .output()
        .unwrap());

    let s = Server::start_with_env(
        d,
        &[],
        &[("DHUB_METRICS_TOKEN".into(), "metrics-secret-1".into())],
    );
    let a = addr(&s);
    // RFC 7235: the scheme is case-insensitive
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = get(&a, "/v1/whoami", Some(&format!("{scheme} {rita}")));
        assert_eq!(r.status, 200, "{scheme}: {}", text(&r.body));
        assert_eq!(r.json()["researcher"], "rita");
    }
    assert_eq!(
        get(&a, "/v1/whoami", Some(&format!("Basic {rita}"))).status,
        401
    );

    // data answers (and errors) are neither cached nor sniffed
    for r in [
        post_query(
            &a,
            &format!("Bearer {rita}"),
            "SELECT count(*) AS n FROM patients",
        ),
        get(&a, "/v1/tables", Some(&format!("Bearer {rita}"))),
        post_query(&a, "Bearer nope", "SELECT 1"),
    ] {
        assert!(matches!(r.status, 200 | 401), "{}", text(&r.body));
        assert_eq!(
            r.headers.get("cache-control").map(String::as_str),
            Some("no-store"),
            "{:?}",
            r.headers
        );
        assert_eq!(
            r.headers.get("x-content-type-options").map(String::as_str),
            Some("nosniff"),
            "{:?}",
            r.headers
        );
    }
    let body = r#"{"sql": "SELECT count(*) AS n FROM patients", "format": "csv"}"#;
    let csv = raw(
        &a,
        format!(
            "POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {rita}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(csv.status, 200, "{}", text(&csv.body));
    assert_eq!(csv.headers["cache-control"], "no-store");
    assert_eq!(csv.headers["x-content-type-options"], "nosniff");

    // an oversized body is a JSON 413 like every other error, with or without a length
    let big = format!(r#"{{"sql": "SELECT 1 -- {}"}}"#, "x".repeat(300 * 1024));
    let r = raw(
        &a,
        format!(
            "POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {rita}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
            big.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", text(&r.body));
    assert_eq!(r.json()["error"]["code"], "too_large", "{}", text(&r.body));
    assert!(r.headers["content-type"].starts_with("application/json"));
    let mut chunked = format!(
        "POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {rita}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for part in big.as_bytes().chunks(16 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = raw(&a, &chunked);
    assert_eq!(r.status, 413, "{}", text(&r.body));
    assert_eq!(r.json()["error"]["code"], "too_large", "{}", text(&r.body));

    // /metrics: not without its token, not with a researcher's, yes with its own
    for auth in [
        None,
        Some(format!("Bearer {rita}")),
        Some("Bearer wrong".to_owned()),
    ] {
        let r = get(&a, "/metrics", auth.as_deref());
        assert_eq!(r.status, 401, "{auth:?}: {}", text(&r.body));
        assert!(!text(&r.body).contains("dhub_queries_total"));
        assert_eq!(r.json()["error"]["code"], "unauthorized");
    }
    let m = get(&a, "/metrics", Some("Bearer metrics-secret-1"));
    assert_eq!(m.status, 200);
    let m = text(&m.body);
    assert!(m.contains("dhub_queries_total"), "{m}");
    assert!(m.contains("dhub_connections_open"), "{m}");

    // a server without a metrics token serves no metrics at all
    let s2 = Server::start(d, &[]);
    let r = get(&addr(&s2), "/metrics", None);
    assert_eq!(r.status, 404, "{}", text(&r.body));
    assert!(!text(&r.body).contains("dhub_queries_total"));
}

/// Item 9: N failed authentications from one address, then 429 with `Retry-After` for
/// every request from it (a valid token too), over HTTP and Flight SQL, which share the
/// limiter both ways; the audit log does not grow while an address is throttled.
#[test]
fn failed_authentications_are_throttled_per_address_over_http_and_flight() {
    let (dir, rita, _) = fixture();
    let d = dir.path();
    let args = [
        "--auth-failures",
        "5",
        "--auth-window",
        "60",
        "--flight-listen",
        "127.0.0.1:0",
    ];

    // HTTP failures throttle HTTP and Flight SQL
    let s = Server::start(d, &args);
    let a = addr(&s);
    for i in 0..5 {
        let r = get(&a, "/v1/whoami", Some("Bearer dhub_wrong"));
        assert_eq!(r.status, 401, "attempt {i}: {}", text(&r.body));
    }
    let audited = audit_entries(d).len();
    let t = Instant::now();
    let mut throttled = 0;
    while t.elapsed() < Duration::from_secs(2) {
        let r = get(&a, "/v1/whoami", Some("Bearer dhub_wrong"));
        assert_eq!(r.status, 429, "{}", text(&r.body));
        throttled += 1;
    }
    assert!(throttled > 5);
    let r = get(&a, "/v1/whoami", Some(&format!("Bearer {rita}")));
    assert_eq!(r.status, 429, "a throttled address still got in");
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    let wait: u64 = r.headers["retry-after"].parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again")
    );
    // liveness stays open; the throttled attempts were not audited one by one
    assert_eq!(get(&a, "/healthz", None).status, 200);
    assert!(
        audit_entries(d).len() <= audited + 1,
        "throttled attempts were written to the audit log"
    );
    let flight = s.flight.clone().unwrap();
    let out = run_python("flight_auth.py", &[&flight, &rita, "1"], &[]);
    let attempts: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["ok"], false, "{out}");
    assert!(
        attempts[0]["message"]
            .as_str()
            .unwrap()
            .contains("too many failed authentications"),
        "{out}"
    );
    drop(s);

    // Flight SQL failures throttle Flight SQL and HTTP
    let s = Server::start(d, &args);
    let a = addr(&s);
    let flight = s.flight.clone().unwrap();
    let out = run_python("flight_auth.py", &[&flight, "dhub_wrong", "7"], &[]);
    let attempts: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(attempts.len(), 7, "{out}");
    for (i, at) in attempts.iter().enumerate() {
        assert_eq!(at["ok"], false, "{out}");
        let m = at["message"].as_str().unwrap();
        if i < 5 {
            assert!(!m.contains("too many failed"), "attempt {i}: {out}");
        } else {
            assert!(
                m.contains("too many failed authentications"),
                "attempt {i}: {out}"
            );
        }
    }
    let out = run_python("flight_auth.py", &[&flight, &rita, "1"], &[]);
    assert!(out.contains("too many failed authentications"), "{out}");
    let r = get(&a, "/v1/whoami", Some(&format!("Bearer {rita}")));
    assert_eq!(r.status, 429, "{}", text(&r.body));
    assert!(r.headers.contains_key("retry-after"));
}

/// Item 9: a connection that sends nothing, one that dribbles its headers, and one left
/// idle after an answer are closed (HTTP and Flight SQL); a query longer than the idle
/// timeout keeps its connection; one address cannot hold more than its cap.
#[test]
fn idle_and_slow_connections_are_closed_and_one_address_is_capped() {
    let (dir, rita, _) = fixture();
    let d = dir.path();
    let s = Server::start(
        d,
        &[
            "--header-timeout",
            "1",
            "--idle-timeout",
            "2",
            "--flight-listen",
            "127.0.0.1:0",
        ],
    );
    let a = addr(&s);
    // nothing sent: closed after the header timeout
    let mut c = TcpStream::connect(&a).unwrap();
    let t = closed_within(&mut c, Duration::from_secs(8));
    assert!(t.is_some(), "a silent connection stayed open");
    let mut c = TcpStream::connect(s.flight.as_deref().unwrap()).unwrap();
    assert!(
        closed_within(&mut c, Duration::from_secs(8)).is_some(),
        "a silent Flight SQL connection stayed open"
    );
    // headers dribbled a byte at a time: closed although bytes keep coming
    let mut c = TcpStream::connect(&a).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t = Instant::now();
    let mut closed = false;
    while t.elapsed() < Duration::from_secs(8) {
        if c.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut c, Duration::from_millis(250)).is_some() {
            closed = true;
            break;
        }
    }
    assert!(closed, "a connection dribbling its headers stayed open");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // keep-alive left idle after an answer: closed
    let mut c = TcpStream::connect(&a).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut b = [0u8; 1024];
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = c.read(&mut b).unwrap();
    assert!(
        text(&b[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        text(&b[..n])
    );
    assert!(
        closed_within(&mut c, Duration::from_secs(8)).is_some(),
        "an idle keep-alive connection stayed open"
    );
    // a query running longer than the idle timeout keeps its connection
    let slow = "SELECT count(*) AS n FROM generate_series(1, 1000000000) t(x) WHERE x % 7 = 3";
    let t = Instant::now();
    let r = post_query(&a, &format!("Bearer {rita}"), slow);
    let took = t.elapsed();
    assert_eq!(r.status, 200, "after {took:?}: {}", text(&r.body));
    assert!(
        took > Duration::from_secs(3),
        "the query took {took:?}: too short to show that a busy connection outlives the idle timeout"
    );
    drop(s);

    // per-address cap: the fourth connection from one address is closed at once
    let s = Server::start(d, &["--max-connections-per-address", "3"]);
    let a = addr(&s);
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&a).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(&a).unwrap();
    let t = closed_within(&mut extra, Duration::from_secs(3));
    assert!(
        t.is_some_and(|t| t < Duration::from_secs(2)),
        "a fourth connection was kept: {t:?}"
    );
    // the held ones still serve
    let mut first = held.into_iter().next().unwrap();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    first.read_to_end(&mut out).unwrap();
    assert!(text(&out).starts_with("HTTP/1.1 200"), "{}", text(&out));
    drop(first);
    // and the places come back when connections close
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&a, "/healthz", None).status, 200);
}

/// Item 12: an answer whose token was revoked while the query ran is withheld (403)
/// and the refusal is audited under the researcher with the query id.
#[test]
fn an_answer_is_withheld_when_its_token_is_revoked_while_the_query_runs() {
    let (dir, rita, _) = fixture();
    let d = dir.path().to_path_buf();
    let s = Server::start(&d, &["--time-limit", "120"]);
    let a = addr(&s);
    let slow = "SELECT count(*) AS n FROM generate_series(1, 1000000000) t(x) WHERE x % 7 = 3";
    let (a2, t2) = (a.clone(), rita.clone());
    let started = Instant::now();
    let h = std::thread::spawn(move || post_query(&a2, &format!("Bearer {t2}"), slow));
    std::thread::sleep(Duration::from_millis(500));
    ok(dhub(&d)
        .args(["researcher", "revoke", "rita"])
        .output()
        .unwrap());
    let revoked_after = started.elapsed();
    let r = h.join().unwrap();
    assert!(
        started.elapsed() > revoked_after,
        "the query ended before the revocation"
    );
    assert_eq!(r.status, 403, "{}", text(&r.body));
    assert_eq!(r.json()["error"]["code"], "revoked");
    assert!(!text(&r.body).contains("\"rows\""));
    let audit = audit_entries(&d);
    let withheld = audit
        .iter()
        .find(|e| e["kind"] == "query.withheld")
        .expect("a query.withheld entry");
    assert_eq!(withheld["researcher"], "rita");
    assert_eq!(withheld["reason"], "revoked");
    let id = withheld["query_id"].as_str().unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "query" && e["query_id"] == id),
        "the query itself is audited too"
    );
    assert!(!serde_json::to_string(&audit).unwrap().contains(&rita));
}

/// Item 12: plaintext on a non-loopback address warns loudly; loopback does not.
#[test]
fn plaintext_on_a_non_loopback_address_warns_loudly() {
    let (dir, _, _) = fixture();
    let d = dir.path();
    let (mut child, ready, err) = spawn_serve(d, &["--listen", "0.0.0.0:0"]);
    wait_ready(&mut child, &ready, &err);
    let e = err.lock().unwrap().clone();
    assert!(e.contains("WARNING") && e.contains("WITHOUT TLS"), "{e}");
    drop(child);
    let (mut child, ready, err) = spawn_serve(d, &["--listen", "127.0.0.1:0"]);
    wait_ready(&mut child, &ready, &err);
    let e = err.lock().unwrap().clone();
    assert!(!e.contains("WARNING"), "{e}");
}

/// Item 13: a Flight SQL listener that cannot start stops the whole server with the
/// reason and a non-zero exit, and no ready file is written; with TLS, every listener
/// the ready file names accepts connections as soon as it is written, start after
/// start.
#[test]
fn start_up_is_all_or_nothing_and_the_ready_file_names_serving_listeners() {
    let (dir, rita, _) = fixture();
    let d = dir.path();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (mut child, ready, err) = spawn_serve(
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--flight-listen",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "dhub serve kept running without its Flight SQL listener"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(200));
    let e = err.lock().unwrap().clone();
    assert!(!status.success(), "exit {status}: {e}");
    assert!(!ready.exists(), "the ready file was written: {e}");
    assert!(
        e.contains("Flight SQL")
            && e.contains(&port.to_string())
            && e.to_lowercase().contains("in use"),
        "{e}"
    );
    assert!(!e.contains("listening on"), "{e}");
    drop(taken);

    // TLS on both listeners, started repeatedly: each named listener accepts at once
    let certs = d.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    run_python("tls.py", &["make", certs.to_str().unwrap()], &[]);
    let (cert, key) = (certs.join("server.pem"), certs.join("server.key"));
    for round in 0..5 {
        let (mut child, ready, err) = spawn_serve(
            d,
            &[
                "--listen",
                "127.0.0.1:0",
                "--flight-listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        );
        let lines = wait_ready(&mut child, &ready, &err);
        assert_eq!(lines.len(), 2, "{lines:?}");
        for _ in 0..2 {
            for l in &lines {
                TcpStream::connect(l).unwrap_or_else(|e| {
                    panic!(
                        "round {round}: {l} named in the ready file refused a connection: {e}\n{}",
                        err.lock().unwrap()
                    )
                });
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "{}",
            err.lock().unwrap()
        );
        if round == 0 {
            // and Flight SQL over TLS answers
            let out = run_python(
                "tls.py",
                &[
                    "flight",
                    certs.join("ca.pem").to_str().unwrap(),
                    &lines[1],
                    &rita,
                    "SELECT count(*) AS n FROM patients",
                ],
                &[],
            );
            assert!(out.contains("[[100]]"), "{out}");
        }
    }
}
