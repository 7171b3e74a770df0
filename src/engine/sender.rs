//! The sender role (consumer group "sender"): wa.outbound to the WhatsApp provider.
//! wa.outbound is keyed by business number, so the process that owns a number's partition
//! owns its rate limiter.
//!
//! Each request is claimed once in the store before it is sent (dedupe key
//! `request_id`), so a replay never messages a customer twice; the price is that a crash
//! between the claim and the provider's answer loses that one send (at most once: a
//! duplicate WhatsApp message is worse for a retailer than a missing auto-reply). For the
//! same reason a send whose outcome is unknown (timeout, connection lost after the request
//! went out) is not retried. Rate limits and transient failures (the provider did not take
//! it) are retried with backoff; permanent refusals and unknown outcomes are recorded as
//! failed deliveries; undecodable records go to the dead-letter topic.
//!
//! What a send came to is stored next, before the message row and its event, so a replay
//! after a crash finishes that bookkeeping from it; a claim with no result is recorded as
//! unknown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::watch;

use crate::domain::message::{DeliveryStatus, DeliveryTimeline};
use crate::provider::{ErrorClass, OutboundMessage, ProviderError, RateLimiter, WhatsappProvider};
use crate::storage::bus::{Bus, Message, Producer, Record};
use crate::storage::sink::{AnalyticsEvent, MessageStatusEvent, OutboundMessageEvent};
use crate::storage::store::{
    Claim, ContactStore, Direction, MessageRecord, SendOutcome, SendResult,
};

use super::consumer::{send_dead_letter, Backpressure, Skeleton, Strategy, Token};
use super::error::EngineError;
use super::outputs::send_outputs;
use crate::metrics::catalog;
use crate::retry::with_retries;
use crate::retry::RetryPolicy;
use crate::topics::event_id;
use crate::topics::outbound::OutboundRequest;

/// Slack on top of the send budget and one request before a claim without a result is
/// taken for a dead send (covers clock skew between processes).
const SETTLE_MARGIN: Duration = Duration::from_secs(2);
/// How often a replay waiting for another sender's result looks again.
const RESULT_POLL: Duration = Duration::from_secs(1);

pub struct SenderConfig {
    pub bus: Arc<dyn Bus>,
    pub producer: Arc<dyn Producer>,
    pub store: Arc<dyn ContactStore>,
    pub provider: Arc<dyn WhatsappProvider>,
    pub limiter: Arc<RateLimiter>,
    pub group: String,
    pub topic: String,
    pub events_topic: String,
    pub dead_letter_topic: String,
    /// The provider's request timeout: the longest one attempt can take.
    pub request_timeout: Duration,
    /// No attempt starts past this long into a send, so a send ends within it plus one
    /// request (`whatsapp.send_budget_ms`).
    pub send_budget: Duration,
}

pub async fn run(
    config: Arc<SenderConfig>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let consumer = config
        .bus
        .subscribe(&config.group, std::slice::from_ref(&config.topic))
        .await?;
    // One record at a time, in order: a number's sends keep their order and its limiter
    // paces them.
    let skeleton = Skeleton {
        role: "sender",
        group: config.group.clone(),
        max_batch: 1,
        max_in_flight: 1,
        backpressure: Backpressure::StopReading,
        commit_interval: Duration::from_millis(200),
        in_flight_gauge: None,
        pause_only: None,
    };
    let mut strategy = Sends {
        shutdown: shutdown.clone(),
        config,
    };
    skeleton.run(consumer, &mut strategy, shutdown).await
}

struct Sends {
    config: Arc<SenderConfig>,
    /// Seen by a replay waiting for another sender's result.
    shutdown: watch::Receiver<bool>,
}

#[async_trait]
impl Strategy for Sends {
    async fn submit(&mut self, records: Vec<Message>) -> Result<Vec<Token>, EngineError> {
        let mut finished = Vec::with_capacity(records.len());
        for message in records {
            if !process(&self.config, &message, &mut self.shutdown).await? {
                break; // stopping while waiting: the record is replayed later
            }
            finished.push((message.topic_partition(), message.offset));
        }
        Ok(finished)
    }

    async fn poll(&mut self) -> Result<Vec<Token>, EngineError> {
        // Every record is finished within `submit`.
        std::future::pending().await
    }

    async fn join(&mut self) -> Result<Vec<Token>, EngineError> {
        Ok(Vec::new())
    }
}

