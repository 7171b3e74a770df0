//! The contact store in one local file (redb), for the embedded default profile: the same
//! semantics as the ScyllaDB store in single-process form, checked by the same conformance
//! suite (tests/store_conformance.rs).
//!
//! - Each operation is one redb transaction on the blocking thread pool (redb is
//!   synchronous and commits with fsync). A write transaction is exclusive, which gives the
//!   compare-and-set claims (IC link, receipt, send) their LWT behaviour.
//! - Records are serde_json values of the domain types; keys are the natural keys, tuples
//!   for per-contact data so a contact's purchases and messages are one key range.
//! - Times are kept at millisecond precision, as CQL timestamps keep them, so both backends
//!   return the same values.
//! - Scans page by key: the page token is the last phone number returned.

mod catalog;
mod contacts;
mod messages;
mod recipients;
mod sends;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use redb::{
    Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::contact::Contact;
use crate::domain::message::{DeliveryStatus, DeliveryTimeline};
use crate::domain::phone::PhoneNumber;
use crate::domain::purchase::Purchase;
use crate::storage::store::{
    CampaignRecord, Catalog, Claim, ContactWrite, Contacts, IcLink, MessageLog, MessageRecord,
    Page, PageToken, RecipientLedger, RecipientRow, SegmentRecord, SendLedger, SendResult,
    StoreError,
};

/// The name errors use.
pub const SERVICE: &str = "embedded store";

/// Version of the file layout below; a file written by a newer layout is refused.
const FORMAT_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
const CONTACT_BY_IC: TableDefinition<&[u8], &str> = TableDefinition::new("contact_by_ic");
/// (contact, purchase id) → purchase.
const PURCHASES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("purchases");
const RECEIPT_CLAIMS: TableDefinition<&str, &str> = TableDefinition::new("receipt_claims");
/// (contact, wamid) → [`StoredMessage`].
const MESSAGES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("messages");
/// (contact, -created_at in ms, wamid): ascending order is newest first.
const MESSAGES_BY_TIME: TableDefinition<(&str, i64, &str), ()> =
    TableDefinition::new("messages_by_time");
/// (campaign, contact) → first claim time.
const SEND_CLAIMS: TableDefinition<(&str, &str), &str> = TableDefinition::new("send_claims");
/// [`send_result_key`] → [`SendResult`].
const SEND_RESULTS: TableDefinition<&str, &[u8]> = TableDefinition::new("send_results");
/// (time in ms, contact) of each business-initiated reach, for the messaging limit.
const REACHES: TableDefinition<(i64, &str), ()> = TableDefinition::new("messaging_reach");
const SEGMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("segments");
const CAMPAIGNS: TableDefinition<&str, &[u8]> = TableDefinition::new("campaigns");
/// (campaign id, contact) → the recipient's steps (JSON).
const RECIPIENTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("campaign_recipients");

/// A message row: the message (once stored) and its delivery reports, which may arrive
/// first. `error_code_at` is the time of the failure report whose code is kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StoredMessage {
    message: Option<MessageRecord>,
    timeline: DeliveryTimeline,
    error_code_at: Option<DateTime<Utc>>,
}

impl StoredMessage {
    /// The earliest time per status wins; the error code of the earliest failure report
    /// carrying one wins (a tie keeps the larger code). The same rule as the CQL store's
    /// write timestamps, so both backends agree whatever the order of reports.
    fn apply(&mut self, status: DeliveryStatus, at: DateTime<Utc>, error_code: Option<i64>) {
        let at = ms(at);
        let slot = match status {
            DeliveryStatus::Accepted => return,
            DeliveryStatus::Sent => &mut self.timeline.sent_at,
            DeliveryStatus::Delivered => &mut self.timeline.delivered_at,
            DeliveryStatus::Read => &mut self.timeline.read_at,
            DeliveryStatus::Failed => &mut self.timeline.failed_at,
        };
        if slot.is_none_or(|existing| at < existing) {
            *slot = Some(at);
        }
        if let (DeliveryStatus::Failed, Some(code)) = (status, error_code) {
            let wins = match (self.error_code_at, self.timeline.error_code) {
                (Some(existing_at), Some(existing)) => {
                    at < existing_at || (at == existing_at && code > existing)
                }
                _ => true,
            };
            if wins {
                self.timeline.error_code = Some(code);
                self.error_code_at = Some(at);
            }
        }
    }

