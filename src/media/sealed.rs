//! Photos encrypted at rest: identity-card photos are the most sensitive thing Sembang
//! keeps. Every object is sealed with XChaCha20-Poly1305 under a key derived from the IC
//! vault's (`derive_key("media")`), with a random nonce and the object's key as associated
//! data (an object moved to another name does not open). The store underneath (a directory,
//! S3) only ever sees ciphertext; S3's own encryption may be on as well.
//!
//! Layout: `SBM1` | nonce (24 bytes) | ciphertext and tag. Objects written before this
//! (no marker) are read as they are, so existing stores keep working.

use std::sync::Arc;

use async_trait::async_trait;
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::XChaCha20Poly1305;
use chrono::{DateTime, Utc};

use super::{MediaError, ObjectStore};
use crate::pii::envelope::{self, Unsealed};

const MARKER: &[u8; 4] = b"SBM1";

pub struct SealedStore {
    inner: Arc<dyn ObjectStore>,
    cipher: XChaCha20Poly1305,
}

impl SealedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, key: &[u8; 32]) -> Self {
        SealedStore {
            inner,
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    fn seal(&self, key: &str, bytes: &[u8]) -> Vec<u8> {
        envelope::seal(
            &self.cipher,
            MARKER,
            &envelope::random_nonce(),
            bytes,
            key.as_bytes(),
        )
    }

    fn open(&self, key: &str, stored: Vec<u8>) -> Result<Vec<u8>, MediaError> {
        if !stored.starts_with(MARKER) {
            return Ok(stored);
        }
        envelope::open(&self.cipher, MARKER, &stored, key.as_bytes()).map_err(|e| {
            MediaError::Store(match e {
                Unsealed::Malformed => format!("object {key} is truncated"),
                Unsealed::Rejected => format!("object {key} fails its integrity check"),
            })
        })
    }
}

#[async_trait]
impl ObjectStore for SealedStore {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<String, MediaError> {
        let sealed = self.seal(key, bytes);
        self.inner.put(key, &sealed).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        match self.inner.get(key).await? {
            Some(stored) => self.open(key, stored).map(Some),
            None => Ok(None),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        self.inner.delete(key).await
    }

    async fn delete_older(
        &self,
        key_prefix: &str,
        before: DateTime<Utc>,
    ) -> Result<usize, MediaError> {
        self.inner.delete_older(key_prefix, before).await
    }
}

/// The media store of a process that has no IC keys: it refuses photos rather than keep
/// them in clear.
pub struct KeylessStore;

#[async_trait]
impl ObjectStore for KeylessStore {
    async fn put(&self, _key: &str, _bytes: &[u8]) -> Result<String, MediaError> {
        Err(keyless())
    }

    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        Err(keyless())
    }

    async fn delete(&self, _key: &str) -> Result<(), MediaError> {
        Err(keyless())
    }

    async fn delete_older(&self, _: &str, _: DateTime<Utc>) -> Result<usize, MediaError> {
        Err(keyless())
    }
}

fn keyless() -> MediaError {
    MediaError::Forbidden {
        reason: "photos are kept encrypted, and this process has no IC keys \
                 (SEMBANG_IC_ENCRYPTION_KEY, SEMBANG_IC_HASH_KEY)"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::LocalDirStore;

    #[tokio::test]
    async fn photos_are_ciphertext_underneath_and_bound_to_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let plain: Arc<dyn ObjectStore> = Arc::new(LocalDirStore::new(dir.path()));
        let sealed = SealedStore::new(plain.clone(), &[7; 32]);
        let photo = b"\xFF\xD8\xFF MyKad 900101-14-5678 SITI".repeat(20);
        let key = format!("card.{}.jpg", "ab".repeat(32));
        sealed.put(&key, &photo).await.unwrap();
        assert_eq!(sealed.get(&key).await.unwrap().unwrap(), photo);
        let underneath = plain.get(&key).await.unwrap().unwrap();
        assert!(underneath.starts_with(MARKER));
        assert!(!underneath.windows(14).any(|w| w == b"900101-14-5678"));
        // Another key, or the same ciphertext under another name, does not open.
        let wrong = SealedStore::new(plain.clone(), &[8; 32]);
        assert!(wrong.get(&key).await.is_err());
        let other = format!("{}.jpg", "cd".repeat(32));
        plain.put(&other, &underneath).await.unwrap();
        assert!(sealed.get(&other).await.is_err());
        // Objects kept before encryption still read.
        let legacy = format!("{}.png", "ef".repeat(32));
        plain.put(&legacy, b"\x89PNG old").await.unwrap();
        assert_eq!(sealed.get(&legacy).await.unwrap().unwrap(), b"\x89PNG old");
    }
}
