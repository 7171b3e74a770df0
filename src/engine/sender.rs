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
//!
//! The role reads wa.campaign too (co-partitioned with wa.outbound, so one process owns a
//! number's limiter): campaign sends go to their own lane (`campaign_sender`), which
//! takes what replies leave of the number's rate, and only wa.campaign is paused when that
//! lane is full. Consent is checked again when a reply goes: a reply queued before the
//! customer's STOP is not sent after it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::watch;

use crate::domain::contact::WhatsappStatus;
use crate::domain::message::{DeliveryStatus, DeliveryTimeline};
use crate::provider::{
    ErrorClass, OutboundMessage, PairLimiter, ProviderError, RateLimiter, WhatsappProvider,
};
use crate::storage::bus::{Bus, Message, Producer, Record};
use crate::storage::sink::{AnalyticsEvent, MessageStatusEvent, OutboundMessageEvent};
use crate::storage::store::{
    Claim, ContactStore, Direction, MessageRecord, SendOutcome, SendResult,
};

use super::campaign_sender::{CampaignLane, CampaignLaneConfig};
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
/// Graph error: the number is sending too much (spam rate limit).
const SPAM_RATE: i64 = 131_048;

pub struct SenderConfig {
    pub bus: Arc<dyn Bus>,
    pub producer: Arc<dyn Producer>,
    pub store: Arc<dyn ContactStore>,
    pub provider: Arc<dyn WhatsappProvider>,
    pub limiter: Arc<RateLimiter>,
    /// The pair rate, per (number, customer), for both lanes.
    pub pairs: Arc<PairLimiter>,
    pub group: String,
    pub topic: String,
    pub events_topic: String,
    pub dead_letter_topic: String,
    /// The provider's request timeout: the longest one attempt can take.
    pub request_timeout: Duration,
    /// No attempt starts past this long into a send, so a send ends within it plus one
    /// request (`whatsapp.send_budget_ms`).
    pub send_budget: Duration,
    /// The campaign lane's settings (wa.campaign).
    pub campaigns: CampaignLaneConfig,
}

/// Which queue a send comes from: replies take the next slot of the number's rate,
/// campaign sends what replies leave (a campaign send has taken the slot of its first
/// attempt already, see `campaign_sender`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Reply,
    Campaign,
}

pub async fn run(
    config: Arc<SenderConfig>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let consumer = config
        .bus
        .subscribe(
            &config.group,
            &[config.topic.clone(), config.campaigns.topic.clone()],
        )
        .await?;
    // Replies one at a time, in order: a number's sends keep their order and its limiter
    // paces them. Campaign sends queue in their lane, up to its bound; then only
    // wa.campaign is paused.
    let skeleton = Skeleton {
        role: "sender",
        group: config.group.clone(),
        max_batch: 1,
        max_in_flight: config.campaigns.max_queued.max(1),
        backpressure: Backpressure::PausePartitions,
        commit_interval: Duration::from_millis(200),
        in_flight_gauge: None,
        pause_only: Some(config.campaigns.topic.clone()),
    };
    let lane = CampaignLane::start(config.clone(), shutdown.clone());
    let mut strategy = Sends {
        shutdown: shutdown.clone(),
        config,
        lane,
    };
    skeleton.run(consumer, &mut strategy, shutdown).await
}

struct Sends {
    config: Arc<SenderConfig>,
    /// Seen by a replay waiting for another sender's result.
    shutdown: watch::Receiver<bool>,
    lane: CampaignLane,
}

#[async_trait]
impl Strategy for Sends {
    async fn submit(&mut self, records: Vec<Message>) -> Result<Vec<Token>, EngineError> {
        let mut finished = Vec::with_capacity(records.len());
        for message in records {
            if message.topic == self.config.campaigns.topic {
                self.lane.submit(message);
                continue;
            }
            if !process(&self.config, &message, &mut self.shutdown).await? {
                break; // stopping while waiting: the record is replayed later
            }
            finished.push((message.topic_partition(), message.offset));
        }
        Ok(finished)
    }

    async fn poll(&mut self) -> Result<Vec<Token>, EngineError> {
        // Replies finish within `submit`; campaign sends in their lane.
        self.lane.finished().await
    }

    async fn join(&mut self) -> Result<Vec<Token>, EngineError> {
        self.lane.drain().await
    }

