//! The consuming roles a process runs, each built from the profile and the backends:
//! engine (contact shards), OCR, sender, analytics, and the consumer-lag watcher.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::campaigns::clock::CampaignClock;
use crate::campaigns::links::LinkSealer;
use crate::campaigns::{Planner, SendingNumber};
use crate::config::{Config, ProviderKind, Role, Secrets, StoreBackend};
use crate::domain::auto_reply::AutoReplies;
use crate::engine::analytics::{self, AnalyticsRoleConfig};
use crate::engine::campaign_sender::CampaignLaneConfig;
use crate::engine::changelog::ChangelogWriter;
use crate::engine::inbound::{self, InboundConfig};
use crate::engine::lag;
use crate::engine::ocr_attempts::AttemptJournal;
use crate::engine::ocr_role::{self, MediaHosts, MediaSource, OcrRoleConfig};
use crate::engine::retention::BodyRetention;
use crate::engine::sender::{self, SenderConfig};
use crate::engine::shard::{OutputTopics, ShardDeps, ShardLimits};
use crate::engine::supervisor::RoleStart;
use crate::engine::triggers::EventTriggers;
use crate::engine::EngineError;
use crate::media::{HostAllowlist, MediaClient, ObjectStore};
use crate::ocr::OcrPool;
use crate::pii::IcVault;
use crate::provider::{PairLimiter, RateLimiter};
use crate::segments::Follower;
use crate::storage::bus::Producer;
use crate::topics::{self, TopicNames};

use super::backends::{batcher_config, media_limits, Backends};
use super::error::{failed, StartError};

/// The share of a number's messages-per-second limit the sender paces at.
const PACE_SHARE: f64 = 0.99;

/// What every role is built from.
pub(super) struct Assembly<'a> {
    pub config: &'a Config,
    pub secrets: &'a Secrets,
    pub backends: &'a Backends,
    pub objects: Arc<dyn ObjectStore>,
    /// One producer shared by every role and the HTTP surface.
    pub producer: Arc<dyn Producer>,
    pub names: TopicNames,
    /// The process's segment index and its follower; see [`SegmentScope`].
    pub segments: Option<(Arc<Follower>, SegmentScope)>,
}

/// Which crm.contacts partitions a process indexes. One index per process: an API process
/// indexes every partition, and its engine role (if any) plans from that same index; an
/// engine-only process indexes the partitions it owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentScope {
    AllPartitions,
    OwnedPartitions,
}

