//! One intended recipient of a campaign: what happened to them, kept as the time of each
//! step. Updates merge commutatively (each step's earliest time wins; a failure's latest
//! attempt wins), so the planner, the sender and the contact's shard can each write their
//! steps in any order and any number of times and the row ends the same; the status shown
//! is derived from the steps, so it only moves forward.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::money::Money;

/// Why a recipient was not sent the campaign. Recorded, never dropped.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SkipReason {
    /// The contact sent STOP (or was opted out through the API).
    OptedOut,
    /// WhatsApp reported the number undeliverable (131026) or the contact blocked us.
    Undeliverable,
    /// No marketing opt-in, or the customer stopped marketing messages (131050).
    NoConsent,
    /// Over the marketing frequency cap.
    FrequencyCap,
    /// A free-form message to a contact whose 24 h customer-service window is closed.
    OutsideWindow,
    /// A custom recipient who is not a contact.
    UnknownContact,
    /// `scheduled_end` passed before the send.
    Expired,
    /// The campaign was cancelled before the send.
    Cancelled,
    /// The personalised message could not be made (e.g. over the length limit).
    RenderFailed,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A failed send: the provider's error code and whether sending again may succeed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub at: DateTime<Utc>,
    pub code: Option<i64>,
    pub reason: String,
    pub retryable: bool,
    /// For a 131049 refusal: how many automatic retries came before this one.
    #[serde(default)]
    pub cap_retries: u32,
}

/// Meta's per-user marketing cap: "not delivered to maintain healthy ecosystem engagement".
pub const ECOSYSTEM_CAP: i64 = 131_049;

/// When a send refused for Meta's per-user marketing cap ([`ECOSYSTEM_CAP`]) is tried
/// again by itself: `after` the refusal, at most `max` times (FACTS: resellers retry after
/// 6–24 h, about 3 times).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapRetryPolicy {
    pub after: chrono::Duration,
    pub max: u32,
}

/// Where a recipient stands with automatic retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapRetry {
    /// Not refused for the cap, or out of retries, or already past the failure.
    NotWanted,
    /// The retry with this number (1, 2, ...) may go now.
    Due(u32),
    /// The next retry may go from this time.
    Scheduled(DateTime<Utc>),
}

/// A recipient's status, derived from their steps.
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
    strum::EnumIter,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RecipientStatus {
    /// Planned, not sent yet (queued, waiting for quiet hours to end, or paused).
    Pending,
    Sent,
    Delivered,
    Read,
    Clicked,
    Converted,
    Failed,
    Skipped,
}

impl RecipientStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One step of a recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum RecipientUpdate {
    Planned {
        at: DateTime<Utc>,
    },
    Skipped {
        at: DateTime<Utc>,
        reason: SkipReason,
    },
    Sent {
        at: DateTime<Utc>,
        wamid: String,
    },
    Failed(Failure),
    Delivered {
        at: DateTime<Utc>,
    },
    Read {
        at: DateTime<Utc>,
    },
    Clicked {
        at: DateTime<Utc>,
    },
    Converted {
        at: DateTime<Utc>,
        amount: Money,
    },
}

/// What is known of one recipient.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientSteps {
    pub planned_at: Option<DateTime<Utc>>,
    pub skipped: Option<(DateTime<Utc>, SkipReason)>,
    pub sent: Option<(DateTime<Utc>, String)>,
    pub failed: Option<Failure>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
    pub converted: Option<(DateTime<Utc>, Money)>,
}

/// Keeps the earlier of two timed values (the stored one on a tie).
fn earliest<T>(slot: &mut Option<(DateTime<Utc>, T)>, at: DateTime<Utc>, value: T) {
    if slot.as_ref().is_none_or(|(old, _)| at < *old) {
        *slot = Some((at, value));
    }
}

fn earliest_time(slot: &mut Option<DateTime<Utc>>, at: DateTime<Utc>) {
    if slot.is_none_or(|old| at < old) {
        *slot = Some(at);
    }
}

impl RecipientSteps {
    pub fn apply(&mut self, update: &RecipientUpdate) {
        match update {
            RecipientUpdate::Planned { at } => earliest_time(&mut self.planned_at, *at),
            RecipientUpdate::Skipped { at, reason } => earliest(&mut self.skipped, *at, *reason),
            RecipientUpdate::Sent { at, wamid } => earliest(&mut self.sent, *at, wamid.clone()),
            RecipientUpdate::Failed(failure) => {
                if self.failed.as_ref().is_none_or(|old| failure.at >= old.at) {
                    self.failed = Some(failure.clone());
                }
            }
            RecipientUpdate::Delivered { at } => earliest_time(&mut self.delivered_at, *at),
            RecipientUpdate::Read { at } => earliest_time(&mut self.read_at, *at),
            RecipientUpdate::Clicked { at } => earliest_time(&mut self.clicked_at, *at),
            RecipientUpdate::Converted { at, amount } => {
                earliest(&mut self.converted, *at, *amount)
            }
        }
    }

