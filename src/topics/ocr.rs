//! crm.ocr.jobs (photos to read) and crm.ocr.results (what was read), both keyed by the
//! contact's wa_id and co-partitioned with wa.inbound, so a contact's shard applies its OCR
//! results in order with its messages.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::inbound::Business;
use crate::domain::contact::ProtectedIc;
use crate::domain::money::Money;
use crate::domain::person::Gender;
use crate::domain::phone::PhoneNumber;

/// What an image was read as.
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
pub enum OcrKind {
    /// A MyKad.
    Ic,
    Receipt,
    /// Neither, or never read (the photo could not be fetched or decoded).
    Unknown,
}

impl OcrKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Images and documents to read, keyed by contact.
pub const JOBS_TOPIC: &str = "crm.ocr.jobs";
/// What was read, keyed by contact (co-partitioned with wa.inbound).
pub const RESULTS_TOPIC: &str = "crm.ocr.results";

/// The `media_id` prefix of a job whose photo is already in the object store (uploaded
/// through the admin API): `stored:<object key>`.
pub const STORED_MEDIA_PREFIX: &str = "stored:";

/// The job id prefix of a photo uploaded through the admin API, the only jobs that may name
/// a stored object.
pub const UPLOAD_JOB_PREFIX: &str = "upload.";

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
    /// photo with the reason.
    Rejected {
        read_as: OcrKind,
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
