//! The local-folder [`BlobStore`]: one file per key under a root directory, written to a
//! temporary name and renamed into place so a reader never sees half a file.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cortex_core::ports::{BlobError, BlobStore, valid_blob_key};

pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        if !valid_blob_key(key) {
            return Err(BlobError::InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(Path::new(key)))
    }
}

fn io(e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        BlobError::Io(e.to_string())
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let tmp = path.with_extension(format!("partial-{}", uuid::Uuid::now_v7()));
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(e));
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        tokio::fs::read(self.path(key)?).await.map_err(io)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_round_trip_and_keys_cannot_escape() {
        let dir = std::env::temp_dir().join(format!("cortex-blobs-{}", uuid::Uuid::now_v7()));
        let blobs = LocalBlobStore::new(&dir);
        blobs
            .put("documents/t/d", b"hello".to_vec())
            .await
            .expect("put");
        blobs
            .put("documents/t/d", b"again".to_vec())
            .await
            .expect("replace");
        assert_eq!(blobs.get("documents/t/d").await.expect("get"), b"again");
        blobs.delete("documents/t/d").await.expect("delete");
        blobs.delete("documents/t/d").await.expect("delete twice");
        assert!(matches!(
            blobs.get("documents/t/d").await,
            Err(BlobError::NotFound)
        ));
        assert!(matches!(
            blobs.put("../escape", b"x".to_vec()).await,
            Err(BlobError::InvalidKey(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
