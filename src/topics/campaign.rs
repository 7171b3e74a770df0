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
    pub planned_at: DateTime<Utc>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CampaignSend {
    /// The claim key: one send per campaign, contact and attempt, whoever enqueues it and
    /// however many times (a replayed launch, a resume, a second launch command).
    pub fn request_id(&self) -> String {
        match self.occurrence {
            Some(occurrence) => format!(
                "campaign:{}:{}:on{occurrence}",
                self.campaign_id,
                self.to.as_str()
            ),
            None if self.cap_retry > 0 => format!(
                "{}:cap{}",
                request_id(&self.campaign_id, &self.to, self.attempt),
                self.cap_retry
            ),
            None => request_id(&self.campaign_id, &self.to, self.attempt),
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
