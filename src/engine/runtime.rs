//! Builds a running engine from its configuration: the backends (bus, store, sink,
//! provider), the HTTP surface, and the supervised roles. `sembang run` and the end-to-end
//! tests both start the engine through [`start`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};

use crate::api::{self, AdminState, ApiKey, UploadState};
use crate::config::{
    BusBackend, Config, EventSinkBackend, MediaStoreBackend, ProviderKind, Role as RoleName,
    Secrets, StoreBackend,
};
use crate::domain::auto_reply::AutoReplies;
use crate::ingress::http::WebhookState;
use crate::media::{LocalDirStore, MediaClient, MediaLimits, ObjectStore, S3Config, S3Store};
use crate::ocr::OcrPool;
use crate::pii::IcVault;
use crate::provider::{
    CloudApiProvider, RateLimiter, SandboxProvider, WabotProvider, WhatsappProvider,
};
use crate::storage::bus::topics::{self, TopicNames};
use crate::storage::bus::{Bus, EmbeddedBus, EmbeddedBusConfig, KafkaBus, KafkaBusConfig};
use crate::storage::sink::{BatcherConfig, ClickHouseConfig, ClickHouseSink, EventSink, FileSink};
use crate::storage::store::{ContactStore, EmbeddedStore, ScyllaConfig, ScyllaStore};

use super::analytics::{self, AnalyticsRoleConfig};
use super::error::EngineError;
use super::inbound::{self, InboundConfig};
use super::lag;
use super::ocr_role::{self, MediaSource, OcrRoleConfig};
use super::sender::{self, SenderConfig};
use super::shard::{OutputTopics, ShardDeps, ShardLimits};
use super::supervisor::{Engine, EngineArgs, EngineMsg, RoleStart};

/// The backends a process runs on. Tests build them directly to share them with checks.
pub struct Backends {
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn ContactStore>,
    pub sink: Arc<dyn EventSink>,
    pub provider: Arc<dyn WhatsappProvider>,
    /// Set when the provider is the sandbox, for the admin API.
    pub sandbox: Option<Arc<SandboxProvider>>,
}

impl Backends {
    /// The backends `config` names.
    pub async fn from_config(config: &Config, secrets: &Secrets) -> Result<Self, EngineError> {
        let data = Path::new(&config.data_dir);
        let bus: Arc<dyn Bus> = match config.bus.backend {
            BusBackend::Embedded => {
                Arc::new(EmbeddedBus::open(EmbeddedBusConfig::new(data.join("bus")))?)
            }
            BusBackend::Kafka => Arc::new(KafkaBus::new(KafkaBusConfig::new(
                config.bus.kafka_brokers.clone(),
            ))?),
        };
        let store: Arc<dyn ContactStore> = match config.store.backend {
            StoreBackend::Embedded => {
                std::fs::create_dir_all(data).map_err(|e| {
                    EngineError::Startup(format!("data_dir {}: {e}", data.display()))
                })?;
                Arc::new(EmbeddedStore::open(data.join("store.redb"))?)
            }
            StoreBackend::Scylla => {
                Arc::new(ScyllaStore::connect(ScyllaConfig::from(&config.store)).await?)
            }
        };
        let sink: Arc<dyn EventSink> = match config.analytics.sink {
            EventSinkBackend::Files => Arc::new(FileSink::open(data.join("events"))?),
            EventSinkBackend::Clickhouse => Arc::new(ClickHouseSink::new(
                ClickHouseConfig::from_analytics(&config.analytics),
            )?),
        };
        let (provider, sandbox): (Arc<dyn WhatsappProvider>, _) = match config.whatsapp.provider {
            ProviderKind::Sandbox => {
                let sandbox = Arc::new(SandboxProvider::new());
                (sandbox.clone(), Some(sandbox))
            }
            ProviderKind::CloudApi => {
                let token = secrets.whatsapp_access_token.clone().ok_or_else(|| {
                    EngineError::Startup(
                        "the Cloud API provider needs SEMBANG_WHATSAPP_ACCESS_TOKEN".into(),
                    )
                })?;
                let provider = CloudApiProvider::from_config(&config.whatsapp, token)
                    .map_err(|e| EngineError::Startup(e.to_string()))?;
                (Arc::new(provider), None)
            }
            ProviderKind::Wabot => {
                let token = secrets.wabot_access_token.clone().ok_or_else(|| {
                    EngineError::Startup(
                        "the wabot provider needs SEMBANG_WABOT_ACCESS_TOKEN".into(),
                    )
                })?;
                let provider = WabotProvider::from_config(&config.whatsapp, token)
                    .map_err(|e| EngineError::Startup(e.to_string()))?;
                (Arc::new(provider), None)
            }
        };
        Ok(Backends {
            bus,
            store,
            sink,
            provider,
            sandbox,
        })
    }
}

