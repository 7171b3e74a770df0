//! A group-less Kafka reader: partitions assigned by hand from the beginning, nothing
//! committed (the group id only satisfies librdkafka; no group is joined).

use async_trait::async_trait;
use futures::FutureExt;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use super::consumer::to_message;
use super::{KafkaBusConfig, SERVICE};
use crate::storage::bus::{BusError, Message, PartitionReader};

/// Records handed over per batch at most.
const MAX_BATCH: usize = 2_000;

pub(super) struct KafkaReader {
    consumer: StreamConsumer,
}

impl KafkaReader {
    pub(super) fn start(
        config: &KafkaBusConfig,
        topic: &str,
        partitions: &[u32],
    ) -> Result<Self, BusError> {
        let mut client = config.base();
        client
            .set(
                "group.id",
                format!("sembang-reader-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        let consumer: StreamConsumer = client
            .create()
            .map_err(|e| unavailable("create a reader", e))?;
        let mut assignment = TopicPartitionList::new();
        for &p in partitions {
            assignment
                .add_partition_offset(topic, p as i32, Offset::Beginning)
                .map_err(|e| unavailable("assign partitions", e))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| unavailable("assign partitions", e))?;
        Ok(KafkaReader { consumer })
    }
}

fn unavailable(op: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable {
        service: SERVICE,
        detail: format!("{op}: {e}"),
    }
}

#[async_trait]
impl PartitionReader for KafkaReader {
    async fn next_batch(&mut self) -> Result<Vec<Message>, BusError> {
        // `recv` is cancel-safe: a record is taken from the queue only when it resolves.
        let first = self
            .consumer
            .recv()
            .await
            .map_err(|e| unavailable("read", e))?;
        let mut batch = vec![to_message(&first)];
        drop(first);
        while batch.len() < MAX_BATCH {
            match self.consumer.recv().now_or_never() {
                Some(Ok(m)) => batch.push(to_message(&m)),
                Some(Err(e)) => return Err(unavailable("read", e)),
                None => break,
            }
        }
        Ok(batch)
    }
}
