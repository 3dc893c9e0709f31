//! The official SQL on FHIR v2 test suite, every test of it, through dhub's view runner.
//!
//! The suite is read from `../shared/conformance/sql-on-fhir-v2/tests` beside the
//! checkout (never copied into the repository); this test fails when it is missing.
//! Each file holds `resources` and `tests`: a `view` with `expect` (rows, compared as a
//! multiset), `expectColumns` (the column order), `expectCount`, or `expectError` (the
//! view must be refused, when compiled or when run).

use std::path::PathBuf;

use dhub_fhir::json::Tape;
use dhub_fhir::view::{View, row_json};
use serde_json::Value;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/sql-on-fhir-v2/tests")
}

/// Runs a view over the resources: the rows as JSON, or the first error.
fn run(view: &Value, resources: &[Value]) -> Result<(Vec<String>, Vec<Value>), String> {
    let view = View::from_json(view).map_err(|e| e.to_string())?;
    let mut tape = Tape::new();
    let mut rows = Vec::new();
    for r in resources {
        let text = serde_json::to_vec(r).map_err(|e| e.to_string())?;
        tape.parse_bytes(&text).map_err(|e| e.to_string())?;
        for row in view.rows(&tape, tape.root()).map_err(|e| e.to_string())? {
            rows.push(row_json(&view, &row));
        }
    }
    let columns = view.columns().iter().map(|c| c.name.clone()).collect();
    Ok((columns, rows))
}

/// Numbers compare by value (5 = 5.0; 0.95 within 1e-9), everything else exactly.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Multiset equality of rows.
fn same_rows(got: &[Value], want: &[Value]) -> bool {
    if got.len() != want.len() {
        return false;
    }
    let mut used = vec![false; want.len()];
    got.iter().all(|g| {
        let hit = want
            .iter()
            .enumerate()
            .find(|(i, w)| !used[*i] && same(g, w))
            .map(|(i, _)| i);
        hit.map(|i| used[i] = true).is_some()
    })
}

#[test]
fn sql_on_fhir_v2_conformance_suite() {
    let dir = suite_dir();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(d) => d
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) => panic!(
            "the SQL on FHIR v2 test suite is missing at {} ({e}); it belongs beside the checkout in ../shared/conformance/sql-on-fhir-v2",
            dir.display()
        ),
    };
    files.sort();
    assert!(!files.is_empty(), "no test files in {}", dir.display());
    let (
        mut total,
        mut passed,
        mut shareable,
        mut shareable_passed,
        mut errors_refused,
        mut error_tests,
    ) = (0, 0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read test file");
        let doc: Value = serde_json::from_str(&text).expect("test file is JSON");
        let resources = doc["resources"].as_array().cloned().unwrap_or_default();
        let fname = file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        for t in doc["tests"].as_array().expect("tests") {
            total += 1;
            let title = t["title"].as_str().unwrap_or("?");
            let is_shareable = t["tags"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "shareable"));
            shareable += usize::from(is_shareable);
            let result = run(&t["view"], &resources);
            let ok = if t.get("expectError").and_then(Value::as_bool) == Some(true) {
                error_tests += 1;
                let refused = result.is_err();
                errors_refused += usize::from(refused);
                refused
            } else {
                match result {
                    Err(e) => {
                        failures.push(format!("{fname}: {title}: error: {e}"));
                        continue;
                    }
                    Ok((columns, rows)) => {
                        let mut ok = true;
                        if let Some(want) = t.get("expect").and_then(Value::as_array)
                            && !same_rows(&rows, want)
                        {
                            failures.push(format!(
                                "{fname}: {title}: rows differ\n   got:  {}\n   want: {}",
                                Value::Array(rows.clone()),
                                Value::Array(want.clone())
                            ));
                            ok = false;
                        }
                        if let Some(want) = t.get("expectColumns").and_then(Value::as_array) {
                            let want: Vec<_> = want.iter().filter_map(Value::as_str).collect();
                            if columns != want {
                                failures.push(format!(
                                    "{fname}: {title}: columns {columns:?}, want {want:?}"
                                ));
                                ok = false;
                            }
                        }
                        if let Some(n) = t.get("expectCount").and_then(Value::as_u64)
                            && rows.len() as u64 != n
                        {
                            failures
                                .push(format!("{fname}: {title}: {} rows, want {n}", rows.len()));
                            ok = false;
                        }
                        ok
                    }
                }
            };
            if ok {
                passed += 1;
                shareable_passed += usize::from(is_shareable);
            } else if t.get("expectError").is_some() {
                failures.push(format!(
                    "{fname}: {title}: the view was accepted, it must be refused"
                ));
            }
        }
    }
    eprintln!(
        "SQL on FHIR v2 conformance: {passed} of {total} tests passed ({shareable_passed} of {shareable} shareable); {errors_refused} of {error_tests} expectError views refused"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The suite this was written against has 134 tests, 123 of them shareable: a smaller
    // count means files went missing.
    assert!(
        total >= 134 && shareable >= 123,
        "only {total} tests ({shareable} shareable) found in {}",
        dir.display()
    );
}

#[test]
fn refusals_say_what_is_wrong() {
    // Every expectError view is refused with a message that names the view, a column,
    // a path or the view's `where`: never an anonymous failure.
    let mut seen = 0;
    for entry in
        std::fs::read_dir(suite_dir()).expect("the SQL on FHIR v2 suite beside the checkout")
    {
        let path = entry.expect("entry").path();
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let resources = doc["resources"].as_array().cloned().unwrap_or_default();
        for t in doc["tests"].as_array().expect("tests") {
            if t.get("expectError").is_some() {
                seen += 1;
                let err = run(&t["view"], &resources).expect_err("refused");
                assert!(
                    ["view `", "column `", "path `", "`where`"]
                        .iter()
                        .any(|k| err.contains(k)),
                    "{}: {err}",
                    t["title"]
                );
            }
        }
    }
    assert_eq!(seen, 11);
}
