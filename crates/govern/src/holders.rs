//! Researchers and partners (the token holders) and their tokens: issue, revoke, list,
//! and check a bearer token. A token is 256 random bits after [`TOKEN_PREFIX`]; only its
//! SHA-256 ([`token_hash`]) is stored, and every change is audited (`researcher.add`,
//! `partner.revoke`, …) in the same transaction.

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, append_tx};
use crate::error::{GovernError, Result};
use crate::{Govern, Project, check_name, now, parse_date, ts};

/// Prefix of researcher tokens (lets secret scanners recognise a leaked one).
pub const TOKEN_PREFIX: &str = "dhub_";

/// A token that was accepted: who, in which project.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The researcher.
    pub researcher: Researcher,
    /// Their project.
    pub project: Project,
}

/// A partner: the same record as a researcher (name, project, created, expires,
/// revoked), kept in its own table with its own tokens.
pub type Partner = Researcher;

/// Who holds a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A researcher (SQL over HTTP).
    Researcher,
    /// An innovation-hub partner (extract downloads).
    Partner,
}

impl Holder {
    pub(crate) fn table(self) -> &'static str {
        match self {
            Holder::Researcher => "researchers",
            Holder::Partner => "partners",
        }
    }
    /// The `researcher.add` / `partner.add` event.
    fn added(
        self,
        name: &str,
        project: &str,
        expires: Option<String>,
        token_sha256: String,
    ) -> AuditEvent {
        let (name, project, token_sha256) =
            (name.to_owned(), project.to_owned(), Some(token_sha256));
        match self {
            Holder::Researcher => AuditEvent::ResearcherAdd {
                researcher: name,
                project,
                expires,
                token_sha256,
            },
            Holder::Partner => AuditEvent::PartnerAdd {
                partner: name,
                project,
                expires,
                token_sha256,
            },
        }
    }
    /// The `researcher.revoke` / `partner.revoke` event.
    fn revoked(self, name: &str) -> AuditEvent {
        match self {
            Holder::Researcher => AuditEvent::ResearcherRevoke {
                researcher: name.to_owned(),
            },
            Holder::Partner => AuditEvent::PartnerRevoke {
                partner: name.to_owned(),
            },
        }
    }
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Holder::Researcher => "researcher",
            Holder::Partner => "partner",
        }
    }
    fn name_kind(self) -> &'static str {
        match self {
            Holder::Researcher => "researcher name",
            Holder::Partner => "partner name",
        }
    }
    fn list_hint(self) -> &'static str {
        match self {
            Holder::Researcher => "`dhub researcher list` shows the researchers",
            Holder::Partner => "`dhub partner list` shows the partners",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token, or not one dhub issued.
    Unknown,
    /// The researcher's token was revoked.
    Revoked,
    /// The researcher's token has expired.
    Expired,
    /// The project has expired.
    ProjectExpired,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthFailure::Unknown => "the token is missing or not valid",
            AuthFailure::Revoked => "the token was revoked; ask the data manager for a new one",
            AuthFailure::Expired => "the token has expired; ask the data manager for a new one",
            AuthFailure::ProjectExpired => {
                "the project has expired; its data can no longer be queried"
            }
        })
    }
}

/// A refused token, with whom it belongs to when dhub issued it (a revoked or expired
/// token is recorded under its holder, never as anonymous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub failure: AuthFailure,
    /// The holder (researcher or partner) when the token is one dhub issued.
    pub name: Option<String>,
    /// The holder's project, likewise.
    pub project: Option<String>,
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

