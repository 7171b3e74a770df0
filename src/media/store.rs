//! Where original images are kept: an object store keyed by the SHA-256 of the bytes, so
//! the same photo sent twice is stored once and a receipt image has a stable reference.
//! A local directory by default; S3 or an S3-compatible store in production (`s3.rs`).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::MediaError;

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores `bytes` under `key` (idempotent: an existing object is left as it is) and
    /// returns the object's reference.
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<String, MediaError>;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError>;
}

/// Keys are `<sha256 hex>.<ext>`: nothing that could leave a directory or a prefix.
pub(super) fn valid_key(key: &str) -> bool {
    key.len() > 2
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b.is_ascii_lowercase())
        && !key.contains("..")
}

/// Objects as files under a directory, fanned out by the first two hex digits.
pub struct LocalDirStore {
    root: PathBuf,
}

impl LocalDirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDirStore { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, MediaError> {
        if !valid_key(key) {
            return Err(MediaError::Store(format!("invalid object key {key:?}")));
        }
        Ok(self.root.join(&key[..2]).join(key))
    }
}

#[async_trait]
impl ObjectStore for LocalDirStore {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<String, MediaError> {
        let path = self.path(key)?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(reference(&path));
        }
        let dir = path.parent().expect("object paths have a parent");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| MediaError::Store(format!("{}: {e}", dir.display())))?;
        // Write then rename: a crash never leaves a half-written object under its key.
        let partial = dir.join(format!(".{key}.{}.partial", uuid::Uuid::new_v4()));
        tokio::fs::write(&partial, bytes)
            .await
            .map_err(|e| MediaError::Store(format!("{}: {e}", partial.display())))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| MediaError::Store(format!("{}: {e}", path.display())))?;
        Ok(reference(&path))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(MediaError::Store(e.to_string())),
        }
    }
}

fn reference(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_once_by_key_and_refuses_odd_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirStore::new(dir.path());
        let key = format!("{}.jpg", "ab".repeat(32));
        let first = store.put(&key, b"one").await.unwrap();
        let second = store.put(&key, b"two").await.unwrap();
        assert_eq!(first, second);
        assert_eq!(
            store.get(&key).await.unwrap().unwrap(),
            b"one",
            "existing objects stay"
        );
        assert!(store
            .get(&format!("{}.png", "cd".repeat(32)))
            .await
            .unwrap()
            .is_none());
        for bad in ["../etc/passwd", "ab/../../x", "a", "AB.JPG"] {
            assert!(store.put(bad, b"x").await.is_err(), "{bad}");
        }
    }
}