    /// The furthest step reached. A later step implies the earlier ones, whatever order
    /// their reports came in.
    pub fn status(&self) -> RecipientStatus {
        if self.converted.is_some() {
            RecipientStatus::Converted
        } else if self.clicked_at.is_some() {
            RecipientStatus::Clicked
        } else if self.read_at.is_some() {
            RecipientStatus::Read
        } else if self.delivered_at.is_some() {
            RecipientStatus::Delivered
        } else if self.sent.is_some() {
            RecipientStatus::Sent
        } else if self.failed.is_some() {
            RecipientStatus::Failed
        } else if self.skipped.is_some() {
            RecipientStatus::Skipped
        } else {
            RecipientStatus::Pending
        }
    }

    /// Whether the sender should still send (nothing final happened yet).
    pub fn awaits_send(&self) -> bool {
        self.status() == RecipientStatus::Pending
    }

    /// Whether the send refused for the marketing cap is tried again by itself, and when.
    pub fn cap_retry(&self, policy: CapRetryPolicy, now: DateTime<Utc>) -> CapRetry {
        let Some(failure) = self.failed.as_ref() else {
            return CapRetry::NotWanted;
        };
        if !self.retryable_failure()
            || failure.code != Some(ECOSYSTEM_CAP)
            || failure.cap_retries >= policy.max
        {
            return CapRetry::NotWanted;
        }
        let Some(from) = failure.at.checked_add_signed(policy.after) else {
            return CapRetry::NotWanted;
        };
        if from <= now {
            CapRetry::Due(failure.cap_retries + 1)
        } else {
            CapRetry::Scheduled(from)
        }
    }

    /// The latest failure's time in milliseconds: the identity of the failure a retry
    /// retries (both stores keep milliseconds).
    pub fn failure_ms(&self) -> Option<i64> {
        self.failed.as_ref().map(|f| f.at.timestamp_millis())
    }

    /// Whether "retry the failed" sends again: not after a skip recorded since the failure
    /// (the customer stopped marketing while a retry waited: the retry was skipped).
    pub fn retryable_failure(&self) -> bool {
        self.status() == RecipientStatus::Failed
            && self.failed.as_ref().is_some_and(|f| {
                f.retryable && self.skipped.is_none_or(|(skipped_at, _)| skipped_at < f.at)
            })
    }
}

/// A campaign's tracking metrics: each recipient counted once per step reached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Funnel {
    /// Intended recipients (planned or skipped).
    pub recipients: u64,
    pub pending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub clicked: u64,
    pub converted: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Skipped recipients by reason.
    pub skipped_by_reason: std::collections::BTreeMap<String, u64>,
    /// Sum of the converting purchases, in sen.
    pub attributed_revenue_sen: i64,
}

