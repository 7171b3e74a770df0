//! The OCR role (consumer group "ocr" on crm.ocr.jobs): fetches each job's photo, checks
//! and keeps it (object store, by SHA-256), reads it in the Tesseract pool, and turns the
//! reading into an [`OcrResult`] for the contact's shard on crm.ocr.results, plus an OCR
//! event for analytics. It does the I/O the shard must not: protecting the IC number and
//! linking it to the contact (never moving it from another number), and claiming the
//! receipt's fingerprints so the same receipt never counts twice.
//!
//! Jobs run concurrently (up to twice the pool's workers); offsets are committed only for
//! the finished prefix. When that many are in flight the role pauses its partitions
//! (backpressure: nothing more is fetched, nothing is dropped) and keeps polling, so it
//! stays in its group and answers rebalances; it resumes them when a job finishes. A photo
//! that cannot be fetched after retries, or read, becomes a rejected result (the customer
//! is asked for a clearer photo) and the job is also kept in the dead-letter topic for an
//! operator.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Secret;
use crate::domain::money::Money;
use crate::media::{MediaClient, MediaError, MediaLimits, ObjectStore};
use crate::ocr::{process, OcrPool, PipelineError, Reading};
use crate::pii::IcVault;
use crate::storage::bus::{
    Bus, Consumer, ConsumerEvent, Message, Producer, Record, TopicPartition,
};
use crate::storage::sink::{AnalyticsEvent, OcrResultEvent};
use crate::storage::store::{Claim, ContactStore, IcLink};

use super::error::EngineError;
use super::inbound::send_dead_letter;
use super::offsets::OffsetTracker;
use super::outputs::send_outputs;
use super::retry::with_retries;
use crate::metrics::catalog;
use crate::topics::event_id;
use crate::topics::ocr::{
    IcLinkOutcome, MyKadReading, OcrJob, OcrOutcome, OcrResult, ReceiptReading, STORED_MEDIA_PREFIX,
};

const FETCH_ATTEMPTS: u32 = 3;

/// Where photos come from.
pub enum MediaSource {
    /// Cloud API media ids (two-step download with the access token).
    CloudApi {
        base_url: String,
        version: String,
        token: Secret,
    },
    /// Only URLs carried by the job (wabot.my).
    UrlsOnly,
}

pub struct OcrRoleConfig {
    pub bus: Arc<dyn Bus>,
    pub producer: Arc<dyn Producer>,
    pub store: Arc<dyn ContactStore>,
    pub pool: Arc<OcrPool>,
    pub objects: Arc<dyn ObjectStore>,
    pub vault: Arc<IcVault>,
    pub source: MediaSource,
    pub client: MediaClient,
    pub limits: MediaLimits,
    pub concurrency: usize,
    pub group: String,
    pub topic: String,
    pub results_topic: String,
    pub events_topic: String,
    pub dead_letter_topic: String,
}

