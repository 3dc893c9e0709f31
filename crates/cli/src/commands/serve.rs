//! `dhub serve` and the hidden `dhub query-worker` it starts.

use std::time::Duration;

use anyhow::Context;
use dhub_query::{Limits, WorkerCommand, WorkerConfig};
use dhub_server::ServerConfig;

use crate::args::{Global, ServeArgs, ServeLimits};

impl ServeLimits {
    /// The limits of each query (at least 1 s, 16 MiB of engine memory, 1 row, 1 MiB).
    fn query(&self) -> Limits {
        Limits {
            time: Duration::from_secs(self.time_limit.max(1)),
            memory_bytes: self.memory_limit.max(16) << 20,
            max_rows: self.max_rows.max(1),
            max_bytes: self.max_bytes.max(1) << 20,
            guard: Default::default(),
        }
    }

    /// The connection limits of both listeners.
    fn net(&self) -> anyhow::Result<dhub_server::NetLimits> {
        Ok(dhub_server::NetLimits {
            max_connections: self.max_connections.max(1),
            max_connections_per_address: self.max_connections_per_address.max(1),
            header_timeout: Duration::try_from_secs_f64(self.header_timeout)
                .ok()
                .filter(|d| !d.is_zero())
                .context("--header-timeout: give a number of seconds above 0")?,
            idle_timeout: Duration::try_from_secs_f64(self.idle_timeout)
                .ok()
                .filter(|d| !d.is_zero())
                .context("--idle-timeout: give a number of seconds above 0")?,
            auth_failures: self.auth_failures.max(1),
            auth_window: Duration::from_secs(self.auth_window.max(1)),
        })
    }
}

pub fn run(global: &Global, a: &ServeArgs) -> anyhow::Result<()> {
    let l = &a.limits;
    let limits = l.query();
    let store = dhub_store::Store::open(&global.store)?;
    // the workers' confinement (dhub_query::sandbox): decided here, enforced by each
    // worker before it reads a request, reported in the start-up log and /healthz
    let cpu_seconds = l
        .worker_cpu_limit
        .unwrap_or_else(|| limits.time.as_secs().saturating_mul(4))
        .max(1);
    let (landlock, sandbox) =
        dhub_query::sandbox::plan(a.worker_sandbox.into(), store.url().as_str(), cpu_seconds)
            .map_err(|e| anyhow::anyhow!(e))?;
    tracing::info!(sandbox = %sandbox.summary(), "query workers");
    eprintln!("dhub serve: query workers: {}", sandbox.summary());
    let worker = WorkerConfig {
        store: store.url().to_string(),
        views: std::path::absolute(&a.views.dir).unwrap_or_else(|_| a.views.dir.clone()),
        limits,
        address_space_bytes: l.worker_memory << 20,
        landlock,
        cpu_seconds,
    };
    let exe = std::env::current_exe().context("finding the dhub executable for query workers")?;
    let config = ServerConfig {
        listen: a.listen,
        flight_listen: a.flight_listen,
        tls: a.tls_cert.clone().zip(a.tls_key.clone()),
        store: store.url().to_string(),
        extracts: global.extracts.clone(),
        govern: global.govern.clone(),
        worker: WorkerCommand {
            exe,
            args: vec![
                "query-worker".into(),
                "--config".into(),
                serde_json::to_string(&worker).context("worker settings")?,
            ],
            sandbox,
        },
        workers: l.workers.max(1),
        per_researcher: l.per_researcher.max(1),
        queue: l.queue,
        queue_per_researcher: l.queue_per_researcher.max(1),
        queue_wait: Duration::try_from_secs_f64(l.queue_wait)
            .context("--queue-wait: give a number of seconds, 0 or more")?,
        flight_answer_ttl: Duration::from_secs(l.flight_answer_ttl.max(1)),
        time_limit: limits.time,
        ready_file: a.ready_file.clone(),
        net: l.net()?,
        metrics_token: a.metrics_token.clone().filter(|t| !t.trim().is_empty()),
    };
    super::runtime()?
        .block_on(dhub_server::serve(config))
        .map_err(|e| {
            if e.message == e.detail {
                anyhow::anyhow!("{}", e.message)
            } else {
                anyhow::anyhow!("{}: {}", e.message, e.detail)
            }
        })
}

pub fn worker(config: &str) -> anyhow::Result<()> {
    let c: WorkerConfig =
        serde_json::from_str(config).context("the worker settings are not valid")?;
    dhub_query::worker_main(c).map_err(|e| anyhow::anyhow!("query worker: {e}"))
}