/// Where original photos are kept, shared by the OCR role and the upload endpoint.
fn object_store(config: &Config, secrets: &Secrets) -> Result<Arc<dyn ObjectStore>, EngineError> {
    let media = &config.media;
    Ok(match media.store {
        MediaStoreBackend::Local if media.local_dir.is_empty() => Arc::new(LocalDirStore::new(
            Path::new(&config.data_dir).join("media"),
        )),
        MediaStoreBackend::Local => Arc::new(LocalDirStore::new(&media.local_dir)),
        MediaStoreBackend::S3 => {
            let credentials = match (&secrets.s3_access_key_id, &secrets.s3_secret_access_key) {
                (Some(id), Some(key)) => Some((id.expose().to_string(), key.expose().to_string())),
                (None, None) => None,
                _ => {
                    return Err(EngineError::Startup(
                        "set both SEMBANG_S3_ACCESS_KEY_ID and SEMBANG_S3_SECRET_ACCESS_KEY, or neither".into(),
                    ))
                }
            };
            let s3 = S3Config {
                bucket: media.s3_bucket.clone(),
                prefix: media.s3_prefix.clone(),
                endpoint: (!media.s3_endpoint.is_empty()).then(|| media.s3_endpoint.clone()),
                region: media.s3_region.clone(),
                allow_http: media.s3_allow_http,
                credentials,
                timeout: Duration::from_secs(30),
            };
            Arc::new(S3Store::new(&s3).map_err(|e| EngineError::Startup(e.to_string()))?)
        }
    })
}

fn media_limits(config: &Config) -> MediaLimits {
    MediaLimits {
        max_bytes: config.ocr.max_media_bytes,
        max_pixels: config.ocr.max_pixels,
    }
}

/// The OCR role's pool, media source and IC vault.
fn ocr_role_config(
    config: &Config,
    secrets: &Secrets,
    backends: &Backends,
    objects: Arc<dyn ObjectStore>,
    names: &TopicNames,
    dead_letter_topic: &str,
) -> Result<OcrRoleConfig, EngineError> {
    let data = Path::new(&config.data_dir);
    let vault = match IcVault::from_secrets(secrets).map_err(|e| EngineError::Startup(e.to_string()))? {
        Some(vault) => vault,
        // The embedded default runs with no setup; elsewhere the keys are secrets.
        None if config.store.backend == StoreBackend::Embedded => IcVault::local(&data.join("ic-keys"))
            .map_err(|e| EngineError::Startup(format!("local IC keys: {e}")))?,
        None => {
            return Err(EngineError::Startup(
                "the ocr role needs SEMBANG_IC_ENCRYPTION_KEY and SEMBANG_IC_HASH_KEY (64 hex digits each)".into(),
            ))
        }
    };
    let workers = match config.ocr.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n as usize,
    };
    let pool = OcrPool::start(workers, workers * 2, None, &config.ocr.languages)
        .map_err(|e| EngineError::Startup(e.to_string()))?;
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
        producer: backends.bus.producer(),
        store: backends.store.clone(),
        pool: Arc::new(pool),
        objects,
        vault: Arc::new(vault),
        source,
        client: MediaClient::new(limits.max_bytes, Duration::from_secs(30))
            .map_err(|e| EngineError::Startup(e.to_string()))?,
        limits,
        concurrency: workers * 2,
        group: names.group("ocr"),
        topic: names.name(topics::OCR_JOBS),
        results_topic: names.name(topics::OCR_RESULTS),
        events_topic: names.name(topics::EVENTS),
        dead_letter_topic: dead_letter_topic.to_string(),
    })
}

