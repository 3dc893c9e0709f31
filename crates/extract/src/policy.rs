//! The hub's policy around an extract run, for every front end (`dhub extract run`
//! today, the web console next): only an approved extract of a project that has not
//! expired is run ([`approved`]), and every run's outcome is recorded in the governance
//! store under the person who ran it ([`run_and_record`]): a success releases the
//! extract (`extract.release`, with the manifest's summary), a failure is audited as
//! `extract.run` with outcome `failed` and the reason, then returned.
//!
//! The front end keeps only its own part: loading the keys and building the query
//! service, progress, and what it prints.

use chrono::{DateTime, Utc};
use dhub_deid::MasterKey;
use dhub_govern::{AuditEvent, ExtractRecord, ExtractReleased, ExtractStatus, Govern, Project};
use dhub_query::{QueryService, Scope};
use dhub_store::{Location, Store};

use crate::error::{ExtractError, Result};
use crate::run::{RunInput, RunOutput, run};
use crate::signing::SigningKey;
use crate::spec::sha256_hex;

/// An extract that may be run now: approved, of a project that has not expired.
#[derive(Debug, Clone)]
pub struct Approved {
    record: ExtractRecord,
    project: Project,
}

impl Approved {
    /// The extract's record.
    pub fn record(&self) -> &ExtractRecord {
        &self.record
    }

    /// Its project.
    pub fn project(&self) -> &Project {
        &self.project
    }
}

/// Checks that extract `id` may be run at `now`: it is approved (not pending, released
/// or revoked) and its project has not expired. Nothing is audited: the request is
/// refused before any work.
pub fn approved(govern: &Govern, id: &str, now: DateTime<Utc>) -> Result<Approved> {
    let record = govern.extract(id)?;
    if record.status != ExtractStatus::Approved {
        return Err(ExtractError::NotApproved {
            id: id.to_owned(),
            status: record.status,
        });
    }
    let project = govern.project(&record.project)?;
    if project.expired(now) {
        return Err(ExtractError::ProjectExpired {
            project: project.id,
        });
    }
    Ok(Approved { record, project })
}

/// A project's scope: its release's versions of its granted tables.
pub async fn project_scope(store: &Store, project: &Project) -> Result<Scope> {
    let release =
        store
            .release(&project.release)
            .await
            .map_err(|source| ExtractError::Release {
                release: project.release.clone(),
                project: project.id.clone(),
                source: Box::new(source),
            })?;
    Ok(Scope::for_project(project, &release))
}

/// What a run reads and writes besides the governance store.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// A query service over the research store (its limits apply).
    pub service: &'a QueryService,
    /// The research store (for the project's release).
    pub store: &'a Store,
    /// The master key (research pseudonyms were made under it).
    pub master: &'a MasterKey,
    /// The signing key of manifests.
    pub signer: &'a SigningKey,
    /// The extracts area.
    pub out: &'a Location,
}

/// Runs an [`Approved`] extract (see [`crate::run`]) and records the outcome under
/// `actor`: released with the manifest's summary, or `extract.run` failed with the
/// reason (the error's whole chain) before the error is returned. When the failure
/// cannot be audited either, that is the error ([`ExtractError::FailureNotAudited`]).
/// `on_rows(written, total)` reports progress.
pub async fn run_and_record(
    govern: &Govern,
    approved: &Approved,
    ctx: RunContext<'_>,
    actor: &str,
    on_rows: &(dyn Fn(u64, u64) + Sync),
) -> Result<RunOutput> {
    let x = &approved.record;
    let result = async {
        let scope = project_scope(ctx.store, &approved.project).await?;
        run(
            RunInput {
                record: x,
                service: ctx.service,
                scope,
                master: ctx.master,
                signer: ctx.signer,
                out: ctx.out,
            },
            on_rows,
        )
        .await
    }
    .await;
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let reason = chain(&e);
            let event = AuditEvent::ExtractRun {
                extract: x.id.clone(),
                project: x.project.clone(),
                outcome: "failed".to_owned(),
                reason: reason.clone(),
            };
            return Err(match blocking(|| govern.audit(&event, actor)) {
                Ok(_) => e,
                Err(source) => ExtractError::FailureNotAudited { reason, source },
            });
        }
    };
    let m = &out.manifest;
    let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
    let released = ExtractReleased {
        rows: m.rows,
        files: m.files.len() as u64,
        bytes,
        k: m.k,
        k_achieved: m.k_achieved,
        recipient: m.recipient.clone(),
        manifest_sha256: sha256_hex(out.manifest_json.as_bytes()),
    };
    blocking(|| govern.release_extract(&x.id, &out.location, &out.manifest_json, actor, released))?;
    Ok(out)
}

/// An error and its sources, joined by `: ` (what the audit entry's `reason` holds).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

/// Runs a short governance-store transaction from async code without stalling the
/// other tasks of a multi-threaded runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_holds_the_whole_chain() {
        let e = ExtractError::FailureNotAudited {
            reason: "boom".into(),
            source: dhub_govern::GovernError::Invalid("disk full".into()),
        };
        let reason = chain(&e);
        assert!(
            reason.starts_with("the extract run failed (boom)"),
            "{reason}"
        );
        assert!(reason.ends_with(": disk full"), "{reason}");
    }
}
