//! The event bus: keyed, partitioned, durable topics with consumer groups. Kafka in
//! production, an embedded on-disk log for the default profile; both pass the same
//! conformance suite (tests/bus_conformance.rs).
//!
//! Contract the engine relies on:
//! - `Producer::send` resolves only once the record is durable (Kafka: acks=all with
//!   idempotence; embedded: written and flushed to the partition log).
//! - A key always maps to the same partition ([`partitioner::partition_for`]), and records
//!   of one partition are delivered in offset order.
//! - Consumers in one group share a topic's partitions; each partition has one owner.
//!   Offsets are committed explicitly (never automatically), as the next offset to read;
//!   a new owner resumes at the committed offset, so uncommitted records are redelivered.
//! - Before a partition moves to another member, its current owner receives
//!   [`ConsumerEvent::Revoked`] and answers with the offsets to commit; the move waits for
//!   that answer (up to a deadline). Commit a revoked partition only through that answer:
//!   the embedded bus rejects commits for partitions the consumer does not own.
//! - `Consumer::next` returning an error is final for that consumer (transient broker
//!   outages are retried inside the backend): the owner closes it and subscribes anew.
//! - `close` delivers no `Revoked`: commit what is done before closing.
//! - New assignments start unpaused; `send_all` keeps the order of its records in both
//!   backends, but callers must not rely on order across partitions.
//! - The embedded log keeps every record (no retention or segment files yet): fine for the
//!   default profile and tests, not for production volumes.

pub mod dead_letter;
pub mod embedded;
mod error;
pub mod kafka;
pub mod leases;
pub mod partitioner;
pub mod read_written;
pub mod refused;

use std::fmt;
use std::sync::Arc;

pub use leases::{Leases, RevocationId};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::topics::{self, TopicNames};

pub use embedded::{EmbeddedBus, EmbeddedBusConfig, SyncPolicy};
pub use error::BusError;
pub use kafka::{KafkaBus, KafkaBusConfig};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)
    }
}

/// Record headers, in order; names may repeat as in Kafka.
pub type Headers = Vec<(String, Vec<u8>)>;

/// A record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    /// Decides the partition; must not be empty.
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Headers,
}

