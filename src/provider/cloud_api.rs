//! The WhatsApp Business Cloud API: `POST {base}/{version}/{phone_number_id}/messages` with a
//! Bearer token. Request bodies and response parsing are plain functions, tested without HTTP.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{excerpt, from_transport, ProviderError};
use super::{check_phone_number_id, Accepted, OutboundContent, OutboundMessage, WhatsappProvider};
use crate::config::{Secret, WhatsappConfig};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudApiConfig {
    /// e.g. `https://graph.facebook.com`, no trailing slash needed.
    pub base_url: String,
    /// e.g. `v21.0`.
    pub api_version: String,
    /// Whole request, connect to last body byte.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl CloudApiConfig {
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

    pub fn new(base_url: impl Into<String>, api_version: impl Into<String>) -> Self {
        CloudApiConfig {
            base_url: base_url.into(),
            api_version: api_version.into(),
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    pub fn from_whatsapp(config: &WhatsappConfig) -> Self {
        let request_timeout = Duration::from_millis(config.request_timeout_ms);
        CloudApiConfig {
            request_timeout,
            connect_timeout: super::connect_timeout_within(request_timeout),
            ..Self::new(&config.api_base_url, &config.api_version)
        }
    }
}

pub struct CloudApiProvider {
    client: reqwest::Client,
    config: CloudApiConfig,
    token: Secret,
}

impl CloudApiProvider {
    pub fn new(config: CloudApiConfig, token: Secret) -> Result<Self, ProviderError> {
        if token.expose().trim().is_empty() {
            return Err(ProviderError::Setup(
                "the Cloud API access token is empty".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ProviderError::Setup(format!("HTTP client: {e}")))?;
        Ok(CloudApiProvider {
            client,
            config,
            token,
        })
    }

    /// From `[whatsapp]` and `SEMBANG_WHATSAPP_ACCESS_TOKEN`, with the default timeouts.
    pub fn from_config(config: &WhatsappConfig, token: Secret) -> Result<Self, ProviderError> {
        Self::new(CloudApiConfig::from_whatsapp(config), token)
    }

    fn messages_url(&self, phone_number_id: &str) -> String {
        format!(
            "{}/{}/{}/messages",
            self.config.base_url.trim_end_matches('/'),
            self.config.api_version.trim_matches('/'),
            phone_number_id
        )
    }
}

#[async_trait::async_trait]
impl WhatsappProvider for CloudApiProvider {
    fn name(&self) -> &'static str {
        "cloud_api"
    }

    async fn send(
        &self,
        phone_number_id: &str,
        message: &OutboundMessage,
    ) -> Result<Accepted, ProviderError> {
        check_phone_number_id(phone_number_id)?;
        message.validate()?;
        let secret = self.token.expose();
        let transport = |e| from_transport(e, self.config.request_timeout, secret);
        let response = self
            .client
            .post(self.messages_url(phone_number_id))
            .bearer_auth(secret)
            .json(&request_body(message))
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            parse_accepted(&body, secret)
        } else {
            Err(parse_error(status, &body, secret))
        }
    }
}

/// The JSON the Cloud API expects for one message.
pub fn request_body(message: &OutboundMessage) -> Value {
    let content = &message.content;
    let payload = match content {
        OutboundContent::Text { body, preview_url } => {
            json!({"preview_url": preview_url, "body": body})
        }
        OutboundContent::Image {
            link,
            media_id,
            caption,
        }
        | OutboundContent::Video {
            link,
            media_id,
            caption,
        } => {
            let mut media = Map::new();
            if let Some(link) = link {
                media.insert("link".into(), json!(link));
            }
            if let Some(id) = media_id {
                media.insert("id".into(), json!(id));
            }
            if let Some(caption) = caption {
                media.insert("caption".into(), json!(caption));
            }
            Value::Object(media)
        }
        OutboundContent::Template {
            name,
            language,
            components,
        } => {
            let mut template = json!({"name": name, "language": {"code": language}});
            if !components.is_null() {
                template["components"] = components.clone();
            }
            template
        }
        OutboundContent::Buttons { body, buttons } => json!({
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": buttons
                    .iter()
                    .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
                    .collect::<Vec<_>>(),
            },
        }),
        OutboundContent::List { body, button, rows } => json!({
            "type": "list",
            "body": {"text": body},
            "action": {
                "button": button,
                "sections": [{"rows": rows.iter().map(|r| json!({"id": r.id, "title": r.title})).collect::<Vec<_>>()}],
            },
        }),
    };
    let kind = content.kind();
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to.as_str(),
        "type": kind,
        kind: payload,
    })
}

#[derive(Deserialize)]
struct SuccessBody {
    messages: Vec<SuccessMessage>,
}

#[derive(Deserialize)]
struct SuccessMessage {
    id: String,
}

