//! wa.inbound. Typed inbound events: one per message, per status report and per value-level error of a
//! webhook POST. They are the payload of the `wa.inbound` topic, so serde round trips are
//! lossless (unknown message types and status strings are kept as given).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::message::DeliveryStatus;
use crate::domain::phone::{PhoneError, PhoneNumber};
use crate::domain::profile::ProfilePatch;

/// Webhook events, keyed by [`InboundEvent::partition_key`] (the contact's wa_id).
pub const TOPIC: &str = "wa.inbound";

/// The `waba_id` of events from the wabot.my gateway (its media ids are URLs).
pub const WABOT_WABA_ID: &str = "wabot";

/// Cloud API media ids are numbers; anything else (a path, a URL, `stored:`) is refused.
pub fn is_cloud_api_media_id(id: &str) -> bool {
    (1..=40).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

/// The business number the webhook was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Business {
    /// WhatsApp Business Account id (`entry[].id`).
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    pub business: Business,
    pub payload: EventPayload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum EventPayload {
    Message(InboundMessage),
    Status(StatusReport),
    /// A value-level `errors[]` entry (not tied to one message).
    Error(ApiError),
    /// A change to a contact's profile from the admin API or a CSV import: keyed by the
    /// contact like its messages, so its shard applies it in order with them.
    ProfileEdit(ProfileEdit),
    /// What the sender's campaign send came to, for the recipient's shard: a sent message
    /// becomes one of the contact's campaign touches (frequency cap, statuses, conversions);
    /// a refusal whose code concerns the contact (131026, 131050) changes the contact.
    CampaignSend(CampaignSendOutcome),
    /// A click on a campaign's tracking link.
    Click(LinkClick),
    /// The customer stopped (or resumed) marketing messages in WhatsApp (a
    /// `user_preferences` webhook).
    MarketingPreference(MarketingPreference),
    /// A person's decision on a receipt that was pending review (the admin API's review
    /// queue): approved, perhaps corrected, it counts like any purchase; rejected, it never
    /// does.
    PurchaseReview(PurchaseReview),
    /// Erasure of the contact (PDPA), from the admin API: its shard stores what came before,
    /// then removes every copy and forgets it; a later message starts a new contact.
    Erasure(Erasure),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    pub erasure_id: String,
    /// The contact's E.164 digits.
    pub wa_id: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurchaseReview {
    /// Unique per decision.
    pub review_id: String,
    /// The contact's E.164 digits.
    pub wa_id: String,
    pub at: DateTime<Utc>,
    /// The purchase as decided: status counted (approved) or rejected, with corrections.
    pub purchase: crate::domain::purchase::Purchase,
    /// Tell the customer (inside the 24 h customer-service window only).
    pub notify: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketingPreference {
    pub wa_id: String,
    /// `stop`: no more marketing; `resume`: marketing again.
    pub stop: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSendOutcome {
    /// The send's claim key (one per campaign, contact and attempt).
    pub request_id: String,
    pub campaign_id: String,
    pub wa_id: String,
    pub at: DateTime<Utc>,
    pub result: CampaignSendResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CampaignSendResult {
    Sent {
        wamid: String,
        attribution_days: u16,
    },
    Failed {
        code: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClick {
    /// Unique per click (every click is an event; the first one moves the funnel).
    pub click_id: String,
    pub campaign_id: String,
    pub wa_id: String,
    /// Which link of the message, and where it led.
    pub link: u8,
    pub url: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileEdit {
    /// Unique per edit; a CSV row's is derived from its content, so a rerun is recognised.
    pub edit_id: String,
    /// The contact's E.164 digits.
    pub wa_id: String,
    pub at: DateTime<Utc>,
    pub source: EditSource,
    pub patch: ProfilePatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditSource {
    AdminApi,
    CsvImport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// `wamid.…`
    pub wamid: String,
    /// The sender's `wa_id`, digits as given (not necessarily Malaysian).
    pub from: String,
    /// From the matching `contacts[]` entry, when given.
    pub profile_name: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub context: Option<ReplyContext>,
    pub kind: MessageKind,
}

/// The message being replied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyContext {
    pub from: Option<String>,
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageKind {
    Text {
        body: String,
    },
    Image {
        media_id: String,
        mime_type: Option<String>,
        sha256: Option<String>,
        caption: Option<String>,
    },
    Document {
        media_id: String,
        mime_type: Option<String>,
        sha256: Option<String>,
        filename: Option<String>,
        caption: Option<String>,
    },
    /// `interactive.button_reply`
    ButtonReply {
        id: String,
        title: String,
    },
    /// `interactive.list_reply`
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    /// Template quick-reply button.
    Button {
        payload: Option<String>,
        text: Option<String>,
    },
    /// e.g. `user_changed_number`, with the new `wa_id`.
    System {
        body: Option<String>,
        new_wa_id: Option<String>,
        kind: Option<String>,
    },
    /// Any other type (reaction, order, video, an unknown interactive subtype, ...): kept
    /// whole, never dropped. `type_name` is the message `type` (`interactive.nfm_reply` for
    /// interactive subtypes); `raw` is the whole message object.
    Unknown {
        type_name: String,
        raw: Value,
    },
}

impl MessageKind {
    /// The message's type for metrics labels: one of a fixed set, whatever the sender
    /// invents (an unknown type is `other`, so a label never grows without bound).
    pub fn metric_label(&self) -> &'static str {
        match self {
            MessageKind::Text { .. } => "text",
            MessageKind::Image { .. } => "image",
            MessageKind::Document { .. } => "document",
            MessageKind::ButtonReply { .. } => "button_reply",
            MessageKind::ListReply { .. } => "list_reply",
            MessageKind::Button { .. } => "button",
            MessageKind::System { .. } => "system",
            MessageKind::Unknown { .. } => "other",
        }
    }
}

/// A status string as reported: the known ones map to [`DeliveryStatus`], anything else is
/// kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ReportedStatus {
    Known(DeliveryStatus),
    Unknown(String),
}

impl ReportedStatus {
    pub fn parse(s: &str) -> ReportedStatus {
        match DeliveryStatus::parse(s) {
            Some(known) => ReportedStatus::Known(known),
            None => ReportedStatus::Unknown(s.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ReportedStatus::Known(s) => s.as_str(),
            ReportedStatus::Unknown(s) => s,
        }
    }

    pub fn known(&self) -> Option<DeliveryStatus> {
        match self {
            ReportedStatus::Known(s) => Some(*s),
            ReportedStatus::Unknown(_) => None,
        }
    }
}

impl From<String> for ReportedStatus {
    fn from(s: String) -> Self {
        ReportedStatus::parse(&s)
    }
}

impl From<ReportedStatus> for String {
    fn from(s: ReportedStatus) -> Self {
        s.as_str().to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// wamid of OUR outbound message.
    pub wamid: String,
    pub status: ReportedStatus,
    pub timestamp: DateTime<Utc>,
    /// The customer's `wa_id`.
    pub recipient_id: String,
    pub errors: Vec<ApiError>,
    pub conversation: Option<Value>,
    pub pricing: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: i64,
    pub title: Option<String>,
    pub message: Option<String>,
    /// `error_data.details`
    pub details: Option<String>,
}

impl InboundEvent {
    /// The contact's `wa_id`: the sender of a message, the recipient of a status report;
    /// `None` for value-level errors.
    pub fn contact_wa_id(&self) -> Option<&str> {
        match &self.payload {
            EventPayload::Message(m) => Some(&m.from),
            EventPayload::Status(s) => Some(&s.recipient_id),
            EventPayload::ProfileEdit(e) => Some(&e.wa_id),
            EventPayload::CampaignSend(s) => Some(&s.wa_id),
            EventPayload::Click(c) => Some(&c.wa_id),
            EventPayload::MarketingPreference(p) => Some(&p.wa_id),
            EventPayload::PurchaseReview(r) => Some(&r.wa_id),
            EventPayload::Erasure(e) => Some(&e.wa_id),
            EventPayload::Error(_) => None,
        }
    }

    /// The Kafka key: the contact's `wa_id`, or the business `phone_number_id` for events
    /// that concern no contact.
    pub fn partition_key(&self) -> &str {
        self.contact_wa_id()
            .unwrap_or(&self.business.phone_number_id)
    }

    /// The contact's number parsed from its `wa_id`; `None` for events that concern no
    /// contact, an error for a `wa_id` that is no phone number.
    pub fn contact_phone(&self) -> Option<Result<PhoneNumber, PhoneError>> {
        self.contact_wa_id().map(PhoneNumber::from_e164_digits)
    }

    pub fn profile_name(&self) -> Option<&str> {
        match &self.payload {
            EventPayload::Message(m) => m.profile_name.as_deref(),
            _ => None,
        }
    }

    /// Provider time of the event; value-level errors carry none.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        match &self.payload {
            EventPayload::Message(m) => Some(m.timestamp),
            EventPayload::Status(s) => Some(s.timestamp),
            EventPayload::ProfileEdit(e) => Some(e.at),
            EventPayload::CampaignSend(s) => Some(s.at),
            EventPayload::Click(c) => Some(c.at),
            EventPayload::MarketingPreference(p) => Some(p.at),
            EventPayload::PurchaseReview(r) => Some(r.at),
            EventPayload::Erasure(e) => Some(e.at),
            EventPayload::Error(_) => None,
        }
    }

    /// Pulls a time stamped by the sender back to when we received the event, at most: a
    /// START stamped in the future would otherwise outrank every later STOP, and a status
    /// from the future every real one. Only events from outside are clamped (the webhooks).
    pub fn clamp_to(&mut self, received_at: DateTime<Utc>) {
        let stamp = match &mut self.payload {
            EventPayload::Message(m) => &mut m.timestamp,
            EventPayload::Status(s) => &mut s.timestamp,
            EventPayload::MarketingPreference(p) => &mut p.at,
            EventPayload::ProfileEdit(_)
            | EventPayload::PurchaseReview(_)
            | EventPayload::Erasure(_)
            | EventPayload::CampaignSend(_)
            | EventPayload::Click(_)
            | EventPayload::Error(_) => return,
        };
        if *stamp > received_at {
            *stamp = received_at;
        }
    }

    /// Masks IC-shaped numbers the customer typed (text, captions, file names, unknown
    /// types' raw JSON): nothing in Sembang reads an IC from text, so the number never
    /// needs to be kept, and a masked copy is all that reaches wa.inbound, the message rows,
    /// the analytics events and the dead letters made from them.
    pub fn mask_ic_numbers(&mut self) {
        use crate::pii::mask::mask_ic_numbers as mask;
        let EventPayload::Message(message) = &mut self.payload else {
            return;
        };
        let text = |value: &mut String| *value = mask(value);
        let optional = |value: &mut Option<String>| {
            if let Some(v) = value {
                *v = mask(v);
            }
        };
        match &mut message.kind {
            MessageKind::Text { body } => text(body),
            MessageKind::Image { caption, .. } => optional(caption),
            MessageKind::Document {
                filename, caption, ..
            } => {
                optional(filename);
                optional(caption);
            }
            MessageKind::ButtonReply { title, .. } => text(title),
            MessageKind::ListReply {
                title, description, ..
            } => {
                text(title);
                optional(description);
            }
            MessageKind::Button { payload, text: t } => {
                optional(payload);
                optional(t);
            }
            MessageKind::System { body, .. } => optional(body),
            MessageKind::Unknown { raw, .. } => {
                let masked = mask(&raw.to_string());
                if let Ok(value) = serde_json::from_str(&masked) {
                    *raw = value;
                }
            }
        }
    }

    /// Stable across redeliveries: messages by wamid, statuses by `wamid:status`.
    /// Value-level errors have no provider id, so theirs is built from the business number
    /// and the error's content (`error:<phone_number_id>:<code>:<title>:<message>`).
    pub fn dedupe_key(&self) -> String {
        match &self.payload {
            EventPayload::Message(m) => m.wamid.clone(),
            EventPayload::Status(s) => format!("{}:{}", s.wamid, s.status.as_str()),
            EventPayload::ProfileEdit(e) => format!("edit:{}", e.edit_id),
            EventPayload::PurchaseReview(r) => format!("review:{}", r.review_id),
            EventPayload::Erasure(e) => format!("erasure:{}", e.erasure_id),
            EventPayload::CampaignSend(s) => format!("campaign_send:{}", s.request_id),
            EventPayload::Click(c) => format!("click:{}", c.click_id),
            EventPayload::MarketingPreference(p) => format!(
                "preference:{}:{}:{}",
                p.wa_id,
                if p.stop { "stop" } else { "resume" },
                p.at.timestamp()
            ),
            EventPayload::Error(e) => format!(
                "error:{}:{}:{}:{}",
                self.business.phone_number_id,
                e.code,
                e.title.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_status_keeps_unknown_strings() {
        for s in ["sent", "delivered", "read", "failed"] {
            let status = ReportedStatus::parse(s);
            assert!(status.known().is_some(), "{s}");
            assert_eq!(status.as_str(), s);
        }
        let deleted = ReportedStatus::parse("deleted");
        assert_eq!(deleted, ReportedStatus::Unknown("deleted".into()));
        assert_eq!(deleted.known(), None);
        for status in [ReportedStatus::Known(DeliveryStatus::Read), deleted] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(
                serde_json::from_str::<ReportedStatus>(&json).unwrap(),
                status
            );
        }
    }
}
