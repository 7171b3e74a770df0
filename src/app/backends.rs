//! The backends a process runs on, built from its configuration. Storage backends take
//! their own small config types; the conversions from the profile live here.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    AnalyticsConfig, BusBackend, Config, EventSinkBackend, MediaStoreBackend, ProviderKind,
    Secrets, StoreBackend, StoreConfig,
};
use crate::media::{LocalDirStore, MediaLimits, ObjectStore, S3Config, S3Store};
use crate::pii::pseudonym::PseudonymKey;
use crate::provider::{CloudApiProvider, SandboxProvider, WabotProvider, WhatsappProvider};
use crate::storage::bus::{Bus, EmbeddedBus, EmbeddedBusConfig, KafkaBus, KafkaBusConfig};
use crate::storage::sink::{
    AnalyticsReader, BatcherConfig, ClickHouseConfig, ClickHouseSink, EventSink, FileSink,
};
use crate::storage::store::{ContactStore, EmbeddedStore, ScyllaConfig, ScyllaStore};

use super::error::{failed, StartError};

/// The backends a process runs on. Tests build them directly to share them with checks.
pub struct Backends {
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn ContactStore>,
    pub sink: Arc<dyn EventSink>,
    /// Reads the sink's events back for the analytics API (the same files or database).
    pub analytics: Arc<dyn AnalyticsReader>,
    pub provider: Arc<dyn WhatsappProvider>,
    /// Set when the provider is the sandbox, for the admin API.
    pub sandbox: Option<Arc<SandboxProvider>>,
}

impl Backends {
    /// The backends `config` names.
    pub async fn from_config(config: &Config, secrets: &Secrets) -> Result<Self, StartError> {
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
                    StartError::Settings(format!("data_dir {}: {e}", data.display()))
                })?;
                Arc::new(EmbeddedStore::open_with_cache(
                    data.join("store.redb"),
                    (config.store.embedded_cache_mb as usize) << 20,
                )?)
            }
            StoreBackend::Scylla => {
                Arc::new(ScyllaStore::connect(scylla_config(&config.store)).await?)
            }
        };
        let (sink, analytics): (Arc<dyn EventSink>, Arc<dyn AnalyticsReader>) =
            match config.analytics.sink {
                EventSinkBackend::Files => {
                    let files = Arc::new(FileSink::open(data.join("events"))?);
                    (files.clone(), files)
                }
                EventSinkBackend::Clickhouse => {
                    let clickhouse = Arc::new(ClickHouseSink::new(
                        pseudonymized_clickhouse_config(config, secrets)?,
                    )?);
                    (clickhouse.clone(), clickhouse)
                }
            };
        let (provider, sandbox): (Arc<dyn WhatsappProvider>, _) = match config.whatsapp.provider {
            ProviderKind::Sandbox => {
                let sandbox = Arc::new(SandboxProvider::new());
                (sandbox.clone(), Some(sandbox))
            }
            ProviderKind::CloudApi => {
                let token = secrets.whatsapp_access_token.clone().ok_or_else(|| {
                    StartError::Settings(
                        "the Cloud API provider needs SEMBANG_WHATSAPP_ACCESS_TOKEN".into(),
                    )
                })?;
                let provider = CloudApiProvider::from_config(&config.whatsapp, token)
                    .map_err(failed("the Cloud API provider"))?;
                (Arc::new(provider), None)
            }
            ProviderKind::Wabot => {
                let token = secrets.wabot_access_token.clone().ok_or_else(|| {
                    StartError::Settings(
                        "the wabot provider needs SEMBANG_WABOT_ACCESS_TOKEN".into(),
                    )
                })?;
                let provider = WabotProvider::from_config(&config.whatsapp, token)
                    .map_err(failed("the wabot provider"))?;
                (Arc::new(provider), None)
            }
        };
        Ok(Backends {
            bus,
            store,
            sink,
            analytics,
            provider,
            sandbox,
        })
    }
}

/// The CQL store's settings of a profile.
pub fn scylla_config(config: &StoreConfig) -> ScyllaConfig {
    ScyllaConfig {
        nodes: config.scylla_nodes.clone(),
        keyspace: config.scylla_keyspace.clone(),
        request_timeout: Duration::from_millis(config.scylla_request_timeout_ms),
        ..ScyllaConfig::default()
    }
}

/// The ClickHouse sink's settings of a profile.
pub fn clickhouse_config(config: &AnalyticsConfig) -> ClickHouseConfig {
    ClickHouseConfig::new(&config.clickhouse_url, &config.clickhouse_database)
}

/// The ClickHouse settings with the key of the phone pseudonyms, derived from the IC vault's:
/// no phone number reaches ClickHouse in clear, so a deployment without IC keys cannot write
/// there.
pub fn pseudonymized_clickhouse_config(
    config: &Config,
    secrets: &Secrets,
) -> Result<ClickHouseConfig, StartError> {
    let vault = super::roles::vault(config, secrets)?;
    let mut clickhouse = clickhouse_config(&config.analytics);
    clickhouse.phone_pseudonyms = Some(PseudonymKey(vault.derive_key("analytics-phones")));
    Ok(clickhouse)
}

/// The analytics role's batching of a profile.
pub fn batcher_config(config: &AnalyticsConfig) -> BatcherConfig {
    BatcherConfig {
        max_rows: config.batch_max_rows.max(1) as usize,
        max_delay: Duration::from_millis(config.batch_max_delay_ms),
    }
}

/// Where original photos are kept, shared by the OCR role and the upload endpoint.
pub fn object_store(
    config: &Config,
    secrets: &Secrets,
) -> Result<Arc<dyn ObjectStore>, StartError> {
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
                    return Err(StartError::Settings(
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
            Arc::new(S3Store::new(&s3).map_err(failed("the S3 media store"))?)
        }
    })
}

pub fn media_limits(config: &Config) -> MediaLimits {
    MediaLimits {
        max_bytes: config.ocr.max_media_bytes,
        max_pixels: config.ocr.max_pixels,
    }
}
