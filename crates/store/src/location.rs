//! Store URLs: `file://` (relative or absolute), `memory://`, `s3://`, `az://`, `gs://`,
//! and plain local paths. Cloud credentials and endpoints come from the environment, as
//! `object_store` reads them (`AWS_*`, `AZURE_*`, `GOOGLE_*`), never from the URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use url::Url;

use crate::error::{Result, StoreError};

/// A parsed store location: the normalised URL of its root, the object store that
/// serves it (rooted at the bucket or file-system root) and the path prefix inside it.
#[derive(Clone)]
pub struct Location {
    url: Url,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

fn bad(url: &str, reason: impl Into<String>) -> StoreError {
    StoreError::BadUrl {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

/// The process-wide in-memory stores, one per `memory://NAME`, so that every open of the
/// same URL in one process sees the same objects (tests, quick experiments).
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let map = STORES.get_or_init(Default::default);
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(name.to_owned())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// Normalises a store URL: `file://./rel` and bare relative paths are made absolute
/// against the current directory; a trailing slash is removed.
pub fn normalise_url(raw: &str) -> Result<Url> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(bad(raw, "it is empty"));
    }
    let local = if let Some(rest) = raw.strip_prefix("file://") {
        Some(rest)
    } else if !raw.contains("://") {
        Some(raw)
    } else {
        None
    };
    if let Some(path) = local {
        let p = std::path::Path::new(path);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| bad(raw, format!("cannot resolve a relative path: {e}")))?
                .join(p)
        };
        let abs = normalise_dots(&abs);
        return Url::from_directory_path(&abs)
            .map(|mut u| {
                let s = u.path().trim_end_matches('/').to_owned();
                u.set_path(&s);
                u
            })
            .map_err(|()| bad(raw, "not an absolute local path"));
    }
    let mut url = Url::parse(raw).map_err(|e| bad(raw, e.to_string()))?;
    match url.scheme() {
        "memory" | "s3" | "az" | "gs" => {}
        other => {
            return Err(bad(
                raw,
                format!(
                    "scheme `{other}` is not supported; use file://, memory://, s3://, az:// or gs://"
                ),
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "<redacted>",
            "credentials must not be written in the URL; set them in the environment (AWS_*, AZURE_*, GOOGLE_*)",
        ));
    }
    if url.scheme() != "memory" && url.host_str().is_none_or(str::is_empty) {
        return Err(bad(
            raw,
            "a bucket or container name is needed, e.g. s3://bucket/prefix",
        ));
    }
    let s = url.path().trim_end_matches('/').to_owned();
    url.set_path(&s);
    Ok(url)
}

