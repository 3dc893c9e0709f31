//! `dhub extract`: partner extracts from request to verification. The workflow records
//! live in the governance store; the work, and the policy around a run (which extract
//! may run, how its outcome is recorded and audited), in `dhub-extract`. This module
//! keeps argument handling, keys, progress and printing.

use std::time::{Duration, Instant};

use anyhow::Context;
use dhub_extract::{ExtractSpec, SigningKey, sha256_hex};
use dhub_govern::NewExtract;
use dhub_query::{Limits, QueryService, load_views};
use serde_json::json;

use super::govern::{actor, open};
use crate::args::{ExtractCommand, Global};
use crate::output::{human_bytes, peak_rss_bytes, progress_bar};

fn service(
    global: &Global,
    views: &std::path::Path,
    memory_mib: usize,
) -> anyhow::Result<(dhub_store::Store, QueryService)> {
    let store = dhub_store::Store::open(&global.store)?;
    let views = load_views(views)?;
    let limits = Limits {
        time: Duration::from_secs(24 * 3600),
        memory_bytes: memory_mib.max(16) << 20,
        max_rows: usize::MAX,
        max_bytes: usize::MAX,
        guard: Default::default(),
    };
    Ok((store.clone(), QueryService::new(store, views, limits)))
}

pub fn run(global: &Global, cmd: ExtractCommand) -> anyhow::Result<()> {
    match cmd {
        ExtractCommand::Request { spec, by, views } => {
            let loaded = ExtractSpec::load(&spec)?;
            let g = open(global)?;
            let project = g.project(&loaded.spec.project)?;
            let (store, service) = service(global, &views.dir, 512)?;
            let rt = super::runtime()?;
            let schema = rt.block_on(async {
                let scope = dhub_extract::project_scope(&store, &project).await?;
                dhub_extract::check_request(&service, &scope, &loaded)
                    .await
                    .map_err(anyhow::Error::from)
            })?;
            let x = g.request_extract(
                &NewExtract {
                    name: loaded.name.clone(),
                    project: project.id.clone(),
                    recipient: loaded.spec.recipient.clone(),
                    spec: loaded.spec_text.clone(),
                    sql: loaded.sql.clone(),
                    spec_sha256: sha256_hex(loaded.spec_text.as_bytes()),
                    sql_sha256: sha256_hex(loaded.sql.as_bytes()),
                },
                &by,
            )?;
            eprintln!(
                "extract {} of `{}` requested by {by} for {} (project {}, {} columns, k = {}); another person approves it with `dhub extract approve {} --by NAME`",
                x.id,
                x.name,
                x.recipient,
                x.project,
                schema.fields().len(),
                loaded.spec.k,
                x.id
            );
            println!("{}", x.id);
        }
        ExtractCommand::Approve { id, by } => {
            let x = open(global)?.approve_extract(&id, &by)?;
            eprintln!(
                "extract {id} approved by {by} (requested by {}); make it with `dhub extract run {id}`",
                x.requested_by
            );
        }
        ExtractCommand::Run {
            id,
            views,
            memory_limit,
            report,
        } => run_extract(global, &id, &views.dir, memory_limit, report.as_deref())?,
        ExtractCommand::Revoke { id, by } => {
            let by = by.unwrap_or_else(actor);
            let x = open(global)?.revoke_extract(&id, &by)?;
            eprintln!(
                "extract {id} revoked by {by}: it can no longer be run or downloaded{}",
                if x.released.is_some() {
                    " (copies already downloaded are outside the hub's control)"
                } else {
                    ""
                }
            );
        }
        ExtractCommand::List { project } => {
            for x in open(global)?.extracts(project.as_deref())? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\trequested by {}\tapproved by {}",
                    x.id,
                    x.status,
                    x.project,
                    x.name,
                    x.recipient,
                    x.requested_by,
                    x.approved_by.as_deref().unwrap_or("-")
                );
            }
        }
        ExtractCommand::Show { id } => {
            let x = open(global)?.extract(&id)?;
            let mut v = serde_json::to_value(&x).context("serialising the extract")?;
            if let Some(m) = x.manifest.as_deref() {
                v["manifest"] = serde_json::from_str(m).unwrap_or(json!(m));
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&v).context("serialising the extract")?
            );
        }
        ExtractCommand::Verify { dir, public_key } => {
            let v = dhub_extract::verify_dir(&dir, &public_key)
                .with_context(|| format!("verifying the extract in {}", dir.display()))?;
            let bytes: u64 = v.manifest.files.iter().map(|f| f.bytes).sum();
            println!(
                "extract {} verified: signature valid; {} file(s), {} rows, {} match the manifest (project {}, recipient {}, k achieved {})",
                v.manifest.extract_id,
                v.manifest.files.len(),
                v.manifest.rows,
                human_bytes(bytes),
                v.manifest.project,
                v.manifest.recipient,
                v.manifest
                    .k_achieved
                    .map_or("-".to_owned(), |k| k.to_string())
            );
            for n in v.unlisted {
                eprintln!(
                    "note: {n} is in the directory but not in the manifest (not part of the extract)"
                );
            }
        }
    }
    Ok(())
}

fn run_extract(
    global: &Global,
    id: &str,
    views: &std::path::Path,
    memory_mib: usize,
    report: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    crate::output::tune_allocator_for_batch_jobs();
    let started = Instant::now();
    let g = open(global)?;
    // the policy (approved, project not expired; every outcome recorded) is dhub-extract's
    let approved = dhub_extract::approved(&g, id, chrono::Utc::now())?;
    let master = super::keys::load(&global.key)?;
    let signer = SigningKey::load(&global.signing_key)?;
    let out = dhub_store::Location::parse(&global.extracts)
        .with_context(|| format!("opening the extracts area {}", global.extracts))?;
    let (store, service) = service(global, views, memory_mib)?;
    let bar = progress_bar(0, &format!("extract {id}"));
    let result = super::runtime()?.block_on(dhub_extract::run_and_record(
        &g,
        &approved,
        dhub_extract::RunContext {
            service: &service,
            store: &store,
            master: &master,
            signer: &signer,
            out: &out,
        },
        &actor(),
        &|written, total| {
            bar.set_length(total);
            bar.set_position(written);
        },
    ));
    bar.finish_and_clear();
    let out = result.with_context(|| format!("running extract {id}"))?;
    let m = &out.manifest;
    let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
    let seconds = started.elapsed().as_secs_f64();
    let rss = peak_rss_bytes();
    eprintln!(
        "extract {id} released: {} rows in {} file(s), {} ({}), k achieved {} (required {}), {:.1} s{}\n  at {}\n  partners of project {} download it from GET /v1/extracts/{id}/files/NAME and check it with `dhub extract verify DIR --public-key $(dhub keys public)`",
        m.rows,
        m.files.len(),
        human_bytes(bytes),
        m.file_format,
        m.k_achieved.map_or("-".to_owned(), |k| k.to_string()),
        m.k,
        seconds,
        rss.map(|r| format!(", peak RSS {}", human_bytes(r)))
            .unwrap_or_default(),
        out.location,
        m.project,
    );
    if let Some(path) = report {
        let r = json!({
            "extract": id,
            "project": m.project,
            "rows": m.rows,
            "files": m.files,
            "bytes": bytes,
            "k_achieved": m.k_achieved,
            "seconds": seconds,
            "peak_rss_bytes": rss,
            "location": out.location,
        });
        dhub_store::private::write_private(
            path,
            &serde_json::to_vec_pretty(&r).context("serialising the report")?,
        )
        .with_context(|| format!("writing the report {}", path.display()))?;
    }
    Ok(())
}
