//! CQL rows to and from the domain types. Times are CQL timestamps (milliseconds), dates
//! CQL dates, money exact sen in a bigint, enums their lowercase text.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use scylla::value::{CqlTimestamp, MaybeUnset};
use scylla::{DeserializeRow, SerializeRow};

use crate::domain::contact::{ConsentChange, Contact, InteractionStats, ProtectedIc};
use crate::domain::contact_fields::ContactField;
use crate::domain::message::DeliveryTimeline;
use crate::domain::money::Money;
use crate::domain::phone::PhoneNumber;
use crate::domain::purchase::{Purchase, PurchaseStatus};
use crate::storage::store::{
    CampaignRecord, ContactWrite, Direction, MessageRecord, SegmentRecord, StoreError,
};

/// A timestamp read as a dynamic CQL value (an LWT's answer); typed rows get `DateTime`
/// from the driver itself.
pub(crate) fn from_ts(what: &str, at: CqlTimestamp) -> Result<DateTime<Utc>, StoreError> {
    at.try_into()
        .map_err(|_| corrupt(what, format!("timestamp {} out of range", at.0)))
}

fn required<T>(what: &str, column: &str, value: Option<T>) -> Result<T, StoreError> {
    value.ok_or_else(|| corrupt(what, format!("{column} is missing")))
}

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

fn parse<T: FromStr>(what: &str, column: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| corrupt(what, format!("{column}: {e}")))
}

fn phone(what: &str, text: &str) -> Result<PhoneNumber, StoreError> {
    PhoneNumber::from_e164_digits(text).map_err(|e| corrupt(what, format!("phone {text:?}: {e}")))
}

pub(crate) fn parse_phone(what: &str, text: &str) -> Result<PhoneNumber, StoreError> {
    phone(what, text)
}

/// Counters are u64 in the domain and bigint in CQL.
fn counter(operation: &'static str, name: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        super::errors::query(
            operation,
            format!("{name} {value} does not fit a CQL bigint"),
        )
    })
}

fn from_counter(what: &str, column: &str, value: Option<i64>) -> Result<u64, StoreError> {
    let value = value.unwrap_or(0);
    u64::try_from(value).map_err(|_| corrupt(what, format!("{column} is negative ({value})")))
}

/// What an absent optional value writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Absent {
    /// NULL: the row is replaced, a value stored before is cleared (explicit upserts).
    Clear,
    /// Nothing: the stored value stays. For the engine's write-behind flushes, which never
    /// take a value back to absent: a NULL is a tombstone, and a contact row rewritten on
    /// every flush with a dozen empty columns kept Cassandra busy with tombstones
    /// (BENCHMARKS.md).
    Keep,
}

/// An optional column of a written row.
type Cell<T> = MaybeUnset<Option<T>>;

/// Bytes of a written variable-length value (0 when unset or NULL).
fn written_len<T: AsRef<[u8]>>(cell: &Cell<T>) -> usize {
    match cell {
        MaybeUnset::Set(Some(value)) => value.as_ref().len(),
        _ => 0,
    }
}

fn cell<T>(value: Option<T>, absent: Absent) -> Cell<T> {
    match (value, absent) {
        (None, Absent::Keep) => MaybeUnset::Unset,
        (value, _) => MaybeUnset::Set(value),
    }
}

// ---------------------------------------------------------------- contacts

/// A column of a contact row that is written only when its field changed (unset cells are
/// left as stored).
type Column<T> = MaybeUnset<T>;

fn column<T>(write: bool, value: impl FnOnce() -> T) -> Column<T> {
    if write {
        MaybeUnset::Set(value())
    } else {
        MaybeUnset::Unset
    }
}

/// As [`column`], for a value whose conversion can fail.
fn try_column<T, E>(write: bool, value: impl FnOnce() -> Result<T, E>) -> Result<Column<T>, E> {
    Ok(if write {
        MaybeUnset::Set(value()?)
    } else {
        MaybeUnset::Unset
    })
}

fn optional<T>(write: bool, value: Option<T>, absent: Absent) -> Cell<T> {
    if write {
        cell(value, absent)
    } else {
        MaybeUnset::Unset
    }
}

