//! Payloads of the engine's own topics (wa.outbound, crm.ocr.jobs) and the deterministic
//! ids that make their replays harmless: every id is derived from the inbound event that
//! caused it, so processing the same event twice produces the same ids, which the sender
//! (send claims) and the analytics sink (ReplacingMergeTree) collapse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
