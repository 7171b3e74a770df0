//! crm.events: the analytics event rows, one struct per event table, keyed by event id.
//! Every row carries an `event_id` (a UUID, the dedupe key: the same id written twice is one event) and `occurred_at`
//! (UTC, whole seconds: ClickHouse `DateTime`).
//!
//! Conventions shared by both backends:
//! - Phone numbers are E.164 digits ([`PhoneNumber`]); an IC number never appears in clear.
//!   Free-text fields are scrubbed by [`AnalyticsEvent::normalized`]: any IC-shaped number
//!   (`YYMMDD-PB-####`, with or without separators) is masked to `YYMMDD-PB-****`, the form
//!   [`crate::domain::mykad::MyKad::masked`] prints.
//! - Money is exact sen ([`Money`]), `Decimal(18,2)` in ClickHouse, a decimal string in files.
//! - An absent optional text is `None` here and `''` in ClickHouse, so `Some("")` is
//!   normalized to `None`.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::domain::clock::malaysian_day;
use crate::domain::contact::WhatsappStatus;
use crate::domain::message::DeliveryStatus;
use crate::domain::money::Money;
use crate::domain::person::{Gender, MaritalStatus};
use crate::domain::phone::PhoneNumber;
use crate::domain::purchase::PurchaseStatus;
use crate::domain::tier::Tier;
use crate::pii::mask::mask_ic_numbers;
use crate::topics::ocr::OcrKind;

/// Analytics events for ClickHouse (or the embedded default's files).
pub const TOPIC: &str = "crm.events";

/// On a crm.events record with an empty payload: the contact (E.164 digits) whose event rows
/// the analytics role erases from the sink, after every event before it (keyed by the
/// contact, like them, so it follows them on their partition).
pub const HEADER_ERASE_CONTACT: &str = "x-erase-contact";

/// The event tables of schemas/clickhouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTable {
    InboundMessages,
    OutboundMessages,
    MessageStatuses,
    Purchases,
    OcrResults,
    ContactSnapshots,
    CampaignSends,
    PersonalDataAccess,
}

impl EventTable {
    pub const ALL: [EventTable; 8] = [
        EventTable::InboundMessages,
        EventTable::OutboundMessages,
        EventTable::MessageStatuses,
        EventTable::Purchases,
        EventTable::OcrResults,
        EventTable::ContactSnapshots,
        EventTable::CampaignSends,
        EventTable::PersonalDataAccess,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            EventTable::InboundMessages => "inbound_messages",
            EventTable::OutboundMessages => "outbound_messages",
            EventTable::MessageStatuses => "message_statuses",
            EventTable::Purchases => "purchases",
            EventTable::OcrResults => "ocr_results",
            EventTable::ContactSnapshots => "contact_snapshots",
            EventTable::CampaignSends => "campaign_steps",
            EventTable::PersonalDataAccess => "personal_data_access",
        }
    }
}

/// A message a contact sent to a business number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundMessageEvent {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub contact_phone: PhoneNumber,
    /// The business number that received it, E.164 digits.
    pub business_number: String,
    pub wamid: String,
    /// WhatsApp message type: text, image, document, button, interactive, ...
    pub message_type: String,
    /// Text body, caption or button text.
    pub text: Option<String>,
    /// The business message this one replies to (a reply or a button click).
    pub context_wamid: Option<String>,
    /// The campaign whose message this replies to, when it does: the funnel's `replied` stage.
    pub campaign_id: Option<String>,
}

/// A message a business number sent (auto-reply, campaign, operator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessageEvent {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub contact_phone: PhoneNumber,
    pub business_number: String,
    /// Set once the provider accepted the message.
    pub wamid: Option<String>,
    /// text, template, image, ...
    pub message_type: String,
    pub template_name: Option<String>,
    pub body: Option<String>,
    pub campaign_id: Option<String>,
    /// Why it was sent: auto_reply, campaign, operator, ...
    pub origin: crate::topics::outbound::Origin,
}

/// A delivery status report for an outbound message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageStatusEvent {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub contact_phone: PhoneNumber,
    pub business_number: String,
    pub wamid: String,
    pub status: DeliveryStatus,
    pub campaign_id: Option<String>,
    /// Provider error code of a failure (e.g. 131026 undeliverable).
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
}

