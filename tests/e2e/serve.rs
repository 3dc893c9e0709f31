//! `dhub serve` through the real binary and a real HTTP client: tokens, the guard's
//! attack classes, resource limits, concurrency, audit, answers against DuckDB, TLS and
//! graceful shutdown.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// A generated Synthea store with a release, projects and researchers.
struct Fixture {
    dir: tempfile::TempDir,
    tokens: HashMap<&'static str, String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = released_store("synthea", "synthea", 300, 5, "r1");
        let d = dir.path();
        let project = |args: &[&str]| {
            ok(dhub(d)
                .args(["project", "create"])
                .args(args)
                .output()
                .unwrap());
        };
        project(&["agg", "--release", "r1", "--tables", "all"]);
        project(&[
            "rec",
            "--release",
            "r1",
            "--tables",
            "all",
            "--mode",
            "record",
            "--approved-by",
            "cg",
            "--reason",
            "QA",
        ]);
        project(&[
            "narrow",
            "--release",
            "r1",
            "--tables",
            "patients",
            "--mode",
            "record",
            "--approved-by",
            "cg",
            "--reason",
            "QA",
        ]);
        project(&[
            "old",
            "--release",
            "r1",
            "--tables",
            "all",
            "--expires",
            "2001-01-01",
        ]);
        let mut tokens = HashMap::new();
        for (name, p, extra) in [
            ("ada", "agg", None),
            ("rita", "rec", None),
            ("rosa", "rec", None),
            ("nora", "narrow", None),
            ("ed", "agg", Some("2001-01-01")),
            ("rev", "agg", None),
            ("olga", "old", None),
        ] {
            let mut c = dhub(d);
            c.args(["researcher", "add", name, "--project", p]);
            if let Some(e) = extra {
                // a date in the past is refused at issue unless asked for (tests only)
                c.args(["--expires", e, "--allow-past-expiry"]);
            }
            let (t, _) = ok(c.output().unwrap());
            tokens.insert(name, t.trim().to_owned());
        }
        ok(dhub(d)
            .args(["researcher", "revoke", "rev"])
            .output()
            .unwrap());
        Fixture { dir, tokens }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn serve(&self, args: &[&str]) -> Server {
        Server::start(self.path(), args)
    }

    fn t(&self, who: &str) -> &str {
        &self.tokens[who]
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        audit_entries(self.path())
    }
}

