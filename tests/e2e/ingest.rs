//! `dhub ingest` and `dhub release` through the real binary: the real Synthea sample,
//! generated data with injected defects and opt-outs (against the generator's ground
//! truth), a killed run, a repeated run, cloud back ends (Azurite and an S3-compatible
//! server), and independent readers (the Python `deltalake` package and polars).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

const SYNTHEA_TABLES: [&str; 18] = [
    "allergies",
    "careplans",
    "claims",
    "claims_transactions",
    "conditions",
    "devices",
    "encounters",
    "imaging_studies",
    "immunizations",
    "medications",
    "observations",
    "organizations",
    "patients",
    "payer_transitions",
    "payers",
    "procedures",
    "providers",
    "supplies",
];

const UK_TABLES: [&str; 5] = [
    "gp_event",
    "hospital_episode",
    "person",
    "prescription",
    "social_care_contact",
];

fn pipeline(name: &str) -> String {
    repo().join("pipelines").join(name).display().to_string()
}

fn new_key(dir: &Path) {
    ok(dhub(dir).args(["keys", "generate"]).output().unwrap());
}

/// Runs an ingest that must succeed and returns its JSON report.
fn ingest(dir: &Path, args: &[&str]) -> serde_json::Value {
    let report = dir.join(format!("report-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let (_, err) = ok(dhub(dir)
        .arg("ingest")
        .args(args)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap());
    assert!(err.contains("read"), "no summary on stderr: {err}");
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}

fn table_reports(report: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap().to_owned(), t.clone()))
        .collect()
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The identifiable values of the real sample that must never reach the store: every
/// direct identifier and every raw id or reference.
fn identifiers(src: &Path) -> BTreeSet<String> {
    let cols: &[(&str, &[&str])] = &[
        (
            "patients",
            &[
                "Id",
                "SSN",
                "DRIVERS",
                "PASSPORT",
                "FIRST",
                "LAST",
                "MAIDEN",
                "BIRTHPLACE",
                "ADDRESS",
                "LAT",
                "LON",
            ],
        ),
        ("payer_transitions", &["PATIENT", "MEMBERID", "OWNERNAME"]),
        ("devices", &["UDI", "PATIENT", "ENCOUNTER"]),
        (
            "imaging_studies",
            &["Id", "SERIES_UID", "INSTANCE_UID", "PATIENT"],
        ),
        (
            "encounters",
            &["Id", "PATIENT", "ORGANIZATION", "PROVIDER", "PAYER"],
        ),
        ("organizations", &["Id", "ADDRESS", "PHONE", "LAT", "LON"]),
        ("providers", &["Id", "NAME", "ADDRESS", "LAT", "LON"]),
        ("payers", &["Id", "ADDRESS", "PHONE"]),
        (
            "claims",
            &["Id", "PATIENTID", "PROVIDERID", "APPOINTMENTID"],
        ),
        (
            "claims_transactions",
            &["ID", "CLAIMID", "PATIENTID", "PATIENTINSURANCEID"],
        ),
        ("careplans", &["Id", "PATIENT"]),
        ("observations", &["PATIENT", "ENCOUNTER"]),
        ("conditions", &["PATIENT", "ENCOUNTER"]),
        ("medications", &["PATIENT", "ENCOUNTER"]),
    ];
    let mut out = BTreeSet::new();
    for (table, columns) in cols {
        for c in *columns {
            for v in csv_column(&src.join(format!("{table}.csv")), c) {
                let v = v.trim().to_owned();
                // payers' ADDRESS/PHONE are often blank; one-letter values say nothing
                if v.len() >= 4 {
                    out.insert(v);
                }
            }
        }
    }
    out
}

