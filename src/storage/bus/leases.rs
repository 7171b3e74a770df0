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

/// Which revocation a lease entry belongs to: a later revocation of the same partition
/// replaces the entry, and settling the earlier one must not remove it.
pub type RevocationId = u64;

#[derive(Debug, Default)]
pub struct Leases {
    state: Mutex<State>,
    /// Whether any lease is ending: the shards ask on every batch and flush.
    any: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Partitions being revoked: the revocation, and when this process's lease ends.
    ending: HashMap<TopicPartition, (RevocationId, Instant)>,
    last_revocation: RevocationId,
}

impl Leases {
    /// `partitions` are being revoked; this process owns them until `deadline`. The id
    /// goes with the revocation (see [`RevokeAck`](super::RevokeAck)) to settle it.
    pub fn ending(&self, partitions: &[TopicPartition], deadline: Instant) -> RevocationId {
        let mut state = self.lock();
        state.last_revocation += 1;
        let id = state.last_revocation;
        for tp in partitions {
            state.ending.insert(tp.clone(), (id, deadline));
        }
        self.any.store(!state.ending.is_empty(), Ordering::Release);
        id
    }

    /// Revocation `id` of `partitions` is over (their contacts released): nothing of them
    /// is left here. Entries of a later revocation stay.
    pub fn settled(&self, partitions: &[TopicPartition], id: RevocationId) {
        let mut state = self.lock();
        for tp in partitions {
            if state.ending.get(tp).is_some_and(|(entry, _)| *entry == id) {
                state.ending.remove(tp);
            }
        }
        self.any.store(!state.ending.is_empty(), Ordering::Release);
    }

    /// The partitions whose lease has ended by `now`: empty, without locking, unless a
    /// revocation is under way.
    pub fn ended(&self, now: Instant) -> HashSet<TopicPartition> {
        if !self.any_ending() {
            return HashSet::new();
        }
        self.lock()
            .ending
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Whether any revocation is under way (cheap).
    pub fn any_ending(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
    fn a_lease_ends_at_its_deadline_until_its_revocation_settles() {
        let leases = Leases::default();
        let start = Instant::now();
        assert!(leases.ended(start).is_empty());
        assert!(!leases.any_ending());

        let first = leases.ending(&[tp(0), tp(1)], start + Duration::from_secs(30));
        let second = leases.ending(&[tp(2)], start);
        assert_ne!(first, second);
        assert!(leases.any_ending());
        assert_eq!(leases.ended(start), HashSet::from([tp(2)]));
        assert_eq!(
            leases.ended(start + Duration::from_secs(30)),
            HashSet::from([tp(0), tp(1), tp(2)])
        );

        leases.settled(&[tp(1)], first);
        leases.settled(&[tp(2)], second);
        let later = start + Duration::from_secs(60);
        assert_eq!(leases.ended(later), HashSet::from([tp(0)]));
        leases.settled(&[tp(0)], first);
        assert!(leases.ended(later).is_empty());
        assert!(!leases.any_ending());
    }

    #[test]
    fn settling_a_revocation_leaves_a_later_one_of_the_same_partition() {
        let leases = Leases::default();
        let start = Instant::now();
        let first = leases.ending(&[tp(0)], start);
        let second = leases.ending(&[tp(0)], start + Duration::from_secs(30));
        leases.settled(&[tp(0)], first);
        assert!(leases.ended(start).is_empty(), "the later deadline holds");
        assert_eq!(
            leases.ended(start + Duration::from_secs(30)),
            HashSet::from([tp(0)])
        );
        leases.settled(&[tp(0)], second);
        assert!(!leases.any_ending());
    }
}