#[derive(SerializeRow)]
pub(crate) struct ContactValues<'a> {
    phone: &'a str,
    name: Cell<&'a str>,
    gender: Cell<&'static str>,
    date_of_birth: Cell<NaiveDate>,
    state: Cell<&'a str>,
    marital_status: Cell<&'static str>,
    whatsapp_status: Column<&'static str>,
    marketing_opt_in: Column<bool>,
    consent_changed_at: Cell<DateTime<Utc>>,
    consent_source: Cell<&'a str>,
    consent_wording: Cell<&'a str>,
    ic_masked: Cell<&'a str>,
    ic_keyed_hash: Cell<&'a [u8]>,
    ic_ciphertext: Cell<&'a [u8]>,
    customer_tier: Column<&'static str>,
    message_count: Column<i64>,
    last_interaction: Cell<DateTime<Utc>>,
    outbound_count: Column<i64>,
    replied_count: Column<i64>,
    last_outbound: Cell<DateTime<Utc>>,
    recent_events: Column<Vec<i64>>,
    attributes: Column<String>,
    campaign_touches: Column<String>,
    created_at: Column<DateTime<Utc>>,
    updated_at: Column<DateTime<Utc>>,
    /// The write timestamp: `updated_at` in microseconds, truncated to the millisecond
    /// like the column, so a reader of `updated_at` knows what a later write must exceed.
    #[scylla(rename = "[timestamp]")]
    written_at: i64,
}

pub(crate) const CONTACT_COLUMNS: &str = "phone, name, gender, date_of_birth, state, \
    marital_status, whatsapp_status, marketing_opt_in, consent_changed_at, consent_source, consent_wording, \
    ic_masked, ic_keyed_hash, ic_ciphertext, customer_tier, message_count, last_interaction, \
    outbound_count, replied_count, last_outbound, recent_events, attributes, campaign_touches, \
    created_at, updated_at";

impl<'a> ContactValues<'a> {
    /// Bytes of its variable-length values, for sizing batches.
    pub(crate) fn text_bytes(&self) -> usize {
        let set = |value: &Column<String>| match value {
            MaybeUnset::Set(value) => value.len(),
            MaybeUnset::Unset => 0,
        };
        let events = match &self.recent_events {
            MaybeUnset::Set(events) => events.len() * 8,
            MaybeUnset::Unset => 0,
        };
        self.phone.len()
            + written_len(&self.name)
            + written_len(&self.state)
            + written_len(&self.consent_source)
            + written_len(&self.consent_wording)
            + written_len(&self.ic_masked)
            + written_len(&self.ic_keyed_hash)
            + written_len(&self.ic_ciphertext)
            + set(&self.attributes)
            + set(&self.campaign_touches)
            + events
    }

