//! Partner extracts as records: the four-eyes workflow `pending → approved → released`
//! (or `revoked` at any point), every step audited in the same transaction.
//!
//! The spec and the SQL are frozen at request time (their text and SHA-256 are stored);
//! approval and the run use the frozen copies, so editing the files afterwards changes
//! nothing that was approved.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, ExtractReleased, append_tx};
use crate::{Govern, GovernError, Result, check_name, now, ts};

/// Where an extract is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtractStatus {
    /// Requested, waiting for a second person's approval.
    Pending,
    /// Approved; `dhub extract run` may make it.
    Approved,
    /// Written, signed and downloadable by the project's partners.
    Released,
    /// Withdrawn: never downloadable again.
    Revoked,
}

impl ExtractStatus {
    fn as_str(self) -> &'static str {
        match self {
            ExtractStatus::Pending => "pending",
            ExtractStatus::Approved => "approved",
            ExtractStatus::Released => "released",
            ExtractStatus::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ExtractStatus::Pending,
            "approved" => ExtractStatus::Approved,
            "released" => ExtractStatus::Released,
            "revoked" => ExtractStatus::Revoked,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ExtractStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new extract request: the frozen spec and query.
#[derive(Debug, Clone)]
pub struct NewExtract {
    /// The spec's name (the file stem).
    pub name: String,
    /// The project it is for.
    pub project: String,
    /// Who receives it (free text: an organisation or a person).
    pub recipient: String,
    /// The spec, as TOML text.
    pub spec: String,
    /// The query.
    pub sql: String,
    /// SHA-256 of the spec text, hex.
    pub spec_sha256: String,
    /// SHA-256 of the query text, hex.
    pub sql_sha256: String,
}

/// An extract and where it is in its workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractRecord {
    /// Extract id (`ext-YYYYMMDD-` and 8 random hex digits).
    pub id: String,
    /// The spec's name.
    pub name: String,
    /// The project.
    pub project: String,
    /// The recipient.
    pub recipient: String,
    /// The frozen spec (TOML).
    pub spec: String,
    /// The frozen query.
    pub sql: String,
    /// SHA-256 of the spec, hex.
    pub spec_sha256: String,
    /// SHA-256 of the query, hex.
    pub sql_sha256: String,
    /// Workflow state.
    pub status: ExtractStatus,
    /// Who asked for it.
    pub requested_by: String,
    /// When.
    pub requested: DateTime<Utc>,
    /// Who approved it (never the requester).
    pub approved_by: Option<String>,
    /// When.
    pub approved: Option<DateTime<Utc>>,
    /// When it was released.
    pub released: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked: Option<DateTime<Utc>>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// Where its files are (URL of its directory).
    pub location: Option<String>,
    /// Its `manifest.json`, as written.
    pub manifest: Option<String>,
}

const COLUMNS: &str = "id, name, project, recipient, spec, sql, spec_sha256, sql_sha256, status, requested_by, requested, approved_by, approved, released, revoked, revoked_by, location, manifest";

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn row_to_extract(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExtractRecord> {
    let opt_ts = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<String>>(i)?.as_deref().and_then(parse_ts))
    };
    let status: String = r.get(8)?;
    let requested: String = r.get(10)?;
    Ok(ExtractRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        project: r.get(2)?,
        recipient: r.get(3)?,
        spec: r.get(4)?,
        sql: r.get(5)?,
        spec_sha256: r.get(6)?,
        sql_sha256: r.get(7)?,
        status: ExtractStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Text,
                format!("unknown extract status `{status}`").into(),
            )
        })?,
        requested_by: r.get(9)?,
        requested: parse_ts(&requested).unwrap_or_default(),
        approved_by: r.get(11)?,
        approved: opt_ts(12)?,
        released: opt_ts(13)?,
        revoked: opt_ts(14)?,
        revoked_by: r.get(15)?,
        location: r.get(16)?,
        manifest: r.get(17)?,
    })
}

fn new_id() -> Result<String> {
    let suffix = dhub_deid::random_id(4).map_err(|e| GovernError::Invalid(e.to_string()))?;
    Ok(format!("ext-{}-{suffix}", now().format("%Y%m%d")))
}

/// A step of the workflow after the request, as audited.
enum Step {
    Approve,
    Release(ExtractReleased),
    Revoke,
}

impl Step {
    fn event(self, id: &str, project: String) -> AuditEvent {
        let extract = id.to_owned();
        match self {
            Step::Approve => AuditEvent::ExtractApprove { extract, project },
            Step::Release(released) => AuditEvent::ExtractRelease {
                extract,
                project,
                released,
            },
            Step::Revoke => AuditEvent::ExtractRevoke { extract, project },
        }
    }
}

