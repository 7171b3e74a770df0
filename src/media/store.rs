//! Where original images are kept: an object store keyed by the SHA-256 of the bytes, so
//! the same photo sent twice is stored once and a receipt image has a stable reference.
//! A local directory by default; S3 or an S3-compatible store in production (`s3.rs`).

use std::path::PathBuf;

use async_trait::async_trait;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt as _, PutMode, PutOptions, PutPayload};

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

/// Objects as files under a directory, fanned out by the first two hex digits, through
/// `object_store`'s local file system (staged writes, create-only puts), as S3 is.
pub struct LocalDirStore {
    fs: LocalFileSystem,
    root: PathBuf,
}

impl LocalDirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        // Object paths are absolute; a relative root is the process's working directory's.
        let root = std::path::absolute(&root).unwrap_or(root);
        LocalDirStore {
            fs: LocalFileSystem::new(),
            root,
        }
    }

    fn path(&self, key: &str) -> Result<(PathBuf, ObjectPath), MediaError> {
        if !valid_key(key) {
            return Err(MediaError::Store(format!("invalid object key {key:?}")));
        }
        let file = self.root.join(&key[..2]).join(key);
        let path = ObjectPath::from_absolute_path(&file)
            .map_err(|e| MediaError::Store(format!("{}: {e}", file.display())))?;
        Ok((file, path))
    }
}

#[async_trait]
impl ObjectStore for LocalDirStore {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<String, MediaError> {
        let (file, path) = self.path(key)?;
        put_once(&self.fs, &path, bytes).await?;
        Ok(format!("file://{}", file.display()))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        get_bytes(&self.fs, &self.path(key)?.1).await
    }
}

/// Stores `bytes` at `path` unless an object is there already (a create-only put: the
/// first copy stays, and a crash never leaves a half-written object under its key).
pub(super) async fn put_once(
    store: &dyn object_store::ObjectStore,
    path: &ObjectPath,
    bytes: &[u8],
) -> Result<(), MediaError> {
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store
        .put_opts(path, PutPayload::from(bytes.to_vec()), options)
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(MediaError::Store(e.to_string())),
    }
}

/// The object at `path`, `None` when there is none.
pub(super) async fn get_bytes(
    store: &dyn object_store::ObjectStore,
    path: &ObjectPath,
) -> Result<Option<Vec<u8>>, MediaError> {
    let found = match store.get(path).await {
        Ok(found) => found,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(MediaError::Store(e.to_string())),
    };
    let bytes = found
        .bytes()
        .await
        .map_err(|e| MediaError::Store(e.to_string()))?;
    Ok(Some(bytes.to_vec()))
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