/// A purchase recorded from a receipt, or a change of its review status. The latest event
/// of a purchase (by `occurred_at`) decides whether it counts toward revenue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PurchaseEvent {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub contact_phone: PhoneNumber,
    pub business_number: String,
    pub purchase_id: String,
    /// The date on the receipt.
    pub purchase_date: NaiveDate,
    pub merchant: Option<String>,
    pub receipt_no: Option<String>,
    pub total: Money,
    pub item_count: u32,
    pub status: PurchaseStatus,
    pub ocr_confidence: Option<f32>,
    /// The campaign the purchase is attributed to: the funnel's `converted` stage.
    pub campaign_id: Option<String>,
}

/// One OCR job's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcrResultEvent {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub contact_phone: PhoneNumber,
    pub media_id: String,
    pub kind: OcrKind,
    pub status: OcrStatus,
    /// Mean Tesseract confidence, 0 to 100.
    pub confidence: f32,
    pub duration_ms: u32,
    /// The parsed fields as a JSON object (IC numbers masked).
    pub fields_json: String,
    pub error: Option<String>,
}

/// What came of an OCR job.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OcrStatus {
    /// Read as a valid MyKad or receipt.
    Parsed,
    /// Read, but not as a valid MyKad or receipt: the customer is asked for a clearer photo.
    Rejected,
    /// Never read: the photo could not be fetched, stored or decoded.
    Failed,
}

impl OcrStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A contact's profile after a change (registration, purchase, tier change, opt-out, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactSnapshotEvent {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub contact_phone: PhoneNumber,
    pub gender: Option<Gender>,
    pub age: Option<u8>,
    /// State or federal territory name, e.g. "Selangor".
    pub state: Option<String>,
    pub marital_status: Option<MaritalStatus>,
    pub tier: Tier,
    pub total_spent: Money,
    pub purchase_count: u32,
    pub whatsapp_status: WhatsappStatus,
    pub marketing_opt_in: bool,
    /// The masked IC (`900101-**-****`), never the full number.
    pub ic_masked: Option<String>,
    /// What changed: registered, purchase, tier, opt_out, ...
    pub reason: String,
}

/// The outcome of one campaign send to one contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendOutcome {
    /// Enqueued to wa.outbound.
    Queued,
    /// Accepted by the provider.
    Sent,
    /// Not sent: opted out, blocked, frequency-capped, past the campaign's end.
    Skipped,
    /// The provider refused it.
    Failed,
    /// A click on one of its tracking links (every click; the funnel counts contacts).
    Clicked,
    /// A purchase inside the attribution window after delivery (once per recipient).
    Converted,
}

impl SendOutcome {
    pub const ALL: [SendOutcome; 6] = [
        SendOutcome::Queued,
        SendOutcome::Sent,
        SendOutcome::Skipped,
        SendOutcome::Failed,
        SendOutcome::Clicked,
        SendOutcome::Converted,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SendOutcome::Queued => "queued",
            SendOutcome::Sent => "sent",
            SendOutcome::Skipped => "skipped",
            SendOutcome::Failed => "failed",
            SendOutcome::Clicked => "clicked",
            SendOutcome::Converted => "converted",
        }
    }

    pub fn parse(s: &str) -> Option<SendOutcome> {
        SendOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignSendEvent {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub campaign_id: String,
    pub contact_phone: PhoneNumber,
    pub business_number: String,
    pub outcome: SendOutcome,
    pub template_name: Option<String>,
    pub wamid: Option<String>,
    pub skip_reason: Option<String>,
    pub error_code: Option<i64>,
    /// A conversion's purchase amount.
    #[serde(default)]
    pub revenue: Option<Money>,
}

impl CampaignSendEvent {
    /// A step of `campaign_id` for `contact`, its id derived from `cause` (so a replay
    /// collapses); the optional fields empty, for the caller to set.
    pub fn step(
        cause: &str,
        occurred_at: DateTime<Utc>,
        campaign_id: &str,
        contact_phone: &PhoneNumber,
        business_number: &str,
        outcome: SendOutcome,
    ) -> Self {
        CampaignSendEvent {
            event_id: crate::topics::event_id(cause),
            occurred_at,
            campaign_id: campaign_id.to_string(),
            contact_phone: contact_phone.clone(),
            business_number: business_number.to_string(),
            outcome,
            template_name: None,
            wamid: None,
            skip_reason: None,
            error_code: None,
            revenue: None,
        }
    }
}

/// Any analytics event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum AnalyticsEvent {
    InboundMessage(InboundMessageEvent),
    OutboundMessage(OutboundMessageEvent),
    MessageStatus(MessageStatusEvent),
    Purchase(PurchaseEvent),
    OcrResult(OcrResultEvent),
    ContactSnapshot(ContactSnapshotEvent),
    CampaignSend(CampaignSendEvent),
    PersonalDataAccess(PersonalDataAccessEvent),
}

