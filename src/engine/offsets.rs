//! Which offsets of a partition may be committed. Records finish out of order (contacts
//! live on different shards), but a commit says "everything before N is done", so only the
//! contiguous finished prefix is committable (the strategy of Sentry's rust-arroyo).

use std::collections::{BTreeMap, BTreeSet};

use crate::storage::bus::TopicPartition;

/// One partition's in-flight offsets.
#[derive(Debug, Default)]
struct PartitionOffsets {
    /// Offsets handed out and not finished yet.
    in_flight: BTreeSet<u64>,
    /// The highest offset seen + 1: the commit point once nothing is in flight.
    next: Option<u64>,
    /// The last offset (next to read) committed or reported as committable.
    committed: Option<u64>,
}

impl PartitionOffsets {
    /// The next offset to read such that every earlier record is finished.
    fn committable(&self) -> Option<u64> {
        match self.in_flight.first() {
            Some(&lowest) => Some(lowest),
            None => self.next,
        }
    }
}

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<TopicPartition, PartitionOffsets>,
}

impl OffsetTracker {
    pub fn new() -> Self {
        OffsetTracker::default()
    }

    /// A record of `tp` at `offset` was handed to the engine. Offsets of one partition
    /// arrive in increasing order.
    pub fn start(&mut self, tp: &TopicPartition, offset: u64) {
        let partition = self.partitions.entry(tp.clone()).or_default();
        partition.in_flight.insert(offset);
        partition.next = Some(partition.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// The record's effects are stored; unknown offsets (a revoked partition) are ignored.
    pub fn finish(&mut self, tp: &TopicPartition, offset: u64) {
        if let Some(partition) = self.partitions.get_mut(tp) {
            partition.in_flight.remove(&offset);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }

    pub fn in_flight_of(&self, tp: &TopicPartition) -> usize {
        self.partitions.get(tp).map_or(0, |p| p.in_flight.len())
    }

    /// Offsets to commit now: per partition, the committable point when it moved since the
    /// last call. Marks them as committed.
    pub fn take_committable(&mut self) -> Vec<(TopicPartition, u64)> {
        let mut out = Vec::new();
        for (tp, partition) in &mut self.partitions {
            if let Some(point) = partition.committable() {
                if partition.committed.is_none_or(|c| point > c) {
                    partition.committed = Some(point);
                    out.push((tp.clone(), point));
                }
            }
        }
        out
    }

    /// The committable point of `tp` whether or not it moved (for a revoke answer).
    pub fn committable(&self, tp: &TopicPartition) -> Option<u64> {
        self.partitions
            .get(tp)
            .and_then(PartitionOffsets::committable)
    }

    /// Forgets a partition (revoked or lost): its in-flight records will be redelivered to
    /// its next owner.
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.partitions.remove(tp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: u32) -> TopicPartition {
        TopicPartition::new("wa.inbound", p)
    }

    #[test]
    fn commits_only_the_contiguous_finished_prefix() {
        let mut t = OffsetTracker::new();
        for o in 10..15 {
            t.start(&tp(0), o);
        }
        assert_eq!(t.take_committable(), vec![(tp(0), 10)]);
        t.finish(&tp(0), 12);
        t.finish(&tp(0), 11);
        assert!(t.take_committable().is_empty(), "10 is still in flight");
        t.finish(&tp(0), 10);
        assert_eq!(t.take_committable(), vec![(tp(0), 13)]);
        t.finish(&tp(0), 14);
        t.finish(&tp(0), 13);
        assert_eq!(t.take_committable(), vec![(tp(0), 15)]);
        assert!(t.take_committable().is_empty(), "nothing moved");
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent_and_forget_drops_one() {
        let mut t = OffsetTracker::new();
        t.start(&tp(0), 0);
        t.start(&tp(1), 7);
        t.finish(&tp(1), 7);
        let mut got = t.take_committable();
        got.sort();
        assert_eq!(got, vec![(tp(0), 0), (tp(1), 8)]);
        t.forget(&tp(0));
        t.finish(&tp(0), 0);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.committable(&tp(0)), None);
        assert_eq!(t.committable(&tp(1)), Some(8));
    }

    #[test]
    fn any_finish_order_ends_at_the_end() {
        use proptest::prelude::*;
        proptest!(|(order in Just((0u64..40).collect::<Vec<_>>()).prop_shuffle())| {
            let mut t = OffsetTracker::new();
            for o in 0..40 { t.start(&tp(3), o); }
            let mut last = 0;
            for o in order {
                t.finish(&tp(3), o);
                for (_, point) in t.take_committable() {
                    prop_assert!(point >= last);
                    last = point;
                }
            }
            prop_assert_eq!(last, 40);
        });
    }
}
