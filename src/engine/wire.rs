//! Payloads of the engine's own topics (wa.outbound, crm.ocr.jobs) and the deterministic
//! ids that make their replays harmless: every id is derived from the inbound event that
//! caused it, so processing the same event twice produces the same ids, which the sender
//! (send claims) and the analytics sink (ReplacingMergeTree) collapse.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::contact::ProtectedIc;
use crate::domain::money::Money;
use crate::domain::person::Gender;
use crate::domain::phone::PhoneNumber;
use crate::ingress::Business;
use crate::provider::OutboundContent;

/// Namespace of the engine's v5 UUIDs (a fixed random UUID: changing it would break replays).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5e6b_a7a1_33c4_4b5e_9a0d_2f1e_8c47_d301);

/// A stable event id for `what` (e.g. `inbound:wamid.X`).
pub fn event_id(what: &str) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, what.as_bytes())
}

/// A message to send, on wa.outbound keyed by the business number, so one sender owns each
/// number's rate limiter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundRequest {
    /// Dedupe key: the sender claims it once (`reply:<inbound wamid>`, later
    /// `campaign:<id>`).
    pub request_id: String,
    /// The business number that sends (Cloud API phone_number_id).
    pub phone_number_id: String,
    /// The business number's display digits, for analytics.
    pub business_number: String,
    pub to: PhoneNumber,
    pub content: OutboundContent,
    /// auto_reply, campaign, operator
    pub origin: String,
    /// The auto-reply rule or campaign that produced it.
    pub rule: Option<String>,
    pub campaign_id: Option<String>,
    /// The inbound message this answers.
    pub in_reply_to: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The `media_id` prefix of a job whose photo is already in the object store (uploaded
/// through the admin API): `stored:<object key>`.
pub const STORED_MEDIA_PREFIX: &str = "stored:";

/// An image or document to read, on crm.ocr.jobs keyed by contact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcrJob {
    /// The inbound message's wamid: one job per message.
    pub job_id: String,
    pub contact: PhoneNumber,
    pub business: Business,
    /// image or document
    pub media_kind: String,
    pub media_id: String,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub filename: Option<String>,
    pub caption: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// What the OCR role read from a job's image, on crm.ocr.results keyed by contact, so the
/// contact's shard applies it in order with the contact's messages. It never carries an IC
/// number in clear: the OCR role protects it first, and links it (or finds it linked) in
/// the store, as it claims receipt fingerprints, so applying a result needs no I/O.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcrResult {
    /// The job's id (the inbound message's wamid): one result per job.
    pub job_id: String,
    pub contact: PhoneNumber,
    pub business: Business,
    pub image_sha256: Option<String>,
    /// Mean Tesseract word confidence, 0 to 100.
    pub confidence: f32,
    pub outcome: OcrOutcome,
    pub completed_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OcrOutcome {
    MyKad(MyKadReading),
    Receipt(ReceiptReading),
    /// Unreadable, not a MyKad or receipt, or invalid: the customer is asked for a clearer
    /// photo with the reason. `read_as`: ic, receipt or unknown.
    Rejected {
        read_as: String,
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MyKadReading {
    pub ic: ProtectedIc,
    pub birth_date: NaiveDate,
    pub gender: Gender,
    /// The Malaysian state of the place-of-birth code, when it names one.
    pub state: Option<String>,
    /// The name as printed on the card.
    pub name: Option<String>,
    /// Whether the IC could be linked to this contact's number.
    pub link: IcLinkOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IcLinkOutcome {
    Linked,
    AlreadyLinked,
    /// Registered to another number: flagged, never silently moved.
    LinkedToOther,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiptReading {
    pub purchase_id: String,
    pub total: Money,
    pub purchased_on: NaiveDate,
    pub merchant: Option<String>,
    pub receipt_no: Option<String>,
    pub item_count: u32,
    /// The receipt parser's confidence, 0 to 1.
    pub parse_confidence: f64,
    /// Too uncertain to count without a person looking at it.
    pub needs_review: bool,
    /// The purchase that already claimed this receipt (same image, or same merchant,
    /// receipt number and total).
    pub duplicate_of: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_and_distinct() {
        assert_eq!(event_id("inbound:wamid.A"), event_id("inbound:wamid.A"));
        assert_ne!(event_id("inbound:wamid.A"), event_id("inbound:wamid.B"));
        assert_eq!(event_id("x").get_version_num(), 5);
    }
}
