//! Opening sources: a local directory or an object-store URL, plain or gzip.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::IngestError;

/// Where source files are read from.
#[derive(Debug, Clone)]
pub enum SourceRoot {
    /// A local directory.
    Local(PathBuf),
    /// An object-store location (`s3://…`, `az://…`, `gs://…`, `memory://…`, `file://…`).
    Remote(dhub_store::Location),
}

/// Counts the bytes read through it (for progress bars).
#[derive(Debug, Clone, Default)]
pub struct ByteCounter(Arc<AtomicU64>);

impl ByteCounter {
    /// Bytes read so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

struct Counting<R> {
    inner: R,
    counter: ByteCounter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Blocking reads of an object, for parser threads outside the async runtime.
struct ObjectRead {
    rt: tokio::runtime::Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ObjectRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

fn source_err(name: &str, message: impl Into<String>) -> IngestError {
    IngestError::Source {
        source_name: name.to_owned(),
        message: message.into(),
    }
}

impl SourceRoot {
    /// A local directory path or a store URL (anything with `://`).
    pub fn parse(s: &str) -> Result<Self, IngestError> {
        if s.contains("://") && !s.starts_with("file://") {
            Ok(SourceRoot::Remote(dhub_store::Location::parse(s)?))
        } else {
            let p = s.strip_prefix("file://").unwrap_or(s);
            let p = PathBuf::from(p);
            if !p.is_dir() {
                return Err(source_err(
                    s,
                    "not a directory; give --source the directory that holds the spec's source files, or an object-store URL",
                ));
            }
            Ok(SourceRoot::Local(p))
        }
    }

    /// A readable description of a source file.
    pub fn describe(&self, rel: &str) -> String {
        match self {
            SourceRoot::Local(d) => d.join(rel).display().to_string(),
            SourceRoot::Remote(l) => l.child_url(rel).to_string(),
        }
    }

    /// The size of a source file in bytes.
    pub async fn size(&self, rel: &str) -> Result<u64, IngestError> {
        match self {
            SourceRoot::Local(d) => std::fs::metadata(d.join(rel))
                .map(|m| m.len())
                .map_err(|e| {
                    source_err(rel, format!("cannot open {}: {e}", d.join(rel).display()))
                }),
            SourceRoot::Remote(l) => l
                .object_store()
                .head(&l.path(rel))
                .await
                .map(|m| m.size)
                .map_err(|e| source_err(rel, format!("cannot open {}: {e}", l.child_url(rel)))),
        }
    }

    /// Opens a source file for blocking reads (call from a blocking thread when remote),
    /// decompressing gzip when `gzip`. Returns the reader and a counter of the
    /// (compressed) bytes read.
    pub async fn open_blocking(
        &self,
        rel: &str,
        gzip: bool,
    ) -> Result<(Box<dyn BufRead + Send>, ByteCounter), IngestError> {
        let raw: Box<dyn Read + Send> = match self {
            SourceRoot::Local(d) => Box::new(std::fs::File::open(d.join(rel)).map_err(|e| {
                source_err(rel, format!("cannot open {}: {e}", d.join(rel).display()))
            })?),
            SourceRoot::Remote(l) => {
                let got = l.object_store().get(&l.path(rel)).await.map_err(|e| {
                    source_err(rel, format!("cannot open {}: {e}", l.child_url(rel)))
                })?;
                Box::new(ObjectRead {
                    rt: tokio::runtime::Handle::current(),
                    stream: got.into_stream(),
                    chunk: Bytes::new(),
                })
            }
        };
        let counter = ByteCounter::default();
        let counted = Counting {
            inner: raw,
            counter: counter.clone(),
        };
        let reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                1 << 20,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counted)),
            ))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, counted))
        };
        Ok((reader, counter))
    }

    /// The object store and path of a source file (Parquet sources are read through
    /// object storage, local ones included).
    pub fn object(
        &self,
        rel: &str,
    ) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path), IngestError> {
        match self {
            SourceRoot::Local(d) => {
                let abs = std::fs::canonicalize(d.join(rel)).map_err(|e| {
                    source_err(rel, format!("cannot open {}: {e}", d.join(rel).display()))
                })?;
                let path = object_store::path::Path::from_absolute_path(&abs)
                    .map_err(|e| source_err(rel, e.to_string()))?;
                Ok((Arc::new(object_store::local::LocalFileSystem::new()), path))
            }
            SourceRoot::Remote(l) => Ok((l.object_store().clone(), l.path(rel))),
        }
    }
}
