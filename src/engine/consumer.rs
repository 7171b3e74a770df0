//! The one consume → process → commit loop every consuming role runs, in the spirit of
//! Sentry's rust-arroyo: the skeleton polls the consumer and submits records to the role's
//! [`Strategy`], which finishes them now or later; the skeleton commits, per partition, only
//! the finished prefix ([`OffsetTracker`]). Revocation, leases, backpressure and the final
//! drain are handled here once, so a role's file holds only what is particular to it.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::watch;

use crate::metrics::catalog::{self, Metric};
use crate::storage::bus::dead_letter::dead_letter;
use crate::storage::bus::{Consumer, ConsumerEvent, Message, Producer, TopicPartition};

use super::error::EngineError;
use super::offsets::OffsetTracker;
use crate::retry::RetryPolicy;

/// A record's place: done when its effects are stored.
pub type Token = (TopicPartition, u64);

/// What a role does with the records it is given.
#[async_trait]
pub trait Strategy: Send {
    /// Takes records read from the consumer, in order. Returns the tokens of those already
    /// finished (dead-lettered, nothing to do); the others finish through [`Strategy::poll`]
    /// or [`Strategy::join`].
    async fn submit(&mut self, records: Vec<Message>) -> Result<Vec<Token>, EngineError>;

    /// Waits until some submitted work finishes and returns its tokens, or until work is
    /// due (an empty list: [`Strategy::work`] follows). The skeleton races it against the
    /// consumer, so it must be cancel-safe: it may only wait, never write; it never resolves
    /// while nothing can finish.
    async fn poll(&mut self) -> Result<Vec<Token>, EngineError>;

    /// The work `poll` found due (a timed flush), run to completion (not raced), and the
    /// tokens it finished.
    async fn work(&mut self) -> Result<Vec<Token>, EngineError> {
        Ok(Vec::new())
    }

    /// Finishes every submitted record and returns their tokens (revocation, shutdown).
    async fn join(&mut self) -> Result<Vec<Token>, EngineError>;

    /// Partitions newly assigned to this consumer.
    async fn assigned(&mut self, _partitions: &[TopicPartition]) -> Result<(), EngineError> {
        Ok(())
    }

    /// Revoked partitions, after their finished prefix was handed over: forget their state.
    async fn release(&mut self, _partitions: &[TopicPartition]) -> Result<(), EngineError> {
        Ok(())
    }

    /// The loop ended (cleanly or not): stop what the strategy started.
    async fn stop(&mut self) {}
}

/// What the skeleton does when `max_in_flight` records are unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backpressure {
    /// Stop reading until some finish; read on while a revocation is under way, whose event
    /// must be handled before its deadline.
    StopReading,
    /// Pause the assigned partitions and keep reading, so rebalances are answered while the
    /// role is full (what was fetched before the pause is taken, never dropped).
    PausePartitions,
}

/// How a role's loop runs.
pub struct Skeleton {
    /// The role, for logs.
    pub role: &'static str,
    /// The consumer group, for the pause metrics.
    pub group: String,
    /// Records taken from the consumer in one go before they are submitted.
    pub max_batch: usize,
    pub max_in_flight: usize,
    pub backpressure: Backpressure,
    /// How often finished offsets are committed.
    pub commit_interval: Duration,
    /// The gauge of unfinished records, if the role reports one.
    pub in_flight_gauge: Option<&'static Metric>,
    /// With [`Backpressure::PausePartitions`]: pause only this topic's partitions (whose
    /// records are the ones kept in flight), and read the others on.
    pub pause_only: Option<String>,
}