fn not_found(id: &str) -> GovernError {
    GovernError::NotFound {
        kind: "extract",
        id: id.to_owned(),
        hint: "`dhub extract list` shows the extracts",
    }
}

impl Govern {
    /// Records a request for an extract (`pending`), audited as `extract.request` by
    /// `by`. The project must exist and not have expired.
    pub fn request_extract(&self, new: &NewExtract, by: &str) -> Result<ExtractRecord> {
        check_name("requester name", by)?;
        check_name("extract name", &new.name)?;
        let project = self.project(&new.project)?;
        if project.expired(now()) {
            return Err(GovernError::Invalid(format!(
                "project `{}` has expired; it can have no more extracts",
                project.id
            )));
        }
        let id = new_id()?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        tx.execute(
            "INSERT INTO extracts (id, name, project, recipient, spec, sql, spec_sha256, sql_sha256, status, requested_by, requested)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10)",
            params![
                id,
                new.name,
                new.project,
                new.recipient,
                new.spec,
                new.sql,
                new.spec_sha256,
                new.sql_sha256,
                by,
                ts(now())
            ],
        )
        .map_err(|e| self.sql(e))?;
        let event = AuditEvent::ExtractRequest {
            extract: id.clone(),
            name: new.name.clone(),
            project: new.project.clone(),
            recipient: new.recipient.clone(),
            spec_sha256: new.spec_sha256.clone(),
            sql_sha256: new.sql_sha256.clone(),
        };
        append_tx(&tx, &event, by).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        drop(conn);
        self.extract(&id)
    }

    /// Approves a pending extract (audited as `extract.approve`). Four eyes: the
    /// approver must not be the requester.
    pub fn approve_extract(&self, id: &str, by: &str) -> Result<ExtractRecord> {
        check_name("approver name", by)?;
        let x = self.extract(id)?;
        if x.requested_by.eq_ignore_ascii_case(by.trim()) {
            return Err(GovernError::Invalid(format!(
                "`{by}` requested extract {id} and cannot also approve it (four eyes): another person must run `dhub extract approve {id} --by NAME`"
            )));
        }
        if self.project(&x.project)?.expired(now()) {
            return Err(GovernError::Invalid(format!(
                "project `{}` has expired; its extracts can no longer be approved",
                x.project
            )));
        }
        self.transition(
            id,
            ExtractStatus::Pending,
            "UPDATE extracts SET status = 'approved', approved_by = ?2, approved = ?3 WHERE id = ?1 AND status = 'pending'",
            &[&by, &ts(now())],
            Step::Approve,
            by,
        )
    }

    /// Marks an approved extract released once its files, manifest and signature are
    /// written (audited as `extract.release` with what was `released`).
    pub fn release_extract(
        &self,
        id: &str,
        location: &str,
        manifest: &str,
        actor: &str,
        released: ExtractReleased,
    ) -> Result<ExtractRecord> {
        self.transition(
            id,
            ExtractStatus::Approved,
            "UPDATE extracts SET status = 'released', released = ?2, location = ?3, manifest = ?4 WHERE id = ?1 AND status = 'approved'",
            &[&ts(now()), &location, &manifest],
            Step::Release(released),
            actor,
        )
    }

    /// Revokes an extract in any state but `revoked` (audited as `extract.revoke`):
    /// it can no longer be run or downloaded.
    pub fn revoke_extract(&self, id: &str, by: &str) -> Result<ExtractRecord> {
        check_name("name", by)?;
        let x = self.extract(id)?;
        if x.status == ExtractStatus::Revoked {
            return Ok(x);
        }
        self.transition(
            id,
            x.status,
            "UPDATE extracts SET status = 'revoked', revoked = ?2, revoked_by = ?3 WHERE id = ?1 AND status <> 'revoked'",
            &[&ts(now()), &by],
            Step::Revoke,
            by,
        )
    }

