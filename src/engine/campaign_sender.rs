//! The sender's campaign lane: wa.campaign records, one at a time on a task of their own,
//! so replies on the same number never wait behind a campaign's backlog (the limiter gives
//! them the next slot). For each send, at the moment it goes:
//!
//! - the campaign's status (a paused or not-yet-running campaign leaves the recipient
//!   pending: a resume sends it later; a cancelled one skips it) and its end (expired);
//! - the recipient's row (already sent, skipped or failed: nothing to do);
//! - quiet hours, the portfolio's 24 h messaging limit: the recipient stays pending and the
//!   campaign clock resumes the campaign when it stalls;
//! - consent, the frequency cap and the 24 h window, again, on the contact as stored;
//! - the message rendered for the contact, links rewritten to tracking links;
//! - then the send, claimed once under (campaign, contact, attempt), and its bookkeeping:
//!   the recipient's step, an analytics event, and the outcome to the contact's shard
//!   (campaign touch, or 131026 / 131050 applied to the contact).
//!
//! A campaign pauses itself after `pause_after_errors` consecutive refusals that retrying
//! cannot fix (a bad token, a paused template).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch, Semaphore};

use std::sync::Mutex;

use crate::campaigns::content::outbound_content;
use crate::campaigns::definition_of;
use crate::campaigns::links::{rewrite, LinkSealer};
use crate::domain::campaign::{
    exclusion, CampaignDefinition, CampaignMessage, CampaignStatus, CapRetry, CapRetryPolicy,
    Failure, FrequencyCap, QuietHours, RecipientUpdate, SkipReason, ECOSYSTEM_CAP,
};
use crate::metrics::catalog;
use crate::provider::ErrorClass;
use crate::retry::with_retries;
use crate::storage::bus::refused::send_outputs;
use crate::storage::bus::{Message, Record};
use crate::storage::sink::{AnalyticsEvent, CampaignSendEvent, SendOutcome};
use crate::storage::store::{CampaignRecord, SendOutcome as Outcome};
use crate::topics::campaign::CampaignSend;
use crate::topics::inbound::{
    Business, CampaignSendOutcome, CampaignSendResult, EventPayload, InboundEvent,
};
use crate::topics::outbound::{Origin, OutboundRequest};

use super::apply::UNDELIVERABLE;
use super::apply_campaign::MARKETING_STOPPED;
use super::consumer::{send_dead_letter, Token};
use super::error::EngineError;
use super::messaging_limit::MessagingLimit;
use super::sender::{deliver, Lane, SenderConfig};

/// How long a triggered send waits for its contact's row to be written.
const TRIGGER_ROW_WAIT: Duration = Duration::from_secs(5);
/// Campaign sends in progress at once, at most.
const CONCURRENT_SENDS: usize = 64;
/// How long a campaign's status is taken from the cache: a pause takes effect within it.
const CAMPAIGN_TTL: Duration = Duration::from_secs(1);
/// Graph error codes the lane treats in their own way.
const OUTSIDE_WINDOW: i64 = 131_047;

/// The lane's settings.
#[derive(Clone)]
pub struct CampaignLaneConfig {
    /// wa.campaign (namespaced).
    pub topic: String,
    /// wa.inbound: send outcomes go to the contact's shard.
    pub inbound_topic: String,
    /// Campaign sends taken from the topic and not finished, at most.
    pub max_queued: usize,
    pub quiet_hours: QuietHours,
    pub frequency_cap: FrequencyCap,
    /// Automatic retries after Meta's marketing cap (131049).
    pub cap_retry: CapRetryPolicy,
    /// Unique customers reached by campaigns in a moving 24 h; 0 = unlimited.
    pub messaging_limit: u64,
    pub pause_after_errors: u32,
    /// `<base>/r/<token>` tracking links, when a base and a key are given.
    pub link_base_url: String,
    pub links: Option<Arc<LinkSealer>>,
    /// The business account id for the outcomes' envelope.
    pub waba_id: String,
    /// The clock (a test moves it).
    pub now: fn() -> DateTime<Utc>,
}