    /// The changed fields of the contact; the others are left unset.
    pub(crate) fn new(write: ContactWrite<'a>, absent: Absent) -> Result<Self, StoreError> {
        use ContactField as F;
        const OP: &str = "upsert_contact";
        let contact = write.contact;
        let has = |field: ContactField| write.changed.contains(field);
        let stats = &contact.interactions;
        let attributes = try_column(has(F::Attributes), || {
            serde_json::to_string(&contact.attributes)
                .map_err(|e| super::errors::query(OP, format!("attributes: {e}")))
        })?;
        let campaign_touches = try_column(has(F::CampaignTouches), || {
            serde_json::to_string(&contact.campaign_touches)
                .map_err(|e| super::errors::query(OP, format!("campaign_touches: {e}")))
        })?;
        let count = |field: ContactField, name: &str, value: u64| {
            try_column(has(field), || counter(OP, name, value))
        };
        let consent = contact.consent_change.as_ref();
        let ic = contact.ic.as_ref();
        Ok(ContactValues {
            phone: contact.phone_number.as_str(),
            name: optional(has(F::Name), contact.name.as_deref(), absent),
            gender: optional(has(F::Gender), contact.gender.map(|g| g.as_str()), absent),
            date_of_birth: optional(has(F::DateOfBirth), contact.date_of_birth, absent),
            state: optional(has(F::State), contact.state.as_deref(), absent),
            marital_status: optional(
                has(F::MaritalStatus),
                contact.marital_status.map(|m| m.as_str()),
                absent,
            ),
            whatsapp_status: column(has(F::WhatsappStatus), || contact.whatsapp_status.as_str()),
            marketing_opt_in: column(has(F::MarketingOptIn), || contact.marketing_opt_in),
            consent_changed_at: optional(has(F::ConsentChange), consent.map(|c| c.at), absent),
            consent_source: optional(
                has(F::ConsentChange),
                consent.map(|c| c.source.as_str()),
                absent,
            ),
            // Written with its change, NULL included: an old wording must not stay beside
            // a new consent change that had none.
            consent_wording: match consent {
                Some(c) if has(F::ConsentChange) => MaybeUnset::Set(c.wording.as_deref()),
                _ => optional(has(F::ConsentChange), None, absent),
            },
            ic_masked: optional(has(F::Ic), ic.map(|ic| ic.masked.as_str()), absent),
            ic_keyed_hash: optional(has(F::Ic), ic.map(|ic| ic.keyed_hash.as_slice()), absent),
            ic_ciphertext: optional(has(F::Ic), ic.map(|ic| ic.ciphertext.as_slice()), absent),
            customer_tier: column(has(F::CustomerTier), || contact.customer_tier.as_str()),
            message_count: count(F::MessageCount, "message_count", stats.message_count)?,
            last_interaction: optional(has(F::LastInteraction), stats.last_interaction, absent),
            outbound_count: count(F::OutboundCount, "outbound_count", stats.outbound_count)?,
            replied_count: count(F::RepliedCount, "replied_count", stats.replied_count)?,
            last_outbound: optional(has(F::LastOutbound), stats.last_outbound, absent),
            recent_events: column(has(F::AppliedEvents), || {
                contact.applied_events.fingerprints().collect()
            }),
            attributes,
            campaign_touches,
            created_at: column(has(F::CreatedAt), || contact.created_at),
            updated_at: column(has(F::UpdatedAt), || contact.updated_at),
            written_at: contact.updated_at.timestamp_millis() * 1_000,
        })
    }
}

#[derive(DeserializeRow)]
pub(crate) struct ContactRow {
    phone: String,
    name: Option<String>,
    gender: Option<String>,
    date_of_birth: Option<NaiveDate>,
    state: Option<String>,
    marital_status: Option<String>,
    whatsapp_status: Option<String>,
    marketing_opt_in: Option<bool>,
    consent_changed_at: Option<DateTime<Utc>>,
    consent_source: Option<String>,
    consent_wording: Option<String>,
    ic_masked: Option<String>,
    ic_keyed_hash: Option<Vec<u8>>,
    ic_ciphertext: Option<Vec<u8>>,
    customer_tier: Option<String>,
    message_count: Option<i64>,
    last_interaction: Option<DateTime<Utc>>,
    outbound_count: Option<i64>,
    replied_count: Option<i64>,
    last_outbound: Option<DateTime<Utc>>,
    recent_events: Option<Vec<i64>>,
    attributes: Option<String>,
    campaign_touches: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl ContactRow {
    /// The contact without its ledger (the caller adds the counted purchases).
    pub(crate) fn into_contact(self) -> Result<Contact, StoreError> {
        let what = format!("contact {}", self.phone);
        let what = what.as_str();
        let consent_change = match (self.consent_changed_at, self.consent_source) {
            (Some(at), Some(source)) => Some(ConsentChange {
                at,
                source,
                wording: self.consent_wording,
            }),
            (None, None) => None,
            _ => {
                return Err(corrupt(
                    what,
                    "consent change has a time or a source but not both",
                ))
            }
        };
        let ic = match (self.ic_masked, self.ic_keyed_hash, self.ic_ciphertext) {
            (Some(masked), Some(keyed_hash), Some(ciphertext)) => Some(ProtectedIc {
                masked,
                keyed_hash,
                ciphertext,
            }),
            (None, None, None) => None,
            _ => {
                return Err(corrupt(
                    what,
                    "IC is partly stored (masked, keyed hash, ciphertext)",
                ))
            }
        };
        let attributes: BTreeMap<String, serde_json::Value> = match self.attributes.as_deref() {
            None | Some("") => BTreeMap::new(),
            Some(text) => {
                serde_json::from_str(text).map_err(|e| corrupt(what, format!("attributes: {e}")))?
            }
        };
        let campaign_touches = match self.campaign_touches.as_deref() {
            None | Some("") => Default::default(),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| corrupt(what, format!("campaign_touches: {e}")))?,
        };
        let created_at = required(what, "created_at", self.created_at)?;
        Ok(Contact {
            phone_number: phone(what, &self.phone)?,
            name: self.name,
            gender: self.gender.map(|g| parse(what, "gender", &g)).transpose()?,
            date_of_birth: self.date_of_birth,
            state: self.state,
            marital_status: self
                .marital_status
                .map(|m| parse(what, "marital_status", &m))
                .transpose()?,
            whatsapp_status: match self.whatsapp_status {
                Some(s) => parse(what, "whatsapp_status", &s)?,
                None => Default::default(),
            },
            marketing_opt_in: self.marketing_opt_in.unwrap_or(false),
            consent_change,
            ic,
            purchases: Default::default(),
            customer_tier: parse(
                what,
                "customer_tier",
                &required(what, "customer_tier", self.customer_tier)?,
            )?,
            interactions: InteractionStats {
                message_count: from_counter(what, "message_count", self.message_count)?,
                last_interaction: self.last_interaction,
                outbound_count: from_counter(what, "outbound_count", self.outbound_count)?,
                replied_count: from_counter(what, "replied_count", self.replied_count)?,
                last_outbound: self.last_outbound,
            },
            created_at,
            updated_at: self.updated_at.unwrap_or(created_at),
            attributes,
            applied_events: self.recent_events.unwrap_or_default().into_iter().collect(),
            campaign_touches,
        })
    }
}

