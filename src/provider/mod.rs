//! The outbound side: sending WhatsApp messages through a provider. The engine talks to one
//! [`WhatsappProvider`]; the Cloud API is the primary one, wabot.my an unofficial gateway, and
//! the sandbox records messages instead of sending them. [`fake_cloud_api`] is a local stand-in
//! for the Cloud API that tests and the load test send to.

pub mod cloud_api;
pub mod error;
pub mod fake_cloud_api;
pub mod rate_limit;
pub mod sandbox;
pub mod wabot;

use serde::{Deserialize, Serialize};

use crate::domain::phone::PhoneNumber;

pub use crate::topics::outbound::{OutboundContent, ValidationError, MAX_TEXT_CHARS};
pub use cloud_api::{CloudApiConfig, CloudApiProvider};
pub use error::{ErrorClass, ProviderError};
pub use rate_limit::{PairLimiter, RateLimiter, TokenBucket};
pub use sandbox::{SandboxMessage, SandboxProvider};
pub use wabot::{WabotConfig, WabotProvider};

/// The connect timeout for a request timeout: a connection that cannot open must time out
/// as a connect error (nothing sent: retried) before the whole request times out (outcome
/// unknown: not retried).
pub(crate) fn connect_timeout_within(request_timeout: std::time::Duration) -> std::time::Duration {
    const USUAL: std::time::Duration = std::time::Duration::from_secs(3);
    USUAL.min(request_timeout / 2)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub to: PhoneNumber,
    pub content: OutboundContent,
}

impl OutboundMessage {
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.content.validate()
    }
}

/// The provider took the message; delivery is reported later through status webhooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The provider's message id (`wamid.…` for the Cloud API); statuses refer to it.
    pub wamid: String,
}

#[async_trait::async_trait]
pub trait WhatsappProvider: Send + Sync {
    /// "sandbox", "cloud_api" or "wabot".
    fn name(&self) -> &'static str;

    /// Sends one message. `phone_number_id`: the business number that sends.
    async fn send(
        &self,
        phone_number_id: &str,
        message: &OutboundMessage,
    ) -> Result<Accepted, ProviderError>;
}

/// The business number goes into a URL path, so only ids that cannot change the path pass.
fn check_phone_number_id(id: &str) -> Result<(), ValidationError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ValidationError::BadPhoneNumberId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_times_out_before_the_request_does() {
        use std::time::Duration;
        assert_eq!(
            connect_timeout_within(Duration::from_secs(10)),
            Duration::from_secs(3)
        );
        assert_eq!(
            connect_timeout_within(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert!(connect_timeout_within(Duration::from_millis(100)) < Duration::from_millis(100));
    }
    use serde_json::json;

    fn text(body: &str) -> OutboundContent {
        OutboundContent::Text {
            body: body.into(),
            preview_url: false,
        }
    }

    #[test]
    fn text_length_is_counted_in_characters() {
        assert_eq!(text("Terima kasih!").validate(), Ok(()));
        assert_eq!(text(&"é".repeat(MAX_TEXT_CHARS)).validate(), Ok(()));
        assert_eq!(
            text(&"a".repeat(MAX_TEXT_CHARS + 1)).validate(),
            Err(ValidationError::TextTooLong {
                chars: MAX_TEXT_CHARS + 1,
                max: MAX_TEXT_CHARS
            })
        );
        assert_eq!(text("").validate(), Err(ValidationError::EmptyText));
        assert_eq!(text(" \n ").validate(), Err(ValidationError::EmptyText));
    }

    #[test]
    fn media_needs_exactly_one_source() {
        let image = |link: Option<&str>, id: Option<&str>| OutboundContent::Image {
            link: link.map(Into::into),
            media_id: id.map(Into::into),
            caption: None,
        };
        assert_eq!(image(Some("https://x/a.jpg"), None).validate(), Ok(()));
        assert_eq!(image(None, Some("123")).validate(), Ok(()));
        assert_eq!(
            image(None, None).validate(),
            Err(ValidationError::MissingMedia { kind: "image" })
        );
        assert_eq!(
            image(Some(""), None).validate(),
            Err(ValidationError::MissingMedia { kind: "image" })
        );
        assert_eq!(
            image(Some("https://x/a.jpg"), Some("1")).validate(),
            Err(ValidationError::LinkAndMediaId { kind: "image" })
        );
        let video = OutboundContent::Video {
            link: None,
            media_id: None,
            caption: Some("c".into()),
        };
        assert_eq!(
            video.validate(),
            Err(ValidationError::MissingMedia { kind: "video" })
        );
    }

    #[test]
    fn template_checks() {
        let template = |name: &str, language: &str, components| OutboundContent::Template {
            name: name.into(),
            language: language.into(),
            components,
        };
        assert_eq!(template("promo", "ms", json!([])).validate(), Ok(()));
        assert_eq!(
            template("promo", "ms", serde_json::Value::Null).validate(),
            Ok(())
        );
        assert_eq!(
            template(" ", "ms", json!([])).validate(),
            Err(ValidationError::EmptyTemplateName)
        );
        assert_eq!(
            template("promo", "", json!([])).validate(),
            Err(ValidationError::EmptyTemplateLanguage)
        );
        assert_eq!(
            template("promo", "en", json!({"type": "body"})).validate(),
            Err(ValidationError::ComponentsNotArray)
        );
    }

    #[test]
    fn kind_and_body_text() {
        assert_eq!(text("hi").kind(), "text");
        assert_eq!(text("hi").body_text(), Some("hi"));
        let image = OutboundContent::Image {
            link: Some("https://x/a.jpg".into()),
            media_id: None,
            caption: Some("Resit".into()),
        };
        assert_eq!((image.kind(), image.body_text()), ("image", Some("Resit")));
        let video = OutboundContent::Video {
            link: None,
            media_id: Some("9".into()),
            caption: None,
        };
        assert_eq!((video.kind(), video.body_text()), ("video", None));
        let template = OutboundContent::Template {
            name: "tier_upgrade".into(),
            language: "ms".into(),
            components: json!([]),
        };
        assert_eq!(
            (template.kind(), template.body_text()),
            ("template", Some("tier_upgrade"))
        );
    }

    #[test]
    fn serde_shape_is_tagged_by_type() {
        let message = OutboundMessage {
            to: PhoneNumber::parse("012-345 6789").unwrap(),
            content: OutboundContent::Text {
                body: "Hai".into(),
                preview_url: true,
            },
        };
        let value = serde_json::to_value(&message).unwrap();
        assert_eq!(
            value,
            json!({"to": "60123456789", "content": {"type": "text", "body": "Hai", "preview_url": true}})
        );
        let back: OutboundMessage = serde_json::from_value(value).unwrap();
        assert_eq!(back, message);
        let image: OutboundContent =
            serde_json::from_value(json!({"type": "image", "media_id": "42"})).unwrap();
        assert_eq!(
            image,
            OutboundContent::Image {
                link: None,
                media_id: Some("42".into()),
                caption: None
            }
        );
    }

    #[test]
    fn phone_number_ids_cannot_change_the_path() {
        assert_eq!(check_phone_number_id("106540352242922"), Ok(()));
        for bad in ["", "1/../2", "12?x=1", "1 2"] {
            assert_eq!(
                check_phone_number_id(bad),
                Err(ValidationError::BadPhoneNumberId),
                "{bad:?}"
            );
        }
    }
}