/// `{"messages":[{"id":"wamid…"}]}`; anything else in a 2xx is not an acceptance.
pub fn parse_accepted(body: &[u8], secret: &str) -> Result<Accepted, ProviderError> {
    let invalid = |why: String| ProviderError::InvalidResponse(why);
    let parsed: SuccessBody = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("{e}; body: {}", excerpt(body, secret))))?;
    match parsed.messages.into_iter().next() {
        Some(m) if !m.id.trim().is_empty() => Ok(Accepted { wamid: m.id }),
        _ => Err(invalid(format!(
            "no message id; body: {}",
            excerpt(body, secret)
        ))),
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    error_user_title: Option<String>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    error_data: Option<ErrorData>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// A non-2xx answer: the Graph error when the body is one, else the status and an excerpt.
pub fn parse_error(status: u16, body: &[u8], secret: &str) -> ProviderError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope { error }) => ProviderError::Api {
            status,
            code: error.code,
            subcode: error.error_subcode,
            title: error
                .error_user_title
                .or(error.kind)
                .unwrap_or_else(|| "error".into()),
            message: excerpt(error.message.as_bytes(), secret),
            details: error
                .error_data
                .and_then(|d| d.details)
                .map(|d| excerpt(d.as_bytes(), secret)),
            fbtrace_id: error.fbtrace_id,
        },
        Err(_) => ProviderError::Http {
            status,
            body: excerpt(body, secret),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneNumber;

    fn message(content: OutboundContent) -> OutboundMessage {
        OutboundMessage {
            to: PhoneNumber::parse("+60 12-345 6789").unwrap(),
            content,
        }
    }

    #[test]
    fn text_body() {
        let body = request_body(&message(OutboundContent::Text {
            body: "Selamat datang!".into(),
            preview_url: true,
        }));
        assert_eq!(
            body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "60123456789",
                "type": "text",
                "text": {"preview_url": true, "body": "Selamat datang!"}
            })
        );
    }

    #[test]
    fn media_bodies_use_link_or_id() {
        let image = request_body(&message(OutboundContent::Image {
            link: Some("https://cdn.example/r.jpg".into()),
            media_id: None,
            caption: Some("Resit anda".into()),
        }));
        assert_eq!(image["type"], "image");
        assert_eq!(
            image["image"],
            json!({"link": "https://cdn.example/r.jpg", "caption": "Resit anda"})
        );
        let video = request_body(&message(OutboundContent::Video {
            link: None,
            media_id: Some("1037543291543636".into()),
            caption: None,
        }));
        assert_eq!(video["type"], "video");
        assert_eq!(video["video"], json!({"id": "1037543291543636"}));
        assert!(video.get("image").is_none());
    }

    #[test]
    fn template_body() {
        let components =
            json!([{"type": "body", "parameters": [{"type": "text", "text": "Gold"}]}]);
        let body = request_body(&message(OutboundContent::Template {
            name: "tier_upgrade".into(),
            language: "ms".into(),
            components: components.clone(),
        }));
        assert_eq!(body["type"], "template");
        assert_eq!(
            body["template"],
            json!({"name": "tier_upgrade", "language": {"code": "ms"}, "components": components})
        );
        let bare = request_body(&message(OutboundContent::Template {
            name: "hello_world".into(),
            language: "en_US".into(),
            components: Value::Null,
        }));
        assert_eq!(
            bare["template"],
            json!({"name": "hello_world", "language": {"code": "en_US"}})
        );
    }

    #[test]
    fn parses_acceptance() {
        let body = br#"{"messaging_product":"whatsapp","contacts":[{"input":"60123456789","wa_id":"60123456789"}],"messages":[{"id":"wamid.HBgLNjAxMjM0NTY3ODkVAgARGBI"}]}"#;
        assert_eq!(
            parse_accepted(body, "t"),
            Ok(Accepted {
                wamid: "wamid.HBgLNjAxMjM0NTY3ODkVAgARGBI".into()
            })
        );
        for bad in [
            &b"<html>ok</html>"[..],
            br#"{"messages":[]}"#,
            br#"{"messages":[{"id":""}]}"#,
        ] {
            assert!(matches!(
                parse_accepted(bad, "t"),
                Err(ProviderError::InvalidResponse(_))
            ));
        }
    }

    #[test]
    fn parses_graph_errors() {
        let body = br#"{"error":{"message":"(#131026) Message undeliverable","type":"OAuthException","code":131026,"error_data":{"messaging_product":"whatsapp","details":"Message Undeliverable."},"error_subcode":2494010,"fbtrace_id":"AbC"}}"#;
        assert_eq!(
            parse_error(400, body, "t0k"),
            ProviderError::Api {
                status: 400,
                code: 131026,
                subcode: Some(2494010),
                title: "OAuthException".into(),
                message: "(#131026) Message undeliverable".into(),
                details: Some("Message Undeliverable.".into()),
                fbtrace_id: Some("AbC".into()),
            }
        );
        let minimal = parse_error(400, br#"{"error":{"code":130429}}"#, "t0k");
        assert_eq!(minimal.code(), Some(130429));
        assert_eq!(
            parse_error(502, b"Bad Gateway", "t0k"),
            ProviderError::Http {
                status: 502,
                body: "Bad Gateway".into()
            }
        );
    }

    #[test]
    fn errors_never_repeat_the_token() {
        let body = br#"{"error":{"message":"token s3cr3t-token is invalid","type":"OAuthException","code":190}}"#;
        let err = parse_error(401, body, "s3cr3t-token");
        assert!(!err.to_string().contains("s3cr3t-token"), "{err}");
        let err = parse_error(500, b"echo: Bearer s3cr3t-token", "s3cr3t-token");
        assert!(!err.to_string().contains("s3cr3t-token"), "{err}");
    }

    #[test]
    fn url_joins_cleanly() {
        let mut config = CloudApiConfig::new("http://127.0.0.1:9/", "/v21.0");
        config.request_timeout = Duration::from_secs(1);
        let provider = CloudApiProvider::new(config, Secret::new("t")).unwrap();
        assert_eq!(
            provider.messages_url("106540352242922"),
            "http://127.0.0.1:9/v21.0/106540352242922/messages"
        );
        assert!(matches!(
            CloudApiProvider::new(CloudApiConfig::new("http://x", "v1"), Secret::new(" ")),
            Err(ProviderError::Setup(_))
        ));
    }
}
