//! The wabot.my gateway's inbound webhook. wabot.my (an unofficial WhatsApp Web gateway)
//! publishes no webhook spec and signs nothing, so Sembang accepts one documented JSON
//! shape per message and authenticates the caller with the gateway's access token:
//!
//! ```json
//! {"instance_id": "609ABC", "id": "3EB0C767D26A1D0B", "from": "60123456789",
//!  "push_name": "Siti", "timestamp": 1732510800, "type": "text", "message": "hello",
//!  "media_url": null, "filename": null, "mime_type": null}
//! ```
//! `type` is `text`, `image` or `document` (anything else is kept as an unknown type);
//! `message` is the text or the caption; `timestamp` is Unix seconds (number or string).
//! Events carry `waba_id = "wabot"` and the instance id as the business number id, and
//! a media message's `media_id` is its URL (the OCR role downloads it from there).

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::ParseError;
use crate::topics::inbound::{
    Business, EventPayload, InboundEvent, InboundMessage, MessageKind, WABOT_WABA_ID,
};

#[derive(Deserialize)]
struct WabotMessage {
    instance_id: String,
    id: String,
    from: String,
    push_name: Option<String>,
    timestamp: Value,
    #[serde(rename = "type")]
    kind: String,
    message: Option<String>,
    media_url: Option<String>,
    filename: Option<String>,
    mime_type: Option<String>,
}

/// One wabot webhook body into its event.
pub fn parse_wabot(body: &[u8]) -> Result<InboundEvent, ParseError> {
    let raw: Value = serde_json::from_slice(body).map_err(|e| ParseError::NotJson {
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })?;
    let message: WabotMessage =
        serde_json::from_value(raw.clone()).map_err(|e| ParseError::InvalidField {
            location: "wabot message".into(),
            reason: e.to_string(),
        })?;
    for (field, value) in [
        ("id", &message.id),
        ("from", &message.from),
        ("instance_id", &message.instance_id),
    ] {
        if value.trim().is_empty() {
            return Err(ParseError::MissingField {
                location: field.into(),
            });
        }
    }
    let timestamp = timestamp(&message.timestamp)?;
    let from: String = message.from.chars().take_while(|c| *c != '@').collect();
    // The OCR role fetches this URL (from the configured gateway hosts only): nothing but
    // an http(s) URL is taken.
    let media = |kind: &str| {
        let url = message
            .media_url
            .clone()
            .ok_or_else(|| ParseError::MissingField {
                location: format!("media_url (of a {kind} message)"),
            })?;
        if url::Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            Ok(url)
        } else {
            Err(ParseError::InvalidField {
                location: "media_url".into(),
                reason: "not an http(s) URL".into(),
            })
        }
    };
    let kind = match message.kind.as_str() {
        "text" => MessageKind::Text {
            body: message.message.clone().unwrap_or_default(),
        },
        "image" => MessageKind::Image {
            media_id: media("image")?,
            mime_type: message.mime_type.clone(),
            sha256: None,
            caption: message.message.clone(),
        },
        "document" => MessageKind::Document {
            media_id: media("document")?,
            mime_type: message.mime_type.clone(),
            sha256: None,
            filename: message.filename.clone(),
            caption: message.message.clone(),
        },
        other => MessageKind::Unknown {
            type_name: other.to_string(),
            raw,
        },
    };
    Ok(InboundEvent {
        business: Business {
            waba_id: WABOT_WABA_ID.into(),
            phone_number_id: message.instance_id,
            display_phone_number: String::new(),
        },
        payload: EventPayload::Message(InboundMessage {
            wamid: format!("wabot.{}", message.id),
            from,
            profile_name: message.push_name,
            timestamp,
            context: None,
            kind,
        }),
    })
}

fn timestamp(value: &Value) -> Result<DateTime<Utc>, ParseError> {
    let seconds = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    seconds
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .ok_or_else(|| ParseError::BadTimestamp {
            location: "timestamp".into(),
            value: value.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<InboundEvent, ParseError> {
        parse_wabot(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn text_and_media_messages() {
        let event = parse(
            json!({"instance_id": "609ABC", "id": "3EB0", "from": "60123456789@s.whatsapp.net",
            "push_name": "Siti", "timestamp": "1732510800", "type": "text", "message": "STOP"}),
        )
        .unwrap();
        assert_eq!(event.contact_wa_id(), Some("60123456789"));
        assert_eq!(event.business.phone_number_id, "609ABC");
        assert_eq!(event.dedupe_key(), "wabot.3EB0");
        let EventPayload::Message(m) = &event.payload else {
            panic!()
        };
        assert_eq!(
            m.kind,
            MessageKind::Text {
                body: "STOP".into()
            }
        );
        assert_eq!(m.timestamp.timestamp(), 1_732_510_800);

        let event = parse(
            json!({"instance_id": "609ABC", "id": "3EB1", "from": "60123456789",
            "timestamp": 1732510801, "type": "image", "message": "resit",
            "media_url": "https://gw.example/media/1.jpg", "mime_type": "image/jpeg"}),
        )
        .unwrap();
        let EventPayload::Message(m) = &event.payload else {
            panic!()
        };
        assert!(
            matches!(&m.kind, MessageKind::Image { media_id, caption, .. }
            if media_id == "https://gw.example/media/1.jpg" && caption.as_deref() == Some("resit"))
        );
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        assert!(matches!(
            parse_wabot(b"{nope"),
            Err(ParseError::NotJson { .. })
        ));
        assert!(matches!(
            parse(json!({"id": "1"})),
            Err(ParseError::InvalidField { .. })
        ));
        let base = json!({"instance_id": "i", "id": "1", "from": "60123456789", "timestamp": "x", "type": "text"});
        assert!(matches!(parse(base), Err(ParseError::BadTimestamp { .. })));
        let image = json!({"instance_id": "i", "id": "1", "from": "60123456789", "timestamp": 1, "type": "image"});
        assert!(matches!(parse(image), Err(ParseError::MissingField { .. })));
        let sticker = json!({"instance_id": "i", "id": "1", "from": "60123456789", "timestamp": 1, "type": "sticker"});
        let EventPayload::Message(m) = parse(sticker).unwrap().payload else {
            panic!()
        };
        assert!(
            matches!(m.kind, MessageKind::Unknown { ref type_name, .. } if type_name == "sticker")
        );
    }
}
