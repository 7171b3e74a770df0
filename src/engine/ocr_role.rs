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

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Secret;
use crate::domain::money::Money;
use crate::media::{HostAllowlist, MediaClient, MediaError, MediaLimits, ObjectStore};
use crate::ocr::{process_within, OcrOutput, OcrPool, Reading};
use crate::pii::IcVault;
use crate::storage::bus::{Bus, Message, Producer, Record};
use crate::storage::sink::{AnalyticsEvent, OcrResultEvent};
use crate::storage::store::{Claim, ContactStore, IcLink};
use crate::topics::events::OcrStatus;

use super::consumer::{send_dead_letter, Backpressure, Skeleton, Strategy, Token};
use super::error::EngineError;
use super::ocr_attempts::AttemptJournal;
use super::outputs::send_outputs;
use crate::metrics::catalog;
use crate::retry::with_retries;
use crate::retry::RetryPolicy;
use crate::topics::event_id;
use crate::topics::inbound::{is_cloud_api_media_id, WABOT_WABA_ID};
use crate::topics::ocr::{
    IcLinkOutcome, MyKadReading, OcrJob, OcrKind, OcrOutcome, OcrResult, ReceiptReading,
    STORED_MEDIA_PREFIX, UPLOAD_JOB_PREFIX,
};

/// The hosts media may be fetched from, per source.
pub struct MediaHosts {
    /// The URLs the Cloud API's media endpoint answers with.
    pub cloud_api: HostAllowlist,
    /// The URLs in a gateway's (wabot.my) messages.
    pub gateway: HostAllowlist,
}

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
    /// Where each source may send the media client.
    pub hosts: MediaHosts,
    pub limits: MediaLimits,
    /// Each photo is read within this, or answered as unreadable.
    pub deadline: Duration,
    /// How long identity-card photos are kept after they are read.
    pub card_retention: Duration,
    /// Other photos (receipts) are deleted this long after they are kept.
    pub photo_retention: Duration,
    /// How often card photos past their retention are looked for.
    pub retention_sweep: Duration,
    /// The jobs started and not finished, so a photo that crashes the process is not read
    /// again and again.
    pub attempts: Arc<AttemptJournal>,
    pub concurrency: usize,
    pub group: String,
    pub topic: String,
    pub results_topic: String,
    pub events_topic: String,
    pub dead_letter_topic: String,
}

pub async fn run(
    config: Arc<OcrRoleConfig>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let consumer = config
        .bus
        .subscribe(&config.group, std::slice::from_ref(&config.topic))
        .await?;
    // One job per record; at the pool's limit the partitions are paused (and polled, so
    // rebalances are answered while the pool is full).
    let skeleton = Skeleton {
        role: "ocr",
        group: config.group.clone(),
        max_batch: 1,
        max_in_flight: config.concurrency,
        backpressure: Backpressure::PausePartitions,
        commit_interval: Duration::from_millis(200),
        in_flight_gauge: Some(&catalog::OCR_JOBS_IN_FLIGHT),
        pause_only: None,
    };
    let sweep = tokio::spawn(sweep_photos(
        config.objects.clone(),
        [
            (CARD_PHOTO_PREFIX, config.card_retention),
            ("", config.photo_retention),
        ],
        config.retention_sweep,
        shutdown.clone(),
    ));
    let mut strategy = Jobs {
        config,
        running: JoinSet::new(),
    };
    let ran = skeleton.run(consumer, &mut strategy, shutdown).await;
    sweep.abort();
    ran
}

/// Each record is a job run concurrently with the others.
struct Jobs {
    config: Arc<OcrRoleConfig>,
    running: JoinSet<Result<Token, EngineError>>,
}

fn joined(
    done: Result<Result<Token, EngineError>, tokio::task::JoinError>,
) -> Result<Token, EngineError> {
    done.map_err(|e| EngineError::actor("ocr", e))?
}

#[async_trait]
impl Strategy for Jobs {
    async fn submit(&mut self, records: Vec<Message>) -> Result<Vec<Token>, EngineError> {
        for message in records {
            let config = self.config.clone();
            self.running.spawn(async move {
                handle(&config, &message).await?;
                Ok((message.topic_partition(), message.offset))
            });
        }
        Ok(Vec::new())
    }

    async fn poll(&mut self) -> Result<Vec<Token>, EngineError> {
        match self.running.join_next().await {
            Some(done) => Ok(vec![joined(done)?]),
            None => std::future::pending().await,
        }
    }

