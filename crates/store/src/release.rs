//! Releases: named, immutable maps from table to Delta version, stored as
//! `_releases/<name>.json` in the store itself with a create-only put, so a release can
//! never be overwritten and a paper can say exactly which data it used.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The current release document format.
pub const RELEASE_FORMAT: u32 = 1;

/// One release document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Document format version ([`RELEASE_FORMAT`]).
    pub format: u32,
    /// The release name.
    pub name: String,
    /// When it was created (UTC).
    pub created: DateTime<Utc>,
    /// Key id of the master key that made every table's pseudonyms.
    pub key_id: String,
    /// Table name → Delta version.
    pub tables: BTreeMap<String, u64>,
    /// Pipeline spec name → SHA-256 of the spec that last wrote a table of this release.
    pub pipelines: BTreeMap<String, String>,
}

/// Checks a table or release name: 1–64 of `a-z 0-9 _ -`, starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_json_is_stable() {
        let r = Release {
            format: RELEASE_FORMAT,
            name: "2026-q4".into(),
            created: DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            key_id: "08e2937046972518".into(),
            tables: [("encounters".to_owned(), 3), ("patients".to_owned(), 1)].into(),
            pipelines: [("synthea".to_owned(), "ab".repeat(32))].into(),
        };
        let json = serde_json::to_string_pretty(&r).unwrap();
        let expected = r#"{
  "format": 1,
  "name": "2026-q4",
  "created": "2026-11-25T10:00:00Z",
  "key_id": "08e2937046972518",
  "tables": {
    "encounters": 3,
    "patients": 1
  },
  "pipelines": {
    "synthea": "abababababababababababababababababababababababababababababababab"
  }
}"#;
        assert_eq!(json, expected);
        assert_eq!(serde_json::from_str::<Release>(&json).unwrap(), r);
        assert!(
            serde_json::from_str::<Release>(
                &json.replace("\"format\"", "\"extra\": 1, \"format\"")
            )
            .is_err()
        );
    }

    #[test]
    fn names() {
        for ok in ["patients", "2026-q4", "a_b", "x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-x", "_x", "A", "a/b", "a.b", "../x", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
