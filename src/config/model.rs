//! The configuration schema. Every leaf has a default (the embedded profile), so a profile
//! file only says what differs, and every leaf can be overridden by a `SEMBANG_…` variable.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use crate::domain::auto_reply::{AutoReplies, ReplyRule};
use crate::domain::money::Money;
use crate::domain::tier::{TierPolicy, TierWindow};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Informational name of the profile, shown at start.
    pub profile: String,
    /// Root for the embedded backends' files (store, bus log, events, media).
    pub data_dir: String,
    pub engine: EngineConfig,
    pub http: HttpConfig,
    pub admin: AdminConfig,
    pub bus: BusConfig,
    pub store: StoreConfig,
    pub analytics: AnalyticsConfig,
    pub whatsapp: WhatsappConfig,
    pub tiers: TierConfig,
    pub ocr: OcrConfig,
    pub media: MediaConfig,
    pub campaigns: CampaignsConfig,
}

/// Campaign rules that apply to every campaign unless it overrides them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignsConfig {
    /// At most this many marketing messages per contact ...
    pub frequency_cap_max: u32,
    /// ... in any this many days.
    pub frequency_cap_days: u32,
    /// Malaysian time (HH:MM) from which marketing sends wait ...
    pub quiet_hours_start: String,
    /// ... until this time. Equal times: no quiet hours.
    pub quiet_hours_end: String,
    /// The portfolio's messaging limit: unique customers reached by business-initiated
    /// messages in a moving 24 h (250, 2000, 10000, 100000; 0 = unlimited).
    pub messaging_limit_24h: u64,
    /// Least time between two messages to the same customer from one number (the pair
    /// rate, 131056) ...
    pub pair_interval_ms: u64,
    /// ... for campaign messages, which wait the interval after the latest message, a
    /// reply included. Replies are never held back (one slow customer would hold up every
    /// answer); this many in quick succession are taken to fit the pair rate, and one
    /// beyond it that the provider refuses (131056) is retried by the send's backoff.
    pub pair_reply_burst: u32,
    /// A campaign pauses itself after this many consecutive sends refused for a reason
    /// that retrying cannot fix (bad token, paused template).
    pub pause_after_errors: u32,
    /// The public base URL of tracking links (`<base>/r/<token>`): the ingress's address
    /// as customers reach it. Empty: links are sent as written.
    pub link_base_url: String,
    /// The business number's display digits (for analytics rows of campaign sends).
    pub business_number: String,
    /// Whether to ask for marketing consent after a registration (buttons Ya / Tidak).
    pub ask_consent: bool,
    /// The consent question, stored with each answer as the wording shown.
    pub consent_question: String,
    /// A send refused for Meta's per-user marketing cap (131049) is tried again this long
    /// after the refusal ...
    pub cap_retry_after_secs: u64,
    /// ... at most this many times (0: only "retry the failed" sends it again).
    pub cap_retries: u32,
    /// A running campaign whose pending recipients have not moved for this long is
    /// resumed (after quiet hours, a full messaging limit, a lost process).
    pub stall_resume_secs: u64,
    /// How often the campaign clock looks at campaigns.
    pub clock_tick_ms: u64,
    /// How soon a launched or paused tier-upgrade / first-purchase campaign takes effect
    /// in the engines.
    pub trigger_refresh_ms: u64,
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        CampaignsConfig {
            frequency_cap_max: 2,
            frequency_cap_days: 7,
            quiet_hours_start: "22:00".into(),
            quiet_hours_end: "08:00".into(),
            messaging_limit_24h: 250,
            pair_interval_ms: 6_000,
            pair_reply_burst: 5,
            pause_after_errors: 20,
            link_base_url: String::new(),
            business_number: String::new(),
            ask_consent: false,
            cap_retry_after_secs: 12 * 3_600,
            cap_retries: 3,
            stall_resume_secs: 120,
            clock_tick_ms: 5_000,
            trigger_refresh_ms: 5_000,
            consent_question:
                "Boleh kami hantar promosi dan tawaran kepada anda melalui WhatsApp? \
                               / May we send you promotions and offers on WhatsApp?"
                    .into(),
        }
    }
}

