//! Tracking links. A campaign's links are rewritten per recipient to `<base>/r/<token>`;
//! the token seals (campaign, recipient, which link) with XChaCha20-Poly1305 under the
//! deployment's link key, so it can be neither forged nor enumerated, and a forwarded link
//! does not show whose it was. The nonce is derived from the sealed data (as in SIV), so a
//! recipient's link is the same in every copy of the message (a replayed send renders the
//! same text).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::domain::phone::PhoneNumber;

/// At most this many links of a message are tracked (the rest are sent as written).
pub const MAX_LINKS: usize = 10;
const NONCE_BYTES: usize = 24;
/// Domain separation of the token's associated data (a format version too).
const AAD: &[u8] = b"sembang-link-v1";

/// Who clicked which link of which campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRef {
    pub campaign_id: String,
    pub recipient: PhoneNumber,
    pub link: u8,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LinkError {
    /// Not a token this deployment issued (forged, altered, truncated, another key).
    #[error("not a valid tracking link")]
    Invalid,
}

pub struct LinkSealer {
    cipher: XChaCha20Poly1305,
    nonce_key: [u8; 32],
}

impl std::fmt::Debug for LinkSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSealer(<key>)")
    }
}

impl LinkSealer {
    /// From 32 bytes of key material (derived from the deployment's secrets).
    pub fn new(key: [u8; 32]) -> Self {
        let derive = |label: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
            mac.update(label);
            let out: [u8; 32] = mac.finalize().into_bytes().into();
            out
        };
        LinkSealer {
            cipher: XChaCha20Poly1305::new(&derive(b"cipher").into()),
            nonce_key: derive(b"nonce"),
        }
    }

    pub fn seal(&self, link: &LinkRef) -> String {
        let mut plain = Vec::with_capacity(64);
        plain.push(link.link);
        let digits: u64 = link.recipient.as_str().parse().unwrap_or(0);
        plain.extend_from_slice(&digits.to_be_bytes());
        plain.extend_from_slice(link.campaign_id.as_bytes());
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.nonce_key).expect("any key length");
        mac.update(&plain);
        let digest = mac.finalize().into_bytes();
        let nonce = XNonce::from_slice(&digest[..NONCE_BYTES]);
        let sealed = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .expect("sealing in memory cannot fail");
        let mut token = digest[..NONCE_BYTES].to_vec();
        token.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(token)
    }

    pub fn open(&self, token: &str) -> Result<LinkRef, LinkError> {
        // A campaign id is at most a few dozen bytes: anything longer is not ours.
        if token.len() > 256 {
            return Err(LinkError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| LinkError::Invalid)?;
        if bytes.len() < NONCE_BYTES + 16 + 9 {
            return Err(LinkError::Invalid);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .map_err(|_| LinkError::Invalid)?;
        let digits = u64::from_be_bytes(plain[1..9].try_into().map_err(|_| LinkError::Invalid)?);
        Ok(LinkRef {
            link: plain[0],
            recipient: PhoneNumber::from_e164_digits(&digits.to_string())
                .map_err(|_| LinkError::Invalid)?,
            campaign_id: String::from_utf8(plain[9..].to_vec()).map_err(|_| LinkError::Invalid)?,
        })
    }
}

/// The http(s) links of a text, in order (at most [`MAX_LINKS`]), as byte ranges.
pub fn find_links(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut found = Vec::new();
    let mut from = 0;
    while found.len() < MAX_LINKS {
        let rest = &text[from..];
        let Some(start) = ["https://", "http://"]
            .iter()
            .filter_map(|scheme| rest.find(scheme))
            .min()
        else {
            break;
        };
        let start = from + start;
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .map_or(text.len(), |n| start + n);
        // A sentence's closing punctuation is not part of the link.
        let trimmed = text[start..end].trim_end_matches(['.', ',', '!', '?', ')', ';', ':']);
        let end = start + trimmed.len();
        if url::Url::parse(trimmed).is_ok_and(|u| u.host_str().is_some()) {
            found.push(start..end);
        }
        from = end.max(start + 1);
    }
    found
}

/// The `n`-th link of `text`, as [`find_links`] numbers them.
pub fn nth_link(text: &str, n: u8) -> Option<&str> {
    find_links(text)
        .get(usize::from(n))
        .map(|r| &text[r.clone()])
}

/// `text` with each link replaced by `<base>/r/<token>` for this recipient.
pub fn rewrite(
    text: &str,
    base: &str,
    campaign_id: &str,
    recipient: &PhoneNumber,
    sealer: &LinkSealer,
) -> String {
    let base = base.trim_end_matches('/');
    let mut out = String::with_capacity(text.len() + 64);
    let mut last = 0;
    for (i, range) in find_links(text).into_iter().enumerate() {
        out.push_str(&text[last..range.start]);
        let token = sealer.seal(&LinkRef {
            campaign_id: campaign_id.to_string(),
            recipient: recipient.clone(),
            link: i as u8,
        });
        out.push_str(&format!("{base}/r/{token}"));
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("0123456789").unwrap()
    }

    #[test]
    fn tokens_round_trip_and_are_stable_per_recipient() {
        let sealer = LinkSealer::new([7; 32]);
        let link = LinkRef {
            campaign_id: "4f6c1a2e-0000-4000-8000-000000000001".into(),
            recipient: phone(),
            link: 2,
        };
        let token = sealer.seal(&link);
        assert_eq!(sealer.seal(&link), token, "deterministic");
        assert_eq!(sealer.open(&token), Ok(link.clone()));
        assert!(!token.contains("0123456789") && !token.contains("60123456789"));
        let other = LinkRef {
            recipient: PhoneNumber::parse("0123456788").unwrap(),
            ..link.clone()
        };
        assert_ne!(sealer.seal(&other), token);
    }

    #[test]
    fn forged_altered_or_foreign_tokens_are_refused() {
        let sealer = LinkSealer::new([7; 32]);
        let token = sealer.seal(&LinkRef {
            campaign_id: "c1".into(),
            recipient: phone(),
            link: 0,
        });
        assert_eq!(
            LinkSealer::new([8; 32]).open(&token),
            Err(LinkError::Invalid)
        );
        // Flip one character anywhere.
        for i in [0, token.len() / 2, token.len() - 1] {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(sealer.open(&altered), Err(LinkError::Invalid), "{i}");
        }
        for junk in [
            "",
            "abc",
            "../../etc/passwd",
            &"A".repeat(300),
            &token[..token.len() - 3],
        ] {
            assert_eq!(sealer.open(junk), Err(LinkError::Invalid), "{junk}");
        }
    }

    #[test]
    fn links_are_found_and_rewritten_keeping_the_text_around_them() {
        let text = "Sale! https://shop.example.my/raya?x=1. Also http://a.my, not ftp://b.my";
        let links: Vec<&str> = find_links(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(links, ["https://shop.example.my/raya?x=1", "http://a.my"]);
        assert_eq!(nth_link(text, 1), Some("http://a.my"));
        assert_eq!(nth_link(text, 2), None);
        let sealer = LinkSealer::new([1; 32]);
        let out = rewrite(text, "https://t.example/", "c1", &phone(), &sealer);
        assert!(out.starts_with("Sale! https://t.example/r/"), "{out}");
        assert!(out.contains(". Also https://t.example/r/"), "{out}");
        assert!(out.ends_with(", not ftp://b.my"), "{out}");
        let token = out
            .split("https://t.example/r/")
            .nth(2)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        assert_eq!(sealer.open(token).unwrap().link, 1);
        assert_eq!(
            rewrite("no links", "https://t", "c1", &phone(), &sealer),
            "no links"
        );
    }
}
