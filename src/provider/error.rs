//! Why a send failed, and what the sender should do about it ([`ErrorClass`]). No message built
//! here carries an access token: response bodies and transport errors are redacted first.

use std::error::Error as _;
use std::time::Duration;

use thiserror::Error;

use crate::topics::outbound::ValidationError;

/// What the sender does next: wait and retry slower, retry with backoff, or give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    RateLimited,
    /// The provider did not take the message (it said so, or the connection never opened):
    /// sending again cannot duplicate it.
    Transient,
    Permanent,
    /// The request went out but no answer came back (timeout, connection lost): the
    /// provider may have taken it, so sending again could message the customer twice.
    OutcomeUnknown,
}

/// Graph codes that mean "slow down", not "this message is bad": throughput (130429), pair
/// rate (131056), spam rate (131048), ecosystem/marketing cap (131049), throughput upgrade in
/// progress (131057) and the API call rate limits (80007, 4).
/// Codes that ask to slow down and try again soon. Not 131049 (Meta's per-user marketing
/// cap): retried after hours, by "retry the failed", not within a send.
const RATE_LIMIT_CODES: [i64; 6] = [130429, 131056, 131048, 131057, 80007, 4];

/// How much of an unexpected response body an error keeps.
const EXCERPT_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProviderError {
    /// A Graph-style error body: `{"error":{"message","type","code","error_data":{"details"},
    /// "error_subcode","fbtrace_id"}}`.
    #[error("API error {code} (HTTP {status}, {title}): {message}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Api {
        status: u16,
        code: i64,
        subcode: Option<i64>,
        /// `error_user_title` when the API gives one, else the error `type` (e.g. `OAuthException`).
        title: String,
        message: String,
        details: Option<String>,
        fbtrace_id: Option<String>,
    },
    /// A gateway answered in its own format that it did not take the message.
    #[error("provider refused the message (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// A non-2xx answer without a recognizable error body.
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Unreachable(String),
    /// The connection failed after it was made (reset, closed mid-response).
    #[error("network error: {0}")]
    Network(String),
    /// A 2xx answer that does not say what was accepted.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    #[error("{provider} cannot send {what}")]
    Unsupported {
        provider: &'static str,
        what: &'static str,
    },
    #[error("invalid message: {0}")]
    InvalidMessage(#[from] ValidationError),
    /// The provider could not be built (missing token, HTTP client setup).
    #[error("provider setup: {0}")]
    Setup(String),
}

impl ProviderError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Api { code, .. } if RATE_LIMIT_CODES.contains(code) => {
                ErrorClass::RateLimited
            }
            ProviderError::Api { status, .. }
            | ProviderError::Rejected { status, .. }
            | ProviderError::Http { status, .. } => class_of_status(*status),
            ProviderError::Unreachable(_) => ErrorClass::Transient,
            ProviderError::Timeout(_) | ProviderError::Network(_) => ErrorClass::OutcomeUnknown,
            ProviderError::InvalidResponse(_)
            | ProviderError::Unsupported { .. }
            | ProviderError::InvalidMessage(_)
            | ProviderError::Setup(_) => ErrorClass::Permanent,
        }
    }

    /// The Graph error code, when the API gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            ProviderError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// 429 is a rate limit whatever the body says. A gateway error (502, 504) comes from a
/// proxy that may have passed the request on: unknown. Another 5xx is the server saying it
/// did not take it: it may pass later. Any other status will not.
fn class_of_status(status: u16) -> ErrorClass {
    match status {
        429 => ErrorClass::RateLimited,
        502 | 504 => ErrorClass::OutcomeUnknown,
        500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// Replaces every occurrence of the secret (a gateway may echo the request back).
pub(crate) fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "***")
    }
}

