//! Partner extracts through the real binary: the four-eyes workflow, re-keying to
//! project pseudonyms (checked by an independent Python computation), k-anonymity,
//! signed manifests and their verification (dhub and Python `cryptography` through the
//! partner notebook), downloads over HTTP with ranges, revocation, isolation between
//! projects, audit, and memory on a 1,000,000-row extract.

use std::path::{Path, PathBuf};

use crate::support::*;

/// Writes an extract spec (and its SQL) for `project` into `dir/specs/<name>.{toml,sql}`.
fn spec(dir: &Path, name: &str, project: &str, toml_rest: &str, sql: &str) -> PathBuf {
    let d = dir.join("specs");
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!("project = \"{project}\"\nrecipient = \"Uni of {project}\"\n{toml_rest}"),
    )
    .unwrap();
    std::fs::write(d.join(format!("{name}.sql")), sql).unwrap();
    p
}

fn request(d: &Path, spec: &Path, by: &str) -> String {
    let (out, _) = ok(dhub(d)
        .args(["extract", "request"])
        .arg(spec)
        .args(["--by", by, "--views"])
        .arg(repo().join("sql/views"))
        .output()
        .unwrap());
    let id = out.trim().to_owned();
    assert_eq!(out.lines().count(), 1, "the id is the only line on stdout");
    id
}

fn approve(d: &Path, id: &str, by: &str) -> std::process::Output {
    dhub(d)
        .args(["extract", "approve", id, "--by", by])
        .output()
        .unwrap()
}

fn run(d: &Path, id: &str, extra: &[&str]) -> std::process::Output {
    dhub(d)
        .args(["extract", "run", id, "--views"])
        .arg(repo().join("sql/views"))
        .args(extra)
        .output()
        .unwrap()
}