/// Scans every file of a local store (Delta log, Parquet bytes and every decoded
/// Parquet cell) for any of `secrets`.
fn assert_no_leak(store: &Path, secrets: &BTreeSet<String>) {
    let files = files_under(store);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "parquet"))
    );
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("_delta_log"))
    );
    // long values are looked for anywhere; short ones as whole cells
    let long: Vec<&String> = secrets.iter().filter(|s| s.len() >= 8).collect();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let raw = String::from_utf8_lossy(&bytes);
        for s in &long {
            assert!(
                !raw.contains(s.as_str()),
                "an identifier appears in the bytes of {}",
                f.display()
            );
        }
        if f.extension().is_some_and(|e| e == "parquet") {
            let cells = parquet_cells(f);
            for cell in &cells {
                assert!(
                    !secrets.contains(cell),
                    "an identifier is a cell of {}",
                    f.display()
                );
            }
            let all = cells.join("\u{1}");
            for s in &long {
                assert!(
                    !all.contains(s.as_str()),
                    "an identifier is inside a cell of {}",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn synthea_sample_is_ingested_whole_pseudonymised_and_readable_by_other_readers() {
    let src = synthea27();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    new_key(d);
    let report = ingest(
        d,
        &[&pipeline("synthea.toml"), "--source", src.to_str().unwrap()],
    );
    assert_eq!(report["format"], 1);
    assert!(report["committed"].as_bool().unwrap());
    let tables = table_reports(&report);
    assert_eq!(
        tables.keys().map(String::as_str).collect::<Vec<_>>(),
        SYNTHEA_TABLES
    );

    // every row arrives: the report's counts equal the records of each source file
    for t in SYNTHEA_TABLES {
        let records = csv_records(&src.join(format!("{t}.csv"))).len() as u64 - 1;
        let r = &tables[t];
        assert_eq!(n(&r["rows_read"]), records, "{t}: rows read");
        assert_eq!(n(&r["rows_written"]), records, "{t}: rows written");
        assert_eq!(n(&r["rows_quarantined"]), 0, "{t}");
        assert_eq!(r["delta_version"], 0, "{t}");
    }

    // no identifier anywhere in the store, Delta log included
    let store = d.join("dhub-data/store");
    assert_no_leak(&store, &identifiers(&src));

    // the independent readers agree with the report and with each other
    let store_s = store.display().to_string();
    let read = delta_read(
        &store_s,
        &SYNTHEA_TABLES,
        &["patients.id", "patients.birthdate", "encounters.patient"],
        &[],
    );
    for t in SYNTHEA_TABLES {
        let (dl, pl) = (&read[t]["deltalake"], &read[t]["polars"]);
        assert_eq!(
            n(&dl["rows"]),
            n(&tables[t]["rows_written"]),
            "{t}: deltalake rows"
        );
        assert_eq!(dl["rows"], pl["rows"], "{t}: polars rows");
        assert_eq!(
            dl["digest"], pl["digest"],
            "{t}: the two readers see other values"
        );
        assert_eq!(dl["version"], 0);
    }
    // output names are the lower-cased Synthea headers, dropped columns absent
    let cols: Vec<&str> = read["patients"]["deltalake"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cols[..3], ["id", "birthdate", "deathdate"]);
    for gone in [
        "ssn", "first", "last", "address", "lat", "lon", "drivers", "passport",
    ] {
        assert!(!cols.contains(&gone), "{gone} must be dropped");
    }

    // patients' pseudonyms are exactly `dhub pseudonym --entity person` of the raw ids
    let raw_ids = csv_column(&src.join("patients.csv"), "Id");
    let out = run_with_stdin(
        {
            let mut c = dhub(d);
            c.args(["pseudonym", "--entity", "person", "--format", "uuid"]);
            c
        },
        raw_ids.join("\n").as_bytes(),
    );
    let (stdout, _) = ok(out);
    let mut expected: Vec<String> = stdout.lines().map(str::to_owned).collect();
    expected.sort();
    let got: Vec<String> = read["patients"]["values"]["id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    // joins still work: every encounter's patient is a patient
    let people: HashSet<&str> = got.iter().map(String::as_str).collect();
    for p in read["encounters"]["values"]["patient"].as_array().unwrap() {
        assert!(people.contains(p.as_str().unwrap()));
    }
    // dates of birth are truncated to the month
    for b in read["patients"]["values"]["birthdate"].as_array().unwrap() {
        assert!(b.as_str().unwrap().ends_with("-01"), "{b}");
    }

    // releases: create, show, list; never overwritten
    let (out, _) = ok(dhub(d)
        .args(["release", "create", "2026-q4"])
        .output()
        .unwrap());
    assert!(out.contains("created release 2026-q4 (18 tables"), "{out}");
    let (show, _) = ok(dhub(d)
        .args(["release", "show", "2026-q4"])
        .output()
        .unwrap());
    let rel: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(rel["format"], 1);
    assert_eq!(rel["key_id"], report["key_id"]);
    assert_eq!(rel["tables"].as_object().unwrap().len(), 18);
    assert_eq!(rel["pipelines"]["synthea"], report["spec_sha256"]);
    let again = dhub(d)
        .args(["release", "create", "2026-q4"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("can never be overwritten"),
        "{}",
        text(&again.stderr)
    );
    let (list, _) = ok(dhub(d).args(["release", "list"]).output().unwrap());
    assert!(list.starts_with("2026-q4\t"), "{list}");
    assert_eq!(
        std::fs::read_to_string(store.join("_releases/2026-q4.json")).unwrap(),
        show
    );
}

#[test]
fn the_safe_harbor_profile_shifts_dates_per_person_and_keeps_birth_year_only() {
    let src = synthea27();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The vector key, not a new one: a person's shift is one of 101 values in [-50, 50]
    // days, so with a random key one of the 27 patients keeps all their dates about one
    // run in five (shift 0), which made the "few starts unshifted" check below fail at
    // random. With a fixed key the shifts, and so this test, are the same every run.
    let keys = d.join("dhub-keys");
    std::fs::create_dir_all(&keys).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let key = write_key(&keys, vectors()["master_key_hex"].as_str().unwrap());
    std::fs::rename(key, keys.join("master.key")).unwrap();
    ingest(
        d,
        &[
            &pipeline("synthea-safe-harbor.toml"),
            "--source",
            src.to_str().unwrap(),
        ],
    );
    let store = d.join("dhub-data/store").display().to_string();
    let read = delta_read(
        &store,
        &["patients", "encounters"],
        &["patients.birth_year", "encounters.start"],
        &[],
    );
    let cols = read["patients"]["deltalake"]["columns"].to_string();
    assert!(
        cols.contains("birth_year") && !cols.contains("birthdate") && !cols.contains("county"),
        "{cols}"
    );
    // birth years only, nobody shown as older than 90
    for y in read["patients"]["values"]["birth_year"].as_array().unwrap() {
        assert!(n(y) >= 1936, "{y}");
    }
    // every encounter start is shifted: few, if any, raw starts survive unchanged (with
    // the vector key, 2 of 604 shifted starts happen to equal another raw start)
    let raw: HashSet<String> = csv_column(&src.join("encounters.csv"), "START")
        .into_iter()
        .collect();
    let shifted = read["encounters"]["values"]["start"].as_array().unwrap();
    let same = shifted
        .iter()
        .filter(|s| raw.contains(&s.as_str().unwrap().replace(' ', "T").replace("+00:00", "Z")))
        .count();
    assert!(
        same * 100 < shifted.len(),
        "{same} of {} starts unshifted",
        shifted.len()
    );
}

/// Quarantine and opt-out counts against the generator's ground truth, exactly.
#[test]
fn defects_are_quarantined_and_opt_outs_removed_exactly_as_the_ground_truth_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    new_key(d);
    let src = synth(d, "uk", 1500, 7, 0.02, "uk");
    let opt_out = src.join("opt_out.csv");
    let report = ingest(
        d,
        &[
            &pipeline("uk-shared-care.toml"),
            "--source",
            src.to_str().unwrap(),
            "--opt-out",
            opt_out.to_str().unwrap(),
            "--max-reject-rate",
            "0.2",
        ],
    );
    let opted: HashSet<String> = csv_column(&opt_out, "nhs_number").into_iter().collect();
    assert!(!opted.is_empty());
    // ground truth: file -> line -> kind
    let mut defects: HashMap<String, HashMap<u64, String>> = HashMap::new();
    for r in &csv_records(&src.join("_defects.csv"))[1..] {
        defects
            .entry(r[0].clone())
            .or_default()
            .insert(r[1].parse().unwrap(), r[2].clone());
    }
    let tables = table_reports(&report);
    let mut total_q = 0;
    for t in UK_TABLES {
        let file = format!("{t}.csv");
        let bytes = std::fs::read(src.join(&file)).unwrap();
        let nhs_col = usize::from(t != "person");
        let bad = defects.get(&file).cloned().unwrap_or_default();
        let (mut q, mut o, mut read) = (BTreeSet::new(), 0u64, 0u64);
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate().skip(1) {
            if line.is_empty() {
                continue;
            }
            read += 1;
            let lineno = i as u64 + 1;
            let nhs: String = String::from_utf8_lossy(line)
                .split(',')
                .nth(nhs_col)
                .unwrap_or("")
                .chars()
                .filter(|c| !matches!(c, ' ' | '-'))
                .collect();
            let opted_out = opted.contains(&nhs);
            match bad.get(&lineno).map(String::as_str) {
                // a rule-level defect in a row of an opted-out person: the row is removed
                Some("unparseable_date") if opted_out => o += 1,
                Some(_) => {
                    q.insert(lineno);
                }
                None if opted_out => o += 1,
                None => {}
            }
        }
        let r = &tables[t];
        assert_eq!(n(&r["rows_read"]), read, "{t}: read");
        assert_eq!(
            n(&r["rows_quarantined"]),
            q.len() as u64,
            "{t}: quarantined"
        );
        assert_eq!(n(&r["rows_opted_out"]), o, "{t}: opted out");
        assert_eq!(
            n(&r["rows_read"]),
            n(&r["rows_written"]) + n(&r["rows_quarantined"]) + n(&r["rows_opted_out"]),
            "{t}: reconciliation"
        );
        // the quarantine holds exactly those lines, with a reason each
        if !q.is_empty() {
            let qfile = r["quarantine_file"]
                .as_str()
                .unwrap()
                .strip_prefix("file://")
                .unwrap()
                .to_owned();
            let recs = csv_records(Path::new(&qfile));
            assert_eq!(recs[0], ["file", "line", "column", "rule", "reason", "raw"]);
            let lines: BTreeSet<u64> = recs[1..].iter().map(|r| r[1].parse().unwrap()).collect();
            assert_eq!(lines, q, "{t}: quarantined lines");
            assert!(recs[1..].iter().all(|r| !r[4].is_empty()));
            // the quarantine is outside the research store
            assert!(!qfile.contains("dhub-data/store"));
        }
        total_q += q.len();
    }
    assert!(total_q > 20, "the generator should have injected defects");

    // no opted-out person is anywhere in the research store
    let p = d.join("dhub-person.txt");
    std::fs::write(&p, opted.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap();
    let (pseudo, _) = ok(run_with_stdin(
        {
            let mut c = dhub(d);
            c.args(["pseudonym", "--entity", "person", "--format", "nhs-number"]);
            c
        },
        &std::fs::read(&p).unwrap(),
    ));
    let opted_pseudonyms: HashSet<&str> = pseudo.lines().collect();
    let store = d.join("dhub-data/store").display().to_string();
    let values: Vec<String> = UK_TABLES.iter().map(|t| format!("{t}.person_id")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let read = delta_read(&store, &UK_TABLES, &values, &[]);
    for t in UK_TABLES {
        let ids = read[t]["values"]["person_id"].as_array().unwrap();
        assert_eq!(ids.len() as u64, n(&tables[t]["rows_written"]), "{t}");
        for id in ids {
            assert!(
                !opted_pseudonyms.contains(id.as_str().unwrap()),
                "{t}: an opted-out person was written"
            );
        }
    }
    // postcodes are outward codes only
    let read = delta_read(&store, &["person"], &["person.postcode_district"], &[]);
    for pc in read["person"]["values"]["postcode_district"]
        .as_array()
        .unwrap()
    {
        let pc = pc.as_str().unwrap();
        assert!((2..=4).contains(&pc.len()) && !pc.contains(' '), "{pc}");
    }
}

#[test]
fn synthea_format_defects_match_the_ground_truth_and_too_many_rejects_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    new_key(d);
    let src = synth(d, "synthea", 200, 3, 0.004, "s");
    let report = ingest(
        d,
        &[
            &pipeline("synthea.toml"),
            "--source",
            src.to_str().unwrap(),
            "--max-reject-rate",
            "0.05",
        ],
    );
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for r in &csv_records(&src.join("_defects.csv"))[1..] {
        *expected
            .entry(r[0].trim_end_matches(".csv").to_owned())
            .or_default() += 1;
    }
    assert!(expected.values().sum::<u64>() > 10);
    for (t, r) in table_reports(&report) {
        assert_eq!(
            n(&r["rows_quarantined"]),
            expected.get(&t).copied().unwrap_or(0),
            "{t}"
        );
    }

    // the default 1% limit: a table over it fails the run and no table changes
    let before = delta_read(
        &d.join("dhub-data/store").display().to_string(),
        &["encounters"],
        &[],
        &[],
    );
    let src2 = synth(d, "synthea", 200, 4, 0.05, "s2");
    let out = dhub(d)
        .args([
            "ingest",
            &pipeline("synthea.toml"),
            "--source",
            src2.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("max_reject_rate") && err.contains("nothing was committed"),
        "{err}"
    );
    let after = delta_read(
        &d.join("dhub-data/store").display().to_string(),
        &["encounters"],
        &[],
        &[],
    );
    assert_eq!(before, after);
}

fn digests(store: &Path, tables: &[&str]) -> BTreeMap<String, (u64, String)> {
    let read = delta_read(&store.display().to_string(), tables, &[], &[]);
    tables
        .iter()
        .map(|t| {
            let dl = &read[*t]["deltalake"];
            (
                t.to_string(),
                (n(&dl["version"]), dl["digest"].as_str().unwrap().to_owned()),
            )
        })
        .collect()
}

/// A run killed at any point leaves every table at its previous version; running the
/// same spec on the same input again (overwrite) gives the same contents.
#[test]
fn a_killed_run_changes_nothing_and_a_repeated_run_gives_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    new_key(d);
    let small = synth(d, "uk", 300, 1, 0.0, "small");
    let big = synth(d, "uk", 40_000, 2, 0.0, "big");
    let spec = pipeline("uk-shared-care.toml");
    ingest(d, &[&spec, "--source", small.to_str().unwrap()]);
    let store = d.join("dhub-data/store");
    let v0 = digests(&store, &UK_TABLES);
    assert!(v0.values().all(|(v, _)| *v == 0));

    for kill_after_files in [1usize, 4] {
        let before: HashSet<PathBuf> = files_under(&store).into_iter().collect();
        let mut child = dhub(d)
            .args(["ingest", &spec, "--source", big.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // kill it once it has written new data files, before it could commit
        let t = Instant::now();
        loop {
            let new = files_under(&store)
                .into_iter()
                .filter(|f| !before.contains(f) && f.extension().is_some_and(|e| e == "parquet"))
                .count();
            if new >= kill_after_files || t.elapsed() > Duration::from_secs(120) {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the big ingest finished before it could be killed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            digests(&store, &UK_TABLES),
            v0,
            "a killed run changed a table"
        );
    }

    // the same spec on the same input again: new versions, same contents
    ingest(d, &[&spec, "--source", small.to_str().unwrap()]);
    let v1 = digests(&store, &UK_TABLES);
    for t in UK_TABLES {
        assert_eq!(v1[t].0, 1, "{t}");
        assert_eq!(v1[t].1, v0[t].1, "{t}: a repeated run gave other contents");
    }
}

#[test]
fn spec_errors_name_file_line_and_column_before_any_row_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    new_key(d);
    let src = synth(d, "uk", 20, 1, 0.0, "uk");
    let good = std::fs::read_to_string(pipeline("uk-shared-care.toml")).unwrap();
    for (from, to, says) in [
        ("sex = { rule = \"keep\" }\n", "", "source column `sex`"),
        (
            "sex = { rule = \"keep\" }",
            "sex = { rule = \"hash\" }",
            "unknown rule `hash`",
        ),
        (
            "sex = { rule = \"keep\" }",
            "sex = { rule = \"keep\" }\nsexx = { rule = \"keep\" }",
            "`sexx` is not in",
        ),
        (
            "unit = \"month\", name = \"birth_month\"",
            "unit = \"week\", name = \"birth_month\"",
            "unknown unit `week`",
        ),
    ] {
        let spec = d.join("bad.toml");
        assert!(good.contains(from));
        std::fs::write(&spec, good.replacen(from, to, 1)).unwrap();
        let out = dhub(d)
            .args([
                "ingest",
                spec.to_str().unwrap(),
                "--source",
                src.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains(says), "expected `{says}` in: {err}");
        let located = format!("{}:", spec.display());
        assert!(err.contains(&located), "no FILE:LINE:COLUMN in: {err}");
        assert!(
            !d.join("dhub-data/store/person").exists(),
            "a table was written"
        );
    }
    // the quarantine may not be inside the research store
    let out = dhub(d)
        .args([
            "ingest",
            &pipeline("uk-shared-care.toml"),
            "--source",
            src.to_str().unwrap(),
        ])
        .args(["--quarantine", "file://./dhub-data/store/q"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("quarantine"),
        "{}",
        text(&out.stderr)
    );
}

/// The same ingest and release into Azure Blob storage (Azurite) and an S3-compatible
/// server (moto), read back by the independent readers.
#[test]
fn ingest_and_release_on_azurite_and_an_s3_compatible_server() {
    let src = synthea27();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    new_key(d);

    let s3_port = free_port();
    let _moto = Child(
        std::process::Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &s3_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let az_port = free_port();
    let az_dir = d.join("azurite");
    std::fs::create_dir_all(&az_dir).unwrap();
    let _azurite = Child(
        std::process::Command::new(azurite())
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &az_port.to_string(),
                "--location",
            ])
            .arg(&az_dir)
            .args(["--silent", "--skipApiVersionCheck", "--loose"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(s3_port, 60, "moto_server");
    wait_for_port(az_port, 60, "azurite");

    let e = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let s3_env = vec![
        e("AWS_ACCESS_KEY_ID", "test"),
        e("AWS_SECRET_ACCESS_KEY", "test"),
        e("AWS_REGION", "us-east-1"),
        e("AWS_ENDPOINT", &format!("http://127.0.0.1:{s3_port}")),
        e("AWS_ALLOW_HTTP", "true"),
    ];
    let az_env = vec![
        e("AZURE_STORAGE_USE_EMULATOR", "true"),
        e("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
        // Azurite's fixed, public development key
        e(
            "AZURE_STORAGE_ACCOUNT_KEY",
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        ),
        e(
            "AZURITE_BLOB_STORAGE_URL",
            &format!("http://127.0.0.1:{az_port}"),
        ),
    ];
    run_python("cloud.py", &["s3", "research"], &s3_env);
    run_python("cloud.py", &["azure", "research"], &az_env);

    for (scheme, env) in [("s3", &s3_env), ("az", &az_env)] {
        let store = format!("{scheme}://research/store");
        let quarantine = format!("{scheme}://research/quarantine");
        let run = |args: &[&str]| {
            let mut c = dhub(d);
            c.args(["--store", &store]).args(args);
            for (k, v) in env.iter() {
                c.env(k, v);
            }
            ok(c.output().unwrap())
        };
        let report_path = d.join(format!("{scheme}.json"));
        run(&[
            "ingest",
            &pipeline("synthea.toml"),
            "--source",
            src.to_str().unwrap(),
            "--quarantine",
            &quarantine,
            "--report",
            report_path.to_str().unwrap(),
        ]);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
        let tables = table_reports(&report);
        assert_eq!(tables.len(), 18, "{scheme}");
        let (out, _) = run(&["release", "create", "r1"]);
        assert!(
            out.contains("created release r1 (18 tables"),
            "{scheme}: {out}"
        );
        let read = delta_read(
            &store,
            &["patients", "encounters", "claims_transactions"],
            &[],
            env,
        );
        for t in ["patients", "encounters", "claims_transactions"] {
            assert_eq!(
                read[t]["deltalake"]["rows"], tables[t]["rows_written"],
                "{scheme} {t}"
            );
            assert_eq!(
                read[t]["deltalake"]["digest"], read[t]["polars"]["digest"],
                "{scheme} {t}"
            );
        }
        // a second run is a second version; the release still names the first
        run(&[
            "ingest",
            &pipeline("synthea.toml"),
            "--source",
            src.to_str().unwrap(),
            "--quarantine",
            &quarantine,
        ]);
        let (show, _) = run(&["release", "show", "r1"]);
        let rel: serde_json::Value = serde_json::from_str(&show).unwrap();
        assert_eq!(rel["tables"]["patients"], 0, "{scheme}");
        let read = delta_read(&store, &["patients", "patients@0"], &[], env);
        assert_eq!(read["patients"]["deltalake"]["version"], 1, "{scheme}");
        assert_eq!(
            read["patients"]["deltalake"]["digest"],
            read["patients@0"]["deltalake"]["digest"]
        );
        let mut c = dhub(d);
        c.args(["--store", &store, "release", "create", "r1"]);
        for (k, v) in env.iter() {
            c.env(k, v);
        }
        let again = c.output().unwrap();
        assert!(
            !again.status.success(),
            "{scheme}: a release was overwritten"
        );

        // a partner extract written to, and served from, the same object store
        let extracts = format!("{scheme}://research/extracts");
        let signing = d.join("signing.key");
        if !signing.exists() {
            ok(dhub(d)
                .args([
                    "keys",
                    "generate-signing",
                    "--out",
                    signing.to_str().unwrap(),
                ])
                .output()
                .unwrap());
        }
        let sk = signing.to_str().unwrap();
        let with = |args: &[&str]| {
            let mut c = dhub(d);
            c.args([
                "--store",
                &store,
                "--extracts",
                &extracts,
                "--signing-key",
                sk,
            ])
            .args(args);
            for (k, v) in env.iter() {
                c.env(k, v);
            }
            ok(c.output().unwrap())
        };
        let project = format!("cloud-{scheme}");
        with(&[
            "project",
            "create",
            &project,
            "--release",
            "r1",
            "--tables",
            "all",
        ]);
        let (token, _) = with(&[
            "partner",
            "add",
            &format!("uni-{scheme}"),
            "--project",
            &project,
        ]);
        let specs = d.join(format!("specs-{scheme}"));
        std::fs::create_dir_all(&specs).unwrap();
        std::fs::write(
            specs.join("cohort.toml"),
            format!("project = \"{project}\"\nrecipient = \"Uni\"\nk = 1\nformat = \"csv\"\n[rekey]\npatient = \"person\"\n"),
        )
        .unwrap();
        std::fs::write(
            specs.join("cohort.sql"),
            "SELECT patient, encounterclass, start FROM encounters",
        )
        .unwrap();
        let (id, _) = with(&[
            "extract",
            "request",
            specs.join("cohort.toml").to_str().unwrap(),
            "--by",
            "ada",
        ]);
        let id = id.trim().to_owned();
        with(&["extract", "approve", &id, "--by", "grace"]);
        with(&["extract", "run", &id]);
        let server = Server::start_with_env(
            d,
            &[
                "--store",
                &store,
                "--extracts",
                &extracts,
                "--signing-key",
                sk,
            ],
            env,
        );
        let list = get_as(&server.base, Some(token.trim()), "/v1/extracts").json();
        let files = list["extracts"][0]["files"].as_array().unwrap().clone();
        assert_eq!(list["extracts"][0]["id"], id.as_str(), "{scheme}: {list}");
        let got = d.join(format!("got-{scheme}"));
        std::fs::create_dir_all(&got).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .chain(["manifest.json".to_owned(), "manifest.sig".to_owned()])
            .collect();
        for n in &names {
            let r = get_as(
                &server.base,
                Some(token.trim()),
                &format!("/v1/extracts/{id}/files/{n}"),
            );
            assert_eq!(r.status, 200, "{scheme} {n}");
            std::fs::write(got.join(n), &r.body).unwrap();
        }
        drop(server);
        let (public, _) = ok(dhub(d)
            .args(["--signing-key", sk, "keys", "public"])
            .output()
            .unwrap());
        let (v, _) = ok(dhub(d)
            .args([
                "extract",
                "verify",
                got.to_str().unwrap(),
                "--public-key",
                public.trim(),
            ])
            .output()
            .unwrap());
        assert!(v.contains("verified"), "{scheme}: {v}");
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(got.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["rows"], tables["encounters"]["rows_written"], "{scheme}");
    }
}
