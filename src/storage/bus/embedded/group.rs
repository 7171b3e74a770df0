//! Consumer groups of the embedded bus: membership, sticky balanced assignment, the
//! revoke-then-assign rebalance protocol, and committed offsets (persisted atomically).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::log::log_error;
use super::{atomic_write, Inner};
use crate::storage::bus::{BusError, ConsumerEvent, Leases, RevokeAck, TopicPartition};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A group's committed offsets: in memory, and in `offsets/<group>.json`, rewritten
/// atomically (temp file + rename) on every commit.
pub(crate) struct GroupOffsets {
    pub group: String,
    path: PathBuf,
    map: Mutex<BTreeMap<TopicPartition, u64>>,
    /// Serializes file writes; each write takes a fresh snapshot, so the last one is newest.
    persist_lock: Mutex<()>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct OffsetsFile {
    pub version: u32,
    pub group: String,
    pub offsets: BTreeMap<String, BTreeMap<u32, u64>>,
}

impl GroupOffsets {
    pub fn new(group: String, path: PathBuf, map: BTreeMap<TopicPartition, u64>) -> Self {
        GroupOffsets {
            group,
            path,
            map: Mutex::new(map),
            persist_lock: Mutex::new(()),
        }
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<u64> {
        lock(&self.map).get(tp).copied()
    }

    pub fn set(&self, offsets: &[(TopicPartition, u64)]) {
        let mut map = lock(&self.map);
        for (tp, offset) in offsets {
            map.insert(tp.clone(), *offset);
        }
    }

    /// Writes the current offsets to disk (blocking).
    pub fn persist(&self, fsync: bool) -> Result<(), BusError> {
        let _guard = lock(&self.persist_lock);
        let mut file = OffsetsFile {
            version: 1,
            group: self.group.clone(),
            offsets: BTreeMap::new(),
        };
        for (tp, offset) in lock(&self.map).iter() {
            file.offsets
                .entry(tp.topic.clone())
                .or_default()
                .insert(tp.partition, *offset);
        }
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| log_error(&self.path, e))?;
        atomic_write(&self.path, &bytes, fsync)
    }

    pub async fn persist_async(self: &Arc<Self>, fsync: bool) -> Result<(), BusError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.persist(fsync))
            .await
            .map_err(|e| log_error(&self.path, format!("offset writer panicked: {e}")))?
    }
}

pub(crate) struct Member {
    pub id: u64,
    pub topics: Vec<String>,
    pub leases: Arc<Leases>,
    pub state: Mutex<MemberState>,
    /// Woken when an event is queued for the member.
    pub wake: Notify,
}

#[derive(Default)]
pub(crate) struct MemberState {
    /// Group events not yet taken by the consumer, in order.
    pub events: VecDeque<ConsumerEvent>,
    /// Partitions this member owns, including those being revoked until the move completes;
    /// only these may be committed by it.
    pub owned: BTreeSet<TopicPartition>,
    pub left: bool,
}

