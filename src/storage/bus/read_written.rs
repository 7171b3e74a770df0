//! Reading everything a topic held when the read began (the dead-letter list and replay):
//! a group-less read of every partition up to its end offset at the start, so nothing is
//! committed and no consumer group is disturbed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Bus, BusError, Message};

/// What [`read_written`] read.
#[derive(Debug, Default)]
pub struct Written {
    /// In (partition, offset) order.
    pub messages: Vec<Message>,
    /// False when the read stopped at its limit before every partition's end.
    pub complete: bool,
}

/// The records of `topic` written before the call, reading at most `limit` (memory is
/// bounded by it, not by the topic). A partition whose remaining records are gone
/// (retention) ends the read after `idle` without a new record, rather than waiting for
/// offsets that will never come.
pub async fn read_written(
    bus: &dyn Bus,
    topic: &str,
    limit: usize,
    idle: Duration,
) -> Result<Written, BusError> {
    let ends = bus.end_offsets(topic).await?;
    let mut pending: BTreeMap<u32, u64> = ends
        .iter()
        .enumerate()
        .filter(|(_, end)| **end > 0)
        .map(|(partition, end)| (partition as u32, *end))
        .collect();
    if pending.is_empty() {
        return Ok(Written {
            messages: Vec::new(),
            complete: true,
        });
    }
    let partitions: Vec<u32> = pending.keys().copied().collect();
    let mut reader = bus.read_from_start(topic, &partitions).await?;
    let mut read: Vec<Message> = Vec::new();
    while !pending.is_empty() && read.len() < limit {
        let Ok(batch) = tokio::time::timeout(idle, reader.next_batch()).await else {
            break;
        };
        for message in batch? {
            let Some(&end) = pending.get(&message.partition) else {
                continue;
            };
            if message.offset >= end {
                pending.remove(&message.partition);
                continue;
            }
            if message.offset + 1 >= end {
                pending.remove(&message.partition);
            }
            read.push(message);
        }
    }
    read.sort_by_key(|m| (m.partition, m.offset));
    read.truncate(limit);
    Ok(Written {
        complete: pending.is_empty(),
        messages: read,
    })
}