#[test]
fn tokens_tables_formats_and_answers_equal_duckdb() {
    let f = Fixture::new();
    let s = f.serve(&[]);
    let b = &s.base;
    assert_eq!(text(&get_as(b, None, "/healthz").body), "ok\n");
    let spec = get_as(b, None, "/openapi.json").json();
    assert!(spec["paths"]["/v1/query"].is_object());

    // tokens: missing, malformed, unknown -> 401; expired, revoked, project expired -> 403
    assert_eq!(get_as(b, None, "/v1/whoami").status, 401);
    for bad in [
        "",
        "x",
        "dhub_",
        "dhub_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &"A".repeat(10_000),
    ] {
        let r = get_as(b, Some(bad), "/v1/whoami");
        assert_eq!(r.status, 401, "{bad:?}");
        assert_eq!(r.code(), "unauthorized");
    }
    for (who, code) in [
        ("ed", "expired"),
        ("rev", "revoked"),
        ("olga", "project_expired"),
    ] {
        let r = query_as(b, f.t(who), "SELECT 1", "json");
        assert_eq!((r.status, r.code()), (403, code.to_owned()), "{who}");
    }
    let me = get_as(b, Some(f.t("ada")), "/v1/whoami").json();
    assert_eq!(me["project"], "agg");
    assert_eq!(me["policy"]["mode"], "aggregate");

    // tables: granted tables and views only
    let t = get_as(b, Some(f.t("nora")), "/v1/tables").json();
    let names: Vec<&str> = t["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["patients", "demographics"],
        "a view over granted tables only"
    );
    let t = get_as(b, Some(f.t("rita")), "/v1/tables").json();
    let all: Vec<&str> = t["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        all.contains(&"encounters") && all.contains(&"condition_episodes"),
        "{all:?}"
    );
    let enc = t["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "encounters")
        .unwrap();
    assert_eq!(enc["person_column"], "patient");

    // the narrow project cannot see encounters: the same answer as a missing table
    let a = query_as(b, f.t("nora"), "SELECT count(*) FROM encounters", "json");
    let m = query_as(b, f.t("nora"), "SELECT count(*) FROM no_such_table", "json");
    assert_eq!((a.status, a.code()), (m.status, m.code()));
    assert_eq!(
        a.message().replace("encounters", "X"),
        m.message().replace("no_such_table", "X")
    );
    let i = query_as(
        b,
        f.t("nora"),
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        "json",
    );
    assert_eq!(i.status, 200, "{}", text(&i.body));
    let listed = i.json();
    let listed: Vec<&str> = listed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["demographics", "patients"]);

    // formats
    let sql = "SELECT gender, count(*) AS n FROM patients GROUP BY gender ORDER BY gender";
    let j = query_as(b, f.t("rita"), sql, "json");
    assert_eq!(j.status, 200);
    let body = j.json();
    assert_eq!(body["columns"][1]["name"], "n");
    assert_eq!(body["rows"].as_array().unwrap().len(), 2);
    assert_eq!(body["disclosure"]["mode"], "record");
    let total: u64 = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_u64().unwrap())
        .sum();
    assert_eq!(total, 300);
    let c = query_as(b, f.t("rita"), sql, "csv");
    assert!(text(&c.body).starts_with("gender,n\n"), "{}", text(&c.body));
    assert!(
        c.query_id.is_some()
            && c.disclosure
                .as_deref()
                .unwrap_or("")
                .contains("mode=record")
    );
    let a = query_as(b, f.t("rita"), sql, "arrow");
    assert_eq!(
        a.content_type.as_deref(),
        Some("application/vnd.apache.arrow.stream")
    );
    let rows: usize = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(a.body), None)
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows, 2);
    let p = query_as(b, f.t("rita"), sql, "parquet");
    assert_eq!(&p.body[..4], b"PAR1");
    assert_eq!(query_as(b, f.t("rita"), sql, "xml").status, 400);

    // aggregate mode refuses record-level results, with a way to rewrite them
    let r = query_as(b, f.t("ada"), "SELECT * FROM patients", "json");
    assert_eq!((r.status, r.code()), (400, "refused".to_owned()));
    assert!(r.message().contains("GROUP BY"), "{}", r.message());

    // a research query set: dhub's answers equal DuckDB's over the same Parquet files
    let cases = [
        (
            "class_year",
            "SELECT encounterclass, CAST(date_part('year', start) AS BIGINT) AS y, count(*) AS n FROM encounters GROUP BY 1, 2 ORDER BY 1, 2",
            "SELECT encounterclass, CAST(date_part('year', start) AS BIGINT) AS y, count(*) AS n FROM encounters GROUP BY 1, 2 ORDER BY 1, 2",
        ),
        (
            "patients_per_code",
            "SELECT code, count(DISTINCT patient) AS people FROM conditions GROUP BY code ORDER BY people DESC, code LIMIT 25",
            "SELECT code, count(DISTINCT patient) AS people FROM conditions GROUP BY code ORDER BY people DESC, code LIMIT 25",
        ),
        (
            "join",
            "SELECT p.gender, count(*) AS encounters, count(DISTINCT e.patient) AS people FROM patients p JOIN encounters e ON e.patient = p.id GROUP BY p.gender ORDER BY 1",
            "SELECT p.gender, count(*) AS encounters, count(DISTINCT e.patient) AS people FROM patients p JOIN encounters e ON e.patient = p.id GROUP BY p.gender ORDER BY 1",
        ),
        (
            "window_median",
            "SELECT encounterclass, n, rank() OVER (ORDER BY n DESC, encounterclass) AS r, med FROM (SELECT encounterclass, count(*) AS n, median(total_claim_cost) AS med FROM encounters GROUP BY encounterclass) ORDER BY r",
            "SELECT encounterclass, n, rank() OVER (ORDER BY n DESC, encounterclass) AS r, med FROM (SELECT encounterclass, count(*) AS n, median(total_claim_cost) AS med FROM encounters GROUP BY encounterclass) ORDER BY r",
        ),
        (
            "view",
            "SELECT sex, deceased, count(*) AS n FROM demographics GROUP BY 1, 2 ORDER BY 1, 2",
            "SELECT gender, deathdate IS NOT NULL, count(*) AS n FROM patients GROUP BY 1, 2 ORDER BY 1, 2",
        ),
    ];
    let queries: Vec<serde_json::Value> = cases
        .iter()
        .map(|(n, _, duck)| serde_json::json!({"name": n, "sql": duck}))
        .collect();
    let store = f.path().join("dhub-data/store");
    let duck: serde_json::Value = serde_json::from_str(&{
        let mut c = std::process::Command::new(python());
        c.arg(repo().join("tests/py/duckdb_answers.py"))
            .arg(&store)
            .args(["patients", "encounters", "conditions"]);
        let out = run_with_stdin(c, serde_json::to_string(&queries).unwrap().as_bytes());
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    })
    .unwrap();
    for (name, sql, _) in cases {
        let r = query_as(b, f.t("rita"), sql, "json");
        assert_eq!(r.status, 200, "{name}: {}", text(&r.body));
        let ours: Vec<Vec<serde_json::Value>> = r.json()["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().iter().map(norm).collect())
            .collect();
        let theirs: Vec<Vec<serde_json::Value>> = duck[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().iter().map(norm).collect())
            .collect();
        assert!(!ours.is_empty(), "{name}");
        assert_eq!(ours, theirs, "{name}: dhub and DuckDB disagree");
    }
}

