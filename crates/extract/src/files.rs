//! Reading a released extract's files back out of the extracts area, whole or by byte
//! range, for the partner download endpoint.

use std::ops::Range;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use dhub_store::Location;

use crate::error::{ExtractError, Result};
use crate::manifest::{MANIFEST_FILE, Manifest, SIGNATURE_FILE};
use crate::run::extract_dir;

/// A byte range as asked for in an HTTP `Range: bytes=…` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b` (inclusive).
    Bounded(u64, u64),
    /// `a-`.
    From(u64),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a `Range` header value with one range (`bytes=0-99`, `bytes=100-`,
    /// `bytes=-50`); `None` when it is not one byte range.
    pub fn parse(header: &str) -> Option<Self> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        match (a.is_empty(), b.is_empty()) {
            (false, false) => {
                let (a, b) = (a.parse().ok()?, b.parse().ok()?);
                (a <= b).then_some(ByteRange::Bounded(a, b))
            }
            (false, true) => Some(ByteRange::From(a.parse().ok()?)),
            (true, false) => Some(ByteRange::Suffix(b.parse().ok()?)),
            (true, true) => None,
        }
    }

    /// The half-open range within an object of `size` bytes; `None` when it cannot be
    /// satisfied (HTTP 416).
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        let r = match self {
            ByteRange::Bounded(a, b) => a..(b.saturating_add(1)).min(size),
            ByteRange::From(a) => a..size,
            ByteRange::Suffix(n) => size.saturating_sub(n)..size,
        };
        (r.start < r.end && r.start < size).then_some(r)
    }
}

/// A file being downloaded.
pub struct Download {
    /// The whole file's size.
    pub size: u64,
    /// The bytes sent (the whole file when no range was asked for).
    pub range: Range<u64>,
    /// Whether a range was asked for (HTTP 206).
    pub partial: bool,
    /// SHA-256 from the manifest (data files), for the `ETag`.
    pub sha256: Option<String>,
    /// The bytes.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Why a download cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadRefusal {
    /// No such file in the extract.
    NotFound,
    /// The range is outside the file (size given).
    Unsatisfiable(u64),
}

/// The names a partner may download from an extract: its data files, then
/// `manifest.json` and `manifest.sig`.
pub fn downloadable(manifest: &Manifest) -> Vec<String> {
    manifest
        .files
        .iter()
        .map(|f| f.name.clone())
        .chain([MANIFEST_FILE.to_owned(), SIGNATURE_FILE.to_owned()])
        .collect()
}

/// Opens `name` of a released extract for download. The name must be one the
/// manifest lists (or the manifest and its signature): nothing else under the extracts
/// area can be reached.
pub async fn open(
    out: &Location,
    manifest: &Manifest,
    name: &str,
    range: Option<ByteRange>,
) -> Result<std::result::Result<Download, DownloadRefusal>> {
    if !downloadable(manifest).iter().any(|n| n == name) {
        return Ok(Err(DownloadRefusal::NotFound));
    }
    let store = out.object_store().clone();
    let path = out.path(&format!(
        "{}/{name}",
        extract_dir(&manifest.project, &manifest.extract_id)
    ));
    let meta = match store.head(&path).await {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) => return Ok(Err(DownloadRefusal::NotFound)),
        Err(e) => {
            return Err(ExtractError::Io {
                action: "reading",
                what: name.to_owned(),
                message: e.to_string(),
            });
        }
    };
    let size = meta.size;
    let (r, partial) = match range {
        None => (0..size, false),
        Some(br) => match br.resolve(size) {
            Some(r) => (r, true),
            None => return Ok(Err(DownloadRefusal::Unsatisfiable(size))),
        },
    };
    let body: BoxStream<'static, Result<Bytes>> = if r.is_empty() {
        futures::stream::empty().boxed()
    } else {
        let got = store
            .get_opts(
                &path,
                GetOptions {
                    range: Some(GetRange::Bounded(r.clone())),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ExtractError::Io {
                action: "reading",
                what: name.to_owned(),
                message: e.to_string(),
            })?;
        let what = name.to_owned();
        got.into_stream()
            .map(move |b| {
                b.map_err(|e| ExtractError::Io {
                    action: "reading",
                    what: what.clone(),
                    message: e.to_string(),
                })
            })
            .boxed()
    };
    Ok(Ok(Download {
        size,
        range: r,
        partial,
        sha256: manifest
            .files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.sha256.clone()),
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_resolve_like_rfc_9110() {
        assert_eq!(
            ByteRange::parse("bytes=0-99"),
            Some(ByteRange::Bounded(0, 99))
        );
        assert_eq!(ByteRange::parse("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(ByteRange::parse("bytes=-50"), Some(ByteRange::Suffix(50)));
        for bad in [
            "bytes=5-1",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-",
            "bytes=a-b",
        ] {
            assert_eq!(ByteRange::parse(bad), None, "{bad}");
        }
        assert_eq!(ByteRange::Bounded(0, 99).resolve(50), Some(0..50));
        assert_eq!(ByteRange::From(10).resolve(50), Some(10..50));
        assert_eq!(ByteRange::Suffix(10).resolve(50), Some(40..50));
        assert_eq!(ByteRange::Suffix(100).resolve(50), Some(0..50));
        assert_eq!(ByteRange::From(50).resolve(50), None);
        assert_eq!(ByteRange::Bounded(60, 70).resolve(50), None);
    }
}