impl Member {
    pub fn new(id: u64, topics: Vec<String>) -> Self {
        Member {
            id,
            topics,
            leases: Arc::default(),
            state: Mutex::new(MemberState::default()),
            wake: Notify::new(),
        }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, MemberState> {
        lock(&self.state)
    }

    fn push(&self, event: ConsumerEvent) {
        self.state().events.push_back(event);
        self.wake.notify_one();
    }
}

pub(crate) struct Group {
    pub name: String,
    pub offsets: Arc<GroupOffsets>,
    members: Mutex<BTreeMap<u64, Arc<Member>>>,
    /// Rebalances run one at a time per group.
    rebalance_lock: tokio::sync::Mutex<()>,
}

impl Group {
    pub fn new(name: String, offsets: Arc<GroupOffsets>) -> Self {
        Group {
            name,
            offsets,
            members: Mutex::new(BTreeMap::new()),
            rebalance_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn join(&self, member: Arc<Member>) {
        lock(&self.members).insert(member.id, member);
    }

    /// Removes the member at once: its partitions are released without a revocation (it is
    /// leaving, uncommitted work is redelivered) and any pending revocation ack is dropped,
    /// which ends a rebalance waiting for it. Run [`rebalance`] afterwards.
    pub fn leave(&self, member: &Member) {
        {
            let mut state = member.state();
            state.left = true;
            state.owned.clear();
            state.events.clear();
        }
        lock(&self.members).remove(&member.id);
    }

    /// Validates that `member` owns every partition and records the offsets in memory.
    /// The caller persists them.
    pub fn commit_in_memory(
        &self,
        member: &Member,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), BusError> {
        let state = member.state();
        if state.left {
            return Err(BusError::Closed);
        }
        if let Some((tp, _)) = offsets.iter().find(|(tp, _)| !state.owned.contains(tp)) {
            return Err(BusError::Group {
                group: self.name.clone(),
                detail: format!("cannot commit {tp}: it is not assigned to this member"),
            });
        }
        // Set while holding the member's lock, so a rebalance cannot hand the partition to
        // another member between the check and the write.
        self.offsets.set(offsets);
        Ok(())
    }
}

/// One rebalance pass: computes the target assignment for the current members, revokes the
/// partitions that move (waiting for each owner's ack up to the deadline and committing what
/// it returns), then assigns them to their new owners, who start at the committed offsets.
pub(crate) async fn rebalance(inner: Arc<Inner>, group: Arc<Group>) {
    let _running = group.rebalance_lock.lock().await;
    let members: Vec<Arc<Member>> = lock(&group.members).values().cloned().collect();
    let mut counts = BTreeMap::new();
    for member in &members {
        for topic in &member.topics {
            if let Some(n) = inner.partition_count_of(topic) {
                counts.insert(topic.clone(), n);
            }
        }
    }
    let subscriptions: Vec<(u64, Vec<String>)> =
        members.iter().map(|m| (m.id, m.topics.clone())).collect();
    let current: HashMap<u64, BTreeSet<TopicPartition>> = members
        .iter()
        .map(|m| (m.id, m.state().owned.clone()))
        .collect();
    let target = assign(&subscriptions, &counts, &current);

    // Revoke what moves, and wait for the acks.
    let deadline = tokio::time::Instant::now() + inner.config.revoke_timeout;
    let mut waits = Vec::new();
    for member in &members {
        let revoked: Vec<TopicPartition> = current[&member.id]
            .difference(&target[&member.id])
            .cloned()
            .collect();
        if revoked.is_empty() {
            continue;
        }
        let revocation = member.leases.ending(&revoked, deadline.into_std());
        let (ack, answer) = RevokeAck::new(revocation);
        member.push(ConsumerEvent::Revoked {
            partitions: revoked.clone(),
            ack,
        });
        waits.push((member.clone(), revoked, answer));
    }
    let acks = futures::future::join_all(waits.into_iter().map(
        |(member, revoked, answer)| async move {
            let answer = tokio::time::timeout_at(deadline, answer).await;
            (member, revoked, answer)
        },
    ))
    .await;
    let mut committed = false;
    for (member, revoked, answer) in acks {
        let mut state = member.state();
        match answer {
            Ok(Ok(offsets)) => {
                let offsets: Vec<_> = offsets
                    .into_iter()
                    .filter(|(tp, _)| state.owned.contains(tp))
                    .collect();
                if !offsets.is_empty() {
                    group.offsets.set(&offsets);
                    committed = true;
                }
            }
            Ok(Err(_)) => {} // ack dropped: nothing more to commit
            Err(_) => tracing::warn!(
                group = %group.name,
                member = member.id,
                after = ?inner.config.revoke_timeout,
                "revocation not acknowledged in time; moving the partitions without a commit"
            ),
        }
        for tp in &revoked {
            state.owned.remove(tp);
        }
    }
    if committed {
        if let Err(e) = group
            .offsets
            .persist_async(inner.config.sync.fsync_offsets())
            .await
        {
            tracing::error!(group = %group.name, error = %e, "cannot persist committed offsets");
        }
    }

    // Assign the partitions to their new owners.
    for member in &members {
        let mut state = member.state();
        if state.left {
            continue; // it left meanwhile; its own leave runs another rebalance
        }
        let added: Vec<TopicPartition> = target[&member.id]
            .difference(&state.owned)
            .cloned()
            .collect();
        if added.is_empty() {
            continue;
        }
        state.owned.extend(added.iter().cloned());
        state.events.push_back(ConsumerEvent::Assigned(added));
        drop(state);
        member.wake.notify_one();
    }
}

/// Sticky balanced assignment. Per topic (in name order), the members subscribed to it share
/// its partitions as evenly as possible; members keep the partitions they own up to their
/// share, and the rest go to members below their share, lowest partition first. The extra
/// partitions of an uneven split go to members already holding more of the topic, then to
/// the least loaded, then to the oldest member, so a join or leave moves as little as possible.
///
/// Topics with the same partition count and the same subscribers are co-partitioned, as
/// Kafka's range assignor does: partition N of each goes to the member that got partition N
/// of the first of them, so records keyed alike in those topics have one owner.
pub(crate) fn assign(
    members: &[(u64, Vec<String>)],
    counts: &BTreeMap<String, u32>,
    current: &HashMap<u64, BTreeSet<TopicPartition>>,
) -> HashMap<u64, BTreeSet<TopicPartition>> {
    let mut out: HashMap<u64, BTreeSet<TopicPartition>> = members
        .iter()
        .map(|(id, _)| (*id, BTreeSet::new()))
        .collect();
    let mut load: HashMap<u64, usize> = members.iter().map(|(id, _)| (*id, 0)).collect();
    let empty = BTreeSet::new();
    // (subscribers, partition count) → owner of each partition, for co-partitioning.
    let mut owners_by_shape: HashMap<(Vec<u64>, u32), Vec<u64>> = HashMap::new();
    for (topic, &n) in counts {
        let mut eligible: Vec<u64> = members
            .iter()
            .filter(|(_, topics)| topics.iter().any(|t| t == topic))
            .map(|(id, _)| *id)
            .collect();
        eligible.sort_unstable();
        if eligible.is_empty() {
            continue;
        }
        if let Some(owners) = owners_by_shape.get(&(eligible.clone(), n)) {
            for (p, id) in owners.iter().enumerate() {
                *load.get_mut(id).expect("member") += 1;
                let set = out.get_mut(id).expect("member");
                set.insert(TopicPartition::new(topic.clone(), p as u32));
            }
            continue;
        }
        let owned_here = |id: u64| -> Vec<u32> {
            current
                .get(&id)
                .unwrap_or(&empty)
                .iter()
                .filter(|tp| &tp.topic == topic && tp.partition < n)
                .map(|tp| tp.partition)
                .collect()
        };
        let base = n as usize / eligible.len();
        let extra = n as usize % eligible.len();
        let mut order = eligible.clone();
        order.sort_by_key(|&id| (std::cmp::Reverse(owned_here(id).len()), load[&id], id));
        let quota: HashMap<u64, usize> = order
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, base + usize::from(i < extra)))
            .collect();
        let mut free: BTreeSet<u32> = (0..n).collect();
        let mut given: HashMap<u64, Vec<u32>> = HashMap::new();
        for &id in &eligible {
            let keep: Vec<u32> = owned_here(id)
                .into_iter()
                .filter(|p| free.contains(p))
                .take(quota[&id])
                .collect();
            for p in &keep {
                free.remove(p);
            }
            given.insert(id, keep);
        }
        for &id in &eligible {
            let mine = given
                .get_mut(&id)
                .expect("every eligible member has an entry");
            while mine.len() < quota[&id] {
                let p = free
                    .pop_first()
                    .expect("quotas add up to the partition count");
                mine.push(p);
            }
            *load.get_mut(&id).expect("member") += mine.len();
            let set = out.get_mut(&id).expect("member");
            set.extend(mine.iter().map(|&p| TopicPartition::new(topic.clone(), p)));
        }
        let mut owners = vec![0; n as usize];
        for (id, partitions) in &given {
            for &p in partitions {
                owners[p as usize] = *id;
            }
        }
        owners_by_shape.insert((eligible, n), owners);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(topic: &str, ps: &[u32]) -> BTreeSet<TopicPartition> {
        ps.iter().map(|&p| TopicPartition::new(topic, p)).collect()
    }

    #[test]
    fn balanced_and_sticky() {
        let counts = BTreeMap::from([("t".to_string(), 6)]);
        let sub = |ids: &[u64]| -> Vec<(u64, Vec<String>)> {
            ids.iter().map(|&id| (id, vec!["t".to_string()])).collect()
        };
        let one = assign(&sub(&[1]), &counts, &HashMap::new());
        assert_eq!(one[&1], tps("t", &[0, 1, 2, 3, 4, 5]));
        // A second member takes half; the first keeps the rest.
        let two = assign(&sub(&[1, 2]), &counts, &one);
        assert_eq!(two[&1].len(), 3);
        assert_eq!(two[&2].len(), 3);
        assert!(two[&1].is_subset(&one[&1]));
        // A third member takes one from each.
        let three = assign(&sub(&[1, 2, 3]), &counts, &two);
        assert!(three[&1].is_subset(&two[&1]) && three[&2].is_subset(&two[&2]));
        assert_eq!(three[&3].len(), 2);
        // The second leaves: nothing moves between the others.
        let mut current = three.clone();
        current.remove(&2);
        let after = assign(&sub(&[1, 3]), &counts, &current);
        assert!(three[&1].is_subset(&after[&1]) && three[&3].is_subset(&after[&3]));
        let all: BTreeSet<_> = after.values().flatten().cloned().collect();
        assert_eq!(all, tps("t", &[0, 1, 2, 3, 4, 5]));
        assert_eq!(after[&1].len() + after[&3].len(), 6);
    }

    #[test]
    fn topics_alike_are_co_partitioned_through_joins_and_leaves() {
        let counts = BTreeMap::from([("inbound".to_string(), 8), ("results".to_string(), 8)]);
        let both = || vec!["inbound".to_string(), "results".to_string()];
        let paired = |out: &HashMap<u64, BTreeSet<TopicPartition>>| {
            for set in out.values() {
                let of = |topic: &str| -> BTreeSet<u32> {
                    set.iter()
                        .filter(|tp| tp.topic == topic)
                        .map(|tp| tp.partition)
                        .collect()
                };
                assert_eq!(of("inbound"), of("results"), "{out:?}");
            }
        };
        let mut current = HashMap::new();
        // Three members at once: an uneven split, where load alone would put the extra
        // partitions of the second topic elsewhere.
        for ids in [&[1u64, 2, 3][..], &[1], &[1, 2], &[1, 2, 3], &[1, 3], &[3]] {
            let members: Vec<(u64, Vec<String>)> = ids.iter().map(|&id| (id, both())).collect();
            current.retain(|id, _| ids.contains(id));
            current = assign(&members, &counts, &current);
            paired(&current);
            let all: usize = current.values().map(BTreeSet::len).sum();
            assert_eq!(all, 16, "every partition once");
        }
    }

    #[test]
    fn members_only_get_their_topics_and_load_spreads() {
        let counts = BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 3)]);
        let members = vec![
            (1, vec!["a".to_string(), "b".to_string()]),
            (2, vec!["a".to_string(), "b".to_string()]),
            (3, vec!["b".to_string()]),
        ];
        let out = assign(&members, &counts, &HashMap::new());
        assert!(out[&3].iter().all(|tp| tp.topic == "b"));
        let count = |id: u64, topic: &str| out[&id].iter().filter(|tp| tp.topic == topic).count();
        // Each topic is split evenly among its subscribers, and everything is assigned once.
        assert_eq!((count(1, "b"), count(2, "b"), count(3, "b")), (1, 1, 1));
        assert_eq!(count(1, "a") + count(2, "a"), 3);
        assert!(count(1, "a").abs_diff(count(2, "a")) == 1);
        let all: BTreeSet<_> = out.values().flatten().cloned().collect();
        assert_eq!(all.len(), 6);
    }
}
