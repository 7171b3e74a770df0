//! The partition consumer of wa.inbound (consumer group "engine"): decodes records, routes
//! each to the shard that owns its contact, and commits per partition only the contiguous
//! prefix of records whose effects the shards have stored. On revocation it flushes the
//! shards, commits what is done and drops the revoked partitions' contacts; on shutdown it
//! flushes, commits and leaves the group.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use ractor::ActorCell;
use tokio::sync::{mpsc, watch};

use crate::storage::bus::{
    dead_letter::dead_letter, Bus, Consumer, ConsumerEvent, Leases, Message, Producer,
    TopicPartition,
};
use crate::topics::inbound::{EventPayload, InboundEvent};

use super::error::EngineError;
use super::offsets::OffsetTracker;
use super::retry::with_retries;
use super::shard::{ShardDeps, ShardKey, Token, Work, WorkEvent};
use super::shard_pool::ShardPool;
use crate::metrics::catalog;
use crate::topics::ocr::OcrResult;

/// Records taken from the consumer in one go before they are handed to the shards.
const MAX_BATCH: usize = 1_000;
/// How often finished offsets are committed.
const COMMIT_INTERVAL: Duration = Duration::from_millis(200);

pub struct InboundConfig {
    pub bus: Arc<dyn Bus>,
    pub producer: Arc<dyn Producer>,
    pub group: String,
    /// wa.inbound
    pub topic: String,
    /// crm.ocr.results: keyed by contact like wa.inbound, so a contact's results reach the
    /// shard that holds it, in order with its messages.
    pub ocr_results_topic: String,
    pub dead_letter_topic: String,
    pub shards: usize,
    pub max_in_flight: usize,
    pub deps: Arc<ShardDeps>,
}

/// Runs until `shutdown` turns true (Ok after a clean drain) or a fatal error.
pub async fn run(
    config: Arc<InboundConfig>,
    mut shutdown: watch::Receiver<bool>,
    supervisor: ActorCell,
) -> Result<(), EngineError> {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<Token>>();
    let mut consumer = config
        .bus
        .subscribe(
            &config.group,
            &[config.topic.clone(), config.ocr_results_topic.clone()],
        )
        .await?;
    let leases = consumer.leases();
    let shards = ShardPool::start(
        config.shards,
        config.deps.clone(),
        leases.clone(),
        done_tx,
        supervisor,
    )
    .await?;
    let mut tracker = OffsetTracker::new();
    let mut commit_tick = tokio::time::interval(COMMIT_INTERVAL);
    let result: Result<(), EngineError> = async {
        loop {
            // While a revocation is under way, read on regardless: its event must be
            // handled (flush, commit, release) before the deadline, and past it the
            // revoked records' tokens are abandoned and count in flight until then.
            let reading = tracker.in_flight() < config.max_in_flight || leases.any_ending();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(tokens) = done_rx.recv() => finish(&mut tracker, tokens),
                _ = commit_tick.tick() => commit(&mut *consumer, &mut tracker).await?,
                event = consumer.next(), if reading => {
                    let mut batch = vec![event?];
                    // Take what is already there, so shards get batches, not single records.
                    while batch.len() < MAX_BATCH {
                        match consumer.next().now_or_never() {
                            Some(event) => batch.push(event?),
                            None => break,
                        }
                    }
                    handle_batch(&config, &shards, &leases, &mut tracker, &mut done_rx, batch)
                        .await?;
                }
            }
        }
        // Clean shutdown: store everything, commit it, leave the group.
        shards.flush_all().await?;
        while let Ok(tokens) = done_rx.try_recv() {
            finish(&mut tracker, tokens);
        }
        commit(&mut *consumer, &mut tracker).await?;
        Ok(())
    }
    .await;
    shards.stop().await;
    if result.is_ok() {
        consumer.close().await?;
    }
    result
}

fn finish(tracker: &mut OffsetTracker, tokens: Vec<Token>) {
    for (tp, offset) in tokens {
        tracker.finish(&tp, offset);
    }
}

async fn commit(
    consumer: &mut dyn Consumer,
    tracker: &mut OffsetTracker,
) -> Result<(), EngineError> {
    let offsets = tracker.take_committable();
    if !offsets.is_empty() {
        consumer.commit(&offsets).await?;
    }
    catalog::ENGINE_IN_FLIGHT
        .gauge(&[])
        .set(tracker.in_flight() as f64);
    Ok(())
}