// ---------------------------------------------------------------- purchases

#[derive(SerializeRow)]
pub(crate) struct PurchaseValues<'a> {
    contact: &'a str,
    purchase_id: &'a str,
    amount_sen: i64,
    purchased_on: NaiveDate,
    merchant: Cell<&'a str>,
    receipt_no: Cell<&'a str>,
    item_count: i64,
    image_sha256: Cell<&'a str>,
    ocr_confidence: Cell<f64>,
    status: &'static str,
    recorded_at: DateTime<Utc>,
}

impl PurchaseValues<'_> {
    /// Bytes of its variable-length values, for sizing batches.
    pub(crate) fn text_bytes(&self) -> usize {
        self.contact.len()
            + self.purchase_id.len()
            + written_len(&self.merchant)
            + written_len(&self.receipt_no)
            + written_len(&self.image_sha256)
    }
}

pub(crate) const PURCHASE_COLUMNS: &str = "contact, purchase_id, amount_sen, purchased_on, \
    merchant, receipt_no, item_count, image_sha256, ocr_confidence, status, recorded_at";

impl<'a> PurchaseValues<'a> {
    pub(crate) fn new(contact: &'a PhoneNumber, purchase: &'a Purchase, absent: Absent) -> Self {
        PurchaseValues {
            contact: contact.as_str(),
            purchase_id: &purchase.purchase_id,
            amount_sen: purchase.amount.sen(),
            purchased_on: purchase.purchased_on,
            merchant: cell(purchase.merchant.as_deref(), absent),
            receipt_no: cell(purchase.receipt_no.as_deref(), absent),
            item_count: i64::from(purchase.item_count),
            image_sha256: cell(purchase.image_sha256.as_deref(), absent),
            ocr_confidence: cell(purchase.ocr_confidence, absent),
            status: purchase.status.as_str(),
            recorded_at: purchase.recorded_at,
        }
    }
}

#[derive(DeserializeRow)]
pub(crate) struct PurchaseRow {
    contact: String,
    purchase_id: String,
    amount_sen: Option<i64>,
    purchased_on: Option<NaiveDate>,
    merchant: Option<String>,
    receipt_no: Option<String>,
    item_count: Option<i64>,
    image_sha256: Option<String>,
    ocr_confidence: Option<f64>,
    status: Option<String>,
    recorded_at: Option<DateTime<Utc>>,
}

fn purchase_status(what: &str, text: &str) -> Result<PurchaseStatus, StoreError> {
    [
        PurchaseStatus::Counted,
        PurchaseStatus::PendingReview,
        PurchaseStatus::Rejected,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| {
        corrupt(
            what,
            format!("status {text:?} is not counted, pending_review or rejected"),
        )
    })
}