/// Numbers compared to 6 significant digits; everything else as text.
fn norm(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Number(n) => {
            let x = n.as_f64().unwrap();
            serde_json::json!(format!("{:.6e}", x))
        }
        serde_json::Value::Bool(b) => serde_json::json!(b.to_string()),
        other => other.clone(),
    }
}

/// The guard's attack classes, each with many variants: every one is refused (400)
/// with a message that leaks no path or value, and the server keeps answering.
#[test]
fn attack_corpus_is_refused_and_leaks_nothing() {
    let f = Fixture::new();
    let s = f.serve(&[]);
    let b = &s.base;
    let store_path = f.path().display().to_string();
    let attacks: &[&str] = &[
        // file reads and writes, URL and path tables
        "SELECT * FROM '/etc/passwd'",
        "select * from '/etc/passwd'",
        "SELECT * FROM \"/etc/passwd\"",
        "SELECT * FROM 'file:///etc/passwd'",
        "SELECT * FROM '../dhub-keys/master.key'",
        "SELECT * FROM 'dhub-keys/master.key'",
        "SELECT * FROM 'dhub-data/store/patients'",
        "SELECT * FROM \"dhub-data/store/patients/_delta_log/00000000000000000000.json\"",
        "SELECT * FROM 's3://bucket/key.parquet'",
        "SELECT * FROM 'http://127.0.0.1:9/x.csv'",
        "SELECT * FROM 'https://example.com/x.parquet'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('/tmp/x.parquet')",
        "SELECT * FROM read_json('/etc/hosts')",
        "SELECT * FROM parquet_metadata('x.parquet')",
        "SELECT * FROM glob('/etc/*')",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "create external table x (a int) stored as parquet location 's3://b/k'",
        "COPY patients TO '/tmp/out.csv'",
        "COPY (SELECT * FROM patients) TO '/tmp/out.parquet' STORED AS PARQUET",
        "COPY patients FROM '/etc/passwd'",
        // DDL / DML
        "CREATE TABLE t AS SELECT * FROM patients",
        "CREATE VIEW v AS SELECT 1",
        "CREATE OR REPLACE VIEW demographics AS SELECT 1",
        "DROP TABLE patients",
        "DROP VIEW demographics",
        "ALTER TABLE patients ADD COLUMN x INT",
        "INSERT INTO patients SELECT * FROM patients",
        "UPDATE patients SET gender = 'x'",
        "DELETE FROM patients",
        "TRUNCATE patients",
        "MERGE INTO patients USING patients p ON true WHEN MATCHED THEN DELETE",
        "SELECT * INTO newtable FROM patients",
        "CREATE FUNCTION f() RETURNS INT RETURN 1",
        "CREATE SCHEMA s",
        "CREATE DATABASE d",
        // SET / RESET / PREPARE / transactions / SHOW / DESCRIBE
        "SET datafusion.execution.target_partitions = 1",
        "SET datafusion.catalog.information_schema = false",
        "SET TIME ZONE 'UTC'",
        "RESET datafusion.execution.batch_size",
        "PREPARE p AS SELECT * FROM patients",
        "EXECUTE p",
        "DEALLOCATE p",
        "BEGIN",
        "START TRANSACTION",
        "COMMIT",
        "ROLLBACK",
        "SHOW TABLES",
        "SHOW ALL",
        "SHOW COLUMNS FROM patients",
        "DESCRIBE patients",
        "DESCRIBE claims",
        "EXPLAIN ANALYZE SELECT count(*) FROM patients",
        "EXPLAIN ANALYZE VERBOSE SELECT count(*) FROM patients",
        "EXPLAIN CREATE TABLE x AS SELECT 1",
        // stacked statements, comment tricks
        "SELECT 1; SELECT 2",
        "SELECT count(*) FROM patients; DROP TABLE patients",
        "SELECT 1;DROP TABLE patients--",
        "SELECT 1 /* ; */ ; COPY patients TO '/tmp/x'",
        "/* hi */ DROP TABLE patients",
        "-- SELECT\nDROP TABLE patients",
        "SELECT 1; -- trailing\nSET x = 1",
        // unicode tricks: fullwidth, zero-width, homoglyphs
        "ＳＥＬＥＣＴ * FROM patients",
        "SELECT * FROM ｐａｔｉｅｎｔｓ",
        "DR\u{200b}OP TABLE patients",
        "SELECT * FROM pati\u{200b}ents",
        "SELECT * FROM раtients",
        "SELECT * FROM \"patients\u{200d}\"",
        "SELECT * FROM '\u{2215}etc\u{2215}passwd'",
        // catalog enumeration and other projects' data
        "SELECT * FROM information_schema.df_settings",
        "SELECT * FROM information_schema.routines",
        "SELECT * FROM information_schema.parameters",
        "SELECT * FROM pg_catalog.pg_tables",
        "SELECT * FROM datafusion.other.patients",
        "SELECT * FROM other_catalog.public.patients",
        "SELECT * FROM a.b.c.d",
        "SELECT version()",
        "SELECT current_user",
        // table functions
        "SELECT * FROM unnest_not_allowed(1)",
        "SELECT * FROM my_udtf('x')",
    ];
    for sql in attacks {
        let r = query_as(b, f.t("rita"), sql, "json");
        assert_eq!(
            r.status,
            400,
            "admitted or failed oddly ({}): {sql}: {}",
            r.status,
            text(&r.body)
        );
        let code = r.code();
        assert!(
            matches!(code.as_str(), "refused" | "not_found" | "query_failed"),
            "{sql}: {code}"
        );
        let msg = r.message();
        for leak in ["root:", &store_path, "Cannot cast", "_delta_log", "part-0"] {
            assert!(!msg.contains(leak), "{sql}: message leaks `{leak}`: {msg}");
        }
    }
    // the narrow project cannot reach other tables through any spelling
    for sql in [
        "SELECT count(*) FROM encounters",
        "SELECT count(*) FROM public.encounters",
        "SELECT count(*) FROM datafusion.public.encounters",
        "SELECT count(*) FROM \"encounters\"",
        "SELECT count(*) FROM ENCOUNTERS",
        "SELECT count(*) FROM patients p JOIN encounters e ON e.patient = p.id",
        "WITH x AS (SELECT * FROM encounters) SELECT count(*) FROM x",
        "SELECT (SELECT count(*) FROM encounters)",
        "SELECT count(*) FROM condition_episodes",
        "SELECT table_name FROM information_schema.tables WHERE table_name = 'encounters'",
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'encounters'",
    ] {
        let r = query_as(b, f.t("nora"), sql, "json");
        if r.status == 200 {
            let rows = r.json()["rows"].clone();
            assert!(rows.as_array().unwrap().is_empty(), "{sql}: {rows}");
        } else {
            assert_eq!(r.status, 400, "{sql}");
        }
    }
    // EXPLAIN works and prints no file path
    let r = query_as(
        b,
        f.t("rita"),
        "EXPLAIN SELECT count(*) FROM patients",
        "json",
    );
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(!text(&r.body).contains(&store_path));
    // a cast error does not quote the value
    let r = query_as(
        b,
        f.t("rita"),
        "SELECT CAST(id AS INT) FROM patients",
        "json",
    );
    assert_eq!(r.status, 400);
    assert!(!text(&r.body).contains("Cannot cast"), "{}", text(&r.body));
    // every request above reached a project and is in the audit log, which verifies
    let audit = f.audit();
    let queries = audit.iter().filter(|e| e["kind"] == "query").count();
    assert!(queries >= attacks.len() + 13, "{queries}");
    let (v, _) = ok(dhub(f.path()).args(["audit", "verify"]).output().unwrap());
    assert!(v.contains("intact"));
    assert_eq!(get_as(b, None, "/healthz").status, 200);
}