    async fn stop(&mut self) {
        self.lane.stop();
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
    if withdrawn_since(config, &request).await? {
        catalog::SENDER_SENDS
            .counter(&["suppressed".into()])
            .increment(1);
        return Ok(true);
    }
    Ok(deliver(config, &request, Lane::Reply, shutdown)
        .await?
        .is_some())
}

/// Whether the customer opted out after `request` was made (a reply queued before their
/// STOP): consent is checked again when a message goes.
async fn withdrawn_since(
    config: &SenderConfig,
    request: &OutboundRequest,
) -> Result<bool, EngineError> {
    let contact = with_retries("load_contact", || config.store.load_contact(&request.to)).await?;
    Ok(contact.is_some_and(|c| {
        c.whatsapp_status == WhatsappStatus::Unsubscribed
            && c.consent_change
                .as_ref()
                .is_some_and(|change| change.at > request.created_at)
    }))
}

/// What came of a send: the result kept for it, and how its error is to be taken when
/// this sender saw it (`None` for a result recorded before).
pub(super) type Delivered = (SendResult, Option<ErrorClass>);

/// Claims `request`, sends it (or finishes a send claimed before) and records the message
/// row and its event. `None` when it stopped while waiting for another sender's result.
pub(super) async fn deliver(
    config: &SenderConfig,
    request: &OutboundRequest,
    lane: Lane,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Delivered>, EngineError> {
    let claim = with_retries("claim_send", || {
        config.store.claim_send(&request.request_id, &request.to)
    })
    .await?;
    let delivered = match claim {
        Claim::Claimed => {
            let (result, class) = send(config, request, lane).await;
            // Before anything else: a replay finishes from it instead of sending again.
            keep_result(config, request, &result).await?;
            (result, class)
        }
        Claim::AlreadyClaimed(claimed_at) => {
            catalog::SENDER_SENDS
                .counter(&["duplicate".into()])
                .increment(1);
            match claimed_result(config, request, &claimed_at, shutdown).await? {
                Some(result) => (result, None),
                None => return Ok(None),
            }
        }
    };
    record(config, request, &delivered.0).await?;
    Ok(Some(delivered))
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

/// Publishes each business number's configured limit beside the rate it uses
/// (`sembang_sender_number_sends_total`), for the dashboards' "used vs limit".
pub fn report_limits(
    default_number: &str,
    default_rate: u32,
    rates: &std::collections::BTreeMap<String, u32>,
) {
    let numbers = std::iter::once((default_number, default_rate))
        .filter(|(number, _)| !number.is_empty())
        .chain(rates.iter().map(|(number, rate)| (number.as_str(), *rate)));
    for (number, rate) in numbers {
        let limit = rates.get(number).copied().unwrap_or(rate);
        catalog::SENDER_RATE_LIMIT
            .gauge(&[number.to_string().into()])
            .set(f64::from(limit));
    }
}

/// Sends the request (retrying what may be retried) and says what came of it.
async fn send(
    config: &SenderConfig,
    request: &OutboundRequest,
    lane: Lane,
) -> (SendResult, Option<ErrorClass>) {
    let outbound = OutboundMessage {
        to: request.to.clone(),
        content: request.content.clone(),
    };
    match send_with_retries(config, request, &outbound, lane).await {
        Ok(wamid) => {
            catalog::SENDER_SENDS.counter(&["sent".into()]).increment(1);
            catalog::SENDER_NUMBER_SENDS
                .counter(&[request.phone_number_id.clone().into()])
                .increment(1);
            let result = SendResult {
                at: Utc::now(),
                outcome: SendOutcome::Sent { wamid },
            };
            (result, None)
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
            let result = SendResult {
                at: Utc::now(),
                outcome: SendOutcome::Failed {
                    code,
                    reason: error.to_string(),
                },
            };
            (result, Some(error.class()))
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
    lane: Lane,
) -> Result<String, ProviderError> {
    let started = std::time::Instant::now();
    let retryable = |error: &ProviderError| {
        matches!(
            error.class(),
            ErrorClass::RateLimited | ErrorClass::Transient
        )
    };
    let adjust = |error: &ProviderError, delay: Option<Duration>| {
        // Over a throughput or pair limit: wait long enough for the window to pass; a
        // spam-rate warning (131048) says the number is sending too much: much longer.
        let delay = match (error.class(), error.code()) {
            (ErrorClass::RateLimited, Some(SPAM_RATE)) => delay? * 20,
            (ErrorClass::RateLimited, _) => delay? * 5,
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
    // A campaign send took its first slot just before (after checking its campaign is
    // still running): only its retries wait again.
    let first_paced = std::sync::atomic::AtomicBool::new(lane == Lane::Campaign);
    RetryPolicy::SENDS
        .run_adjusted("provider_send", retryable, adjust, || async {
            let waited = std::time::Instant::now();
            match lane {
                Lane::Reply => {
                    if !config
                        .pairs
                        .reply_now(&request.phone_number_id, request.to.as_str())
                    {
                        tracing::debug!(request = %request.request_id, "reply over the pair burst");
                    }
                    config.limiter.until_ready(&request.phone_number_id).await
                }
                Lane::Campaign => {
                    if !first_paced.swap(false, std::sync::atomic::Ordering::Relaxed) {
                        config
                            .limiter
                            .until_ready_after_replies(&request.phone_number_id)
                            .await
                    }
                }
            }
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