impl AnalyticsEvent {
    /// The message text a message event carries (inbound text or outbound body), for
    /// retention; `None` for events that carry none.
    pub fn message_text_mut(&mut self) -> Option<&mut Option<String>> {
        match self {
            AnalyticsEvent::InboundMessage(e) => Some(&mut e.text),
            AnalyticsEvent::OutboundMessage(e) => Some(&mut e.body),
            _ => None,
        }
    }
}

/// A request through the admin API that read or changed personal data (the PDPA audit
/// trail): who (the key's id, never the key), what (method and route template), whose
/// (the contact the route names; none for lists and exports of many), when, and how it
/// was answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonalDataAccessEvent {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// `key-` and a hash prefix of the key, or `open` where no key is required.
    pub key_id: String,
    pub role: String,
    pub method: String,
    /// The route's template, e.g. `/api/contacts/{phone}/`.
    pub route: String,
    /// The query string, IC-shaped numbers masked (what a search looked for).
    pub query: Option<String>,
    pub contact_phone: Option<PhoneNumber>,
    pub status: u16,
}

macro_rules! each_event {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            AnalyticsEvent::InboundMessage($e) => $body,
            AnalyticsEvent::OutboundMessage($e) => $body,
            AnalyticsEvent::MessageStatus($e) => $body,
            AnalyticsEvent::Purchase($e) => $body,
            AnalyticsEvent::OcrResult($e) => $body,
            AnalyticsEvent::ContactSnapshot($e) => $body,
            AnalyticsEvent::CampaignSend($e) => $body,
            AnalyticsEvent::PersonalDataAccess($e) => $body,
        }
    };
}

impl AnalyticsEvent {
    pub fn table(&self) -> EventTable {
        match self {
            AnalyticsEvent::InboundMessage(_) => EventTable::InboundMessages,
            AnalyticsEvent::OutboundMessage(_) => EventTable::OutboundMessages,
            AnalyticsEvent::MessageStatus(_) => EventTable::MessageStatuses,
            AnalyticsEvent::Purchase(_) => EventTable::Purchases,
            AnalyticsEvent::OcrResult(_) => EventTable::OcrResults,
            AnalyticsEvent::ContactSnapshot(_) => EventTable::ContactSnapshots,
            AnalyticsEvent::CampaignSend(_) => EventTable::CampaignSends,
            AnalyticsEvent::PersonalDataAccess(_) => EventTable::PersonalDataAccess,
        }
    }

    pub fn event_id(&self) -> Uuid {
        each_event!(self, e => e.event_id)
    }

    pub fn occurred_at(&self) -> DateTime<Utc> {
        each_event!(self, e => e.occurred_at)
    }

    /// The contact the event concerns; an audit event of a list names none.
    pub fn contact_phone(&self) -> Option<&PhoneNumber> {
        match self {
            AnalyticsEvent::PersonalDataAccess(e) => e.contact_phone.as_ref(),
            AnalyticsEvent::InboundMessage(e) => Some(&e.contact_phone),
            AnalyticsEvent::OutboundMessage(e) => Some(&e.contact_phone),
            AnalyticsEvent::MessageStatus(e) => Some(&e.contact_phone),
            AnalyticsEvent::Purchase(e) => Some(&e.contact_phone),
            AnalyticsEvent::OcrResult(e) => Some(&e.contact_phone),
            AnalyticsEvent::ContactSnapshot(e) => Some(&e.contact_phone),
            AnalyticsEvent::CampaignSend(e) => Some(&e.contact_phone),
        }
    }

