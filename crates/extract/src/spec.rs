//! Extract specs: `sql/extracts/<name>.toml` beside `sql/extracts/<name>.sql`.
//!
//! ```toml
//! # who and what
//! project = "diabetes-2026"        # the approved project; its release and grants apply
//! recipient = "Example University" # who receives the files (recorded in the manifest)
//! format = "parquet"               # parquet (zstd) | csv
//! # re-identification risk
//! k = 10                           # smallest allowed equivalence class (default 10)
//! quasi_identifiers = ["sex", "age_band", "zip3"]  # output columns
//! max_rows = 2000000               # refuse a bigger result
//! # pseudonyms: every output column holding research pseudonyms, with its entity
//! [rekey]
//! patient = "person"
//! ```
//!
//! Every key is checked before the request is recorded: an unknown key is an error
//! naming its line and column; the SQL must exist beside the spec with the same stem.
//! At request time the query is also planned against the project's release, so a
//! quasi-identifier or `[rekey]` column that is not in the output is refused then, not
//! when the extract runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ExtractError, Result};

/// Output file format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Apache Parquet, zstd-compressed.
    #[default]
    Parquet,
    /// RFC 4180 CSV with a header line.
    Csv,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// The default k.
pub const DEFAULT_K: u64 = 10;

/// The default row limit when a spec gives none.
pub const DEFAULT_MAX_ROWS: u64 = 10_000_000;

fn default_k() -> u64 {
    DEFAULT_K
}

fn default_max_rows() -> u64 {
    DEFAULT_MAX_ROWS
}

/// One extract spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractSpec {
    /// The project the extract is for.
    pub project: String,
    /// Who receives it.
    pub recipient: String,
    /// `parquet` or `csv`.
    #[serde(default)]
    pub format: Format,
    /// The smallest equivalence class allowed over the quasi-identifiers.
    #[serde(default = "default_k")]
    pub k: u64,
    /// Output columns that together could single a person out.
    #[serde(default)]
    pub quasi_identifiers: Vec<String>,
    /// The most rows the extract may have.
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
    /// Output id column → entity, re-keyed to the project pseudonym.
    #[serde(default)]
    pub rekey: BTreeMap<String, String>,
    /// Rows per output file (default 1,000,000).
    #[serde(default)]
    pub rows_per_file: Option<u64>,
}

/// A spec with its text, its SQL and where they came from.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The spec's name (file stem).
    pub name: String,
    /// The parsed spec.
    pub spec: ExtractSpec,
    /// The spec's text (frozen at request time).
    pub spec_text: String,
    /// The query (frozen at request time).
    pub sql: String,
    /// The spec file.
    pub path: PathBuf,
}

/// SHA-256 of `bytes`, as 64 lowercase hex characters.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

pub(crate) use dhub_deid::hex;

impl ExtractSpec {
    /// Parses and checks a spec's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let err = |message: String| ExtractError::Spec {
            path: path.to_owned(),
            message,
        };
        let spec: ExtractSpec = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        spec.check().map_err(err)?;
        Ok(spec)
    }

    fn check(&self) -> std::result::Result<(), String> {
        dhub_govern::check_name("project id", &self.project).map_err(|e| e.to_string())?;
        if self.recipient.trim().is_empty() {
            return Err("`recipient` is empty: name who receives the extract".into());
        }
        if self.k < 1 {
            return Err("`k` must be at least 1 (the default is 10)".into());
        }
        if self.max_rows < 1 {
            return Err("`max_rows` must be at least 1".into());
        }
        if self.rows_per_file == Some(0) {
            return Err("`rows_per_file` must be at least 1".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for q in &self.quasi_identifiers {
            if !seen.insert(q) {
                return Err(format!("quasi-identifier `{q}` is listed twice"));
            }
            if self.rekey.contains_key(q) {
                return Err(format!(
                    "`{q}` is both a quasi-identifier and a re-keyed id: a pseudonym singles out one person, so it cannot be a quasi-identifier; remove it from one list"
                ));
            }
        }
        for (column, entity) in &self.rekey {
            dhub_deid::validate_name("entity", entity)
                .map_err(|e| format!("[rekey] {column}: {e}"))?;
        }
        Ok(())
    }

    /// Loads `<dir>/<name>.toml` and the `<dir>/<name>.sql` beside it.
    pub fn load(path: &Path) -> Result<LoadedSpec> {
        let err = |p: &Path, message: String| ExtractError::Spec {
            path: p.to_owned(),
            message,
        };
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            return Err(err(
                path,
                "give the spec's .toml file (its .sql sits beside it with the same stem)".into(),
            ));
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        dhub_govern::check_name("extract name (the spec's file stem)", &name)
            .map_err(|e| err(path, e.to_string()))?;
        let spec_text = std::fs::read_to_string(path).map_err(|e| err(path, e.to_string()))?;
        let spec = Self::parse(&spec_text, path)?;
        let sql_path = path.with_extension("sql");
        let sql = std::fs::read_to_string(&sql_path).map_err(|e| {
            err(
                &sql_path,
                format!("{e}: every spec needs its query beside it, with the same stem"),
            )
        })?;
        if sql.trim().is_empty() {
            return Err(err(&sql_path, "the query is empty".into()));
        }
        Ok(LoadedSpec {
            name,
            spec,
            spec_text,
            sql,
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_defaults_and_refuse_mistakes() {
        let p = Path::new("x.toml");
        let s = ExtractSpec::parse(
            "project = \"p1\"\nrecipient = \"Uni\"\nquasi_identifiers = [\"sex\"]\n[rekey]\npatient = \"person\"\n",
            p,
        )
        .unwrap();
        assert_eq!(s.k, 10);
        assert_eq!(s.format, Format::Parquet);
        assert_eq!(s.rekey["patient"], "person");
        let e = ExtractSpec::parse("project = \"p1\"\nrecipient = \"U\"\nkk = 3\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("kk"), "{e}");
        for bad in [
            "project = \"P 1\"\nrecipient = \"U\"",
            "project = \"p1\"\nrecipient = \" \"",
            "project = \"p1\"\nrecipient = \"U\"\nk = 0",
            "project = \"p1\"\nrecipient = \"U\"\nformat = \"xlsx\"",
            "project = \"p1\"\nrecipient = \"U\"\nquasi_identifiers = [\"a\", \"a\"]",
            "project = \"p1\"\nrecipient = \"U\"\nquasi_identifiers = [\"a\"]\n[rekey]\na = \"person\"",
            "project = \"p1\"\nrecipient = \"U\"\n[rekey]\na = \"Person!\"",
        ] {
            assert!(ExtractSpec::parse(bad, p).is_err(), "{bad}");
        }
    }
}