    fn record(&self) -> Option<MessageRecord> {
        let mut message = self.message.clone()?;
        message.timeline = self.timeline.clone();
        Some(message)
    }
}

/// The version of a stored contact: its `updated_at` (see [`Contacts::upsert_contact`]).
#[derive(Deserialize)]
struct Version {
    updated_at: DateTime<Utc>,
}

/// Millisecond precision, as stored by CQL timestamps.
fn ms(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// (campaign, contact) as one key; NUL appears in neither.
fn send_result_key(campaign_id: &str, contact: &PhoneNumber) -> String {
    format!("{campaign_id}\0{}", contact.as_str())
}

fn claim_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn err<E: Into<redb::Error>>(operation: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Query {
        service: SERVICE,
        operation,
        detail: e.into().to_string(),
    }
}

fn encode<T: Serialize>(operation: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Query {
        service: SERVICE,
        operation,
        detail: e.to_string(),
    })
}

fn decode<T: DeserializeOwned>(
    what: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: what(),
        detail: e.to_string(),
    })
}

fn phone(what: &str, text: &str) -> Result<PhoneNumber, StoreError> {
    PhoneNumber::from_e164_digits(text).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        detail: format!("phone {text:?}: {e}"),
    })
}

fn normalized_contact(contact: &Contact) -> Contact {
    let mut contact = contact.clone();
    // The ledger is rebuilt from the purchases on load.
    contact.purchases = Default::default();
    if let Some(change) = contact.consent_change.as_mut() {
        change.at = ms(change.at);
    }
    contact.interactions.last_interaction = contact.interactions.last_interaction.map(ms);
    contact.created_at = ms(contact.created_at);
    contact.updated_at = ms(contact.updated_at);
    contact
}

fn normalized_purchase(purchase: &Purchase) -> Purchase {
    let mut purchase = purchase.clone();
    purchase.recorded_at = ms(purchase.recorded_at);
    purchase
}

