//! The contact store, one trait per aggregate: [`Contacts`] (contacts, IC look-ups,
//! purchases, receipt claims, the write-behind flush), [`MessageLog`] (messages with
//! delivery status), [`SendLedger`] (send claims and results), [`Catalog`] (segments
//! and campaigns) and [`RecipientLedger`] (each campaign's intended recipients and their
//! steps); [`ContactStore`] is all five. Each backend keeps one file per aggregate
//! with its prepared statements beside the code that uses them.
//!
//! ScyllaDB in production (tested against Apache Cassandra), an embedded on-disk database
//! for the default profile; both pass the same conformance suite
//! (tests/store_conformance.rs).
//!
//! Every write is an idempotent upsert or a compare-and-set, so replaying a stream after a
//! crash changes nothing: the engine may apply the same effect any number of times.

pub mod embedded;
mod error;
pub mod scylla;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::campaign::{CampaignStatus, RecipientSteps, RecipientUpdate};
use crate::domain::contact::Contact;
use crate::domain::contact_fields::ContactFields;
use crate::domain::message::{DeliveryStatus, DeliveryTimeline};
use crate::domain::phone::PhoneNumber;
use crate::domain::purchase::Purchase;

pub use self::embedded::EmbeddedStore;
pub use self::scylla::{CqlMigrationTarget, ScyllaConfig, ScyllaStore, CQL_MIGRATIONS};
pub use error::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// A message in a contact's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// WhatsApp message id (`wamid.…`), or the sandbox provider's id.
    pub wamid: String,
    pub contact: PhoneNumber,
    pub direction: Direction,
    /// text, image, document, template, interactive, ...
    pub kind: String,
    pub body: Option<String>,
    pub campaign_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Delivery reports; only meaningful for outbound messages.
    pub timeline: DeliveryTimeline,
}

/// A contact in a write-behind flush.
#[derive(Clone, Copy, Debug)]
pub struct ContactWrite<'a> {
    pub contact: &'a Contact,
    /// The fields changed since the contact was last stored: a backend may write only
    /// these. [`ContactFields::ALL`] when the stored row may not exist.
    pub changed: ContactFields,
}

impl<'a> ContactWrite<'a> {
    /// Every field of the contact.
    pub fn whole(contact: &'a Contact) -> Self {
        ContactWrite {
            contact,
            changed: ContactFields::ALL,
        }
    }
}

/// What a claimed send came to, recorded as soon as the provider answered: a replay after
/// a crash finishes the bookkeeping from it (message row, analytics event) instead of
/// sending again or losing track of a message the customer got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResult {
    pub at: DateTime<Utc>,
    pub outcome: SendOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendOutcome {
    /// The provider took it under this id.
    Sent { wamid: String },
    /// Refused, or no answer: the Graph error code when there was one, and why.
    Failed { code: Option<i64>, reason: String },
}

/// A saved segment definition (the JSON of `domain::segment`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub segment_id: String,
    pub name: String,
    pub definition_json: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub campaign_id: String,
    pub name: String,
    pub status: CampaignStatus,
    pub definition_json: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Outcome of linking an IC (by keyed hash) to a phone number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IcLink {
    Linked,
    /// Already linked to this same number: a replay or a re-registration.
    AlreadyLinked,
    /// Linked to another number: flagged by the caller, never silently moved.
    LinkedToOther(PhoneNumber),
}

/// Outcome of a compare-and-set claim (send dedupe, receipt dedupe).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// Someone claimed it first; carries the first claimant's value.
    AlreadyClaimed(String),
}

/// One page of a scan, with the token for the next page (`None` at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageToken>,
}

/// Opaque position in a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageToken(pub Vec<u8>);

/// The contact store: every aggregate the engine keeps. Split by aggregate, so a wrapper or a new backend implements what it needs to;
/// everything that implements all four is a `ContactStore`.
pub trait ContactStore: Contacts + MessageLog + SendLedger + Catalog + RecipientLedger {}

impl<T: Contacts + MessageLog + SendLedger + Catalog + RecipientLedger + ?Sized> ContactStore
    for T
{
}

/// What an erasure removed from the store. Receipt photos are the API's to delete (the
/// object store is the API process's), before it queues the erasure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErasedContact {
    /// The contact existed.
    pub found: bool,
    /// Rows removed, all tables together.
    pub rows: u64,
}

