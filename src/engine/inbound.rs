//! The partition consumer of wa.inbound (consumer group "engine"): decodes records, routes
//! each to the shard that owns its contact, and commits per partition only the contiguous
//! prefix of records whose effects the shards have stored. On revocation it flushes the
//! shards, commits what is done and drops the revoked partitions' contacts; on shutdown it
//! flushes, commits and leaves the group.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ractor::ActorCell;
use tokio::sync::{mpsc, watch};

use crate::campaigns::Planner;
use crate::metrics::catalog;
use crate::segments::Follower;
use crate::storage::bus::{Bus, Message, Producer, TopicPartition};
use crate::topics::commands::Command;
use crate::topics::inbound::{EventPayload, InboundEvent};
use crate::topics::ocr::OcrResult;

use super::consumer::{send_dead_letter, Backpressure, Skeleton, Strategy};
use super::error::EngineError;
use super::shard::{ShardDeps, ShardKey, Token, Work, WorkEvent};
use super::shard_pool::ShardPool;

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
    /// crm.commands: one copy of each command per partition, co-assigned with wa.inbound,
    /// so each engine plans campaigns for the partitions it owns.
    pub commands_topic: String,
    /// Plans campaigns from the process's segment index; `None` without one (commands
    /// are then left to engines that have one: never in a standard profile).
    pub planner: Option<Arc<Planner>>,
    pub dead_letter_topic: String,
    pub shards: usize,
    pub max_in_flight: usize,
    pub deps: Arc<ShardDeps>,
    /// The segment index of the partitions this engine owns (when the process does not
    /// index every partition for the API anyway): rebuilt on assignment, dropped on
    /// revocation.
    pub owned_segments: Option<Arc<Follower>>,
    /// Message bodies past their retention are cleared by a sweep; `None` keeps them.
    pub body_retention: Option<super::retention::BodyRetention>,
}

/// Runs until `shutdown` turns true (Ok after a clean drain) or a fatal error.
pub async fn run(
    config: Arc<InboundConfig>,
    shutdown: watch::Receiver<bool>,
    supervisor: ActorCell,
) -> Result<(), EngineError> {
    let (done_tx, done_rx) = mpsc::unbounded_channel::<Vec<Token>>();
    // Campaigns a contact's own events trigger, kept current for the shards.
    config
        .deps
        .event_triggers
        .refresh(&*config.deps.store)
        .await;
    let refresher = tokio::spawn(
        config
            .deps
            .event_triggers
            .clone()
            .follow(config.deps.store.clone(), shutdown.clone()),
    );
    let sweep = config.body_retention.map(|retention| {
        tokio::spawn(super::retention::sweep_message_bodies(
            config.deps.store.clone(),
            retention,
            shutdown.clone(),
        ))
    });
    let consumer = config
        .bus
        .subscribe(
            &config.group,
            &[
                config.topic.clone(),
                config.ocr_results_topic.clone(),
                config.commands_topic.clone(),
            ],
        )
        .await?;
    let shards = ShardPool::start(
        config.shards,
        config.deps.clone(),
        consumer.leases(),
        done_tx,
        supervisor,
    )
    .await?;
    let skeleton = Skeleton {
        role: "engine",
        group: config.group.clone(),
        max_batch: MAX_BATCH,
        max_in_flight: config.max_in_flight,
        backpressure: Backpressure::StopReading,
        commit_interval: COMMIT_INTERVAL,
        in_flight_gauge: Some(&catalog::ENGINE_IN_FLIGHT),
        pause_only: None,
    };
    let (plans_tx, plans_rx) = mpsc::unbounded_channel();
    let mut strategy = Shards {
        config,
        shards,
        done_rx,
        plans: Plans {
            tx: plans_tx,
            rx: plans_rx,
            in_flight: 0,
            shutdown,
        },
    };
    let shutdown = strategy.plans.shutdown.clone();
    let result = skeleton.run(consumer, &mut strategy, shutdown).await;
    refresher.abort();
    if let Some(sweep) = sweep {
        sweep.abort();
    }
    result
}

/// Routes each record to the shard that owns its contact; a record is finished when its
/// shard has stored its effects.
struct Shards {
    config: Arc<InboundConfig>,
    shards: ShardPool,
    done_rx: mpsc::UnboundedReceiver<Vec<Token>>,
    plans: Plans,
}

