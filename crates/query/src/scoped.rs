//! The object stores a research session can reach: only the research store's own
//! prefix, read-only.
//!
//! DataFusion's default registry maps `file://` to the whole local file system. A
//! research session instead gets a [`ScopedRegistry`] that starts empty and, when the
//! Delta provider registers the store that serves its table, wraps it in a
//! [`ScopedStore`] that answers only for paths under the store root and refuses every
//! write. Nothing else is reachable, whatever a plan asks for.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use url::Url;

/// A read-only view of `inner` limited to paths under `prefix`.
#[derive(Debug)]
pub struct ScopedStore {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl fmt::Display for ScopedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopedStore(research store)")
    }
}

fn denied(path: &Path) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: path.to_string(),
        source: "research sessions may only read the research store".into(),
    }
}

impl ScopedStore {
    /// Wraps `inner`, allowing reads under `prefix` only.
    pub fn new(inner: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { inner, prefix }
    }

    fn check(&self, p: &Path) -> object_store::Result<()> {
        if p.prefix_matches(&self.prefix) {
            Ok(())
        } else {
            Err(denied(p))
        }
    }
}

#[async_trait]
impl ObjectStore for ScopedStore {
    async fn put_opts(
        &self,
        location: &Path,
        _: PutPayload,
        _: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(denied(location))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(denied(location))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    // Forwarded so the inner store's own vectored read is used (a local file is
    // opened once for all of a Parquet scan's column chunks, not once per range).
    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations
            .map(|p| match p {
                Ok(p) => Err(denied(&p)),
                Err(e) => Err(e),
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match prefix {
            Some(p) if p.prefix_matches(&self.prefix) => self.inner.list(Some(p)),
            Some(p) => {
                let e = denied(p);
                futures::stream::once(async move { Err(e) }).boxed()
            }
            None => self.inner.list(Some(&self.prefix)),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        match prefix {
            Some(p) => {
                self.check(p)?;
                self.inner.list_with_delimiter(Some(p)).await
            }
            None => self.inner.list_with_delimiter(Some(&self.prefix)).await,
        }
    }

    async fn copy_opts(&self, _from: &Path, to: &Path, _: CopyOptions) -> object_store::Result<()> {
        Err(denied(to))
    }
}

/// An object-store registry that holds only the research store, scoped.
#[derive(Debug)]
pub struct ScopedRegistry {
    /// `scheme://authority` of the research store.
    root: String,
    prefix: Path,
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

fn key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.authority())
}

impl ScopedRegistry {
    /// A registry for the store whose root is `store_url` (prefix = its path).
    pub fn new(store_url: &Url) -> Self {
        let prefix = Path::from_url_path(store_url.path()).unwrap_or_default();
        Self {
            root: key(store_url),
            prefix,
            stores: RwLock::new(HashMap::new()),
        }
    }
}

impl ObjectStoreRegistry for ScopedRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        let k = key(url);
        if k != self.root {
            // anything but the research store is silently not registered: get_store fails
            tracing::warn!(
                scheme = url.scheme(),
                "refused to register an object store outside the research store"
            );
            return None;
        }
        let scoped: Arc<dyn ObjectStore> = Arc::new(ScopedStore::new(store, self.prefix.clone()));
        self.stores
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(k, scoped)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.stores
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key(url))
            .cloned()
            .ok_or_else(|| {
                DataFusionError::Execution("no such object store in a research session".into())
            })
    }
}
