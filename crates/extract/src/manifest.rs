//! `manifest.json` and its signature `manifest.sig`, and verification of a downloaded
//! extract.
//!
//! The manifest lists every data file with its size and SHA-256, the rows, the schema,
//! the spec and SQL hashes, the release, the key ids, who asked and who approved, and
//! the k achieved. `manifest.sig` is the raw 64-byte Ed25519 signature over the exact
//! bytes of `manifest.json`. A partner checks both with the hub's public key:
//!
//! ```text
//! dhub extract verify ./ext-20261125-1a2b3c4d --public-key <64 hex>
//! ```
//!
//! or with any Ed25519 implementation, e.g. Python's `cryptography`:
//!
//! ```python
//! from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
//! import hashlib, json, pathlib
//! d = pathlib.Path("ext-20261125-1a2b3c4d")
//! manifest = (d / "manifest.json").read_bytes()
//! Ed25519PublicKey.from_public_bytes(bytes.fromhex(PUBLIC_KEY)).verify(
//!     (d / "manifest.sig").read_bytes(), manifest)      # raises InvalidSignature
//! for f in json.loads(manifest)["files"]:
//!     assert hashlib.sha256((d / f["name"]).read_bytes()).hexdigest() == f["sha256"]
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ExtractError, Result};
use crate::signing::{parse_public_key, verify_signature};
use crate::spec::hex;

/// The manifest format tag.
pub const MANIFEST_FORMAT: &str = "dhub-extract/1";
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The signature's file name.
pub const SIGNATURE_FILE: &str = "manifest.sig";

/// One output column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestColumn {
    /// Name.
    pub name: String,
    /// Arrow type, as text.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether it may be null.
    pub nullable: bool,
}

/// One data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name (no directories).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Rows in the file.
    pub rows: u64,
}

/// How the manifest is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureInfo {
    /// Always `Ed25519`.
    pub algorithm: String,
    /// The signing public key, 64 hex characters (check it against the one the hub
    /// gave you out of band; this copy is informational).
    pub public_key: String,
    /// The signature file: raw 64 bytes over the exact bytes of `manifest.json`.
    pub file: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The extract id.
    pub extract_id: String,
    /// The spec's name.
    pub name: String,
    /// The project.
    pub project: String,
    /// The recipient.
    pub recipient: String,
    /// The release queried.
    pub release: String,
    /// Table → Delta version read (the project's granted tables in the release).
    pub release_tables: BTreeMap<String, u64>,
    /// The master key id the research pseudonyms were made under.
    pub key_id: String,
    /// Id of the project key `K("project:<id>")` the ids were re-keyed with (first 8
    /// bytes, hex, of HMAC-SHA256 under it of "dhub key id"; [`dhub_deid::project_key_id`]).
    pub project_key_id: String,
    /// Who requested the extract.
    pub requested_by: String,
    /// When (RFC 3339).
    pub requested_at: String,
    /// Who approved it.
    pub approved_by: String,
    /// When.
    pub approved_at: String,
    /// When the files were made.
    pub created_at: String,
    /// SHA-256 of the spec text, hex.
    pub spec_sha256: String,
    /// SHA-256 of the SQL text, hex.
    pub sql_sha256: String,
    /// `parquet` or `csv`.
    pub file_format: String,
    /// Rows in all files.
    pub rows: u64,
    /// The k required by the spec.
    pub k: u64,
    /// The smallest equivalence class over the quasi-identifiers (none when empty).
    pub k_achieved: Option<u64>,
    /// Equivalence classes over the quasi-identifiers.
    pub equivalence_classes: u64,
    /// The quasi-identifier columns.
    pub quasi_identifiers: Vec<String>,
    /// Re-keyed id column → entity.
    pub rekeyed: BTreeMap<String, String>,
    /// Output columns.
    pub schema: Vec<ManifestColumn>,
    /// Data files.
    pub files: Vec<ManifestFile>,
    /// The signature.
    pub signature: SignatureInfo,
}

impl Manifest {
    /// The exact bytes written as `manifest.json` (pretty JSON and a newline).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_vec_pretty(self).map_err(|e| ExtractError::Io {
            action: "encoding",
            what: MANIFEST_FILE.into(),
            message: e.to_string(),
        })?;
        v.push(b'\n');
        Ok(v)
    }
}

/// Whether `name` is a plain file name (no directory parts), as every manifest entry
/// must be.
pub fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What [`verify_dir`] checked.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The manifest (signature valid).
    pub manifest: Manifest,
    /// Files in the directory the manifest does not list (not part of the extract).
    pub unlisted: Vec<String>,
}

/// Verifies a downloaded extract in `dir`: the signature of `manifest.json` under
/// `public_key_hex`, then every listed file's size and SHA-256.
pub fn verify_dir(dir: &Path, public_key_hex: &str) -> Result<Verified> {
    let pk = parse_public_key(public_key_hex)?;
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| {
            ExtractError::Verify(format!("cannot read {}: {e}", dir.join(name).display()))
        })
    };
    let manifest_bytes = read(MANIFEST_FILE)?;
    let sig = read(SIGNATURE_FILE)?;
    let sig = if sig.len() == 64 {
        sig
    } else {
        // tolerate a trailing newline on a hex signature
        String::from_utf8_lossy(&sig).trim().as_bytes().to_vec()
    };
    verify_signature(&pk, &manifest_bytes, &sig)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| ExtractError::Verify(format!("manifest.json is not a dhub manifest: {e}")))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(ExtractError::Verify(format!(
            "manifest format `{}` is not {MANIFEST_FORMAT}; use a dhub that knows it",
            manifest.format
        )));
    }
    for f in &manifest.files {
        if !safe_file_name(&f.name) {
            return Err(ExtractError::Verify(format!(
                "the manifest lists `{}`, which is not a plain file name",
                f.name
            )));
        }
        let path = dir.join(&f.name);
        let mut file = std::fs::File::open(&path).map_err(|e| {
            ExtractError::Verify(format!("{} is missing or unreadable: {e}", f.name))
        })?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| ExtractError::Verify(format!("reading {}: {e}", f.name)))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            ctx.update(&buf[..n]);
        }
        if size != f.bytes {
            return Err(ExtractError::Verify(format!(
                "{} has {size} bytes; the manifest says {}: the file is incomplete or was changed",
                f.name, f.bytes
            )));
        }
        let got = hex(ctx.finish().as_ref());
        if got != f.sha256 {
            return Err(ExtractError::Verify(format!(
                "{}: SHA-256 does not match the manifest: the file was changed or corrupted; download it again",
                f.name
            )));
        }
    }
    let listed: std::collections::BTreeSet<&str> =
        manifest.files.iter().map(|f| f.name.as_str()).collect();
    let mut unlisted = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n != MANIFEST_FILE && n != SIGNATURE_FILE && !listed.contains(n.as_str()) {
                unlisted.push(n);
            }
        }
    }
    unlisted.sort();
    Ok(Verified { manifest, unlisted })
}
