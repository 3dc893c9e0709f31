//! Small whole-object operations on a [`Location`]: create-only puts, reads and listings
//! (the audit log's signed checkpoints use them).

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Result, StoreError};
use crate::location::Location;

impl Location {
    /// Writes `bytes` at `relative` only if nothing is there (a create-only put, atomic
    /// on every backend: never overwrites, even against a concurrent writer). Returns
    /// `false`, writing nothing, when the object already exists.
    pub async fn put_new(&self, relative: &str, bytes: Vec<u8>) -> Result<bool> {
        let path = self.path(relative);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .object_store()
            .put_opts(&path, PutPayload::from(Bytes::from(bytes)), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(StoreError::os(path, e)),
        }
    }

    /// The bytes at `relative`, or `None` when there is no such object.
    pub async fn get_bytes(&self, relative: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(relative);
        match self.object_store().get(&path).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| StoreError::os(&path, e))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::os(path, e)),
        }
    }

    /// The names of the objects directly under the directory `relative`, sorted.
    pub async fn list_names(&self, relative: &str) -> Result<Vec<String>> {
        let dir = self.path(relative);
        let metas: Vec<_> = self
            .object_store()
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| StoreError::os(&dir, e))?;
        let mut out: Vec<String> = metas
            .into_iter()
            .filter(|m| {
                m.location
                    .prefix_match(&dir)
                    .is_some_and(|mut p| p.nth(1).is_none())
            })
            .filter_map(|m| m.location.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_only_puts_never_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let loc = Location::parse(d.path().to_str().unwrap()).unwrap();
        assert!(loc.put_new("_audit/1.json", b"one".to_vec()).await.unwrap());
        assert!(!loc.put_new("_audit/1.json", b"two".to_vec()).await.unwrap());
        assert_eq!(
            loc.get_bytes("_audit/1.json").await.unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert!(loc.get_bytes("_audit/2.json").await.unwrap().is_none());
        loc.put_new("_audit/0.json", b"zero".to_vec())
            .await
            .unwrap();
        loc.put_new("_audit/sub/x.json", b"x".to_vec())
            .await
            .unwrap();
        assert_eq!(
            loc.list_names("_audit").await.unwrap(),
            ["0.json", "1.json"]
        );
        assert!(loc.list_names("_nothing").await.unwrap().is_empty());
    }
}
