//! A member of an embedded consumer group: takes its group events in order, reads its
//! partitions' logs in chunks on the blocking pool, and sleeps on wake-ups (new writes or
//! group events), never busy-polling.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;

use super::group::{rebalance, Group, Member};
use super::log::PartitionLog;
use super::Inner;
use crate::storage::bus::{BusError, Consumer, ConsumerEvent, Leases, Message, TopicPartition};

struct PartitionCursor {
    tp: TopicPartition,
    log: Arc<PartitionLog>,
    /// Where the next read starts, and the offset of the record there.
    fetch_pos: u64,
    fetch_offset: u64,
    /// Records below this offset (before the committed offset) are skipped after a seek.
    skip_until: u64,
    /// Read but not yet delivered, in offset order.
    buffered: VecDeque<Message>,
}

pub struct EmbeddedConsumer {
    inner: Arc<Inner>,
    group: Arc<Group>,
    member: Arc<Member>,
    cursors: Vec<PartitionCursor>,
    paused: HashSet<TopicPartition>,
    next_cursor: usize,
    closed: bool,
}

impl EmbeddedConsumer {
    pub(crate) fn new(inner: Arc<Inner>, group: Arc<Group>, member: Arc<Member>) -> Self {
        EmbeddedConsumer {
            inner,
            group,
            member,
            cursors: Vec::new(),
            paused: HashSet::new(),
            next_cursor: 0,
            closed: false,
        }
    }

    /// Takes the next group event and applies it to the local cursors.
    fn take_event(&mut self) -> Option<ConsumerEvent> {
        let event = self.member.state().events.pop_front()?;
        match &event {
            ConsumerEvent::Assigned(partitions) => {
                for tp in partitions {
                    self.paused.remove(tp);
                    self.cursors.retain(|c| &c.tp != tp);
                    let Some(log) = self.inner.partition_log(tp) else {
                        continue;
                    };
                    let start = self
                        .group
                        .offsets
                        .get(tp)
                        .unwrap_or(0)
                        .min(log.end_offset());
                    let (offset, pos) = log.locate(start);
                    self.cursors.push(PartitionCursor {
                        tp: tp.clone(),
                        log,
                        fetch_pos: pos,
                        fetch_offset: offset,
                        skip_until: start,
                        buffered: VecDeque::new(),
                    });
                }
            }
            ConsumerEvent::Revoked { partitions, .. } => {
                self.cursors.retain(|c| !partitions.contains(&c.tp));
                for tp in partitions {
                    self.paused.remove(tp);
                }
            }
            ConsumerEvent::Message(_) => {}
        }
        Some(event)
    }

    /// The next buffered record of an unpaused partition, taking partitions in turn.
    fn take_buffered(&mut self) -> Option<Message> {
        let n = self.cursors.len();
        for i in 0..n {
            let idx = (self.next_cursor + i) % n;
            let cursor = &mut self.cursors[idx];
            if cursor.buffered.is_empty() || self.paused.contains(&cursor.tp) {
                continue;
            }
            self.next_cursor = (idx + 1) % n;
            return cursor.buffered.pop_front();
        }
        None
    }

    fn readable(&self, cursor: &PartitionCursor) -> bool {
        cursor.buffered.is_empty()
            && !self.paused.contains(&cursor.tp)
            && cursor.fetch_pos < cursor.log.end_pos()
    }

    /// Reads a chunk from every unpaused partition with nothing buffered and new records.
    /// Returns whether any cursor moved.
    async fn fetch(&mut self) -> Result<bool, BusError> {
        let jobs: Vec<(usize, Arc<PartitionLog>, u64, u64)> = self
            .cursors
            .iter()
            .enumerate()
            .filter(|(_, c)| self.readable(c))
            .map(|(i, c)| (i, c.log.clone(), c.fetch_pos, c.fetch_offset))
            .collect();
        if jobs.is_empty() {
            return Ok(false);
        }
        let max_bytes = self.inner.config.fetch_bytes;
        // Cancel-safe: the cursors change only after the read has completed.
        let results = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .map(|(i, log, pos, offset)| (i, log.read(pos, offset, max_bytes)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| BusError::Log {
            path: self.inner.dir.display().to_string(),
            detail: format!("log reader panicked: {e}"),
        })?;
        let mut moved = false;
        for (i, result) in results {
            let (messages, pos) = result?;
            let cursor = &mut self.cursors[i];
            moved |= pos > cursor.fetch_pos;
            cursor.fetch_pos = pos;
            cursor.fetch_offset += messages.len() as u64;
            let skip = cursor.skip_until;
            cursor
                .buffered
                .extend(messages.into_iter().filter(|m| m.offset >= skip));
        }
        Ok(moved)
    }

    fn leave(&mut self) {
        if !self.closed {
            self.closed = true;
            self.group.leave(&self.member);
        }
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn next(&mut self) -> Result<ConsumerEvent, BusError> {
        loop {
            if self.closed {
                return Err(BusError::Closed);
            }
            if let Some(event) = self.take_event() {
                return Ok(event);
            }
            if let Some(message) = self.take_buffered() {
                return Ok(ConsumerEvent::Message(message));
            }
            if self.fetch().await? {
                continue;
            }
            // Nothing to do: register for wake-ups first, then re-check, then sleep.
            let inner = self.inner.clone();
            let member = self.member.clone();
            let data = inner.data_written.notified();
            let event = member.wake.notified();
            tokio::pin!(data, event);
            data.as_mut().enable();
            event.as_mut().enable();
            if !member.state().events.is_empty() || self.cursors.iter().any(|c| self.readable(c)) {
                continue;
            }
            tokio::select! {
                _ = data => {}
                _ = event => {}
            }
        }
    }

    async fn commit(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<(), BusError> {
        if self.closed {
            return Err(BusError::Closed);
        }
        if offsets.is_empty() {
            return Ok(());
        }
        self.group.commit_in_memory(&self.member, offsets)?;
        self.group
            .offsets
            .persist_async(self.inner.config.sync.fsync_offsets())
            .await
    }

    async fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), BusError> {
        if self.closed {
            return Err(BusError::Closed);
        }
        self.paused.extend(partitions.iter().cloned());
        Ok(())
    }

    async fn resume(&mut self, partitions: &[TopicPartition]) -> Result<(), BusError> {
        if self.closed {
            return Err(BusError::Closed);
        }
        for tp in partitions {
            self.paused.remove(tp);
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        if self.closed {
            return Ok(());
        }
        self.leave();
        // Hand the partitions to the remaining members before returning.
        rebalance(self.inner.clone(), self.group.clone()).await;
        Ok(())
    }

    fn leases(&self) -> Arc<Leases> {
        self.member.leases.clone()
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.leave();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(rebalance(self.inner.clone(), self.group.clone()));
        }
    }
}