pub async fn run(
    config: Arc<OcrRoleConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mut consumer = config
        .bus
        .subscribe(&config.group, std::slice::from_ref(&config.topic))
        .await?;
    let mut tracker = OffsetTracker::new();
    let mut running: JoinSet<Result<(TopicPartition, u64), EngineError>> = JoinSet::new();
    let mut commit_tick = tokio::time::interval(Duration::from_millis(200));
    let mut flow = Flow::new(&config.group);
    loop {
        flow.follow(&mut *consumer, running.len() >= config.concurrency)
            .await?;
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            Some(done) = running.join_next() => {
                let (tp, offset) = done.map_err(|e| EngineError::actor("ocr", e))??;
                tracker.finish(&tp, offset);
            }
            _ = commit_tick.tick() => {
                let offsets = tracker.take_committable();
                if !offsets.is_empty() {
                    consumer.commit(&offsets).await?;
                }
                catalog::OCR_JOBS_IN_FLIGHT.gauge(&[]).set(running.len() as f64);
            }
            // Always polled, paused or not: rebalances are answered while the pool is full.
            event = consumer.next() => match event? {
                // Possibly fetched just before a pause: taken, never dropped.
                ConsumerEvent::Message(message) => {
                    let tp = message.topic_partition();
                    tracker.start(&tp, message.offset);
                    let config = config.clone();
                    running.spawn(async move {
                        handle(&config, &message).await?;
                        Ok((message.topic_partition(), message.offset))
                    });
                }
                ConsumerEvent::Assigned(partitions) => flow.assigned(&mut *consumer, partitions).await?,
                ConsumerEvent::Revoked { partitions, ack } => {
                    // Finish what is running, then hand over the finished prefix.
                    while let Some(done) = running.join_next().await {
                        let (tp, offset) = done.map_err(|e| EngineError::actor("ocr", e))??;
                        tracker.finish(&tp, offset);
                    }
                    let offsets = partitions
                        .iter()
                        .filter_map(|tp| tracker.committable(tp).map(|o| (tp.clone(), o)))
                        .collect();
                    ack.commit(offsets);
                    for tp in &partitions {
                        tracker.forget(tp);
                    }
                    flow.revoked(&partitions);
                }
            },
        }
    }
    while let Some(done) = running.join_next().await {
        let (tp, offset) = done.map_err(|e| EngineError::actor("ocr", e))??;
        tracker.finish(&tp, offset);
    }
    let offsets = tracker.take_committable();
    if !offsets.is_empty() {
        consumer.commit(&offsets).await?;
    }
    consumer.close().await?;
    Ok(())
}

/// Pauses the role's partitions while it is full and resumes them when it is not.
struct Flow {
    group: String,
    assigned: BTreeSet<TopicPartition>,
    paused: bool,
}

impl Flow {
    fn new(group: &str) -> Flow {
        Flow {
            group: group.to_string(),
            assigned: BTreeSet::new(),
            paused: false,
        }
    }

    async fn follow(&mut self, consumer: &mut dyn Consumer, full: bool) -> Result<(), EngineError> {
        if full == self.paused {
            return Ok(());
        }
        let partitions: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        if full {
            consumer.pause(&partitions).await?;
            catalog::OCR_PAUSES
                .counter(&[self.group.clone().into()])
                .increment(1);
        } else {
            consumer.resume(&partitions).await?;
        }
        self.paused = full;
        self.report();
        Ok(())
    }

    async fn assigned(
        &mut self,
        consumer: &mut dyn Consumer,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), EngineError> {
        if self.paused {
            consumer.pause(&partitions).await?;
        }
        self.assigned.extend(partitions);
        self.report();
        Ok(())
    }

    fn revoked(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.assigned.remove(tp);
        }
        self.report();
    }

    fn report(&self) {
        let paused = if self.paused { self.assigned.len() } else { 0 };
        catalog::OCR_PARTITIONS_PAUSED
            .gauge(&[self.group.clone().into()])
            .set(paused as f64);
    }
}

