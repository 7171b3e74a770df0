//! Keeps a [`SegmentIndex`] current from crm.contacts: on assignment, rebuilds the assigned
//! partitions from their first record (a group-less reader, so an API process can follow
//! every partition without joining the engine's group), then follows new records as the
//! engine's flushes write them. A partition goes live when its reader reaches the end it
//! had at assignment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::index::Applied;
use super::live::{PartitionSlot, SegmentIndex};
use crate::domain::phone::PhoneNumber;
use crate::metrics::catalog;
use crate::storage::bus::{Bus, BusError, Message, PartitionReader};
use crate::topics::contacts::ContactState;

/// How often an idle reader checks whether its partitions are still assigned.
const OWNERSHIP_CHECK: Duration = Duration::from_secs(1);
/// How long a reader waits after a bus error before reading again.
const RETRY_DELAY: Duration = Duration::from_secs(1);

pub struct Follower {
    index: Arc<SegmentIndex>,
    bus: Arc<dyn Bus>,
    /// crm.contacts (namespaced).
    topic: String,
    readers: Mutex<Vec<JoinHandle<()>>>,
}

impl Follower {
    pub fn new(index: Arc<SegmentIndex>, bus: Arc<dyn Bus>, topic: String) -> Self {
        Follower {
            index,
            bus,
            topic,
            readers: Mutex::new(Vec::new()),
        }
    }

    pub fn index(&self) -> &Arc<SegmentIndex> {
        &self.index
    }

    /// Indexes every partition of the topic (the API role).
    pub async fn assign_all(&self) -> Result<(), BusError> {
        let count = self.bus.partition_count(&self.topic).await?;
        self.assign(&(0..count).collect::<Vec<_>>()).await
    }

    /// Rebuilds these partitions from the changelog and follows them.
    pub async fn assign(&self, partitions: &[u32]) -> Result<(), BusError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let ends = self.bus.end_offsets(&self.topic).await?;
        let reader = self.bus.read_from_start(&self.topic, partitions).await?;
        let slots: HashMap<u32, (Arc<PartitionSlot>, u64)> = self
            .index
            .assign(partitions)
            .into_iter()
            .map(|(p, slot)| {
                let end = ends.get(p as usize).copied().unwrap_or(0);
                if end == 0 {
                    slot.live.store(true, std::sync::atomic::Ordering::Release);
                }
                (p, (slot, end))
            })
            .collect();
        self.index.report_size();
        tracing::info!(topic = %self.topic, ?partitions, "segment index rebuilding");
        let task = tokio::spawn(follow(reader, slots, self.index.clone()));
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        readers.retain(|t| !t.is_finished());
        readers.push(task);
        Ok(())
    }

    /// Drops these partitions (their ownership moved); their reader stops once none of its
    /// partitions is assigned.
    pub fn revoke(&self, partitions: &[u32]) {
        self.index.revoke(partitions);
        self.index.report_size();
    }

    /// Stops every reader.
    pub fn stop(&self) {
        for task in self
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn follow(
    mut reader: Box<dyn PartitionReader>,
    slots: HashMap<u32, (Arc<PartitionSlot>, u64)>,
    index: Arc<SegmentIndex>,
) {
    loop {
        if !slots
            .iter()
            .any(|(p, (slot, _))| index.is_current(*p, slot))
        {
            return;
        }
        let batch = match tokio::time::timeout(OWNERSHIP_CHECK, reader.next_batch()).await {
            Err(_) => continue,
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "segment index: reading crm.contacts failed; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        let mut by_partition: HashMap<u32, Vec<Message>> = HashMap::new();
        for m in batch {
            by_partition.entry(m.partition).or_default().push(m);
        }
        let mut went_live = false;
        for (partition, messages) in by_partition {
            let Some((slot, end)) = slots.get(&partition) else {
                continue;
            };
            if !index.is_current(partition, slot) {
                continue;
            }
            let mut partition_index = slot.index.write().unwrap_or_else(|e| e.into_inner());
            let mut last = 0;
            for m in &messages {
                let outcome = apply(&mut partition_index, m);
                catalog::SEGMENT_INDEX_RECORDS
                    .counter(&[outcome.into()])
                    .increment(1);
                last = m.offset;
            }
            drop(partition_index);
            if last + 1 >= *end && !slot.live.swap(true, std::sync::atomic::Ordering::AcqRel) {
                went_live = true;
                tracing::info!(partition, "segment index partition live");
            }
        }
        if went_live {
            index.report_size();
        }
    }
}

/// Applies one changelog record; returns the outcome label.
fn apply(index: &mut super::PartitionIndex, m: &Message) -> &'static str {
    let state = match ContactState::decode(&m.payload) {
        Ok(state) => state,
        Err(_) => return "malformed",
    };
    let phone = match &state {
        Some(s) => s.phone_number.clone(),
        None => match std::str::from_utf8(&m.key)
            .ok()
            .and_then(|k| PhoneNumber::from_e164_digits(k).ok())
        {
            Some(p) => p,
            None => return "malformed",
        },
    };
    match index.apply(&phone, state.as_ref()) {
        Applied::Inserted | Applied::Updated => "applied",
        Applied::Stale => "stale",
        Applied::Removed => "erased",
        Applied::Absent => "absent",
    }
}
