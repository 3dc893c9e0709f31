//! Partner downloads of released extracts: `GET /v1/extracts` and
//! `GET /v1/extracts/{id}/files/{name}` (byte ranges supported). A partner sees only
//! their project's released extracts; anything else is 404, a revoked extract is 403,
//! and every list and download (or refusal) is audited before the response.

use dhub_extract::files::{ByteRange, Download, DownloadRefusal};
use dhub_extract::{Manifest, files};
use dhub_govern::{ExtractRecord, ExtractStatus, Principal};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::{Caller, Governed};

fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such extract or file for your project; GET /v1/extracts lists yours",
    )
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
    pub fn list_extracts(&self, p: &Principal, caller: &Caller) -> Result<Value, ApiError> {
        let all = self
            .govern
            .extracts(Some(&p.project.id))
            .map_err(|e| ApiError::internal(e.to_string()))?;
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
        let mut m = Map::new();
        m.insert("partner".into(), json!(p.researcher.name));
        m.insert("project".into(), json!(p.project.id));
        m.insert("client".into(), json!(caller.addr));
        m.insert("extracts".into(), json!(out.len()));
        self.govern
            .audit("extract.list", &p.researcher.name, m)
            .map_err(|e| ApiError::internal(e.to_string()))?;
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
        let mut m = Map::new();
        m.insert("partner".into(), json!(p.researcher.name));
        m.insert("project".into(), json!(p.project.id));
        m.insert("extract".into(), json!(id));
        m.insert("file".into(), json!(name));
        m.insert("client".into(), json!(caller.addr));
        m.insert(
            "range".into(),
            json!(range.map(|r| r.chars().take(64).collect::<String>())),
        );
        match &result {
            Ok(Fetched::Ok(d, _)) => {
                m.insert("outcome".into(), json!("ok"));
                m.insert("bytes".into(), json!(d.range.end - d.range.start));
            }
            Ok(Fetched::Unsatisfiable(_)) => {
                m.insert("outcome".into(), json!("range_not_satisfiable"));
            }
            Err(e) => {
                m.insert("outcome".into(), json!(e.outcome()));
            }
        }
        self.govern
            .audit("extract.download", &p.researcher.name, m)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        result
    }

    async fn fetch(
        &self,
        p: &Principal,
        id: &str,
        name: &str,
        range: Option<ByteRange>,
    ) -> Result<Fetched, ApiError> {
        let x = match self.govern.extract(id) {
            Ok(x) => x,
            Err(dhub_govern::GovernError::NotFound { .. }) => return Err(not_found()),
            Err(dhub_govern::GovernError::BadName { .. }) => return Err(not_found()),
            Err(e) => return Err(ApiError::internal(e.to_string())),
        };
        // another project's extract does not exist, as far as this partner can tell
        if x.project != p.project.id {
            return Err(not_found());
        }
        match x.status {
            ExtractStatus::Released => {}
            ExtractStatus::Revoked if x.released.is_some() => {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
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
        match files::open(&self.extracts, &manifest, name, range).await {
            Ok(Ok(d)) => Ok(Fetched::Ok(d, content_type.to_owned())),
            Ok(Err(DownloadRefusal::NotFound)) => Err(not_found()),
            Ok(Err(DownloadRefusal::Unsatisfiable(size))) => Ok(Fetched::Unsatisfiable(size)),
            Err(e) => Err(ApiError::internal(e.to_string())),
        }
    }
}