/// Campaign commands being carried out, each on a task of its own: planning a large
/// partition takes seconds, and the partition's messages go on meanwhile.
struct Plans {
    tx: mpsc::UnboundedSender<Result<Token, EngineError>>,
    rx: mpsc::UnboundedReceiver<Result<Token, EngineError>>,
    in_flight: usize,
    shutdown: watch::Receiver<bool>,
}

impl Plans {
    fn start(&mut self, planner: Arc<Planner>, command: Command, token: Token) {
        let tx = self.tx.clone();
        let shutdown = self.shutdown.clone();
        self.in_flight += 1;
        tokio::spawn(async move {
            let partition = token.0.partition;
            let result = planner
                .run(&command, partition, shutdown)
                .await
                .map(|_| token)
                .map_err(|e| EngineError::actor("planner", e.to_string()));
            let _ = tx.send(result);
        });
    }

    /// A finished plan's token (an error fails the role, which replays the command).
    fn finished(&mut self, result: Result<Token, EngineError>) -> Result<Vec<Token>, EngineError> {
        self.in_flight -= 1;
        result.map(|token| vec![token])
    }
}

impl Shards {
    /// The wa.inbound partitions among `partitions` (crm.ocr.results is co-assigned).
    fn inbound_partitions(&self, partitions: &[TopicPartition]) -> Vec<u32> {
        partitions
            .iter()
            .filter(|tp| tp.topic == self.config.topic)
            .map(|tp| tp.partition)
            .collect()
    }
}

#[async_trait]
impl Strategy for Shards {
    async fn submit(&mut self, records: Vec<Message>) -> Result<Vec<Token>, EngineError> {
        let config = &self.config;
        let mut work: HashMap<ShardKey, Vec<Work>> = HashMap::new();
        let mut finished = Vec::new();
        for message in records {
            let token = (message.topic_partition(), message.offset);
            if message.topic == config.commands_topic {
                match (Command::decode(&message.payload), &config.planner) {
                    (Ok(command), Some(planner)) => {
                        self.plans.start(planner.clone(), command, token)
                    }
                    (Ok(_), None) => {
                        tracing::warn!("a campaign command with no segment index to plan from");
                        finished.push(token);
                    }
                    (Err(e), _) => {
                        send_dead_letter(
                            &*config.producer,
                            &config.dead_letter_topic,
                            &message,
                            "malformed_command",
                            &e.to_string(),
                        )
                        .await?;
                        finished.push(token);
                    }
                }
                continue;
            }
            match route(&message, &config.ocr_results_topic) {
                Routed::Contact(contact, event) => {
                    work.entry(self.shards.key_of(&contact))
                        .or_default()
                        .push(Work {
                            contact,
                            token,
                            event: *event,
                            arrived_ms: message.timestamp_ms,
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
                    finished.push(token);
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
                    finished.push(token);
                }
            }
        }
        self.shards.dispatch(work)?;
        Ok(finished)
    }

    async fn poll(&mut self) -> Result<Vec<Token>, EngineError> {
        tokio::select! {
            done = self.done_rx.recv() => match done {
                Some(tokens) => Ok(tokens),
                None => std::future::pending().await,
            },
            Some(plan) = self.plans.rx.recv() => self.plans.finished(plan),
        }
    }

    async fn join(&mut self) -> Result<Vec<Token>, EngineError> {
        self.shards.flush_all().await?;
        let mut tokens = Vec::new();
        while let Ok(done) = self.done_rx.try_recv() {
            tokens.extend(done);
        }
        // Plans in progress finish (or, stopping, give up and are replayed).
        while self.plans.in_flight > 0 {
            match self.plans.rx.recv().await {
                Some(plan) => match self.plans.finished(plan) {
                    Ok(done) => tokens.extend(done),
                    Err(e) => tracing::warn!(error = %e, "a campaign plan stopped; it is replayed"),
                },
                None => break,
            }
        }
        Ok(tokens)
    }

    async fn assigned(&mut self, partitions: &[TopicPartition]) -> Result<(), EngineError> {
        if let Some(follower) = &self.config.owned_segments {
            follower
                .assign(&self.inbound_partitions(partitions))
                .await?;
        }
        Ok(())
    }

    async fn release(&mut self, partitions: &[TopicPartition]) -> Result<(), EngineError> {
        if let Some(follower) = &self.config.owned_segments {
            follower.revoke(&self.inbound_partitions(partitions));
        }
        self.shards.release(partitions).await
    }

    async fn stop(&mut self) {
        self.shards.stop().await;
    }
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
