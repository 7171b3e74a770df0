//! The analytics event sink: append-only event tables for analysts. ClickHouse in
//! production, local files for the default profile; both pass the same conformance suite
//! (tests/sink_conformance.rs). Every event carries an id, and writing the same event again
//! (a replay after a crash) leaves one row.
//!
//! - [`EventSink`]: write a batch; `Ok` means every event in it is durable.
//! - [`EventReader`]: the read side for tests and the admin API: events per table (one per
//!   id) and the three analyst views (campaign funnel, revenue, demographics), which stay
//!   exact however often a batch is replayed.
//! - [`Batcher`]: buffers events for the analytics consumer and says when a flush made
//!   them durable, so offsets are committed only after it.

pub mod batcher;
pub mod clickhouse;
mod error;
pub mod files;
pub mod views;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::money::Money;
use crate::domain::phone::PhoneNumber;

pub use batcher::{Batcher, BatcherConfig, FlushReport};
pub use clickhouse::{
    ClickHouseConfig, ClickHouseMigrations, ClickHouseSink, CLICKHOUSE_MIGRATIONS,
};
pub use error::SinkError;
// The sink writes crm.events' payloads: its API speaks them.
pub use crate::topics::events::{
    AnalyticsEvent, CampaignSendEvent, ContactSnapshotEvent, EventTable, InboundMessageEvent,
    MessageStatusEvent, OcrResultEvent, OutboundMessageEvent, PurchaseEvent, SendOutcome,
};
pub use files::FileSink;

/// Where analytics events go.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Short name for messages and metrics: "clickhouse", "files".
    fn name(&self) -> &'static str;

    /// Writes a batch, events of any tables in any order. `Ok` means every event is durable.
    /// On `Err` some events may have been written: the caller writes the whole batch again
    /// (the same event id written again leaves one event), so it never needs to know which.
    async fn write(&self, events: &[AnalyticsEvent]) -> Result<(), SinkError>;

    /// Erasure (PDPA): removes every event row of `contact` from every table that names a
    /// contact, but the audit trail (the record of who handled the data, the erasure
    /// included). Aggregates hold only hashes of pseudonyms and stay. Idempotent.
    async fn erase_contact(&self, contact: &PhoneNumber) -> Result<(), SinkError>;

    /// Retention: clears the text of every message event (inbound text, outbound body)
    /// that occurred before `before`; the events stay, so counts and funnels do not change.
    /// Idempotent.
    async fn expire_message_text(&self, before: DateTime<Utc>) -> Result<(), SinkError>;
}

/// Reads back what a sink wrote. Every answer counts each event id once, however many
/// times it was written. Days are Malaysian days (UTC+8).
#[async_trait]
pub trait EventReader: Send + Sync {
    /// Distinct events in a table.
    async fn count_events(&self, table: EventTable) -> Result<u64, SinkError>;

    /// Up to `limit` events of a table, one per event id, ordered by (occurred_at, event_id),
    /// as [`AnalyticsEvent::normalized`] gives them.
    async fn fetch_events(
        &self,
        table: EventTable,
        limit: usize,
    ) -> Result<Vec<AnalyticsEvent>, SinkError>;
}

