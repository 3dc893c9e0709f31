//! The server's audit entries beyond queries: refused tokens, counted per client address
//! and minute, and the other requests of authenticated researchers (`/v1/tables`,
//! `/v1/whoami`, disclosure lookups, bodies that are not a query).
//!
//! **Refusals.** Every refused token used to be one entry, written to disk before the
//! answer: a script could fill the disk with them. Now refusals are counted in memory
//! per (client address, minute, front end, role, reason, holder) and each count becomes
//! **one** `auth.refused` entry — `{client, via, role, reason, count, minute, first,
//! last}`, under the holder's name when the token is one dhub issued (revoked, expired,
//! expired project; with `researcher`/`partner` and `project`), else under `anonymous` —
//! once its minute is over (checked on every refusal and every few seconds), at shutdown,
//! and at once when more than [`MAX_PENDING`] counts are open. A crash loses at most the
//! last minute's counts; the refusals are still in `/metrics`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use dhub_govern::{AuthFailure, Principal, Refused};
use serde_json::{Map, Value, json};

use crate::{ApiError, Caller, Governed};

/// Open counts held in memory before they are written regardless of their minute.
pub const MAX_PENDING: usize = 4096;

/// How often closed minutes are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// One count's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    minute: i64,
    client: String,
    via: &'static str,
    role: &'static str,
    reason: &'static str,
    holder: Option<String>,
    project: Option<String>,
}

#[derive(Debug)]
struct Tally {
    count: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Refusals counted but not yet written.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    pending: Mutex<HashMap<Key, Tally>>,
}

fn reason_word(f: AuthFailure) -> &'static str {
    match f {
        AuthFailure::Unknown => "unknown",
        AuthFailure::Revoked => "revoked",
        AuthFailure::Expired => "expired",
        AuthFailure::ProjectExpired => "projectexpired",
    }
}

/// The client's address without its port (one client, many connections).
fn client_host(addr: &str) -> String {
    addr.parse::<SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| addr.to_owned())
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Refusals {
    /// Counts one refusal at `now`; returns whether something is due to be written.
    fn note(&self, r: &Refused, role: &'static str, caller: &Caller, now: DateTime<Utc>) -> bool {
        let minute = now.timestamp().div_euclid(60);
        let key = Key {
            minute,
            client: client_host(&caller.addr),
            via: caller.via,
            role,
            reason: reason_word(r.failure),
            holder: r.name.clone(),
            project: r.project.clone(),
        };
        let mut m = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = m.entry(key).or_insert(Tally {
            count: 0,
            first: now,
            last: now,
        });
        t.count += 1;
        t.last = now;
        m.len() > MAX_PENDING || m.keys().any(|k| k.minute < minute)
    }

    /// Takes the counts whose minute is over at `now` (every count when `all`), as
    /// audit entries `(kind, actor, fields)`, oldest first.
    fn take(&self, now: DateTime<Utc>, all: bool) -> Vec<(String, String, Map<String, Value>)> {
        let minute = now.timestamp().div_euclid(60);
        let mut m = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let all = all || m.len() > MAX_PENDING;
        let due: Vec<Key> = m
            .keys()
            .filter(|k| all || k.minute < minute)
            .cloned()
            .collect();
        let mut out: Vec<(Key, Tally)> = due
            .into_iter()
            .filter_map(|k| m.remove(&k).map(|t| (k, t)))
            .collect();
        drop(m);
        out.sort_by_key(|(_, t)| t.first);
        out.into_iter()
            .map(|(k, t)| {
                let mut f = Map::new();
                f.insert("client".into(), json!(k.client));
                f.insert("via".into(), json!(k.via));
                f.insert("role".into(), json!(k.role));
                f.insert("reason".into(), json!(k.reason));
                f.insert("count".into(), json!(t.count));
                f.insert(
                    "minute".into(),
                    json!(
                        DateTime::<Utc>::from_timestamp(k.minute * 60, 0)
                            .map(|m| m.to_rfc3339_opts(SecondsFormat::Secs, true))
                    ),
                );
                f.insert("first".into(), json!(ts(t.first)));
                f.insert("last".into(), json!(ts(t.last)));
                if let Some(p) = &k.project {
                    f.insert("project".into(), json!(p));
                }
                let actor = match &k.holder {
                    Some(name) => {
                        f.insert(k.role.into(), json!(name));
                        name.clone()
                    }
                    None => "anonymous".to_owned(),
                };
                ("auth.refused".to_owned(), actor, f)
            })
            .collect()
    }
}

impl Governed {
    /// Counts a refused token (never the token itself); writes the counts whose minute
    /// is over. Runs where the governance store may be written (blocking context).
    pub(crate) fn note_refusal(&self, r: &Refused, role: &'static str, caller: &Caller) {
        self.metrics.count_auth_failure();
        if self.refusals.note(r, role, caller, Utc::now())
            && let Err(e) = self.flush_refusals(false)
        {
            tracing::error!(error = %e.message, "writing refusal counts to the audit log");
        }
    }

    /// Writes the refusal counts whose minute is over (every count when `all`, as at
    /// shutdown) to the audit log, in one transaction.
    pub fn flush_refusals(&self, all: bool) -> Result<(), ApiError> {
        let entries = self.refusals.take(Utc::now(), all);
        if entries.is_empty() {
            return Ok(());
        }
        self.govern
            .audit_many(entries)
            .map(|_| ())
            .map_err(|e| ApiError::internal(format!("writing the audit entry: {e}")))
    }