/// Removes `.` and `..` components lexically.
fn normalise_dots(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The root object store of a normalised URL and the path of the URL inside it.
/// Cloud stores are built once per bucket or container and shared.
pub(crate) fn root_store(url: &Url) -> Result<(Arc<dyn ObjectStore>, Path)> {
    static CLOUD: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let raw = url.as_str();
    let build_err = |e: object_store::Error| bad(raw, e.to_string());
    let path = || Path::parse(url.path()).map_err(|e| bad(raw, e.to_string()));
    let cached = |key: String,
                  build: &dyn Fn() -> Result<Arc<dyn ObjectStore>>|
     -> Result<Arc<dyn ObjectStore>> {
        let map = CLOUD.get_or_init(Default::default);
        let mut map = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = map.get(&key) {
            return Ok(s.clone());
        }
        let s = build()?;
        map.insert(key, s.clone());
        Ok(s)
    };
    let bucket_key = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    Ok(match url.scheme() {
        "file" => {
            let p = url
                .to_file_path()
                .map_err(|()| bad(raw, "not a local path"))?;
            let prefix = Path::from_absolute_path(&p).map_err(|e| bad(raw, e.to_string()))?;
            (
                Arc::new(object_store::local::LocalFileSystem::new()),
                prefix,
            )
        }
        "memory" => (memory_store(url.host_str().unwrap_or_default()), path()?),
        "s3" => (
            cached(bucket_key, &|| {
                let s = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(raw)
                    .build()
                    .map_err(build_err)?;
                Ok(Arc::new(s))
            })?,
            path()?,
        ),
        "az" => (
            cached(bucket_key, &|| {
                let s = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(raw)
                    .build()
                    .map_err(build_err)?;
                Ok(Arc::new(s))
            })?,
            path()?,
        ),
        "gs" => (
            cached(bucket_key, &|| {
                let s = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(raw)
                    .build()
                    .map_err(build_err)?;
                Ok(Arc::new(s))
            })?,
            path()?,
        ),
        _ => return Err(bad(raw, "unsupported scheme")),
    })
}

impl Location {
    /// Parses a store URL and builds its object store (credentials from the environment).
    /// A local directory is created if missing.
    pub fn parse(raw: &str) -> Result<Self> {
        let url = normalise_url(raw)?;
        if url.scheme() == "file" {
            let path = url
                .to_file_path()
                .map_err(|()| bad(raw, "not a local path"))?;
            // private to dhub's account: 0700 (crate::private)
            crate::private::create_private_dir_all(&path)
                .map_err(|e| bad(raw, format!("cannot create {}: {e}", path.display())))?;
        }
        let (store, prefix) = root_store(&url)?;
        Ok(Self { url, store, prefix })
    }
}

impl Location {
    /// The local directory of a `file://` location (`None` for object stores).
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        (self.url.scheme() == "file")
            .then(|| self.url.to_file_path().ok())
            .flatten()
    }

    /// Refuses a `file://` root that other local users may read, write or enter
    /// ([`crate::private::check_private`]); object stores pass (their access is the
    /// bucket's policy).
    pub fn check_private(&self, what: &str) -> Result<()> {
        match self.local_path() {
            Some(p) => crate::private::check_private(&p, what),
            None => Ok(()),
        }
    }

    /// The normalised root URL (no trailing slash).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The object store (rooted at the bucket, container or file-system root).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The path of the root inside [`Location::object_store`].
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The object-store path of `relative` (slash-separated) under the root.
    pub fn path(&self, relative: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in relative.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    /// The URL of `relative` under the root.
    pub fn child_url(&self, relative: &str) -> Url {
        let mut u = self.url.clone();
        let path = format!(
            "{}/{}",
            u.path().trim_end_matches('/'),
            relative.trim_matches('/')
        );
        u.set_path(&path);
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_file_urls() {
        let cwd = std::env::current_dir().unwrap();
        let u = normalise_url("file://./dhub-data/store").unwrap();
        assert_eq!(u.to_file_path().unwrap(), cwd.join("dhub-data/store"));
        let u = normalise_url("file:///tmp/x/../y/").unwrap();
        assert_eq!(u.as_str(), "file:///tmp/y");
        let u = normalise_url("rel/dir").unwrap();
        assert_eq!(u.to_file_path().unwrap(), cwd.join("rel/dir"));
    }

    #[test]
    fn cloud_and_memory_urls() {
        assert_eq!(
            normalise_url("s3://bucket/pre/fix/").unwrap().as_str(),
            "s3://bucket/pre/fix"
        );
        assert_eq!(
            normalise_url("az://container/p").unwrap().as_str(),
            "az://container/p"
        );
        assert_eq!(normalise_url("gs://b").unwrap().as_str(), "gs://b");
        assert!(normalise_url("memory://t1").is_ok());
        for bad in [
            "http://x/y",
            "ftp://a",
            "s3://",
            "",
            "s3://key:secret@bucket/p",
        ] {
            let e = normalise_url(bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn memory_locations_share_objects_by_name() {
        let a = Location::parse("memory://share-test/a").unwrap();
        let b = Location::parse("memory://share-test/a").unwrap();
        assert!(Arc::ptr_eq(a.object_store(), b.object_store()));
        let c = Location::parse("memory://other-test").unwrap();
        assert!(!Arc::ptr_eq(a.object_store(), c.object_store()));
        assert_eq!(a.path("t/_delta_log").as_ref(), "a/t/_delta_log");
        assert_eq!(a.child_url("t").as_str(), "memory://share-test/a/t");
    }
}