impl Funnel {
    pub fn add(&mut self, steps: &RecipientSteps) {
        self.recipients += 1;
        let status = steps.status();
        let reached = |s: RecipientStatus| u64::from(status == s);
        let delivered = steps.delivered_at.is_some() || steps.read_at.is_some();
        let sent = steps.sent.is_some() || delivered;
        self.sent += u64::from(sent);
        self.delivered += u64::from(delivered);
        self.read += u64::from(steps.read_at.is_some());
        self.clicked += u64::from(steps.clicked_at.is_some());
        self.converted += u64::from(steps.converted.is_some());
        self.failed += reached(RecipientStatus::Failed);
        self.pending += reached(RecipientStatus::Pending);
        if status == RecipientStatus::Skipped {
            self.skipped += 1;
            if let Some((_, reason)) = steps.skipped {
                *self
                    .skipped_by_reason
                    .entry(reason.as_str().to_string())
                    .or_default() += 1;
            }
        }
        if let Some((_, amount)) = steps.converted {
            self.attributed_revenue_sen += amount.sen();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn updates() -> Vec<RecipientUpdate> {
        vec![
            RecipientUpdate::Planned { at: at(0) },
            RecipientUpdate::Failed(Failure {
                at: at(1),
                code: Some(130429),
                reason: "rate".into(),
                retryable: true,
                cap_retries: 0,
            }),
            RecipientUpdate::Sent {
                at: at(5),
                wamid: "wamid.A".into(),
            },
            RecipientUpdate::Read { at: at(9) },
            RecipientUpdate::Delivered { at: at(7) },
            RecipientUpdate::Delivered { at: at(8) },
            RecipientUpdate::Converted {
                at: at(99),
                amount: Money::from_sen(1250),
            },
            RecipientUpdate::Converted {
                at: at(120),
                amount: Money::from_sen(9999),
            },
        ]
    }

    #[test]
    fn steps_merge_in_any_order_and_any_number_of_times() {
        let mut forward = RecipientSteps::default();
        for u in updates() {
            forward.apply(&u);
        }
        let mut backward = RecipientSteps::default();
        for u in updates().iter().rev().chain(updates().iter()) {
            backward.apply(u);
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.status(), RecipientStatus::Converted);
        assert_eq!(forward.delivered_at, Some(at(7)));
        assert_eq!(forward.converted, Some((at(99), Money::from_sen(1250))));
        let mut funnel = Funnel::default();
        funnel.add(&forward);
        assert_eq!(
            (
                funnel.sent,
                funnel.delivered,
                funnel.read,
                funnel.converted,
                funnel.failed
            ),
            (1, 1, 1, 1, 0)
        );
        assert_eq!(funnel.attributed_revenue_sen, 1250);
    }

    #[test]
    fn status_moves_forward_only_and_reads_imply_delivery() {
        let mut steps = RecipientSteps::default();
        steps.apply(&RecipientUpdate::Planned { at: at(0) });
        assert!(steps.awaits_send());
        steps.apply(&RecipientUpdate::Read { at: at(3) });
        assert_eq!(steps.status(), RecipientStatus::Read);
        // A late "delivered" does not move it back.
        steps.apply(&RecipientUpdate::Delivered { at: at(2) });
        assert_eq!(steps.status(), RecipientStatus::Read);
        let mut funnel = Funnel::default();
        funnel.add(&steps);
        assert_eq!((funnel.sent, funnel.delivered, funnel.read), (1, 1, 1));
        assert!(!steps.awaits_send());
    }

    #[test]
    fn a_retryable_failure_is_retried_only_until_a_send_succeeds() {
        let mut steps = RecipientSteps::default();
        steps.apply(&RecipientUpdate::Failed(Failure {
            at: at(1),
            code: Some(131049),
            reason: "ecosystem".into(),
            retryable: true,
            cap_retries: 0,
        }));
        assert!(steps.retryable_failure());
        steps.apply(&RecipientUpdate::Failed(Failure {
            at: at(2),
            code: Some(131026),
            reason: "undeliverable".into(),
            retryable: false,
            cap_retries: 0,
        }));
        assert!(!steps.retryable_failure(), "the latest attempt decides");
        steps.apply(&RecipientUpdate::Sent {
            at: at(3),
            wamid: "w".into(),
        });
        assert_eq!(steps.status(), RecipientStatus::Sent);
        let mut skipped = RecipientSteps::default();
        skipped.apply(&RecipientUpdate::Skipped {
            at: at(1),
            reason: SkipReason::FrequencyCap,
        });
        skipped.apply(&RecipientUpdate::Skipped {
            at: at(4),
            reason: SkipReason::Expired,
        });
        let mut funnel = Funnel::default();
        funnel.add(&skipped);
        assert_eq!(funnel.skipped_by_reason.get("frequency_cap"), Some(&1));
    }

    #[test]
    fn a_marketing_cap_refusal_is_retried_after_hours_a_few_times() {
        let policy = CapRetryPolicy {
            after: chrono::Duration::hours(12),
            max: 3,
        };
        let refused = |at, cap_retries| {
            RecipientUpdate::Failed(Failure {
                at,
                code: Some(ECOSYSTEM_CAP),
                reason: "ecosystem".into(),
                retryable: true,
                cap_retries,
            })
        };
        let hours = |h| at(0) + chrono::Duration::hours(h);
        let mut steps = RecipientSteps::default();
        steps.apply(&refused(at(0), 0));
        assert_eq!(
            steps.cap_retry(policy, hours(11)),
            CapRetry::Scheduled(hours(12))
        );
        assert_eq!(steps.cap_retry(policy, hours(12)), CapRetry::Due(1));
        steps.apply(&refused(hours(12), 1));
        assert_eq!(steps.cap_retry(policy, hours(30)), CapRetry::Due(2));
        steps.apply(&refused(hours(30), 2));
        steps.apply(&refused(hours(42), 3));
        assert_eq!(
            steps.cap_retry(policy, hours(99)),
            CapRetry::NotWanted,
            "three at most"
        );
        assert_eq!(
            steps.cap_retry(CapRetryPolicy { max: 0, ..policy }, hours(1)),
            CapRetry::NotWanted
        );
        // Another code, or a send that went after all, is not retried.
        let mut other = RecipientSteps::default();
        other.apply(&RecipientUpdate::Failed(Failure {
            at: at(0),
            code: Some(131_026),
            reason: "undeliverable".into(),
            retryable: true,
            cap_retries: 0,
        }));
        assert_eq!(other.cap_retry(policy, hours(99)), CapRetry::NotWanted);
        let mut sent = RecipientSteps::default();
        sent.apply(&refused(at(0), 0));
        sent.apply(&RecipientUpdate::Sent {
            at: hours(13),
            wamid: "w".into(),
        });
        assert_eq!(sent.cap_retry(policy, hours(99)), CapRetry::NotWanted);
        // A retry skipped at its turn (the customer sent STOP while it waited) is not
        // due again: the campaign can complete.
        let mut stopped = RecipientSteps::default();
        stopped.apply(&refused(at(0), 0));
        assert_eq!(stopped.cap_retry(policy, hours(12)), CapRetry::Due(1));
        stopped.apply(&RecipientUpdate::Skipped {
            at: hours(12),
            reason: SkipReason::NoConsent,
        });
        assert_eq!(stopped.cap_retry(policy, hours(99)), CapRetry::NotWanted);
        assert!(!stopped.retryable_failure());
    }
}
