//! Admission to the query workers: a bounded queue, fair across researchers.
//!
//! At most `workers` requests hold a worker at once, and at most `per_researcher` of one
//! researcher's. A request that cannot start at once waits in its researcher's own
//! first-in-first-out line; when a worker comes free it goes to the next researcher in
//! turn (round robin over the researchers who are waiting and below their own cap), so
//! one researcher with many requests cannot starve another with one. A request is
//! refused (429, `busy`) only when
//!
//! * the queue already holds `max_queued` waiting requests (server-wide), or
//! * its researcher already has `max_queued_per_researcher` waiting, or
//! * no worker came free for it within `max_wait`.
//!
//! A waiting request whose client goes away (its future is dropped) leaves the queue;
//! one granted a worker at that moment hands it straight on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::Metrics;

/// The queue's bounds (from `dhub serve --workers --per-researcher --queue
/// --queue-per-researcher --queue-wait`).
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Requests holding a worker at once (the worker pool's size).
    pub workers: usize,
    /// Requests of one researcher holding a worker at once.
    pub per_researcher: usize,
    /// Requests waiting at once, server-wide (0: none wait, a request that cannot start
    /// at once is refused).
    pub max_queued: usize,
    /// Requests of one researcher waiting at once.
    pub max_queued_per_researcher: usize,
    /// The longest a request waits for a worker.
    pub max_wait: Duration,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The queue is full, server-wide.
    QueueFull(usize),
    /// The researcher's own requests fill their share of it.
    ResearcherQueueFull {
        /// The researcher's requests running.
        running: usize,
        /// The researcher's requests waiting.
        waiting: usize,
    },
    /// No worker came free within the wait.
    Waited(Duration),
}

#[derive(Default)]
struct Person {
    running: usize,
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
}

#[derive(Default)]
struct State {
    running: usize,
    queued: usize,
    next_id: u64,
    people: HashMap<String, Person>,
    /// Researchers with requests waiting, in turn order.
    turn: VecDeque<String>,
}

struct Inner {
    config: QueueConfig,
    state: Mutex<State>,
    metrics: Arc<Metrics>,
}

/// The admission queue.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A worker slot held by one request; released when dropped.
pub struct Permit {
    inner: Arc<Inner>,
    who: String,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.inner.release(&self.who);
    }
}

