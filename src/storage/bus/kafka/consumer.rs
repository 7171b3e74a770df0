//! Kafka consumer: a `BaseConsumer` driven by a dedicated OS thread (the poll thread), so
//! librdkafka's blocking calls and rebalance callbacks never run on a tokio worker.
//!
//! - Records and group events go to the async side through one ordered channel. Its depth is
//!   counted; at `max_buffered_messages` the poll thread stops taking records (librdkafka keeps
//!   prefetching into its own bounded queue) until the engine is down to half; if that takes
//!   longer than a second it pauses every assigned partition and polls again, so rebalances
//!   and `max.poll.interval.ms` are served however slow the engine is.
//! - Revocation: the rebalance callback (on the poll thread) sends `Revoked{partitions, ack}`
//!   and blocks until the ack arrives or `revoke_timeout` passes, serving commit/pause/resume
//!   commands meanwhile; it commits the acked offsets synchronously before librdkafka releases
//!   the partitions, so the next owner starts exactly there. Records of revoked partitions
//!   still queued for the engine are dropped (they were not acked, so they are redelivered).
//! - Commit, pause, resume and close are commands to the poll thread, each answered.
//! - Pause is also applied on the async side: records of a paused partition already queued
//!   are held back and delivered, in order, after resume.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use super::{millis, BusContext, KafkaBusConfig, SERVICE};
use crate::storage::bus::{
    BusError, Consumer, ConsumerEvent, Leases, Message, RevokeAck, TopicPartition,
};

/// How long one poll waits for a record; also the latency of commands when idle.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How long the poll thread may stop polling while the engine catches up before it pauses
/// the partitions instead (far below `max.poll.interval.ms`; also bounds how long a pending
/// rebalance waits).
const HOLD_LIMIT: Duration = Duration::from_secs(1);

enum Item {
    Event(ConsumerEvent),
    Failed(BusError),
}

type Reply = oneshot::Sender<Result<(), BusError>>;

enum Command {
    Commit(Vec<(TopicPartition, u64)>, Reply),
    Pause(Vec<TopicPartition>, Reply),
    Resume(Vec<TopicPartition>, Reply),
    Close(oneshot::Sender<()>),
}

/// Shared by the poll thread and the async side.
#[derive(Default)]
struct Shared {
    /// Items sent and not yet received.
    in_flight: AtomicUsize,
    /// Partitions revoked whose `Revoked` event the async side has not taken yet: their
    /// queued records are dropped.
    revoking: Mutex<HashSet<TopicPartition>>,
    leases: Arc<Leases>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct PollState {
    assigned: BTreeSet<TopicPartition>,
    user_paused: HashSet<TopicPartition>,
    /// Fetching paused because the engine is behind.
    flow_paused: bool,
    closing: bool,
    close_reply: Option<oneshot::Sender<()>>,
    /// The async side is gone (dropped without close).
    disconnected: bool,
}

struct PollContext {
    base: BusContext,
    group: String,
    events: tokio_mpsc::UnboundedSender<Item>,
    shared: Arc<Shared>,
    commands: Mutex<mpsc::Receiver<Command>>,
    state: Mutex<PollState>,
    revoke_timeout: Duration,
    request_timeout: Duration,
}

impl ClientContext for PollContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.base.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }
}

impl ConsumerContext for PollContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => self.on_revoke(consumer, partitions_of(list)),
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "consumer group rebalance error")
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let partitions = partitions_of(list);
            if partitions.is_empty() {
                return;
            }
            let flow_paused = {
                let mut state = lock(&self.state);
                state.assigned.extend(partitions.iter().cloned());
                state.flow_paused
            };
            // A partition paused before a rebalance and assigned to this consumer again
            // keeps librdkafka's pause flag: state it explicitly, as the async side
            // assumes (a new assignment starts unpaused unless flow control holds it).
            let result = if flow_paused {
                consumer.pause(&list_of(&partitions))
            } else {
                consumer.resume(&list_of(&partitions))
            };
            if let Err(e) = result {
                tracing::warn!(group = %self.group, error = %e, flow_paused, "cannot set the pause state of new partitions");
            }
            self.emit(Item::Event(ConsumerEvent::Assigned(partitions)));
        }
    }
}

