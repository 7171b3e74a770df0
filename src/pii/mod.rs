//! IC numbers at rest (PDPA; FACTS.md "Personal data"): never stored in clear. A contact
//! keeps the masked form for display, a keyed hash (HMAC-SHA256 under its own key) to look
//! the number up, and AEAD ciphertext (XChaCha20-Poly1305, random 192-bit nonce) for the
//! rare lawful need of the full number. The ciphertext is bound to its keyed hash as
//! associated data, so it cannot be moved to another contact's record unnoticed.
//!
//! Keys are 64 hex digits each, from `SEMBANG_IC_ENCRYPTION_KEY` and `SEMBANG_IC_HASH_KEY`
//! (or their `_FILE` variants); they must differ. Losing the encryption key loses the full
//! numbers (masked forms and look-ups keep working); losing the hash key breaks look-ups.

pub mod envelope;
pub mod mask;
pub mod pseudonym;

use chacha20poly1305::aead::{KeyInit, OsRng};
use chacha20poly1305::XChaCha20Poly1305;
use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::config::{Secret, Secrets};
use crate::domain::contact::ProtectedIc;
use crate::domain::mykad::MyKad;

const KEY_BYTES: usize = 32;
/// Ciphertext layout version, first byte, so keys or algorithms can change later.
const FORMAT_V1: u8 = 1;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("{name} must be 64 hex digits (32 bytes)")]
    BadKey { name: &'static str },
    #[error("SEMBANG_IC_ENCRYPTION_KEY and SEMBANG_IC_HASH_KEY must both be set, or neither")]
    HalfConfigured,
    #[error("the IC encryption and hash keys must differ")]
    SameKeys,
    /// Wrong key, tampered bytes, or a ciphertext moved to another record.
    #[error("the stored IC cannot be decrypted with this key")]
    Decrypt,
    #[error("the stored IC ciphertext is malformed")]
    Malformed,
}

pub struct IcVault {
    cipher: XChaCha20Poly1305,
    hash_key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for IcVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IcVault(<keys>)")
    }
}

impl IcVault {
    pub fn new(
        encryption_key: [u8; KEY_BYTES],
        hash_key: [u8; KEY_BYTES],
    ) -> Result<Self, VaultError> {
        if encryption_key == hash_key {
            return Err(VaultError::SameKeys);
        }
        Ok(IcVault {
            cipher: XChaCha20Poly1305::new(&encryption_key.into()),
            hash_key,
        })
    }

    /// The vault the secrets configure; `None` when neither key is set.
    pub fn from_secrets(secrets: &Secrets) -> Result<Option<Self>, VaultError> {
        match (&secrets.ic_encryption_key, &secrets.ic_hash_key) {
            (None, None) => Ok(None),
            (Some(encryption), Some(hash)) => Ok(Some(IcVault::new(
                parse_key("SEMBANG_IC_ENCRYPTION_KEY", encryption)?,
                parse_key("SEMBANG_IC_HASH_KEY", hash)?,
            )?)),
            _ => Err(VaultError::HalfConfigured),
        }
    }

