//! The analytics event sink: append-only event tables for analysts. ClickHouse in
//! production, local files for the default profile; both pass the same conformance suite
//! (tests/sink_conformance.rs). Every event carries an id, and writing the same event again
//! (a replay after a crash) leaves one row.

mod error;

use serde::{Deserialize, Serialize};

pub use error::SinkError;

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
}

impl EventTable {
    pub const ALL: [EventTable; 7] = [
        EventTable::InboundMessages,
        EventTable::OutboundMessages,
        EventTable::MessageStatuses,
        EventTable::Purchases,
        EventTable::OcrResults,
        EventTable::ContactSnapshots,
        EventTable::CampaignSends,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            EventTable::InboundMessages => "inbound_messages",
            EventTable::OutboundMessages => "outbound_messages",
            EventTable::MessageStatuses => "message_statuses",
            EventTable::Purchases => "purchases",
            EventTable::OcrResults => "ocr_results",
            EventTable::ContactSnapshots => "contact_snapshots",
            EventTable::CampaignSends => "campaign_sends",
        }
    }
}
