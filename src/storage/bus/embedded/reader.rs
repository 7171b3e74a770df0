//! A group-less reader of embedded partition logs from their start: reads chunks on the
//! blocking pool and sleeps on the bus's write notifications when it has read everything.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::log::PartitionLog;
use crate::storage::bus::{BusError, Message, PartitionReader};

struct Cursor {
    log: Arc<PartitionLog>,
    pos: u64,
    offset: u64,
}

pub(super) struct EmbeddedReader {
    cursors: Vec<Cursor>,
    data_written: Arc<Notify>,
    fetch_bytes: usize,
}

impl EmbeddedReader {
    pub(super) fn new(
        logs: Vec<Arc<PartitionLog>>,
        data_written: Arc<Notify>,
        fetch_bytes: usize,
    ) -> Self {
        EmbeddedReader {
            cursors: logs
                .into_iter()
                .map(|log| {
                    // The log's first record (after the file header).
                    let (offset, pos) = log.locate(0);
                    Cursor { log, pos, offset }
                })
                .collect(),
            data_written,
            fetch_bytes,
        }
    }

    fn readable(&self) -> Vec<(usize, Arc<PartitionLog>, u64, u64)> {
        self.cursors
            .iter()
            .enumerate()
            .filter(|(_, c)| c.pos < c.log.end_pos())
            .map(|(i, c)| (i, c.log.clone(), c.pos, c.offset))
            .collect()
    }
}

#[async_trait]
impl PartitionReader for EmbeddedReader {
    async fn next_batch(&mut self) -> Result<Vec<Message>, BusError> {
        loop {
            let jobs = self.readable();
            if !jobs.is_empty() {
                let max = self.fetch_bytes;
                // Cancel-safe: cursors move only after the read completed.
                let results = tokio::task::spawn_blocking(move || {
                    jobs.into_iter()
                        .map(|(i, log, pos, offset)| (i, log.read(pos, offset, max)))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|e| super::unavailable(format!("log reader panicked: {e}")))?;
                let mut batch = Vec::new();
                for (i, result) in results {
                    let (messages, pos) = result?;
                    let cursor = &mut self.cursors[i];
                    cursor.pos = pos;
                    cursor.offset += messages.len() as u64;
                    batch.extend(messages);
                }
                if !batch.is_empty() {
                    return Ok(batch);
                }
                continue;
            }
            // Register for the wake-up before re-checking, so no write is missed.
            let notified = self.data_written.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.readable().is_empty() {
                continue;
            }
            notified.await;
        }
    }
}
