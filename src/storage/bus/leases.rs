//! Partitions on their way out of a consumer, and when it stops owning them. A
//! revocation gives the engine until a deadline to store and commit its work; past it
//! the bus lets the partitions go and another process replays them from the last commit.
//! Whatever this process would apply or write for them after that could land on top of
//! the new owner's writes, so the shards abandon it instead (the new owner redoes it).
//! The bus records the deadline the moment it revokes, so it holds even while the
//! engine, busy, has not read the `Revoked` event yet.
//!
//! Writes already under way at the deadline are left to the store's versioning:
//! contacts are versioned by `updated_at`, and everything such a write holds was applied
//! before the deadline, so before anything the new owner applies (clocks agreeing to
//! within the seconds a rebalance takes).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::TopicPartition;

#[derive(Debug, Default)]
pub struct Leases {
    /// Partitions being revoked, with the time this process's lease on them ends.
    ending: Mutex<HashMap<TopicPartition, Instant>>,
    /// Whether `ending` has any entry: the shards ask on every batch and flush.
    any: AtomicBool,
}

impl Leases {
    /// `partitions` are being revoked; this process owns them until `deadline`.
    pub fn ending(&self, partitions: &[TopicPartition], deadline: Instant) {
        let mut ending = self.lock();
        for tp in partitions {
            ending.insert(tp.clone(), deadline);
        }
        self.any.store(!ending.is_empty(), Ordering::Release);
    }

    /// `partitions`' revocation is over (their contacts released): nothing of them is
    /// left here, and if they come back, they are owned afresh.
    pub fn settled(&self, partitions: &[TopicPartition]) {
        let mut ending = self.lock();
        for tp in partitions {
            ending.remove(tp);
        }
        self.any.store(!ending.is_empty(), Ordering::Release);
    }

    /// The partitions whose lease has ended by `now`: empty, without locking, unless a
    /// revocation is under way.
    pub fn ended(&self, now: Instant) -> HashSet<TopicPartition> {
        if !self.any.load(Ordering::Acquire) {
            return HashSet::new();
        }
        self.lock()
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Instant>> {
        self.ending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tp(partition: u32) -> TopicPartition {
        TopicPartition::new("wa.inbound", partition)
    }

    #[test]
    fn a_lease_ends_at_its_deadline_until_the_revocation_settles() {
        let leases = Leases::default();
        let start = Instant::now();
        assert!(leases.ended(start).is_empty());

        leases.ending(&[tp(0), tp(1)], start + Duration::from_secs(30));
        leases.ending(&[tp(2)], start);
        assert_eq!(leases.ended(start), HashSet::from([tp(2)]));
        assert_eq!(
            leases.ended(start + Duration::from_secs(30)),
            HashSet::from([tp(0), tp(1), tp(2)])
        );

        leases.settled(&[tp(1), tp(2)]);
        let later = start + Duration::from_secs(60);
        assert_eq!(leases.ended(later), HashSet::from([tp(0)]));
        leases.settled(&[tp(0)]);
        assert!(leases.ended(later).is_empty());
    }
}