    fn transition(
        &self,
        id: &str,
        from: ExtractStatus,
        update: &str,
        args: &[&dyn rusqlite::ToSql],
        step: Step,
        actor: &str,
    ) -> Result<ExtractRecord> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let found: Option<(String, String)> = tx
            .query_row(
                "SELECT status, project FROM extracts WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        let Some((status, project)) = found else {
            return Err(not_found(id));
        };
        if status != from.as_str() {
            return Err(GovernError::Invalid(format!(
                "extract {id} is {status}, not {from}; `dhub extract show {id}` shows its history"
            )));
        }
        let mut all: Vec<&dyn rusqlite::ToSql> = vec![&id];
        all.extend_from_slice(args);
        let n = tx
            .execute(update, all.as_slice())
            .map_err(|e| self.sql(e))?;
        if n != 1 {
            return Err(GovernError::Invalid(format!(
                "extract {id} changed while this command ran; try again"
            )));
        }
        append_tx(&tx, &step.event(id, project), actor).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        drop(conn);
        self.extract(id)
    }

    /// One extract.
    pub fn extract(&self, id: &str) -> Result<ExtractRecord> {
        let conn = self.conn();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM extracts WHERE id = ?1"),
            [id],
            row_to_extract,
        )
        .optional()
        .map_err(|e| self.sql(e))?
        .ok_or_else(|| not_found(id))
    }

    /// Every extract (of one project, if given), oldest first.
    pub fn extracts(&self, project: Option<&str>) -> Result<Vec<ExtractRecord>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM extracts WHERE ?1 IS NULL OR project = ?1 ORDER BY requested, id"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([project], row_to_extract)
            .map_err(|e| self.sql(e))?;
        rows.map(|r| r.map_err(|e| self.sql(e))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewProject;

    fn setup() -> (tempfile::TempDir, Govern) {
        let d = tempfile::tempdir().unwrap();
        let g = Govern::open(&d.path().join("g.db")).unwrap();
        g.create_project(&NewProject::new("p1", "r1"), "dm")
            .unwrap();
        (d, g)
    }

    fn new() -> NewExtract {
        NewExtract {
            name: "cohort".into(),
            project: "p1".into(),
            recipient: "Uni".into(),
            spec: "project = \"p1\"".into(),
            sql: "SELECT 1".into(),
            spec_sha256: "a".repeat(64),
            sql_sha256: "b".repeat(64),
        }
    }

    fn released() -> ExtractReleased {
        ExtractReleased {
            rows: 1,
            files: 1,
            bytes: 10,
            k: 5,
            k_achieved: Some(5),
            recipient: "Uni".into(),
            manifest_sha256: "c".repeat(64),
        }
    }

    #[test]
    fn four_eyes_workflow_is_enforced_and_audited() {
        let (_d, g) = setup();
        let x = g.request_extract(&new(), "ada").unwrap();
        assert!(x.id.starts_with("ext-") && x.id.len() == 21, "{}", x.id);
        assert_eq!(x.status, ExtractStatus::Pending);
        // self-approval refused, in any case
        let e = g.approve_extract(&x.id, "ada").unwrap_err().to_string();
        assert!(e.contains("four eyes"), "{e}");
        assert!(g.approve_extract(&x.id, "ADA").is_err());
        // releasing before approval is refused
        assert!(
            g.release_extract(&x.id, "u", "{}", "dm", released())
                .is_err()
        );
        let a = g.approve_extract(&x.id, "bob").unwrap();
        assert_eq!(a.status, ExtractStatus::Approved);
        assert_eq!(a.approved_by.as_deref(), Some("bob"));
        assert!(g.approve_extract(&x.id, "cy").is_err());
        let r = g
            .release_extract(&x.id, "file:///x", "{\"m\":1}", "dm", released())
            .unwrap();
        assert_eq!(r.status, ExtractStatus::Released);
        assert_eq!(r.manifest.as_deref(), Some("{\"m\":1}"));
        let v = g.revoke_extract(&x.id, "dm").unwrap();
        assert_eq!(v.status, ExtractStatus::Revoked);
        assert_eq!(g.extracts(Some("p1")).unwrap().len(), 1);
        assert!(g.extracts(Some("p2")).unwrap().is_empty());
        assert!(g.extract("ext-nope").is_err());
        // project.create + request + approve + release + revoke
        assert_eq!(g.audit_verify().unwrap(), Ok(5));
        let kinds: Vec<String> = g
            .audit_tail(4)
            .unwrap()
            .iter()
            .map(|e| e.entry["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            kinds,
            [
                "extract.request",
                "extract.approve",
                "extract.release",
                "extract.revoke"
            ]
        );
    }

    #[test]
    fn partner_tokens_are_separate_from_researcher_tokens() {
        let (_d, g) = setup();
        let p = g.add_partner("uni", "p1", None, "dm").unwrap();
        let r = g.add_researcher("ada", "p1", None, "dm").unwrap();
        assert!(g.check_partner_token(&p).unwrap().is_ok());
        assert!(g.check_token(&p).unwrap().is_err());
        assert!(g.check_partner_token(&r).unwrap().is_err());
        g.revoke_partner("uni", "dm").unwrap();
        assert_eq!(
            g.check_partner_token(&p).unwrap().unwrap_err(),
            crate::AuthFailure::Revoked
        );
        assert_eq!(g.partners().unwrap().len(), 1);
        assert!(g.revoke_partner("nobody", "dm").is_err());
    }
}