    /// The event as both backends store it: `occurred_at` truncated to the second, empty
    /// optional texts as `None`, IC-shaped numbers in free text masked. Idempotent; what
    /// the readers return equals the written event's `normalized()`.
    pub fn normalized(&self) -> AnalyticsEvent {
        let mut event = self.clone();
        each_event!(&mut event, e => e.occurred_at = whole_seconds(e.occurred_at));
        match &mut event {
            AnalyticsEvent::InboundMessage(e) => {
                scrub_opt(&mut e.text);
                empty_to_none(&mut e.context_wamid);
                empty_to_none(&mut e.campaign_id);
            }
            AnalyticsEvent::OutboundMessage(e) => {
                empty_to_none(&mut e.wamid);
                empty_to_none(&mut e.template_name);
                scrub_opt(&mut e.body);
                empty_to_none(&mut e.campaign_id);
            }
            AnalyticsEvent::MessageStatus(e) => {
                empty_to_none(&mut e.campaign_id);
                scrub_opt(&mut e.error_title);
            }
            AnalyticsEvent::Purchase(e) => {
                empty_to_none(&mut e.merchant);
                empty_to_none(&mut e.receipt_no);
                empty_to_none(&mut e.campaign_id);
            }
            AnalyticsEvent::OcrResult(e) => {
                e.fields_json = mask_ic_numbers(&e.fields_json);
                scrub_opt(&mut e.error);
            }
            AnalyticsEvent::ContactSnapshot(e) => {
                empty_to_none(&mut e.state);
                scrub_opt(&mut e.ic_masked);
            }
            AnalyticsEvent::CampaignSend(e) => {
                empty_to_none(&mut e.template_name);
                empty_to_none(&mut e.wamid);
                empty_to_none(&mut e.skip_reason);
            }
            AnalyticsEvent::PersonalDataAccess(e) => {
                empty_to_none(&mut e.query);
                scrub_opt(&mut e.query);
            }
        }
        event
    }
}

macro_rules! from_row {
    ($($row:ident => $variant:ident),* $(,)?) => {
        $(impl From<$row> for AnalyticsEvent {
            fn from(row: $row) -> Self {
                AnalyticsEvent::$variant(row)
            }
        })*
    };
}

from_row! {
    InboundMessageEvent => InboundMessage,
    OutboundMessageEvent => OutboundMessage,
    MessageStatusEvent => MessageStatus,
    PurchaseEvent => Purchase,
    OcrResultEvent => OcrResult,
    ContactSnapshotEvent => ContactSnapshot,
    CampaignSendEvent => CampaignSend,
    PersonalDataAccessEvent => PersonalDataAccess,
}

fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_nanosecond(0).unwrap_or(at)
}

fn empty_to_none(value: &mut Option<String>) {
    if value.as_deref() == Some("") {
        *value = None;
    }
}

fn scrub_opt(value: &mut Option<String>) {
    empty_to_none(value);
    if let Some(text) = value {
        *text = mask_ic_numbers(text);
    }
}

/// The age bands of the demographics view; the same buckets as the ClickHouse `multiIf`
/// in schemas/clickhouse/0002_views.sql.
pub fn age_band(age: Option<u8>) -> &'static str {
    match age {
        None => "unknown",
        Some(0..=17) => "under 18",
        Some(18..=24) => "18-24",
        Some(25..=34) => "25-34",
        Some(35..=44) => "35-44",
        Some(45..=54) => "45-54",
        Some(55..=64) => "55-64",
        Some(_) => "65+",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_bands_cover_every_age() {
        assert_eq!(age_band(None), "unknown");
        assert_eq!(age_band(Some(17)), "under 18");
        assert_eq!(age_band(Some(18)), "18-24");
        assert_eq!(age_band(Some(64)), "55-64");
        assert_eq!(age_band(Some(65)), "65+");
    }

    #[test]
    fn malaysian_days_start_at_16_utc() {
        let before = DateTime::parse_from_rfc3339("2024-03-01T15:59:59Z").unwrap();
        let after = DateTime::parse_from_rfc3339("2024-03-01T16:00:00Z").unwrap();
        assert_eq!(
            malaysian_day(before.with_timezone(&Utc)),
            NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()
        );
        assert_eq!(
            malaysian_day(after.with_timezone(&Utc)),
            NaiveDate::from_ymd_opt(2024, 3, 2).unwrap()
        );
    }
}