impl PurchaseRow {
    pub(crate) fn into_purchase(self) -> Result<Purchase, StoreError> {
        let what = format!("purchase {} of {}", self.purchase_id, self.contact);
        let what = what.as_str();
        let item_count = required(what, "item_count", self.item_count)?;
        Ok(Purchase {
            amount: Money::from_sen(required(what, "amount_sen", self.amount_sen)?),
            purchased_on: required(what, "purchased_on", self.purchased_on)?,
            merchant: self.merchant,
            receipt_no: self.receipt_no,
            item_count: u32::try_from(item_count)
                .map_err(|_| corrupt(what, format!("item_count {item_count} out of range")))?,
            image_sha256: self.image_sha256,
            ocr_confidence: self.ocr_confidence,
            status: purchase_status(what, &required(what, "status", self.status)?)?,
            recorded_at: required(what, "recorded_at", self.recorded_at)?,
            purchase_id: self.purchase_id,
        })
    }
}

// ---------------------------------------------------------------- messages

#[derive(SerializeRow)]
pub(crate) struct MessageValues<'a> {
    contact: &'a str,
    wamid: &'a str,
    direction: &'static str,
    kind: &'a str,
    body: Cell<&'a str>,
    campaign_id: Cell<&'a str>,
    created_at: DateTime<Utc>,
}

pub(crate) fn direction_str(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

impl<'a> MessageValues<'a> {
    pub(crate) fn new(message: &'a MessageRecord, absent: Absent) -> Self {
        MessageValues {
            contact: message.contact.as_str(),
            wamid: &message.wamid,
            direction: direction_str(message.direction),
            kind: &message.kind,
            body: cell(message.body.as_deref(), absent),
            campaign_id: cell(message.campaign_id.as_deref(), absent),
            created_at: message.created_at,
        }
    }
}

/// An inbound message without delivery reports: its row in `inbound_messages`.
#[derive(SerializeRow)]
pub(crate) struct InboundValues<'a> {
    contact: &'a str,
    created_at: DateTime<Utc>,
    wamid: &'a str,
    kind: &'a str,
    body: Cell<&'a str>,
    campaign_id: Cell<&'a str>,
}

impl<'a> InboundValues<'a> {
    pub(crate) fn new(message: &'a MessageRecord, absent: Absent) -> Self {
        InboundValues {
            contact: message.contact.as_str(),
            created_at: message.created_at,
            wamid: &message.wamid,
            kind: &message.kind,
            body: cell(message.body.as_deref(), absent),
            campaign_id: cell(message.campaign_id.as_deref(), absent),
        }
    }
}

pub(crate) const INBOUND_COLUMNS: &str = "contact, created_at, wamid, kind, body, campaign_id";

#[derive(DeserializeRow)]
pub(crate) struct InboundRow {
    contact: String,
    created_at: DateTime<Utc>,
    wamid: String,
    kind: Option<String>,
    body: Option<String>,
    campaign_id: Option<String>,
}

impl InboundRow {
    pub(crate) fn into_message(self) -> Result<MessageRecord, StoreError> {
        let what = format!("inbound message {} of {}", self.wamid, self.contact);
        let what = what.as_str();
        Ok(MessageRecord {
            contact: phone(what, &self.contact)?,
            direction: Direction::Inbound,
            kind: required(what, "kind", self.kind)?,
            body: self.body,
            campaign_id: self.campaign_id,
            created_at: self.created_at,
            timeline: DeliveryTimeline::default(),
            wamid: self.wamid,
        })
    }
}

pub(crate) const MESSAGE_COLUMNS: &str = "contact, wamid, direction, kind, body, campaign_id, \
    created_at, sent_at, delivered_at, read_at, failed_at, error_code";

#[derive(DeserializeRow)]
pub(crate) struct MessageRow {
    contact: String,
    pub(crate) wamid: String,
    direction: Option<String>,
    kind: Option<String>,
    body: Option<String>,
    campaign_id: Option<String>,
    created_at: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    error_code: Option<i64>,
}