impl Skeleton {
    /// Runs until `shutdown` turns true (Ok after a clean drain: everything submitted is
    /// finished and committed, and the consumer leaves its group) or a fatal error.
    pub async fn run(
        &self,
        mut consumer: Box<dyn Consumer>,
        strategy: &mut dyn Strategy,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        let mut state = LoopState {
            tracker: OffsetTracker::new(),
            pause: Pause {
                only: self.pause_only.clone(),
                ..Pause::default()
            },
        };
        let result = self
            .consume(&mut *consumer, strategy, &mut state, &mut shutdown)
            .await;
        strategy.stop().await;
        if result.is_ok() {
            consumer.close().await?;
        }
        result
    }

    async fn consume(
        &self,
        consumer: &mut dyn Consumer,
        strategy: &mut dyn Strategy,
        state: &mut LoopState,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        let leases = consumer.leases();
        let mut commit_tick = tokio::time::interval(self.commit_interval);
        // After a long step (a revocation's join, a sender waiting), one commit, not a burst.
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let full = state.tracker.in_flight() >= self.max_in_flight;
            let reading = match self.backpressure {
                // Past a revocation's deadline the revoked records' tokens are abandoned,
                // and count in flight until its event is handled: read on to handle it.
                Backpressure::StopReading => !full || leases.any_ending(),
                Backpressure::PausePartitions => {
                    state.pause.follow(consumer, full, &self.group).await?;
                    true
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                tokens = strategy.poll() => {
                    finish(&mut state.tracker, tokens?);
                    let done = strategy.work().await?;
                    finish(&mut state.tracker, done);
                }
                _ = commit_tick.tick() => self.commit(consumer, &mut state.tracker).await?,
                event = consumer.next(), if reading => {
                    let mut batch = vec![event?];
                    // Take what is already there, so strategies get batches, not single records.
                    while batch.len() < self.max_batch {
                        match consumer.next().now_or_never() {
                            Some(event) => batch.push(event?),
                            None => break,
                        }
                    }
                    self.handle(consumer, strategy, state, batch).await?;
                }
            }
        }
        // Clean shutdown: finish everything, commit it.
        let tokens = strategy.join().await?;
        finish(&mut state.tracker, tokens);
        self.commit(consumer, &mut state.tracker).await
    }

    async fn handle(
        &self,
        consumer: &mut dyn Consumer,
        strategy: &mut dyn Strategy,
        state: &mut LoopState,
        batch: Vec<ConsumerEvent>,
    ) -> Result<(), EngineError> {
        let mut records = Vec::new();
        for event in batch {
            match event {
                ConsumerEvent::Message(message) => {
                    state
                        .tracker
                        .start(&message.topic_partition(), message.offset);
                    records.push(message);
                }
                ConsumerEvent::Assigned(partitions) => {
                    tracing::info!(role = self.role, ?partitions, "partitions assigned");
                    strategy.assigned(&partitions).await?;
                    if self.backpressure == Backpressure::PausePartitions {
                        state
                            .pause
                            .assigned(consumer, partitions, &self.group)
                            .await?;
                    }
                }
                ConsumerEvent::Revoked { partitions, ack } => {
                    // Past the ack's deadline the partitions may have a new owner: the
                    // strategy then abandons their work (the bus marked it in the leases).
                    let revocation = ack.revocation();
                    // What was read so far belongs to the revoked partitions' finished
                    // prefix once joined.
                    let done = strategy.submit(std::mem::take(&mut records)).await?;
                    finish(&mut state.tracker, done);
                    let done = strategy.join().await?;
                    finish(&mut state.tracker, done);
                    let offsets: Vec<Token> = partitions
                        .iter()
                        .filter_map(|tp| state.tracker.committable(tp).map(|o| (tp.clone(), o)))
                        .collect();
                    tracing::info!(
                        role = self.role,
                        ?partitions,
                        ?offsets,
                        "partitions revoked"
                    );
                    ack.commit(offsets);
                    strategy.release(&partitions).await?;
                    for tp in &partitions {
                        state.tracker.forget(tp);
                    }
                    if self.backpressure == Backpressure::PausePartitions {
                        state.pause.revoked(&partitions, &self.group);
                    }
                    consumer.leases().settled(&partitions, revocation);
                }
            }
        }
        if !records.is_empty() {
            let done = strategy.submit(records).await?;
            finish(&mut state.tracker, done);
        }
        Ok(())
    }