impl CampaignsConfig {
    pub fn frequency_cap(&self) -> crate::domain::campaign::FrequencyCap {
        crate::domain::campaign::FrequencyCap {
            max: self.frequency_cap_max,
            days: self.frequency_cap_days,
        }
    }

    pub fn cap_retry(&self) -> crate::domain::campaign::CapRetryPolicy {
        crate::domain::campaign::CapRetryPolicy {
            // Validated to at most 7 days.
            after: chrono::Duration::seconds(self.cap_retry_after_secs.min(7 * 86_400) as i64),
            max: self.cap_retries,
        }
    }

    /// Quiet hours; validated by [`Config::validate`].
    pub fn quiet_hours(&self) -> crate::domain::campaign::QuietHours {
        let parse = |t: &str| chrono::NaiveTime::parse_from_str(t, "%H:%M").unwrap_or_default();
        crate::domain::campaign::QuietHours {
            start: parse(&self.quiet_hours_start),
            end: parse(&self.quiet_hours_end),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaStoreBackend {
    /// Files under a directory of this machine (the embedded default).
    Local,
    /// An S3 bucket, or any S3-compatible store (`s3_endpoint`).
    S3,
}

/// Where original photos are kept (by SHA-256). S3 credentials are secrets
/// (SEMBANG_S3_ACCESS_KEY_ID, SEMBANG_S3_SECRET_ACCESS_KEY), else the usual AWS_* variables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub store: MediaStoreBackend,
    /// `local`: the directory; empty means `<data_dir>/media`.
    pub local_dir: String,
    pub s3_bucket: String,
    /// Prepended to every object key (e.g. `media/`).
    pub s3_prefix: String,
    /// Empty: AWS itself. Otherwise an S3-compatible endpoint, addressed path-style.
    pub s3_endpoint: String,
    pub s3_region: String,
    /// Allows a plain-HTTP endpoint (a store on the local network).
    pub s3_allow_http: bool,
    /// Hosts the Cloud API's media URLs may point at (`*.example.com` for subdomains).
    pub cloud_api_hosts: Vec<String>,
    /// Hosts a gateway's (wabot.my) media URLs may point at; empty refuses its media.
    pub gateway_hosts: Vec<String>,
    /// Lets media come from loopback and private addresses (tests, a gateway on the local
    /// network). Off, every resolved address must be public, whatever the host list says.
    pub allow_private_addresses: bool,
    /// Identity-card photos are deleted this long after they are read (the fields read
    /// from them are kept, the number encrypted).
    pub card_photo_retention_hours: u64,
    /// Every other photo (receipts, photos that were neither) is deleted this long after
    /// it is kept (the purchase and fields read from it are kept); 0 deletes at once.
    pub photo_retention_days: u64,
    /// How often the OCR role looks for photos past their retention.
    pub retention_sweep_secs: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            store: MediaStoreBackend::Local,
            local_dir: String::new(),
            s3_bucket: String::new(),
            s3_prefix: "media/".into(),
            s3_endpoint: String::new(),
            s3_region: "ap-southeast-1".into(),
            s3_allow_http: false,
            cloud_api_hosts: vec!["lookaside.fbsbx.com".into()],
            gateway_hosts: Vec::new(),
            allow_private_addresses: false,
            card_photo_retention_hours: 30 * 24,
            photo_retention_days: 365,
            retention_sweep_secs: 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcrConfig {
    /// Tesseract workers (one warm engine each, on its own thread); 0: one per core.
    pub workers: u32,
    /// Tesseract languages.
    pub languages: String,
    /// Largest photo accepted, in bytes.
    pub max_media_bytes: u64,
    /// Largest image accepted, in pixels (decompression bombs are refused from the header).
    pub max_pixels: u64,
    /// Each photo is read within this, or answered as unreadable and dead-lettered.
    pub deadline_ms: u64,
}

impl Default for OcrConfig {
    fn default() -> Self {
        OcrConfig {
            workers: 0,
            languages: "eng+msa".into(),
            max_media_bytes: 16 * 1024 * 1024,
            max_pixels: 60_000_000,
            deadline_ms: 30_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Ingress,
    Engine,
    Ocr,
    Sender,
    Analytics,
    /// Serves segment counts, previews and member lists from an index of every crm.contacts
    /// partition (read without joining the engine's group).
    Api,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Roles this process runs; all of them by default. Scale a role by running more
    /// processes with it in the same consumer group.
    pub roles: Vec<Role>,
    /// Contact shard workers; a contact always lives on the same one.
    pub shards: u32,
    /// After a MyKad registration, ask the customer's marital status with an interactive
    /// list (Cloud API provider only; wabot.my cannot send lists). Off by default.
    pub ask_marital_status: bool,
    /// Resident contacts across all shards before the least recently used are evicted.
    pub max_resident_contacts: u64,
    /// ... or their estimated memory across all shards, in MiB: the budget the engine
    /// keeps for contacts (the store's cache and the segment index are apart).
    pub max_resident_mb: u32,
    /// A contact untouched this long is written back (if dirty) and dropped from memory.
    pub idle_timeout_secs: u64,
    /// Dirty contacts are written back at the latest this long after their first change.
    pub flush_max_delay_ms: u64,
    /// ... or as soon as a shard holds this many dirty contacts.
    pub flush_max_dirty: u32,
    /// Records consumed but not yet stored before the consumer stops reading (backpressure).
    pub max_in_flight: u32,
    /// Keyword auto-replies, first match wins (see docs in src/domain/auto_reply.rs).
    pub auto_replies: Vec<ReplyRule>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// The public surface: the webhooks, tracking-link redirects and /healthz; also the
    /// admin API and /metrics when `admin_listen` is empty.
    pub listen: String,
    /// The private surface (admin API, /metrics, /healthz) on its own listener; empty
    /// serves it on `listen` (the embedded default, on loopback).
    pub admin_listen: String,
    pub max_body_bytes: u64,
    /// A connection must send a request's headers within this (slowloris).
    pub header_timeout_ms: u64,
    /// A request, its body included, must be answered within this (408 after).
    pub request_timeout_ms: u64,
    /// Open connections per listener; more wait in the kernel's backlog.
    pub max_connections: u32,
    /// A webhook post waits this long for the bus to take its events, then is answered
    /// 503 (WhatsApp retries it).
    pub webhook_store_timeout_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// When false the admin API accepts requests without a key unless keys are configured;
    /// only the embedded profile, which listens on loopback, turns this off.
    pub require_api_key: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusBackend {
    Embedded,
    Kafka,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    pub backend: BusBackend,
    /// Partitions per topic (embedded bus, and Kafka topics this process creates).
    pub partitions: u32,
    pub kafka_brokers: String,
    pub kafka_replication_factor: u32,
    /// Prefix of topic and consumer group names, so several deployments share a cluster.
    pub namespace: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    Embedded,
    Scylla,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    pub scylla_nodes: Vec<String>,
    pub scylla_keyspace: String,
    /// The keyspace's CQL replication map, used when migrations create it.
    pub scylla_replication: String,
    pub scylla_request_timeout_ms: u64,
    /// The embedded store's page cache (redb's own default is 1 GiB, which a growing
    /// message table fills: it was most of the embedded default's memory under load).
    pub embedded_cache_mb: u32,
    /// Message bodies (what customers and the business wrote) are cleared this long after
    /// the message, in the store and in the analytics events (ClickHouse or files); the
    /// message, its times and statuses stay. 0 keeps them.
    pub message_body_retention_days: u64,
    /// How often the engine sweeps the store, and the analytics role its events, for
    /// bodies past their retention.
    pub retention_sweep_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSinkBackend {
    Files,
    Clickhouse,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    pub sink: EventSinkBackend,
    pub clickhouse_url: String,
    pub clickhouse_database: String,
    pub batch_max_rows: u32,
    pub batch_max_delay_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Records outbound messages instead of sending them (embedded default).
    Sandbox,
    CloudApi,
    Wabot,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhatsappConfig {
    pub provider: ProviderKind,
    pub api_base_url: String,
    pub api_version: String,
    pub phone_number_id: String,
    pub wabot_base_url: String,
    pub wabot_instance_id: String,
    /// Messages per second per business number (Cloud API default tier: 80).
    pub messages_per_second: u32,
    /// Per business number (phone_number_id), its own messages per second where it differs
    /// (an upgraded number at 1,000; one shared with the Business app at 20).
    #[serde(default)]
    pub number_rates: std::collections::BTreeMap<String, u32>,
    /// A send with no answer within this long counts as "outcome unknown" and is not
    /// retried (the provider may have taken it).
    pub request_timeout_ms: u64,
    /// A send keeps retrying (rate limits, 5xx) for at most this long. A replay of a
    /// request claimed by a sender that may still be at it waits this long (plus the
    /// request timeout) for its result before taking it for lost.
    pub send_budget_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierWindowKind {
    Lifetime,
    Rolling,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierConfig {
    pub silver_from: Money,
    pub gold_from: Money,
    pub platinum_from: Money,
    pub window: TierWindowKind,
    /// Used when `window = "rolling"`.
    pub rolling_months: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profile: "embedded".into(),
            data_dir: "data".into(),
            engine: EngineConfig::default(),
            http: HttpConfig::default(),
            admin: AdminConfig::default(),
            bus: BusConfig::default(),
            store: StoreConfig::default(),
            analytics: AnalyticsConfig::default(),
            whatsapp: WhatsappConfig::default(),
            tiers: TierConfig::default(),
            ocr: OcrConfig::default(),
            media: MediaConfig::default(),
            campaigns: CampaignsConfig::default(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            roles: vec![
                Role::Ingress,
                Role::Engine,
                Role::Ocr,
                Role::Sender,
                Role::Analytics,
                Role::Api,
            ],
            shards: 4,
            ask_marital_status: false,
            max_resident_contacts: 1_000_000,
            max_resident_mb: 512,
            idle_timeout_secs: 600,
            flush_max_delay_ms: 200,
            flush_max_dirty: 2_000,
            max_in_flight: 20_000,
            auto_replies: AutoReplies::default_rules(),
        }
    }
}

impl HttpConfig {
    /// Where the admin API and /metrics listen.
    pub fn admin_listen(&self) -> &str {
        if self.admin_listen.is_empty() {
            &self.listen
        } else {
            &self.admin_listen
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            admin_listen: String::new(),
            max_body_bytes: 4 * 1024 * 1024,
            header_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            webhook_store_timeout_ms: 10_000,
            max_connections: 1024,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            require_api_key: true,
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            backend: BusBackend::Embedded,
            partitions: 8,
            kafka_brokers: "127.0.0.1:9092".into(),
            kafka_replication_factor: 1,
            namespace: String::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Embedded,
            scylla_nodes: vec!["127.0.0.1:9042".into()],
            scylla_keyspace: "sembang".into(),
            scylla_replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}".into(),
            scylla_request_timeout_ms: 5_000,
            embedded_cache_mb: 64,
            message_body_retention_days: 365,
            retention_sweep_secs: 86_400,
        }
    }
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            sink: EventSinkBackend::Files,
            clickhouse_url: "http://127.0.0.1:8123".into(),
            clickhouse_database: "sembang".into(),
            batch_max_rows: 10_000,
            batch_max_delay_ms: 1_000,
        }
    }
}

impl Default for WhatsappConfig {
    fn default() -> Self {
        WhatsappConfig {
            provider: ProviderKind::Sandbox,
            api_base_url: "https://graph.facebook.com".into(),
            api_version: "v21.0".into(),
            phone_number_id: String::new(),
            wabot_base_url: String::new(),
            wabot_instance_id: String::new(),
            messages_per_second: 80,
            number_rates: Default::default(),
            request_timeout_ms: 10_000,
            send_budget_ms: 60_000,
        }
    }
}

impl Default for TierConfig {
    fn default() -> Self {
        let policy = TierPolicy::default();
        TierConfig {
            silver_from: policy.silver_from,
            gold_from: policy.gold_from,
            platinum_from: policy.platinum_from,
            window: TierWindowKind::Lifetime,
            rolling_months: 12,
        }
    }
}

impl TierConfig {
    pub fn policy(&self) -> TierPolicy {
        TierPolicy {
            silver_from: self.silver_from,
            gold_from: self.gold_from,
            platinum_from: self.platinum_from,
            window: match self.window {
                TierWindowKind::Lifetime => TierWindow::Lifetime,
                TierWindowKind::Rolling => TierWindow::RollingMonths {
                    months: self.rolling_months,
                },
            },
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn require_non_empty(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(invalid(key, "must not be empty"))
    } else {
        Ok(())
    }
}

fn require_http_url(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{value:?} is not an http:// or https:// URL"),
        ))
    }
}

impl Config {
    /// Checks every value a process needs before it starts anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_non_empty("data_dir", &self.data_dir)?;
        let campaigns = &self.campaigns;
        if campaigns.frequency_cap_max == 0 || !(1..=90).contains(&campaigns.frequency_cap_days) {
            return Err(invalid(
                "campaigns.frequency_cap_max",
                "frequency_cap_max at least 1 and frequency_cap_days 1 to 90",
            ));
        }
        for (key, value) in [
            ("campaigns.quiet_hours_start", &campaigns.quiet_hours_start),
            ("campaigns.quiet_hours_end", &campaigns.quiet_hours_end),
        ] {
            chrono::NaiveTime::parse_from_str(value, "%H:%M")
                .map_err(|_| invalid(key, format!("{value:?} is not a time like 22:00")))?;
        }
        if campaigns.cap_retry_after_secs > 7 * 86_400 {
            return Err(invalid(
                "campaigns.cap_retry_after_secs",
                "at most 604800 (7 days)",
            ));
        }
        if !campaigns.link_base_url.is_empty() {
            let url = url::Url::parse(&campaigns.link_base_url).map_err(|e| {
                invalid(
                    "campaigns.link_base_url",
                    format!("{:?}: {e}", campaigns.link_base_url),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid("campaigns.link_base_url", "must be an http(s) URL"));
            }
        }
        if campaigns.consent_question.trim().is_empty()
            || campaigns.consent_question.chars().count() > 1024
        {
            return Err(invalid(
                "campaigns.consent_question",
                "1 to 1024 characters",
            ));
        }
        if self.engine.roles.is_empty() {
            return Err(invalid("engine.roles", "at least one role must run"));
        }
        if self.engine.shards == 0 || self.engine.shards > 256 {
            return Err(invalid("engine.shards", "must be between 1 and 256"));
        }
        for (key, value) in [
            (
                "engine.max_resident_contacts",
                self.engine.max_resident_contacts,
            ),
            (
                "engine.max_resident_mb",
                u64::from(self.engine.max_resident_mb),
            ),
            ("engine.flush_max_delay_ms", self.engine.flush_max_delay_ms),
            (
                "engine.flush_max_dirty",
                u64::from(self.engine.flush_max_dirty),
            ),
            ("engine.max_in_flight", u64::from(self.engine.max_in_flight)),
            (
                "store.embedded_cache_mb",
                u64::from(self.store.embedded_cache_mb),
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        AutoReplies::new(self.engine.auto_replies.clone())
            .map_err(|e| invalid("engine.auto_replies", e.to_string()))?;
        self.http
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| invalid("http.listen", format!("{:?}: {e}", self.http.listen)))?;
        if !self.http.admin_listen.is_empty() {
            self.http.admin_listen.parse::<SocketAddr>().map_err(|e| {
                invalid(
                    "http.admin_listen",
                    format!("{:?}: {e}", self.http.admin_listen),
                )
            })?;
        }
        for (key, value) in [
            ("http.header_timeout_ms", self.http.header_timeout_ms),
            ("http.request_timeout_ms", self.http.request_timeout_ms),
            (
                "http.webhook_store_timeout_ms",
                self.http.webhook_store_timeout_ms,
            ),
            ("http.max_connections", u64::from(self.http.max_connections)),
            ("ocr.deadline_ms", self.ocr.deadline_ms),
            (
                "media.retention_sweep_secs",
                self.media.retention_sweep_secs,
            ),
            (
                "store.retention_sweep_secs",
                self.store.retention_sweep_secs,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.http.max_body_bytes < 1024 {
            return Err(invalid("http.max_body_bytes", "must be at least 1024"));
        }
        if self.media.store == MediaStoreBackend::S3 {
            require_non_empty("media.s3_bucket", &self.media.s3_bucket)?;
            require_non_empty("media.s3_region", &self.media.s3_region)?;
            if self.media.s3_endpoint.starts_with("http://") && !self.media.s3_allow_http {
                return Err(invalid(
                    "media.s3_endpoint",
                    "is plain HTTP: set media.s3_allow_http = true to allow it",
                ));
            }
        }
        if self.bus.partitions == 0 || self.bus.partitions > 1024 {
            return Err(invalid("bus.partitions", "must be between 1 and 1024"));
        }
        if self.bus.backend == BusBackend::Kafka {
            require_non_empty("bus.kafka_brokers", &self.bus.kafka_brokers)?;
            if self.bus.kafka_replication_factor == 0 {
                return Err(invalid(
                    "bus.kafka_replication_factor",
                    "must be at least 1",
                ));
            }
        }
        if self.store.backend == StoreBackend::Scylla {
            if self.store.scylla_nodes.is_empty() {
                return Err(invalid("store.scylla_nodes", "at least one node is needed"));
            }
            require_non_empty("store.scylla_keyspace", &self.store.scylla_keyspace)?;
            let keyspace_ok = self
                .store
                .scylla_keyspace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !keyspace_ok {
                return Err(invalid(
                    "store.scylla_keyspace",
                    "only letters, digits and underscores",
                ));
            }
        }
        if self.analytics.sink == EventSinkBackend::Clickhouse {
            require_http_url("analytics.clickhouse_url", &self.analytics.clickhouse_url)?;
            require_non_empty(
                "analytics.clickhouse_database",
                &self.analytics.clickhouse_database,
            )?;
        }
        if self.analytics.batch_max_rows == 0 {
            return Err(invalid("analytics.batch_max_rows", "must be at least 1"));
        }
        match self.whatsapp.provider {
            ProviderKind::Sandbox => {}
            ProviderKind::CloudApi => {
                require_http_url("whatsapp.api_base_url", &self.whatsapp.api_base_url)?;
                require_non_empty("whatsapp.api_version", &self.whatsapp.api_version)?;
                require_non_empty("whatsapp.phone_number_id", &self.whatsapp.phone_number_id)?;
            }
            ProviderKind::Wabot => {
                require_http_url("whatsapp.wabot_base_url", &self.whatsapp.wabot_base_url)?;
                require_non_empty(
                    "whatsapp.wabot_instance_id",
                    &self.whatsapp.wabot_instance_id,
                )?;
            }
        }
        if !(100..=120_000).contains(&self.whatsapp.request_timeout_ms) {
            return Err(invalid(
                "whatsapp.request_timeout_ms",
                "must be between 100 and 120000",
            ));
        }
        if !(1_000..=600_000).contains(&self.whatsapp.send_budget_ms) {
            return Err(invalid(
                "whatsapp.send_budget_ms",
                "must be between 1000 and 600000",
            ));
        }
        if let Some((number, _)) = self.whatsapp.number_rates.iter().find(|(_, r)| **r == 0) {
            return Err(invalid(
                "whatsapp.number_rates",
                format!("{number}: messages per second must be at least 1"),
            ));
        }
        if self.whatsapp.messages_per_second == 0 {
            return Err(invalid(
                "whatsapp.messages_per_second",
                "must be at least 1",
            ));
        }
        self.tiers
            .policy()
            .validate()
            .map_err(|e| invalid("tiers", e.to_string()))
    }
}