    /// Writes one entry for a request of an authenticated researcher other than a
    /// query (`kind`: `tables`, `whoami`, `disclosure.lookup`, …), with its outcome,
    /// before the answer goes out. An entry that cannot be written fails the request.
    pub(crate) async fn audit_request(
        &self,
        p: &Principal,
        caller: &Caller,
        kind: &'static str,
        outcome: Result<(), &ApiError>,
        mut fields: Map<String, Value>,
    ) -> Result<(), ApiError> {
        fields.insert("researcher".into(), json!(p.researcher.name));
        fields.insert("project".into(), json!(p.project.id));
        fields.insert("release".into(), json!(p.project.release));
        fields.insert("client".into(), json!(caller.addr));
        fields.insert("via".into(), json!(caller.via));
        match outcome {
            Ok(()) => {
                fields.insert("outcome".into(), json!("ok"));
            }
            Err(e) => {
                fields.insert("outcome".into(), json!(e.outcome()));
                fields.insert("status".into(), json!(e.status.as_u16()));
                dhub_govern::audit::bound_text(
                    &mut fields,
                    "error",
                    &e.message,
                    dhub_govern::audit::TEXT_LIMIT,
                );
            }
        }
        // SQLite work off the async threads' queue (the runtime moves its other tasks)
        tokio::task::block_in_place(|| {
            self.govern
                .audit(kind, &p.researcher.name, fields)
                .map(|_| ())
                .map_err(|e| ApiError::internal(format!("writing the audit entry: {e}")))
        })
    }
}

impl Drop for Governed {
    /// A backstop for any way out of `serve`: counts still open are written.
    fn drop(&mut self) {
        if let Err(e) = self.flush_refusals(true) {
            tracing::error!(error = %e.message, "writing refusal counts to the audit log");
        }
    }
}

/// Writes closed minutes' refusal counts every [`FLUSH_EVERY`] while the server lives,
/// and every open count when dropped (at the end of `serve`, however it ends).
#[derive(Debug)]
pub(crate) struct RefusalFlusher(Arc<Governed>);

impl RefusalFlusher {
    pub(crate) fn start(g: &Arc<Governed>) -> Self {
        let weak: Weak<Governed> = Arc::downgrade(g);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(g) = weak.upgrade() else { break };
                let r = tokio::task::spawn_blocking(move || g.flush_refusals(false)).await;
                if let Ok(Err(e)) = r {
                    tracing::error!(error = %e.message, "writing refusal counts to the audit log");
                }
            }
        });
        Self(g.clone())
    }
}

impl Drop for RefusalFlusher {
    fn drop(&mut self) {
        if let Err(e) = self.0.flush_refusals(true) {
            tracing::error!(error = %e.message, "writing refusal counts to the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(addr: &str) -> Caller {
        Caller {
            addr: addr.to_owned(),
            via: "http",
        }
    }

    #[test]
    fn refusals_are_counted_per_address_and_minute() {
        let r = Refusals::default();
        let unknown = Refused {
            failure: AuthFailure::Unknown,
            name: None,
            project: None,
        };
        let t0 = DateTime::<Utc>::from_timestamp(60 * 1000 + 5, 0).unwrap();
        // 50 refusals from one address (many ports) in one minute
        for i in 0..50 {
            assert!(!r.note(
                &unknown,
                "researcher",
                &caller(&format!("10.0.0.1:{}", 4000 + i)),
                t0
            ));
        }
        r.note(&unknown, "researcher", &caller("10.0.0.2:1"), t0);
        let revoked = Refused {
            failure: AuthFailure::Revoked,
            name: Some("rev".into()),
            project: Some("p".into()),
        };
        r.note(&revoked, "researcher", &caller("10.0.0.1:9"), t0);
        // nothing is due within the minute
        assert!(r.take(t0 + chrono::Duration::seconds(30), false).is_empty());
        // the next minute's refusal makes the last minute due
        let t1 = t0 + chrono::Duration::seconds(60);
        assert!(r.note(&unknown, "researcher", &caller("10.0.0.1:1"), t1));
        let due = r.take(t1, false);
        assert_eq!(due.len(), 3);
        let one = due
            .iter()
            .find(|(_, a, f)| a == "anonymous" && f["client"] == "10.0.0.1")
            .unwrap();
        assert_eq!(one.2["count"], 50);
        assert_eq!(one.2["reason"], "unknown");
        assert_eq!(one.2["minute"], "1970-01-01T16:40:00Z");
        let rev = due.iter().find(|(_, a, _)| a == "rev").unwrap();
        assert_eq!(rev.2["researcher"], "rev");
        assert_eq!(rev.2["project"], "p");
        assert_eq!(rev.2["reason"], "revoked");
        assert_eq!(rev.2["count"], 1);
        // the open minute is written at shutdown
        let rest = r.take(t1, true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].2["count"], 1);
        assert!(r.take(t1, true).is_empty());
    }

    #[test]
    fn too_many_open_counts_are_written_at_once() {
        let r = Refusals::default();
        let unknown = Refused {
            failure: AuthFailure::Unknown,
            name: None,
            project: None,
        };
        let t0 = DateTime::<Utc>::from_timestamp(60 * 1000, 0).unwrap();
        let mut due = false;
        for i in 0..=MAX_PENDING {
            due = r.note(
                &unknown,
                "researcher",
                &caller(&format!("10.1.{}.{}:1", i / 256, i % 256)),
                t0,
            );
        }
        assert!(due);
        assert_eq!(r.take(t0, false).len(), MAX_PENDING + 1);
    }
}