/// The analysts' aggregates over the views (the analytics API grows here). Every answer
/// counts each event id once; days are Malaysian days (UTC+8).
#[async_trait]
pub trait AnalyticsReader: Send + Sync {
    /// The daily campaign funnel for days in `from..=to`, ordered by (day, campaign, stage).
    async fn campaign_funnel(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FunnelRow>, SinkError>;

    /// Revenue per receipt date in `from..=to`, ordered by day.
    async fn daily_revenue(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<RevenueRow>, SinkError>;

    /// Contacts per demographic bucket per day in `from..=to`, ordered by
    /// (day, gender, age_band, state, tier).
    async fn demographics(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DemographicRow>, SinkError>;

    /// Customers by lifetime spend band, by tier and by registration cohort, each from the
    /// contact's latest snapshot.
    async fn customer_value(&self) -> Result<CustomerValue, SinkError>;

    /// OCR outcomes per kind of document over photos read in `from..=to` (Malaysian days).
    async fn ocr_outcomes(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<OcrOutcomeRow>, SinkError>;

    /// Purchases whose latest event says pending_review (the review queue), oldest first
    /// (by that event's time, then purchase id), at most `limit`.
    async fn pending_reviews(&self, limit: u32) -> Result<Vec<PendingReviewRow>, SinkError>;
}

/// Customers in one bucket (a spend band, a tier, a registration month) and their lifetime
/// totals; averages are the caller's division.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueBucket {
    pub bucket: String,
    pub customers: u64,
    pub total_spent: Money,
    pub purchases: u64,
}

/// Lifetime value three ways. Spend bands in ascending order (`none`, `under 100`,
/// `100-499`, `500-1999`, `2000-4999`, `5000+`, ringgit), tiers from Bronze up, cohorts
/// (`YYYY-MM` of the first registration, Malaysian calendar) in order; empty buckets left
/// out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerValue {
    pub spending: Vec<ValueBucket>,
    pub by_tier: Vec<ValueBucket>,
    pub by_cohort: Vec<ValueBucket>,
}

/// The spend bands, in order, with their lower bound in ringgit.
pub const SPEND_BANDS: [(&str, i64); 6] = [
    ("none", 0),
    ("under 100", 0),
    ("100-499", 100),
    ("500-1999", 500),
    ("2000-4999", 2_000),
    ("5000+", 5_000),
];

/// The band of a lifetime spend.
pub fn spend_band(spent: Money) -> &'static str {
    let sen = spent.sen();
    if sen <= 0 {
        return "none";
    }
    SPEND_BANDS
        .iter()
        .skip(1)
        .rev()
        .find(|(_, low)| sen >= low * 100)
        .map_or("under 100", |(band, _)| band)
}

/// One kind of document's OCR outcomes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcrOutcomeRow {
    /// ic, receipt or unknown
    pub kind: String,
    pub photos: u64,
    /// Read and validated (status parsed).
    pub parsed: u64,
    /// Mean Tesseract confidence, 0 to 100.
    pub mean_confidence: f64,
    /// Exact median and 95th percentile of the time per photo (the value at position
    /// ⌊q·n⌋ of the sorted times, as ClickHouse's quantileExact).
    pub p50_ms: u32,
    pub p95_ms: u32,
}

/// A purchase waiting for a person to check its receipt, as its latest event has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingReviewRow {
    pub purchase_id: String,
    pub contact_phone: PhoneNumber,
    /// When it was recorded as pending.
    pub recorded_at: DateTime<Utc>,
    pub purchase_date: NaiveDate,
    pub merchant: Option<String>,
    pub receipt_no: Option<String>,
    pub total: Money,
    pub item_count: u32,
    pub ocr_confidence: Option<f32>,
}

/// Campaign funnel stages. From campaign_steps: the send outcome (queued, sent, skipped,
/// failed), clicks (`clicked`) and conversions (`converted`); from message_statuses of campaign messages: the status (sent, delivered, read,
/// failed); from inbound messages answering a campaign: `replied`; from counted purchases
/// attributed to a campaign: `converted`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FunnelRow {
    pub day: NaiveDate,
    pub campaign_id: String,
    pub stage: String,
    /// Distinct contacts that reached the stage that day.
    pub contacts: u64,
    /// Distinct events behind it.
    pub events: u64,
}

/// Purchases counted on a receipt date: each purchase once, as its latest event says (a
/// purchase later rejected drops out; a corrected amount or date replaces the first).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RevenueRow {
    pub day: NaiveDate,
    pub purchases: u64,
    /// Distinct contacts with a counted purchase.
    pub buyers: u64,
    pub revenue: Money,
}

/// Distinct contacts with a snapshot that day in a bucket. Unknown gender and state are
/// `""`, the age band `"unknown"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DemographicRow {
    pub day: NaiveDate,
    pub gender: String,
    pub age_band: String,
    pub state: String,
    pub tier: String,
    pub contacts: u64,
}
