//! The query workers of `dhub serve`, seen from outside through `/proc`: a cleared
//! environment, the Landlock sandbox reported by `/healthz` (and in force: the
//! kernel's no-new-privileges flag that Landlock sets), death with the server, and a
//! CPU-time limit.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// A CPU-bound query (two non-equi self-joins of ~7,000 encounters) that runs for
/// minutes.
const SLOW: &str = "SELECT count(*) AS n FROM encounters a JOIN encounters b ON a.start < b.start JOIN encounters c ON b.start < c.start";

/// What a worker may receive of the server's environment (dhub_query::sandbox).
fn may_pass(var: &str) -> bool {
    let name = var.split('=').next().unwrap_or_default();
    ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_", "SSL_CERT_"]
        .iter()
        .any(|p| name.starts_with(p))
        || [
            "DHUB_LOG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
            "ALL_PROXY",
        ]
        .contains(&name.to_uppercase().as_str())
}

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) && fields[0] != "Z" {
            out.push(child);
        }
    }
    out.sort_unstable();
    out
}

/// Whether `pid` runs (a zombie waiting for its reaper counts as dead).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The kernel's Landlock ABI version, asked independently of dhub (Python ctypes,
/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`, syscall 444).
fn kernel_landlock_abi() -> Option<u64> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import ctypes; l = ctypes.CDLL(None, use_errno=True); print(l.syscall(444, None, 0, 1))",
        ])
        .output()
        .expect("python3");
    let v: i64 = text(&out.stdout).trim().parse().expect("an integer");
    u64::try_from(v).ok().filter(|v| *v > 0)
}

fn record_project(d: &Path) -> String {
    create_project(d, "rec", true);
    add_researcher(d, "rita", "rec")
}

#[test]
fn workers_have_a_clean_environment_a_sandbox_and_die_with_the_server() {
    let dir = released_store("synthea", "synthea", 300, 5, "r1");
    let d = dir.path();
    let token = record_project(d);
    let key = d.join("dhub-keys/master.key");
    let env: Vec<(String, String)> = [
        ("DHUB_KEY_FILE", key.to_str().unwrap()),
        ("DHUB_SIGNING_KEY", "/nonexistent/signing.key"),
        ("DHUB_TEST_SECRET", "not-for-workers"),
        ("AWS_REGION", "eu-west-2"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let mut s = Server::start_with_env(d, &["--workers", "2", "--time-limit", "120"], &env);
    let server = s.pid();
    let workers = children_of(server);
    assert_eq!(workers.len(), 2, "two warm workers: {workers:?}");

    // the server's environment holds the key path; the workers' does not
    let server_env = std::fs::read(format!("/proc/{server}/environ")).unwrap();
    assert!(text(&server_env).contains("DHUB_KEY_FILE="));
    let abi = kernel_landlock_abi();
    for w in &workers {
        let environ = std::fs::read(format!("/proc/{w}/environ")).unwrap();
        let vars: Vec<String> = environ
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(text)
            .collect();
        for v in &vars {
            assert!(may_pass(v), "worker {w} has {v}");
        }
        for absent in [
            "DHUB_KEY_FILE=",
            "DHUB_SIGNING_KEY=",
            "DHUB_TEST_SECRET=",
            "PATH=",
            "HOME=",
        ] {
            assert!(
                !vars.iter().any(|v| v.starts_with(absent)),
                "{absent} in {vars:?}"
            );
        }
        assert!(
            vars.contains(&"AWS_REGION=eu-west-2".to_owned()),
            "{vars:?}"
        );
        // Landlock sets no_new_privs when it restricts the worker
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).unwrap();
        let nnp = status
            .lines()
            .find_map(|l| l.strip_prefix("NoNewPrivs:"))
            .map(str::trim);
        assert_eq!(nnp, Some(if abi.is_some() { "1" } else { "0" }), "{w}");
    }

    // /healthz reports the sandbox: JSON on request, a header always
    let r = http()
        .get(format!("{}/healthz", s.base))
        .header("Accept", "application/json")
        .call()
        .unwrap();
    let header = r
        .headers()
        .get("x-dhub-sandbox")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_slice(&r.into_body().with_config().read_to_vec().unwrap()).unwrap();
    assert_eq!(v["status"], "ok");
    let sb = &v["sandbox"];
    match abi {
        Some(n) => {
            assert_eq!(sb["landlock"], "enforced", "{v}");
            assert_eq!(sb["abi"], n, "{v}");
            assert!(
                header.contains(&format!("landlock enforced (ABI {n})")),
                "{header}"
            );
        }
        None => {
            assert_eq!(sb["landlock"], "unsupported", "{v}");
            assert!(header.contains("landlock unsupported"), "{header}");
        }
    }
    assert_eq!(sb["die_with_server"], true);
    assert_eq!(sb["cpu_limit_seconds"], 480, "four times the time limit");
    assert!(sb["environment"].as_str().unwrap().starts_with("cleared"));
    assert_eq!(get_as(&s.base, None, "/healthz").body, b"ok\n");

    // queries still work inside the sandbox
    let r = query_as(
        &s.base,
        &token,
        "SELECT count(*) AS n FROM patients",
        "json",
    );
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["rows"][0][0], 300);

    // SIGKILL the server while a worker is busy: every worker dies with it
    let workers = children_of(server);
    assert_eq!(workers.len(), 2);
    let (base, t) = (s.base.clone(), token.clone());
    let slow = std::thread::spawn(move || {
        let _ = http()
            .post(format!("{base}/v1/query"))
            .header("Authorization", &format!("Bearer {t}"))
            .send_json(serde_json::json!({ "sql": SLOW }));
    });
    std::thread::sleep(Duration::from_millis(800));
    let busy = workers.iter().filter(|w| running(**w)).count();
    assert_eq!(busy, 2);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &server.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    s.wait();
    let t0 = Instant::now();
    while workers.iter().any(|w| running(*w)) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "workers outlived the server: {:?}",
            workers.iter().filter(|w| running(**w)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = slow.join();
}

#[test]
fn a_worker_that_spends_its_cpu_budget_is_killed_and_replaced() {
    let dir = released_store("synthea", "synthea", 300, 5, "r1");
    let d = dir.path();
    let token = record_project(d);
    let s = Server::start(
        d,
        &[
            "--workers",
            "1",
            "--time-limit",
            "100",
            "--worker-cpu-limit",
            "1",
        ],
    );
    let t0 = Instant::now();
    let r = query_as(&s.base, &token, SLOW, "json");
    let took = t0.elapsed();
    assert_ne!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.code(), "resources_exhausted", "{}", text(&r.body));
    assert!(took < Duration::from_secs(30), "{took:?}");
    // a fresh worker takes its place, with a fresh budget per request
    for _ in 0..3 {
        let r = query_as(
            &s.base,
            &token,
            "SELECT count(*) AS n FROM patients",
            "json",
        );
        assert_eq!(r.status, 200, "{}", text(&r.body));
    }
}
