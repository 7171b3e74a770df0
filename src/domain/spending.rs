//! A contact's purchase history as a pure, idempotent reducer: applying the same purchase
//! event twice (a Kafka replay, a receipt sent twice under one id) changes nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::money::Money;

/// One counted purchase, as the receipt flow records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseEvent {
    pub purchase_id: String,
    pub amount: Money,
    pub purchased_on: NaiveDate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseEntry {
    pub amount: Money,
    pub purchased_on: NaiveDate,
}

/// What applying an event did, so callers emit a domain event only for real changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Recorded,
    AlreadyRecorded,
}

/// Purchases keyed by purchase id. The first event for an id wins: a later event with the
/// same id and different content is a replay of a corrected record and is not counted again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseLedger {
    entries: BTreeMap<String, PurchaseEntry>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendingStats {
    pub total_spent: Money,
    pub purchase_count: u64,
    /// Mean purchase, rounded to the sen; zero when there are no purchases.
    pub average_spend: Money,
    pub first_purchase_on: Option<NaiveDate>,
    pub last_purchase_on: Option<NaiveDate>,
}

impl PurchaseLedger {
    pub fn apply(&mut self, event: &PurchaseEvent) -> Applied {
        if self.entries.contains_key(&event.purchase_id) {
            return Applied::AlreadyRecorded;
        }
        self.entries.insert(
            event.purchase_id.clone(),
            PurchaseEntry {
                amount: event.amount,
                purchased_on: event.purchased_on,
            },
        );
        Applied::Recorded
    }

    pub fn contains(&self, purchase_id: &str) -> bool {
        self.entries.contains_key(purchase_id)
    }

    /// Approximate heap bytes held: a B-tree slot per entry (~11 to a node) and its id.
    pub fn heap_bytes(&self) -> usize {
        self.entries
            .keys()
            .map(|id| id.capacity() + std::mem::size_of::<(String, PurchaseEntry)>() * 12 / 10)
            .sum()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &PurchaseEntry)> {
        self.entries.iter().map(|(id, e)| (id.as_str(), e))
    }

    /// Stats over every purchase.
    pub fn stats(&self) -> SpendingStats {
        stats_of(self.entries.values())
    }

    /// Stats over purchases made on or after `since`.
    pub fn stats_since(&self, since: NaiveDate) -> SpendingStats {
        stats_of(self.entries.values().filter(|e| e.purchased_on >= since))
    }
}

fn stats_of<'a>(entries: impl Iterator<Item = &'a PurchaseEntry>) -> SpendingStats {
    summarize(entries.map(|e| (e.purchased_on, e.amount)))
}

/// Stats over (date, amount) purchases: the one definition of total, count, average and
/// first/last date (the segment index's compact ledger uses it too).
pub fn summarize(purchases: impl Iterator<Item = (NaiveDate, Money)>) -> SpendingStats {
    let mut stats = SpendingStats::default();
    for (purchased_on, amount) in purchases {
        stats.total_spent = stats.total_spent.saturating_add(amount);
        stats.purchase_count += 1;
        stats.first_purchase_on = Some(match stats.first_purchase_on {
            Some(d) => d.min(purchased_on),
            None => purchased_on,
        });
        stats.last_purchase_on = Some(match stats.last_purchase_on {
            Some(d) => d.max(purchased_on),
            None => purchased_on,
        });
    }
    stats.average_spend = stats
        .total_spent
        .div_round(stats.purchase_count)
        .unwrap_or(Money::ZERO);
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase(id: &str, sen: i64, day: u32) -> PurchaseEvent {
        PurchaseEvent {
            purchase_id: id.to_string(),
            amount: Money::from_sen(sen),
            purchased_on: NaiveDate::from_ymd_opt(2025, 3, day).unwrap(),
        }
    }

    #[test]
    fn stats_sum_count_and_average() {
        let mut ledger = PurchaseLedger::default();
        ledger.apply(&purchase("a", 1000, 1));
        ledger.apply(&purchase("b", 2001, 5));
        ledger.apply(&purchase("c", 0, 3));
        let stats = ledger.stats();
        assert_eq!(stats.total_spent, Money::from_sen(3001));
        assert_eq!(stats.purchase_count, 3);
        assert_eq!(stats.average_spend, Money::from_sen(1000));
        assert_eq!(stats.first_purchase_on, NaiveDate::from_ymd_opt(2025, 3, 1));
        assert_eq!(stats.last_purchase_on, NaiveDate::from_ymd_opt(2025, 3, 5));
    }

    #[test]
    fn replayed_purchase_counts_once() {
        let mut ledger = PurchaseLedger::default();
        assert_eq!(ledger.apply(&purchase("a", 1000, 1)), Applied::Recorded);
        let before = ledger.stats();
        assert_eq!(
            ledger.apply(&purchase("a", 1000, 1)),
            Applied::AlreadyRecorded
        );
        assert_eq!(
            ledger.apply(&purchase("a", 9999, 2)),
            Applied::AlreadyRecorded
        );
        assert_eq!(ledger.stats(), before);
    }

    #[test]
    fn order_of_events_does_not_matter() {
        let events = [
            purchase("a", 150, 4),
            purchase("b", 275, 2),
            purchase("c", 990, 9),
        ];
        let mut forward = PurchaseLedger::default();
        events.iter().for_each(|e| {
            forward.apply(e);
        });
        let mut backward = PurchaseLedger::default();
        events.iter().rev().for_each(|e| {
            backward.apply(e);
        });
        assert_eq!(forward, backward);
        assert_eq!(forward.stats(), backward.stats());
    }

    #[test]
    fn huge_totals_saturate_instead_of_panicking() {
        let mut ledger = PurchaseLedger::default();
        ledger.apply(&purchase("a", i64::MAX, 1));
        ledger.apply(&purchase("b", i64::MAX, 2));
        assert_eq!(ledger.stats().total_spent, Money::from_sen(i64::MAX));
    }

    #[test]
    fn empty_ledger_has_zero_stats() {
        let stats = PurchaseLedger::default().stats();
        assert_eq!(stats, SpendingStats::default());
    }

    #[test]
    fn stats_since_filters_by_date() {
        let mut ledger = PurchaseLedger::default();
        ledger.apply(&purchase("a", 1000, 1));
        ledger.apply(&purchase("b", 500, 20));
        let recent = ledger.stats_since(NaiveDate::from_ymd_opt(2025, 3, 10).unwrap());
        assert_eq!(recent.total_spent, Money::from_sen(500));
        assert_eq!(recent.purchase_count, 1);
    }
}