/// The start of a body, for an error message: lossy UTF-8, cut at a character boundary.
pub(crate) fn excerpt(body: &[u8], secret: &str) -> String {
    let text = redact(&String::from_utf8_lossy(body), secret);
    let mut cut: String = text.chars().take(EXCERPT_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Maps a transport failure; `timeout` is the client's request timeout, for the message.
pub(crate) fn from_transport(
    err: reqwest::Error,
    timeout: Duration,
    secret: &str,
) -> ProviderError {
    // reqwest's Display omits the cause ("connection refused"); the chain is what helps.
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let text = redact(&text, secret);
    if err.is_connect() {
        ProviderError::Unreachable(text)
    } else if err.is_timeout() {
        ProviderError::Timeout(timeout)
    } else {
        ProviderError::Network(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64) -> ProviderError {
        ProviderError::Api {
            status,
            code,
            subcode: None,
            title: "OAuthException".into(),
            message: "m".into(),
            details: None,
            fbtrace_id: None,
        }
    }

    #[test]
    fn rate_limit_codes_win_over_status() {
        for code in RATE_LIMIT_CODES {
            for status in [400, 429, 500] {
                assert_eq!(api(status, code).class(), ErrorClass::RateLimited, "{code}");
            }
        }
    }

    #[test]
    fn other_api_errors_follow_the_status() {
        assert_eq!(api(400, 131026).class(), ErrorClass::Permanent);
        assert_eq!(api(400, 131047).class(), ErrorClass::Permanent);
        assert_eq!(api(401, 190).class(), ErrorClass::Permanent);
        assert_eq!(api(500, 131000).class(), ErrorClass::Transient);
        assert_eq!(api(503, 2).class(), ErrorClass::Transient);
        assert_eq!(api(400, 131026).code(), Some(131026));
    }

    #[test]
    fn transport_and_local_errors() {
        let http = |status| ProviderError::Http {
            status,
            body: String::new(),
        };
        assert_eq!(http(503).class(), ErrorClass::Transient);
        assert_eq!(http(500).class(), ErrorClass::Transient);
        assert_eq!(http(502).class(), ErrorClass::OutcomeUnknown);
        assert_eq!(http(504).class(), ErrorClass::OutcomeUnknown);
        assert_eq!(http(404).class(), ErrorClass::Permanent);
        assert_eq!(http(429).class(), ErrorClass::RateLimited);
        let rejected = ProviderError::Rejected {
            status: 200,
            message: "instance not found".into(),
        };
        assert_eq!(rejected.class(), ErrorClass::Permanent);
        assert_eq!(rejected.code(), None);
        let unreachable = ProviderError::Unreachable("refused".into());
        assert_eq!(unreachable.class(), ErrorClass::Transient);
        assert_eq!(unreachable.code(), None);
        // The request went out: retrying could send it twice.
        for unknown in [
            ProviderError::Timeout(Duration::from_secs(10)),
            ProviderError::Network("reset".into()),
        ] {
            assert_eq!(unknown.class(), ErrorClass::OutcomeUnknown);
            assert_eq!(unknown.code(), None);
        }
        for permanent in [
            ProviderError::InvalidResponse("x".into()),
            ProviderError::Unsupported {
                provider: "wabot",
                what: "templates",
            },
            ProviderError::InvalidMessage(ValidationError::EmptyText),
            ProviderError::Setup("no token".into()),
        ] {
            assert_eq!(permanent.class(), ErrorClass::Permanent);
        }
    }

    #[test]
    fn messages_read_well() {
        let mut err = api(400, 131026);
        if let ProviderError::Api { details, .. } = &mut err {
            *details = Some("Message undeliverable".into());
        }
        assert_eq!(
            err.to_string(),
            "API error 131026 (HTTP 400, OAuthException): m (Message undeliverable)"
        );
        assert_eq!(
            ProviderError::from(ValidationError::TextTooLong {
                chars: 5000,
                max: 4096
            })
            .to_string(),
            "invalid message: text body has 5000 characters; at most 4096 are allowed"
        );
    }

    #[test]
    fn excerpts_are_short_and_redacted() {
        let body = format!("{{\"echo\":\"tok-123\",\"pad\":\"{}\"}}", "x".repeat(500));
        let cut = excerpt(body.as_bytes(), "tok-123");
        assert!(!cut.contains("tok-123"));
        assert!(cut.contains("***"));
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("ringkas".as_bytes(), "t"), "ringkas");
        assert_eq!(excerpt(&[0xff, b'a'], ""), "\u{fffd}a");
    }
}