fn status(d: &Path, id: &str) -> String {
    let (out, _) = ok(dhub(d).args(["extract", "show", id]).output().unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["status"].as_str().unwrap().to_owned()
}

fn verify(d: &Path, dir: &Path, public: &str) -> std::process::Output {
    dhub(d)
        .args(["extract", "verify"])
        .arg(dir)
        .args(["--public-key", public])
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// GET with a token and optional Range header: status, Content-Range, body.
fn get_range(
    base: &str,
    token: &str,
    path: &str,
    range: Option<&str>,
) -> (u16, Option<String>, Vec<u8>) {
    let mut r = http()
        .get(format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {token}"));
    if let Some(v) = range {
        r = r.header("Range", v);
    }
    let mut resp = r.call().expect("HTTP request");
    let cr = resp
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 31)
        .read_to_vec()
        .unwrap();
    (status, cr, body)
}

const COHORT_SQL: &str = "SELECT d.person_id AS patient, d.sex, d.deceased, count(e.id) AS encounters \
     FROM demographics d LEFT JOIN encounters e ON e.patient = d.person_id \
     GROUP BY d.person_id, d.sex, d.deceased";

#[test]
fn extracts_are_approved_by_four_eyes_rekeyed_signed_served_and_verified() {
    // no signing key yet: the run says how to make one (checked below)
    let dir = released_store("synthea", "synthea", 300, 5, "r1");
    let d = dir.path();
    for p in ["pa", "pb"] {
        ok(dhub(d)
            .args(["project", "create", p, "--release", "r1", "--tables", "all"])
            .output()
            .unwrap());
    }
    let (ta, _) = ok(dhub(d)
        .args(["partner", "add", "uni-a", "--project", "pa"])
        .output()
        .unwrap());
    let (tb, _) = ok(dhub(d)
        .args(["partner", "add", "uni-b", "--project", "pb"])
        .output()
        .unwrap());
    let (ta, tb) = (ta.trim().to_owned(), tb.trim().to_owned());
    let (tr, _) = ok(dhub(d)
        .args(["researcher", "add", "rita", "--project", "pa"])
        .output()
        .unwrap());

    // the shipped example is valid and runs on this sample (its project renamed)
    let ex = d.join("example");
    std::fs::create_dir_all(&ex).unwrap();
    let toml = std::fs::read_to_string(repo().join("sql/extracts/synthea-cohort.toml")).unwrap();
    assert!(toml.contains("project = \"cardio-2026\""));
    std::fs::write(
        ex.join("synthea-cohort.toml"),
        toml.replace("cardio-2026", "pb"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("sql/extracts/synthea-cohort.sql"),
        ex.join("synthea-cohort.sql"),
    )
    .unwrap();
    let ie = request(d, &ex.join("synthea-cohort.toml"), "ada");
    ok(approve(d, &ie, "grace"));

    // a spec naming a column the query does not have is refused at request time
    let bad = spec(
        d,
        "bad",
        "pa",
        "quasi_identifiers = [\"nope\"]\n[rekey]\npatient = \"person\"\n",
        COHORT_SQL,
    );
    let out = dhub(d)
        .args(["extract", "request"])
        .arg(&bad)
        .args(["--by", "ada", "--views"])
        .arg(repo().join("sql/views"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("quasi-identifier `nope` is not an output column"),
        "{}",
        text(&out.stderr)
    );
    // a write statement is refused by the guard
    let w = spec(d, "w", "pa", "", "DELETE FROM patients");
    assert!(
        !dhub(d)
            .args(["extract", "request"])
            .arg(&w)
            .args(["--by", "ada"])
            .output()
            .unwrap()
            .status
            .success()
    );

    let rest =
        "k = 5\nquasi_identifiers = [\"sex\", \"deceased\"]\n[rekey]\npatient = \"person\"\n";
    let sa = spec(d, "cohort-a", "pa", rest, COHORT_SQL);
    let sb = spec(
        d,
        "cohort-b",
        "pb",
        &format!("format = \"csv\"\n{rest}"),
        COHORT_SQL,
    );
    let ia = request(d, &sa, "ada");
    assert_eq!(status(d, &ia), "pending");
    // running before approval is refused
    assert!(!run(d, &ia, &[]).status.success());
    // four eyes: the requester cannot approve (names are lower case: `ADA` is not a name)
    let out = approve(d, &ia, "ada");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("four eyes"),
        "{}",
        text(&out.stderr)
    );
    assert!(!approve(d, &ia, "ADA").status.success());
    ok(approve(d, &ia, "grace"));
    assert_eq!(status(d, &ia), "approved");
    // the signing key is needed, and its absence is explained
    let out = run(d, &ia, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("dhub keys generate-signing"),
        "{}",
        text(&out.stderr)
    );
    ok(dhub(d).args(["keys", "generate-signing"]).output().unwrap());
    assert!(
        !dhub(d)
            .args(["keys", "generate-signing"])
            .output()
            .unwrap()
            .status
            .success(),
        "never overwritten"
    );
    let (public, _) = ok(dhub(d).args(["keys", "public"]).output().unwrap());
    let public = public.trim().to_owned();
    assert_eq!(public.len(), 64);
    assert!(public.bytes().all(|b| b.is_ascii_hexdigit()));

    let report = d.join("run-a.json");
    ok(run(d, &ia, &["--report", report.to_str().unwrap()]));
    assert_eq!(status(d, &ia), "released");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["rows"], 300, "one row per patient");
    // running it again is refused (it is released)
    assert!(!run(d, &ia, &[]).status.success());
    let (_, err) = ok(run(d, &ie, &[]));
    assert!(err.contains("300 rows"), "{err}");
    let ib = request(d, &sb, "bob");
    ok(approve(d, &ib, "grace"));
    ok(run(d, &ib, &[]));

    let xa = d.join("dhub-data/extracts/pa").join(&ia);
    let xb = d.join("dhub-data/extracts/pb").join(&ib);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(xa.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["rows"], 300);
    assert_eq!(manifest["requested_by"], "ada");
    assert_eq!(manifest["approved_by"], "grace");
    assert_eq!(manifest["release"], "r1");
    assert_eq!(manifest["k"], 5);
    assert!(manifest["k_achieved"].as_u64().unwrap() >= 5);
    assert_eq!(manifest["rekeyed"]["patient"], "person");
    assert_eq!(std::fs::read(xa.join("manifest.sig")).unwrap().len(), 64);
    assert!(xb.join("part-00000.csv").is_file());

    // project pseudonyms = HMAC under K("project:<id>") of the research pseudonyms,
    // computed independently; the two projects' extracts share no id
    let summary = run_python(
        "extract_check.py",
        &[
            d.join("dhub-keys/master.key").to_str().unwrap(),
            d.join("dhub-data/store").to_str().unwrap(),
            &format!("{}:pa", xa.display()),
            &format!("{}:pb", xb.display()),
        ],
        &[],
    );
    let s: serde_json::Value = serde_json::from_str(summary.trim()).unwrap();
    assert_eq!(s["pa"]["distinct_patients"], 300, "{s}");
    assert_eq!(s["pb"]["distinct_patients"], 300, "{s}");

    // verification: intact passes; a changed file or manifest fails
    let (v, _) = ok(verify(d, &xa, &public));
    assert!(v.contains("verified"), "{v}");
    ok(verify(d, &xb, &public));
    let t1 = d.join("tampered-file");
    copy_dir(&xa, &t1);
    let mut bytes = std::fs::read(t1.join("part-00000.parquet")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(t1.join("part-00000.parquet"), bytes).unwrap();
    let out = verify(d, &t1, &public);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("SHA-256 does not match"),
        "{}",
        text(&out.stderr)
    );
    let t2 = d.join("tampered-manifest");
    copy_dir(&xa, &t2);
    let m = std::fs::read_to_string(t2.join("manifest.json")).unwrap();
    std::fs::write(
        t2.join("manifest.json"),
        m.replace("\"rows\": 300", "\"rows\": 301"),
    )
    .unwrap();
    let out = verify(d, &t2, &public);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("signature"),
        "{}",
        text(&out.stderr)
    );
    // another key does not verify it
    let other = d.join("other.key");
    ok(dhub(d)
        .args(["keys", "generate-signing", "--out", other.to_str().unwrap()])
        .output()
        .unwrap());
    let (other_pub, _) = ok(dhub(d)
        .args(["--signing-key", other.to_str().unwrap(), "keys", "public"])
        .output()
        .unwrap());
    assert!(!verify(d, &xa, other_pub.trim()).status.success());

    // k-anonymity failure: nothing is written, sizes are reported, values never
    let sk = spec(
        d,
        "too-fine",
        "pa",
        "k = 10\nquasi_identifiers = [\"sex\", \"encounters\"]\n[rekey]\npatient = \"person\"\n",
        COHORT_SQL,
    );
    let ik = request(d, &sk, "ada");
    ok(approve(d, &ik, "grace"));
    let out = run(d, &ik, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("k-anonymity check failed") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(
        !d.join("dhub-data/extracts/pa").join(&ik).exists(),
        "a failed k check writes nothing"
    );
    assert_eq!(status(d, &ik), "approved");
    // a research pseudonym not listed in [rekey] is refused
    let sl = spec(
        d,
        "leak",
        "pa",
        "k = 1\n",
        "SELECT id AS someone, gender FROM patients",
    );
    let il = request(d, &sl, "ada");
    ok(approve(d, &il, "grace"));
    let out = run(d, &il, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("holds research pseudonyms"),
        "{}",
        text(&out.stderr)
    );

    // HTTP: partners list and download their project's released extracts only
    let server = Server::start(d, &[]);
    let base = &server.base;
    let api = get_as(base, None, "/openapi.json").json();
    assert!(api["paths"]["/v1/extracts/{id}/files/{name}"]["get"].is_object());
    let la = get_as(base, Some(&ta), "/v1/extracts");
    assert_eq!(la.status, 200, "{}", text(&la.body));
    let ids: Vec<String> = la.json()["extracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        std::slice::from_ref(&ia),
        "only released extracts of the partner's project"
    );
    let lb = get_as(base, Some(&tb), "/v1/extracts");
    assert!(!text(&lb.body).contains(&ia));
    // a researcher token, no token, a bad token: 401
    assert_eq!(get_as(base, Some(tr.trim()), "/v1/extracts").status, 401);
    assert_eq!(get_as(base, None, "/v1/extracts").status, 401);
    // a partner token cannot run SQL
    assert_eq!(query_as(base, &ta, "SELECT 1", "json").status, 401);
    // partner B cannot fetch A's extract (404), nor A a file outside the manifest
    let file = format!("/v1/extracts/{ia}/files/part-00000.parquet");
    assert_eq!(get_range(base, &tb, &file, None).0, 404);
    for p in [
        format!("/v1/extracts/{ia}/files/..%2F..%2Fgovern.db"),
        format!("/v1/extracts/{ia}/files/nope.parquet"),
        format!("/v1/extracts/{ik}/files/manifest.json"),
        "/v1/extracts/ext-nope/files/manifest.json".to_owned(),
    ] {
        assert_eq!(get_range(base, &ta, &p, None).0, 404, "{p}");
    }
    // whole files and ranges
    let whole = std::fs::read(xa.join("part-00000.parquet")).unwrap();
    let (st, _, body) = get_range(base, &ta, &file, None);
    assert_eq!(st, 200);
    assert_eq!(body, whole);
    let (st, cr, body) = get_range(base, &ta, &file, Some("bytes=0-99"));
    assert_eq!(st, 206);
    assert_eq!(body, whole[..100]);
    assert_eq!(cr.unwrap(), format!("bytes 0-99/{}", whole.len()));
    let (st, _, body) = get_range(base, &ta, &file, Some("bytes=-10"));
    assert_eq!((st, body.as_slice()), (206, &whole[whole.len() - 10..]));
    let (st, _, body) = get_range(base, &ta, &file, Some("bytes=100-"));
    assert_eq!((st, body.as_slice()), (206, &whole[100..]));
    let (st, cr, _) = get_range(
        base,
        &ta,
        &file,
        Some(&format!("bytes={}-", whole.len() + 5)),
    );
    assert_eq!(st, 416);
    assert_eq!(cr.unwrap(), format!("bytes */{}", whole.len()));

    // the partner notebook, executed headless: list, download, verify with Python
    // `cryptography`, load with polars
    let nb = run_notebook(
        "partner-extract.ipynb",
        &d.join("nb"),
        &[
            ("DHUB_URL", base.as_str()),
            ("DHUB_PARTNER_TOKEN", ta.as_str()),
            ("DHUB_PUBLIC_KEY", public.as_str()),
            ("DHUB_DOWNLOAD_DIR", d.join("downloads").to_str().unwrap()),
        ],
    );
    assert!(nb.contains(&format!("verified: extract {ia}")), "{nb}");
    assert!(nb.contains("(300, 4)"), "{nb}");
    // and what it downloaded verifies with dhub too
    ok(verify(d, &d.join("downloads").join(&ia), &public));

    // revocation: downloads refused afterwards
    ok(dhub(d).args(["extract", "revoke", &ia]).output().unwrap());
    let (st, _, body) = get_range(base, &ta, &file, None);
    assert_eq!(st, 403, "{}", text(&body));
    assert!(text(&body).contains("revoked"));
    assert!(
        get_as(base, Some(&ta), "/v1/extracts").json()["extracts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    drop(server);

    // every step and every download is in the audit chain, which is intact
    let entries = audit_entries(d);
    let out = serde_json::to_string(&entries).unwrap();
    let kinds: Vec<String> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    for k in [
        "partner.add",
        "extract.request",
        "extract.approve",
        "extract.release",
        "extract.revoke",
        "extract.list",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing");
    }
    let downloads = kinds.iter().filter(|k| *k == "extract.download").count();
    assert!(downloads >= 12, "{downloads} downloads audited");
    assert!(
        kinds.iter().any(|k| k == "extract.run"),
        "failed runs are audited"
    );
    assert!(
        !out.contains(&ta) && !out.contains(&tb),
        "tokens never in the audit log"
    );
    let (v, _) = ok(dhub(d).args(["audit", "verify"]).output().unwrap());
    assert!(v.contains("intact"));
}

#[test]
fn a_million_row_extract_streams_in_bounded_memory() {
    // about 26.7 GP events per person: 40,000 people give over 1,000,000 events
    let dir = released_store("uk", "uk-shared-care", 40_000, 9, "big");
    let d = dir.path();
    std::fs::remove_dir_all(d.join("raw")).unwrap();
    ok(dhub(d).args(["keys", "generate-signing"]).output().unwrap());
    ok(dhub(d)
        .args([
            "project",
            "create",
            "big",
            "--release",
            "big",
            "--tables",
            "gp_event",
        ])
        .output()
        .unwrap());
    let s = spec(
        d,
        "events",
        "big",
        "k = 10\nquasi_identifiers = [\"event_period\"]\nmax_rows = 5000000\n[rekey]\npatient = \"person\"\nevent = \"gp_event\"\n",
        "SELECT person_id AS patient, event_id AS event, CASE WHEN event_date < DATE '2000-01-01' THEN 'before 2000' ELSE CAST(date_part('year', event_date) AS VARCHAR) END AS event_period, snomed_code, value, unit FROM gp_event",
    );
    let id = request(d, &s, "ada");
    ok(approve(d, &id, "grace"));
    let report = d.join("report.json");
    ok(run(d, &id, &["--report", report.to_str().unwrap()]));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let rows = r["rows"].as_u64().unwrap();
    assert!(rows >= 1_000_000, "{rows} rows");
    let rss = r["peak_rss_bytes"].as_u64().expect("peak RSS (Linux)");
    assert!(rss < 1 << 30, "peak RSS {} MiB", rss >> 20);
    let (public, _) = ok(dhub(d).args(["keys", "public"]).output().unwrap());
    ok(verify(
        d,
        &d.join("dhub-data/extracts/big").join(&id),
        public.trim(),
    ));
    eprintln!(
        "1M-row extract: {rows} rows, peak RSS {} MiB, {:.1} s",
        rss >> 20,
        r["seconds"].as_f64().unwrap()
    );
}