    async fn join(&mut self) -> Result<Vec<Token>, EngineError> {
        let mut tokens = Vec::new();
        while let Some(done) = self.running.join_next().await {
            tokens.push(joined(done)?);
        }
        Ok(tokens)
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
    let attempt = config.attempts.begin(&job.job_id)?;
    let (outcome, confidence, sha256, fields, error) = if attempt.is_poison() {
        // Reading this photo killed the process before: keep it for an operator instead.
        dead_letter_job(
            config,
            message,
            POISON_PHOTO,
            &format!(
                "the process died {} times reading this photo; not read again",
                attempt.crashes()
            ),
        )
        .await?;
        not_read("the photo could not be read".into(), POISON_PHOTO)
    } else {
        let bytes = match fetch(config, &job).await {
            Ok(bytes) => Ok(bytes),
            Err(error) => {
                dead_letter_job(config, message, error.kind(), &error.to_string()).await?;
                Err(error)
            }
        };
        match bytes {
            Err(error) => not_read(unfetched_reason(&error), error.kind()),
            Ok(bytes) => read(config, &job, message, bytes).await?,
        }
    };
    let status = match &outcome {
        OcrOutcome::Rejected { .. } if error.is_some() => OcrStatus::Failed,
        OcrOutcome::Rejected { .. } => OcrStatus::Rejected,
        _ => OcrStatus::Parsed,
    };
    let kind = match &outcome {
        OcrOutcome::MyKad(_) => OcrKind::Ic,
        OcrOutcome::Receipt(_) => OcrKind::Receipt,
        OcrOutcome::Rejected { read_as, .. } => *read_as,
    };
    catalog::OCR_OUTCOMES
        .counter(&[kind.as_str().into(), status.as_str().into()])
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
        status,
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

/// The key prefix of identity-card photos, deleted after `media.card_photo_retention_hours`.
pub const CARD_PHOTO_PREFIX: &str = "card.";

/// Keeps the photo (encrypted, by the store): a card's under [`CARD_PHOTO_PREFIX`], so the
/// retention sweep finds it. An upload is in the store already, under its plain key: a card
/// is moved.
async fn keep_photo(config: &OcrRoleConfig, job: &OcrJob, output: &OcrOutput, bytes: &[u8]) {
    let is_card = matches!(output.reading, Reading::MyKad(_));
    let key = output.media.key();
    let kept = if is_card {
        format!("{CARD_PHOTO_PREFIX}{key}")
    } else {
        key.clone()
    };
    let uploaded = job.media_id.strip_prefix(STORED_MEDIA_PREFIX);
    if uploaded == Some(kept.as_str()) {
        return;
    }
    if let Err(error) = config.objects.put(&kept, bytes).await {
        tracing::warn!(%error, "photo not kept in the object store");
        return;
    }
    if let Some(uploaded) = uploaded.filter(|_| is_card) {
        if let Err(error) = config.objects.delete(uploaded).await {
            tracing::warn!(%error, "an uploaded card photo stays under its plain key");
        }
    }
}

/// Deletes photos past their retention, now and every `every`, until shutdown: per rule,
/// the objects under a key prefix ("" for every photo) older than its retention.
pub async fn sweep_photos<const N: usize>(
    objects: Arc<dyn ObjectStore>,
    rules: [(&'static str, Duration); N],
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        for (prefix, retention) in rules {
            let before = Utc::now() - chrono::Duration::from_std(retention).unwrap_or_default();
            match objects.delete_older(prefix, before).await {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(deleted, prefix, "photos past their retention deleted")
                }
                Err(error) => tracing::warn!(%error, prefix, "photo retention sweep failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Keeps a job that came to nothing for an operator, with the reason.
async fn dead_letter_job(
    config: &OcrRoleConfig,
    message: &Message,
    kind: &'static str,
    detail: &str,
) -> Result<(), EngineError> {
    send_dead_letter(
        &*config.producer,
        &config.dead_letter_topic,
        message,
        kind,
        detail,
    )
    .await
}

/// The dead-letter kind of a photo whose reading crashed the process.
pub const POISON_PHOTO: &str = "poison_photo";

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

/// Fetches the job's photo, retrying transient failures. A fresh URL on every attempt:
/// Cloud API media URLs expire after ~5 minutes.
async fn fetch(config: &OcrRoleConfig, job: &OcrJob) -> Result<Vec<u8>, MediaError> {
    RetryPolicy::MEDIA_FETCH
        .run("media_fetch", MediaError::is_transient, || {
            fetch_once(config, job)
        })
        .await
}

async fn fetch_once(config: &OcrRoleConfig, job: &OcrJob) -> Result<Vec<u8>, MediaError> {
    match locate(job)? {
        MediaLocation::Stored(key) => match config.objects.get(key).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(MediaError::NotStored { key: key.into() }),
            Err(e) => Err(e),
        },
        MediaLocation::GatewayUrl(url) => {
            config.client.fetch(url, None, &config.hosts.gateway).await
        }
        MediaLocation::CloudApi(media_id) => match &config.source {
            MediaSource::CloudApi {
                base_url,
                version,
                token,
            } => {
                config
                    .client
                    .cloud_api(base_url, version, token, media_id, &config.hosts.cloud_api)
                    .await
            }
            MediaSource::UrlsOnly => Err(MediaError::Download(
                "no media source is configured for media ids (Cloud API provider needed)".into(),
            )),
        },
    }
}

/// Where a job's photo is.
#[derive(Debug, PartialEq, Eq)]
enum MediaLocation<'a> {
    /// Uploaded through the admin API, already in the object store.
    Stored(&'a str),
    /// A Cloud API media id.
    CloudApi(&'a str),
    /// A gateway's (wabot.my) media URL.
    GatewayUrl(&'a str),
}

/// Where a job's photo is, by the form its source gives it: only an admin upload names an
/// object in the store (a message naming one would read another customer's upload), a
/// gateway message carries a URL, and a Cloud API message a numeric media id.
fn locate(job: &OcrJob) -> Result<MediaLocation<'_>, MediaError> {
    let refused = |reason: &str| MediaError::Forbidden {
        reason: reason.into(),
    };
    if let Some(key) = job.media_id.strip_prefix(STORED_MEDIA_PREFIX) {
        return if job.job_id.starts_with(UPLOAD_JOB_PREFIX) {
            Ok(MediaLocation::Stored(key))
        } else {
            Err(refused("a message cannot name a stored upload"))
        };
    }
    if job.business.waba_id == WABOT_WABA_ID {
        Ok(MediaLocation::GatewayUrl(&job.media_id))
    } else if is_cloud_api_media_id(&job.media_id) {
        Ok(MediaLocation::CloudApi(&job.media_id))
    } else {
        Err(refused("a Cloud API media id is digits"))
    }
}

type Read = (
    OcrOutcome,
    f32,
    Option<String>,
    serde_json::Value,
    Option<String>,
);

/// A photo that was never read: the customer's `reason`, the failure's `kind`.
fn not_read(reason: String, kind: &str) -> Read {
    (
        OcrOutcome::Rejected {
            read_as: OcrKind::Unknown,
            reason,
        },
        0.0,
        None,
        serde_json::json!({}),
        Some(kind.to_string()),
    )
}

async fn read(
    config: &OcrRoleConfig,
    job: &OcrJob,
    message: &Message,
    bytes: Vec<u8>,
) -> Result<Read, EngineError> {
    let today = crate::domain::clock::malaysia_today();
    let output = match process_within(
        &config.pool,
        bytes.clone(),
        &config.limits,
        today,
        config.deadline,
    )
    .await
    {
        Ok(output) => output,
        Err(error) => {
            // A photo that cannot be read (corrupt, a bomb, past its deadline) is kept with
            // the reason for an operator, and the job is finished: never retried into a loop.
            tracing::warn!(job = %job.job_id, %error, "photo not read");
            dead_letter_job(config, message, error.kind(), &error.to_string()).await?;
            return Ok(not_read(error.customer_reason().into(), error.kind()));
        }
    };
    let sha256 = output.media.sha256.clone();
    keep_photo(config, job, &output, &bytes).await;
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
            OcrOutcome::Rejected { read_as, reason },
            serde_json::json!({}),
        ),
    };
    Ok((read.0, confidence, Some(sha256), read.1, None))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(value).map_err(|e| EngineError::actor("ocr", format!("encode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneNumber;
    use crate::topics::inbound::Business;

    fn job(job_id: &str, waba_id: &str, media_id: &str) -> OcrJob {
        OcrJob {
            job_id: job_id.into(),
            contact: PhoneNumber::parse("60123456789").unwrap(),
            business: Business {
                waba_id: waba_id.into(),
                phone_number_id: "1".into(),
                display_phone_number: "60321611234".into(),
            },
            media_kind: "image".into(),
            media_id: media_id.into(),
            mime_type: None,
            sha256: None,
            filename: None,
            caption: None,
            received_at: Utc::now(),
        }
    }

    #[test]
    fn a_job_names_its_photo_only_in_its_source_s_form() {
        let upload = job("upload.5f1c", "", "stored:ab12.jpg");
        assert_eq!(locate(&upload), Ok(MediaLocation::Stored("ab12.jpg")));
        let cloud = job("wamid.X", "102290129340398", "1479537139650973");
        assert_eq!(
            locate(&cloud),
            Ok(MediaLocation::CloudApi("1479537139650973"))
        );
        let gateway = job("3EB0", WABOT_WABA_ID, "https://media.wabot.my/x.jpg");
        assert_eq!(
            locate(&gateway),
            Ok(MediaLocation::GatewayUrl("https://media.wabot.my/x.jpg"))
        );
        for refused in [
            // A message naming another customer's upload.
            job("wamid.X", "102290129340398", "stored:ab12.jpg"),
            job("3EB0", WABOT_WABA_ID, "stored:ab12.jpg"),
            // A Cloud API message carrying a URL.
            job("wamid.X", "102290129340398", "http://169.254.169.254/"),
        ] {
            assert!(
                matches!(locate(&refused), Err(MediaError::Forbidden { .. })),
                "{refused:?}"
            );
        }
    }
}
