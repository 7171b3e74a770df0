//! The GET subscription handshake: `hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`.
//! A match answers 200 with the raw challenge; anything else is 403.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// Why the handshake was refused. Every variant maps to HTTP 403; none echoes a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Forbidden {
    #[error("hub.mode is not \"subscribe\"")]
    WrongMode,
    #[error("hub.verify_token does not match")]
    TokenMismatch,
    #[error("hub.challenge is missing")]
    MissingChallenge,
    #[error("no verify token is configured")]
    NotConfigured,
}

/// Returns the challenge to echo when the request is a subscription with the configured token.
pub fn verify_subscription(
    mode: Option<&str>,
    verify_token: Option<&str>,
    challenge: Option<&str>,
    configured_token: &str,
) -> Result<String, Forbidden> {
    if configured_token.is_empty() {
        return Err(Forbidden::NotConfigured);
    }
    if mode != Some("subscribe") {
        return Err(Forbidden::WrongMode);
    }
    if !tokens_equal(verify_token.unwrap_or(""), configured_token) {
        return Err(Forbidden::TokenMismatch);
    }
    match challenge {
        Some(c) if !c.is_empty() => Ok(c.to_owned()),
        _ => Err(Forbidden::MissingChallenge),
    }
}

/// Constant-time in the content and length of the tokens: both are reduced to a MAC under
/// the same key and the MACs are compared with `Mac::verify_slice` (constant-time).
/// Constant-time comparison of a presented token with the configured one (webhook verify
/// token, gateway token, admin API keys).
pub fn tokens_equal(given: &str, configured: &str) -> bool {
    const KEY: &[u8] = b"sembang verify-token comparison";
    let digest = |s: &str| {
        let mut m = Hmac::<Sha256>::new_from_slice(KEY).expect("HMAC accepts any key length");
        m.update(s.as_bytes());
        m
    };
    let expected = digest(configured).finalize().into_bytes();
    digest(given).verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_token_echoes_the_challenge() {
        assert_eq!(
            verify_subscription(
                Some("subscribe"),
                Some("s3cret"),
                Some("1158201444"),
                "s3cret"
            ),
            Ok("1158201444".to_owned())
        );
    }

    #[test]
    fn refusals() {
        let v = |m, t, c| verify_subscription(m, t, c, "s3cret");
        assert_eq!(
            v(Some("unsubscribe"), Some("s3cret"), Some("1")),
            Err(Forbidden::WrongMode)
        );
        assert_eq!(
            v(None, Some("s3cret"), Some("1")),
            Err(Forbidden::WrongMode)
        );
        assert_eq!(
            v(Some("subscribe"), Some("s3cre"), Some("1")),
            Err(Forbidden::TokenMismatch)
        );
        assert_eq!(
            v(Some("subscribe"), Some("s3cret "), Some("1")),
            Err(Forbidden::TokenMismatch)
        );
        assert_eq!(
            v(Some("subscribe"), None, Some("1")),
            Err(Forbidden::TokenMismatch)
        );
        assert_eq!(
            v(Some("subscribe"), Some("s3cret"), None),
            Err(Forbidden::MissingChallenge)
        );
        assert_eq!(
            v(Some("subscribe"), Some("s3cret"), Some("")),
            Err(Forbidden::MissingChallenge)
        );
        assert_eq!(
            verify_subscription(Some("subscribe"), Some(""), Some("1"), ""),
            Err(Forbidden::NotConfigured)
        );
    }
}
