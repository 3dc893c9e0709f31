//! The partner side of the governed path: listing a project's released extracts and
//! opening one of their files (byte ranges supported), behind `GET /v1/extracts` and
//! `GET /v1/extracts/{id}/files/{name}`. A partner sees only their project's released
//! extracts; anything else is 404, a revoked extract is 403, and every list and
//! download (or refusal) is audited before the response. The governance store is read
//! and written on the blocking thread pool.

use dhub_extract::files::{ByteRange, Download, DownloadRefusal};
use dhub_extract::{Manifest, files};
use dhub_govern::{AuditEvent, ExtractRecord, ExtractStatus, GovernError, Principal};
use serde_json::{Value, json};

use crate::error::{ApiError, Kind};
use crate::governed::{Caller, Governed};

fn not_found() -> ApiError {
    ApiError::not_found("no such extract or file for your project; GET /v1/extracts lists yours")
}

fn manifest_of(x: &ExtractRecord) -> Result<Manifest, ApiError> {
    let text = x.manifest.as_deref().ok_or_else(|| {
        ApiError::internal(format!("extract {} is released without a manifest", x.id))
    })?;
    serde_json::from_str(text)
        .map_err(|e| ApiError::internal(format!("manifest of extract {}: {e}", x.id)))
}

/// What a download request turned into.
#[derive(Debug)]
pub enum Fetched {
    /// The bytes to send.
    Ok(Download, String),
    /// The range is outside the file (its size).
    Unsatisfiable(u64),
}

impl Governed {
    /// The partner's project's released extracts (audited as `extract.list`).
    pub async fn list_extracts(&self, p: &Principal, caller: &Caller) -> Result<Value, ApiError> {
        let project = p.project.id.clone();
        let all = self
            .with_govern(move |g| Ok(g.extracts(Some(&project))?))
            .await?;
        let mut out = Vec::new();
        for x in all.iter().filter(|x| x.status == ExtractStatus::Released) {
            let m = manifest_of(x)?;
            out.push(json!({
                "id": x.id,
                "name": x.name,
                "recipient": x.recipient,
                "released": x.released,
                "release": m.release,
                "format": m.file_format,
                "rows": m.rows,
                "k": m.k,
                "k_achieved": m.k_achieved,
                "files": m.files,
                "manifest": dhub_extract::manifest::MANIFEST_FILE,
                "signature": dhub_extract::manifest::SIGNATURE_FILE,
                "download": format!("/v1/extracts/{}/files/{{name}}", x.id),
            }));
        }
        let event = AuditEvent::ExtractList {
            partner: p.researcher.name.clone(),
            project: p.project.id.clone(),
            client: caller.addr.clone(),
            extracts: out.len() as u64,
        };
        self.audit(event, &p.researcher.name).await?;
        Ok(json!({
            "partner": p.researcher.name,
            "project": p.project.id,
            "extracts": out,
        }))
    }

    /// Opens one file of a released extract of the partner's project, auditing the
    /// download (or its refusal) as `extract.download` first.
    pub async fn fetch_extract_file(
        &self,
        p: &Principal,
        id: &str,
        name: &str,
        range: Option<&str>,
        caller: &Caller,
    ) -> Result<Fetched, ApiError> {
        let range_asked = range.and_then(ByteRange::parse);
        let result = self.fetch(p, id, name, range_asked).await;
        let (outcome, bytes) = match &result {
            Ok(Fetched::Ok(d, _)) => ("ok", Some(d.range.end - d.range.start)),
            Ok(Fetched::Unsatisfiable(_)) => ("range_not_satisfiable", None),
            Err(e) => (e.outcome(), None),
        };
        let event = AuditEvent::ExtractDownload {
            partner: p.researcher.name.clone(),
            project: p.project.id.clone(),
            extract: id.to_owned(),
            file: name.to_owned(),
            client: caller.addr.clone(),
            range: range.map(|r| r.chars().take(64).collect::<String>()),
            outcome: outcome.to_owned(),
            bytes,
        };
        self.audit(event, &p.researcher.name).await?;
        result
    }

    async fn fetch(
        &self,
        p: &Principal,
        id: &str,
        name: &str,
        range: Option<ByteRange>,
    ) -> Result<Fetched, ApiError> {
        let key = id.to_owned();
        let x = match self.with_govern(move |g| Ok(g.extract(&key))).await? {
            Ok(x) => x,
            // an id that names nothing is the same 404 as another project's extract
            Err(GovernError::NotFound { .. } | GovernError::BadName { .. }) => {
                return Err(not_found());
            }
            Err(e) => return Err(e.into()),
        };
        // another project's extract does not exist, as far as this partner can tell
        if x.project != p.project.id {
            return Err(not_found());
        }
        match x.status {
            ExtractStatus::Released => {}
            ExtractStatus::Revoked if x.released.is_some() => {
                return Err(ApiError::new(
                    Kind::Forbidden,
                    "revoked",
                    format!(
                        "extract {id} was revoked by the data manager and can no longer be downloaded"
                    ),
                ));
            }
            _ => return Err(not_found()),
        }
        let manifest = manifest_of(&x)?;
        let content_type = match name.rsplit('.').next() {
            Some("parquet") => "application/vnd.apache.parquet",
            Some("csv") => "text/csv; charset=utf-8",
            Some("json") => "application/json",
            _ => "application/octet-stream",
        };
        match files::open(&self.extracts, &manifest, name, range).await? {
            Ok(d) => Ok(Fetched::Ok(d, content_type.to_owned())),
            Err(DownloadRefusal::NotFound) => Err(not_found()),
            Err(DownloadRefusal::Unsatisfiable(size)) => Ok(Fetched::Unsatisfiable(size)),
        }
    }
}