async fn handle(config: &OcrRoleConfig, message: &Message) -> Result<(), EngineError> {
    let job: OcrJob = match serde_json::from_slice(&message.payload) {
        Ok(job) => job,
        Err(e) => {
            return send_dead_letter(
                &*config.producer,
                &config.dead_letter_topic,
                message,
                "malformed_ocr_job",
                &e.to_string(),
            )
            .await
        }
    };
    let started = std::time::Instant::now();
    let bytes = match fetch(config, &job).await {
        Ok(bytes) => Ok(bytes),
        Err(error) => {
            send_dead_letter(
                &*config.producer,
                &config.dead_letter_topic,
                message,
                error.kind(),
                &error.to_string(),
            )
            .await?;
            Err(error)
        }
    };
    let (outcome, confidence, sha256, fields, error) = match bytes {
        Err(error) => (
            OcrOutcome::Rejected {
                read_as: "unknown".into(),
                reason: unfetched_reason(&error),
            },
            0.0,
            None,
            serde_json::json!({}),
            Some(error.kind().to_string()),
        ),
        Ok(bytes) => read(config, &job, bytes).await?,
    };
    let status = match &outcome {
        OcrOutcome::Rejected { .. } if error.is_some() => "failed",
        OcrOutcome::Rejected { .. } => "rejected",
        _ => "parsed",
    };
    let kind = match &outcome {
        OcrOutcome::MyKad(_) => "ic".to_string(),
        OcrOutcome::Receipt(_) => "receipt".to_string(),
        OcrOutcome::Rejected { read_as, .. } => read_as.clone(),
    };
    catalog::OCR_OUTCOMES
        .counter(&[kind.clone().into(), status.into()])
        .increment(1);
    let result = OcrResult {
        job_id: job.job_id.clone(),
        contact: job.contact.clone(),
        business: job.business.clone(),
        image_sha256: sha256,
        confidence,
        outcome,
        completed_at: Utc::now(),
    };
    let event = AnalyticsEvent::OcrResult(OcrResultEvent {
        event_id: event_id(&format!("ocr:{}", job.job_id)),
        occurred_at: result.completed_at,
        contact_phone: job.contact.clone(),
        media_id: job.media_id.clone(),
        kind,
        status: status.into(),
        confidence,
        duration_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
        fields_json: fields.to_string(),
        error,
    });
    let key = job.contact.as_str().as_bytes().to_vec();
    let records = vec![
        Record::new(config.results_topic.clone(), key.clone(), to_json(&result)?),
        Record::new(config.events_topic.clone(), key, to_json(&event)?),
    ];
    send_outputs(&*config.producer, records, &config.dead_letter_topic).await?;
    Ok(())
}

/// What the customer is told about a photo that never reached the reader.
fn unfetched_reason(error: &MediaError) -> String {
    match error {
        MediaError::TooLarge { max_bytes, .. } => format!(
            "the photo is larger than {} MB",
            max_bytes.div_ceil(1024 * 1024)
        ),
        _ => "the photo could not be downloaded".into(),
    }
}

async fn fetch(config: &OcrRoleConfig, job: &OcrJob) -> Result<Vec<u8>, MediaError> {
    let mut attempt = 0;
    loop {
        // A fresh URL on every attempt: Cloud API media URLs expire after ~5 minutes.
        let result = if let Some(key) = job.media_id.strip_prefix(STORED_MEDIA_PREFIX) {
            match config.objects.get(key).await {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => Err(MediaError::NotStored { key: key.into() }),
                Err(e) => Err(e),
            }
        } else if job.media_id.starts_with("http://") || job.media_id.starts_with("https://") {
            config.client.fetch(&job.media_id, None).await
        } else {
            match &config.source {
                MediaSource::CloudApi {
                    base_url,
                    version,
                    token,
                } => {
                    config
                        .client
                        .cloud_api(base_url, version, token, &job.media_id)
                        .await
                }
                MediaSource::UrlsOnly => Err(MediaError::Download(
                    "no media source is configured for media ids (Cloud API provider needed)"
                        .into(),
                )),
            }
        };
        match result {
            Err(e) if e.is_transient() && attempt + 1 < FETCH_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            other => return other,
        }
    }
}

type Read = (
    OcrOutcome,
    f32,
    Option<String>,
    serde_json::Value,
    Option<String>,
);

