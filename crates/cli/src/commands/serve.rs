//! `dhub serve` and the hidden `dhub query-worker` it starts.

use std::time::Duration;

use anyhow::Context;
use dhub_query::{Limits, WorkerCommand, WorkerConfig};
use dhub_server::ServerConfig;

use crate::args::{Global, ServeArgs};

pub fn run(global: &Global, a: &ServeArgs) -> anyhow::Result<()> {
    let limits = Limits {
        time: Duration::from_secs(a.time_limit.max(1)),
        memory_bytes: a.memory_limit.max(16) << 20,
        max_rows: a.max_rows.max(1),
        max_bytes: a.max_bytes.max(1) << 20,
        guard: Default::default(),
    };
    let store = dhub_store::Store::open(&global.store)?;
    // the workers' confinement (dhub_query::sandbox): decided here, enforced by each
    // worker before it reads a request, reported in the start-up log and /healthz
    let cpu_seconds = a
        .worker_cpu_limit
        .unwrap_or_else(|| limits.time.as_secs().saturating_mul(4))
        .max(1);
    let (landlock, sandbox) =
        dhub_query::sandbox::plan(a.worker_sandbox, store.url().as_str(), cpu_seconds)
            .map_err(|e| anyhow::anyhow!(e))?;
    tracing::info!(sandbox = %sandbox.summary(), "query workers");
    eprintln!("dhub serve: query workers: {}", sandbox.summary());
    let worker = WorkerConfig {
        store: store.url().to_string(),
        views: std::path::absolute(&a.views).unwrap_or_else(|_| a.views.clone()),
        limits,
        address_space_bytes: a.worker_memory << 20,
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
        workers: a.workers.max(1),
        per_researcher: a.per_researcher.max(1),
        queue: a.queue,
        queue_per_researcher: a.queue_per_researcher.max(1),
        queue_wait: Duration::try_from_secs_f64(a.queue_wait)
            .context("--queue-wait: give a number of seconds, 0 or more")?,
        flight_answer_ttl: Duration::from_secs(a.flight_answer_ttl.max(1)),
        time_limit: limits.time,
        ready_file: a.ready_file.clone(),
        net: dhub_server::NetLimits {
            max_connections: a.max_connections.max(1),
            max_connections_per_address: a.max_connections_per_address.max(1),
            header_timeout: Duration::try_from_secs_f64(a.header_timeout)
                .ok()
                .filter(|d| !d.is_zero())
                .context("--header-timeout: give a number of seconds above 0")?,
            idle_timeout: Duration::try_from_secs_f64(a.idle_timeout)
                .ok()
                .filter(|d| !d.is_zero())
                .context("--idle-timeout: give a number of seconds above 0")?,
            auth_failures: a.auth_failures.max(1),
            auth_window: Duration::from_secs(a.auth_window.max(1)),
        },
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