/// Resource exhaustion: every kind stops at a limit, the server stays up and answers
/// the next query.
#[test]
fn resource_limits_hold_and_the_server_survives() {
    let f = Fixture::new();
    // `/metrics` answers only with the metrics token
    let metrics_env = [("DHUB_METRICS_TOKEN".to_owned(), "metrics-token".to_owned())];
    let mut s = Server::start_with_env(
        f.path(),
        &[
            "--time-limit",
            "4",
            "--max-rows",
            "10000",
            "--max-bytes",
            "8",
            "--memory-limit",
            "64",
            "--worker-memory",
            "1536",
            "--workers",
            "2",
        ],
        &metrics_env,
    );
    let b = s.base.clone();
    let probe = |b: &str| {
        let r = query_as(b, f.t("rita"), "SELECT count(*) FROM patients", "json");
        assert_eq!(
            r.status,
            200,
            "the server did not answer after an attack: {}",
            text(&r.body)
        );
    };
    let cases: &[(&str, &[u16])] = &[
        // 10^12 rows: stopped by the time limit (or the row limit)
        (
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            &[504],
        ),
        (
            "SELECT * FROM generate_series(1, 1000000000000)",
            &[413, 504],
        ),
        (
            "SELECT * FROM encounters a CROSS JOIN encounters b CROSS JOIN encounters c",
            &[413, 504],
        ),
        // under a small memory pool this must fail cleanly: DataFusion's nested-loop-join
        // spill fallback answered 0 here (dhub runs without spilling)
        (
            "SELECT count(*) FROM encounters a, encounters b, encounters c WHERE a.id <> b.id AND b.id <> c.id",
            &[413, 504],
        ),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
            &[400, 413, 504],
        ),
        ("SELECT repeat('x', 2147483647)", &[400, 413]),
        ("SELECT length(repeat('x', 2147483647))", &[400, 413]),
        ("SELECT lpad('x', 2147483647)", &[400, 413]),
        ("SELECT rpad('x', 1073741824, 'y')", &[400, 413]),
        (
            "SELECT length(repeat(repeat('x', 100000), 100000))",
            &[400, 413],
        ),
        // catastrophic-backtracking patterns are linear in Rust's regex engine: a correct
        // answer within the limit is fine
        (
            "SELECT count(*) FROM generate_series(1, 100000000) a WHERE regexp_like(repeat('a', 30) || CAST(a.value AS VARCHAR), '(a+)+$')",
            &[200, 504],
        ),
        (
            "SELECT string_agg(CAST(a.value AS VARCHAR), ',') FROM generate_series(1, 200000000) a",
            &[400, 413, 504],
        ),
        (
            "SELECT array_agg(x) FROM (SELECT * FROM generate_series(1, 500000000) t(x))",
            &[400, 413, 504],
        ),
        ("SELECT range(1, 2000000000)", &[400, 413]),
        (
            "SELECT id, count(*) FROM encounters a JOIN encounters b ON true GROUP BY id ORDER BY 2",
            &[400, 413, 504],
        ),
    ];
    for (sql, expect) in cases {
        let t = Instant::now();
        let r = query_as(&b, f.t("rita"), sql, "json");
        assert!(
            expect.contains(&r.status),
            "{sql}: got {} {}",
            r.status,
            text(&r.body)
        );
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{sql}: took {:?}",
            t.elapsed()
        );
        assert!(s.alive(), "the server died on {sql}");
        probe(&b);
    }
    // deep nesting and long chains: refused by the bounds, or survived
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let ors = format!(
        "SELECT count(*) FROM patients WHERE {}",
        vec!["gender = 'x'"; 20_000].join(" OR ")
    );
    let plus = format!("SELECT {}", vec!["1"; 20_000].join(" + "));
    let case = format!(
        "SELECT {} 1 {}",
        "CASE WHEN true THEN ".repeat(3000),
        " END".repeat(3000)
    );
    for sql in [deep, ors, plus, case] {
        let r = query_as(&b, f.t("rita"), &sql, "json");
        assert!(
            matches!(r.status, 400 | 413),
            "{}: {}",
            r.status,
            text(&r.body)
        );
        assert!(s.alive());
        probe(&b);
    }
    // metrics saw it all
    let m = text(&get_as(&b, Some("metrics-token"), "/metrics").body);
    assert!(m.contains("dhub_queries_total{outcome=\"timeout\"}"), "{m}");
}

