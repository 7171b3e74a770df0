//! Campaigns at work: the planner that resolves each partition's recipients at launch
//! ([`planner`]), tracking links ([`links`]) and the clock that starts, ends and completes
//! scheduled campaigns ([`clock`]). The rules they follow are pure and live in
//! `domain::campaign`; the sender's campaign lane is in `engine::campaign_sender`.

pub mod clock;
pub mod content;
pub mod ledger;
pub mod links;
pub mod planner;

use crate::domain::campaign::CampaignDefinition;
use crate::storage::store::CampaignRecord;

pub use planner::{PlanError, PlanReport, Planner, SendingNumber};

/// The stored definition of a campaign.
pub fn definition_of(record: &CampaignRecord) -> Result<CampaignDefinition, serde_json::Error> {
    serde_json::from_str(&record.definition_json)
}