/// The lane as the sender's strategy holds it.
pub struct CampaignLane {
    tx: mpsc::UnboundedSender<Message>,
    /// A finished send's token; `None` for one left unfinished (stopping).
    done: mpsc::UnboundedReceiver<Result<Option<Token>, EngineError>>,
    in_flight: usize,
    task: tokio::task::JoinHandle<()>,
}

impl CampaignLane {
    pub fn start(config: Arc<SenderConfig>, shutdown: watch::Receiver<bool>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let (done_tx, done) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let worker = Arc::new(Worker::new(config, shutdown));
            // Sends overlap (each takes its slot of the number's rate from the limiter),
            // so a send's store and bus round trips do not cap the rate below the limit.
            let permits = Arc::new(Semaphore::new(CONCURRENT_SENDS));
            while let Some(message) = rx.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (worker, done_tx) = (worker.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let token = (message.topic_partition(), message.offset);
                    let outcome = match worker.process(&message).await {
                        Ok(true) => Ok(Some(token)),
                        // Stopping mid-send: left unfinished, replayed later.
                        Ok(false) => Ok(None),
                        Err(e) => Err(e),
                    };
                    drop(permit);
                    let _ = done_tx.send(outcome);
                });
            }
        });
        CampaignLane {
            tx,
            done,
            in_flight: 0,
            task,
        }
    }

    pub fn submit(&mut self, message: Message) {
        if self.tx.send(message).is_ok() {
            self.in_flight += 1;
            catalog::CAMPAIGN_QUEUE
                .gauge(&[])
                .set(self.in_flight as f64);
        }
    }

    fn finish(
        &mut self,
        result: Result<Option<Token>, EngineError>,
    ) -> Result<Vec<Token>, EngineError> {
        self.in_flight = self.in_flight.saturating_sub(1);
        catalog::CAMPAIGN_QUEUE
            .gauge(&[])
            .set(self.in_flight as f64);
        result.map(|token| token.into_iter().collect())
    }

    /// The next finished send (cancel-safe; never resolves while nothing is queued).
    pub async fn finished(&mut self) -> Result<Vec<Token>, EngineError> {
        match self.done.recv().await {
            Some(result) => self.finish(result),
            None => std::future::pending().await,
        }
    }

    /// Waits for every queued send (bounded by `max_queued` at the number's rate).
    pub async fn drain(&mut self) -> Result<Vec<Token>, EngineError> {
        let mut tokens = Vec::new();
        while self.in_flight > 0 {
            match self.done.recv().await {
                Some(result) => tokens.extend(self.finish(result)?),
                // The task ended (stopping): the rest is replayed later.
                None => break,
            }
        }
        Ok(tokens)
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

enum Decision {
    /// Nothing to send now; the record is done.
    Done,
    /// Recorded as skipped, with this reason.
    Skip(SkipReason),
    /// Left pending (paused, quiet hours, messaging limit): a resume sends it.
    Hold(&'static str),
    /// The request, and the campaign's attribution window for the contact's touch.
    Send(Box<OutboundRequest>, u16),
}

type CachedCampaign = Option<(CampaignRecord, CampaignDefinition)>;

/// Shared by the sends in progress.
struct Worker {
    config: Arc<SenderConfig>,
    shutdown: watch::Receiver<bool>,
    campaigns: Mutex<HashMap<String, (Instant, CachedCampaign)>>,
    limit: MessagingLimit,
    consecutive_errors: Mutex<HashMap<String, u32>>,
    /// Campaigns this worker is pausing (its refusal limit reached, the store not yet
    /// written): their sends are held at once, not after the write.
    pausing: Mutex<std::collections::HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Worker {
    fn new(config: Arc<SenderConfig>, shutdown: watch::Receiver<bool>) -> Self {
        let limit = MessagingLimit::new(config.store.clone(), config.campaigns.messaging_limit);
        Worker {
            config,
            shutdown,
            campaigns: Mutex::new(HashMap::new()),
            limit,
            consecutive_errors: Mutex::new(HashMap::new()),
            pausing: Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn lane(&self) -> &CampaignLaneConfig {
        &self.config.campaigns
    }

    /// True when the record is finished.
    async fn process(&self, message: &Message) -> Result<bool, EngineError> {
        let send: CampaignSend = match serde_json::from_slice(&message.payload) {
            Ok(send) => send,
            Err(e) => {
                send_dead_letter(
                    &*self.config.producer,
                    &self.config.dead_letter_topic,
                    message,
                    "malformed_campaign_send",
                    &e.to_string(),
                )
                .await?;
                return Ok(true);
            }
        };
        let now = (self.lane().now)();
        let decision = self.decide(&send, now).await?;
        tracing::debug!(
            request = %send.request_id(),
            offset = message.offset,
            decision = match &decision {
                Decision::Done => "done",
                Decision::Skip(_) => "skip",
                Decision::Hold(why) => why,
                Decision::Send(..) => "send",
            },
            "campaign send"
        );
        match decision {
            Decision::Done => Ok(true),
            Decision::Hold(why) => {
                catalog::CAMPAIGN_SENDS.counter(&[why.into()]).increment(1);
                Ok(true)
            }
            Decision::Skip(reason) => {
                self.skip(&send, reason, now).await?;
                Ok(true)
            }
            Decision::Send(request, attribution_days) => {
                self.send(&send, &request, attribution_days).await
            }
        }
    }

    async fn campaign(&self, campaign_id: &str) -> Result<CachedCampaign, EngineError> {
        if let Some((at, cached)) = lock(&self.campaigns).get(campaign_id) {
            if at.elapsed() < CAMPAIGN_TTL {
                return Ok(cached.clone());
            }
        }
        self.campaign_from_store(campaign_id).await
    }

    /// The campaign as stored now. A send is held only on this: a cached "paused" may be
    /// a second old, and a send the resume re-enqueued must not be held by it.
    async fn running_now(&self, campaign_id: &str) -> Result<CachedCampaign, EngineError> {
        if lock(&self.pausing).contains(campaign_id) {
            return Ok(None);
        }
        match self.campaign(campaign_id).await? {
            Some((record, definition)) if record.status == CampaignStatus::Running => {
                Ok(Some((record, definition)))
            }
            _ => self.campaign_from_store(campaign_id).await,
        }
    }

    async fn campaign_from_store(&self, campaign_id: &str) -> Result<CachedCampaign, EngineError> {
        let store = self.config.store.clone();
        let record = with_retries("campaign", || store.campaign(campaign_id)).await?;
        let loaded = record.and_then(|record| match definition_of(&record) {
            Ok(definition) => Some((record, definition)),
            Err(e) => {
                tracing::error!(campaign = campaign_id, error = %e, "stored campaign does not parse");
                None
            }
        });
        let mut campaigns = lock(&self.campaigns);
        if campaigns.len() > 1_000 {
            campaigns.clear();
        }
        campaigns.insert(campaign_id.to_string(), (Instant::now(), loaded.clone()));
        Ok(loaded)
    }

    async fn decide(
        &self,
        send: &CampaignSend,
        now: DateTime<Utc>,
    ) -> Result<Decision, EngineError> {
        let Some((record, definition)) = self.running_now(&send.campaign_id).await? else {
            return Ok(Decision::Done);
        };
        match record.status {
            CampaignStatus::Cancelled => return Ok(Decision::Skip(SkipReason::Cancelled)),
            CampaignStatus::Running => {}
            _ => return Ok(Decision::Hold("held")),
        }
        if definition.scheduled_end.is_some_and(|end| now >= end) {
            return Ok(Decision::Skip(SkipReason::Expired));
        }
        let store = self.config.store.clone();
        let steps =
            with_retries("recipient", || store.recipient(&send.campaign_id, &send.to)).await?;
        // A retry is of one failure: none once the recipient has failed again since (or
        // sent, or been skipped).
        let same_failure = |s: &crate::domain::campaign::RecipientSteps| {
            send.retry_of.is_none_or(|of| s.failure_ms() == Some(of))
        };
        let due = match (&steps, send.attempt, send.occurrence) {
            // A trigger's occurrence: its own claim key says whether it went already.
            (_, _, Some(_)) => true,
            // An automatic retry after the marketing cap: only the one due now (not one
            // made stale by a later send or refusal).
            (steps, _, None) if send.cap_retry > 0 => steps.as_ref().is_some_and(|s| {
                s.cap_retry(self.lane().cap_retry, now) == CapRetry::Due(send.cap_retry)
                    && same_failure(s)
            }),
            (None, 0, None) => true,
            (Some(steps), 0, None) => steps.awaits_send(),
            (steps, _, None) => steps
                .as_ref()
                .is_some_and(|s| s.retryable_failure() && same_failure(s)),
        };
        if !due {
            return Ok(Decision::Done);
        }
        if self.lane().quiet_hours.resumes_at(now).is_some() {
            return Ok(Decision::Hold("quiet_hours"));
        }
        let Some(contact) = self.contact_as_of(send).await? else {
            return Ok(Decision::Skip(SkipReason::UnknownContact));
        };
        let cap = definition
            .frequency_cap
            .unwrap_or(self.lane().frequency_cap);
        if let Some(reason) = exclusion(&contact, definition.message.is_free_form(), cap, now) {
            return Ok(Decision::Skip(reason));
        }
        let rendered = match self.tracked(&definition, send).render(&contact) {
            Ok(rendered) => rendered,
            Err(e) => {
                tracing::warn!(campaign = %send.campaign_id, error = %e, "message could not be rendered");
                return Ok(Decision::Skip(SkipReason::RenderFailed));
            }
        };
        if !self.limit.admit(&send.to, now).await? {
            return Ok(Decision::Hold("messaging_limit"));
        }
        let content = outbound_content(rendered, &|text| text);
        Ok(Decision::Send(
            Box::new(OutboundRequest {
                request_id: send.request_id(),
                phone_number_id: send.phone_number_id.clone(),
                business_number: send.business_number.clone(),
                to: send.to.clone(),
                content,
                origin: Origin::Campaign,
                rule: None,
                campaign_id: Some(send.campaign_id.clone()),
                in_reply_to: None,
                created_at: send.planned_at,
            }),
            definition.attribution_days,
        ))
    }

    /// The contact as stored. A triggered send is written by the contact's shard before
    /// the contact's row (so a crash cannot lose it): it waits (a little) for the row of
    /// the change that triggered it, to personalise with the new tier, the new name.
    async fn contact_as_of(
        &self,
        send: &CampaignSend,
    ) -> Result<Option<crate::domain::contact::Contact>, EngineError> {
        let store = self.config.store.clone();
        let deadline = Instant::now() + TRIGGER_ROW_WAIT;
        loop {
            let contact = with_retries("load_contact", || store.load_contact(&send.to)).await?;
            let fresh = send.occurrence.is_none()
                || contact
                    .as_ref()
                    // Stores keep milliseconds.
                    .is_some_and(|c| {
                        c.updated_at.timestamp_millis() >= send.planned_at.timestamp_millis()
                    });
            if fresh || Instant::now() >= deadline {
                return Ok(contact);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The message with its links replaced by this recipient's tracking links (on the text
    /// as written, so links are numbered as the click side numbers them).
    fn tracked(&self, definition: &CampaignDefinition, send: &CampaignSend) -> CampaignMessage {
        let lane = self.lane();
        match (&lane.links, definition.track_links) {
            (Some(sealer), true) if !lane.link_base_url.is_empty() => {
                definition.message.with_trackable_text(|text| {
                    rewrite(
                        text,
                        &lane.link_base_url,
                        &send.campaign_id,
                        &send.to,
                        sealer,
                    )
                })
            }
            _ => definition.message.clone(),
        }
    }

    async fn send(
        &self,
        send: &CampaignSend,
        request: &OutboundRequest,
        attribution_days: u16,
    ) -> Result<bool, EngineError> {
        self.config
            .pairs
            .until_campaign_ready(&request.phone_number_id, request.to.as_str())
            .await;
        // The slot of the number's rate just before the request, so requests reach the
        // provider evenly spaced; then the campaign's status once more (from memory): a
        // pause or cancel stops what was waiting for the rate.
        self.config
            .limiter
            .until_ready_after_replies(&send.phone_number_id)
            .await;
        match self.running_now(&send.campaign_id).await? {
            Some((record, _)) if record.status == CampaignStatus::Running => {}
            Some((record, _)) if record.status == CampaignStatus::Cancelled => {
                self.skip(send, SkipReason::Cancelled, Utc::now()).await?;
                return Ok(true);
            }
            _ => {
                catalog::CAMPAIGN_SENDS
                    .counter(&["held".into()])
                    .increment(1);
                return Ok(true);
            }
        }
        let config = self.config.clone();
        let mut shutdown = self.shutdown.clone();
        let Some((result, class)) =
            deliver(&config, request, Lane::Campaign, &mut shutdown).await?
        else {
            return Ok(false);
        };
        let at = result.at;
        let mut outputs = Vec::new();
        let (update, outcome, event) = match &result.outcome {
            Outcome::Sent { wamid } => {
                lock(&self.consecutive_errors).remove(&send.campaign_id);
                catalog::CAMPAIGN_SENDS
                    .counter(&["sent".into()])
                    .increment(1);
                (
                    RecipientUpdate::Sent {
                        at,
                        wamid: wamid.clone(),
                    },
                    Some(CampaignSendResult::Sent {
                        wamid: wamid.clone(),
                        attribution_days,
                    }),
                    (SendOutcome::Sent, Some(wamid.clone()), None, None),
                )
            }
            Outcome::Failed { code, reason } => {
                let (update, outcome_label) = self.failure(send, *code, reason, class, at).await?;
                catalog::CAMPAIGN_SENDS
                    .counter(&[outcome_label.into()])
                    .increment(1);
                let (event_outcome, skip) = match &update {
                    RecipientUpdate::Skipped { reason, .. } => {
                        (SendOutcome::Skipped, Some(reason.as_str().to_string()))
                    }
                    _ => (SendOutcome::Failed, None),
                };
                (
                    update,
                    Some(CampaignSendResult::Failed { code: *code }),
                    (event_outcome, None, skip, *code),
                )
            }
        };
        let store = self.config.store.clone();
        let updates = [(send.to.clone(), update)];
        with_retries("record_recipients", || {
            store.record_recipients(&send.campaign_id, &updates)
        })
        .await?;
        if let Some(result) = outcome {
            outputs.push(self.outcome_record(send, request, at, result));
        }
        let (event_outcome, wamid, skip_reason, error_code) = event;
        outputs.push(self.event_record(send, at, event_outcome, wamid, skip_reason, error_code));
        send_outputs(
            &*self.config.producer,
            outputs,
            &self.config.dead_letter_topic,
        )
        .await?;
        Ok(true)
    }

    /// The recipient's step for a refused send, and the metric label.
    async fn failure(
        &self,
        send: &CampaignSend,
        code: Option<i64>,
        reason: &str,
        class: Option<ErrorClass>,
        at: DateTime<Utc>,
    ) -> Result<(RecipientUpdate, &'static str), EngineError> {
        let failed = |retryable| {
            RecipientUpdate::Failed(Failure {
                at,
                code,
                reason: reason.to_string(),
                retryable,
                // "Retry the failed" takes over from the automatic retries.
                cap_retries: if send.attempt == 0 {
                    send.cap_retry
                } else {
                    self.lane().cap_retry.max
                },
            })
        };
        Ok(match code {
            Some(OUTSIDE_WINDOW) => (
                RecipientUpdate::Skipped {
                    at,
                    reason: SkipReason::OutsideWindow,
                },
                "skipped",
            ),
            Some(MARKETING_STOPPED) => (
                RecipientUpdate::Skipped {
                    at,
                    reason: SkipReason::NoConsent,
                },
                "skipped",
            ),
            Some(UNDELIVERABLE) => (failed(false), "failed"),
            // Meta's per-user marketing cap: retried after hours, by the campaign clock
            // (`cap_retry`) or by "retry the failed".
            Some(ECOSYSTEM_CAP) => (failed(true), "failed"),
            _ => match class {
                // Still over a rate limit, or the provider down, when the send budget ran
                // out: sending again may work.
                Some(ErrorClass::RateLimited | ErrorClass::Transient) => (failed(true), "failed"),
                // The provider may have taken it: never sent again.
                Some(ErrorClass::OutcomeUnknown) | None => (failed(false), "unknown"),
                Some(ErrorClass::Permanent) => {
                    self.count_error(send).await?;
                    (failed(false), "failed")
                }
            },
        })
    }

    /// One more refusal in a row; at the limit the campaign pauses itself.
    async fn count_error(&self, send: &CampaignSend) -> Result<(), EngineError> {
        let limit = self.lane().pause_after_errors;
        {
            let mut consecutive = lock(&self.consecutive_errors);
            let errors = consecutive.entry(send.campaign_id.clone()).or_default();
            *errors += 1;
            if limit == 0 || *errors < limit {
                return Ok(());
            }
            consecutive.remove(&send.campaign_id);
        }
        lock(&self.pausing).insert(send.campaign_id.clone());
        let paused = self.pause(send, limit).await;
        lock(&self.pausing).remove(&send.campaign_id);
        paused
    }

    async fn pause(&self, send: &CampaignSend, limit: u32) -> Result<(), EngineError> {
        let store = self.config.store.clone();
        let Some(mut record) =
            with_retries("campaign", || store.campaign(&send.campaign_id)).await?
        else {
            return Ok(());
        };
        if record.status != CampaignStatus::Running {
            return Ok(());
        }
        record.status = CampaignStatus::Paused;
        record.updated_at = Utc::now();
        with_retries("put_campaign", || store.put_campaign(&record)).await?;
        lock(&self.campaigns).remove(&send.campaign_id);
        tracing::error!(
            campaign = %send.campaign_id,
            errors = limit,
            "campaign paused after consecutive refusals: fix the cause (token, template) and resume it"
        );
        Ok(())
    }

    async fn skip(
        &self,
        send: &CampaignSend,
        reason: SkipReason,
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        catalog::CAMPAIGN_SENDS
            .counter(&[match reason {
                SkipReason::Expired => "expired",
                SkipReason::Cancelled => "cancelled",
                _ => "skipped",
            }
            .into()])
            .increment(1);
        let store = self.config.store.clone();
        let updates = [(send.to.clone(), RecipientUpdate::Skipped { at, reason })];
        with_retries("record_recipients", || {
            store.record_recipients(&send.campaign_id, &updates)
        })
        .await?;
        let event = self.event_record(
            send,
            at,
            SendOutcome::Skipped,
            None,
            Some(reason.as_str().to_string()),
            None,
        );
        send_outputs(
            &*self.config.producer,
            vec![event],
            &self.config.dead_letter_topic,
        )
        .await?;
        Ok(())
    }

    fn outcome_record(
        &self,
        send: &CampaignSend,
        request: &OutboundRequest,
        at: DateTime<Utc>,
        result: CampaignSendResult,
    ) -> Record {
        let event = InboundEvent {
            business: Business {
                waba_id: self.lane().waba_id.clone(),
                phone_number_id: request.phone_number_id.clone(),
                display_phone_number: request.business_number.clone(),
            },
            payload: EventPayload::CampaignSend(CampaignSendOutcome {
                request_id: request.request_id.clone(),
                campaign_id: send.campaign_id.clone(),
                wa_id: send.to.as_str().to_string(),
                at,
                result,
            }),
        };
        Record::new(
            self.lane().inbound_topic.clone(),
            send.to.as_str().as_bytes().to_vec(),
            serde_json::to_vec(&event).expect("an inbound event serializes"),
        )
    }

    fn event_record(
        &self,
        send: &CampaignSend,
        at: DateTime<Utc>,
        outcome: SendOutcome,
        wamid: Option<String>,
        skip_reason: Option<String>,
        error_code: Option<i64>,
    ) -> Record {
        let event = AnalyticsEvent::CampaignSend(CampaignSendEvent {
            wamid,
            skip_reason,
            error_code,
            ..CampaignSendEvent::step(
                &format!("campaign_{}:{}", outcome.as_str(), send.request_id()),
                at,
                &send.campaign_id,
                &send.to,
                &send.business_number,
                outcome,
            )
        });
        Record::new(
            self.config.events_topic.clone(),
            send.to.as_str().as_bytes().to_vec(),
            serde_json::to_vec(&event).expect("an event serializes"),
        )
    }
}
