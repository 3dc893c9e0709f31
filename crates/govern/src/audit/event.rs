//! The typed audit event: one variant per kind of entry, with one canonical JSON form.
//!
//! An entry in the chain is the event's fields, its `kind` (the variant's tag, e.g.
//! `query`, `researcher.add`), the `actor` and the `time` of the append, in canonical
//! JSON ([`super::canonical_json`]). The serde form of [`AuditEvent`] *is* that form:
//! field names, which fields are always there (`null` when empty) and which only when
//! they have a value are fixed here, once, and match the entries written before the
//! type existed, so their hashes still verify. Long texts (a query's SQL, an error)
//! are bounded as [`super::bound_text`] describes by [`AuditEvent::fields`].
//!
//! Kinds by who writes them:
//!
//! * governance changes, written by the store in the transaction that makes them:
//!   `project.create`, `researcher.add`, `researcher.revoke`, `partner.add`,
//!   `partner.revoke`, `extract.request`, `extract.approve`, `extract.release`,
//!   `extract.revoke`;
//! * the query path (`dhub-server`): `query` ([`QueryEvent`]), `query.withheld`,
//!   `auth.refused` ([`RefusalCount`]) and the other requests of a researcher
//!   (`query.invalid`, `tables`, `whoami`, `disclosure.lookup`: [`RequestEvent`]);
//! * partners' downloads (`dhub-server`): `extract.list`, `extract.download`;
//! * a failed `dhub extract run`: `extract.run`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{FIELD_LIMIT, TEXT_LIMIT, bound_text};
use crate::OutputPolicy;

/// Something that happened, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
#[non_exhaustive]
pub enum AuditEvent {
    // ---- governance changes ------------------------------------------------------
    /// A project was created.
    #[serde(rename = "project.create")]
    ProjectCreate {
        /// Project id.
        project: String,
        /// Its release.
        release: String,
        /// Its granted tables ([`crate::Grant`]'s text form: `all` or `a,b`).
        tables: String,
        /// Its output policy.
        policy: OutputPolicy,
        /// Its last day (`YYYY-MM-DD`), `null` when none.
        expires: Option<String>,
    },
    /// A researcher was added (their token's SHA-256 binds the row to this entry).
    #[serde(rename = "researcher.add")]
    ResearcherAdd {
        /// The researcher.
        researcher: String,
        /// Their project.
        project: String,
        /// Their token's last day, `null` when none.
        expires: Option<String>,
        /// SHA-256 of their token, hex (absent in entries written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_sha256: Option<String>,
    },
    /// A researcher's token was revoked.
    #[serde(rename = "researcher.revoke")]
    ResearcherRevoke {
        /// The researcher.
        researcher: String,
    },
    /// A partner was added.
    #[serde(rename = "partner.add")]
    PartnerAdd {
        /// The partner.
        partner: String,
        /// Their project.
        project: String,
        /// Their token's last day, `null` when none.
        expires: Option<String>,
        /// SHA-256 of their token, hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_sha256: Option<String>,
    },
    /// A partner's token was revoked.
    #[serde(rename = "partner.revoke")]
    PartnerRevoke {
        /// The partner.
        partner: String,
    },
    /// An extract was requested (its spec and query frozen).
    #[serde(rename = "extract.request")]
    ExtractRequest {
        /// Extract id.
        extract: String,
        /// The spec's name.
        name: String,
        /// The project.
        project: String,
        /// Who receives it.
        recipient: String,
        /// SHA-256 of the frozen spec.
        spec_sha256: String,
        /// SHA-256 of the frozen query.
        sql_sha256: String,
    },
    /// An extract was approved (by another person than its requester).
    #[serde(rename = "extract.approve")]
    ExtractApprove {
        /// Extract id.
        extract: String,
        /// The project.
        project: String,
    },
    /// An extract was written, signed and released.
    #[serde(rename = "extract.release")]
    ExtractRelease {
        /// Extract id.
        extract: String,
        /// The project.
        project: String,
        /// What was released.
        #[serde(flatten)]
        released: ExtractReleased,
    },
    /// An extract was revoked.
    #[serde(rename = "extract.revoke")]
    ExtractRevoke {
        /// Extract id.
        extract: String,
        /// The project.
        project: String,
    },
    /// `dhub extract run` failed (a successful run is `extract.release`).
    #[serde(rename = "extract.run")]
    ExtractRun {
        /// Extract id.
        extract: String,
        /// The project.
        project: String,
        /// `failed`.
        outcome: String,
        /// Why (the error and its causes).
        reason: String,
    },