async fn read(config: &OcrRoleConfig, job: &OcrJob, bytes: Vec<u8>) -> Result<Read, EngineError> {
    let today = crate::domain::clock::malaysia_today();
    let output = match process(&config.pool, bytes.clone(), &config.limits, today).await {
        Ok(output) => output,
        Err(error) => {
            let reason = match &error {
                PipelineError::Media(e) => e.to_string(),
                PipelineError::Ocr(e) => e.to_string(),
            };
            return Ok((
                OcrOutcome::Rejected {
                    read_as: "unknown".into(),
                    reason,
                },
                0.0,
                None,
                serde_json::json!({}),
                Some(error.kind().to_string()),
            ));
        }
    };
    let sha256 = output.media.sha256.clone();
    // An uploaded photo was fetched from the object store: it is there already.
    if !job.media_id.starts_with(STORED_MEDIA_PREFIX) {
        if let Err(error) = config.objects.put(&output.media.key(), &bytes).await {
            tracing::warn!(%error, "photo not kept in the object store");
        }
    }
    let confidence = output.recognized.confidence;
    let trusted = output.reading.is_trusted();
    let read = match output.reading {
        Reading::MyKad(card) => {
            let protected = config.vault.protect(&card.ic);
            let link = with_retries("link_ic", || {
                config.store.link_ic(&protected.keyed_hash, &job.contact)
            })
            .await?;
            let link = match link {
                IcLink::Linked => IcLinkOutcome::Linked,
                IcLink::AlreadyLinked => IcLinkOutcome::AlreadyLinked,
                IcLink::LinkedToOther(_) => IcLinkOutcome::LinkedToOther,
            };
            let fields = serde_json::json!({
                "ic_masked": protected.masked,
                "birth_date": card.ic.birth_date().to_string(),
                "gender": card.ic.gender().as_str(),
                "place_of_birth_code": format!("{:02}", card.ic.place_of_birth_code()),
                "repaired": card.repaired,
                "postcode": card.postcode,
                "state_of_address": card.state.map(|s| s.name()),
                "link": format!("{link:?}"),
            });
            let reading = MyKadReading {
                birth_date: card.ic.birth_date(),
                gender: card.ic.gender(),
                state: card
                    .ic
                    .place_of_birth()
                    .state()
                    .map(|s| s.name().to_string()),
                name: card.name.clone(),
                link,
                ic: protected,
            };
            (OcrOutcome::MyKad(reading), fields)
        }
        Reading::Receipt(receipt) => {
            let details = receipt.details();
            // The contact's own photo, sent again or replayed, keeps its id (its claims
            // answer with it); the same image from another contact (a forwarded receipt)
            // gets another id and finds the receipt claimed.
            let scoped = Sha256::digest(format!("{}|{sha256}", job.contact.as_str()));
            let purchase_id = format!("rcpt-{}", &hex::encode(scoped)[..24]);
            let mut duplicate_of = None;
            let mut fingerprints = vec![format!("img:{sha256}")];
            if let (Some(merchant), Some(number)) = (&details.merchant, &details.receipt_no) {
                fingerprints.push(format!(
                    "rcpt:{}|{}|{}",
                    merchant.to_uppercase(),
                    number,
                    receipt.total()
                ));
            }
            for fingerprint in &fingerprints {
                let claim = with_retries("claim_receipt", || {
                    config.store.claim_receipt(fingerprint, &purchase_id)
                })
                .await?;
                if let Claim::AlreadyClaimed(first) = claim {
                    if first != purchase_id {
                        duplicate_of.get_or_insert(first);
                    }
                }
            }
            let fields = serde_json::to_value(&*receipt).unwrap_or_default();
            let reading = ReceiptReading {
                purchase_id,
                total: receipt.total(),
                purchased_on: details.date.unwrap_or(today),
                merchant: details.merchant.clone(),
                receipt_no: details.receipt_no.clone(),
                item_count: u32::try_from(details.items.len()).unwrap_or(u32::MAX),
                parse_confidence: details.confidence,
                needs_review: !trusted || receipt.total() <= Money::ZERO,
                duplicate_of,
            };
            (OcrOutcome::Receipt(reading), fields)
        }
        Reading::Rejected { read_as, reason } => (
            OcrOutcome::Rejected {
                read_as: read_as.into(),
                reason,
            },
            serde_json::json!({}),
        ),
    };
    Ok((read.0, confidence, Some(sha256), read.1, None))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(value).map_err(|e| EngineError::actor("ocr", format!("encode: {e}")))
}
