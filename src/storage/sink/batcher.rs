//! Batches events for the sink. The analytics consumer pushes each consumed record's
//! events with an opaque token (its offset); the batcher writes a batch when it holds
//! `max_rows` events or `max_delay` has passed since the first buffered record, and hands
//! back the tokens of every record in that batch. Commit those offsets, and only those,
//! after a flush: a crash before it redelivers the records, and the sink collapses what was
//! already written.
//!
//! Use from a consumer loop:
//! ```text
//! loop {
//!     tokio::select! {
//!         record = consumer.next() => {
//!             let (events, offset) = decode(record);
//!             if let Some(report) = batcher.push_all(events, offset).await? {
//!                 commit(report.tokens).await?;
//!             }
//!         }
//!         () = batcher.wait_due() => {
//!             if let Some(report) = batcher.flush_due().await? {
//!                 commit(report.tokens).await?;
//!             }
//!         }
//!     }
//! }
//! ```
//! A failed flush keeps the batch buffered and returns the error; flushing again (after a
//! pause) writes the same events again, which the sink collapses.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{EventSink, SinkError};
use crate::topics::events::AnalyticsEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Flush as soon as this many events are buffered (at least 1).
    pub max_rows: usize,
    /// Flush when the first buffered record has waited this long.
    pub max_delay: Duration,
}

/// Why a batch was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushReason {
    /// `max_rows` reached.
    Size,
    /// `max_delay` passed.
    Delay,
    /// The caller asked ([`Batcher::flush`]: shutdown, partition revoked).
    Requested,
}

/// A batch that is now durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushReport<T> {
    /// Events written (0 when only records without events were buffered).
    pub events: usize,
    /// The tokens of every record in the batch, in push order: safe to commit now.
    pub tokens: Vec<T>,
    pub reason: FlushReason,
    /// How long the sink took.
    pub write_time: Duration,
}

pub struct Batcher<T> {
    sink: Arc<dyn EventSink>,
    config: BatcherConfig,
    events: Vec<AnalyticsEvent>,
    tokens: Vec<T>,
    /// When the first buffered record arrived.
    first_at: Option<Instant>,
}

impl<T> Batcher<T> {
    pub fn new(sink: Arc<dyn EventSink>, config: BatcherConfig) -> Self {
        Batcher {
            sink,
            config: BatcherConfig {
                max_rows: config.max_rows.max(1),
                ..config
            },
            events: Vec::new(),
            tokens: Vec::new(),
            first_at: None,
        }
    }