    // ---- the query path ----------------------------------------------------------
    /// A query, answered or refused.
    #[serde(rename = "query")]
    Query(QueryEvent),
    /// An answer withheld because the token stopped being valid while the query ran.
    #[serde(rename = "query.withheld")]
    QueryWithheld {
        /// The query.
        query_id: String,
        /// The researcher.
        researcher: String,
        /// Their project.
        project: String,
        /// Client address.
        client: String,
        /// Front end.
        via: String,
        /// Why (`revoked`, `expired`, `projectexpired`, `unknown`).
        reason: String,
    },
    /// Refused tokens, counted per client address and minute.
    #[serde(rename = "auth.refused")]
    AuthRefused(RefusalCount),
    /// A request body that is not a query.
    #[serde(rename = "query.invalid")]
    QueryInvalid {
        /// Who, from where, and the outcome.
        #[serde(flatten)]
        request: RequestEvent,
        /// The body's length, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_bytes: Option<u64>,
        /// The body (bounded), when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// The tables a researcher may query were listed.
    #[serde(rename = "tables")]
    Tables {
        /// Who, from where, and the outcome.
        #[serde(flatten)]
        request: RequestEvent,
        /// How many, when listed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tables: Option<u64>,
    },
    /// A researcher asked who they are.
    #[serde(rename = "whoami")]
    Whoami(RequestEvent),
    /// A researcher looked up a query's disclosure record.
    #[serde(rename = "disclosure.lookup")]
    DisclosureLookup {
        /// Who, from where, and the outcome.
        #[serde(flatten)]
        request: RequestEvent,
        /// The id asked for (bounded to 64 bytes).
        lookup_query_id: String,
    },

    // ---- partners' downloads -----------------------------------------------------
    /// A partner listed their project's released extracts.
    #[serde(rename = "extract.list")]
    ExtractList {
        /// The partner.
        partner: String,
        /// Their project.
        project: String,
        /// Client address.
        client: String,
        /// How many were listed.
        extracts: u64,
    },
    /// A partner downloaded (or was refused) one file of an extract.
    #[serde(rename = "extract.download")]
    ExtractDownload {
        /// The partner.
        partner: String,
        /// Their project.
        project: String,
        /// Extract id as asked.
        extract: String,
        /// File name as asked.
        file: String,
        /// Client address.
        client: String,
        /// The Range header (its first 64 characters), `null` when none.
        range: Option<String>,
        /// `ok`, `range_not_satisfiable` or the error's outcome.
        outcome: String,
        /// Bytes sent, when sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
    },
}

/// What `extract.release` records about the files written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractReleased {
    /// Rows written.
    pub rows: u64,
    /// Files written.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// The k-anonymity threshold required.
    pub k: u64,
    /// The smallest class size achieved, `null` when not measured.
    pub k_achieved: Option<u64>,
    /// Who receives it.
    pub recipient: String,
    /// SHA-256 of `manifest.json` as written, hex.
    pub manifest_sha256: String,
}

/// A `query` entry: who asked what, from where, and what came of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueryEvent {
    /// The query's id (the disclosure lookup's key, indexed).
    pub query_id: String,
    /// The researcher.
    pub researcher: String,
    /// Their project.
    pub project: String,
    /// The project's release.
    pub release: String,
    /// Client address.
    pub client: String,
    /// Front end (`http`, `flight`).
    pub via: String,
    /// The SQL (bounded: whole up to 64 KiB when answered, 4 KiB when refused).
    pub sql: String,
    /// Time from arrival to the answer.
    pub duration_ms: u64,
    /// Time spent waiting for a place in the queue.
    pub queued_ms: u64,
    /// `ok` or the refusal's outcome word.
    pub outcome: String,
    /// Rows answered (answered queries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Bytes answered (answered queries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The disclosure-control record (answered queries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<Value>,
    /// HTTP status of the refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The refusal's message (bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The refusal's detail (bounded; empty when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A researcher's request other than a query: who, from where, and its outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestEvent {
    /// The researcher.
    pub researcher: String,
    /// Their project.
    pub project: String,
    /// The project's release.
    pub release: String,
    /// Client address.
    pub client: String,
    /// Front end.
    pub via: String,
    /// `ok` or the refusal's outcome word.
    pub outcome: String,
    /// HTTP status of a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A refusal's message (bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One count of refused tokens: one client address, one minute, one reason, one holder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefusalCount {
    /// Client address (without its port).
    pub client: String,
    /// Front end.
    pub via: String,
    /// `researcher` or `partner`: the kind of token asked for.
    pub role: String,
    /// `unknown`, `revoked`, `expired`, `projectexpired`.
    pub reason: String,
    /// How many.
    pub count: u64,
    /// The minute (RFC 3339, seconds).
    pub minute: Option<String>,
    /// The first refusal's time.
    pub first: String,
    /// The last refusal's time.
    pub last: String,
    /// The holder's project, when dhub issued the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The researcher, when the token is a researcher's that dhub issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub researcher: Option<String>,
    /// The partner, when the token is a partner's that dhub issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
}

