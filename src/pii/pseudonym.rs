//! Phone numbers in ClickHouse as pseudonyms: analysts join and count contacts across tables
//! by one stable value per number, and never see the number. A pseudonym is a deterministic
//! seal (XChaCha20-Poly1305 with the nonce an HMAC of the number, as in SIV): the same number
//! always gives the same text, nothing without the key links it back, and the engine (which
//! has the key) can restore the number for its own reads. `p1:` + base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::envelope::{self, NONCE_BYTES};

const PREFIX: &str = "p1:";

/// The key of the pseudonyms (its `Debug` never prints it).
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey(pub [u8; 32]);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

pub struct PhonePseudonyms {
    cipher: XChaCha20Poly1305,
    nonce_key: [u8; 32],
}

fn subkey(key: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

impl PhonePseudonyms {
    pub fn new(key: &PseudonymKey) -> Self {
        PhonePseudonyms {
            cipher: XChaCha20Poly1305::new((&subkey(&key.0, b"phone-pseudonym/seal")).into()),
            nonce_key: subkey(&key.0, b"phone-pseudonym/nonce"),
        }
    }

    /// The pseudonym of `phone` (its E.164 digits).
    pub fn seal(&self, phone: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.nonce_key).expect("any key length");
        mac.update(phone.as_bytes());
        let digest = mac.finalize().into_bytes();
        let nonce = XNonce::from_slice(&digest[..NONCE_BYTES]);
        let bytes = envelope::seal(&self.cipher, b"", nonce, phone.as_bytes(), b"");
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The number behind a pseudonym; a value that is no pseudonym (written before they
    /// were used) is returned as it is; `None` for one that does not open under this key.
    pub fn open(&self, value: &str) -> Option<String> {
        let Some(encoded) = value.strip_prefix(PREFIX) else {
            return Some(value.to_string());
        };
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        let plain = envelope::open(&self.cipher, b"", &bytes, b"").ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stable_opaque_value_per_number() {
        let pseudonyms = PhonePseudonyms::new(&PseudonymKey([3; 32]));
        let siti = pseudonyms.seal("60123456789");
        assert!(siti.starts_with(PREFIX));
        assert!(!siti.contains("60123456789") && !siti.contains("123456789"));
        assert_eq!(pseudonyms.seal("60123456789"), siti, "a join key");
        assert_ne!(pseudonyms.seal("60123456788"), siti);
        assert_eq!(pseudonyms.open(&siti).as_deref(), Some("60123456789"));
        assert_eq!(
            pseudonyms.open("60123456789").as_deref(),
            Some("60123456789")
        );
        let other = PhonePseudonyms::new(&PseudonymKey([4; 32]));
        assert_ne!(
            other.seal("60123456789"),
            siti,
            "another deployment, other values"
        );
        assert_eq!(other.open(&siti), None);
        assert_eq!(format!("{:?}", PseudonymKey([3; 32])), "PseudonymKey(..)");
    }
}