/// SHA-256 of a token, hex (the only form in which tokens are stored).
/// SHA-256 of a token, hex (the only form in which tokens are stored).
pub fn token_hash(token: &str) -> String {
    crate::audit::hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

impl Govern {
    /// Adds a researcher to a project and returns their new token: 256 random bits,
    /// URL-safe base64 after [`TOKEN_PREFIX`]. Only its SHA-256 is stored; the token is
    /// returned once and can never be shown again.
    pub fn add_researcher(
        &self,
        name: &str,
        project: &str,
        expires: Option<NaiveDate>,
        actor: &str,
    ) -> Result<String> {
        self.add_holder(Holder::Researcher, name, project, expires, actor)
    }

    /// Adds an innovation-hub partner to a project and returns their new token (as for
    /// researchers). A partner token opens only the partner's released extracts; it
    /// cannot run SQL, and a researcher token cannot download extracts.
    pub fn add_partner(
        &self,
        name: &str,
        project: &str,
        expires: Option<NaiveDate>,
        actor: &str,
    ) -> Result<String> {
        self.add_holder(Holder::Partner, name, project, expires, actor)
    }

    fn add_holder(
        &self,
        holder: Holder,
        name: &str,
        project: &str,
        expires: Option<NaiveDate>,
        actor: &str,
    ) -> Result<String> {
        check_name(holder.name_kind(), name)?;
        let raw = dhub_deid::random_bytes(32).map_err(|e| GovernError::Invalid(e.to_string()))?;
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let hash = token_hash(&token);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let has_project = tx
            .query_row(
                "SELECT 1 FROM projects WHERE id = ?1",
                [project],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.sql(e))?
            .is_some();
        if !has_project {
            return Err(GovernError::NotFound {
                kind: "project",
                id: project.to_owned(),
                hint: "`dhub project list` shows the projects",
            });
        }
        let table = holder.table();
        let exists = tx
            .query_row(
                &format!("SELECT 1 FROM {table} WHERE name = ?1"),
                [name],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.sql(e))?
            .is_some();
        if exists {
            return Err(GovernError::Exists {
                kind: holder.kind(),
                id: name.to_owned(),
            });
        }
        tx.execute(
            &format!("INSERT INTO {table} (name, project, token_sha256, created, expires, revoked) VALUES (?1, ?2, ?3, ?4, ?5, NULL)"),
            params![name, project, hash, ts(now()), expires.map(|d| d.to_string())],
        )
        .map_err(|e| self.sql(e))?;
        // binds the row's token hash to this entry: `dhub audit verify` finds a token
        // swapped in the table (the hash of a 256-bit random token reveals nothing)
        let event = holder.added(name, project, expires.map(|d| d.to_string()), hash);
        append_tx(&tx, &event, actor).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(token)
    }

    /// Revokes a researcher's token (audited).
    pub fn revoke_researcher(&self, name: &str, actor: &str) -> Result<()> {
        self.revoke_holder(Holder::Researcher, name, actor)
    }

    /// Revokes a partner's token (audited).
    pub fn revoke_partner(&self, name: &str, actor: &str) -> Result<()> {
        self.revoke_holder(Holder::Partner, name, actor)
    }

    fn revoke_holder(&self, holder: Holder, name: &str, actor: &str) -> Result<()> {
        let table = holder.table();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let n = tx
            .execute(
                &format!("UPDATE {table} SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL"),
                params![name, ts(now())],
            )
            .map_err(|e| self.sql(e))?;
        if n == 0 {
            let exists = tx
                .query_row(
                    &format!("SELECT 1 FROM {table} WHERE name = ?1"),
                    [name],
                    |_| Ok(()),
                )
                .optional()
                .map_err(|e| self.sql(e))?
                .is_some();
            if !exists {
                return Err(GovernError::NotFound {
                    kind: holder.kind(),
                    id: name.to_owned(),
                    hint: holder.list_hint(),
                });
            }
            return Ok(());
        }
        append_tx(&tx, &holder.revoked(name), actor).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn row_to_researcher(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Researcher, String)> {
        let created: String = r.get(2)?;
        let expires: Option<String> = r.get(3)?;
        let revoked: Option<String> = r.get(4)?;
        let parse_ts = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        Ok((
            Researcher {
                name: r.get(0)?,
                project: r.get(1)?,
                created: parse_ts(&created),
                expires: expires.and_then(|d| parse_date(&d).ok()),
                revoked: revoked.as_deref().map(parse_ts),
            },
            r.get(5)?,
        ))
    }

    /// Every researcher (never their tokens), by name.
    pub fn researchers(&self) -> Result<Vec<Researcher>> {
        self.holders(Holder::Researcher)
    }

    /// Every partner (never their tokens), by name.
    pub fn partners(&self) -> Result<Vec<Partner>> {
        self.holders(Holder::Partner)
    }

    fn holders(&self, holder: Holder) -> Result<Vec<Researcher>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!("SELECT name, project, created, expires, revoked, token_sha256 FROM {} ORDER BY name", holder.table()))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], Self::row_to_researcher)
            .map_err(|e| self.sql(e))?;
        rows.map(|r| r.map(|(x, _)| x).map_err(|e| self.sql(e)))
            .collect()
    }

    /// Checks a researcher's bearer token: `Ok(Ok(principal))` when it may act now.
    pub fn check_token(&self, token: &str) -> Result<std::result::Result<Principal, AuthFailure>> {
        Ok(self
            .check_holder_token(Holder::Researcher, token)?
            .map_err(|r| r.failure))
    }

    /// Like [`Govern::check_token`], naming the researcher of a refused token that dhub
    /// issued (revoked, expired, or of an expired project), for the audit log.
    pub fn check_token_refused(
        &self,
        token: &str,
    ) -> Result<std::result::Result<Principal, Refused>> {
        self.check_holder_token(Holder::Researcher, token)
    }

    /// Like [`Govern::check_partner_token`], naming the partner of a refused token.
    pub fn check_partner_token_refused(
        &self,
        token: &str,
    ) -> Result<std::result::Result<Principal, Refused>> {
        self.check_holder_token(Holder::Partner, token)
    }

    /// Checks a partner's bearer token: `Ok(Ok(principal))` (the partner in
    /// `principal.researcher`) when it may download now.
    pub fn check_partner_token(
        &self,
        token: &str,
    ) -> Result<std::result::Result<Principal, AuthFailure>> {
        Ok(self
            .check_holder_token(Holder::Partner, token)?
            .map_err(|r| r.failure))
    }

    fn check_holder_token(
        &self,
        holder: Holder,
        token: &str,
    ) -> Result<std::result::Result<Principal, Refused>> {
        let unknown = Refused {
            failure: AuthFailure::Unknown,
            name: None,
            project: None,
        };
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(Err(unknown));
        }
        let hash = token_hash(token);
        let found = {
            let conn = self.conn();
            conn.query_row(
                &format!("SELECT name, project, created, expires, revoked, token_sha256 FROM {} WHERE token_sha256 = ?1", holder.table()),
                [&hash],
                Self::row_to_researcher,
            )
            .optional()
            .map_err(|e| self.sql(e))?
        };
        let Some((researcher, _)) = found else {
            return Ok(Err(unknown));
        };
        let refused = |failure| {
            Ok(Err(Refused {
                failure,
                name: Some(researcher.name.clone()),
                project: Some(researcher.project.clone()),
            }))
        };
        let t = now();
        if researcher.revoked.is_some() {
            return refused(AuthFailure::Revoked);
        }
        if researcher.expires.is_some_and(|d| t.date_naive() > d) {
            return refused(AuthFailure::Expired);
        }
        let project = self.project(&researcher.project)?;
        if project.expired(t) {
            return refused(AuthFailure::ProjectExpired);
        }
        Ok(Ok(Principal {
            researcher,
            project,
        }))
    }

    /// Like [`Govern::check_token`], with a refusal as an error.
    pub fn authenticate(&self, token: &str) -> Result<Principal> {
        self.check_token(token)?
            .map_err(|f| GovernError::Invalid(f.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RequestEvent;
    use crate::testutil::{populated, store};
    use crate::{NewProject, parse_date};

    #[test]
    fn tokens_are_random_stored_hashed_and_checked() {
        let (d, g) = store();
        g.create_project(&NewProject::new("p1", "r1"), "dm")
            .unwrap();
        let t1 = g.add_researcher("ada", "p1", None, "dm").unwrap();
        let t2 = g
            .add_researcher("bob", "p1", parse_date("2000-01-01").ok(), "dm")
            .unwrap();
        assert!(t1.starts_with(TOKEN_PREFIX) && t1.len() == TOKEN_PREFIX.len() + 43);
        assert_ne!(t1, t2);
        // only the hash is in the file
        drop(g);
        let bytes = std::fs::read(d.path().join("g.db")).unwrap();
        let wal = std::fs::read(d.path().join("g.db-wal")).unwrap_or_default();
        for b in [&bytes, &wal] {
            let s = String::from_utf8_lossy(b);
            assert!(!s.contains(&t1[5..]) && !s.contains(&t2[5..]));
        }
        let g = Govern::open(&d.path().join("g.db")).unwrap();
        assert_eq!(g.check_token(&t1).unwrap().unwrap().researcher.name, "ada");
        assert_eq!(
            g.check_token(&t2).unwrap().unwrap_err(),
            AuthFailure::Expired
        );
        assert_eq!(
            g.check_token("dhub_nope").unwrap().unwrap_err(),
            AuthFailure::Unknown
        );
        assert_eq!(
            g.check_token("").unwrap().unwrap_err(),
            AuthFailure::Unknown
        );
        g.revoke_researcher("ada", "dm").unwrap();
        assert_eq!(
            g.check_token(&t1).unwrap().unwrap_err(),
            AuthFailure::Revoked
        );
        assert!(g.add_researcher("ada", "p1", None, "dm").is_err());
        assert!(g.add_researcher("cy", "nope", None, "dm").is_err());
        // project.create, two researcher.add, one researcher.revoke
        assert_eq!(g.audit_verify().unwrap(), Ok(4));
    }

    #[test]
    fn a_refused_token_names_its_holder_when_dhub_issued_it() {
        let (_d, g) = populated();
        let t = g.add_researcher("cy", "p1", None, "dm").unwrap();
        g.revoke_researcher("cy", "dm").unwrap();
        let r = g.check_token_refused(&t).unwrap().unwrap_err();
        assert_eq!(r.failure, AuthFailure::Revoked);
        assert_eq!(r.name.as_deref(), Some("cy"));
        assert_eq!(r.project.as_deref(), Some("p1"));
        let r = g.check_token_refused("dhub_unknown").unwrap().unwrap_err();
        assert_eq!((r.failure, r.name), (AuthFailure::Unknown, None));
        // several entries in one transaction
        let before = g.audit_verify().unwrap().unwrap();
        let last = g
            .audit_many(&[
                (AuditEvent::Whoami(RequestEvent::default()), "x".into()),
                (AuditEvent::Whoami(RequestEvent::default()), "y".into()),
            ])
            .unwrap();
        assert_eq!(last, before + 2);
        assert_eq!(g.audit_verify().unwrap(), Ok(before + 2));
    }
}
