//! The analytics role (consumer group "analytics"): crm.events into the event sink
//! (ClickHouse or files) in batches. Offsets are committed only after the batch holding
//! their events is durable; a replay writes the same event ids again, which the sink
//! collapses. Records that are not analytics events go to the dead-letter topic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::storage::bus::{Bus, ConsumerEvent, Producer, TopicPartition};
use crate::storage::sink::{AnalyticsEvent, Batcher, BatcherConfig, EventSink, FlushReport};

use super::error::EngineError;
use super::inbound::send_dead_letter;
use crate::metrics::catalog;

/// Attempts at writing one batch before the role fails (and is restarted).
const WRITE_ATTEMPTS: u32 = 8;

pub struct AnalyticsRoleConfig {
    pub bus: Arc<dyn Bus>,
    pub producer: Arc<dyn Producer>,
    pub sink: Arc<dyn EventSink>,
    pub batcher: BatcherConfig,
    pub group: String,
    pub topic: String,
    pub dead_letter_topic: String,
}

type Token = (TopicPartition, u64);

pub async fn run(
    config: Arc<AnalyticsRoleConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mut consumer = config
        .bus
        .subscribe(&config.group, std::slice::from_ref(&config.topic))
        .await?;
    let mut batcher: Batcher<Token> = Batcher::new(config.sink.clone(), config.batcher);
    loop {
        let report = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            () = batcher.wait_due() => write(&mut batcher, Write::Due).await?,
            event = consumer.next() => match event? {
                ConsumerEvent::Message(message) => {
                    let token = (message.topic_partition(), message.offset);
                    match serde_json::from_slice::<AnalyticsEvent>(&message.payload) {
                        Ok(event) => match batcher.push(event, token).await {
                            Ok(report) => report,
                            // The batch stays buffered: write it again with retries.
                            Err(error) => {
                                tracing::warn!(%error, "analytics batch write failed; retrying");
                                write(&mut batcher, Write::Now).await?
                            }
                        },
                        Err(e) => {
                            send_dead_letter(&*config.producer, &config.dead_letter_topic, &message, "malformed_analytics_event", &e.to_string()).await?;
                            batcher.push_all(std::iter::empty(), token).await?
                        }
                    }
                }
                ConsumerEvent::Assigned(_) => None,
                ConsumerEvent::Revoked { partitions, ack } => {
                    // Everything buffered is written, so every consumed offset is committable.
                    let report = write(&mut batcher, Write::Now).await?;
                    let offsets = report.as_ref().map(commit_points).unwrap_or_default();
                    ack.commit(offsets.into_iter().filter(|(tp, _)| partitions.contains(tp)).collect());
                    report
                }
            },
        };
        if let Some(report) = report {
            record_metrics(&report);
            let offsets = commit_points(&report);
            if !offsets.is_empty() {
                consumer.commit(&offsets).await?;
            }
        }
    }
    if let Some(report) = write(&mut batcher, Write::Now).await? {
        record_metrics(&report);
        consumer.commit(&commit_points(&report)).await?;
    }
    consumer.close().await?;
    Ok(())
}

enum Write {
    Due,
    Now,
}

async fn write(
    batcher: &mut Batcher<Token>,
    when: Write,
) -> Result<Option<FlushReport<Token>>, EngineError> {
    let mut attempt = 0;
    loop {
        let result = match when {
            Write::Due => batcher.flush_due().await,
            Write::Now => batcher.flush().await,
        };
        match result {
            Ok(report) => return Ok(report),
            Err(error) if attempt + 1 < WRITE_ATTEMPTS => {
                attempt += 1;
                let delay = Duration::from_millis(100 << attempt.min(6));
                tracing::warn!(%error, attempt, ?delay, "analytics sink write failed; retrying");
                catalog::SINK_WRITE_ERRORS.counter(&[]).increment(1);
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The next offset to read per partition: one past the last record in the batch.
fn commit_points(report: &FlushReport<Token>) -> Vec<(TopicPartition, u64)> {
    let mut points: BTreeMap<TopicPartition, u64> = BTreeMap::new();
    for (tp, offset) in &report.tokens {
        let point = points.entry(tp.clone()).or_insert(0);
        *point = (*point).max(offset + 1);
    }
    points.into_iter().collect()
}

fn record_metrics(report: &FlushReport<Token>) {
    catalog::SINK_BATCH_EVENTS
        .histogram(&[])
        .record(report.events as f64);
    catalog::SINK_BATCH_SECONDS
        .histogram(&[])
        .record(report.write_time.as_secs_f64());
    catalog::SINK_EVENTS
        .counter(&[])
        .increment(report.events as u64);
}