#[test]
fn concurrency_limits_answer_429_and_concurrent_researchers_are_served() {
    let f = Fixture::new();
    let s = f.serve(&[
        "--workers",
        "2",
        "--per-researcher",
        "1",
        "--time-limit",
        "6",
        // no queue: what cannot start at once is refused (tests/e2e/queue.rs has the
        // queue)
        "--queue",
        "0",
    ]);
    let b = s.base.clone();
    let slow = "SELECT count(*) FROM generate_series(1, 1000000000000)";
    // one researcher, two at once: the second is refused at once
    let b1 = b.clone();
    let t1 = f.t("rita").to_owned();
    let h = std::thread::spawn(move || query_as(&b1, &t1, slow, "json"));
    std::thread::sleep(Duration::from_millis(700));
    let r = query_as(&b, f.t("rita"), "SELECT 1", "json");
    assert_eq!(
        (r.status, r.code()),
        (429, "busy".to_owned()),
        "{}",
        text(&r.body)
    );
    // another researcher still gets the second slot
    let r = query_as(&b, f.t("rosa"), "SELECT count(*) FROM patients", "json");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    // both slots busy: everyone gets 429
    let b2 = b.clone();
    let t2 = f.t("rosa").to_owned();
    let h2 = std::thread::spawn(move || query_as(&b2, &t2, slow, "json"));
    std::thread::sleep(Duration::from_millis(700));
    let r = query_as(&b, f.t("ada"), "SELECT count(*) FROM patients", "json");
    assert_eq!(r.status, 429, "{}", text(&r.body));
    assert_eq!(h.join().unwrap().status, 504);
    assert_eq!(h2.join().unwrap().status, 504);
    // many researchers at once, all answered correctly
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let b = b.clone();
            let t = f.t(if i % 2 == 0 { "rita" } else { "rosa" }).to_owned();
            std::thread::spawn(move || {
                let mut ok = 0;
                for _ in 0..3 {
                    let r = query_as(&b, &t, "SELECT count(*) AS n FROM encounters", "json");
                    if r.status == 200 {
                        ok += 1;
                    } else {
                        assert_eq!(r.status, 429);
                    }
                }
                ok
            })
        })
        .collect();
    let served: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(served > 0);
    let (v, _) = ok(dhub(f.path()).args(["audit", "verify"]).output().unwrap());
    assert!(v.contains("intact"), "{v}");
}