impl Assembly<'_> {
    fn runs(&self, role: Role) -> bool {
        self.config.engine.roles.contains(&role)
    }

    /// The consuming roles of the profile, in start order.
    pub fn roles(&self) -> Result<Vec<(String, RoleStart)>, StartError> {
        let mut roles: Vec<(String, RoleStart)> = Vec::new();
        if self.runs(Role::Engine) {
            let config = Arc::new(self.inbound()?);
            roles.push((
                "engine".into(),
                Arc::new(move |shutdown, cell| {
                    Box::pin(inbound::run(config.clone(), shutdown, cell))
                }),
            ));
        }
        if self.runs(Role::Ocr) {
            let config = Arc::new(self.ocr()?);
            roles.push((
                "ocr".into(),
                Arc::new(move |shutdown, _cell| Box::pin(ocr_role::run(config.clone(), shutdown))),
            ));
        }
        if self.runs(Role::Sender) {
            let config = Arc::new(self.sender()?);
            roles.push((
                "sender".into(),
                Arc::new(move |shutdown, _cell| Box::pin(sender::run(config.clone(), shutdown))),
            ));
        }
        if self.runs(Role::Analytics) {
            let config = Arc::new(self.analytics());
            roles.push((
                "analytics".into(),
                Arc::new(move |shutdown, _cell| Box::pin(analytics::run(config.clone(), shutdown))),
            ));
        }
        if self.runs(Role::Api) {
            let clock = Arc::new(self.campaign_clock());
            roles.push((
                "campaign_clock".into(),
                Arc::new(move |shutdown, _cell| {
                    let clock = clock.clone();
                    Box::pin(async move {
                        clock
                            .run(shutdown)
                            .await
                            .map_err(|e| EngineError::actor("campaign_clock", e))
                    })
                }),
            ));
        }
        let watched = self.watched_groups();
        if !watched.is_empty() {
            let bus = self.backends.bus.clone();
            let watched = Arc::new(watched);
            roles.push((
                "lag".into(),
                Arc::new(move |shutdown, _cell| {
                    Box::pin(lag::run(bus.clone(), watched.clone(), shutdown))
                }),
            ));
        }
        Ok(roles)
    }

    fn campaign_clock(&self) -> CampaignClock {
        CampaignClock {
            store: self.backends.store.clone(),
            producer: self.producer.clone(),
            commands_topic: self.names.name(topics::COMMANDS),
            partitions: self.config.bus.partitions,
            quiet_hours: self.config.campaigns.quiet_hours(),
            cap_retry: self.config.campaigns.cap_retry(),
            stall: Duration::from_secs(self.config.campaigns.stall_resume_secs),
            tick: Duration::from_millis(self.config.campaigns.clock_tick_ms),
            now: chrono::Utc::now,
        }
    }

    fn dead_letter_topic(&self) -> String {
        self.names.name(topics::DEAD_LETTER)
    }

    fn inbound(&self) -> Result<InboundConfig, StartError> {
        let (config, backends, names) = (self.config, self.backends, &self.names);
        let producer = self.producer.clone();
        let replies = AutoReplies::new(config.engine.auto_replies.clone())
            .map_err(failed("the auto-replies"))?;
        let shards = config.engine.shards as usize;
        Ok(InboundConfig {
            body_retention: self.body_retention(),
            bus: backends.bus.clone(),
            producer: producer.clone(),
            group: names.group("engine"),
            topic: names.name(topics::INBOUND),
            ocr_results_topic: names.name(topics::OCR_RESULTS),
            commands_topic: names.name(topics::COMMANDS),
            planner: self.segments.as_ref().map(|(follower, _)| {
                Arc::new(Planner {
                    store: backends.store.clone(),
                    index: follower.index().clone(),
                    producer: self.producer.clone(),
                    campaign_topic: names.name(topics::CAMPAIGN),
                    events_topic: names.name(topics::EVENTS),
                    dead_letter_topic: self.dead_letter_topic(),
                    number: sending_number(config),
                    frequency_cap: config.campaigns.frequency_cap(),
                    cap_retry: config.campaigns.cap_retry(),
                })
            }),
            dead_letter_topic: self.dead_letter_topic(),
            shards,
            max_in_flight: config.engine.max_in_flight as usize,
            deps: Arc::new(ShardDeps {
                store: backends.store.clone(),
                producer,
                topics: OutputTopics {
                    events: names.name(topics::EVENTS),
                    outbound: names.name(topics::OUTBOUND),
                    ocr_jobs: names.name(topics::OCR_JOBS),
                    campaign: names.name(topics::CAMPAIGN),
                    dead_letter: self.dead_letter_topic(),
                },
                replies,
                tiers: config.tiers.policy(),
                limits: ShardLimits {
                    max_resident: (config.engine.max_resident_contacts as usize / shards).max(1),
                    max_resident_bytes: ((config.engine.max_resident_mb as usize) << 20) / shards,
                    idle_timeout: Duration::from_secs(config.engine.idle_timeout_secs),
                    flush_max_delay: Duration::from_millis(config.engine.flush_max_delay_ms),
                    flush_max_dirty: config.engine.flush_max_dirty as usize,
                },
                changes: Some(Arc::new(ChangelogWriter {
                    producer: self.producer.clone(),
                    topic: names.name(topics::CONTACTS),
                    dead_letter_topic: self.dead_letter_topic(),
                })),
                ask_marital_status: config.engine.ask_marital_status,
                consent_question: config
                    .campaigns
                    .ask_consent
                    .then(|| config.campaigns.consent_question.clone()),
                event_triggers: Arc::new(EventTriggers::new(Duration::from_millis(
                    config.campaigns.trigger_refresh_ms,
                ))),
            }),
            owned_segments: self
                .segments
                .as_ref()
                .filter(|(_, scope)| *scope == SegmentScope::OwnedPartitions)
                .map(|(follower, _)| follower.clone()),
        })
    }

    /// The OCR role's pool, media source and IC vault.
    fn ocr(&self) -> Result<OcrRoleConfig, StartError> {
        let (config, secrets, backends, names) =
            (self.config, self.secrets, self.backends, &self.names);
        let vault = vault(config, secrets)?;
        let workers = match config.ocr.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n as usize,
        };
        let pool = OcrPool::start(workers, workers * 2, None, &config.ocr.languages)
            .map_err(failed("the OCR pool"))?;
        let source = match (config.whatsapp.provider, &secrets.whatsapp_access_token) {
            (ProviderKind::CloudApi, Some(token)) => MediaSource::CloudApi {
                base_url: config.whatsapp.api_base_url.clone(),
                version: config.whatsapp.api_version.clone(),
                token: token.clone(),
            },
            _ => MediaSource::UrlsOnly,
        };
        let limits = media_limits(config);
        Ok(OcrRoleConfig {
            bus: backends.bus.clone(),
            producer: self.producer.clone(),
            store: backends.store.clone(),
            pool: Arc::new(pool),
            objects: self.objects.clone(),
            vault: Arc::new(vault),
            source,
            client: MediaClient::new(
                limits.max_bytes,
                Duration::from_secs(30),
                config.media.allow_private_addresses,
            )
            .map_err(failed("the media client"))?,
            hosts: MediaHosts {
                cloud_api: HostAllowlist::new(&config.media.cloud_api_hosts),
                gateway: HostAllowlist::new(&config.media.gateway_hosts),
            },
            limits,
            deadline: Duration::from_millis(config.ocr.deadline_ms),
            card_retention: Duration::from_secs(config.media.card_photo_retention_hours * 3600),
            photo_retention: Duration::from_secs(config.media.photo_retention_days * 86_400),
            retention_sweep: Duration::from_secs(config.media.retention_sweep_secs),
            attempts: Arc::new(attempt_journal(config)?),
            concurrency: workers * 2,
            group: names.group("ocr"),
            topic: names.name(topics::OCR_JOBS),
            results_topic: names.name(topics::OCR_RESULTS),
            events_topic: names.name(topics::EVENTS),
            dead_letter_topic: self.dead_letter_topic(),
        })
    }

    fn sender(&self) -> Result<SenderConfig, StartError> {
        let (config, backends, names) = (self.config, self.backends, &self.names);
        let campaigns = &config.campaigns;
        sender::report_limits(
            &config.whatsapp.phone_number_id,
            config.whatsapp.messages_per_second,
            &config.whatsapp.number_rates,
        );
        Ok(SenderConfig {
            bus: backends.bus.clone(),
            producer: self.producer.clone(),
            store: backends.store.clone(),
            provider: backends.provider.clone(),
            // No burst, and 1 % below the number's limit: requests reach the provider with
            // a few milliseconds of jitter, and at exactly the limit some one-second windows
            // would hold one or two more than it.
            limiter: Arc::new(
                RateLimiter::new(
                    f64::from(config.whatsapp.messages_per_second) * PACE_SHARE,
                    1,
                )
                .with_rates(
                    config
                        .whatsapp
                        .number_rates
                        .iter()
                        .map(|(number, rate)| (number.clone(), f64::from(*rate) * PACE_SHARE)),
                ),
            ),
            pairs: Arc::new(PairLimiter::new(
                Duration::from_millis(config.campaigns.pair_interval_ms),
                config.campaigns.pair_reply_burst,
            )),
            group: names.group("sender"),
            topic: names.name(topics::OUTBOUND),
            events_topic: names.name(topics::EVENTS),
            dead_letter_topic: self.dead_letter_topic(),
            request_timeout: Duration::from_millis(config.whatsapp.request_timeout_ms),
            send_budget: Duration::from_millis(config.whatsapp.send_budget_ms),
            campaigns: CampaignLaneConfig {
                topic: names.name(topics::CAMPAIGN),
                inbound_topic: names.name(topics::INBOUND),
                // About two seconds of sends at the number's rate: a revocation waits for
                // them.
                max_queued: (config
                    .whatsapp
                    .number_rates
                    .values()
                    .copied()
                    .chain([config.whatsapp.messages_per_second])
                    .max()
                    .unwrap_or(80) as usize
                    * 2)
                .max(128),
                quiet_hours: campaigns.quiet_hours(),
                frequency_cap: campaigns.frequency_cap(),
                cap_retry: campaigns.cap_retry(),
                messaging_limit: campaigns.messaging_limit_24h,
                pause_after_errors: campaigns.pause_after_errors,
                link_base_url: campaigns.link_base_url.clone(),
                links: link_sealer(config, self.secrets).map(Arc::new),
                waba_id: String::new(),
                now: chrono::Utc::now,
            },
        })
    }

    /// Message text retention, the same for the store's bodies and the analytics copies.
    fn body_retention(&self) -> Option<BodyRetention> {
        let store = &self.config.store;
        (store.message_body_retention_days > 0).then(|| BodyRetention {
            keep: Duration::from_secs(store.message_body_retention_days * 86_400),
            every: Duration::from_secs(store.retention_sweep_secs),
        })
    }

    fn analytics(&self) -> AnalyticsRoleConfig {
        AnalyticsRoleConfig {
            text_retention: self.body_retention(),
            bus: self.backends.bus.clone(),
            producer: self.producer.clone(),
            sink: self.backends.sink.clone(),
            batcher: batcher_config(&self.config.analytics),
            group: self.names.group("analytics"),
            topic: self.names.name(topics::EVENTS),
            dead_letter_topic: self.dead_letter_topic(),
        }
    }

    /// (label, group, topic) of each consumer group this process runs, for the lag watcher.
    fn watched_groups(&self) -> Vec<(String, String, String)> {
        [
            (Role::Engine, "engine", topics::INBOUND),
            (Role::Sender, "sender", topics::OUTBOUND),
            (Role::Analytics, "analytics", topics::EVENTS),
            (Role::Ocr, "ocr", topics::OCR_JOBS),
        ]
        .into_iter()
        .filter(|(role, _, _)| self.runs(*role))
        .map(|(_, group, topic)| {
            (
                group.to_string(),
                self.names.group(group),
                self.names.name(topic),
            )
        })
        .collect()
    }
}

