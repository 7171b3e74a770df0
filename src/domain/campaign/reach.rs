//! The portfolio's 24 h messaging limit: how many unique customers business-initiated
//! messages may reach in a moving 24 h (FACTS: 250 / 2,000 / 10,000 / 100,000 /
//! unlimited, shared by the whole portfolio since October 2025). A customer counts from
//! their latest reach until 24 h after it; reaching them again costs no room.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

use crate::domain::phone::PhoneNumber;

/// What the window says to one more business-initiated message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Reached in the last 24 h already: no room used.
    AlreadyReached,
    /// A new customer, now counted.
    Admitted,
    /// No room until an earlier reach is 24 h old.
    Full,
}

/// The customers reached in the moving 24 h, with the latest time of each.
#[derive(Clone, Debug)]
pub struct ReachWindow {
    /// 0 = unlimited.
    limit: u64,
    latest: HashMap<PhoneNumber, DateTime<Utc>>,
    /// Every reach in time order; an entry older than its customer's latest is stale.
    order: VecDeque<(DateTime<Utc>, PhoneNumber)>,
}

fn day() -> Duration {
    Duration::hours(24)
}

impl ReachWindow {
    pub fn new(limit: u64) -> Self {
        ReachWindow {
            limit,
            latest: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// A reach known from elsewhere (the store's log, another number of the portfolio).
    pub fn note(&mut self, contact: &PhoneNumber, at: DateTime<Utc>) {
        self.note_all([(contact.clone(), at)]);
    }

    /// Reaches in any order (a page of the log); the window keeps the latest of each.
    pub fn note_all(&mut self, reaches: impl IntoIterator<Item = (PhoneNumber, DateTime<Utc>)>) {
        let mut in_order = true;
        for (contact, at) in reaches {
            if self
                .latest
                .get(&contact)
                .is_some_and(|latest| *latest >= at)
            {
                continue;
            }
            in_order &= self.order.back().is_none_or(|(last, _)| *last <= at);
            self.latest.insert(contact.clone(), at);
            self.order.push_back((at, contact));
        }
        if !in_order {
            self.order.make_contiguous().sort_by_key(|(at, _)| *at);
        }
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        let cutoff = now - day();
        while let Some((at, contact)) = self.order.front() {
            if *at > cutoff {
                break;
            }
            if self.latest.get(contact) == Some(at) {
                self.latest.remove(contact);
            }
            self.order.pop_front();
        }
    }

    /// Whether `to` may be sent a business-initiated message now; counts them if so.
    pub fn admit(&mut self, to: &PhoneNumber, now: DateTime<Utc>) -> Admission {
        self.expire(now);
        let known = self.latest.contains_key(to);
        if !known && self.limit > 0 && self.latest.len() as u64 >= self.limit {
            return Admission::Full;
        }
        self.note(to, now);
        if known {
            Admission::AlreadyReached
        } else {
            Admission::Admitted
        }
    }

    /// Whether `contact` was reached in the 24 h before `now`.
    pub fn reached(&mut self, contact: &PhoneNumber, now: DateTime<Utc>) -> bool {
        self.expire(now);
        self.latest.contains_key(contact)
    }

    /// New customers that fit now; `None` when unlimited.
    pub fn remaining(&mut self, now: DateTime<Utc>) -> Option<u64> {
        self.expire(now);
        (self.limit > 0).then(|| self.limit.saturating_sub(self.latest.len() as u64))
    }

    /// How long until `new_customers` more have all been reached, if each is sent as soon
    /// as there is room: exact while they fit in the room the current reaches free, then
    /// a limit's worth per day.
    pub fn wait_for(&mut self, new_customers: u64, now: DateTime<Utc>) -> Duration {
        let Some(remaining) = self.remaining(now) else {
            return Duration::zero();
        };
        if new_customers <= remaining {
            return Duration::zero();
        }
        let beyond = new_customers - remaining;
        // The current reaches, oldest first, each freeing room 24 h after it.
        let frees: Vec<DateTime<Utc>> = self
            .order
            .iter()
            .filter(|(at, contact)| self.latest.get(contact) == Some(at))
            .map(|(at, _)| *at + day())
            .collect();
        match frees.get(usize::try_from(beyond - 1).unwrap_or(usize::MAX)) {
            Some(free_at) => *free_at - now,
            None => {
                // Past every current reach: the newly reached ones free room a day later.
                let last = frees.last().copied().unwrap_or(now);
                let more = beyond - frees.len() as u64;
                (last - now) + day() * i32::try_from(more.div_ceil(self.limit)).unwrap_or(i32::MAX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("601234{n:05}")).unwrap()
    }

    fn t(hours: i64) -> DateTime<Utc> {
        "2026-03-10T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(hours)
    }

    #[test]
    fn counts_unique_customers_in_a_moving_day_from_their_latest_reach() {
        let mut window = ReachWindow::new(2);
        assert_eq!(window.admit(&p(1), t(0)), Admission::Admitted);
        assert_eq!(window.admit(&p(2), t(1)), Admission::Admitted);
        // The same customer again costs no room, and counts from now.
        assert_eq!(window.admit(&p(1), t(2)), Admission::AlreadyReached);
        assert_eq!(window.admit(&p(3), t(2)), Admission::Full);
        assert_eq!(window.remaining(t(2)), Some(0));
        // 24 h after p2's reach there is room; p1 (reached again at 2) still counts.
        assert_eq!(window.admit(&p(3), t(24)), Admission::Full);
        assert_eq!(window.admit(&p(3), t(25)), Admission::Admitted);
        assert!(window.reached(&p(1), t(25)));
        assert!(!window.reached(&p(1), t(26)));
        assert_eq!(ReachWindow::new(0).admit(&p(9), t(0)), Admission::Admitted);
        assert_eq!(ReachWindow::new(0).remaining(t(0)), None);
    }

    #[test]
    fn reaches_from_the_log_merge_in_any_order_keeping_the_latest() {
        let mut window = ReachWindow::new(3);
        window.note(&p(1), t(5));
        window.note(&p(2), t(1));
        window.note(&p(1), t(3));
        assert_eq!(window.remaining(t(6)), Some(1));
        // p2 is 24 h old at 25, p1 (latest 5) only at 29.
        assert_eq!(window.remaining(t(25)), Some(2));
        assert_eq!(window.remaining(t(29)), Some(3));
    }

    #[test]
    fn the_wait_for_room_follows_the_reaches_as_they_age() {
        let mut window = ReachWindow::new(3);
        window.note(&p(1), t(0));
        window.note(&p(2), t(4));
        assert_eq!(window.wait_for(1, t(10)), Duration::zero());
        // Two more: the second waits for p1's reach to age (24 h after hour 0).
        assert_eq!(window.wait_for(2, t(10)), Duration::hours(14));
        assert_eq!(window.wait_for(3, t(10)), Duration::hours(18));
        // Beyond every current reach: a day per limit's worth more.
        assert_eq!(window.wait_for(4, t(10)), Duration::hours(18 + 24));
        assert_eq!(window.wait_for(6, t(10)), Duration::hours(18 + 24));
        assert_eq!(window.wait_for(7, t(10)), Duration::hours(18 + 48));
        assert_eq!(ReachWindow::new(0).wait_for(1_000, t(0)), Duration::zero());
    }
}