impl MessageRow {
    /// `None` for a row that only holds delivery reports (the message was not stored yet).
    pub(crate) fn into_message(self) -> Result<Option<MessageRecord>, StoreError> {
        let what = format!("message {} of {}", self.wamid, self.contact);
        let what = what.as_str();
        let direction = match self.direction.as_deref() {
            None => return Ok(None),
            Some("inbound") => Direction::Inbound,
            Some("outbound") => Direction::Outbound,
            Some(other) => {
                return Err(corrupt(
                    what,
                    format!("direction {other:?} is not inbound or outbound"),
                ))
            }
        };
        Ok(Some(MessageRecord {
            contact: phone(what, &self.contact)?,
            direction,
            kind: required(what, "kind", self.kind)?,
            body: self.body,
            campaign_id: self.campaign_id,
            created_at: required(what, "created_at", self.created_at)?,
            timeline: DeliveryTimeline {
                sent_at: self.sent_at,
                delivered_at: self.delivered_at,
                read_at: self.read_at,
                failed_at: self.failed_at,
                error_code: self.error_code,
            },
            wamid: self.wamid,
        }))
    }
}

// ---------------------------------------------------------------- segments, campaigns

#[derive(SerializeRow)]
pub(crate) struct SegmentValues<'a> {
    segment_id: &'a str,
    name: &'a str,
    definition_json: &'a str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl<'a> SegmentValues<'a> {
    pub(crate) fn new(segment: &'a SegmentRecord) -> Self {
        SegmentValues {
            segment_id: &segment.segment_id,
            name: &segment.name,
            definition_json: &segment.definition_json,
            created_at: segment.created_at,
            updated_at: segment.updated_at,
        }
    }
}

pub(crate) const SEGMENT_COLUMNS: &str =
    "segment_id, name, definition_json, created_at, updated_at";

#[derive(DeserializeRow)]
pub(crate) struct SegmentRow {
    segment_id: String,
    name: Option<String>,
    definition_json: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl SegmentRow {
    pub(crate) fn into_record(self) -> Result<SegmentRecord, StoreError> {
        let what = format!("segment {}", self.segment_id);
        let what = what.as_str();
        let created_at = required(what, "created_at", self.created_at)?;
        Ok(SegmentRecord {
            name: required(what, "name", self.name)?,
            definition_json: required(what, "definition_json", self.definition_json)?,
            created_at,
            updated_at: self.updated_at.unwrap_or(created_at),
            segment_id: self.segment_id,
        })
    }
}

#[derive(SerializeRow)]
pub(crate) struct CampaignValues<'a> {
    campaign_id: &'a str,
    name: &'a str,
    status: &'a str,
    definition_json: &'a str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl<'a> CampaignValues<'a> {
    pub(crate) fn new(campaign: &'a CampaignRecord) -> Self {
        CampaignValues {
            campaign_id: &campaign.campaign_id,
            name: &campaign.name,
            status: campaign.status.as_str(),
            definition_json: &campaign.definition_json,
            created_at: campaign.created_at,
            updated_at: campaign.updated_at,
        }
    }
}

pub(crate) const CAMPAIGN_COLUMNS: &str =
    "campaign_id, name, status, definition_json, created_at, updated_at";

#[derive(DeserializeRow)]
pub(crate) struct CampaignRow {
    campaign_id: String,
    name: Option<String>,
    status: Option<String>,
    definition_json: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl CampaignRow {
    pub(crate) fn into_record(self) -> Result<CampaignRecord, StoreError> {
        let what = format!("campaign {}", self.campaign_id);
        let what = what.as_str();
        let created_at = required(what, "created_at", self.created_at)?;
        Ok(CampaignRecord {
            name: required(what, "name", self.name)?,
            status: {
                let status = required(what, "status", self.status)?;
                status
                    .parse()
                    .map_err(|_| corrupt(what, format!("campaign status {status:?}")))?
            },
            definition_json: required(what, "definition_json", self.definition_json)?,
            created_at,
            updated_at: self.updated_at.unwrap_or(created_at),
            campaign_id: self.campaign_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scylla::value::CqlDate;

    #[test]
    fn dates_round_trip_around_the_epoch() {
        // The driver's conversion, which rows now rely on: days since the epoch + 2^31.
        for day in [
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(1969, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(1950, 2, 28).unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
        ] {
            let back: NaiveDate = CqlDate::from(day).try_into().unwrap();
            assert_eq!(back, day);
        }
        assert_eq!(
            CqlDate::from(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()).0,
            (1u32 << 31) + 1
        );
    }
}
