//! Splits one webhook POST body into [`InboundEvent`]s.
//!
//! Order: entry order, then change order, then within one change all `messages[]` (in
//! order), then all `statuses[]`, then all value-level `errors[]`.
//! A `user_preferences` change (marketing messages stopped or resumed) gives one event per
//! customer. A change whose `field` is neither is skipped and reported in
//! [`ParsedWebhook::skipped`]. An unreadable item of a readable envelope is set aside in
//! [`ParsedWebhook::rejected`] with its reason. The parser never panics: every input gives
//! events (and set-aside items) or a [`ParseError`].

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use super::envelope::{self, ChangeValue, Envelope, Timestamp};
use crate::topics::inbound::{
    is_cloud_api_media_id, ApiError, Business, EventPayload, InboundEvent, InboundMessage,
    MarketingPreference, MessageKind, ReplyContext, ReportedStatus, StatusReport,
};

pub const EXPECTED_OBJECT: &str = "whatsapp_business_account";
const MESSAGES_FIELD: &str = "messages";
/// Customers stopping or resuming marketing messages (as 131050 reports on a send).
const PREFERENCES_FIELD: &str = "user_preferences";
/// Longest excerpt of offending input kept in an error (bodies can be megabytes).
const EXCERPT: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("body is not JSON: {reason} (line {line}, column {column})")]
    NotJson {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("object is {found:?}, expected \"whatsapp_business_account\"")]
    WrongObject { found: String },
    #[error("required field {location} is missing")]
    MissingField { location: String },
    #[error("field {location} has the wrong shape: {reason}")]
    InvalidField { location: String, reason: String },
    #[error("{location} is not a Unix timestamp in seconds: {value:?}")]
    BadTimestamp { location: String, value: String },
}

/// A change that was not turned into events (its `field` is not `messages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedChange {
    /// `entry[i].changes[j]`
    pub location: String,
    pub waba_id: String,
    /// `None` when the change had no `field`.
    pub field: Option<String>,
}

/// An item of a readable envelope that could not be read (an entry, a change, a contact, a
/// message, a status or an error): set aside with its reason and its JSON as received, so
/// the rest of the body is still taken and this item can go to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedItem {
    pub error: ParseError,
    pub raw: Value,
}