impl PollContext {
    /// Sends an item to the async side; false if it is gone.
    fn emit(&self, item: Item) -> bool {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if self.events.send(item).is_err() {
            self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            lock(&self.state).disconnected = true;
            return false;
        }
        true
    }

    fn on_revoke(&self, consumer: &BaseConsumer<Self>, partitions: Vec<TopicPartition>) {
        if partitions.is_empty() {
            return;
        }
        {
            let mut state = lock(&self.state);
            for tp in &partitions {
                state.assigned.remove(tp);
                state.user_paused.remove(tp);
            }
            if state.closing || state.disconnected {
                return; // leaving: uncommitted work is redelivered to the next owner
            }
        }
        lock(&self.shared.revoking).extend(partitions.iter().cloned());
        // Lost partitions may have a new owner already: their deadline has passed.
        let lost = consumer.assignment_lost();
        let deadline = Instant::now()
            + if lost {
                Duration::ZERO
            } else {
                self.revoke_timeout
            };
        let revocation = self.shared.leases.ending(&partitions, deadline);
        let (ack, mut answer) = RevokeAck::new(revocation);
        if !self.emit(Item::Event(ConsumerEvent::Revoked {
            partitions: partitions.clone(),
            ack,
        })) {
            return;
        }
        if lost {
            tracing::warn!(group = %self.group, ?partitions,
                "partitions lost (session timed out); their offsets can no longer be committed");
            return;
        }
        loop {
            match answer.try_recv() {
                Ok(offsets) => {
                    if !offsets.is_empty() {
                        if let Err(e) = consumer.commit(&list_of(&offsets), CommitMode::Sync) {
                            tracing::error!(group = %self.group, error = %e, ?offsets,
                                "cannot commit the offsets acked on revocation");
                        }
                    }
                    return;
                }
                Err(oneshot::error::TryRecvError::Closed) => return,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if Instant::now() >= deadline {
                tracing::warn!(group = %self.group, ?partitions, after = ?self.revoke_timeout,
                    "revocation not acknowledged in time; releasing the partitions without a commit");
                return;
            }
            // The engine may commit or pause before it acks: keep serving it.
            let command = lock(&self.commands).recv_timeout(Duration::from_millis(1));
            match command {
                Ok(command) => self.handle(consumer, command),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    lock(&self.state).disconnected = true;
                    return;
                }
            }
            if lock(&self.state).closing {
                return;
            }
        }
    }

    fn handle(&self, consumer: &BaseConsumer<Self>, command: Command) {
        match command {
            Command::Commit(offsets, reply) => {
                let result = consumer
                    .commit(&list_of(&offsets), CommitMode::Sync)
                    .map_err(|e| self.group_error(&e, "commit"));
                let _ = reply.send(result);
            }
            Command::Pause(partitions, reply) => {
                let mut state = lock(&self.state);
                let owned: Vec<_> = partitions
                    .into_iter()
                    .filter(|tp| state.assigned.contains(tp))
                    .collect();
                state.user_paused.extend(owned.iter().cloned());
                drop(state);
                let result = if owned.is_empty() {
                    Ok(())
                } else {
                    consumer
                        .pause(&list_of(&owned))
                        .map_err(|e| self.group_error(&e, "pause"))
                };
                let _ = reply.send(result);
            }
            Command::Resume(partitions, reply) => {
                let mut state = lock(&self.state);
                for tp in &partitions {
                    state.user_paused.remove(tp);
                }
                let owned: Vec<_> = partitions
                    .into_iter()
                    .filter(|tp| state.assigned.contains(tp))
                    .collect();
                let flow_paused = state.flow_paused;
                drop(state);
                let result = if owned.is_empty() || flow_paused {
                    Ok(()) // resumed with the others when the engine catches up
                } else {
                    consumer
                        .resume(&list_of(&owned))
                        .map_err(|e| self.group_error(&e, "resume"))
                };
                let _ = reply.send(result);
            }
            Command::Close(reply) => {
                let mut state = lock(&self.state);
                state.closing = true;
                state.close_reply = Some(reply);
            }
        }
    }

