//! Projects and their output policies: the records (what a project may see and the
//! disclosure control on every result) and the store's project commands, each audited
//! (`project.create`) in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, append_tx};
use crate::error::{GovernError, Result};
use crate::{Govern, check_name, now, parse_date, ts};

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

/// A project to create ([`Govern::create_project`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewProject {
    /// Project id (`a-z 0-9 _ - .`, see [`check_name`]).
    pub id: String,
    /// Human title; empty means the id.
    pub title: String,
    /// The release its researchers query.
    pub release: String,
    /// The tables they may see.
    pub tables: Grant,
    /// The disclosure control on every result.
    pub policy: OutputPolicy,
    /// Last day of access (inclusive), if any.
    pub expires: Option<NaiveDate>,
}

impl NewProject {
    /// A project over every table of `release`, with the default output policy, no
    /// expiry and its id as its title (set the fields to change any of these).
    pub fn new(id: impl Into<String>, release: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: String::new(),
            release: release.into(),
            tables: Grant::All,
            policy: OutputPolicy::default(),
            expires: None,
        }
    }
}

impl Govern {
    /// Creates a project (audited as `project.create` by `actor`).
    pub fn create_project(&self, new: &NewProject, actor: &str) -> Result<Project> {
        let NewProject {
            id,
            title,
            release,
            tables,
            policy,
            expires,
        } = new;
        check_name("project id", id)?;
        policy.validate()?;
        let project = Project {
            id: id.to_owned(),
            title: if title.trim().is_empty() {
                id.to_owned()
            } else {
                title.trim().to_owned()
            },
            release: release.clone(),
            tables: tables.clone(),
            policy: policy.clone(),
            expires: *expires,
            created: now(),
        };
        let tables_json = serde_json::to_string(&project.tables)
            .map_err(|e| GovernError::Invalid(e.to_string()))?;
        let policy_json = serde_json::to_string(&project.policy)
            .map_err(|e| GovernError::Invalid(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM projects WHERE id = ?1", [id], |_| Ok(true))
            .optional()
            .map_err(|e| self.sql(e))?
            .is_some();
        if exists {
            return Err(GovernError::Exists {
                kind: "project",
                id: id.to_owned(),
            });
        }
        tx.execute(
            "INSERT INTO projects (id, title, release, tables, policy, expires, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                project.id,
                project.title,
                project.release,
                tables_json,
                policy_json,
                project.expires.map(|d| d.to_string()),
                ts(project.created)
            ],
        )
        .map_err(|e| self.sql(e))?;
        let event = AuditEvent::ProjectCreate {
            project: project.id.clone(),
            release: project.release.clone(),
            tables: project.tables.to_string(),
            policy: project.policy.clone(),
            expires: project.expires.map(|d| d.to_string()),
        };
        append_tx(&tx, &event, actor).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(project)
    }

    fn row_to_project(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Project>> {
        let id: String = r.get(0)?;
        let tables: String = r.get(3)?;
        let policy: String = r.get(4)?;
        let expires: Option<String> = r.get(5)?;
        let created: String = r.get(6)?;
        let title: String = r.get(1)?;
        let release: String = r.get(2)?;
        Ok((|| {
            Ok(Project {
                tables: serde_json::from_str(&tables)
                    .map_err(|e| self.corrupt(format!("project {id}"), e))?,
                policy: serde_json::from_str(&policy)
                    .map_err(|e| self.corrupt(format!("project {id}"), e))?,
                expires: expires
                    .map(|d| parse_date(&d))
                    .transpose()
                    .map_err(|e| self.corrupt(format!("project {id}"), e))?,
                created: DateTime::parse_from_rfc3339(&created)
                    .map_err(|e| self.corrupt(format!("project {id}"), e))?
                    .with_timezone(&Utc),
                title,
                release,
                id,
            })
        })())
    }

    /// One project.
    pub fn project(&self, id: &str) -> Result<Project> {
        let conn = self.conn();
        let got = conn
            .query_row(
                "SELECT id, title, release, tables, policy, expires, created FROM projects WHERE id = ?1",
                [id],
                |r| self.row_to_project(r),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        match got {
            Some(p) => p,
            None => Err(GovernError::NotFound {
                kind: "project",
                id: id.to_owned(),
                hint: "`dhub project list` shows the projects",
            }),
        }
    }

    /// Every project, by id.
    pub fn projects(&self) -> Result<Vec<Project>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT id, title, release, tables, policy, expires, created FROM projects ORDER BY id")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| self.row_to_project(r))
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(|e| self.sql(e))??);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;
    use crate::{AuthFailure, parse_date};

    #[test]
    fn expired_projects_refuse_their_researchers() {
        let (_d, g) = store();
        g.create_project(
            &NewProject {
                expires: parse_date("2001-01-01").ok(),
                ..NewProject::new("old", "r1")
            },
            "dm",
        )
        .unwrap();
        let t = g.add_researcher("x", "old", None, "dm").unwrap();
        assert_eq!(
            g.check_token(&t).unwrap().unwrap_err(),
            AuthFailure::ProjectExpired
        );
    }

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