impl Record {
    pub fn new(
        topic: impl Into<String>,
        key: impl Into<Vec<u8>>,
        payload: impl Into<Vec<u8>>,
    ) -> Self {
        Record {
            topic: topic.into(),
            key: key.into(),
            payload: payload.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends the record to one explicit partition instead of the key's (used for
    /// commands that go to every partition).
    pub fn to_partition(self, partition: u32) -> PartitionedRecord {
        PartitionedRecord {
            record: self,
            partition,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionedRecord {
    pub record: Record,
    pub partition: u32,
}

/// Where a produced record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub partition: u32,
    pub offset: u64,
}

/// A consumed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Headers,
    /// Milliseconds since the Unix epoch at which the record was produced.
    pub timestamp_ms: i64,
}

impl Message {
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    /// Kept as the latest record per key (a changelog) rather than deleted by age.
    pub compacted: bool,
}

impl TopicSpec {
    /// Every topic of [`crate::topics::ALL`] under `names`, with `partitions` each.
    pub fn all(names: &TopicNames, partitions: u32, replication_factor: u32) -> Vec<TopicSpec> {
        topics::ALL
            .iter()
            .map(|&topic| TopicSpec {
                name: names.name(topic),
                partitions,
                replication_factor,
                compacted: topic.compacted,
            })
            .collect()
    }
}

/// The answer to a revocation: offsets (next offset to read) to commit before the
/// partitions move. Dropping it commits nothing more.
#[derive(Debug)]
pub struct RevokeAck {
    answer: oneshot::Sender<Vec<(TopicPartition, u64)>>,
    revocation: RevocationId,
}

impl RevokeAck {
    /// An ack for `revocation`, the entry the bus recorded in the consumer's [`Leases`]
    /// with the deadline until which it waits for the ack.
    pub fn new(
        revocation: RevocationId,
    ) -> (RevokeAck, oneshot::Receiver<Vec<(TopicPartition, u64)>>) {
        let (answer, rx) = oneshot::channel();
        (RevokeAck { answer, revocation }, rx)
    }

    /// The revocation to settle in the consumer's [`Leases`] once the partitions are
    /// released.
    pub fn revocation(&self) -> RevocationId {
        self.revocation
    }

    pub fn commit(self, offsets: Vec<(TopicPartition, u64)>) {
        // The bus may have stopped waiting (deadline passed); nothing to do then.
        let _ = self.answer.send(offsets);
    }
}

#[derive(Debug)]
pub enum ConsumerEvent {
    Message(Message),
    /// These partitions are now this consumer's; records follow from their committed offsets.
    Assigned(Vec<TopicPartition>),
    /// These partitions are leaving this consumer: finish or abandon their work, then
    /// answer through `ack` with the offsets to commit.
    Revoked {
        partitions: Vec<TopicPartition>,
        ack: RevokeAck,
    },
}

#[async_trait]
pub trait Producer: Send + Sync {
    /// Resolves once the record is durable in the bus.
    async fn send(&self, record: Record) -> Result<Delivery, BusError>;

    /// Sends to an explicit partition.
    async fn send_to(&self, record: PartitionedRecord) -> Result<Delivery, BusError>;

    /// Sends all records concurrently; resolves when all are durable, or with the first error
    /// (some records may then be durable and others not: callers retry the whole batch,
    /// which consumers absorb by deduplication).
    async fn send_all(&self, records: Vec<Record>) -> Result<Vec<Delivery>, BusError> {
        futures::future::try_join_all(records.into_iter().map(|r| self.send(r))).await
    }
}

#[async_trait]
pub trait Consumer: Send {
    /// The next message or group event. Cancel-safe.
    async fn next(&mut self) -> Result<ConsumerEvent, BusError>;

    /// Commits, per partition, the next offset to read: everything before it is done.
    async fn commit(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<(), BusError>;

    /// Stops delivering records of these partitions until resumed (backpressure); the
    /// consumer stays in its group.
    async fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), BusError>;

    async fn resume(&mut self, partitions: &[TopicPartition]) -> Result<(), BusError>;

    /// Leaves the group; its partitions go to the other members. Uncommitted work is
    /// redelivered to them.
    async fn close(self: Box<Self>) -> Result<(), BusError>;

    /// The revocations under way and their deadlines, recorded when the bus revokes; the
    /// owner of the consumer settles them once it has released the partitions.
    fn leases(&self) -> Arc<Leases>;
}

/// Topics subscribed together are co-partitioned, which needs one partition count.
pub(crate) fn require_one_partition_count(
    group: &str,
    counts: &[(&String, u32)],
) -> Result<(), BusError> {
    match counts {
        [(_, first), rest @ ..] if rest.iter().any(|(_, n)| n != first) => {
            let listed: Vec<String> = counts.iter().map(|(t, n)| format!("{t}: {n}")).collect();
            Err(BusError::Group {
                group: group.to_string(),
                detail: format!(
                    "topics subscribed together are co-partitioned and need the same partition count ({})",
                    listed.join(", ")
                ),
            })
        }
        _ => Ok(()),
    }
}

#[async_trait]
pub trait Bus: Send + Sync {
    /// Creates missing topics; an existing topic with another partition count is an error.
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<(), BusError>;

    async fn partition_count(&self, topic: &str) -> Result<u32, BusError>;

    fn producer(&self) -> Arc<dyn Producer>;

    /// Joins consumer group `group` on `topics`. Assignments arrive as events. Several
    /// topics are co-partitioned: partition N of each goes to the same member, so records
    /// keyed alike in them have one owner; they must have the same partition count.
    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn Consumer>, BusError>;

    /// The next offset to be written, per partition (the high watermark), for lag metrics.
    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, BusError>;

    /// The group's committed offset per partition, `None` where nothing was committed.
    async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<Option<u64>>, BusError>;

    /// Reads `partitions` of `topic` from their first record on, without joining a group
    /// (state rebuilt from a changelog: nothing is committed, nobody else is affected).
    async fn read_from_start(
        &self,
        topic: &str,
        partitions: &[u32],
    ) -> Result<Box<dyn PartitionReader>, BusError>;
}

/// A group-less reader of some partitions of one topic.
#[async_trait]
pub trait PartitionReader: Send {
    /// The next records, at least one, each partition's in offset order; waits for new
    /// records when it has read everything. Cancel-safe.
    async fn next_batch(&mut self) -> Result<Vec<Message>, BusError>;
}