/// Sends one request, or finishes it if it was claimed before. False when it stopped
/// unfinished (shutdown while waiting for another sender's result): not to be committed.
async fn process(
    config: &SenderConfig,
    message: &Message,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<bool, EngineError> {
    let request: OutboundRequest = match serde_json::from_slice(&message.payload) {
        Ok(request) => request,
        Err(e) => {
            return send_dead_letter(
                &*config.producer,
                &config.dead_letter_topic,
                message,
                "malformed_outbound_request",
                &e.to_string(),
            )
            .await
            .map(|()| true)
        }
    };
    let claim = with_retries("claim_send", || {
        config.store.claim_send(&request.request_id, &request.to)
    })
    .await?;
    let result = match claim {
        Claim::Claimed => {
            let result = send(config, &request).await;
            // Before anything else: a replay finishes from it instead of sending again.
            keep_result(config, &request, &result).await?;
            result
        }
        Claim::AlreadyClaimed(claimed_at) => {
            catalog::SENDER_SENDS
                .counter(&["duplicate".into()])
                .increment(1);
            match claimed_result(config, &request, &claimed_at, shutdown).await? {
                Some(result) => result,
                None => return Ok(false),
            }
        }
    };
    record(config, &request, &result).await?;
    Ok(true)
}

async fn keep_result(
    config: &SenderConfig,
    request: &OutboundRequest,
    result: &SendResult,
) -> Result<(), EngineError> {
    with_retries("record_send_result", || {
        config
            .store
            .record_send_result(&request.request_id, &request.to, result)
    })
    .await?;
    Ok(())
}

/// The result of a request claimed before. The claimant may still be sending (a partition
/// moved on after a revocation timed out), so a missing result counts only once the claim
/// is older than any send can take; until then it is looked for again. Then, still none:
/// the claimant stopped during the send, which the provider may have taken, so it is not
/// sent again but recorded as unknown. `None` when stopped meanwhile.
async fn claimed_result(
    config: &SenderConfig,
    request: &OutboundRequest,
    claimed_at: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<SendResult>, EngineError> {
    // A claim time that does not parse is treated as old: nothing to wait for.
    let claimed_at = chrono::DateTime::parse_from_rfc3339(claimed_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    let longest_send =
        chrono::Duration::from_std(config.send_budget + config.request_timeout + SETTLE_MARGIN)
            .unwrap_or_default();
    let settled = claimed_at
        .checked_add_signed(longest_send)
        .unwrap_or(claimed_at);
    loop {
        let recorded = with_retries("send_result", || {
            config.store.send_result(&request.request_id, &request.to)
        })
        .await?;
        if recorded.is_some() {
            return Ok(recorded);
        }
        let left = (settled - Utc::now()).to_std().unwrap_or_default();
        if left.is_zero() {
            catalog::SENDER_SENDS
                .counter(&["unknown".into()])
                .increment(1);
            let result = SendResult {
                at: Utc::now(),
                outcome: SendOutcome::Failed {
                    code: None,
                    reason: "outcome unknown: the sender stopped during the send".into(),
                },
            };
            keep_result(config, request, &result).await?;
            return Ok(Some(result));
        }
        tokio::select! {
            _ = tokio::time::sleep(left.min(RESULT_POLL)) => {}
            _ = shutdown.changed() => return Ok(None),
        }
    }
}

/// Sends the request (retrying what may be retried) and says what came of it.
async fn send(config: &SenderConfig, request: &OutboundRequest) -> SendResult {
    let outbound = OutboundMessage {
        to: request.to.clone(),
        content: request.content.clone(),
    };
    match send_with_retries(config, request, &outbound).await {
        Ok(wamid) => {
            catalog::SENDER_SENDS.counter(&["sent".into()]).increment(1);
            SendResult {
                at: Utc::now(),
                outcome: SendOutcome::Sent { wamid },
            }
        }
        Err(error) => {
            let code = error.code();
            let outcome = match error.class() {
                ErrorClass::OutcomeUnknown => "unknown",
                _ => "failed",
            };
            catalog::SENDER_SENDS
                .counter(&[outcome.into()])
                .increment(1);
            if let Some(code) = code {
                catalog::PROVIDER_ERRORS
                    .counter(&[code.to_string().into()])
                    .increment(1);
            }
            tracing::warn!(request = %request.request_id, %error, "send failed");
            SendResult {
                at: Utc::now(),
                outcome: SendOutcome::Failed {
                    code,
                    reason: error.to_string(),
                },
            }
        }
    }
}

/// Stores the message row and publishes its event. Both follow from the result alone (ids
/// and times included), so a replay writes the same row and an event ClickHouse collapses.
async fn record(
    config: &SenderConfig,
    request: &OutboundRequest,
    result: &SendResult,
) -> Result<(), EngineError> {
    // Sent: under the provider's wamid. Failed: kept like a delivery report, under our own
    // request id (the provider gave no wamid).
    let (wamid, timeline, event) = match &result.outcome {
        SendOutcome::Sent { wamid } => {
            let event = AnalyticsEvent::OutboundMessage(OutboundMessageEvent {
                event_id: event_id(&format!("outbound:{}", request.request_id)),
                occurred_at: result.at,
                contact_phone: request.to.clone(),
                business_number: request.business_number.clone(),
                wamid: Some(wamid.clone()),
                message_type: request.content.kind().to_string(),
                template_name: template_name(request),
                body: request.content.body_text().map(str::to_string),
                campaign_id: request.campaign_id.clone(),
                origin: request.origin,
            });
            (wamid.clone(), DeliveryTimeline::default(), event)
        }
        SendOutcome::Failed { code, reason } => {
            let mut timeline = DeliveryTimeline::default();
            timeline.apply(DeliveryStatus::Failed, result.at, *code);
            let event = AnalyticsEvent::MessageStatus(MessageStatusEvent {
                event_id: event_id(&format!("send_failed:{}", request.request_id)),
                occurred_at: result.at,
                contact_phone: request.to.clone(),
                business_number: request.business_number.clone(),
                wamid: request.request_id.clone(),
                status: DeliveryStatus::Failed,
                campaign_id: request.campaign_id.clone(),
                error_code: *code,
                error_title: Some(reason.clone()),
            });
            (request.request_id.clone(), timeline, event)
        }
    };
    let record = MessageRecord {
        wamid,
        contact: request.to.clone(),
        direction: Direction::Outbound,
        kind: request.content.kind().to_string(),
        body: request.content.body_text().map(str::to_string),
        campaign_id: request.campaign_id.clone(),
        created_at: result.at,
        timeline,
    };
    with_retries("put_message", || config.store.put_message(&record)).await?;
    publish(config, request, &event).await
}

async fn send_with_retries(
    config: &SenderConfig,
    request: &OutboundRequest,
    outbound: &OutboundMessage,
) -> Result<String, ProviderError> {
    let started = std::time::Instant::now();
    let retryable = |error: &ProviderError| {
        matches!(
            error.class(),
            ErrorClass::RateLimited | ErrorClass::Transient
        )
    };
    let adjust = |error: &ProviderError, delay: Option<Duration>| {
        // Over a throughput or pair limit: wait long enough for the window to pass.
        let delay = match error.class() {
            ErrorClass::RateLimited => delay? * 5,
            _ => delay?,
        };
        // No attempt starts past the budget (a replay waits that long for a result).
        if started.elapsed() + delay >= config.send_budget {
            return None;
        }
        if let Some(code) = error.code() {
            catalog::PROVIDER_ERRORS
                .counter(&[code.to_string().into()])
                .increment(1);
        }
        tracing::debug!(request = %request.request_id, "send to retry");
        Some(delay)
    };
    RetryPolicy::SENDS
        .run_adjusted("provider_send", retryable, adjust, || async {
            let waited = std::time::Instant::now();
            config.limiter.until_ready(&request.phone_number_id).await;
            catalog::SENDER_RATE_LIMIT_WAIT
                .histogram(&[])
                .record(waited.elapsed().as_secs_f64());
            config
                .provider
                .send(&request.phone_number_id, outbound)
                .await
                .map(|accepted| accepted.wamid)
        })
        .await
}

async fn publish(
    config: &SenderConfig,
    request: &OutboundRequest,
    event: &AnalyticsEvent,
) -> Result<(), EngineError> {
    let payload = serde_json::to_vec(event)
        .map_err(|e| EngineError::actor("sender", format!("encode: {e}")))?;
    let record = Record::new(
        config.events_topic.clone(),
        request.to.as_str().as_bytes().to_vec(),
        payload,
    );
    send_outputs(&*config.producer, vec![record], &config.dead_letter_topic).await?;
    Ok(())
}

fn template_name(request: &OutboundRequest) -> Option<String> {
    match &request.content {
        crate::provider::OutboundContent::Template { name, .. } => Some(name.clone()),
        _ => None,
    }
}