    /// Buffered events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.tokens.is_empty()
    }

    /// When the buffered batch is due, if anything is buffered.
    pub fn deadline(&self) -> Option<Instant> {
        self.first_at.map(|at| at + self.config.max_delay)
    }

    /// Buffers one record's event; writes the batch if it reached `max_rows`.
    pub async fn push(
        &mut self,
        event: AnalyticsEvent,
        token: T,
    ) -> Result<Option<FlushReport<T>>, SinkError> {
        self.push_all(std::iter::once(event), token).await
    }

    /// Buffers one record's events (any number, none included: a record without events
    /// still needs its offset committed in order); writes the batch if it reached
    /// `max_rows`.
    pub async fn push_all(
        &mut self,
        events: impl IntoIterator<Item = AnalyticsEvent>,
        token: T,
    ) -> Result<Option<FlushReport<T>>, SinkError> {
        if self.first_at.is_none() {
            self.first_at = Some(Instant::now());
        }
        self.events.extend(events);
        self.tokens.push(token);
        if self.events.len() >= self.config.max_rows {
            self.write(FlushReason::Size).await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// Writes the batch if its delay has passed.
    pub async fn flush_due(&mut self) -> Result<Option<FlushReport<T>>, SinkError> {
        match self.deadline() {
            Some(deadline) if Instant::now() >= deadline => {
                self.write(FlushReason::Delay).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Writes whatever is buffered now.
    pub async fn flush(&mut self) -> Result<Option<FlushReport<T>>, SinkError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.write(FlushReason::Requested).await.map(Some)
    }

    /// Resolves when the buffered batch is due; never, while nothing is buffered.
    pub async fn wait_due(&self) {
        match self.deadline() {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    }

    async fn write(&mut self, reason: FlushReason) -> Result<FlushReport<T>, SinkError> {
        let started = Instant::now();
        if !self.events.is_empty() {
            self.sink.write(&self.events).await?;
        }
        let events = self.events.len();
        self.events.clear();
        self.first_at = None;
        Ok(FlushReport {
            events,
            tokens: std::mem::take(&mut self.tokens),
            reason,
            write_time: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sink::SendOutcome;
    use crate::topics::events::CampaignSendEvent;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<usize>>,
        fail: AtomicBool,
    }

    #[async_trait]
    impl EventSink for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        async fn erase_contact(
            &self,
            _: &crate::domain::phone::PhoneNumber,
        ) -> Result<(), SinkError> {
            Ok(())
        }
        async fn expire_message_text(
            &self,
            _: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), SinkError> {
            Ok(())
        }
        async fn write(&self, events: &[AnalyticsEvent]) -> Result<(), SinkError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(SinkError::Unavailable {
                    service: "recorder",
                    detail: "down".into(),
                });
            }
            self.batches.lock().unwrap().push(events.len());
            Ok(())
        }
    }

    fn event(n: u128) -> AnalyticsEvent {
        AnalyticsEvent::CampaignSend(CampaignSendEvent {
            event_id: uuid::Uuid::from_u128(n),
            occurred_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            campaign_id: "c".into(),
            contact_phone: "60123456789".parse().unwrap(),
            business_number: "60300000000".into(),
            outcome: SendOutcome::Sent,
            template_name: None,
            wamid: None,
            skip_reason: None,
            error_code: None,
            revenue: None,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_flush_keeps_the_batch_for_the_next_try() {
        let sink = Arc::new(Recorder::default());
        let config = BatcherConfig {
            max_rows: 2,
            max_delay: Duration::from_secs(1),
        };
        let mut batcher = Batcher::new(sink.clone(), config);
        assert!(batcher.push(event(1), 1).await.unwrap().is_none());
        sink.fail.store(true, Ordering::SeqCst);
        assert!(batcher.push(event(2), 2).await.is_err());
        assert_eq!(batcher.len(), 2);
        sink.fail.store(false, Ordering::SeqCst);
        let report = batcher.flush().await.unwrap().unwrap();
        assert_eq!(report.tokens, vec![1, 2]);
        assert_eq!(report.reason, FlushReason::Requested);
        assert_eq!(*sink.batches.lock().unwrap(), vec![2]);
        assert!(batcher.is_empty());
        assert!(batcher.flush().await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn records_without_events_release_their_tokens_in_order() {
        let sink = Arc::new(Recorder::default());
        let config = BatcherConfig {
            max_rows: 10,
            max_delay: Duration::from_millis(500),
        };
        let mut batcher = Batcher::new(sink.clone(), config);
        batcher.push(event(1), "a").await.unwrap();
        batcher.push_all(Vec::new(), "b").await.unwrap();
        tokio::time::advance(Duration::from_millis(499)).await;
        assert!(batcher.flush_due().await.unwrap().is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        let report = batcher.flush_due().await.unwrap().unwrap();
        assert_eq!(report.tokens, vec!["a", "b"]);
        assert_eq!(report.events, 1);
        assert_eq!(report.reason, FlushReason::Delay);
        // Only event-less records buffered: released without a write.
        batcher.push_all(Vec::new(), "c").await.unwrap();
        let report = batcher.flush().await.unwrap().unwrap();
        assert_eq!((report.events, report.tokens), (0, vec!["c"]));
        assert_eq!(*sink.batches.lock().unwrap(), vec![1]);
    }
}
