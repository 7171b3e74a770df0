//! Who may be sent a campaign, and when: the exclusions recorded at planning and checked
//! again at the moment of sending (FACTS.md: opt-in, the 24 h customer-service window,
//! frequency caps), and quiet hours.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::clock::malaysia;
use crate::domain::contact::{Contact, WhatsappStatus};

use super::recipient::SkipReason;

/// At most `max` marketing messages per contact in any `days` days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FrequencyCap {
    pub max: u32,
    pub days: u32,
}

impl Default for FrequencyCap {
    fn default() -> Self {
        FrequencyCap { max: 2, days: 7 }
    }
}

/// The customer-service window: free-form messages only this long after the customer's
/// last message.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);

/// What eligibility reads of a contact (the segment index's row at planning, the stored
/// contact at sending).
pub trait RecipientFacts {
    fn whatsapp_status(&self) -> WhatsappStatus;
    fn marketing_opt_in(&self) -> bool;
    fn last_interaction(&self) -> Option<DateTime<Utc>>;
    /// Marketing messages sent to the contact at or after `since`.
    fn marketing_sends_since(&self, since: DateTime<Utc>) -> u32;
}

impl RecipientFacts for Contact {
    fn whatsapp_status(&self) -> WhatsappStatus {
        self.whatsapp_status
    }
    fn marketing_opt_in(&self) -> bool {
        self.marketing_opt_in
    }
    fn last_interaction(&self) -> Option<DateTime<Utc>> {
        self.interactions.last_interaction
    }
    fn marketing_sends_since(&self, since: DateTime<Utc>) -> u32 {
        self.campaign_touches.sent_since(since)
    }
}

/// Why `contact` may not be sent this campaign now, if anything. `free_form`: the message
/// is not an approved template, so the 24 h window applies. The order is the order of
/// precedence: a withdrawal is reported before a missing opt-in, and so on.
pub fn exclusion(
    contact: &dyn RecipientFacts,
    free_form: bool,
    cap: FrequencyCap,
    now: DateTime<Utc>,
) -> Option<SkipReason> {
    match contact.whatsapp_status() {
        WhatsappStatus::Unsubscribed => return Some(SkipReason::OptedOut),
        WhatsappStatus::Blocked => return Some(SkipReason::Undeliverable),
        WhatsappStatus::Active => {}
    }
    if !contact.marketing_opt_in() {
        return Some(SkipReason::NoConsent);
    }
    let since = now - Duration::days(i64::from(cap.days));
    if contact.marketing_sends_since(since) >= cap.max {
        return Some(SkipReason::FrequencyCap);
    }
    if free_form
        && contact
            .last_interaction()
            .is_none_or(|last| now - last >= SERVICE_WINDOW)
    {
        return Some(SkipReason::OutsideWindow);
    }
    None
}

/// Hours of Malaysia time in which marketing sends wait (default 22:00 to 08:00). A window
/// whose start equals its end is empty (no quiet hours).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours {
            start: NaiveTime::from_hms_opt(22, 0, 0).expect("valid time"),
            end: NaiveTime::from_hms_opt(8, 0, 0).expect("valid time"),
        }
    }
}

impl QuietHours {
    fn contains(&self, time: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// `None` when a marketing message may go at `now`; else the instant quiet hours end.
    pub fn resumes_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&malaysia());
        if !self.contains(local.time()) {
            return None;
        }
        let today_end = local.date_naive().and_time(self.end);
        let end = if local.time() < self.end {
            today_end
        } else {
            today_end + Duration::days(1)
        };
        end.and_local_timezone(malaysia())
            .single()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Facts {
        status: WhatsappStatus,
        opt_in: bool,
        last: Option<DateTime<Utc>>,
        sends: Vec<DateTime<Utc>>,
    }

    impl RecipientFacts for Facts {
        fn whatsapp_status(&self) -> WhatsappStatus {
            self.status
        }
        fn marketing_opt_in(&self) -> bool {
            self.opt_in
        }
        fn last_interaction(&self) -> Option<DateTime<Utc>> {
            self.last
        }
        fn marketing_sends_since(&self, since: DateTime<Utc>) -> u32 {
            self.sends.iter().filter(|t| **t >= since).count() as u32
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn exclusions_in_order_of_precedence() {
        let now = utc("2026-03-10T04:00:00Z");
        let mut f = Facts {
            status: WhatsappStatus::Active,
            opt_in: true,
            last: Some(now - Duration::hours(23)),
            sends: vec![now - Duration::days(8), now - Duration::days(6)],
        };
        let cap = FrequencyCap::default();
        assert_eq!(exclusion(&f, true, cap, now), None);
        f.last = Some(now - Duration::hours(24));
        assert_eq!(
            exclusion(&f, true, cap, now),
            Some(SkipReason::OutsideWindow)
        );
        assert_eq!(exclusion(&f, false, cap, now), None, "templates reach them");
        f.sends.push(now - Duration::days(1));
        assert_eq!(
            exclusion(&f, false, cap, now),
            Some(SkipReason::FrequencyCap)
        );
        assert_eq!(
            exclusion(&f, false, FrequencyCap { max: 3, days: 7 }, now),
            None
        );
        f.opt_in = false;
        assert_eq!(exclusion(&f, false, cap, now), Some(SkipReason::NoConsent));
        f.status = WhatsappStatus::Blocked;
        assert_eq!(
            exclusion(&f, false, cap, now),
            Some(SkipReason::Undeliverable)
        );
        f.status = WhatsappStatus::Unsubscribed;
        assert_eq!(exclusion(&f, false, cap, now), Some(SkipReason::OptedOut));
    }

    #[test]
    fn quiet_hours_hold_marketing_until_eight_in_malaysia() {
        let quiet = QuietHours::default();
        // 21:59 MYT: allowed; 22:00 MYT: waits until 08:00 MYT the next day (00:00 UTC).
        assert_eq!(quiet.resumes_at(utc("2026-03-10T13:59:00Z")), None);
        assert_eq!(
            quiet.resumes_at(utc("2026-03-10T14:00:00Z")),
            Some(utc("2026-03-11T00:00:00Z"))
        );
        // 03:00 MYT: the same morning.
        assert_eq!(
            quiet.resumes_at(utc("2026-03-10T19:00:00Z")),
            Some(utc("2026-03-11T00:00:00Z"))
        );
        assert_eq!(quiet.resumes_at(utc("2026-03-11T00:00:00Z")), None);
        let daytime = QuietHours {
            start: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(13, 0, 0).unwrap(),
        };
        assert_eq!(
            daytime.resumes_at(utc("2026-03-10T04:30:00Z")),
            Some(utc("2026-03-10T05:00:00Z"))
        );
        let none = QuietHours {
            start: NaiveTime::MIN,
            end: NaiveTime::MIN,
        };
        assert_eq!(none.resumes_at(utc("2026-03-10T04:30:00Z")), None);
    }
}