/// The business number campaigns are sent from: the configured Cloud API number.
pub(super) fn sending_number(config: &Config) -> SendingNumber {
    SendingNumber {
        phone_number_id: config.whatsapp.phone_number_id.clone(),
        business_number: config.campaigns.business_number.clone(),
    }
}

/// The IC vault: from the secrets, or, for the embedded default (which runs with no setup),
/// keys in a local file. Elsewhere the keys are secrets.
pub(super) fn vault(config: &Config, secrets: &Secrets) -> Result<IcVault, StartError> {
    match IcVault::from_secrets(secrets).map_err(failed("the IC vault"))? {
        Some(vault) => Ok(vault),
        None if config.store.backend == StoreBackend::Embedded => {
            IcVault::local(&Path::new(&config.data_dir).join("ic-keys"))
                .map_err(failed("the local IC keys"))
        }
        None => Err(StartError::Settings(
            "SEMBANG_IC_ENCRYPTION_KEY and SEMBANG_IC_HASH_KEY (64 hex digits each) are needed \
             (IC numbers, and the key of tracking links)"
                .into(),
        )),
    }
}

/// Seals and opens tracking links, under a key derived from the vault's; `None` (links
/// sent as written, with a warning) where the vault's keys are not set.
pub(super) fn link_sealer(config: &Config, secrets: &Secrets) -> Option<LinkSealer> {
    match vault(config, secrets) {
        Ok(vault) => Some(LinkSealer::new(vault.derive_key("tracking-links"))),
        Err(e) => {
            if !config.campaigns.link_base_url.is_empty() {
                tracing::warn!(error = %e, "tracking links are off");
            }
            None
        }
    }
}

/// The OCR role's journal of started jobs, in the data directory. A second process on the
/// same directory (several on one host) keeps its own, named by its process id: it then
/// forgets across its restarts, and a poison photo costs it one crash more.
fn attempt_journal(config: &Config) -> Result<AttemptJournal, StartError> {
    let dir = std::path::Path::new(&config.data_dir);
    AttemptJournal::open(&dir.join("ocr-attempts.redb")).or_else(|error| {
        tracing::warn!(%error, "the OCR attempt journal is in use; keeping one for this process");
        AttemptJournal::open(&dir.join(format!("ocr-attempts-{}.redb", std::process::id())))
            .map_err(|e| StartError::Settings(e.to_string()))
    })
}