    fn group_error(&self, error: &KafkaError, operation: &'static str) -> BusError {
        match super::map_error(
            error,
            operation,
            self.request_timeout,
            None,
            &self.base.state,
        ) {
            e @ (BusError::Timeout { .. } | BusError::Unavailable { .. }) => e,
            _ => BusError::Group {
                group: self.group.clone(),
                detail: format!("{operation}: {error}"),
            },
        }
    }

    /// Flow control, when the engine has `limit` items queued: first stop taking records
    /// (librdkafka keeps its prefetched ones, so catching up costs nothing); if that lasts
    /// longer than [`HOLD_LIMIT`], pause every assigned partition and poll again, so
    /// rebalances and `max.poll.interval.ms` are served however slow the engine is. Resumes
    /// (except partitions the engine paused) once it is down to half the limit.
    fn flow_control(
        &self,
        consumer: &BaseConsumer<Self>,
        limit: usize,
        holding_since: &mut Option<Instant>,
    ) -> Flow {
        let queued = self.shared.in_flight.load(Ordering::Acquire);
        let mut state = lock(&self.state);
        let pause = if state.flow_paused {
            if queued > limit / 2 {
                return Flow::Poll;
            }
            false
        } else if queued >= limit {
            let since = *holding_since.get_or_insert_with(Instant::now);
            if since.elapsed() < HOLD_LIMIT {
                return Flow::Hold;
            }
            true
        } else {
            *holding_since = None;
            return Flow::Poll;
        };
        *holding_since = None;
        state.flow_paused = pause;
        let partitions: Vec<_> = state
            .assigned
            .iter()
            .filter(|tp| !state.user_paused.contains(tp))
            .cloned()
            .collect();
        drop(state);
        if !partitions.is_empty() {
            let list = list_of(&partitions);
            let result = if pause {
                consumer.pause(&list)
            } else {
                consumer.resume(&list)
            };
            if let Err(e) = result {
                tracing::warn!(group = %self.group, error = %e, pause, "flow control failed");
            }
        }
        Flow::Poll
    }
}

enum Flow {
    Poll,
    Hold,
}

fn partitions_of(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition() as u32))
        .collect()
}

/// A partition list; with offsets when given `(tp, offset)` pairs.
fn list_of<T: AsTopicPartition>(items: &[T]) -> TopicPartitionList {
    let mut list = TopicPartitionList::with_capacity(items.len());
    for item in items {
        let tp = item.tp();
        match item.offset() {
            Some(offset) => {
                // Only fails for an invalid offset value, which u64 -> i64 cannot produce.
                let _ = list.add_partition_offset(
                    &tp.topic,
                    tp.partition as i32,
                    Offset::Offset(offset as i64),
                );
            }
            None => {
                list.add_partition(&tp.topic, tp.partition as i32);
            }
        }
    }
    list
}

trait AsTopicPartition {
    fn tp(&self) -> &TopicPartition;
    fn offset(&self) -> Option<u64>;
}

impl AsTopicPartition for TopicPartition {
    fn tp(&self) -> &TopicPartition {
        self
    }
    fn offset(&self) -> Option<u64> {
        None
    }
}

impl AsTopicPartition for (TopicPartition, u64) {
    fn tp(&self) -> &TopicPartition {
        &self.0
    }
    fn offset(&self) -> Option<u64> {
        Some(self.1)
    }
}

pub(super) fn to_message(m: &BorrowedMessage<'_>) -> Message {
    Message {
        topic: m.topic().to_string(),
        partition: m.partition() as u32,
        offset: m.offset().max(0) as u64,
        key: m.key().unwrap_or_default().to_vec(),
        payload: m.payload().unwrap_or_default().to_vec(),
        headers: m
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default(),
        timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
    }
}

