//! `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256(app secret, raw body bytes).
//! Verified on the raw bytes before any parsing, in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "sha256=";
const MAC_LEN: usize = 32;

/// Why a signature header was rejected. Never carries the secret or the expected MAC.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("X-Hub-Signature-256 header is malformed: {0}")]
    Malformed(MalformedSignature),
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MalformedSignature {
    #[error("expected the sha256= prefix")]
    MissingPrefix,
    #[error("the digest is not hexadecimal")]
    BadHex,
    #[error("the digest has {0} bytes, expected 32")]
    WrongLength(usize),
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length")
}

/// The header value for `body`: `sha256=<lowercase hex>`. For tests, docs and load tests.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("{PREFIX}{}", hex::encode(m.finalize().into_bytes()))
}

/// Checks the header (as received, `None` when absent) against the raw body.
/// The digest comparison is constant-time (`Mac::verify_slice`).
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    let header = header.ok_or(SignatureError::Missing)?;
    let digest_hex = header
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed(MalformedSignature::MissingPrefix))?;
    let digest = hex::decode(digest_hex).map_err(|e| match e {
        hex::FromHexError::OddLength => {
            SignatureError::Malformed(MalformedSignature::WrongLength(digest_hex.len() / 2))
        }
        _ => SignatureError::Malformed(MalformedSignature::BadHex),
    })?;
    if digest.len() != MAC_LEN {
        return Err(SignatureError::Malformed(MalformedSignature::WrongLength(
            digest.len(),
        )));
    }
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    // printf '%s' "$BODY" | openssl dgst -sha256 -hmac app-secret
    const KNOWN: &str = "sha256=d3e4f9da0ce6c71ab3dba55929b8eeeee2455349e534924ead19f98d143e904f";

    #[test]
    fn known_answer() {
        assert_eq!(sign(SECRET, BODY), KNOWN);
        assert_eq!(verify_signature(SECRET, Some(KNOWN), BODY), Ok(()));
    }

    #[test]
    fn uppercase_hex_and_surrounding_space_are_accepted() {
        let upper = format!("sha256={}", KNOWN["sha256=".len()..].to_uppercase());
        assert_eq!(
            verify_signature(SECRET, Some(&format!(" {upper} ")), BODY),
            Ok(())
        );
    }

    #[test]
    fn missing() {
        assert_eq!(
            verify_signature(SECRET, None, BODY),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(SECRET, Some("  "), BODY),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn malformed() {
        let hexpart = &KNOWN["sha256=".len()..];
        assert_eq!(
            verify_signature(SECRET, Some(hexpart), BODY),
            Err(SignatureError::Malformed(MalformedSignature::MissingPrefix))
        );
        assert_eq!(
            verify_signature(SECRET, Some(&format!("sha1={hexpart}")), BODY),
            Err(SignatureError::Malformed(MalformedSignature::MissingPrefix))
        );
        assert_eq!(
            verify_signature(SECRET, Some(&format!("sha256={}", "zz".repeat(32))), BODY),
            Err(SignatureError::Malformed(MalformedSignature::BadHex))
        );
        assert_eq!(
            verify_signature(SECRET, Some(&KNOWN[..KNOWN.len() - 2]), BODY),
            Err(SignatureError::Malformed(MalformedSignature::WrongLength(
                31
            )))
        );
        assert_eq!(
            verify_signature(SECRET, Some(&format!("{KNOWN}00")), BODY),
            Err(SignatureError::Malformed(MalformedSignature::WrongLength(
                33
            )))
        );
        assert_eq!(
            verify_signature(SECRET, Some(&KNOWN[..KNOWN.len() - 1]), BODY),
            Err(SignatureError::Malformed(MalformedSignature::WrongLength(
                31
            )))
        );
    }

    #[test]
    fn mismatch_on_other_secret_or_digest() {
        assert_eq!(
            verify_signature(b"other", Some(KNOWN), BODY),
            Err(SignatureError::Mismatch)
        );
        let zero = format!("sha256={}", "00".repeat(32));
        assert_eq!(
            verify_signature(SECRET, Some(&zero), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn every_single_byte_change_fails() {
        for i in 0..BODY.len() {
            let mut body = BODY.to_vec();
            body[i] ^= 0x01;
            assert_eq!(
                verify_signature(SECRET, Some(KNOWN), &body),
                Err(SignatureError::Mismatch),
                "byte {i}"
            );
        }
        let mut longer = BODY.to_vec();
        longer.push(b' ');
        assert_eq!(
            verify_signature(SECRET, Some(KNOWN), &longer),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn errors_do_not_leak_the_expected_mac() {
        let expected_hex = &KNOWN["sha256=".len()..];
        let zero = format!("sha256={}", "00".repeat(32));
        let err = verify_signature(SECRET, Some(&zero), BODY).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(expected_hex));
        assert!(!shown.contains("app-secret"));
    }
}
