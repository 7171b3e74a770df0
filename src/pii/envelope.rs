//! The one layout of everything Sembang seals with XChaCha20-Poly1305 (IC numbers, photos,
//! phone pseudonyms): `header` | 24-byte nonce | ciphertext and tag, with associated data
//! that binds the ciphertext to what it belongs to.

use chacha20poly1305::aead::{Aead, AeadCore, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

pub const NONCE_BYTES: usize = 24;

/// Why sealed bytes did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsealed {
    /// Not this layout: another header, or too short.
    Malformed,
    /// Wrong key, tampered bytes, or other associated data.
    Rejected,
}

/// A fresh random nonce, for values that may repeat (the same IC, the same photo).
pub fn random_nonce() -> XNonce {
    XChaCha20Poly1305::generate_nonce(&mut OsRng)
}

/// `header` | `nonce` | the sealed `msg`.
pub fn seal(
    cipher: &XChaCha20Poly1305,
    header: &[u8],
    nonce: &XNonce,
    msg: &[u8],
    aad: &[u8],
) -> Vec<u8> {
    let sealed = cipher
        .encrypt(nonce, Payload { msg, aad })
        .expect("XChaCha20-Poly1305 encrypts any message under 256 GB");
    let mut out = Vec::with_capacity(header.len() + NONCE_BYTES + sealed.len());
    out.extend_from_slice(header);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    out
}

/// The message of bytes made by [`seal`] with the same `header` and `aad`.
pub fn open(
    cipher: &XChaCha20Poly1305,
    header: &[u8],
    bytes: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, Unsealed> {
    let rest = bytes.strip_prefix(header).ok_or(Unsealed::Malformed)?;
    if rest.len() <= NONCE_BYTES {
        return Err(Unsealed::Malformed);
    }
    let (nonce, sealed) = rest.split_at(NONCE_BYTES);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
        .map_err(|_| Unsealed::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::KeyInit;

    #[test]
    fn opens_only_with_its_header_key_and_associated_data() {
        let cipher = XChaCha20Poly1305::new((&[1u8; 32]).into());
        let sealed = seal(&cipher, b"H1", &random_nonce(), b"secret", b"owner");
        assert_eq!(open(&cipher, b"H1", &sealed, b"owner").unwrap(), b"secret");
        assert_eq!(
            open(&cipher, b"H2", &sealed, b"owner"),
            Err(Unsealed::Malformed)
        );
        assert_eq!(
            open(&cipher, b"H1", &sealed[..20], b"owner"),
            Err(Unsealed::Malformed)
        );
        assert_eq!(
            open(&cipher, b"H1", &sealed, b"other"),
            Err(Unsealed::Rejected)
        );
        let other = XChaCha20Poly1305::new((&[2u8; 32]).into());
        assert_eq!(
            open(&other, b"H1", &sealed, b"owner"),
            Err(Unsealed::Rejected)
        );
    }
}