/// The page cache when none is configured: the default of `store.embedded_cache_mb`.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// The contact store in a local redb file. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    /// Opens the store file, creating it (and its directory) if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens with a page cache of at most `cache_bytes` (`store.embedded_cache_mb`).
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: usize) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let unavailable = |detail: String| StoreError::Unavailable {
            service: SERVICE,
            detail: format!("{}: {detail}", path.display()),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| unavailable(e.to_string()))?;
        }
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| unavailable(e.to_string()))?;
        const OP: &str = "open";
        let txn = db.begin_write().map_err(err(OP))?;
        {
            let mut meta = txn.open_table(META).map_err(err(OP))?;
            let found = meta
                .get("format_version")
                .map_err(err(OP))?
                .map(|v| v.value());
            match found {
                Some(version) if version > FORMAT_VERSION => {
                    return Err(StoreError::Schema(format!(
                        "{} was written by a newer sembang (format {version}, this binary knows {FORMAT_VERSION})",
                        path.display()
                    )))
                }
                Some(_) => {}
                None => {
                    meta.insert("format_version", FORMAT_VERSION).map_err(err(OP))?;
                }
            }
            // Create every table so read transactions always find them.
            txn.open_table(CONTACTS).map_err(err(OP))?;
            txn.open_table(CONTACT_BY_IC).map_err(err(OP))?;
            txn.open_table(PURCHASES).map_err(err(OP))?;
            txn.open_table(RECEIPT_CLAIMS).map_err(err(OP))?;
            txn.open_table(MESSAGES).map_err(err(OP))?;
            txn.open_table(MESSAGES_BY_TIME).map_err(err(OP))?;
            txn.open_table(SEND_CLAIMS).map_err(err(OP))?;
            txn.open_table(SEND_RESULTS).map_err(err(OP))?;
            txn.open_table(REACHES).map_err(err(OP))?;
            txn.open_table(SEGMENTS).map_err(err(OP))?;
            txn.open_table(CAMPAIGNS).map_err(err(OP))?;
            txn.open_table(RECIPIENTS).map_err(err(OP))?;
        }
        txn.commit().map_err(err(OP))?;
        Ok(EmbeddedStore { db: Arc::new(db) })
    }

    /// Runs `work` on the blocking pool: redb I/O (and fsync on commit) must not stall the
    /// async workers.
    async fn blocking<T, F>(&self, operation: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| StoreError::Query {
                service: SERVICE,
                operation,
                detail: format!("worker failed: {e}"),
            })?
    }

    fn read_purchases(db: &Database, contact: &str) -> Result<Vec<Purchase>, StoreError> {
        const OP: &str = "purchases";
        let txn = db.begin_read().map_err(err(OP))?;
        let table = txn.open_table(PURCHASES).map_err(err(OP))?;
        let mut purchases = Vec::new();
        for entry in table.range((contact, "")..).map_err(err(OP))? {
            let (key, value) = entry.map_err(err(OP))?;
            let (owner, id) = key.value();
            if owner != contact {
                break;
            }
            purchases.push(decode::<Purchase>(
                || format!("purchase {id} of {contact}"),
                value.value(),
            )?);
        }
        purchases
            .sort_by(|a, b| (a.recorded_at, &a.purchase_id).cmp(&(b.recorded_at, &b.purchase_id)));
        Ok(purchases)
    }

    fn put_record(
        db: &Database,
        operation: &'static str,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let txn = db.begin_write().map_err(err(operation))?;
        txn.open_table(table)
            .map_err(err(operation))?
            .insert(key, bytes)
            .map_err(err(operation))?;
        txn.commit().map_err(err(operation))
    }

    fn get_record<T: DeserializeOwned>(
        db: &Database,
        operation: &'static str,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = db.begin_read().map_err(err(operation))?;
        let table_handle = txn.open_table(table).map_err(err(operation))?;
        let found = table_handle.get(key).map_err(err(operation))?;
        found
            .map(|v| decode(|| format!("{} {key}", table.name()), v.value()))
            .transpose()
    }

    fn all_records<T: DeserializeOwned>(
        db: &Database,
        operation: &'static str,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let txn = db.begin_read().map_err(err(operation))?;
        let table_handle = txn.open_table(table).map_err(err(operation))?;
        let mut records = Vec::new();
        for entry in table_handle.iter().map_err(err(operation))? {
            let (key, value) = entry.map_err(err(operation))?;
            records.push(decode(
                || format!("{} {}", table.name(), key.value()),
                value.value(),
            )?);
        }
        Ok(records)
    }

    /// Read-modify-write of one message row in one write transaction.
    fn update_message(
        db: &Database,
        operation: &'static str,
        contact: &str,
        wamid: &str,
        change: impl FnOnce(&mut StoredMessage),
    ) -> Result<(), StoreError> {
        let txn = db.begin_write().map_err(err(operation))?;
        Self::update_message_in(&txn, operation, contact, wamid, change)?;
        txn.commit().map_err(err(operation))
    }

    fn update_message_in(
        txn: &WriteTransaction,
        operation: &'static str,
        contact: &str,
        wamid: &str,
        change: impl FnOnce(&mut StoredMessage),
    ) -> Result<(), StoreError> {
        let mut messages = txn.open_table(MESSAGES).map_err(err(operation))?;
        let mut stored: StoredMessage =
            match messages.get((contact, wamid)).map_err(err(operation))? {
                Some(v) => decode(|| format!("message {wamid} of {contact}"), v.value())?,
                None => StoredMessage::default(),
            };
        let indexed_at = stored.message.as_ref().map(|m| m.created_at);
        change(&mut stored);
        let now_at = stored.message.as_ref().map(|m| m.created_at);
        if indexed_at != now_at {
            let mut index = txn.open_table(MESSAGES_BY_TIME).map_err(err(operation))?;
            if let Some(old) = indexed_at {
                index
                    .remove((contact, -old.timestamp_millis(), wamid))
                    .map_err(err(operation))?;
            }
            if let Some(new) = now_at {
                index
                    .insert((contact, -new.timestamp_millis(), wamid), ())
                    .map_err(err(operation))?;
            }
        }
        let bytes = encode(operation, &stored)?;
        messages
            .insert((contact, wamid), bytes.as_slice())
            .map_err(err(operation))?;
        Ok(())
    }

    /// Stores a message's base fields and merges its timeline (never regressed).
    fn merge_message(stored: &mut StoredMessage, message: &MessageRecord) {
        let mut base = message.clone();
        base.created_at = ms(base.created_at);
        base.timeline = DeliveryTimeline::default();
        stored.message = Some(base);
        // An error code without a failure time has no report time to order it by and is
        // ignored, as in the CQL store.
        for (status, at, code) in message.timeline.reports() {
            stored.apply(status, at, code);
        }
    }
}
