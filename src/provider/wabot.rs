//! wabot.my, an unofficial WhatsApp Web gateway: `POST {base}/send` with the instance id and
//! access token in the JSON body; success is `"status": "success"`. It has no templates, and
//! media goes by public URL only, so templates and uploaded media ids are refused up front.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::error::{excerpt, from_transport, ProviderError};
use super::{Accepted, OutboundContent, OutboundMessage, WhatsappProvider};
use crate::config::{Secret, WhatsappConfig};

const NAME: &str = "wabot";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WabotConfig {
    pub base_url: String,
    pub instance_id: String,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl WabotConfig {
    pub fn new(base_url: impl Into<String>, instance_id: impl Into<String>) -> Self {
        WabotConfig {
            base_url: base_url.into(),
            instance_id: instance_id.into(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
        }
    }

    pub fn from_whatsapp(config: &WhatsappConfig) -> Self {
        let request_timeout = Duration::from_millis(config.request_timeout_ms);
        WabotConfig {
            request_timeout,
            connect_timeout: super::connect_timeout_within(request_timeout),
            ..Self::new(&config.wabot_base_url, &config.wabot_instance_id)
        }
    }
}

pub struct WabotProvider {
    client: reqwest::Client,
    config: WabotConfig,
    token: Secret,
}

impl WabotProvider {
    pub fn new(config: WabotConfig, token: Secret) -> Result<Self, ProviderError> {
        if token.expose().trim().is_empty() {
            return Err(ProviderError::Setup(
                "the wabot access token is empty".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ProviderError::Setup(format!("HTTP client: {e}")))?;
        Ok(WabotProvider {
            client,
            config,
            token,
        })
    }

    /// From `[whatsapp]` and `SEMBANG_WABOT_ACCESS_TOKEN`.
    pub fn from_config(config: &WhatsappConfig, token: Secret) -> Result<Self, ProviderError> {
        Self::new(WabotConfig::from_whatsapp(config), token)
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct WabotRequest<'a> {
    pub number: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub instance_id: &'a str,
    pub access_token: &'a str,
}

/// The gateway's request for one message, or why it cannot carry it.
pub fn request_body<'a>(
    message: &'a OutboundMessage,
    instance_id: &'a str,
    access_token: &'a str,
) -> Result<WabotRequest<'a>, ProviderError> {
    let unsupported = |what| ProviderError::Unsupported {
        provider: NAME,
        what,
    };
    let (kind, text, media_url, filename) = match &message.content {
        OutboundContent::Text { body, .. } => ("text", body.as_str(), None, None),
        OutboundContent::Template { .. } => return Err(unsupported("templates")),
        OutboundContent::List { .. } => return Err(unsupported("interactive lists")),
        OutboundContent::Buttons { .. } => return Err(unsupported("reply buttons")),
        OutboundContent::Image { link, caption, .. }
        | OutboundContent::Video { link, caption, .. } => {
            let Some(link) = link.as_deref() else {
                return Err(unsupported("uploaded media ids (only links)"));
            };
            let fallback = if message.content.kind() == "image" {
                "image.jpg"
            } else {
                "video.mp4"
            };
            let name = file_name(link).unwrap_or(fallback).to_string();
            (
                "media",
                caption.as_deref().unwrap_or(""),
                Some(link),
                Some(name),
            )
        }
    };
    Ok(WabotRequest {
        number: message.to.as_str(),
        kind,
        message: text,
        media_url,
        filename,
        instance_id,
        access_token,
    })
}

/// The last path segment of a URL, without query or fragment, when it looks like a file.
fn file_name(url: &str) -> Option<&str> {
    let path = url.split(['?', '#']).next()?;
    let after_host = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (_, last) = after_host.rsplit_once('/')?;
    (!last.is_empty() && last.contains('.')).then_some(last)
}

/// Reads the gateway's answer. Its success shape is undocumented, so any of the usual places
/// for a message id is used, and a generated `wabot.<uuid>` otherwise.
pub fn parse_response(
    http_status: u16,
    body: &[u8],
    secret: &str,
) -> Result<Accepted, ProviderError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let ok_status = (200..300).contains(&http_status);
    let Some(value) = parsed.filter(Value::is_object) else {
        return Err(if ok_status {
            ProviderError::InvalidResponse(format!("not JSON: {}", excerpt(body, secret)))
        } else {
            ProviderError::Http {
                status: http_status,
                body: excerpt(body, secret),
            }
        });
    };
    if ok_status && value.get("status").and_then(Value::as_str) == Some("success") {
        let id = [
            "/message_id",
            "/id",
            "/data/key/id",
            "/data/id",
            "/data/message_id",
        ]
        .iter()
        .find_map(|p| value.pointer(p).and_then(Value::as_str))
        .filter(|id| !id.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("wabot.{}", uuid::Uuid::new_v4()));
        return Ok(Accepted { wamid: id });
    }
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .map(|m| excerpt(m.as_bytes(), secret))
        .unwrap_or_else(|| excerpt(body, secret));
    Err(ProviderError::Rejected {
        status: http_status,
        message,
    })
}

#[async_trait::async_trait]
impl WhatsappProvider for WabotProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    /// `phone_number_id` is not used: the instance id names the sending number.
    async fn send(
        &self,
        _phone_number_id: &str,
        message: &OutboundMessage,
    ) -> Result<Accepted, ProviderError> {
        message.validate()?;
        let secret = self.token.expose();
        let body = request_body(message, &self.config.instance_id, secret)?;
        let transport = |e| from_transport(e, self.config.request_timeout, secret);
        let response = self
            .client
            .post(format!(
                "{}/send",
                self.config.base_url.trim_end_matches('/')
            ))
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(transport)?;
        parse_response(status, &bytes, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneNumber;
    use serde_json::json;

    fn message(content: OutboundContent) -> OutboundMessage {
        OutboundMessage {
            to: PhoneNumber::parse("011-2345 6789").unwrap(),
            content,
        }
    }

    #[test]
    fn text_and_media_bodies() {
        let text = message(OutboundContent::Text {
            body: "Hai".into(),
            preview_url: false,
        });
        assert_eq!(
            serde_json::to_value(request_body(&text, "INST1", "tok").unwrap()).unwrap(),
            json!({"number": "601123456789", "type": "text", "message": "Hai",
                   "instance_id": "INST1", "access_token": "tok"})
        );
        let image = message(OutboundContent::Image {
            link: Some("https://cdn.example/promo/raya.png?v=2".into()),
            media_id: None,
            caption: Some("Promosi Raya".into()),
        });
        assert_eq!(
            serde_json::to_value(request_body(&image, "INST1", "tok").unwrap()).unwrap(),
            json!({"number": "601123456789", "type": "media", "message": "Promosi Raya",
                   "media_url": "https://cdn.example/promo/raya.png?v=2", "filename": "raya.png",
                   "instance_id": "INST1", "access_token": "tok"})
        );
        let video = message(OutboundContent::Video {
            link: Some("https://cdn.example/v".into()),
            media_id: None,
            caption: None,
        });
        let body = request_body(&video, "I", "t").unwrap();
        assert_eq!(
            (body.message, body.filename.as_deref()),
            ("", Some("video.mp4"))
        );
    }

    #[test]
    fn templates_and_media_ids_are_unsupported() {
        let template = message(OutboundContent::Template {
            name: "promo".into(),
            language: "ms".into(),
            components: json!([]),
        });
        assert_eq!(
            request_body(&template, "I", "t"),
            Err(ProviderError::Unsupported {
                provider: "wabot",
                what: "templates"
            })
        );
        let video = message(OutboundContent::Video {
            link: None,
            media_id: Some("123".into()),
            caption: None,
        });
        assert!(matches!(
            request_body(&video, "I", "t"),
            Err(ProviderError::Unsupported { .. })
        ));
    }

    #[test]
    fn file_names_from_links() {
        assert_eq!(file_name("https://a.b/x/y/z.jpg"), Some("z.jpg"));
        assert_eq!(file_name("https://a.b/z.jpg#frag"), Some("z.jpg"));
        assert_eq!(file_name("https://a.b/"), None);
        assert_eq!(file_name("https://a.b"), None);
        assert_eq!(file_name("https://a.b/download"), None);
    }

    #[test]
    fn response_shapes() {
        assert_eq!(
            parse_response(
                200,
                br#"{"status":"success","message_id":"3EB0ABC"}"#,
                "tok-9f8e"
            ),
            Ok(Accepted {
                wamid: "3EB0ABC".into()
            })
        );
        assert_eq!(
            parse_response(
                200,
                br#"{"status":"success","data":{"key":{"id":"3EB0XYZ"}}}"#,
                "tok-9f8e"
            ),
            Ok(Accepted {
                wamid: "3EB0XYZ".into()
            })
        );
        let generated = parse_response(200, br#"{"status":"success"}"#, "tok-9f8e").unwrap();
        let uuid = generated.wamid.strip_prefix("wabot.").unwrap();
        assert_eq!(uuid::Uuid::parse_str(uuid).unwrap().get_version_num(), 4);
        assert_eq!(
            parse_response(
                200,
                br#"{"status":"error","message":"Instance ID Invalidated"}"#,
                "tok-9f8e"
            ),
            Err(ProviderError::Rejected {
                status: 200,
                message: "Instance ID Invalidated".into()
            })
        );
        assert_eq!(
            parse_response(503, br#"{"status":"error","message":"busy"}"#, "tok-9f8e")
                .unwrap_err()
                .class(),
            super::super::ErrorClass::Transient
        );
        assert!(matches!(
            parse_response(200, b"OK", "tok-9f8e"),
            Err(ProviderError::InvalidResponse(_))
        ));
        assert!(matches!(
            parse_response(502, b"<html>bad gateway</html>", "tok-9f8e"),
            Err(ProviderError::Http { status: 502, .. })
        ));
    }

    #[test]
    fn echoed_tokens_are_redacted() {
        let err = parse_response(
            400,
            br#"{"status":"error","message":"bad access_token tok-SECRET"}"#,
            "tok-SECRET",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("tok-SECRET"), "{err}");
    }
}
