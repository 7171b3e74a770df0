//! Campaign rules that need no I/O: the definition and its validation ([`definition`]),
//! personalised text ([`template`]), who may be sent what and when ([`eligibility`]), a
//! recipient's steps and the funnel ([`recipient`]), and the campaigns a contact received,
//! from which statuses, clicks and purchases move the funnel ([`touch`]).

pub mod definition;
pub mod eligibility;
pub mod reach;
pub mod recipient;
pub mod template;
pub mod touch;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use definition::{
    CampaignDefinition, CampaignError, CampaignMessage, MediaRef, RenderedMessage, Trigger,
};
pub use eligibility::{exclusion, FrequencyCap, QuietHours, RecipientFacts};
pub use reach::{Admission, ReachWindow};
pub use recipient::{
    CapRetry, CapRetryPolicy, Failure, Funnel, RecipientStatus, RecipientSteps, RecipientUpdate,
    SkipReason, ECOSYSTEM_CAP,
};
pub use touch::{CampaignTouch, FunnelStep, Touches};

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
    utoipa::ToSchema,
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

    /// Whether sends of the campaign may go out now.
    pub fn sends(self) -> bool {
        self == CampaignStatus::Running
    }

    /// The status after `action`, or why it is not allowed from this one.
    pub fn after(self, action: CampaignAction) -> Result<CampaignStatus, TransitionError> {
        use CampaignAction as A;
        use CampaignStatus as S;
        let next = match (self, action) {
            (S::Draft | S::Scheduled, A::Schedule) => S::Scheduled,
            (S::Draft | S::Scheduled, A::Launch) => S::Running,
            (S::Running, A::Pause) => S::Paused,
            (S::Paused, A::Resume) => S::Running,
            (S::Draft | S::Scheduled | S::Running | S::Paused, A::Cancel) => S::Cancelled,
            (S::Running, A::Complete) => S::Completed,
            // Retrying the failed reopens a finished or running campaign for those only.
            (S::Running | S::Paused | S::Completed, A::RetryFailed) => S::Running,
            _ => return Err(TransitionError { from: self, action }),
        };
        Ok(next)
    }
}

/// What a marketer (or the scheduler) does to a campaign.
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
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CampaignAction {
    Schedule,
    Launch,
    Pause,
    Resume,
    Cancel,
    Complete,
    RetryFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a {from} campaign cannot {action}", from = from.as_str(), action = <&str>::from(*action))]
pub struct TransitionError {
    pub from: CampaignStatus,
    pub action: CampaignAction,
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

    #[test]
    fn transitions_follow_the_lifecycle() {
        use CampaignAction as A;
        use CampaignStatus as S;
        assert_eq!(S::Draft.after(A::Launch), Ok(S::Running));
        assert_eq!(S::Draft.after(A::Schedule), Ok(S::Scheduled));
        assert_eq!(S::Running.after(A::Pause), Ok(S::Paused));
        assert_eq!(S::Paused.after(A::Resume), Ok(S::Running));
        assert_eq!(S::Completed.after(A::RetryFailed), Ok(S::Running));
        let refused = S::Cancelled.after(A::Resume).unwrap_err();
        assert_eq!(refused.to_string(), "a cancelled campaign cannot resume");
        assert!(S::Completed.after(A::Launch).is_err());
        assert!(S::Draft.after(A::Pause).is_err());
        assert!(S::Running.sends() && !S::Paused.sends());
    }
}