    /// The keys in `path` (created with random keys, readable by the owner only, when
    /// missing). For the embedded default only, which must run with no setup: every other
    /// deployment sets the keys as secrets, kept apart from the data they protect.
    pub fn local(path: &std::path::Path) -> Result<Self, VaultError> {
        use chacha20poly1305::aead::rand_core::RngCore;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(_) => {
                let mut keys = [0u8; 2 * KEY_BYTES];
                OsRng.fill_bytes(&mut keys);
                let text = format!(
                    "{}\n{}\n",
                    hex::encode(&keys[..KEY_BYTES]),
                    hex::encode(&keys[KEY_BYTES..])
                );
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                write_private(path, &text).map_err(|_| VaultError::BadKey {
                    name: "local key file",
                })?;
                text
            }
        };
        let mut lines = text.lines();
        let mut next = |name| {
            lines
                .next()
                .map(|l| Secret::new(l.trim()))
                .ok_or(VaultError::BadKey { name })
                .and_then(|s| parse_key(name, &s))
        };
        let encryption = next("local encryption key")?;
        let hash = next("local hash key")?;
        IcVault::new(encryption, hash)
    }

    /// 32 bytes of key material for another purpose (e.g. tracking links), derived from the
    /// hash key: one set of secrets to keep, and a different key per purpose.
    pub fn derive_key(&self, purpose: &str) -> [u8; KEY_BYTES] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key).expect("any key length");
        mac.update(b"sembang-derived-key/");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The look-up key of an IC: the same number always gives the same hash.
    pub fn keyed_hash(&self, ic: &MyKad) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key)
            .expect("HMAC accepts any key length");
        mac.update(ic.digits().as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub fn protect(&self, ic: &MyKad) -> ProtectedIc {
        let keyed_hash = self.keyed_hash(ic);
        let ciphertext = envelope::seal(
            &self.cipher,
            &[FORMAT_V1],
            &envelope::random_nonce(),
            ic.digits().as_bytes(),
            &keyed_hash,
        );
        ProtectedIc {
            masked: ic.masked(),
            keyed_hash,
            ciphertext,
        }
    }

    /// The full number, for a lawful need only. `reference` dates the century, as in
    /// [`MyKad::parse`].
    pub fn reveal(
        &self,
        protected: &ProtectedIc,
        reference: NaiveDate,
    ) -> Result<MyKad, VaultError> {
        let digits = envelope::open(
            &self.cipher,
            &[FORMAT_V1],
            &protected.ciphertext,
            &protected.keyed_hash,
        )
        .map_err(|e| match e {
            envelope::Unsealed::Malformed => VaultError::Malformed,
            envelope::Unsealed::Rejected => VaultError::Decrypt,
        })?;
        let digits = String::from_utf8(digits).map_err(|_| VaultError::Malformed)?;
        MyKad::parse(&digits, reference).map_err(|_| VaultError::Malformed)
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

fn parse_key(name: &'static str, secret: &Secret) -> Result<[u8; KEY_BYTES], VaultError> {
    let bytes = hex::decode(secret.expose().trim()).map_err(|_| VaultError::BadKey { name })?;
    bytes.try_into().map_err(|_| VaultError::BadKey { name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> IcVault {
        IcVault::new([7; 32], [9; 32]).unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 25).unwrap()
    }

    fn ic(text: &str) -> MyKad {
        MyKad::parse(text, day()).unwrap()
    }

    #[test]
    fn protects_round_trips_and_never_holds_the_digits_in_clear() {
        let v = vault();
        let number = ic("900101-14-5678");
        let p = v.protect(&number);
        assert_eq!(p.masked, "900101-**-****");
        let digits = b"900101145678";
        assert!(!p.ciphertext.windows(digits.len()).any(|w| w == digits));
        assert!(!format!("{p:?}").contains("5678"));
        assert_eq!(v.reveal(&p, day()).unwrap(), number);
        // Random nonces: the same number never gives the same ciphertext, but the same hash.
        let again = v.protect(&number);
        assert_ne!(again.ciphertext, p.ciphertext);
        assert_eq!(again.keyed_hash, p.keyed_hash);
        assert_ne!(v.keyed_hash(&ic("900101-14-5679")), p.keyed_hash);
    }

    #[test]
    fn wrong_keys_tampering_and_moved_ciphertexts_are_refused() {
        let v = vault();
        let p = v.protect(&ic("900101-14-5678"));
        let other = IcVault::new([8; 32], [9; 32]).unwrap();
        assert_eq!(other.reveal(&p, day()), Err(VaultError::Decrypt));
        let mut tampered = p.clone();
        let last = tampered.ciphertext.len() - 1;
        tampered.ciphertext[last] ^= 1;
        assert_eq!(v.reveal(&tampered, day()), Err(VaultError::Decrypt));
        // The ciphertext of one IC pasted into another record (other keyed hash).
        let mut moved = v.protect(&ic("850505-10-1234"));
        moved.ciphertext = p.ciphertext.clone();
        assert_eq!(v.reveal(&moved, day()), Err(VaultError::Decrypt));
        let mut short = p;
        short.ciphertext.truncate(10);
        assert_eq!(v.reveal(&short, day()), Err(VaultError::Malformed));
    }

    #[test]
    fn the_embedded_default_keeps_random_local_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ic-keys");
        let first = IcVault::local(&path).unwrap();
        let p = first.protect(&ic("900101-14-5678"));
        let again = IcVault::local(&path).unwrap();
        assert_eq!(
            again.reveal(&p, day()).unwrap(),
            ic("900101-14-5678"),
            "same keys reloaded"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn keys_come_from_secrets_as_hex() {
        let mut secrets = Secrets::default();
        assert!(IcVault::from_secrets(&secrets).unwrap().is_none());
        secrets.ic_encryption_key = Some(Secret::new("ab".repeat(32)));
        assert_eq!(
            IcVault::from_secrets(&secrets).unwrap_err(),
            VaultError::HalfConfigured
        );
        secrets.ic_hash_key = Some(Secret::new("zz".repeat(32)));
        assert!(matches!(
            IcVault::from_secrets(&secrets),
            Err(VaultError::BadKey {
                name: "SEMBANG_IC_HASH_KEY"
            })
        ));
        secrets.ic_hash_key = Some(Secret::new("ab".repeat(32)));
        assert_eq!(
            IcVault::from_secrets(&secrets).unwrap_err(),
            VaultError::SameKeys
        );
        secrets.ic_hash_key = Some(Secret::new("cd".repeat(31)));
        assert!(matches!(
            IcVault::from_secrets(&secrets),
            Err(VaultError::BadKey { .. })
        ));
        secrets.ic_hash_key = Some(Secret::new("cd".repeat(32)));
        assert!(IcVault::from_secrets(&secrets).unwrap().is_some());
    }
}
