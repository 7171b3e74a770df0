//! Where original images are kept: an object store keyed by the SHA-256 of the bytes, so
//! the same photo sent twice is stored once and a receipt image has a stable reference.
//! A local directory by default; S3 or an S3-compatible store in production (`s3.rs`).

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
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

    /// Removes `key` (nothing when it is not there).
    async fn delete(&self, key: &str) -> Result<(), MediaError>;

    /// Removes the objects whose key starts with `key_prefix` ("" for all) written before
    /// `before` (retention); returns how many.
    async fn delete_older(
        &self,
        key_prefix: &str,
        before: DateTime<Utc>,
    ) -> Result<usize, MediaError>;
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
        restrict(&file, &self.root);
        Ok(format!("file://{}", file.display()))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        get_bytes(&self.fs, &self.path(key)?.1).await
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        delete_one(&self.fs, &self.path(key)?.1).await
    }

    async fn delete_older(
        &self,
        key_prefix: &str,
        before: DateTime<Utc>,
    ) -> Result<usize, MediaError> {
        // "" is every object (all fan-out directories); a longer prefix names its own.
        let dir = if key_prefix.is_empty() {
            self.root.clone()
        } else if key_prefix.len() < 2 || !valid_key(&format!("{key_prefix}x")) {
            return Err(MediaError::Store(format!(
                "invalid key prefix {key_prefix:?}"
            )));
        } else {
            self.root.join(&key_prefix[..2])
        };
        if !dir.exists() {
            return Ok(0);
        }
        let listed = ObjectPath::from_absolute_path(&dir)
            .map_err(|e| MediaError::Store(format!("{}: {e}", dir.display())))?;
        delete_listed_older(&self.fs, &listed, key_prefix, before).await
    }
}

/// Only the process's user may read its photos: directories 0700, files 0600.
#[cfg(unix)]
fn restrict(file: &std::path::Path, root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let private = |path: &std::path::Path, mode| {
        if let Err(error) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            tracing::warn!(%error, path = %path.display(), "could not restrict a photo's permissions");
        }
    };
    private(root, 0o700);
    if let Some(dir) = file.parent() {
        private(dir, 0o700);
    }
    private(file, 0o600);
}

#[cfg(not(unix))]
fn restrict(_file: &std::path::Path, _root: &std::path::Path) {}

pub(super) async fn delete_one(
    store: &dyn object_store::ObjectStore,
    path: &ObjectPath,
) -> Result<(), MediaError> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(MediaError::Store(e.to_string())),
    }
}

/// Deletes the objects listed under `listed` whose file name starts with `key_prefix` and
/// that were written before `before`.
pub(super) async fn delete_listed_older(
    store: &dyn object_store::ObjectStore,
    listed: &ObjectPath,
    key_prefix: &str,
    before: DateTime<Utc>,
) -> Result<usize, MediaError> {
    use futures::TryStreamExt;
    let mut listing = store.list(Some(listed));
    let mut deleted = 0;
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|e| MediaError::Store(e.to_string()))?
    {
        let name = meta.location.filename().unwrap_or_default();
        if name.starts_with(key_prefix) && meta.last_modified < before {
            delete_one(store, &meta.location).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
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

    #[tokio::test]
    async fn retention_deletes_only_old_objects_of_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirStore::new(dir.path());
        let card = format!("card.{}.jpg", "ab".repeat(32));
        let receipt = format!("{}.jpg", "ca".repeat(32));
        store.put(&card, b"card").await.unwrap();
        store.put(&receipt, b"receipt").await.unwrap();
        let hour_ago = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(store.delete_older("card.", hour_ago).await.unwrap(), 0);
        let soon = Utc::now() + chrono::Duration::seconds(5);
        assert_eq!(store.delete_older("card.", soon).await.unwrap(), 1);
        assert!(store.get(&card).await.unwrap().is_none());
        assert!(
            store.get(&receipt).await.unwrap().is_some(),
            "another prefix stays"
        );
        assert_eq!(store.delete_older("card.", soon).await.unwrap(), 0);
        store.delete(&card).await.unwrap();
        assert!(store.delete_older("../", soon).await.is_err());
    }
}
