//! crm.commands: control records every owner of a partition must see: campaign launches and
//! segment changes. A command is written once to every partition (see [`key`]), so each
//! engine that owns wa.inbound partitions reads it in order with that partition's messages
//! and acts for the contacts it owns, and a rebalance hands the unread copy over with the
//! partition.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const TOPIC: &str = "crm.commands";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// A campaign was launched: plan its recipients among the partition's contacts (a
    /// snapshot of its segments now).
    CampaignLaunched {
        campaign_id: String,
        at: DateTime<Utc>,
    },
    /// A paused campaign was resumed, or its retryable failures are to be retried: send
    /// again to the planned recipients of the partition that are still pending (or failed
    /// retryably), never to new ones.
    CampaignResumed {
        campaign_id: String,
        at: DateTime<Utc>,
        retry_failed: bool,
    },
    /// Sends refused for Meta's marketing cap (131049) are due for their automatic retry:
    /// send again to the partition's recipients whose retry is due at `at`.
    CampaignCapRetry {
        campaign_id: String,
        at: DateTime<Utc>,
    },
    /// A time-driven trigger is due (birthdays, win-back) for `day` (Malaysian date): plan
    /// the partition's contacts it selects that day.
    CampaignTriggered {
        campaign_id: String,
        at: DateTime<Utc>,
        day: chrono::NaiveDate,
    },
    /// A campaign was paused or cancelled: stop enqueueing its sends.
    CampaignHalted {
        campaign_id: String,
        at: DateTime<Utc>,
    },
    /// A segment was created, changed or deleted: indexes recompute its members.
    SegmentChanged {
        segment_id: String,
        at: DateTime<Utc>,
    },
}

impl Command {
    /// The command's identity, the same in every partition's copy: a replayed copy is
    /// recognised by it.
    pub fn id(&self) -> String {
        match self {
            Command::CampaignLaunched { campaign_id, at } => {
                format!("campaign_launched:{campaign_id}:{}", at.timestamp_millis())
            }
            Command::CampaignCapRetry { campaign_id, at } => {
                format!("campaign_cap_retry:{campaign_id}:{}", at.timestamp_millis())
            }
            Command::CampaignHalted { campaign_id, at } => {
                format!("campaign_halted:{campaign_id}:{}", at.timestamp_millis())
            }
            Command::CampaignTriggered {
                campaign_id, day, ..
            } => format!("campaign_triggered:{campaign_id}:{day}"),
            Command::CampaignResumed {
                campaign_id, at, ..
            } => {
                format!("campaign_resumed:{campaign_id}:{}", at.timestamp_millis())
            }
            Command::SegmentChanged { segment_id, at } => {
                format!("segment_changed:{segment_id}:{}", at.timestamp_millis())
            }
        }
    }

    /// The record key of the copy for `partition`. Copies are written to each partition
    /// explicitly, not placed by key; the key only keeps a copy's identity readable.
    pub fn key(&self, partition: u32) -> Vec<u8> {
        format!("{}@{partition}", self.id()).into_bytes()
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a command serializes")
    }

    pub fn decode(payload: &[u8]) -> Result<Command, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_copies_share_an_id() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let launch = Command::CampaignLaunched {
            campaign_id: "c1".into(),
            at,
        };
        let payload = launch.encode();
        assert_eq!(Command::decode(&payload).unwrap(), launch);
        assert!(String::from_utf8(payload)
            .unwrap()
            .contains(r#""command":"campaign_launched""#));
        assert_ne!(launch.key(0), launch.key(1));
        assert_eq!(launch.id(), "campaign_launched:c1:1700000000123");
        let halt = Command::CampaignHalted {
            campaign_id: "c1".into(),
            at,
        };
        assert_ne!(halt.id(), launch.id());
        assert!(Command::decode(br#"{"command":"launch_everything"}"#).is_err());
    }
}
