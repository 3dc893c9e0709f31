//! Refused tokens, counted per client address and minute before they reach the audit
//! log (the counting; [`Governed`] notes each refusal and writes the counts).
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
use dhub_govern::{AuditEvent, AuthFailure, RefusalCount, Refused};
#[cfg(test)]
use serde_json::{Map, Value};

use crate::{Caller, Governed};

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
    pub(crate) fn note(
        &self,
        r: &Refused,
        role: &'static str,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> bool {
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
    /// audit events with their actors, oldest first.
    pub(crate) fn take_events(&self, now: DateTime<Utc>, all: bool) -> Vec<(AuditEvent, String)> {
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
                let count = RefusalCount {
                    client: k.client,
                    via: k.via.to_owned(),
                    role: k.role.to_owned(),
                    reason: k.reason.to_owned(),
                    count: t.count,
                    minute: DateTime::<Utc>::from_timestamp(k.minute * 60, 0)
                        .map(|m| m.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    first: ts(t.first),
                    last: ts(t.last),
                    project: k.project,
                    researcher: None,
                    partner: None,
                }
                .with_holder(k.holder.clone());
                let actor = k.holder.unwrap_or_else(|| "anonymous".to_owned());
                (AuditEvent::AuthRefused(count), actor)
            })
            .collect()
    }

    /// [`Refusals::take_events`] as `(kind, actor, fields)` of the entries.
    #[cfg(test)]
    fn take(&self, now: DateTime<Utc>, all: bool) -> Vec<(String, String, Map<String, Value>)> {
        self.take_events(now, all)
            .into_iter()
            .map(|(e, actor)| (e.kind().to_owned(), actor, e.fields()))
            .collect()
    }
}

/// Writes closed minutes' refusal counts every [`FLUSH_EVERY`] while the server lives;
/// [`RefusalFlusher::finish`] (or, as a backstop, dropping it) writes every open count.
#[derive(Debug)]
pub(crate) struct RefusalFlusher(Option<Arc<Governed>>);

impl RefusalFlusher {
    pub(crate) fn start(g: &Arc<Governed>) -> Self {
        let weak: Weak<Governed> = Arc::downgrade(g);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(g) = weak.upgrade() else { break };
                if let Err(e) = g.flush_refusals(false).await {
                    tracing::error!(error = %e.message, "writing refusal counts to the audit log");
                }
            }
        });
        Self(Some(g.clone()))
    }

    /// Writes every open count (on the blocking thread pool), as at shutdown.
    pub(crate) async fn finish(mut self) {
        if let Some(g) = self.0.take()
            && let Err(e) = g.flush_refusals(true).await
        {
            tracing::error!(error = %e.message, "writing refusal counts to the audit log");
        }
    }
}

impl Drop for RefusalFlusher {
    /// A backstop for a way out of `serve` that skipped [`RefusalFlusher::finish`].
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            g.flush_refusals_now();
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