impl RejectedItem {
    /// The customer the item concerns, when it says (a message's `from`, a status's
    /// `recipient_id`, a contact's `wa_id`).
    pub fn wa_id(&self) -> Option<&str> {
        ["from", "recipient_id", "wa_id"]
            .iter()
            .find_map(|key| self.raw.get(key).and_then(Value::as_str))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedWebhook {
    pub events: Vec<InboundEvent>,
    pub skipped: Vec<SkippedChange>,
    pub rejected: Vec<RejectedItem>,
}

/// Parses a raw POST body (verify its signature first). A body that is not a webhook
/// envelope is an error; an unreadable item inside one is set aside in
/// [`ParsedWebhook::rejected`] and the others are still read.
pub fn parse_webhook(body: &[u8]) -> Result<ParsedWebhook, ParseError> {
    let envelope: Envelope = deserialize_body(body)?;
    match envelope.object.as_deref() {
        Some(EXPECTED_OBJECT) => {}
        Some(other) => {
            return Err(ParseError::WrongObject {
                found: excerpt(other),
            })
        }
        None => return Err(missing("object")),
    }
    let entries = envelope.entry.ok_or_else(|| missing("entry"))?;
    let mut parsed = ParsedWebhook::default();
    for (i, raw) in entries.into_iter().enumerate() {
        if let Err(error) = split_entry(&raw, &format!("entry[{i}]"), &mut parsed) {
            parsed.rejected.push(RejectedItem { error, raw });
        }
    }
    Ok(parsed)
}

fn split_entry(raw: &Value, at: &str, parsed: &mut ParsedWebhook) -> Result<(), ParseError> {
    let entry: envelope::Entry = deserialize_value(raw, at)?;
    let waba_id = entry.id.ok_or_else(|| missing(format!("{at}.id")))?;
    for (j, change) in entry.changes.into_iter().enumerate() {
        let at = format!("{at}.changes[{j}]");
        let field = change.field.as_deref();
        if field != Some(MESSAGES_FIELD) && field != Some(PREFERENCES_FIELD) {
            parsed.skipped.push(SkippedChange {
                location: at,
                waba_id: waba_id.clone(),
                field: change.field,
            });
            continue;
        }
        let at = format!("{at}.value");
        let Some(value) = change.value else {
            parsed.rejected.push(RejectedItem {
                error: missing(&at),
                raw: serde_json::json!({ "field": change.field }),
            });
            continue;
        };
        if let Err(error) = split_value(&waba_id, &value, &at, parsed) {
            parsed.rejected.push(RejectedItem { error, raw: value });
        }
    }
    Ok(())
}

/// Reads one `messages` change. Without its business number nothing in it can be answered:
/// that rejects the whole change; any other unreadable item is set aside on its own.
fn split_value(
    waba_id: &str,
    raw: &Value,
    at: &str,
    parsed: &mut ParsedWebhook,
) -> Result<(), ParseError> {
    let value: ChangeValue = deserialize_value(raw, at)?;
    let metadata = value
        .metadata
        .ok_or_else(|| missing(format!("{at}.metadata")))?;
    let business = Business {
        waba_id: waba_id.to_owned(),
        // Replies are sent from, and keyed on the bus by, this number: empty is missing.
        phone_number_id: metadata
            .phone_number_id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| missing(format!("{at}.metadata.phone_number_id")))?,
        display_phone_number: metadata
            .display_phone_number
            .ok_or_else(|| missing(format!("{at}.metadata.display_phone_number")))?,
    };
    let mut set_aside = |error: ParseError, raw: &Value| {
        parsed.rejected.push(RejectedItem {
            error,
            raw: raw.clone(),
        })
    };

    // wa_id → profile name; the first contact entry for a wa_id wins.
    let mut names: HashMap<String, Option<String>> = HashMap::with_capacity(value.contacts.len());
    for (c, raw) in value.contacts.iter().enumerate() {
        let at = format!("{at}.contacts[{c}]");
        let contact = deserialize_value::<envelope::Contact>(raw, &at).and_then(|contact| {
            let wa_id = contact
                .wa_id
                .ok_or_else(|| missing(format!("{at}.wa_id")))?;
            Ok((wa_id, contact.profile.and_then(|p| p.name)))
        });
        match contact {
            Ok((wa_id, name)) => {
                names.entry(wa_id).or_insert(name);
            }
            Err(error) => set_aside(error, raw),
        }
    }
    let profile_name = |wa_id: &str| names.get(wa_id).cloned().flatten();

    let mut events = Vec::new();
    for (k, raw) in value.messages.iter().enumerate() {
        match parse_message(raw, &format!("{at}.messages[{k}]"), &profile_name) {
            Ok(message) => events.push(EventPayload::Message(message)),
            Err(error) => set_aside(error, raw),
        }
    }
    for (k, raw) in value.statuses.iter().enumerate() {
        let at = format!("{at}.statuses[{k}]");
        match deserialize_value(raw, &at).and_then(|status| parse_status(status, &at)) {
            Ok(status) => events.push(EventPayload::Status(status)),
            Err(error) => set_aside(error, raw),
        }
    }
    for (k, raw) in value.user_preferences.iter().enumerate() {
        let at = format!("{at}.user_preferences[{k}]");
        match deserialize_value(raw, &at).and_then(|p| parse_preference(p, &at)) {
            Ok(Some(preference)) => events.push(EventPayload::MarketingPreference(preference)),
            // Another category than marketing: nothing to do.
            Ok(None) => {}
            Err(error) => set_aside(error, raw),
        }
    }
    for (k, raw) in value.errors.iter().enumerate() {
        let at = format!("{at}.errors[{k}]");
        match deserialize_value(raw, &at).and_then(|error| parse_error(error, &at)) {
            Ok(error) => events.push(EventPayload::Error(error)),
            Err(error) => set_aside(error, raw),
        }
    }
    parsed
        .events
        .extend(events.into_iter().map(|payload| InboundEvent {
            business: business.clone(),
            payload,
        }));
    Ok(())
}

fn parse_message(
    raw: &Value,
    at: &str,
    profile_name: &dyn Fn(&str) -> Option<String>,
) -> Result<InboundMessage, ParseError> {
    let m: envelope::MessageHead = deserialize_value(raw, at)?;
    let wamid = m.id.ok_or_else(|| missing(format!("{at}.id")))?;
    let from = m.from.ok_or_else(|| missing(format!("{at}.from")))?;
    let timestamp = timestamp(m.timestamp, &format!("{at}.timestamp"))?;
    let type_name = m.kind.ok_or_else(|| missing(format!("{at}.type")))?;
    let req = |v: Option<String>, field: &str| v.ok_or_else(|| missing(format!("{at}.{field}")));
    // The OCR role fetches by this id: only the Cloud API's numeric form is taken, never a
    // URL or an object-store name.
    let media_id = |v: Option<String>, field: &str| {
        let id = req(v, field)?;
        if is_cloud_api_media_id(&id) {
            Ok(id)
        } else {
            Err(ParseError::InvalidField {
                location: format!("{at}.{field}"),
                reason: "a Cloud API media id is digits".into(),
            })
        }
    };
    let kind = match type_name.as_str() {
        "text" => {
            let text: envelope::Text = payload(raw, at, "text")?;
            MessageKind::Text {
                body: req(text.body, "text.body")?,
            }
        }
        "image" => {
            let media: envelope::Media = payload(raw, at, "image")?;
            MessageKind::Image {
                media_id: media_id(media.id, "image.id")?,
                mime_type: media.mime_type,
                sha256: media.sha256,
                caption: media.caption,
            }
        }
        "document" => {
            let media: envelope::Media = payload(raw, at, "document")?;
            MessageKind::Document {
                media_id: media_id(media.id, "document.id")?,
                mime_type: media.mime_type,
                sha256: media.sha256,
                filename: media.filename,
                caption: media.caption,
            }
        }
        "interactive" => {
            let interactive: envelope::Interactive = payload(raw, at, "interactive")?;
            let sub = req(interactive.kind, "interactive.type")?;
            let inner = &raw["interactive"];
            let inner_at = format!("{at}.interactive");
            match sub.as_str() {
                "button_reply" => {
                    let reply: envelope::Reply = payload(inner, &inner_at, "button_reply")?;
                    MessageKind::ButtonReply {
                        id: req(reply.id, "interactive.button_reply.id")?,
                        title: req(reply.title, "interactive.button_reply.title")?,
                    }
                }
                "list_reply" => {
                    let reply: envelope::Reply = payload(inner, &inner_at, "list_reply")?;
                    MessageKind::ListReply {
                        id: req(reply.id, "interactive.list_reply.id")?,
                        title: req(reply.title, "interactive.list_reply.title")?,
                        description: reply.description,
                    }
                }
                other => MessageKind::Unknown {
                    type_name: format!("interactive.{other}"),
                    raw: raw.clone(),
                },
            }
        }
        "button" => {
            let button: envelope::Button = payload(raw, at, "button")?;
            MessageKind::Button {
                payload: button.payload,
                text: button.text,
            }
        }
        "system" => {
            let system: envelope::System = payload(raw, at, "system")?;
            MessageKind::System {
                body: system.body,
                new_wa_id: system.wa_id,
                kind: system.kind,
            }
        }
        _ => MessageKind::Unknown {
            type_name,
            raw: raw.clone(),
        },
    };
    Ok(InboundMessage {
        profile_name: profile_name(&from),
        wamid,
        from,
        timestamp,
        context: m.context.map(|c| ReplyContext {
            from: c.from,
            id: c.id,
        }),
        kind,
    })
}

/// The type-specific object of a message (`message.text`, `message.image`, ...), read only
/// when the type is one we interpret; absent or `null` is a missing field.
fn payload<T: DeserializeOwned>(raw: &Value, at: &str, key: &str) -> Result<T, ParseError> {
    let location = format!("{at}.{key}");
    match raw.get(key) {
        None | Some(Value::Null) => Err(missing(location)),
        Some(value) => deserialize_value(value, &location),
    }
}

fn parse_status(s: envelope::Status, at: &str) -> Result<StatusReport, ParseError> {
    let wamid = s.id.ok_or_else(|| missing(format!("{at}.id")))?;
    let status = s.status.ok_or_else(|| missing(format!("{at}.status")))?;
    let timestamp = timestamp(s.timestamp, &format!("{at}.timestamp"))?;
    let recipient_id = s
        .recipient_id
        .ok_or_else(|| missing(format!("{at}.recipient_id")))?;
    let errors = s
        .errors
        .into_iter()
        .enumerate()
        .map(|(e, err)| parse_error(err, &format!("{at}.errors[{e}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StatusReport {
        wamid,
        status: ReportedStatus::parse(&status),
        timestamp,
        recipient_id,
        errors,
        conversation: s.conversation,
        pricing: s.pricing,
    })
}

fn parse_error(e: envelope::Error, at: &str) -> Result<ApiError, ParseError> {
    Ok(ApiError {
        code: e.code.ok_or_else(|| missing(format!("{at}.code")))?,
        title: e.title,
        message: e.message,
        details: e.error_data.and_then(|d| d.details),
    })
}

fn parse_preference(
    raw: envelope::UserPreference,
    at: &str,
) -> Result<Option<MarketingPreference>, ParseError> {
    if raw.category.as_deref() != Some("marketing_messages") {
        return Ok(None);
    }
    let wa_id = raw.wa_id.ok_or_else(|| missing(format!("{at}.wa_id")))?;
    let stop = match raw.value.as_deref() {
        Some("stop") => true,
        Some("resume") => false,
        other => {
            return Err(ParseError::InvalidField {
                location: format!("{at}.value"),
                reason: format!("{:?} is not stop or resume", other.map(excerpt)),
            })
        }
    };
    Ok(Some(MarketingPreference {
        wa_id,
        stop,
        at: timestamp(raw.timestamp, &format!("{at}.timestamp"))?,
    }))
}

fn timestamp(raw: Option<Timestamp>, at: &str) -> Result<DateTime<Utc>, ParseError> {
    let text = raw.ok_or_else(|| missing(at))?.as_text();
    let bad = || ParseError::BadTimestamp {
        location: at.to_owned(),
        value: excerpt(&text),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds: i64 = text.parse().map_err(|_| bad())?;
    Utc.timestamp_opt(seconds, 0).single().ok_or_else(bad)
}

fn deserialize_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    // Derived struct deserializers also accept arrays; the envelope must be an object.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some() && first != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| not_json(&e))?;
        return Err(ParseError::InvalidField {
            location: "(root)".to_owned(),
            reason: "expected a JSON object".to_owned(),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| from_path_error(e, ""))?;
    de.end().map_err(|e| not_json(&e))?;
    Ok(value)
}

fn deserialize_value<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| from_path_error(e, at))
}

fn from_path_error(e: serde_path_to_error::Error<serde_json::Error>, prefix: &str) -> ParseError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_data() {
        let location = match (prefix.is_empty(), path.as_str()) {
            (true, ".") | (true, "") => "(root)".to_owned(),
            (false, ".") | (false, "") => prefix.to_owned(),
            (true, p) => p.to_owned(),
            (false, p) if p.starts_with('[') => format!("{prefix}{p}"),
            (false, p) => format!("{prefix}.{p}"),
        };
        ParseError::InvalidField {
            location,
            reason: data_reason(&inner),
        }
    } else {
        not_json(&inner)
    }
}