async fn handle_batch(
    config: &InboundConfig,
    shards: &ShardPool,
    leases: &Leases,
    tracker: &mut OffsetTracker,
    done_rx: &mut mpsc::UnboundedReceiver<Vec<Token>>,
    batch: Vec<ConsumerEvent>,
) -> Result<(), EngineError> {
    let mut work: HashMap<ShardKey, Vec<Work>> = HashMap::new();
    for event in batch {
        match event {
            ConsumerEvent::Message(message) => {
                let tp = message.topic_partition();
                tracker.start(&tp, message.offset);
                match route(&message, &config.ocr_results_topic) {
                    Routed::Contact(contact, event) => {
                        work.entry(shards.key_of(&contact)).or_default().push(Work {
                            contact,
                            token: (tp, message.offset),
                            event: *event,
                        });
                    }
                    Routed::NoContact(event) => {
                        // Value-level errors concern the business number, not a contact:
                        // they stay in wa.inbound for replay and are counted.
                        if let EventPayload::Error(error) = &event.payload {
                            tracing::warn!(code = error.code, title = ?error.title, "WhatsApp reported an error");
                            catalog::ENGINE_EVENTS
                                .counter(&["error".into(), "logged".into()])
                                .increment(1);
                        }
                        tracker.finish(&tp, message.offset);
                    }
                    Routed::Poison { kind, error } => {
                        send_dead_letter(
                            &*config.producer,
                            &config.dead_letter_topic,
                            &message,
                            kind,
                            &error,
                        )
                        .await?;
                        tracker.finish(&tp, message.offset);
                    }
                }
            }
            ConsumerEvent::Assigned(partitions) => {
                tracing::info!(?partitions, "partitions assigned");
            }
            ConsumerEvent::Revoked { partitions, ack } => {
                // Past the ack's deadline the partitions may have a new owner: the shards
                // then abandon their work (the bus marked it in `leases`).
                let revocation = ack.revocation();
                // Hand what was read so far to the shards first: it belongs to the revoked
                // partitions' finished prefix once flushed.
                shards.dispatch(std::mem::take(&mut work))?;
                shards.flush_all().await?;
                while let Ok(tokens) = done_rx.try_recv() {
                    finish(tracker, tokens);
                }
                let offsets: Vec<(TopicPartition, u64)> = partitions
                    .iter()
                    .filter_map(|tp| tracker.committable(tp).map(|o| (tp.clone(), o)))
                    .collect();
                tracing::info!(?partitions, ?offsets, "partitions revoked");
                ack.commit(offsets);
                shards.release(&partitions).await?;
                for tp in &partitions {
                    tracker.forget(tp);
                }
                leases.settled(&partitions, revocation);
            }
        }
    }
    shards.dispatch(work)
}

enum Routed {
    Contact(crate::domain::phone::PhoneNumber, Box<WorkEvent>),
    NoContact(Box<InboundEvent>),
    Poison { kind: &'static str, error: String },
}

fn route(message: &Message, ocr_results_topic: &str) -> Routed {
    if message.topic == ocr_results_topic {
        return match serde_json::from_slice::<OcrResult>(&message.payload) {
            Ok(result) => Routed::Contact(result.contact.clone(), Box::new(WorkEvent::Ocr(result))),
            Err(e) => Routed::Poison {
                kind: "malformed_ocr_result",
                error: format!("not an OCR result: {e}"),
            },
        };
    }
    let event: InboundEvent = match serde_json::from_slice(&message.payload) {
        Ok(event) => event,
        Err(e) => {
            return Routed::Poison {
                kind: "malformed_event",
                error: format!("not an inbound event: {e}"),
            }
        }
    };
    match event.contact_phone() {
        None => Routed::NoContact(Box::new(event)),
        Some(Ok(phone)) => Routed::Contact(phone, Box::new(WorkEvent::Inbound(event))),
        Some(Err(e)) => Routed::Poison {
            kind: "invalid_contact_number",
            error: format!(
                "contact wa_id {:?} is not a phone number: {e}",
                event.contact_wa_id().unwrap_or_default()
            ),
        },
    }
}

pub async fn send_dead_letter(
    producer: &dyn Producer,
    topic: &str,
    message: &Message,
    kind: &'static str,
    error: &str,
) -> Result<(), EngineError> {
    tracing::warn!(kind, error, topic = %message.topic, partition = message.partition, offset = message.offset, "dead-lettering a record");
    let record = dead_letter(topic, message, kind, error);
    with_retries("dead_letter", || producer.send(record.clone())).await?;
    catalog::DLQ.counter(&[kind.into()]).increment(1);
    Ok(())
}
