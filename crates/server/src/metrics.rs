//! Prometheus counters for `/metrics` (no values, no SQL, no names).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets, seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    queries: Mutex<BTreeMap<&'static str, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    auth_failures: AtomicU64,
    queue_waiting: AtomicU64,
    flight_answers_held: AtomicU64,
    flight_answer_bytes_held: AtomicU64,
}

impl Metrics {
    /// Counts one query by outcome (`ok` or an error code) and its latency.
    pub fn count_query(&self, outcome: &'static str, took: Duration) {
        *self
            .queries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(outcome)
            .or_default() += 1;
        let s = took.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            if s <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts a refused token.
    pub fn count_auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the number of queries waiting for a worker.
    pub fn set_queue_waiting(&self, n: usize) {
        self.queue_waiting.store(n as u64, Ordering::Relaxed);
    }

    /// Sets the number and size of Flight SQL answers held for their `DoGet`.
    pub fn set_flight_held(&self, answers: usize, bytes: usize) {
        self.flight_answers_held
            .store(answers as u64, Ordering::Relaxed);
        self.flight_answer_bytes_held
            .store(bytes as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, slots_free: usize) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "# HELP dhub_queries_total Queries by outcome.");
        let _ = writeln!(s, "# TYPE dhub_queries_total counter");
        for (k, v) in self
            .queries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(s, "dhub_queries_total{{outcome=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP dhub_query_duration_seconds Query latency, including the audit write."
        );
        let _ = writeln!(s, "# TYPE dhub_query_duration_seconds histogram");
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                s,
                "dhub_query_duration_seconds_bucket{{le=\"{le}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "dhub_query_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "dhub_query_duration_seconds_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "dhub_query_duration_seconds_count {count}");
        let _ = writeln!(
            s,
            "# HELP dhub_auth_failures_total Requests with a missing, unknown, expired or revoked token."
        );
        let _ = writeln!(s, "# TYPE dhub_auth_failures_total counter");
        let _ = writeln!(
            s,
            "dhub_auth_failures_total {}",
            self.auth_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# HELP dhub_query_slots_free Query workers free now.");
        let _ = writeln!(s, "# TYPE dhub_query_slots_free gauge");
        let _ = writeln!(s, "dhub_query_slots_free {slots_free}");
        let _ = writeln!(
            s,
            "# HELP dhub_query_queue_waiting Queries waiting for a query worker."
        );
        let _ = writeln!(s, "# TYPE dhub_query_queue_waiting gauge");
        let _ = writeln!(
            s,
            "dhub_query_queue_waiting {}",
            self.queue_waiting.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP dhub_flight_answers_held Flight SQL answers held for their DoGet (statements and prepared statements)."
        );
        let _ = writeln!(s, "# TYPE dhub_flight_answers_held gauge");
        let _ = writeln!(
            s,
            "dhub_flight_answers_held {}",
            self.flight_answers_held.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP dhub_flight_answer_bytes_held Bytes of the Flight SQL answers held."
        );
        let _ = writeln!(s, "# TYPE dhub_flight_answer_bytes_held gauge");
        let _ = writeln!(
            s,
            "dhub_flight_answer_bytes_held {}",
            self.flight_answer_bytes_held.load(Ordering::Relaxed)
        );
        s
    }
}
