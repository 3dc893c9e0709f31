//! The Rust implementation against vectors made by an independent Python
//! implementation (`vectors/gen_vectors.py`, standard library only), and the
//! primitives against RFC 4231 (HMAC-SHA-256) and RFC 5869 (HKDF-SHA-256).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::{Array, StringArray};
use dhub_deid::{DateShifter, Domain, IdFormat, MasterKey, Pseudonymiser, Reason};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn vectors() -> Value {
    let text = std::fs::read_to_string(dir().join("vectors.json")).expect("read vectors.json");
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn master(v: &Value) -> MasterKey {
    MasterKey::from_hex(v["master_key_hex"].as_str().unwrap()).unwrap()
}

#[test]
fn committed_vectors_equal_the_python_script_output() {
    let out = std::process::Command::new("python3")
        .arg(dir().join("gen_vectors.py"))
        .output()
        .expect("python3 must be installed to check the test vectors (apt-get install python3)");
    assert!(
        out.status.success(),
        "gen_vectors.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read(dir().join("vectors.json")).unwrap();
    assert!(
        out.stdout == committed,
        "vectors.json is stale: regenerate with python3 crates/deid/tests/vectors/gen_vectors.py > crates/deid/tests/vectors/vectors.json"
    );
}

#[test]
fn key_id_and_domain_keys() {
    let v = vectors();
    let key = master(&v);
    assert_eq!(key.key_id().as_str(), v["key_id"].as_str().unwrap());
    let domains = v["domain_keys"].as_object().unwrap();
    assert!(domains.len() >= 8);
    for (domain, expected) in domains {
        let dk = key.domain_key(&domain.parse::<Domain>().unwrap());
        assert_eq!(
            dk.expose_bytes().to_vec(),
            hex(expected.as_str().unwrap()),
            "{domain}"
        );
    }
}

fn fmt(v: &Value) -> IdFormat {
    v["format"].as_str().unwrap().parse().unwrap()
}

#[test]
fn pseudonyms_one_by_one_and_as_columns() {
    let v = vectors();
    let key = master(&v);
    let rows = v["pseudonyms"].as_array().unwrap();
    assert!(rows.len() > 20);
    for row in rows {
        let entity = row["entity"].as_str().unwrap();
        let p = Pseudonymiser::new(&key, entity).unwrap();
        let value = row["value"].as_str().unwrap();
        let got = p.pseudonym(value, fmt(row));
        match row.get("error").and_then(Value::as_str) {
            Some("invalid_nhs_number") => assert_eq!(got, Err(Reason::InvalidNhsNumber)),
            Some("invalid_uuid") => assert_eq!(got, Err(Reason::InvalidUuid)),
            Some(other) => panic!("unknown error kind {other}"),
            None => {
                let expected = row["pseudonym"].as_str().map(str::to_owned);
                assert_eq!(got, Ok(expected), "{entity} {value:?}");
                if let Some(n) = row.get("normalised").and_then(Value::as_str) {
                    assert_eq!(
                        dhub_deid::normalise_id(value, fmt(row)).unwrap().as_deref(),
                        Some(n)
                    );
                }
            }
        }
    }
    // the same vectors through the column rule, per (entity, format), for every
    // Arrow string type
    let mut groups: std::collections::BTreeMap<(String, String), Vec<&Value>> = Default::default();
    for row in rows {
        groups
            .entry((
                row["entity"].as_str().unwrap().into(),
                row["format"].as_str().unwrap().into(),
            ))
            .or_default()
            .push(row);
    }
    for ((entity, format), rows) in groups {
        let p = Pseudonymiser::new(&key, &entity).unwrap();
        let values: Vec<Option<&str>> = rows
            .iter()
            .map(|r| Some(r["value"].as_str().unwrap()))
            .chain([None])
            .collect();
        let inputs: Vec<std::sync::Arc<dyn Array>> = vec![
            std::sync::Arc::new(StringArray::from(values.clone())),
            std::sync::Arc::new(arrow_array::LargeStringArray::from(values.clone())),
            std::sync::Arc::new(arrow_array::StringViewArray::from(values.clone())),
        ];
        for input in inputs {
            let out = p
                .pseudonymise(input.as_ref(), format.parse().unwrap())
                .unwrap();
            let col = out.array.as_string::<i32>();
            assert_eq!(col.len(), values.len());
            assert!(col.is_null(values.len() - 1), "null in, null out");
            let failed: Vec<usize> = out.failures.iter().map(|f| f.row).collect();
            for (i, r) in rows.iter().enumerate() {
                if r.get("error").is_some() {
                    assert!(failed.contains(&i), "{entity} {:?} must fail", r["value"]);
                    assert!(col.is_null(i), "a failed value is never passed through");
                } else {
                    assert!(!failed.contains(&i));
                    assert_eq!(col.is_null(i), r["pseudonym"].is_null());
                    if let Some(e) = r["pseudonym"].as_str() {
                        assert_eq!(col.value(i), e);
                    }
                }
            }
        }
    }
}

#[test]
fn integer_ids_pseudonymise_as_their_decimal_text() {
    let key = master(&vectors());
    let p = Pseudonymiser::new(&key, "person").unwrap();
    let ints = arrow_array::Int64Array::from(vec![Some(9434765919), None]);
    let out = p.pseudonymise(&ints, IdFormat::NhsNumber).unwrap();
    assert_eq!(
        Some(out.array.as_string::<i32>().value(0).to_owned()),
        p.pseudonym("9434765919", IdFormat::NhsNumber).unwrap()
    );
    assert!(out.array.is_null(1));
}

#[test]
fn date_shifts() {
    let v = vectors();
    let key = master(&v);
    for row in v["date_shifts"].as_array().unwrap() {
        let range = row["range"].as_u64().unwrap() as u32;
        let s = DateShifter::new(&key, range).unwrap();
        assert_eq!(
            i64::from(s.shift_days(row["person_pseudonym"].as_str().unwrap())),
            row["shift"].as_i64().unwrap()
        );
    }
}

#[test]
fn project_pseudonyms() {
    let v = vectors();
    let key = master(&v);
    for row in v["project_pseudonyms"].as_array().unwrap() {
        let p = Pseudonymiser::for_project(&key, row["project"].as_str().unwrap()).unwrap();
        assert_eq!(
            p.pseudonym(row["research_pseudonym"].as_str().unwrap(), IdFormat::Text)
                .unwrap()
                .as_deref(),
            row["project_pseudonym"].as_str()
        );
    }
}

#[test]
fn rfc4231_hmac_sha256() {
    for row in vectors()["rfc4231_hmac_sha256"].as_array().unwrap() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hex(row["key"].as_str().unwrap()));
        let tag = ring::hmac::sign(&key, &hex(row["data"].as_str().unwrap()));
        assert_eq!(tag.as_ref().to_vec(), hex(row["mac"].as_str().unwrap()));
    }
}

struct Len(usize);
impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

#[test]
fn rfc5869_hkdf_sha256() {
    use ring::hkdf;
    for row in vectors()["rfc5869_hkdf_sha256"].as_array().unwrap() {
        let salt = hex(row["salt"].as_str().unwrap());
        let ikm = hex(row["ikm"].as_str().unwrap());
        let info = hex(row["info"].as_str().unwrap());
        let n = row["length"].as_u64().unwrap() as usize;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
        let info_parts = [info.as_slice()];
        let okm = prk.expand(&info_parts, Len(n)).unwrap();
        let mut out = vec![0u8; n];
        okm.fill(&mut out).unwrap();
        assert_eq!(out, hex(row["okm"].as_str().unwrap()));
    }
}
