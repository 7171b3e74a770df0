//! wa.campaign: campaign sends, keyed by the business number like wa.outbound and
//! co-partitioned with it, so the sender that owns a number's replies owns its campaign
//! sends too (one limiter per number), but in a queue of their own: replies never wait
//! behind a campaign's backlog.
//!
//! A send carries who and which campaign, not the text: the sender renders the message
//! from the contact as stored when it sends, after checking consent again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::phone::PhoneNumber;

pub const TOPIC: &str = "wa.campaign";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSend {
    pub campaign_id: String,
    pub to: PhoneNumber,
    /// The business number that sends (Cloud API phone_number_id).
    pub phone_number_id: String,
    pub business_number: String,
    /// 0 for the first send; n for the n-th "retry the failed".
    pub attempt: u32,
    /// For a triggered campaign, which occurrence of its trigger this send is for (the
    /// year of a birthday, the tier reached, ...): one send per contact and occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<u32>,
    /// n for the n-th automatic retry of a send refused for Meta's marketing cap (131049).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cap_retry: u32,
    /// For a retry, the time (ms) of the failure it retries: the claim key is derived from
    /// it, so two retries of one failure (a manual one and an automatic one) send once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<i64>,
    pub planned_at: DateTime<Utc>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CampaignSend {
    /// The claim key: one send per campaign, contact and attempt, whoever enqueues it and
    /// however many times (a replayed launch, a resume, a second launch command).
    pub fn request_id(&self) -> String {
        match (self.occurrence, self.retry_of) {
            (Some(occurrence), _) => format!(
                "campaign:{}:{}:on{occurrence}",
                self.campaign_id,
                self.to.as_str()
            ),
            (None, Some(of)) => format!(
                "campaign:{}:{}:retry@{of}",
                self.campaign_id,
                self.to.as_str()
            ),
            (None, None) if self.cap_retry > 0 => format!(
                "{}:cap{}",
                request_id(&self.campaign_id, &self.to, self.attempt),
                self.cap_retry
            ),
            (None, None) => request_id(&self.campaign_id, &self.to, self.attempt),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a campaign send serializes")
    }
}

pub fn request_id(campaign_id: &str, to: &PhoneNumber, attempt: u32) -> String {
    match attempt {
        0 => format!("campaign:{campaign_id}:{}", to.as_str()),
        n => format!("campaign:{campaign_id}:{}:retry{n}", to.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_retries_of_one_failure_share_their_claim_key() {
        let send = |attempt, cap_retry, retry_of| CampaignSend {
            campaign_id: "c1".into(),
            to: PhoneNumber::parse("0123456789").unwrap(),
            phone_number_id: "1065".into(),
            business_number: "60321611234".into(),
            attempt,
            occurrence: None,
            cap_retry,
            retry_of,
            planned_at: Utc::now(),
        };
        let manual = send(1_700_000_000, 0, Some(1_700_000_000_123));
        let automatic = send(0, 2, Some(1_700_000_000_123));
        assert_eq!(manual.request_id(), automatic.request_id());
        assert_eq!(
            manual.request_id(),
            "campaign:c1:60123456789:retry@1700000000123"
        );
        // Retries of different failures, and the first send, each have their own.
        assert_ne!(
            send(0, 2, Some(1_700_000_000_124)).request_id(),
            automatic.request_id()
        );
        assert_eq!(send(0, 0, None).request_id(), "campaign:c1:60123456789");
        // Sends queued before retry_of existed keep their keys.
        assert_eq!(
            send(0, 1, None).request_id(),
            "campaign:c1:60123456789:cap1"
        );
    }
}
