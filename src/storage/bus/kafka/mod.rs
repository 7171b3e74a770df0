//! The Kafka bus (rdkafka / librdkafka).
//!
//! - Producer: one `FutureProducer` per bus with `acks=all`, idempotence, the `murmur2_random`
//!   partitioner (the same placement as [`partition_for`](super::partitioner::partition_for)),
//!   a small linger for batching and a bounded `message.timeout.ms`, so a dead broker ends in a
//!   typed error instead of a hang.
//! - Admin and metadata calls are blocking librdkafka calls with timeouts, run on the blocking
//!   pool.
//! - Consumers: see `consumer.rs` (one `BaseConsumer` per consumer on its own OS thread).

mod consumer;
mod reader;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

pub use consumer::KafkaConsumer;

use super::{
    Bus, BusError, Consumer, Delivery, PartitionReader, PartitionedRecord, Producer, Record,
    TopicSpec,
};

const SERVICE: &str = "kafka";

#[derive(Clone, Debug)]
pub struct KafkaBusConfig {
    /// `bootstrap.servers`: comma-separated host:port list.
    pub brokers: String,
    pub client_id: String,
    /// Bound on admin, metadata and offset calls (and on each produce request).
    pub request_timeout: Duration,
    /// `message.timeout.ms`: how long a record may wait for its broker ack, retries included,
    /// before `send` fails.
    pub message_timeout: Duration,
    /// `linger.ms`: how long the producer waits to fill a batch.
    pub linger: Duration,
    /// How long a consumer's rebalance waits for the engine's [`RevokeAck`](super::RevokeAck)
    /// before letting the partitions go without committing more.
    pub revoke_timeout: Duration,
    /// `partition.assignment.strategy`. `cooperative-sticky` (the default) revokes only the
    /// partitions that move; `range` / `roundrobin` revoke everything on every rebalance.
    pub assignment_strategy: String,
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms`; librdkafka's
    /// defaults when `None`.
    pub session_timeout: Option<Duration>,
    pub heartbeat_interval: Option<Duration>,
    pub max_poll_interval: Option<Duration>,
    /// Records a consumer holds ahead of the engine before it pauses fetching.
    pub max_buffered_messages: usize,
    /// Extra librdkafka properties for every client (security settings and the like).
    pub properties: Vec<(String, String)>,
}

impl KafkaBusConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaBusConfig {
            brokers: brokers.into(),
            client_id: "sembang".into(),
            request_timeout: Duration::from_secs(10),
            message_timeout: Duration::from_secs(30),
            linger: Duration::from_millis(5),
            revoke_timeout: Duration::from_secs(30),
            assignment_strategy: "cooperative-sticky".into(),
            session_timeout: None,
            heartbeat_interval: None,
            max_poll_interval: None,
            max_buffered_messages: 2048,
            properties: Vec::new(),
        }
    }

    /// The largest record the producer takes: librdkafka's `message.max.bytes` (default
    /// 1,000,000) when set in `properties`.
    fn max_message_bytes(&self) -> usize {
        self.properties
            .iter()
            .rev()
            .find(|(key, _)| key == "message.max.bytes")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(1_000_000)
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

/// Shared by the clients of one bus: when librdkafka last failed to reach a broker (since
/// the last successful call), so a timeout can be told apart from an unreachable cluster.
#[derive(Default)]
pub(crate) struct ClientState {
    unreachable_since: Mutex<Option<Instant>>,
}

impl ClientState {
    fn failed_to_connect(&self) {
        *self
            .unreachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn up(&self) {
        *self
            .unreachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether a broker connection failed within `window` with no success since.
    fn down_within(&self, window: Duration) -> bool {
        self.unreachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() <= window)
    }
}

/// librdkafka logs and errors go to `tracing`; connection failures are remembered.
#[derive(Clone, Default)]
pub(crate) struct BusContext {
    state: Arc<ClientState>,
}

impl ClientContext for BusContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac} {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::Resolve
            )
        ) {
            self.state.failed_to_connect();
        }
        tracing::warn!(target: "librdkafka", error = %error, "{reason}");
    }
}

impl ConsumerContext for BusContext {}

/// Maps a librdkafka error to the bus's error type.
pub(crate) fn map_error(
    error: &KafkaError,
    operation: &'static str,
    after: Duration,
    topic: Option<&str>,
    state: &ClientState,
) -> BusError {
    use RDKafkaErrorCode as C;
    let unavailable = |detail: String| BusError::Unavailable {
        service: SERVICE,
        detail,
    };
    let code = match error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    match code {
        Some(C::MessageTimedOut | C::OperationTimedOut | C::RequestTimedOut | C::TimedOutQueue) => {
            if state.down_within(after + Duration::from_secs(1)) {
                unavailable(format!(
                    "{operation}: no broker reachable (connections fail) and {error}"
                ))
            } else {
                BusError::Timeout {
                    service: SERVICE,
                    operation,
                    after,
                }
            }
        }
        Some(
            C::AllBrokersDown
            | C::BrokerTransportFailure
            | C::Resolve
            | C::BrokerNotAvailable
            | C::NetworkException
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::NotCoordinator
            | C::NotController
            | C::BrokerDestroy,
        ) => unavailable(format!("{operation}: {error}")),
        Some(C::UnknownTopic | C::UnknownTopicOrPartition) => {
            BusError::UnknownTopic(topic.unwrap_or("?").to_string())
        }
        Some(
            C::UnknownPartition
            | C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidTimestamp
            | C::BadMessage
            | C::MessageBatchTooLarge
            | C::InvalidTopic
            | C::InvalidPartitions
            | C::InvalidReplicationFactor
            | C::InvalidReplicaAssignment
            | C::InvalidConfig
            | C::InvalidRequest
            | C::PolicyViolation
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::InvalidArgument,
        ) => BusError::Rejected {
            service: SERVICE,
            detail: format!("{operation}: {error}"),
        },
        _ => unavailable(format!("{operation}: {error}")),
    }
}

/// The Kafka bus. Cheap to share behind an `Arc<dyn Bus>`.
pub struct KafkaBus {
    config: KafkaBusConfig,
    context: BusContext,
    producer: Arc<FutureProducer<BusContext>>,
    admin: AdminClient<BusContext>,
    /// One non-subscribed client per group, to read committed offsets (lag metrics).
    offset_readers: Mutex<HashMap<String, Arc<BaseConsumer<BusContext>>>>,
}

impl KafkaBus {
    /// Creates the clients. Does not contact the brokers: an unreachable cluster shows up as
    /// a typed error on the first operation.
    pub fn new(config: KafkaBusConfig) -> Result<KafkaBus, BusError> {
        let context = BusContext::default();
        let mut producer_config = config.base();
        producer_config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", millis(config.linger))
            .set("message.timeout.ms", millis(config.message_timeout))
            .set(
                "request.timeout.ms",
                millis(config.request_timeout.min(config.message_timeout)),
            );
        let producer: FutureProducer<BusContext> = producer_config
            .create_with_context(context.clone())
            .map_err(|e| config_error("producer", e))?;
        let admin: AdminClient<BusContext> = config
            .base()
            .create_with_context(context.clone())
            .map_err(|e| config_error("admin client", e))?;
        Ok(KafkaBus {
            config,
            context,
            producer: Arc::new(producer),
            admin,
            offset_readers: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &KafkaBusConfig {
        &self.config
    }

    fn error(&self, error: &KafkaError, operation: &'static str, topic: Option<&str>) -> BusError {
        map_error(
            error,
            operation,
            self.config.request_timeout,
            topic,
            &self.context.state,
        )
    }

    /// Cluster metadata for all topics (not per topic, which would make librdkafka track
    /// topics that may not exist).
    async fn metadata(&self, operation: &'static str) -> Result<Metadata, BusError> {
        let producer = self.producer.clone();
        let timeout = self.config.request_timeout;
        let result = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Timeout::After(timeout))
        })
        .await
        .map_err(|e| unavailable(format!("{operation}: metadata task failed: {e}")))?;
        match result {
            Ok(metadata) => {
                self.context.state.up();
                Ok(metadata)
            }
            Err(e) => Err(self.error(&e, operation, None)),
        }
    }

    /// Partitions of `topic` in `metadata`; `None` when the topic does not exist.
    fn partitions_in(metadata: &Metadata, topic: &str) -> Option<u32> {
        let t = metadata.topics().iter().find(|t| t.name() == topic)?;
        match t.error() {
            Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
                None
            }
            _ if t.partitions().is_empty() => None,
            _ => Some(t.partitions().len() as u32),
        }
    }

    /// Whether every listed topic is visible with its partition count and a leader for each
    /// partition.
    fn ready_in(metadata: &Metadata, specs: &[TopicSpec]) -> bool {
        specs.iter().all(|spec| {
            metadata.topics().iter().any(|t| {
                t.name() == spec.name
                    && t.error().is_none()
                    && t.partitions().len() as u32 == spec.partitions
                    && t.partitions()
                        .iter()
                        .all(|p| p.error().is_none() && p.leader() >= 0)
            })
        })
    }

    fn check_partitions(metadata: &Metadata, specs: &[TopicSpec]) -> Result<(), BusError> {
        for spec in specs {
            if let Some(actual) = Self::partitions_in(metadata, &spec.name) {
                if actual != spec.partitions {
                    return Err(BusError::PartitionMismatch {
                        topic: spec.name.clone(),
                        expected: spec.partitions,
                        actual,
                    });
                }
            }
        }
        Ok(())
    }

    fn offset_reader(&self, group: &str) -> Result<Arc<BaseConsumer<BusContext>>, BusError> {
        let mut readers = self
            .offset_readers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(reader) = readers.get(group) {
            return Ok(reader.clone());
        }
        let mut config = self.config.base();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let reader: BaseConsumer<BusContext> = config
            .create_with_context(self.context.clone())
            .map_err(|e| config_error("offset reader", e))?;
        let reader = Arc::new(reader);
        readers.insert(group.to_string(), reader.clone());
        Ok(reader)
    }
}

/// Errors of a partition whose leadership is moving or not yet established.
fn retriable(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::CoordinatorNotAvailable
        )
    )
}

fn unavailable(detail: String) -> BusError {
    BusError::Unavailable {
        service: SERVICE,
        detail,
    }
}

fn config_error(what: &str, error: KafkaError) -> BusError {
    BusError::Rejected {
        service: SERVICE,
        detail: format!("invalid {what} configuration: {error}"),
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<(), BusError> {
        const OP: &str = "create topics";
        let metadata = self.metadata(OP).await?;
        Self::check_partitions(&metadata, specs)?;
        let missing: Vec<&TopicSpec> = specs
            .iter()
            .filter(|s| Self::partitions_in(&metadata, &s.name).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let new_topics: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|s| {
                let topic = NewTopic::new(
                    &s.name,
                    s.partitions as i32,
                    TopicReplication::Fixed(s.replication_factor.max(1) as i32),
                );
                if s.compacted {
                    topic.set("cleanup.policy", "compact")
                } else {
                    topic
                }
            })
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(self.config.request_timeout))
            .operation_timeout(Some(self.config.request_timeout));
        let results = tokio::time::timeout(
            self.config.request_timeout + Duration::from_secs(1),
            self.admin.create_topics(new_topics.iter(), &options),
        )
        .await
        .map_err(|_| BusError::Timeout {
            service: SERVICE,
            operation: OP,
            after: self.config.request_timeout,
        })?
        .map_err(|e| self.error(&e, OP, None))?;
        for result in results {
            match result {
                Ok(_) => {}
                // Someone else created it meanwhile: its partition count is checked below.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(self.error(&KafkaError::AdminOp(code), OP, Some(&topic)))
                }
            }
        }
        // Wait until the new topics are usable (metadata propagated, leaders elected), so a
        // producer right after this call does not race the creation.
        let missing: Vec<TopicSpec> = missing.into_iter().cloned().collect();
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            let metadata = self.metadata(OP).await?;
            Self::check_partitions(&metadata, &missing)?;
            if Self::ready_in(&metadata, &missing) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BusError::Timeout {
                    service: SERVICE,
                    operation: OP,
                    after: self.config.request_timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, BusError> {
        let metadata = self.metadata("fetch metadata").await?;
        Self::partitions_in(&metadata, topic).ok_or_else(|| BusError::UnknownTopic(topic.into()))
    }

    fn producer(&self) -> Arc<dyn Producer> {
        Arc::new(KafkaProducer {
            producer: self.producer.clone(),
            context: self.context.clone(),
            message_timeout: self.config.message_timeout,
            max_message_bytes: self.config.max_message_bytes(),
        })
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn Consumer>, BusError> {
        if group.is_empty() || topics.is_empty() {
            return Err(BusError::Group {
                group: group.to_string(),
                detail: "a subscription needs a group name and at least one topic".into(),
            });
        }
        let metadata = self.metadata("subscribe").await?;
        let mut counts = Vec::with_capacity(topics.len());
        for topic in topics {
            match Self::partitions_in(&metadata, topic) {
                Some(count) => counts.push((topic, count)),
                None => return Err(BusError::UnknownTopic(topic.clone())),
            }
        }
        super::require_one_partition_count(group, &counts)?;
        let consumer =
            KafkaConsumer::start(&self.config, self.context.clone(), group, topics).await?;
        Ok(Box::new(consumer))
    }

    async fn read_from_start(
        &self,
        topic: &str,
        partitions: &[u32],
    ) -> Result<Box<dyn PartitionReader>, BusError> {
        let count = self.partition_count(topic).await?;
        if let Some(p) = partitions.iter().find(|p| **p >= count) {
            return Err(BusError::UnknownTopic(format!("{topic} partition {p}")));
        }
        Ok(Box::new(reader::KafkaReader::start(
            &self.config,
            topic,
            partitions,
        )?))
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, BusError> {
        const OP: &str = "fetch end offsets";
        let partitions = self.partition_count(topic).await?;
        let producer = self.producer.clone();
        let timeout = self.config.request_timeout;
        let name = topic.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + timeout;
            (0..partitions as i32)
                .map(|p| loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match producer.client().fetch_watermarks(
                        &name,
                        p,
                        Timeout::After(left.max(Duration::from_millis(1))),
                    ) {
                        Ok((_, high)) => break Ok(high.max(0) as u64),
                        // Leadership still settling (e.g. right after creation): retry.
                        Err(e) if retriable(&e) && !left.is_zero() => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        Err(e) => break Err(e),
                    }
                })
                .collect::<Result<Vec<u64>, KafkaError>>()
        })
        .await
        .map_err(|e| unavailable(format!("{OP}: task failed: {e}")))?;
        result.map_err(|e| self.error(&e, OP, Some(topic)))
    }

    async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<Option<u64>>, BusError> {
        const OP: &str = "fetch committed offsets";
        let partitions = self.partition_count(topic).await?;
        let reader = self.offset_reader(group)?;
        let timeout = self.config.request_timeout;
        let name = topic.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let mut list = TopicPartitionList::with_capacity(partitions as usize);
            for p in 0..partitions as i32 {
                list.add_partition(&name, p);
            }
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match reader.committed_offsets(
                    list.clone(),
                    Timeout::After(left.max(Duration::from_millis(1))),
                ) {
                    Err(e) if retriable(&e) && !left.is_zero() => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    other => {
                        // Nobody polls this client otherwise: drop its queued events.
                        while reader.poll(Duration::ZERO).is_some() {}
                        break other;
                    }
                }
            }
        })
        .await
        .map_err(|e| unavailable(format!("{OP}: task failed: {e}")))?;
        let list = result.map_err(|e| self.error(&e, OP, Some(topic)))?;
        let mut out = vec![None; partitions as usize];
        for element in list.elements_for_topic(topic) {
            if let (Some(slot), Offset::Offset(o)) =
                (out.get_mut(element.partition() as usize), element.offset())
            {
                *slot = Some(o.max(0) as u64);
            }
        }
        Ok(out)
    }
}

struct KafkaProducer {
    producer: Arc<FutureProducer<BusContext>>,
    context: BusContext,
    message_timeout: Duration,
    max_message_bytes: usize,
}

/// What librdkafka adds to a record's key, payload and headers when it checks the size
/// (record framing), rounded up.
const RECORD_OVERHEAD_BYTES: usize = 512;

impl KafkaProducer {
    async fn produce(&self, record: &Record, partition: Option<u32>) -> Result<Delivery, BusError> {
        const OP: &str = "produce";
        // The record's own size is its fault, so it is refused here, as such. A size error
        // from the broker (a topic's lower limit) is a setting and stays `Rejected`.
        let headers: usize = record.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        let size = record.key.len() + record.payload.len() + headers + RECORD_OVERHEAD_BYTES;
        if size > self.max_message_bytes {
            return Err(BusError::RecordRefused {
                service: SERVICE,
                detail: format!(
                    "a record of about {size} bytes exceeds message.max.bytes ({})",
                    self.max_message_bytes
                ),
            });
        }
        let mut future_record = FutureRecord::to(&record.topic)
            .key(&record.key)
            .payload(&record.payload);
        if let Some(p) = partition {
            future_record = future_record.partition(p as i32);
        }
        if !record.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (name, value) in &record.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value),
                });
            }
            future_record = future_record.headers(headers);
        }
        match self
            .producer
            .send(future_record, Timeout::After(self.message_timeout))
            .await
        {
            Ok(delivery) => {
                self.context.state.up();
                Ok(Delivery {
                    partition: delivery.partition as u32,
                    offset: delivery.offset as u64,
                })
            }
            Err((error, _)) => Err(map_error(
                &error,
                OP,
                self.message_timeout,
                Some(&record.topic),
                &self.context.state,
            )),
        }
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send(&self, record: Record) -> Result<Delivery, BusError> {
        if record.key.is_empty() {
            return Err(BusError::RecordRefused {
                service: SERVICE,
                detail:
                    "a keyed record needs a non-empty key (use send_to for an explicit partition)"
                        .into(),
            });
        }
        self.produce(&record, None).await
    }

    async fn send_to(&self, record: PartitionedRecord) -> Result<Delivery, BusError> {
        self.produce(&record.record, Some(record.partition)).await
    }
}
