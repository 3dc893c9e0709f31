//! Projects, their output policies and the people who act in them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{GovernError, Result};

/// What a project's researchers may get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only aggregates over person-level data, under disclosure control (the default).
    #[default]
    Aggregate,
    /// Record-level rows (approved projects only), still row- and byte-limited.
    Record,
}

impl std::str::FromStr for Mode {
    type Err = GovernError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "aggregate" => Ok(Mode::Aggregate),
            "record" => Ok(Mode::Record),
            other => Err(GovernError::Invalid(format!(
                "mode `{other}` is not known; use aggregate or record"
            ))),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Aggregate => "aggregate",
            Mode::Record => "record",
        })
    }
}

/// What happens to a group with fewer persons than `min_cell`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Suppression {
    /// The row is removed from the result (the default).
    #[default]
    Remove,
    /// The row stays with its group labels; every aggregate value in it is NULL and the
    /// extra column `dhub_suppressed` is true (OpenSAFELY-style redaction).
    Null,
}

impl std::str::FromStr for Suppression {
    type Err = GovernError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "remove" => Ok(Suppression::Remove),
            "null" => Ok(Suppression::Null),
            other => Err(GovernError::Invalid(format!(
                "suppression `{other}` is not known; use remove or null"
            ))),
        }
    }
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Suppression::Remove => "remove",
            Suppression::Null => "null",
        })
    }
}

/// Who approved record-level access, and why (required for [`Mode::Record`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approver's name.
    pub by: String,
    /// The reason recorded with the approval.
    pub reason: String,
}

/// A project's output policy: the statistical disclosure control applied to every
/// result. Defaults follow ACRO and UK LLC (minimum cell 10, zeros included; dominance
/// n-k (2, 0.90); p-ratio 0.10) with OpenSAFELY's rounding to the nearest 5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputPolicy {
    /// Aggregate or record mode.
    pub mode: Mode,
    /// Smallest number of distinct persons a released group may have.
    pub min_cell: u32,
    /// Whether a smaller group is removed or kept with its values nulled and flagged.
    #[serde(default)]
    pub suppression: Suppression,
    /// Counts are rounded to a multiple of this (0 = no rounding).
    pub rounding: u32,
    /// Dominance rule n: the n largest contributors …
    pub dominance_n: u32,
    /// … may hold at most this share of a sum.
    pub dominance_k: f64,
    /// p-ratio: the rest of a total must be at least this share of its largest part.
    pub p_ratio: f64,
    /// Required for record mode: who approved it and why.
    pub approval: Option<Approval>,
}

impl Default for OutputPolicy {
    fn default() -> Self {
        Self {
            mode: Mode::Aggregate,
            min_cell: 10,
            suppression: Suppression::Remove,
            rounding: 5,
            dominance_n: 2,
            dominance_k: 0.90,
            p_ratio: 0.10,
            approval: None,
        }
    }
}

impl OutputPolicy {
    /// Checks ranges and the record-mode approval.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(GovernError::Invalid(m));
        if self.min_cell == 0 || self.min_cell > 1000 {
            return bad(format!(
                "min_cell {} must be between 1 and 1000",
                self.min_cell
            ));
        }
        if self.rounding > 1000 {
            return bad(format!(
                "rounding {} must be between 0 (none) and 1000",
                self.rounding
            ));
        }
        if self.dominance_n == 0 || self.dominance_n > 10 {
            return bad(format!(
                "dominance n {} must be between 1 and 10",
                self.dominance_n
            ));
        }
        if !(0.5..=1.0).contains(&self.dominance_k) {
            return bad(format!(
                "dominance k {} must be between 0.5 and 1.0",
                self.dominance_k
            ));
        }
        if !(0.0..=1.0).contains(&self.p_ratio) {
            return bad(format!("p-ratio {} must be between 0 and 1", self.p_ratio));
        }
        if self.mode == Mode::Record {
            match &self.approval {
                Some(a) if !a.by.trim().is_empty() && !a.reason.trim().is_empty() => {}
                _ => {
                    return bad(
                        "record mode needs an approver and a reason (--approved-by NAME --reason TEXT)"
                            .into(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The tables a project may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// Every table of its release.
    All,
    /// These tables only.
    Tables(Vec<String>),
}

impl Grant {
    /// Parses `all` or a comma-separated list of table names.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "all" {
            return Ok(Grant::All);
        }
        let mut v: Vec<String> = s
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if v.is_empty() {
            return Err(GovernError::Invalid(
                "--tables needs `all` or a comma-separated list of table names".into(),
            ));
        }
        for t in &v {
            check_name("table name", t)?;
        }
        v.sort();
        v.dedup();
        Ok(Grant::Tables(v))
    }

    /// Whether `table` is granted.
    pub fn allows(&self, table: &str) -> bool {
        match self {
            Grant::All => true,
            Grant::Tables(v) => v.iter().any(|t| t == table),
        }
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grant::All => f.write_str("all"),
            Grant::Tables(v) => f.write_str(&v.join(",")),
        }
    }
}

/// An approved research project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Project id (`a-z 0-9 _ -`).
    pub id: String,
    /// Human title.
    pub title: String,
    /// The release its researchers query.
    pub release: String,
    /// The tables they may see.
    pub tables: Grant,
    /// The disclosure control on every result.
    pub policy: OutputPolicy,
    /// Last day of access (inclusive), if any.
    pub expires: Option<NaiveDate>,
    /// When it was created.
    pub created: DateTime<Utc>,
}

impl Project {
    /// Whether the project has expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|d| now.date_naive() > d)
    }
}

/// A researcher (a person with a token, in one project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Researcher {
    /// Unique name.
    pub name: String,
    /// The project.
    pub project: String,
    /// When the token was issued.
    pub created: DateTime<Utc>,
    /// Last day the token works (inclusive), if any.
    pub expires: Option<NaiveDate>,
    /// When it was revoked, if it was.
    pub revoked: Option<DateTime<Utc>>,
}

/// Checks an id or name: 1-64 characters of `a-z 0-9 _ - .`, starting with a letter or
/// digit.
pub fn check_name(kind: &'static str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(GovernError::BadName {
            kind,
            value: s.to_owned(),
            rule: "use 1-64 characters of a-z, 0-9, `_`, `-`, `.`, starting with a letter or digit",
        })
    }
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| GovernError::Invalid(format!("`{s}` is not a date; use YYYY-MM-DD")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_and_policies() {
        assert_eq!(Grant::parse("all").unwrap(), Grant::All);
        let g = Grant::parse("patients, encounters,patients").unwrap();
        assert_eq!(g.to_string(), "encounters,patients");
        assert!(g.allows("patients") && !g.allows("claims"));
        assert!(Grant::parse(" , ").is_err());
        assert!(Grant::parse("Patients").is_err());
        let mut p = OutputPolicy::default();
        p.validate().unwrap();
        p.mode = Mode::Record;
        assert!(p.validate().unwrap_err().to_string().contains("approver"));
        p.approval = Some(Approval {
            by: "dm".into(),
            reason: "linkage QA".into(),
        });
        p.validate().unwrap();
        p.min_cell = 0;
        assert!(p.validate().is_err());
    }
}
