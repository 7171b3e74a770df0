//! Outbound message delivery state. WhatsApp reports statuses at least once and out of
//! order (read before delivered); each status is kept with its time, and the current status
//! is the furthest one reached, so applying reports in any order, any number of times,
//! gives the same result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted by the provider, no report yet.
    Accepted,
    Sent,
    Delivered,
    Read,
    /// Terminal: a failure report wins over everything but a read receipt, which proves
    /// delivery happened.
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Accepted => "accepted",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(status: &str) -> Option<DeliveryStatus> {
        match status {
            "accepted" => Some(DeliveryStatus::Accepted),
            "sent" => Some(DeliveryStatus::Sent),
            "delivered" => Some(DeliveryStatus::Delivered),
            "read" => Some(DeliveryStatus::Read),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// When each status was first reported. Setting a field that is already set keeps the
/// earlier time, so replays change nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTimeline {
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    /// Provider error code of the failure (e.g. 131026 undeliverable).
    pub error_code: Option<i64>,
}

/// Whether a report moved the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    Changed,
    Unchanged,
}

impl DeliveryTimeline {
    pub fn apply(
        &mut self,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> StatusChange {
        let slot = match status {
            DeliveryStatus::Accepted => return StatusChange::Unchanged,
            DeliveryStatus::Sent => &mut self.sent_at,
            DeliveryStatus::Delivered => &mut self.delivered_at,
            DeliveryStatus::Read => &mut self.read_at,
            DeliveryStatus::Failed => &mut self.failed_at,
        };
        let changed = match slot {
            Some(existing) if *existing <= at => false,
            _ => {
                *slot = Some(at);
                true
            }
        };
        // The code belongs to the earliest failure report, so a later report (or the same
        // one replayed) never replaces it, while an earlier one does: any arrival order
        // gives the same timeline.
        if status == DeliveryStatus::Failed && changed && error_code.is_some() {
            self.error_code = error_code;
        }
        if changed {
            StatusChange::Changed
        } else {
            StatusChange::Unchanged
        }
    }

    /// Every report in the timeline as (status, time, error code), the code only on the
    /// failure: what replaying the timeline into another one needs.
    pub fn reports(
        &self,
    ) -> impl Iterator<Item = (DeliveryStatus, DateTime<Utc>, Option<i64>)> + '_ {
        [
            (DeliveryStatus::Sent, self.sent_at),
            (DeliveryStatus::Delivered, self.delivered_at),
            (DeliveryStatus::Read, self.read_at),
            (DeliveryStatus::Failed, self.failed_at),
        ]
        .into_iter()
        .filter_map(move |(status, at)| {
            let code = (status == DeliveryStatus::Failed)
                .then_some(self.error_code)
                .flatten();
            at.map(|at| (status, at, code))
        })
    }

    /// The furthest status reached. A read receipt implies delivery even if the delivered
    /// report never came; a failure counts unless the message was read.
    pub fn current(&self) -> DeliveryStatus {
        if self.read_at.is_some() {
            DeliveryStatus::Read
        } else if self.failed_at.is_some() {
            DeliveryStatus::Failed
        } else if self.delivered_at.is_some() {
            DeliveryStatus::Delivered
        } else if self.sent_at.is_some() {
            DeliveryStatus::Sent
        } else {
            DeliveryStatus::Accepted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn out_of_order_reports_keep_the_furthest_state() {
        let mut timeline = DeliveryTimeline::default();
        assert_eq!(timeline.current(), DeliveryStatus::Accepted);
        timeline.apply(DeliveryStatus::Read, t(30), None);
        assert_eq!(timeline.current(), DeliveryStatus::Read);
        timeline.apply(DeliveryStatus::Delivered, t(10), None);
        timeline.apply(DeliveryStatus::Sent, t(5), None);
        assert_eq!(timeline.current(), DeliveryStatus::Read);
        assert_eq!(timeline.delivered_at, Some(t(10)));
    }

    #[test]
    fn replays_change_nothing() {
        let mut timeline = DeliveryTimeline::default();
        assert_eq!(
            timeline.apply(DeliveryStatus::Delivered, t(10), None),
            StatusChange::Changed
        );
        let before = timeline.clone();
        assert_eq!(
            timeline.apply(DeliveryStatus::Delivered, t(10), None),
            StatusChange::Unchanged
        );
        assert_eq!(
            timeline.apply(DeliveryStatus::Delivered, t(20), None),
            StatusChange::Unchanged
        );
        assert_eq!(timeline, before);
        // An earlier report of the same status corrects the time.
        assert_eq!(
            timeline.apply(DeliveryStatus::Delivered, t(8), None),
            StatusChange::Changed
        );
        assert_eq!(timeline.delivered_at, Some(t(8)));
    }

    #[test]
    fn any_order_of_the_same_reports_gives_the_same_timeline() {
        let reports = [
            (DeliveryStatus::Sent, t(1)),
            (DeliveryStatus::Delivered, t(2)),
            (DeliveryStatus::Read, t(3)),
        ];
        let mut orders = vec![];
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..3 {
                    if a != b && b != c && a != c {
                        orders.push([a, b, c]);
                    }
                }
            }
        }
        let mut results = orders.iter().map(|order| {
            let mut timeline = DeliveryTimeline::default();
            for i in order {
                timeline.apply(reports[*i].0, reports[*i].1, None);
            }
            timeline
        });
        let first = results.next().unwrap();
        assert!(results.all(|r| r == first));
    }

    #[test]
    fn the_earliest_failure_keeps_its_code_in_any_order() {
        let mut forward = DeliveryTimeline::default();
        forward.apply(DeliveryStatus::Failed, t(5), Some(131_026));
        forward.apply(DeliveryStatus::Failed, t(9), Some(131_049));
        let mut backward = DeliveryTimeline::default();
        backward.apply(DeliveryStatus::Failed, t(9), Some(131_049));
        backward.apply(DeliveryStatus::Failed, t(5), Some(131_026));
        assert_eq!(forward, backward);
        assert_eq!(forward.error_code, Some(131_026));
    }

    #[test]
    fn reports_replay_into_the_same_timeline() {
        let mut timeline = DeliveryTimeline::default();
        timeline.apply(DeliveryStatus::Read, t(3), None);
        timeline.apply(DeliveryStatus::Failed, t(2), Some(131_049));
        timeline.apply(DeliveryStatus::Sent, t(1), None);
        let mut copy = DeliveryTimeline::default();
        for (status, at, code) in timeline.reports() {
            copy.apply(status, at, code);
        }
        assert_eq!(copy, timeline);
        assert_eq!(timeline.reports().count(), 3);
    }

    #[test]
    fn failure_records_its_code_and_read_outranks_it() {
        let mut timeline = DeliveryTimeline::default();
        timeline.apply(DeliveryStatus::Sent, t(1), None);
        timeline.apply(DeliveryStatus::Failed, t(2), Some(131_026));
        assert_eq!(timeline.current(), DeliveryStatus::Failed);
        assert_eq!(timeline.error_code, Some(131_026));
        timeline.apply(DeliveryStatus::Read, t(3), None);
        assert_eq!(timeline.current(), DeliveryStatus::Read);
    }
}