    async fn commit(
        &self,
        consumer: &mut dyn Consumer,
        tracker: &mut OffsetTracker,
    ) -> Result<(), EngineError> {
        let offsets = tracker.take_committable();
        if !offsets.is_empty() {
            consumer.commit(&offsets).await?;
        }
        if let Some(gauge) = self.in_flight_gauge {
            gauge.gauge(&[]).set(tracker.in_flight() as f64);
        }
        Ok(())
    }
}

struct LoopState {
    tracker: OffsetTracker,
    pause: Pause,
}

fn finish(tracker: &mut OffsetTracker, tokens: Vec<Token>) {
    for (tp, offset) in tokens {
        tracker.finish(&tp, offset);
    }
}

/// The assigned partitions, and whether they are paused ([`Backpressure::PausePartitions`]).
#[derive(Default)]
struct Pause {
    assigned: BTreeSet<TopicPartition>,
    paused: bool,
    /// Only this topic's partitions are paused.
    only: Option<String>,
}

impl Pause {
    async fn follow(
        &mut self,
        consumer: &mut dyn Consumer,
        full: bool,
        group: &str,
    ) -> Result<(), EngineError> {
        if full == self.paused {
            return Ok(());
        }
        let partitions: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        if full {
            consumer.pause(&partitions).await?;
            catalog::OCR_PAUSES
                .counter(&[group.to_string().into()])
                .increment(1);
        } else {
            consumer.resume(&partitions).await?;
        }
        self.paused = full;
        self.report(group);
        Ok(())
    }

    async fn assigned(
        &mut self,
        consumer: &mut dyn Consumer,
        partitions: Vec<TopicPartition>,
        group: &str,
    ) -> Result<(), EngineError> {
        let partitions: Vec<TopicPartition> = partitions
            .into_iter()
            .filter(|tp| self.only.as_ref().is_none_or(|topic| &tp.topic == topic))
            .collect();
        if self.paused {
            consumer.pause(&partitions).await?;
        }
        self.assigned.extend(partitions);
        self.report(group);
        Ok(())
    }

    fn revoked(&mut self, partitions: &[TopicPartition], group: &str) {
        for tp in partitions {
            self.assigned.remove(tp);
        }
        self.report(group);
    }

    fn report(&self, group: &str) {
        let paused = if self.paused { self.assigned.len() } else { 0 };
        catalog::OCR_PARTITIONS_PAUSED
            .gauge(&[group.to_string().into()])
            .set(paused as f64);
    }
}

