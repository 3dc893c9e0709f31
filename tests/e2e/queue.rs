//! The server under load, through the real binary: concurrent researchers wait in the
//! admission queue for a worker instead of being refused (429 only when the queue is
//! full or the wait runs out), Flight SQL answers of statements and prepared statements
//! share one bounded, expiring budget per researcher that revocation empties, and the
//! governance store's work (audit writes, disclosure lookups) never stalls the async
//! threads.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// A released store with a record-mode project and researchers `r0`…`r{n-1}`.
struct Fixture {
    dir: tempfile::TempDir,
    tokens: Vec<String>,
}

impl Fixture {
    fn new(researchers: usize) -> Fixture {
        let dir = released_store("synthea", "synthea", 200, 9, "r1");
        let d = dir.path();
        create_project(d, "rec", true);
        let tokens = (0..researchers)
            .map(|i| add_researcher(d, &format!("r{i}"), "rec"))
            .collect();
        Fixture { dir, tokens }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

const SLOW: &str = "SELECT count(*) FROM generate_series(1, 1000000000000)";
const SMALL: &str = "SELECT count(*) AS n FROM encounters";

/// Starts `sql` as researcher `token` on another thread; returns once it has been sent.
fn spawn_query(base: &str, token: &str, sql: &str) -> std::thread::JoinHandle<(Resp, Duration)> {
    let (b, t, q) = (base.to_owned(), token.to_owned(), sql.to_owned());
    let h = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = query_as(&b, &t, &q, "json");
        (r, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(600));
    h
}

/// The token that opens `/metrics` on the servers these tests start.
const METRICS_TOKEN: &str = "metrics-for-the-queue-tests";

fn serve(f: &Fixture, args: &[&str]) -> Server {
    Server::start_with_env(
        f.path(),
        args,
        &[("DHUB_METRICS_TOKEN".into(), METRICS_TOKEN.into())],
    )
}

fn metric(base: &str, name: &str) -> Option<f64> {
    let m = text(&get_as(base, Some(METRICS_TOKEN), "/metrics").body);
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn concurrent_researchers_wait_for_a_worker_and_429_comes_only_from_a_full_queue() {
    let f = Fixture::new(6);
    // one worker, one query per researcher: before the queue, all but one of these
    // were refused
    let s = serve(
        &f,
        &[
            "--workers",
            "1",
            "--per-researcher",
            "1",
            "--time-limit",
            "4",
        ],
    );
    let b = s.base.clone();
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let b = b.clone();
            let t = f.tokens[i % 6].clone();
            std::thread::spawn(move || {
                (0..3)
                    .map(|_| query_as(&b, &t, SMALL, "json"))
                    .map(|r| (r.status, text(&r.body)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut answers = 0;
    let mut expected = None;
    for h in handles {
        for (status, body) in h.join().unwrap() {
            assert_eq!(status, 200, "{body}");
            // and every answer is the same, right one
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let n = v["rows"][0].clone();
            assert_eq!(expected.get_or_insert(n.clone()), &n);
            answers += 1;
        }
    }
    assert_eq!(answers, 36);
    // a query behind a slow one waits for the worker (and is answered), it is not refused
    let slow = spawn_query(&b, &f.tokens[0], SLOW);
    let waiting = spawn_query(&b, &f.tokens[1], "SELECT 1 AS one");
    // the same researcher's second query waits too (behind their own first)
    let own = query_as(&b, &f.tokens[0], "SELECT 2 AS two", "json");
    assert_eq!(own.status, 200, "{}", text(&own.body));
    assert_eq!(slow.join().unwrap().0.status, 504);
    let (r, took) = waiting.join().unwrap();
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(took > Duration::from_secs(2), "it waited {took:?}");
    // its audit entry says how long it waited
    let audit = audit_entries(f.path());
    let e = audit
        .iter()
        .rev()
        .find(|e| e["kind"] == "query" && e["sql"] == "SELECT 1 AS one")
        .unwrap();
    assert!(e["queued_ms"].as_u64().unwrap() >= 1500, "{e}");
    assert_eq!(e["outcome"], "ok");
    drop(s);

    // a queue of one: the second waiting query is refused at once, with Retry-After;
    // one that waits longer than --queue-wait is refused when the wait runs out
    let s = serve(
        &f,
        &[
            "--workers",
            "1",
            "--per-researcher",
            "1",
            "--time-limit",
            "6",
            "--queue",
            "1",
            "--queue-wait",
            "2",
        ],
    );
    let b = s.base.clone();
    let slow = spawn_query(&b, &f.tokens[0], SLOW);
    let waiting = spawn_query(&b, &f.tokens[1], "SELECT 1 AS one");
    let t0 = Instant::now();
    let full = http()
        .post(format!("{b}/v1/query"))
        .header("Authorization", &format!("Bearer {}", f.tokens[2]))
        .send_json(serde_json::json!({"sql": "SELECT 3 AS three"}))
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(full.status().as_u16(), 429);
    assert_eq!(
        full.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (r, took) = waiting.join().unwrap();
    assert_eq!((r.status, r.code()), (429, "busy".to_owned()));
    assert!(r.message().contains("within 2 s"), "{}", r.message());
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(slow.join().unwrap().0.status, 504);
    // and with the worker free again, the next query is served
    let r = query_as(&b, &f.tokens[2], SMALL, "json");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(metric(&b, "dhub_query_queue_waiting"), Some(0.0));
    let (v, _) = ok(dhub(f.path()).args(["audit", "verify"]).output().unwrap());
    assert!(v.contains("intact"), "{v}");
}

#[test]
fn audit_writes_and_disclosure_lookups_do_not_stall_the_server() {
    let f = Fixture::new(4);
    let s = serve(&f, &["--workers", "2", "--queue-per-researcher", "16"]);
    let b = s.base.clone();
    let first = query_as(&b, &f.tokens[0], SMALL, "json");
    assert_eq!(first.status, 200);
    let id = first.query_id.clone().unwrap();
    // another process holds the governance store's write lock for a while (as a CLI
    // command or a backup can): audit writes wait for it
    let holder = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(4)\n\
             c.execute('COMMIT')\n",
        )
        .arg(f.path().join("dhub-data/govern.db"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (standard library) to hold the lock");
    let mut holder = Child(holder);
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(holder.0.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
    }
    let t0 = Instant::now();
    // many queries and disclosure lookups at once, each waiting for the governance
    // store; before, each of those waits held one of the server's few async threads
    let queries: Vec<_> = (0..64)
        .map(|i| {
            let b = b.clone();
            let t = f.tokens[i % 4].clone();
            std::thread::spawn(move || query_as(&b, &t, "SELECT 1 AS one", "json").status)
        })
        .collect();
    let lookups: Vec<_> = (0..16)
        .map(|_| {
            let b = b.clone();
            let t = f.tokens[1].clone();
            let path = format!("/v1/queries/{id}/disclosure");
            std::thread::spawn(move || get_as(&b, Some(&t), &path))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    // the server still answers at once
    let t1 = Instant::now();
    for _ in 0..5 {
        assert_eq!(get_as(&b, None, "/healthz").status, 200);
    }
    let quick = t1.elapsed();
    assert!(
        t0.elapsed() < Duration::from_millis(3500),
        "the lock was already released ({:?}): the test proves nothing",
        t0.elapsed()
    );
    assert!(
        quick < Duration::from_secs(1),
        "/healthz took {quick:?} while the governance store was locked"
    );
    // and once the lock is gone, everyone is answered
    for q in queries {
        assert_eq!(q.join().unwrap(), 200);
    }
    for l in lookups {
        let r = l.join().unwrap();
        assert_eq!(r.status, 200, "{}", text(&r.body));
        assert_eq!(r.json()["query_id"], id.as_str());
        assert_eq!(r.json()["outcome"], "ok");
    }
    assert!(holder.0.wait().unwrap().success());
    // an id from outside the project, or unknown: 404
    let r = get_as(
        &b,
        Some(&f.tokens[1]),
        &format!("/v1/queries/{}/disclosure", "0".repeat(32)),
    );
    assert_eq!(r.status, 404);
    let (v, _) = ok(dhub(f.path()).args(["audit", "verify"]).output().unwrap());
    assert!(v.contains("intact"), "{v}");
}

mod flight {
    use arrow_flight::sql::client::FlightSqlServiceClient;
    use futures::TryStreamExt;
    use tonic::transport::Channel;

    use super::*;

    async fn client(addr: &str, token: &str) -> FlightSqlServiceClient<Channel> {
        let ch = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = FlightSqlServiceClient::new(ch);
        c.set_token(token.to_owned());
        c
    }

    /// The rows of the answer a `FlightInfo` names (its one ticket), or the error.
    async fn fetch(
        c: &mut FlightSqlServiceClient<Channel>,
        info: &arrow_flight::FlightInfo,
    ) -> Result<Vec<arrow::record_batch::RecordBatch>, String> {
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let stream = c.do_get(ticket).await.map_err(|e| e.to_string())?;
        stream.try_collect().await.map_err(|e| e.to_string())
    }

    fn flight_queries(dir: &Path, sql: &str) -> usize {
        audit_entries(dir)
            .iter()
            .filter(|e| e["kind"] == "query" && e["via"] == "flight" && e["sql"] == sql)
            .count()
    }

    fn held(base: &str) -> f64 {
        metric(base, "dhub_flight_answers_held").expect("the held-answers gauge")
    }

    fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(secs), "{what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    #[test]
    fn prepared_statement_answers_share_the_budget_expire_and_go_with_revocation() {
        let f = Fixture::new(2);
        let s = serve(
            &f,
            &["--flight-listen", "127.0.0.1:0", "--flight-answer-ttl", "4"],
        );
        let addr = s.flight.clone().unwrap();
        let b = s.base.clone();
        let dir = f.path().to_owned();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut c = client(&addr, &f.tokens[0]).await;
            let sql = |k: usize| format!("SELECT {k} AS k, count(*) AS n FROM encounters");
            // six prepared statements, each run once when prepared: only the budget's
            // four newest answers are held (before: all six, without limit or expiry)
            let mut prepared = Vec::new();
            for k in 1..=6 {
                prepared.push(c.prepare(sql(k), None).await.unwrap());
            }
            assert_eq!(held(&b), 4.0);
            for k in 1..=6 {
                assert_eq!(flight_queries(&dir, &sql(k)), 1);
            }
            // the newest is executed from its held answer (not run again) …
            let info = prepared[5].execute().await.unwrap();
            let rows = fetch(&mut c, &info).await.unwrap();
            assert_eq!(rows[0].num_rows(), 1);
            assert_eq!(flight_queries(&dir, &sql(6)), 1);
            // … the oldest's answer was evicted: executing it runs it again (audited)
            let info = prepared[0].execute().await.unwrap();
            assert_eq!(fetch(&mut c, &info).await.unwrap()[0].num_rows(), 1);
            assert_eq!(flight_queries(&dir, &sql(1)), 2);
            // statements count in the same budget: four of them leave no prepared
            // statement's answer held
            let mut infos = Vec::new();
            for k in 11..=14 {
                infos.push(c.execute(sql(k), None).await.unwrap());
            }
            assert_eq!(held(&b), 4.0);
            let info = prepared[4].execute().await.unwrap();
            assert_eq!(fetch(&mut c, &info).await.unwrap()[0].num_rows(), 1);
            assert_eq!(flight_queries(&dir, &sql(5)), 2);
            // held answers expire (--flight-answer-ttl 4): tickets are gone and a
            // prepared statement's answer is computed again
            let p7 = c.prepare(sql(7), None).await.unwrap();
            wait_for("held answers expire", 15, || held(&b) == 0.0);
            let e = fetch(&mut c, &infos[3]).await.unwrap_err();
            assert!(e.contains("expired"), "{e}");
            let mut p7 = p7;
            let info = p7.execute().await.unwrap();
            assert_eq!(fetch(&mut c, &info).await.unwrap()[0].num_rows(), 1);
            assert_eq!(flight_queries(&dir, &sql(7)), 2);
            // a closed prepared statement's answer goes with it
            let p8 = c.prepare(sql(8), None).await.unwrap();
            assert_eq!(held(&b), 1.0);
            p8.close().await.unwrap();
            assert_eq!(held(&b), 0.0);

            // revocation drops what the researcher holds
            let mut r = client(&addr, &f.tokens[1]).await;
            let _p = r.prepare(sql(21), None).await.unwrap();
            let pending = r.execute(sql(22), None).await.unwrap();
            assert_eq!(held(&b), 2.0);
            ok(dhub(&dir)
                .args(["researcher", "revoke", "r1"])
                .output()
                .unwrap());
            wait_for("a revoked researcher's answers are dropped", 10, || {
                held(&b) == 0.0
            });
            let e = fetch(&mut r, &pending).await.unwrap_err();
            assert!(e.contains("revoked"), "{e}");
            // the other researcher is untouched
            let info = c.execute(sql(9), None).await.unwrap();
            assert_eq!(fetch(&mut c, &info).await.unwrap()[0].num_rows(), 1);
        });
    }
}