fn poll_loop(consumer: BaseConsumer<PollContext>, limit: usize) {
    let context = consumer.context().clone();
    let mut holding_since = None;
    loop {
        let mut commands = Vec::new();
        {
            let receiver = lock(&context.commands);
            loop {
                match receiver.try_recv() {
                    Ok(command) => commands.push(command),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        lock(&context.state).disconnected = true;
                        break;
                    }
                }
            }
        }
        for command in commands {
            context.handle(&consumer, command);
        }
        {
            let state = lock(&context.state);
            if state.closing || state.disconnected {
                break;
            }
        }
        if let Flow::Hold = context.flow_control(&consumer, limit, &mut holding_since) {
            // Wait for the engine to catch up, still answering its commands.
            let command = lock(&context.commands).recv_timeout(Duration::from_millis(1));
            match command {
                Ok(command) => context.handle(&consumer, command),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    lock(&context.state).disconnected = true;
                }
            }
            continue;
        }
        match consumer.poll(POLL_INTERVAL) {
            None => {}
            Some(Ok(message)) => {
                let sent = context.emit(Item::Event(ConsumerEvent::Message(to_message(&message))));
                if !sent {
                    break; // the async side is gone
                }
            }
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                tracing::error!(group = %context.group, error = %code, "fatal consumer error");
                context.emit(Item::Failed(BusError::Group {
                    group: context.group.clone(),
                    detail: format!("fatal consumer error: {code}"),
                }));
                break;
            }
            Some(Err(e)) => {
                // Transient (broker down, topic being recreated...): librdkafka retries.
                tracing::warn!(group = %context.group, error = %e, "consumer error");
            }
        }
    }
    // Leave the group: revocations while closing do not wait for acks.
    let reply = {
        let mut state = lock(&context.state);
        state.closing = true;
        state.close_reply.take()
    };
    consumer.unsubscribe();
    drop(consumer); // rd_kafka_consumer_close: leaves the group, waits for it
    if let Some(reply) = reply {
        let _ = reply.send(());
    }
}

pub struct KafkaConsumer {
    group: String,
    events: tokio_mpsc::UnboundedReceiver<Item>,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    paused: HashSet<TopicPartition>,
    held: HashMap<TopicPartition, VecDeque<Message>>,
    ready: VecDeque<Message>,
    thread: Option<JoinHandle<()>>,
    closed: bool,
}