/// Sends a record that cannot be processed to the dead-letter topic with its reason (the
/// one dead-letter path of every role), retried as any write.
pub async fn send_dead_letter(
    producer: &dyn Producer,
    topic: &str,
    message: &Message,
    kind: &'static str,
    error: &str,
) -> Result<(), EngineError> {
    tracing::warn!(kind, error, topic = %message.topic, partition = message.partition, offset = message.offset, "dead-lettering a record");
    let record = dead_letter(topic, message, kind, error);
    RetryPolicy::WRITES
        .run("dead_letter", |_| true, || producer.send(record.clone()))
        .await?;
    catalog::DLQ.counter(&[kind.into()]).increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use crate::storage::bus::{Bus, EmbeddedBus, EmbeddedBusConfig, Record, TopicSpec};

    const TOPIC: &str = "t";
    const GROUP: &str = "g";

    /// Finishes every record at once except those at `held` offsets, which finish only at
    /// the join.
    struct HoldSome {
        held_offsets: BTreeSet<u64>,
        held: Vec<Token>,
        submitted: usize,
    }

    #[async_trait]
    impl Strategy for HoldSome {
        async fn submit(&mut self, records: Vec<Message>) -> Result<Vec<Token>, EngineError> {
            self.submitted += records.len();
            let mut done = Vec::new();
            for m in records {
                let token = (m.topic_partition(), m.offset);
                if self.held_offsets.contains(&m.offset) {
                    self.held.push(token);
                } else {
                    done.push(token);
                }
            }
            Ok(done)
        }

        async fn poll(&mut self) -> Result<Vec<Token>, EngineError> {
            std::future::pending().await
        }

        async fn join(&mut self) -> Result<Vec<Token>, EngineError> {
            Ok(std::mem::take(&mut self.held))
        }
    }

    /// An embedded bus whose one-partition topic holds `count` records, and a consumer of it.
    async fn with_records(
        count: u8,
    ) -> (
        tempfile::TempDir,
        Arc<EmbeddedBus>,
        Box<dyn crate::storage::bus::Consumer>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bus = Arc::new(EmbeddedBus::open(EmbeddedBusConfig::new(dir.path())).unwrap());
        bus.ensure_topics(&[TopicSpec {
            name: TOPIC.into(),
            partitions: 1,
            replication_factor: 1,
            compacted: false,
        }])
        .await
        .unwrap();
        let producer = bus.producer();
        for i in 0..count {
            producer
                .send(Record::new(TOPIC, vec![b'k'], vec![i]))
                .await
                .unwrap();
        }
        let consumer = bus.subscribe(GROUP, &[TOPIC.to_string()]).await.unwrap();
        (dir, bus, consumer)
    }

    async fn committed(bus: &EmbeddedBus) -> Option<u64> {
        bus.committed_offsets(GROUP, TOPIC).await.unwrap()[0]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_finished_prefix_is_committed_and_a_clean_stop_finishes_the_rest() {
        let (_dir, bus, consumer) = with_records(5).await;
        let skeleton = Skeleton {
            role: "test",
            group: GROUP.into(),
            max_batch: 2,
            max_in_flight: 100,
            backpressure: Backpressure::StopReading,
            commit_interval: Duration::from_millis(20),
            in_flight_gauge: None,
            pause_only: None,
        };
        let (stop, shutdown) = watch::channel(false);
        let run = tokio::spawn(async move {
            let mut strategy = HoldSome {
                held_offsets: BTreeSet::from([2]),
                held: Vec::new(),
                submitted: 0,
            };
            skeleton
                .run(consumer, &mut strategy, shutdown)
                .await
                .map(|()| strategy.submitted)
        });
        // Records 0, 1, 3 and 4 are finished, 2 is not: the commit stops before it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while committed(&bus).await != Some(2) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "committed {:?}",
                committed(&bus).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            committed(&bus).await,
            Some(2),
            "never past the unfinished record"
        );
        stop.send(true).unwrap();
        assert_eq!(run.await.unwrap().unwrap(), 5);
        assert_eq!(committed(&bus).await, Some(5), "the join finished it");
    }

    /// At its in-flight limit a StopReading role reads nothing more until records finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_role_stops_reading() {
        let (_dir, bus, consumer) = with_records(6).await;
        let skeleton = Skeleton {
            role: "test",
            group: GROUP.into(),
            max_batch: 1,
            max_in_flight: 3,
            backpressure: Backpressure::StopReading,
            commit_interval: Duration::from_millis(20),
            in_flight_gauge: None,
            pause_only: None,
        };
        let (stop, shutdown) = watch::channel(false);
        let run = tokio::spawn(async move {
            // Nothing finishes before the join.
            let mut strategy = HoldSome {
                held_offsets: (0..6).collect(),
                held: Vec::new(),
                submitted: 0,
            };
            skeleton
                .run(consumer, &mut strategy, shutdown)
                .await
                .map(|()| strategy.submitted)
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.send(true).unwrap();
        assert_eq!(run.await.unwrap().unwrap(), 3, "read up to the limit only");
        assert_eq!(committed(&bus).await, Some(3));
    }
}