/// A request waiting in the queue; leaves it (or hands on a slot granted meanwhile) if
/// dropped before it is admitted.
struct Waiting {
    inner: Arc<Inner>,
    who: String,
    id: u64,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            let granted = {
                let mut st = self.inner.lock();
                !self.inner.withdraw(&mut st, &self.who, self.id)
            };
            if granted {
                self.inner.release(&self.who);
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes waiter `id` of `who` out of the queue: `true` if it was still waiting,
    /// `false` if it had been granted a slot already.
    fn withdraw(&self, st: &mut State, who: &str, id: u64) -> bool {
        let Some(p) = st.people.get_mut(who) else {
            return false;
        };
        let Some(i) = p.waiting.iter().position(|(x, _)| *x == id) else {
            return false;
        };
        p.waiting.remove(i);
        let emptied = p.waiting.is_empty();
        let idle = emptied && p.running == 0;
        st.queued -= 1;
        if emptied {
            st.turn.retain(|w| w != who);
        }
        if idle {
            st.people.remove(who);
        }
        self.metrics.set_queue_waiting(st.queued);
        true
    }

    fn release(&self, who: &str) {
        let mut st = self.lock();
        st.running = st.running.saturating_sub(1);
        if let Some(p) = st.people.get_mut(who) {
            p.running = p.running.saturating_sub(1);
            if p.running == 0 && p.waiting.is_empty() {
                st.people.remove(who);
            }
        }
        self.dispatch(&mut st);
    }

    /// Grants free slots to waiting requests, one researcher at a time in turn.
    fn dispatch(&self, st: &mut State) {
        let c = &self.config;
        let mut skipped = 0;
        while st.running < c.workers && skipped < st.turn.len() {
            let Some(who) = st.turn.pop_front() else {
                break;
            };
            let Some(p) = st.people.get_mut(&who) else {
                continue;
            };
            if p.running >= c.per_researcher {
                // at their own cap: their turn passes
                st.turn.push_back(who);
                skipped += 1;
                continue;
            }
            let Some((_, tx)) = p.waiting.pop_front() else {
                continue;
            };
            // the receiver lives as long as its `Waiting`, which withdraws under this
            // lock before it goes: the send cannot fail, but a failure must not leak
            // the slot
            let sent = tx.send(()).is_ok();
            if sent {
                p.running += 1;
            }
            let more = !p.waiting.is_empty();
            let idle = !more && p.running == 0;
            st.queued -= 1;
            if sent {
                st.running += 1;
            }
            if more {
                st.turn.push_back(who);
            } else if idle {
                st.people.remove(&who);
            }
            skipped = 0;
        }
        self.metrics.set_queue_waiting(st.queued);
    }
}

impl Admission {
    /// An empty queue with these bounds; its length is reported to `metrics`.
    pub fn new(config: QueueConfig, metrics: Arc<Metrics>) -> Self {
        let config = QueueConfig {
            workers: config.workers.max(1),
            per_researcher: config.per_researcher.max(1),
            ..config
        };
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State::default()),
                metrics,
            }),
        }
    }

    /// The bounds.
    pub fn config(&self) -> QueueConfig {
        self.inner.config
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.inner.lock().queued
    }

    /// A worker slot for one request of `who`: at once when one is free and `who` is
    /// below their cap, else after waiting their turn, within the queue's bounds.
    pub async fn acquire(&self, who: &str) -> Result<Permit, Refusal> {
        let c = self.inner.config;
        let (id, rx) = {
            let mut st = self.inner.lock();
            let st = &mut *st;
            let free = st.running < c.workers;
            let p = st.people.entry(who.to_owned()).or_default();
            // a free slot with waiters left means every waiter is at their own cap
            // (dispatch grants the rest at once), so starting now passes nobody
            if free && p.running < c.per_researcher && p.waiting.is_empty() {
                p.running += 1;
                st.running += 1;
                return Ok(Permit {
                    inner: self.inner.clone(),
                    who: who.to_owned(),
                });
            }
            let (running, waiting) = (p.running, p.waiting.len());
            let refusal = if st.queued >= c.max_queued {
                Some(Refusal::QueueFull(st.queued))
            } else if waiting >= c.max_queued_per_researcher {
                Some(Refusal::ResearcherQueueFull { running, waiting })
            } else {
                None
            };
            if let Some(r) = refusal {
                if running == 0 && waiting == 0 {
                    st.people.remove(who);
                }
                return Err(r);
            }
            let id = st.next_id;
            st.next_id += 1;
            let (tx, rx) = oneshot::channel();
            p.waiting.push_back((id, tx));
            if waiting == 0 {
                st.turn.push_back(who.to_owned());
            }
            st.queued += 1;
            self.inner.metrics.set_queue_waiting(st.queued);
            (id, rx)
        };
        let mut w = Waiting {
            inner: self.inner.clone(),
            who: who.to_owned(),
            id,
            done: false,
        };
        let granted = match tokio::time::timeout(c.max_wait, rx).await {
            Ok(Ok(())) => true,
            // the sender went without a grant (cannot happen: see dispatch), or the
            // wait ran out: leave the queue, unless a slot was granted meanwhile
            Ok(Err(_)) | Err(_) => {
                let mut st = self.inner.lock();
                !self.inner.withdraw(&mut st, who, id)
            }
        };
        w.done = true;
        if granted {
            Ok(Permit {
                inner: self.inner.clone(),
                who: who.to_owned(),
            })
        } else {
            Err(Refusal::Waited(c.max_wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(workers: usize, per: usize, max: usize, per_q: usize, wait_ms: u64) -> Admission {
        Admission::new(
            QueueConfig {
                workers,
                per_researcher: per,
                max_queued: max,
                max_queued_per_researcher: per_q,
                max_wait: Duration::from_millis(wait_ms),
            },
            Arc::new(Metrics::default()),
        )
    }

    #[tokio::test]
    async fn waiting_requests_are_served_in_turn_across_researchers() {
        let q = queue(1, 1, 100, 100, 10_000);
        let first = q.acquire("a").await.unwrap();
        // a queues three, then b and c one each
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for who in ["a", "a", "a", "b", "c"] {
            let q2 = q.clone();
            let order = order.clone();
            handles.push(tokio::spawn(async move {
                let p = q2.acquire(who).await.unwrap();
                order.lock().unwrap().push(who);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(p);
            }));
            // queue in this order
            while q.waiting() < handles.len() {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(q.waiting(), 5);
        drop(first);
        for h in handles {
            h.await.unwrap();
        }
        // round robin: a's second request waits for b's and c's first
        assert_eq!(*order.lock().unwrap(), ["a", "b", "c", "a", "a"]);
        assert_eq!(q.waiting(), 0);
        assert!(q.inner.lock().people.is_empty());
        assert_eq!(q.inner.lock().running, 0);
    }

    #[tokio::test]
    async fn bounds_refuse_and_the_wait_runs_out() {
        let q = queue(1, 1, 2, 1, 200);
        let held = q.acquire("a").await.unwrap();
        let q2 = q.clone();
        let w1 = tokio::spawn(async move { q2.acquire("b").await.map(drop) });
        while q.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        // b's own share of the queue is full
        assert!(matches!(
            q.acquire("b").await,
            Err(Refusal::ResearcherQueueFull {
                running: 0,
                waiting: 1
            })
        ));
        let q3 = q.clone();
        let w2 = tokio::spawn(async move { q3.acquire("c").await.map(drop) });
        while q.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        // the whole queue is full
        assert_eq!(q.acquire("d").await.unwrap_err(), Refusal::QueueFull(2));
        // nobody releases: both waits run out
        assert!(matches!(w1.await.unwrap(), Err(Refusal::Waited(_))));
        assert!(matches!(w2.await.unwrap(), Err(Refusal::Waited(_))));
        assert_eq!(q.waiting(), 0);
        drop(held);
        // and the slot is free again
        drop(q.acquire("d").await.unwrap());
        assert!(q.inner.lock().people.is_empty());
    }

    #[tokio::test]
    async fn a_request_that_goes_away_leaves_the_queue_and_frees_its_slot() {
        let q = queue(1, 1, 10, 10, 10_000);
        let held = q.acquire("a").await.unwrap();
        let q2 = q.clone();
        let gone = tokio::spawn(async move { q2.acquire("b").await.map(drop) });
        while q.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        assert_eq!(q.waiting(), 0);
        drop(held);
        assert_eq!(q.inner.lock().running, 0);
        // a zero-length queue refuses whatever cannot start at once
        let q = queue(1, 1, 0, 10, 10_000);
        let _held = q.acquire("a").await.unwrap();
        assert_eq!(q.acquire("b").await.unwrap_err(), Refusal::QueueFull(0));
    }
}