impl KafkaConsumer {
    pub(crate) async fn start(
        config: &KafkaBusConfig,
        base: BusContext,
        group: &str,
        topics: &[String],
    ) -> Result<KafkaConsumer, BusError> {
        let mut client = config.base();
        client
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set(
                "partition.assignment.strategy",
                // Range assigns partition N of every topic to one member (co-partitioning);
                // the sticky assignors balance all partitions together and do not.
                if topics.len() > 1 {
                    "range"
                } else {
                    &config.assignment_strategy
                },
            );
        for (key, value) in [
            ("session.timeout.ms", config.session_timeout),
            ("heartbeat.interval.ms", config.heartbeat_interval),
            ("max.poll.interval.ms", config.max_poll_interval),
        ] {
            if let Some(value) = value {
                client.set(key, millis(value));
            }
        }
        let (event_tx, events) = tokio_mpsc::unbounded_channel();
        let (commands, command_rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let context = PollContext {
            base,
            group: group.to_string(),
            events: event_tx,
            shared: shared.clone(),
            commands: Mutex::new(command_rx),
            state: Mutex::new(PollState::default()),
            revoke_timeout: config.revoke_timeout,
            request_timeout: config.request_timeout,
        };
        let limit = config.max_buffered_messages.max(1);
        let topics: Vec<String> = topics.to_vec();
        let group_name = group.to_string();
        let (started_tx, started) = oneshot::channel::<Result<(), BusError>>();
        let thread = std::thread::Builder::new()
            .name(format!("bus-consumer-{group}"))
            .spawn(move || {
                let consumer: BaseConsumer<PollContext> = match client.create_with_context(context)
                {
                    Ok(consumer) => consumer,
                    Err(e) => {
                        let _ = started_tx.send(Err(BusError::Rejected {
                            service: SERVICE,
                            detail: format!("invalid consumer configuration: {e}"),
                        }));
                        return;
                    }
                };
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                if let Err(e) = consumer.subscribe(&names) {
                    let _ = started_tx.send(Err(BusError::Group {
                        group: group_name,
                        detail: format!("subscribe: {e}"),
                    }));
                    return;
                }
                let _ = started_tx.send(Ok(()));
                poll_loop(consumer, limit);
            })
            .map_err(|e| BusError::Unavailable {
                service: SERVICE,
                detail: format!("cannot start the consumer thread: {e}"),
            })?;
        started.await.map_err(|_| BusError::Closed)??;
        Ok(KafkaConsumer {
            group: group.to_string(),
            events,
            commands,
            shared,
            paused: HashSet::new(),
            held: HashMap::new(),
            ready: VecDeque::new(),
            thread: Some(thread),
            closed: false,
        })
    }

    async fn request(&self, make: impl FnOnce(Reply) -> Command) -> Result<(), BusError> {
        if self.closed {
            return Err(BusError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .map_err(|_| BusError::Closed)?;
        answer.await.map_err(|_| BusError::Closed)?
    }

    fn forget(&mut self, partitions: &[TopicPartition]) {
        {
            let mut revoking = lock(&self.shared.revoking);
            for tp in partitions {
                revoking.remove(tp);
            }
        }
        for tp in partitions {
            self.paused.remove(tp);
            self.held.remove(tp);
        }
        self.ready.retain(|m| {
            !partitions
                .iter()
                .any(|tp| tp.partition == m.partition && tp.topic == m.topic)
        });
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn next(&mut self) -> Result<ConsumerEvent, BusError> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Ok(ConsumerEvent::Message(message));
            }
            if self.closed {
                return Err(BusError::Closed);
            }
            // Cancel-safe: `recv` is, and everything after it is synchronous.
            let Some(item) = self.events.recv().await else {
                self.closed = true;
                return Err(BusError::Closed);
            };
            self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            match item {
                Item::Event(ConsumerEvent::Message(message)) => {
                    let tp = message.topic_partition();
                    if lock(&self.shared.revoking).contains(&tp) {
                        continue; // revoked before the engine saw it: redelivered elsewhere
                    }
                    if self.paused.contains(&tp) {
                        self.held.entry(tp).or_default().push_back(message);
                        continue;
                    }
                    return Ok(ConsumerEvent::Message(message));
                }
                Item::Event(ConsumerEvent::Revoked { partitions, ack }) => {
                    self.forget(&partitions);
                    return Ok(ConsumerEvent::Revoked { partitions, ack });
                }
                Item::Event(ConsumerEvent::Assigned(partitions)) => {
                    // A new assignment starts unpaused, as in librdkafka.
                    for tp in &partitions {
                        self.paused.remove(tp);
                        if let Some(held) = self.held.remove(tp) {
                            self.ready.extend(held);
                        }
                    }
                    return Ok(ConsumerEvent::Assigned(partitions));
                }
                Item::Failed(error) => {
                    self.closed = true;
                    return Err(error);
                }
            }
        }
    }

    async fn commit(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<(), BusError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let offsets = offsets.to_vec();
        self.request(|reply| Command::Commit(offsets, reply)).await
    }

    async fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), BusError> {
        for tp in partitions {
            if self.paused.insert(tp.clone()) {
                // Records of it already released for delivery go back on hold, in order.
                let (held, ready): (VecDeque<Message>, VecDeque<Message>) = self
                    .ready
                    .drain(..)
                    .partition(|m| m.partition == tp.partition && m.topic == tp.topic);
                self.ready = ready;
                if !held.is_empty() {
                    let slot = self.held.entry(tp.clone()).or_default();
                    for message in held.into_iter().rev() {
                        slot.push_front(message);
                    }
                }
            }
        }
        let partitions = partitions.to_vec();
        self.request(|reply| Command::Pause(partitions, reply))
            .await
    }

    async fn resume(&mut self, partitions: &[TopicPartition]) -> Result<(), BusError> {
        for tp in partitions {
            self.paused.remove(tp);
            if let Some(held) = self.held.remove(tp) {
                self.ready.extend(held);
            }
        }
        let partitions = partitions.to_vec();
        self.request(|reply| Command::Resume(partitions, reply))
            .await
    }

    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        if !self.closed {
            let (reply, done) = oneshot::channel();
            if self.commands.send(Command::Close(reply)).is_ok() {
                let _ = done.await;
            }
            self.closed = true;
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| BusError::Group {
                    group: self.group.clone(),
                    detail: format!("consumer thread join failed: {e}"),
                })?
                .map_err(|_| BusError::Group {
                    group: self.group.clone(),
                    detail: "the consumer thread panicked".into(),
                })?;
        }
        Ok(())
    }

    fn leases(&self) -> Arc<Leases> {
        self.shared.leases.clone()
    }
}