/// serde_json appends " at line L column C" to data errors; the location says more.
fn data_reason(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let reason = match full.rfind(" at line ") {
        Some(cut) => &full[..cut],
        None => &full,
    };
    excerpt(reason)
}

fn not_json(e: &serde_json::Error) -> ParseError {
    ParseError::NotJson {
        line: e.line(),
        column: e.column(),
        reason: data_reason(e),
    }
}

fn missing(location: impl Into<String>) -> ParseError {
    ParseError::MissingField {
        location: location.into(),
    }
}

fn excerpt(s: &str) -> String {
    if s.chars().count() <= EXCERPT {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(EXCERPT).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(raw: &str) -> Result<DateTime<Utc>, ParseError> {
        timestamp(Some(Timestamp::Text(raw.to_owned())), "t")
    }

    #[test]
    fn timestamps_are_unix_seconds() {
        assert_eq!(ts("0").unwrap(), Utc.timestamp_opt(0, 0).unwrap());
        assert_eq!(
            ts("1732510800").unwrap().to_rfc3339(),
            "2024-11-25T05:00:00+00:00"
        );
        for bad in [
            "",
            " 1",
            "1 ",
            "+1",
            "-1",
            "1e3",
            "0x10",
            "9223372036854775807",
        ] {
            assert!(
                matches!(ts(bad), Err(ParseError::BadTimestamp { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(timestamp(None, "t"), Err(missing("t")));
    }

    #[test]
    fn long_offending_values_are_cut() {
        let long = "x".repeat(10_000);
        match ts(&long) {
            Err(ParseError::BadTimestamp { value, .. }) => {
                assert_eq!(value.chars().count(), EXCERPT + 1)
            }
            other => panic!("{other:?}"),
        }
    }
}
