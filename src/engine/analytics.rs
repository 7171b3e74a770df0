//! The analytics role (consumer group "analytics"): crm.events into the event sink
//! (ClickHouse or files) in batches. Offsets are committed only after the batch holding
//! their events is durable; a replay writes the same event ids again, which the sink
//! collapses. Records that are not analytics events go to the dead-letter topic.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::metrics::catalog;
use crate::storage::bus::{Bus, Message, Producer};
use crate::storage::sink::{AnalyticsEvent, Batcher, BatcherConfig, EventSink, FlushReport};

use super::consumer::{send_dead_letter, Backpressure, Skeleton, Strategy, Token};
use super::error::EngineError;
use crate::domain::phone::PhoneNumber;
use crate::topics::events::HEADER_ERASE_CONTACT;

pub struct AnalyticsRoleConfig {
    pub bus: Arc<dyn Bus>,
    pub producer: Arc<dyn Producer>,
    pub sink: Arc<dyn EventSink>,
    pub batcher: BatcherConfig,
    pub group: String,
    pub topic: String,
    pub dead_letter_topic: String,
    /// Clears message text older than this from the sink (`None`: kept).
    pub text_retention: Option<super::retention::BodyRetention>,
}

pub async fn run(
    config: Arc<AnalyticsRoleConfig>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    // At 0 from the start, so an alert's `increase()` sees the first failure.
    catalog::SINK_WRITE_ERRORS.counter(&[]).increment(0);
    let consumer = config
        .bus
        .subscribe(&config.group, std::slice::from_ref(&config.topic))
        .await?;
    let sweep = config.text_retention.map(|retention| {
        tokio::spawn(super::retention::sweep_message_text(
            config.sink.clone(),
            retention,
            shutdown.clone(),
        ))
    });
    let skeleton = Skeleton {
        role: "analytics",
        group: config.group.clone(),
        max_batch: 1_000,
        // Records wait in the batcher until it is due or full: no limit beyond its own.
        max_in_flight: usize::MAX,
        backpressure: Backpressure::StopReading,
        commit_interval: Duration::from_millis(200),
        in_flight_gauge: None,
        pause_only: None,
    };
    let mut strategy = Batches {
        batcher: Batcher::new(config.sink.clone(), config.batcher),
        config,
    };
    let result = skeleton.run(consumer, &mut strategy, shutdown).await;
    if let Some(sweep) = sweep {
        sweep.abort();
    }
    result
}

/// Events go into the batcher; a record is finished when the batch holding it is durable.
/// The sink retries its own transient failures (ClickHouse: `ClickHouseConfig::max_retries`);
/// a write that still fails fails the role, whose supervisor restarts it from the committed
/// offsets (the batch is written again, and the sink collapses its event ids).
struct Batches {
    config: Arc<AnalyticsRoleConfig>,
    batcher: Batcher<Token>,
}

impl Batches {
    /// An erasure marker: everything before it is written first (the contact's earlier
    /// events included), then the sink forgets the contact.
    async fn erase(&mut self, contact: &[u8], token: Token) -> Result<Vec<Token>, EngineError> {
        let mut finished = Self::finished(self.batcher.flush().await)?;
        let phone = std::str::from_utf8(contact)
            .ok()
            .and_then(|digits| PhoneNumber::from_e164_digits(digits).ok());
        if let Some(phone) = phone {
            if let Err(error) = self.config.sink.erase_contact(&phone).await {
                catalog::SINK_WRITE_ERRORS.counter(&[]).increment(1);
                return Err(error.into());
            }
        }
        finished.push(token);
        Ok(finished)
    }

    fn finished(
        result: Result<Option<FlushReport<Token>>, crate::storage::sink::SinkError>,
    ) -> Result<Vec<Token>, EngineError> {
        match result {
            Ok(Some(report)) => {
                record_metrics(&report);
                Ok(report.tokens)
            }
            Ok(None) => Ok(Vec::new()),
            Err(error) => {
                catalog::SINK_WRITE_ERRORS.counter(&[]).increment(1);
                Err(error.into())
            }
        }
    }
}