/// The contact aggregate: contacts, their IC links, purchases and receipt claims, and the
/// write-behind flush that stores a shard's changes (which writes message rows too, so
/// it sits on the message log).
#[async_trait]
pub trait Contacts: MessageLog {
    /// The contact with its counted purchases in its ledger; `None` when unknown.
    async fn load_contact(&self, phone: &PhoneNumber) -> Result<Option<Contact>, StoreError>;
    /// Writes the contact's own fields (not its purchases: see [`Self::put_purchase`]).
    /// Contacts are versioned by `updated_at` (to the millisecond): each field keeps the
    /// value of the latest version that wrote it, whatever order the writes land in, so an
    /// engine deposed by a rebalance, whose flush lands late, cannot put back what its
    /// successor has moved on from. A writer gives each new version a later time than the
    /// stored one (see `Contact::supersede`); two writes of one time are taken to be the
    /// same version, and which one a backend keeps is unspecified.
    async fn upsert_contact(&self, contact: &Contact) -> Result<(), StoreError>;
    /// Writes many contacts (a write-behind flush); all or, on error, some of them.
    async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<(), StoreError> {
        for contact in contacts {
            self.upsert_contact(contact).await?;
        }
        Ok(())
    }
    /// Phone numbers of all contacts, a page at a time, in an unspecified but stable order.
    async fn scan_contacts(
        &self,
        from: Option<PageToken>,
        limit: u32,
    ) -> Result<Page<PhoneNumber>, StoreError>;
    /// Links an IC (by keyed hash) to a phone number unless it is linked already.
    async fn link_ic(&self, keyed_hash: &[u8], phone: &PhoneNumber) -> Result<IcLink, StoreError>;
    async fn find_by_ic(&self, keyed_hash: &[u8]) -> Result<Option<PhoneNumber>, StoreError>;
    /// Upserts a purchase by its id (any status).
    async fn put_purchase(
        &self,
        contact: &PhoneNumber,
        purchase: &Purchase,
    ) -> Result<(), StoreError>;
    /// All purchases of a contact, any status, oldest first.
    async fn purchases(&self, contact: &PhoneNumber) -> Result<Vec<Purchase>, StoreError>;
    /// Erasure (PDPA): removes the contact and every row that names it: its row (with the
    /// encrypted IC), its IC link, purchases, messages, campaign recipient rows, send claims
    /// and results. Idempotent. Returns what other systems must remove.
    async fn erase_contact(&self, phone: &PhoneNumber) -> Result<ErasedContact, StoreError>;
    /// Claims a receipt fingerprint (image hash, or merchant + receipt number + total) for a
    /// purchase id; a second claim returns the first purchase id.
    async fn claim_receipt(
        &self,
        fingerprint: &str,
        purchase_id: &str,
    ) -> Result<Claim, StoreError>;
    /// Stores a write-behind flush: the messages and purchases first, then the contacts,
    /// whose rows carry the fingerprints of the events applied (a crash in between must
    /// leave those events to be applied again, not skipped with their rows missing).
    /// Unlike the upserts, it need not clear an optional value that is absent now but was
    /// stored before (the engine never takes a value back to absent; writing the absence
    /// costs a tombstone per column and flush in CQL): a backend may leave it as stored.
    /// Likewise it may write only the fields each [`ContactWrite`] marks as changed.
    /// Contacts are versioned by `updated_at` as in [`Self::upsert_contact`].
    async fn write_behind(
        &self,
        contacts: &[ContactWrite<'_>],
        messages: &[MessageRecord],
        purchases: &[(PhoneNumber, Purchase)],
    ) -> Result<(), StoreError> {
        self.put_messages(messages).await?;
        for (contact, purchase) in purchases {
            self.put_purchase(contact, purchase).await?;
        }
        for write in contacts {
            self.upsert_contact(write.contact).await?;
        }
        Ok(())
    }
}

/// The message log: messages by contact with their delivery status.
#[async_trait]
pub trait MessageLog: Send + Sync {
    /// Upserts a message. The timeline is merged, never regressed: statuses already stored
    /// stay (see [`Self::record_status`]).
    async fn put_message(&self, message: &MessageRecord) -> Result<(), StoreError>;
    /// Upserts many messages (a write-behind flush), as [`Self::put_message`] each; all or,
    /// on error, some of them.
    async fn put_messages(&self, messages: &[MessageRecord]) -> Result<(), StoreError> {
        for message in messages {
            self.put_message(message).await?;
        }
        Ok(())
    }
    async fn message(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
    ) -> Result<Option<MessageRecord>, StoreError>;
    /// The contact's most recent messages, newest first.
    async fn messages(
        &self,
        contact: &PhoneNumber,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError>;
    /// Records a delivery report. The earliest time reported for a status wins, so reports
    /// applied in any order and any number of times give the same timeline.
    async fn record_status(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Whether the inbound message `wamid`, sent at `at`, is stored for `contact`: a point
    /// read, for messages that may be late redeliveries.
    async fn inbound_stored(
        &self,
        contact: &PhoneNumber,
        at: DateTime<Utc>,
        wamid: &str,
    ) -> Result<bool, StoreError>;
    /// Retention: clears the body of every message created before `before` (the message,
    /// its kind, times and statuses stay); returns how many were cleared. A background
    /// sweep's work: it reads the whole log.
    async fn expire_message_bodies(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Send claims and results: each outbound request (`request_id`, e.g. `reply:<wamid>`)
/// is claimed once before it is sent, and what came of it is kept for replays.
#[async_trait]
pub trait SendLedger: Send + Sync {
    /// Claims the right to send request `request_id` to `contact`, once. A repeated claim
    /// returns the first claim's time (RFC 3339, milliseconds).
    async fn claim_send(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Claim, StoreError>;

    /// Records what the send claimed as (`request_id`, `contact`) came to.
    async fn record_send_result(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
        result: &SendResult,
    ) -> Result<(), StoreError>;

    /// What [`Self::record_send_result`] recorded for this claim, if anything.
    async fn send_result(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<SendResult>, StoreError>;

    /// Records that a business-initiated message reached `contact` at `at`, for the
    /// portfolio's 24 h messaging limit. Kept about two days (an erasure removes it).
    async fn record_reach(
        &self,
        contact: &PhoneNumber,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every reach recorded after `since`, in no particular order (a customer reached
    /// twice appears twice).
    async fn reaches_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(PhoneNumber, DateTime<Utc>)>, StoreError>;
}

/// How long reaches are kept: the 24 h window and a margin for clocks and late readers.
pub const REACH_KEPT: chrono::Duration = chrono::Duration::hours(49);

/// The catalog: segment and campaign definitions.
#[async_trait]
pub trait Catalog: Send + Sync {
    async fn put_segment(&self, segment: &SegmentRecord) -> Result<(), StoreError>;
    async fn segment(&self, segment_id: &str) -> Result<Option<SegmentRecord>, StoreError>;
    async fn segments(&self) -> Result<Vec<SegmentRecord>, StoreError>;
    async fn delete_segment(&self, segment_id: &str) -> Result<(), StoreError>;
    async fn put_campaign(&self, campaign: &CampaignRecord) -> Result<(), StoreError>;
    async fn campaign(&self, campaign_id: &str) -> Result<Option<CampaignRecord>, StoreError>;
    async fn campaigns(&self) -> Result<Vec<CampaignRecord>, StoreError>;
}

/// One recipient's row in a campaign's ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientRow {
    pub contact: PhoneNumber,
    pub steps: RecipientSteps,
}

/// Each campaign's intended recipients, one row per (campaign, contact), with the steps
/// the planner, the sender and the contact's shard record. Writes are blind and merge by
/// [`RecipientSteps::apply`]'s rule (a step's earliest time wins, a failure's latest), so
/// they commute and a replay changes nothing.
#[async_trait]
pub trait RecipientLedger: Send + Sync {
    /// Records steps, each for (`campaign_id`, contact).
    async fn record_recipients(
        &self,
        campaign_id: &str,
        updates: &[(PhoneNumber, RecipientUpdate)],
    ) -> Result<(), StoreError>;

    /// One recipient's steps; `None` when the contact is not a recipient.
    async fn recipient(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<RecipientSteps>, StoreError>;

    /// The campaign's recipients, a page at a time, in an unspecified but stable order.
    async fn recipients(
        &self,
        campaign_id: &str,
        from: Option<PageToken>,
        limit: u32,
    ) -> Result<Page<RecipientRow>, StoreError>;
}

/// `update` with its times at millisecond precision, as both backends store them.
pub(crate) fn update_to_millis(update: &RecipientUpdate) -> RecipientUpdate {
    use crate::domain::campaign::Failure;
    let ms =
        |at: DateTime<Utc>| DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
    match update.clone() {
        RecipientUpdate::Planned { at } => RecipientUpdate::Planned { at: ms(at) },
        RecipientUpdate::Skipped { at, reason } => RecipientUpdate::Skipped { at: ms(at), reason },
        RecipientUpdate::Sent { at, wamid } => RecipientUpdate::Sent { at: ms(at), wamid },
        RecipientUpdate::Failed(f) => RecipientUpdate::Failed(Failure { at: ms(f.at), ..f }),
        RecipientUpdate::Delivered { at } => RecipientUpdate::Delivered { at: ms(at) },
        RecipientUpdate::Read { at } => RecipientUpdate::Read { at: ms(at) },
        RecipientUpdate::Clicked { at } => RecipientUpdate::Clicked { at: ms(at) },
        RecipientUpdate::Converted { at, amount } => {
            RecipientUpdate::Converted { at: ms(at), amount }
        }
    }
}
