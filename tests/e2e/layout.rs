//! The shape of the workspace is guarded: our crates depend on each other only in the
//! direction written in `../shared/DESIGN.md` ("Workspace layout") and the README's
//! "Layout" section, each heavy external dependency stays in the crate that owns it, and
//! the README's layout lists exactly the crates that exist.
//!
//! Read from `cargo metadata --no-deps` (the manifests as they are), so a new edge in any
//! `Cargo.toml` fails here with the rule it breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::support::repo;

/// Which of our crates each crate may depend on (normal and build dependencies). The
/// DESIGN.md direction: `deid` and `store` depend on nothing of ours, `govern` only on
/// `deid` (its random identifiers and hex, [`dhub_deid::ids`]); `synth` on
/// `deid`; `ingest` on `deid` + `store` (+ `fhir`); `query` on `store` + `govern` (+
/// `deid`); `extract` on `deid` + `query` + `govern` + `store`; `server` on `query` +
/// `govern` + `extract` + `store`; `cli` on all. Crates not yet written
/// (`fhir`, `cluster`) have their intended place already.
const ALLOWED: &[(&str, &[&str])] = &[
    ("dhub-deid", &[]),
    ("dhub-store", &[]),
    // the one extra edge: random ids, token bytes and hex come from deid's `ids`
    ("dhub-govern", &["dhub-deid"]),
    ("dhub-synth", &["dhub-deid"]),
    ("dhub-fhir", &[]),
    ("dhub-ingest", &["dhub-deid", "dhub-store", "dhub-fhir"]),
    ("dhub-query", &["dhub-store", "dhub-govern", "dhub-deid"]),
    (
        "dhub-extract",
        &["dhub-deid", "dhub-query", "dhub-govern", "dhub-store"],
    ),
    (
        "dhub-cluster",
        &["dhub-query", "dhub-store", "dhub-govern", "dhub-deid"],
    ),
    (
        "dhub-server",
        &[
            "dhub-query",
            "dhub-govern",
            "dhub-extract",
            "dhub-store",
            "dhub-cluster",
        ],
    ),
    (
        "dhub-cli",
        &[
            "dhub-deid",
            "dhub-synth",
            "dhub-store",
            "dhub-fhir",
            "dhub-ingest",
            "dhub-govern",
            "dhub-query",
            "dhub-extract",
            "dhub-cluster",
            "dhub-server",
        ],
    ),
    // Test harnesses: any library crate, never the binary crate.
    (
        "dhub-sqllogictest",
        &[
            "dhub-deid",
            "dhub-synth",
            "dhub-store",
            "dhub-fhir",
            "dhub-ingest",
            "dhub-govern",
            "dhub-query",
            "dhub-extract",
        ],
    ),
    ("dhub-e2e", &[]),
];

/// Extra edges allowed for dev-dependencies only (test fixtures): a crate's tests may use
/// the synthetic generator, and the end-to-end suite re-derives pseudonyms with `deid`.
const ALLOWED_DEV: &[(&str, &[&str])] = &[
    ("dhub-ingest", &["dhub-synth"]),
    ("dhub-e2e", &["dhub-deid"]),
];

/// Heavy external dependencies and the only crates that may name them (normal
/// dependencies; the end-to-end suite may use clients of the server's protocols).
const OWNERS: &[(&str, &[&str])] = &[
    ("rusqlite", &["dhub-govern"]),
    ("axum", &["dhub-server"]),
    ("axum-server", &["dhub-server"]),
    ("tonic", &["dhub-server"]),
    ("arrow-flight", &["dhub-server"]),
    ("deltalake", &["dhub-store", "dhub-query"]),
    ("landlock", &["dhub-query"]),
    ("clap", &["dhub-cli"]),
    ("indicatif", &["dhub-cli"]),
    ("ballista", &["dhub-cluster"]),
];

/// One dependency edge of the workspace: (from, to, kind) where kind is `normal`,
/// `dev` or `build`.
type Edge = (String, String, String);

fn workspace_edges() -> (BTreeSet<String>, Vec<Edge>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(repo())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names = BTreeSet::new();
    let mut edges = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        let from = p["name"].as_str().unwrap().to_owned();
        names.insert(from.clone());
        for d in p["dependencies"].as_array().unwrap() {
            let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
            edges.push((from.clone(), d["name"].as_str().unwrap().to_owned(), kind));
        }
    }
    (names, edges)
}

/// Every edge that breaks the layout rules, as a sentence naming the rule.
fn violations(names: &BTreeSet<String>, edges: &[Edge]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let allowed_dev: BTreeMap<&str, &[&str]> = ALLOWED_DEV.iter().copied().collect();
    let mut bad = Vec::new();
    for name in names {
        if !allowed.contains_key(name.as_str()) {
            bad.push(format!(
                "crate {name} has no place in the layout: add it to ALLOWED in tests/e2e/layout.rs and to the README's Layout section"
            ));
        }
    }
    for (from, to, kind) in edges {
        let ours = to.starts_with("dhub-");
        if ours {
            let ok = allowed
                .get(from.as_str())
                .is_some_and(|a| a.contains(&to.as_str()))
                || (kind == "dev"
                    && allowed_dev
                        .get(from.as_str())
                        .is_some_and(|a| a.contains(&to.as_str())));
            if !ok {
                bad.push(format!(
                    "{from} depends on {to} ({kind}): against the direction of DESIGN.md's layout (see ALLOWED in tests/e2e/layout.rs)"
                ));
            }
        } else if kind != "dev"
            && let Some((_, owners)) = OWNERS.iter().find(|(dep, _)| dep == to)
            && !owners.contains(&from.as_str())
        {
            bad.push(format!(
                "{from} depends on {to}: only {} may (each crate owns its heavy dependency)",
                owners.join(", ")
            ));
        }
    }
    bad
}

#[test]
fn crates_depend_on_each_other_only_in_the_design_direction() {
    let (names, edges) = workspace_edges();
    assert!(
        names.contains("dhub-cli") && names.contains("dhub-deid"),
        "{names:?}"
    );
    let bad = violations(&names, &edges);
    assert!(bad.is_empty(), "layout rules broken:\n{}", bad.join("\n"));
}

#[test]
fn a_wrong_edge_is_caught() {
    // The real graph plus one edge against the direction (and one owner breach): the
    // check must name both, so it cannot pass vacuously.
    let (names, mut edges) = workspace_edges();
    edges.push(("dhub-deid".into(), "dhub-store".into(), "normal".into()));
    edges.push(("dhub-store".into(), "dhub-query".into(), "dev".into()));
    edges.push(("dhub-query".into(), "axum".into(), "normal".into()));
    let bad = violations(&names, &edges);
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(
        bad[0].contains("dhub-deid depends on dhub-store"),
        "{bad:#?}"
    );
    assert!(
        bad[1].contains("dhub-store depends on dhub-query (dev)"),
        "{bad:#?}"
    );
    assert!(bad[2].contains("only dhub-server may"), "{bad:#?}");
}

#[test]
fn the_readme_layout_lists_every_crate() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## Layout\n")
        .nth(1)
        .expect("README has a '## Layout' section");
    let block = section
        .split("```")
        .nth(1)
        .expect("a code block of the layout");
    let listed: BTreeSet<String> = block
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("crates/"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|d| d.trim_end_matches('/').to_owned())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(repo().join("crates"))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.path()
                .join("Cargo.toml")
                .exists()
                .then(|| e.file_name().into_string().unwrap())
        })
        .collect();
    assert_eq!(
        listed, present,
        "the README's Layout section must list exactly the crates under crates/"
    );
}
