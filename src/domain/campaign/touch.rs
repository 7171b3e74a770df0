//! The campaigns a contact received recently, kept on the contact so that its shard, the
//! one writer of the contact, can move each campaign's funnel forward (statuses by wamid,
//! clicks, conversions) and count marketing messages for the frequency cap, without a
//! read elsewhere and exactly under replay.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::message::DeliveryStatus;
use crate::domain::money::Money;

use super::recipient::RecipientUpdate;

/// Touches kept per contact: enough for any frequency cap and attribution window in use.
const MAX_TOUCHES: usize = 32;
/// Touches older than this are dropped whatever the count.
const MAX_AGE: Duration = Duration::days(120);
/// Longest attribution window a campaign may set.
pub const MAX_ATTRIBUTION_DAYS: u16 = 90;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CampaignTouch {
    pub campaign_id: String,
    pub wamid: String,
    pub sent_at: DateTime<Utc>,
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub read_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub clicked_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub converted_at: Option<DateTime<Utc>>,
    pub attribution_days: u16,
}

impl CampaignTouch {
    /// When the message reached the phone (a read implies it), if it did.
    fn reached_at(&self) -> Option<DateTime<Utc>> {
        match (self.delivered_at, self.read_at) {
            (Some(d), Some(r)) => Some(d.min(r)),
            (d, r) => d.or(r),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Touches(Vec<CampaignTouch>);

/// A step of a campaign's funnel for one recipient, for the campaign's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunnelStep {
    pub campaign_id: String,
    pub update: RecipientUpdate,
}

impl Touches {
    pub fn iter(&self) -> impl Iterator<Item = &CampaignTouch> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<CampaignTouch>()
            + self
                .0
                .iter()
                .map(|t| t.campaign_id.capacity() + t.wamid.capacity())
                .sum::<usize>()
    }

    /// Records a campaign message sent at `at`; false if it was known (a replay).
    pub fn record_send(
        &mut self,
        campaign_id: &str,
        wamid: &str,
        at: DateTime<Utc>,
        attribution_days: u16,
    ) -> bool {
        if self.0.iter().any(|t| t.wamid == wamid) {
            return false;
        }
        self.0.push(CampaignTouch {
            campaign_id: campaign_id.to_string(),
            wamid: wamid.to_string(),
            sent_at: at,
            delivered_at: None,
            read_at: None,
            clicked_at: None,
            converted_at: None,
            attribution_days: attribution_days.min(MAX_ATTRIBUTION_DAYS),
        });
        self.0.sort_by_key(|t| t.sent_at);
        let cutoff = at - MAX_AGE;
        self.0.retain(|t| t.sent_at >= cutoff);
        let excess = self.0.len().saturating_sub(MAX_TOUCHES);
        self.0.drain(..excess);
        true
    }

    /// Marketing messages sent at or after `since`.
    pub fn sent_since(&self, since: DateTime<Utc>) -> u32 {
        self.0.iter().filter(|t| t.sent_at >= since).count() as u32
    }

    /// A delivery report for one of the contact's messages: the funnel step it makes, if the
    /// message was a campaign's and the step is new.
    pub fn status(
        &mut self,
        wamid: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
    ) -> Option<FunnelStep> {
        let touch = self.0.iter_mut().find(|t| t.wamid == wamid)?;
        let (slot, update) = match status {
            DeliveryStatus::Delivered => {
                (&mut touch.delivered_at, RecipientUpdate::Delivered { at })
            }
            DeliveryStatus::Read => (&mut touch.read_at, RecipientUpdate::Read { at }),
            _ => return None,
        };
        if slot.is_some_and(|old| old <= at) {
            return None;
        }
        *slot = Some(at);
        Some(FunnelStep {
            campaign_id: touch.campaign_id.clone(),
            update,
        })
    }

    /// A click on one of `campaign_id`'s links: a step the first time only (every click is
    /// still an analytics event, which the caller records).
    pub fn click(&mut self, campaign_id: &str, at: DateTime<Utc>) -> Option<FunnelStep> {
        let touch = self
            .0
            .iter_mut()
            .rev()
            .find(|t| t.campaign_id == campaign_id)?;
        if touch.clicked_at.is_some_and(|old| old <= at) {
            return None;
        }
        touch.clicked_at = Some(at);
        Some(FunnelStep {
            campaign_id: campaign_id.to_string(),
            update: RecipientUpdate::Clicked { at },
        })
    }

    /// A purchase made at `at`: converts every campaign that reached the contact within its
    /// attribution window before it and has not converted yet (overlapping campaigns each
    /// get the credit).
    pub fn purchase(&mut self, at: DateTime<Utc>, amount: Money) -> Vec<FunnelStep> {
        let mut steps = Vec::new();
        let mut credited: Vec<&str> = Vec::new();
        for touch in self.0.iter_mut().rev() {
            let Some(reached) = touch.reached_at() else {
                continue;
            };
            let window = Duration::days(i64::from(touch.attribution_days));
            let inside = reached <= at && at <= reached + window;
            // Once per recipient per campaign, even if the campaign sent twice.
            if !inside || touch.converted_at.is_some() || credited.contains(&&*touch.campaign_id) {
                continue;
            }
            touch.converted_at = Some(at);
            credited.push(&touch.campaign_id);
            steps.push(FunnelStep {
                campaign_id: touch.campaign_id.clone(),
                update: RecipientUpdate::Converted { at, amount },
            });
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap() + Duration::hours(hours)
    }

    #[test]
    fn statuses_and_clicks_step_once_and_replays_change_nothing() {
        let mut touches = Touches::default();
        assert!(touches.record_send("c1", "w1", at(0), 7));
        assert!(!touches.record_send("c1", "w1", at(0), 7));
        assert_eq!(touches.status("other", DeliveryStatus::Read, at(1)), None);
        let read = touches.status("w1", DeliveryStatus::Read, at(2)).unwrap();
        assert_eq!(read.update, RecipientUpdate::Read { at: at(2) });
        assert_eq!(touches.status("w1", DeliveryStatus::Read, at(2)), None);
        // Delivered arriving after read, earlier in time: still a step (its own time).
        assert!(touches
            .status("w1", DeliveryStatus::Delivered, at(1))
            .is_some());
        assert!(touches.click("c1", at(3)).is_some());
        assert_eq!(touches.click("c1", at(4)), None);
        assert_eq!(touches.click("c9", at(4)), None);
        assert_eq!(touches.sent_since(at(-1)), 1);
        assert_eq!(touches.sent_since(at(1)), 0);
    }

    #[test]
    fn a_purchase_converts_each_campaign_once_inside_its_window_after_delivery() {
        let mut touches = Touches::default();
        touches.record_send("c1", "w1", at(0), 7);
        touches.record_send("c2", "w2", at(1), 1);
        touches.record_send("c3", "w3", at(1), 7); // never delivered
        touches.status("w1", DeliveryStatus::Delivered, at(1));
        touches.status("w2", DeliveryStatus::Read, at(2));
        // Before delivery: nothing.
        assert!(touches.purchase(at(0), Money::from_sen(100)).is_empty());
        // Inside both windows: both convert, once.
        let steps = touches.purchase(at(20), Money::from_sen(500));
        let mut ids: Vec<_> = steps.iter().map(|s| s.campaign_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["c1", "c2"]);
        assert!(touches.purchase(at(21), Money::from_sen(700)).is_empty());
        // Outside the window: a fresh campaign delivered long ago does not convert.
        let mut late = Touches::default();
        late.record_send("c4", "w4", at(0), 7);
        late.status("w4", DeliveryStatus::Delivered, at(0));
        assert!(late
            .purchase(at(7 * 24 + 1), Money::from_sen(100))
            .is_empty());
        assert_eq!(late.purchase(at(7 * 24), Money::from_sen(100)).len(), 1);
    }

    #[test]
    fn touches_are_bounded() {
        let mut touches = Touches::default();
        for i in 0..100 {
            touches.record_send("c", &format!("w{i}"), at(i), 7);
        }
        assert_eq!(touches.iter().count(), MAX_TOUCHES);
        assert_eq!(touches.iter().next().unwrap().wamid, "w68");
    }
}
