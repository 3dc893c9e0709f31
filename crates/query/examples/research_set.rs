//! The research query set of BENCHMARKS.md (issues 5 and 6) run in process through
//! [`QueryService::run`] (no HTTP, no worker process), record mode and aggregate mode,
//! median of N runs: isolates the engine and the disclosure-control rewrite from the
//! transport.
//!
//! ```sh
//! cargo run --release -p dhub-query --example research_set -- STORE_URL RELEASE [RUNS] [VIEWS_DIR]
//! ```
//!
//! With `EXPLAIN=1` it also runs each query (as rewritten for aggregate mode, or as
//! written with `RECORD=1`) in a plain session whose settings come from `DATAFUSION_*`
//! variables, and prints the time and `EXPLAIN ANALYZE`: for trying engine settings.
//! `EXTRA_SQL='SELECT …'` adds one query of your own to the set.

#![allow(clippy::print_stdout)] // a benchmark prints its table

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use datafusion::prelude::SessionContext;
use dhub_govern::{Approval, Mode, OutputPolicy};
use dhub_query::{Limits, QueryRequest, QueryService, Scope, load_views, sdc};
use dhub_store::Store;

/// The query set, shared with scripts/bench/research_queries.py.
const QUERIES: &str = include_str!("../../../scripts/bench/research_queries.json");

#[derive(serde::Deserialize)]
struct Query {
    name: String,
    sql: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(release)) = (args.first(), args.get(1)) else {
        return Err("usage: research_set STORE_URL RELEASE [RUNS] [VIEWS_DIR]".into());
    };
    let runs: usize = args.get(2).map_or(Ok(5), |s| s.parse())?;
    let views = load_views(Path::new(args.get(3).map_or("sql/views", String::as_str)))?;
    let store = Store::open(url)?;
    let rel = store.release(release).await?;
    let service = QueryService::new(store.clone(), views, Limits::default());
    let record = OutputPolicy {
        mode: Mode::Record,
        approval: Some(Approval {
            by: "bench".into(),
            reason: "benchmark".into(),
        }),
        ..OutputPolicy::default()
    };
    let scope = |policy: OutputPolicy| Scope {
        project: "bench".into(),
        release: rel.name.clone(),
        tables: rel.tables.clone(),
        policy,
    };
    let (rec, agg) = (scope(record), scope(OutputPolicy::default()));
    println!("| query | record ms | aggregate ms | aggregate / record |");
    println!("| --- | ---: | ---: | ---: |");
    let mut queries: Vec<Query> = serde_json::from_str(QUERIES)?;
    if let Ok(sql) = std::env::var("EXTRA_SQL") {
        queries.push(Query {
            name: "EXTRA_SQL".into(),
            sql,
        });
    }
    for Query { name, sql } in &queries {
        let mut times = [Vec::new(), Vec::new()];
        for (i, s) in [&rec, &agg].into_iter().enumerate() {
            let req = QueryRequest {
                id: "bench".into(),
                sql: sql.clone(),
                scope: s.clone(),
            };
            service.run(&req).await?; // warm-up
            for _ in 0..runs {
                let t = Instant::now();
                service.run(&req).await?;
                times[i].push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let [r, a] = times.map(median);
        println!("| {name} | {r:.1} | {a:.1} | {:.2} |", a / r);
        if std::env::var_os("EXPLAIN").is_some() {
            let s = if std::env::var_os("RECORD").is_some() {
                &rec
            } else {
                &agg
            };
            explain(&store, s, sql, runs).await?;
        }
    }
    Ok(())
}

/// `EXPLAIN ANALYZE` of the aggregate-mode rewrite of `sql` (tables only, no views).
async fn explain(
    store: &Store,
    scope: &Scope,
    sql: &str,
    runs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    // DATAFUSION_* variables override (e.g. DATAFUSION_EXECUTION_TARGET_PARTITIONS=1)
    let mut config = datafusion::prelude::SessionConfig::from_env()?;
    if std::env::var_os("DATAFUSION_EXECUTION_TARGET_PARTITIONS").is_none() {
        config = config.with_target_partitions(2);
    }
    let ctx = SessionContext::new_with_config(config);
    let mut persons = HashMap::new();
    for (name, version) in &scope.tables {
        let Some(t) = store.table(name, Some(*version)).await? else {
            continue;
        };
        t.update_datafusion_session(&ctx.state())?;
        ctx.register_table(name.as_str(), t.table_provider().await?)?;
        let tag = store.commit_tag(name, *version).await?;
        persons.insert(name.clone(), tag.and_then(|t| t.person_column));
    }
    let Ok(df) = ctx.sql(sql).await else {
        return Ok(());
    };
    let (plan, _, _) = sdc::apply(df.logical_plan().clone(), &scope.policy, &persons)?;
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        ctx.execute_logical_plan(plan.clone())
            .await?
            .collect()
            .await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("in a session from the environment: {:.1} ms", median(times));
    let out = ctx.execute_logical_plan(plan).await?.explain(false, true)?;
    out.show().await?;
    Ok(())
}