/// A started engine.
pub struct Running {
    pub engine: ActorRef<EngineMsg>,
    /// Where the webhook, the admin API and /metrics listen.
    pub http_addr: SocketAddr,
    pub roles: Vec<String>,
}

impl Running {
    /// Stops intake, drains, flushes and commits every role, then returns.
    pub async fn shutdown(self) {
        let _ = self
            .engine
            .call(EngineMsg::Shutdown, Some(Duration::from_secs(180)))
            .await;
    }
}

/// Starts the configured roles on `backends`. The HTTP listener is bound before this
/// returns (port 0 picks a free one: see [`Running::http_addr`]).
pub async fn start(
    config: &Config,
    secrets: &Secrets,
    backends: Backends,
) -> Result<Running, EngineError> {
    crate::metrics::install();
    let names = TopicNames::new(&config.bus.namespace);
    backends
        .bus
        .ensure_topics(&names.specs(config.bus.partitions, config.bus.kafka_replication_factor))
        .await?;
    let producer = backends.bus.producer();
    let dead_letter_topic = names.name(topics::DEAD_LETTER);
    let runs = |role| config.engine.roles.contains(&role);

    if runs(RoleName::Ingress)
        && secrets.whatsapp_app_secret.is_none()
        && config.whatsapp.provider == ProviderKind::CloudApi
    {
        return Err(EngineError::Startup(
            "the webhook of the Cloud API provider needs SEMBANG_WHATSAPP_APP_SECRET to verify signatures".into(),
        ));
    }

    let listener = std::net::TcpListener::bind(&config.http.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| EngineError::Startup(format!("http.listen {}: {e}", config.http.listen)))?;
    let http_addr = listener
        .local_addr()
        .map_err(|e| EngineError::Startup(e.to_string()))?;
    let webhook = runs(RoleName::Ingress).then(|| {
        Arc::new(WebhookState {
            producer: producer.clone(),
            inbound_topic: names.name(topics::INBOUND),
            dead_letter_topic: names.name(topics::DEAD_LETTER),
            app_secret: secrets.whatsapp_app_secret.clone(),
            verify_token: secrets.whatsapp_verify_token.clone(),
            wabot_token: secrets.wabot_access_token.clone(),
        })
    });
    let objects = object_store(config, secrets)?;
    let admin = Arc::new(AdminState {
        store: backends.store.clone(),
        sandbox: backends.sandbox.clone(),
        keys: secrets
            .admin_api_keys
            .iter()
            .filter_map(ApiKey::parse)
            .collect(),
        require_key: config.admin.require_api_key,
        uploads: Some(UploadState {
            producer: producer.clone(),
            objects: objects.clone(),
            limits: media_limits(config),
            ocr_jobs_topic: names.name(topics::OCR_JOBS),
            phone_number_id: config.whatsapp.phone_number_id.clone(),
        }),
    });
    let router = api::router(webhook, admin, config.http.max_body_bytes as usize);

    let mut roles: Vec<(String, RoleStart)> = Vec::new();
    let listener = Arc::new(listener);
    roles.push((
        "http".into(),
        Arc::new(move |mut shutdown, _cell| {
            let listener = listener.try_clone();
            let router = router.clone();
            Box::pin(async move {
                let listener = listener
                    .and_then(tokio::net::TcpListener::from_std)
                    .map_err(|e| EngineError::Startup(format!("http listener: {e}")))?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = shutdown.changed().await;
                    })
                    .await
                    .map_err(|e| EngineError::actor("http", e))
            })
        }),
    ));

    if runs(RoleName::Engine) {
        let replies = AutoReplies::new(config.engine.auto_replies.clone())
            .map_err(|e| EngineError::Startup(e.to_string()))?;
        let shards = config.engine.shards as usize;
        let inbound_config = Arc::new(InboundConfig {
            bus: backends.bus.clone(),
            producer: producer.clone(),
            group: names.group("engine"),
            topic: names.name(topics::INBOUND),
            ocr_results_topic: names.name(topics::OCR_RESULTS),
            dead_letter_topic: dead_letter_topic.clone(),
            shards,
            max_in_flight: config.engine.max_in_flight as usize,
            deps: Arc::new(ShardDeps {
                store: backends.store.clone(),
                producer: producer.clone(),
                topics: OutputTopics {
                    events: names.name(topics::EVENTS),
                    outbound: names.name(topics::OUTBOUND),
                    ocr_jobs: names.name(topics::OCR_JOBS),
                    dead_letter: dead_letter_topic.clone(),
                },
                replies,
                tiers: config.tiers.policy(),
                limits: ShardLimits {
                    max_resident: (config.engine.max_resident_contacts as usize / shards).max(1),
                    idle_timeout: Duration::from_secs(config.engine.idle_timeout_secs),
                    flush_max_delay: Duration::from_millis(config.engine.flush_max_delay_ms),
                    flush_max_dirty: config.engine.flush_max_dirty as usize,
                },
            }),
        });
        roles.push((
            "engine".into(),
            Arc::new(move |shutdown, cell| {
                Box::pin(inbound::run(inbound_config.clone(), shutdown, cell))
            }),
        ));
    }
    if runs(RoleName::Ocr) {
        let ocr_config = Arc::new(ocr_role_config(
            config,
            secrets,
            &backends,
            objects.clone(),
            &names,
            &dead_letter_topic,
        )?);
        roles.push((
            "ocr".into(),
            Arc::new(move |shutdown, _cell| Box::pin(ocr_role::run(ocr_config.clone(), shutdown))),
        ));
    }
    if runs(RoleName::Sender) {
        let sender_config = Arc::new(SenderConfig {
            bus: backends.bus.clone(),
            producer: producer.clone(),
            store: backends.store.clone(),
            provider: backends.provider.clone(),
            limiter: Arc::new(RateLimiter::new(
                f64::from(config.whatsapp.messages_per_second),
                config.whatsapp.messages_per_second,
            )),
            group: names.group("sender"),
            topic: names.name(topics::OUTBOUND),
            events_topic: names.name(topics::EVENTS),
            dead_letter_topic: dead_letter_topic.clone(),
            request_timeout: Duration::from_millis(config.whatsapp.request_timeout_ms),
            send_budget: Duration::from_millis(config.whatsapp.send_budget_ms),
        });
        roles.push((
            "sender".into(),
            Arc::new(move |shutdown, _cell| Box::pin(sender::run(sender_config.clone(), shutdown))),
        ));
    }
    if runs(RoleName::Analytics) {
        let analytics_config = Arc::new(AnalyticsRoleConfig {
            bus: backends.bus.clone(),
            producer: producer.clone(),
            sink: backends.sink.clone(),
            batcher: BatcherConfig::from_analytics(&config.analytics),
            group: names.group("analytics"),
            topic: names.name(topics::EVENTS),
            dead_letter_topic,
        });
        roles.push((
            "analytics".into(),
            Arc::new(move |shutdown, _cell| {
                Box::pin(analytics::run(analytics_config.clone(), shutdown))
            }),
        ));
    }
    let watched: Vec<(String, String, String)> = [
        (RoleName::Engine, "engine", topics::INBOUND),
        (RoleName::Sender, "sender", topics::OUTBOUND),
        (RoleName::Analytics, "analytics", topics::EVENTS),
        (RoleName::Ocr, "ocr", topics::OCR_JOBS),
    ]
    .into_iter()
    .filter(|(role, _, _)| runs(*role))
    .map(|(_, group, topic)| (group.to_string(), names.group(group), names.name(topic)))
    .collect();
    if !watched.is_empty() {
        let bus = backends.bus.clone();
        let watched = Arc::new(watched);
        roles.push((
            "lag".into(),
            Arc::new(move |shutdown, _cell| {
                Box::pin(lag::run(bus.clone(), watched.clone(), shutdown))
            }),
        ));
    }
    let role_names = roles.iter().map(|(n, _)| n.clone()).collect();
    let (engine, _) = Actor::spawn(None, Engine, EngineArgs { roles })
        .await
        .map_err(|e| EngineError::actor("engine", e))?;
    Ok(Running {
        engine,
        http_addr,
        roles: role_names,
    })
}