impl AuditEvent {
    /// The entry's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::ProjectCreate { .. } => "project.create",
            AuditEvent::ResearcherAdd { .. } => "researcher.add",
            AuditEvent::ResearcherRevoke { .. } => "researcher.revoke",
            AuditEvent::PartnerAdd { .. } => "partner.add",
            AuditEvent::PartnerRevoke { .. } => "partner.revoke",
            AuditEvent::ExtractRequest { .. } => "extract.request",
            AuditEvent::ExtractApprove { .. } => "extract.approve",
            AuditEvent::ExtractRelease { .. } => "extract.release",
            AuditEvent::ExtractRevoke { .. } => "extract.revoke",
            AuditEvent::ExtractRun { .. } => "extract.run",
            AuditEvent::Query(_) => "query",
            AuditEvent::QueryWithheld { .. } => "query.withheld",
            AuditEvent::AuthRefused(_) => "auth.refused",
            AuditEvent::QueryInvalid { .. } => "query.invalid",
            AuditEvent::Tables { .. } => "tables",
            AuditEvent::Whoami(_) => "whoami",
            AuditEvent::DisclosureLookup { .. } => "disclosure.lookup",
            AuditEvent::ExtractList { .. } => "extract.list",
            AuditEvent::ExtractDownload { .. } => "extract.download",
        }
    }

    /// The texts bounded in the entry, with their limits ([`bound_text`]).
    fn bounded(&self) -> Vec<(&'static str, usize)> {
        match self {
            AuditEvent::Query(q) => vec![
                // whole for an answered query up to 64 KiB, up to 4 KiB for a refused one
                (
                    "sql",
                    if q.outcome == "ok" {
                        FIELD_LIMIT
                    } else {
                        TEXT_LIMIT
                    },
                ),
                ("error", TEXT_LIMIT),
                ("detail", TEXT_LIMIT),
            ],
            AuditEvent::QueryInvalid { .. } => vec![("error", TEXT_LIMIT), ("body", TEXT_LIMIT)],
            AuditEvent::Tables { .. } | AuditEvent::Whoami(_) => vec![("error", TEXT_LIMIT)],
            AuditEvent::DisclosureLookup { .. } => {
                vec![("error", TEXT_LIMIT), ("lookup_query_id", 64)]
            }
            _ => Vec::new(),
        }
    }

    /// The entry's fields (with its `kind`; without the `actor` and `time` the append
    /// adds), long texts bounded: the one canonical form of the event.
    pub fn fields(&self) -> Map<String, Value> {
        let mut m = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            // every variant serialises to an object; keep the kind whatever happens
            _ => Map::new(),
        };
        m.insert("kind".into(), Value::String(self.kind().to_owned()));
        for (key, limit) in self.bounded() {
            if let Some(Value::String(text)) = m.get(key).cloned() {
                bound_text(&mut m, key, &text, limit);
            }
        }
        m
    }

    /// The event of a stored entry (`None` for a kind this dhub does not write or an
    /// entry that does not have its fields).
    pub fn from_entry(entry: &Value) -> Option<Self> {
        serde_json::from_value(entry.clone()).ok()
    }
}

impl RefusalCount {
    /// Names the holder of an issued token under the key of its `role`.
    pub fn with_holder(mut self, name: Option<String>) -> Self {
        match (self.role.as_str(), name) {
            ("partner", Some(n)) => self.partner = Some(n),
            (_, Some(n)) => self.researcher = Some(n),
            (_, None) => {}
        }
        self
    }
}