#[async_trait]
impl Strategy for Batches {
    async fn submit(&mut self, records: Vec<Message>) -> Result<Vec<Token>, EngineError> {
        let mut finished = Vec::new();
        for message in records {
            let token = (message.topic_partition(), message.offset);
            if let Some(contact) = message.header(HEADER_ERASE_CONTACT) {
                finished.extend(self.erase(contact, token).await?);
                continue;
            }
            let pushed = match serde_json::from_slice::<AnalyticsEvent>(&message.payload) {
                Ok(event) => self.batcher.push(event, token).await,
                Err(e) => {
                    let config = &self.config;
                    send_dead_letter(
                        &*config.producer,
                        &config.dead_letter_topic,
                        &message,
                        "malformed_analytics_event",
                        &e.to_string(),
                    )
                    .await?;
                    // Finished with the batch it falls in, so tokens finish in order.
                    self.batcher.push_all(std::iter::empty(), token).await
                }
            };
            finished.extend(Self::finished(pushed)?);
        }
        Ok(finished)
    }

    async fn poll(&mut self) -> Result<Vec<Token>, EngineError> {
        // Only waits: the write itself is `work`, which the skeleton does not cancel.
        self.batcher.wait_due().await;
        Ok(Vec::new())
    }

    async fn work(&mut self) -> Result<Vec<Token>, EngineError> {
        Self::finished(self.batcher.flush_due().await)
    }

    async fn join(&mut self) -> Result<Vec<Token>, EngineError> {
        Self::finished(self.batcher.flush().await)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    use crate::domain::phone::PhoneNumber;
    use crate::storage::bus::{EmbeddedBus, EmbeddedBusConfig, Record, TopicSpec};
    use crate::storage::sink::{EventReader, EventTable, FileSink, InboundMessageEvent, SinkError};

    /// A sink whose every write takes longer than the skeleton's commit interval.
    struct SlowSink(FileSink);

    #[async_trait]
    impl EventSink for SlowSink {
        fn name(&self) -> &'static str {
            "slow"
        }

        async fn write(&self, events: &[AnalyticsEvent]) -> Result<(), SinkError> {
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.0.write(events).await
        }

        async fn erase_contact(&self, contact: &PhoneNumber) -> Result<(), SinkError> {
            self.0.erase_contact(contact).await
        }

        async fn expire_message_text(
            &self,
            before: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), SinkError> {
            self.0.expire_message_text(before).await
        }
    }

    /// A timed flush runs to its end even when it takes longer than a commit tick: the
    /// skeleton does not race it (it did, and every tick restarted it, so a batch under
    /// `max_rows` was never written).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_timed_flush_is_not_cancelled_by_the_commit_tick() {
        let dir = tempfile::tempdir().unwrap();
        let bus =
            Arc::new(EmbeddedBus::open(EmbeddedBusConfig::new(dir.path().join("bus"))).unwrap());
        bus.ensure_topics(&[TopicSpec {
            name: "crm.events".into(),
            partitions: 1,
            replication_factor: 1,
            compacted: false,
        }])
        .await
        .unwrap();
        let event = AnalyticsEvent::InboundMessage(InboundMessageEvent {
            event_id: crate::topics::event_id("inbound:wamid.slow"),
            occurred_at: Utc::now(),
            contact_phone: PhoneNumber::parse("0123456789").unwrap(),
            business_number: "60321611234".into(),
            wamid: "wamid.slow".into(),
            message_type: "text".into(),
            text: Some("hi".into()),
            context_wamid: None,
            campaign_id: None,
        });
        bus.producer()
            .send(Record::new(
                "crm.events",
                b"k".to_vec(),
                serde_json::to_vec(&event).unwrap(),
            ))
            .await
            .unwrap();
        let files = dir.path().join("events");
        let config = Arc::new(AnalyticsRoleConfig {
            text_retention: None,
            bus: bus.clone(),
            producer: bus.producer(),
            sink: Arc::new(SlowSink(FileSink::open(&files).unwrap())),
            batcher: BatcherConfig {
                max_rows: 1_000,
                max_delay: Duration::from_millis(50),
            },
            group: "analytics".into(),
            topic: "crm.events".into(),
            dead_letter_topic: "crm.dlq".into(),
        });
        let (stop, shutdown) = watch::channel(false);
        let role = tokio::spawn(run(config, shutdown));
        let reader = FileSink::open(&files).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while reader
            .count_events(EventTable::InboundMessages)
            .await
            .unwrap()
            == 0
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the timed flush never finished"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // ... and its offset is committed.
        while bus
            .committed_offsets("analytics", "crm.events")
            .await
            .unwrap()[0]
            != Some(1)
        {
            assert!(tokio::time::Instant::now() < deadline, "not committed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).unwrap();
        role.await.unwrap().unwrap();
    }
}
