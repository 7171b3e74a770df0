//! Campaign rules that need no I/O. For now the lifecycle states of a campaign; the
//! planner's rules (exclusions, pacing, attribution) join them with the campaigns issue.

use serde::{Deserialize, Serialize};

/// Where a campaign is in its life.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_as_the_seed_writes_them() {
        for (status, text) in [
            (CampaignStatus::Draft, "draft"),
            (CampaignStatus::Scheduled, "scheduled"),
            (CampaignStatus::Running, "running"),
            (CampaignStatus::Paused, "paused"),
            (CampaignStatus::Completed, "completed"),
            (CampaignStatus::Cancelled, "cancelled"),
        ] {
            assert_eq!(status.as_str(), text);
            assert_eq!(text.parse::<CampaignStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{text}\"")
            );
        }
        assert!("launched".parse::<CampaignStatus>().is_err());
    }
}