#[test]
fn every_request_is_audited_before_the_answer_and_the_chain_detects_tampering() {
    let f = Fixture::new();
    let mut s = f.serve(&[]);
    let b = &s.base.clone();
    let before = f.audit().len();
    let r = query_as(b, f.t("rita"), "SELECT count(*) AS n FROM patients", "json");
    // the audit entry exists as soon as the answer has arrived
    let audit = f.audit();
    assert_eq!(audit.len(), before + 1);
    let e = audit.last().unwrap();
    assert_eq!(e["kind"], "query");
    assert_eq!(e["query_id"], r.json()["query_id"]);
    assert_eq!(e["researcher"], "rita");
    assert_eq!(e["project"], "rec");
    assert_eq!(e["outcome"], "ok");
    assert_eq!(e["rows"], 1);
    assert_eq!(e["sql"], "SELECT count(*) AS n FROM patients");
    assert!(e["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(e["disclosure"]["mode"] == "record");
    // a refusal, and a bad token, are audited too (never the token)
    let r2 = query_as(b, f.t("ada"), "SELECT * FROM patients", "json");
    assert_eq!(r2.status, 400);
    query_as(b, "dhub_not-a-token", "SELECT 1", "json");
    let audit = f.audit();
    // the refused query at once; the bad token is counted per client address and
    // minute, written when its minute is over or the server stops (below)
    assert_eq!(audit.len(), before + 2);
    assert_eq!(audit[before + 1]["outcome"], "refused");
    // the disclosure record can be fetched by the project, not by another
    let id = r.json()["query_id"].as_str().unwrap().to_owned();
    let d = get_as(
        b,
        Some(f.t("rosa")),
        &format!("/v1/queries/{id}/disclosure"),
    );
    assert_eq!(d.status, 200);
    assert_eq!(d.json()["disclosure"]["mode"], "record");
    assert_eq!(
        get_as(b, Some(f.t("ada")), &format!("/v1/queries/{id}/disclosure")).status,
        404
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(kill.success() && s.wait());
    let audit = f.audit();
    assert!(
        audit[before..]
            .iter()
            .any(|e| e["kind"] == "auth.refused" && e["actor"] == "anonymous" && e["count"] == 1),
        "{:?}",
        &audit[before..]
    );
    assert!(
        !serde_json::to_string(&audit)
            .unwrap()
            .contains("not-a-token")
    );
    // tampering with the stored log is detected
    let db = f.path().join("dhub-data/govern.db");
    let out = std::process::Command::new("python3")
        .args(["-c", &format!("import sqlite3; c = sqlite3.connect({:?}); c.execute(\"UPDATE audit SET entry = replace(entry, 'rita', 'mallory')\"); c.commit()", db.to_str().unwrap())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = dhub(f.path()).args(["audit", "verify"]).output().unwrap();
    assert!(!v.status.success());
}

#[test]
fn tls_and_graceful_shutdown_finish_and_audit_in_flight_queries() {
    let f = Fixture::new();
    let d = f.path();
    // a throwaway certificate for 127.0.0.1, made with Python's trustme (test venv)
    let certs = d.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    run_python("tls.py", &["make", certs.to_str().unwrap()], &[]);
    let mut s = f.serve(&[
        "--tls-cert",
        certs.join("server.pem").to_str().unwrap(),
        "--tls-key",
        certs.join("server.key").to_str().unwrap(),
        "--time-limit",
        "20",
        "--flight-listen",
        "127.0.0.1:0",
    ]);
    let url = s.base.replace("http://", "https://");
    // Flight SQL is served over TLS too, verified against the same CA
    let out = run_python(
        "tls.py",
        &[
            "flight",
            certs.join("ca.pem").to_str().unwrap(),
            s.flight.as_deref().unwrap(),
            f.t("rita"),
            "SELECT count(*) AS n FROM patients",
        ],
        &[],
    );
    assert!(out.contains("[[300]]"), "{out}");
    let out = run_python(
        "tls.py",
        &[
            "query",
            certs.join("ca.pem").to_str().unwrap(),
            &url,
            f.t("rita"),
            "SELECT count(*) AS n FROM patients",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 200, "{out}");
    assert_eq!(v["body"]["rows"][0][0], 300);
    // plain HTTP to the TLS port is not served
    let r = http().get(format!("{}/healthz", s.base)).call();
    assert!(r.is_err() || r.unwrap().status() != 200);

    // SIGTERM while a slow query runs: it completes, is audited, the server exits 0
    let before = f.audit().len();
    let slow = "SELECT count(*) AS n FROM encounters a JOIN encounters b ON a.patient = b.patient WHERE a.id < b.id";
    let (ca, u, t) = (certs.join("ca.pem"), url.clone(), f.t("rita").to_owned());
    let h = std::thread::spawn(move || {
        run_python(
            "tls.py",
            &["query", ca.to_str().unwrap(), &u, &t, slow],
            &[],
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(kill.success());
    let out = h.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 200, "the in-flight query was cut off: {out}");
    assert!(s.wait(), "dhub serve did not exit cleanly on SIGTERM");
    let audit = f.audit();
    assert_eq!(audit.len(), before + 1);
    assert_eq!(audit.last().unwrap()["outcome"], "ok");
}

/// Disclosure control over HTTP: the record comes back with the result, the same record
/// is in the audit entry and at `GET /v1/queries/{id}/disclosure`; differencing pairs
/// across queries are listed for review.
#[test]
fn the_disclosure_record_comes_back_is_audited_and_differencing_is_reviewed() {
    let f = Fixture::new();
    let s = f.serve(&[]);
    let b = &s.base;
    // race by gender: some groups have fewer than 10 persons
    let r = query_as(
        b,
        f.t("ada"),
        "SELECT race, gender, count(*) AS n FROM patients GROUP BY race, gender",
        "json",
    );
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let body = r.json();
    let d = &body["disclosure"];
    assert_eq!(d["mode"], "aggregate");
    assert_eq!(d["min_cell"], 10);
    assert_eq!(d["rounding"], 5);
    assert!(d["rows_suppressed"].as_u64().unwrap() > 0, "{d}");
    let fired: Vec<&str> = d["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fired"] == true)
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(
        fired.contains(&"min_cell") && fired.contains(&"rounding"),
        "{fired:?}"
    );
    for row in body["rows"].as_array().unwrap() {
        let n = row[2].as_u64().unwrap();
        assert!(n >= 10 && n % 5 == 0, "released count {n}");
    }
    // hidden columns never leave
    let cols: Vec<&str> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["race", "gender", "n"]);
    // the same record in the audit log and at the endpoint
    let id = body["query_id"].as_str().unwrap();
    let audit = f.audit();
    let e = audit.iter().find(|e| e["query_id"] == id).unwrap();
    assert_eq!(&e["disclosure"], d);
    let got = get_as(b, Some(f.t("ada")), &format!("/v1/queries/{id}/disclosure")).json();
    assert_eq!(&got["disclosure"], d);
    // CSV carries the summary in a header
    let c = query_as(
        b,
        f.t("ada"),
        "SELECT race, gender, count(*) AS n FROM patients GROUP BY race, gender",
        "csv",
    );
    assert!(
        c.disclosure.as_deref().unwrap_or("").contains("min_cell"),
        "{:?}",
        c.disclosure
    );
    // refusals explain themselves
    let r = query_as(
        b,
        f.t("ada"),
        "SELECT max(healthcare_expenses) FROM patients",
        "json",
    );
    assert_eq!(r.status, 400);
    assert!(r.message().contains("aggregate `max`"), "{}", r.message());
    // two queries that differ by one predicate are listed for review
    for sql in [
        "SELECT gender, count(*) FROM patients WHERE race = 'white' GROUP BY gender",
        "SELECT gender, count(*) FROM patients WHERE race = 'white' AND county = 'Essex County' GROUP BY gender",
    ] {
        assert_eq!(query_as(b, f.t("ada"), sql, "json").status, 200);
    }
    let (out, _) = ok(dhub(f.path())
        .args(["audit", "review", "--project", "agg"])
        .output()
        .unwrap());
    let groups: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(groups.len(), 1, "{out}");
    assert_eq!(groups[0]["pairs"].as_array().unwrap().len(), 1);
}

#[test]
fn flight_sql_serves_adbc_polars_and_pyarrow_on_the_governed_path() {
    let f = Fixture::new();
    let s = f.serve(&["--flight-listen", "127.0.0.1:0"]);
    let flight = s
        .flight
        .clone()
        .expect("the Flight SQL address in the ready file");
    let before = f.audit().len();
    let out = run_python(
        "flight_client.py",
        &[&flight, &s.base],
        &[
            ("DHUB_REC".into(), f.t("rita").to_owned()),
            ("DHUB_AGG".into(), f.t("ada").to_owned()),
            ("DHUB_NARROW".into(), f.t("nora").to_owned()),
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("summary");
    assert_eq!(summary["refused"], 3, "{summary}");
    assert!(
        summary["encounters_rows"].as_u64().unwrap() > 1000,
        "{summary}"
    );
    assert_eq!(summary["handshake_patients"], 300, "{summary}");
    assert!(
        summary["disclosure_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "mode"),
        "{summary}"
    );
    // every Flight statement went through the one governed path: audited, via flight
    let audit = f.audit();
    let flight_queries: Vec<&serde_json::Value> = audit[before..]
        .iter()
        .filter(|e| e["kind"] == "query" && e["via"] == "flight")
        .collect();
    assert!(
        flight_queries.len() >= 10,
        "{} Flight queries audited",
        flight_queries.len()
    );
    assert!(
        flight_queries
            .iter()
            .any(|e| e["outcome"] == "refused" && e["sql"] == "DROP TABLE patients")
    );
    let text = serde_json::to_string(&audit).unwrap();
    for who in ["rita", "ada", "nora"] {
        assert!(!text.contains(f.t(who)), "a token reached the audit log");
    }

    // the researcher notebook, executed headless against this server (aggregate mode)
    let nb_dir = f.path().join("nb");
    let out = run_notebook(
        "researcher-quickstart.ipynb",
        &nb_dir,
        &[
            ("DHUB_FLIGHT_URI", &format!("grpc://{flight}")),
            ("DHUB_URL", &s.base),
            ("DHUB_TOKEN", f.t("ada")),
        ],
    );
    assert!(
        out.contains("TABLE patients") && out.contains("VIEW  demographics"),
        "{out}"
    );
    assert!(out.contains("\"mode\": \"aggregate\""), "{out}");
    assert!(out.contains("refused:"), "{out}");
    assert!(
        !out.lines().any(|l| l.starts_with("0 year(s) shown")),
        "some years pass disclosure control: {out}"
    );
    assert!(nb_dir.join("incidence.png").is_file());
    // the refused Flight token was counted and is written when the server stops
    let mut s = s;
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(kill.success() && s.wait());
    assert!(
        f.audit()[before..]
            .iter()
            .any(|e| e["kind"] == "auth.refused" && e["via"] == "flight")
    );
}

#[test]
fn every_notebook_is_executed() {
    let mut found: Vec<String> = std::fs::read_dir(repo().join("notebooks"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.ends_with(".ipynb").then_some(n)
        })
        .collect();
    found.sort();
    assert_eq!(
        found, NOTEBOOKS,
        "every notebook must be executed by a test"
    );
}
