//! A running engine for end-to-end tests: started in-process on the embedded backends or
//! on the real stack, driven over HTTP like WhatsApp would, observed through the admin
//! API, the store, the event reader, the bus and the provider.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{
    service, unique_name, CASSANDRA, CLICKHOUSE, KAFKA, S3, S3_BUCKET, S3_CREDENTIAL, S3_IDENTITY,
};

use sembang::app::{pseudonymized_clickhouse_config, schemas};
use sembang::app::{start, Backends, Running};
use sembang::config::{
    AnalyticsConfig, BusBackend, Config, EventSinkBackend, MediaStoreBackend, ProviderKind, Role,
    Secret, Secrets, StoreBackend, StoreConfig,
};
use sembang::ingress::sign;
use sembang::provider::fake_cloud_api::{FakeCloudApi, FakeConfig};
use sembang::provider::{CloudApiConfig, CloudApiProvider, WhatsappProvider};
use sembang::storage::bus::{Bus, ConsumerEvent, Message};
use sembang::storage::sink::{ClickHouseSink, EventReader, EventTable, FileSink};
use sembang::storage::store::ContactStore;
use sembang::topics::TopicNames;

pub const APP_SECRET: &str = "e2e-app-secret";
pub const SITI: &str = "60123456789";
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Harness {
    running: Option<Running>,
    pub base: String,
    /// The admin API and /metrics (the same as `base` without `http.admin_listen`).
    pub admin_base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn ContactStore>,
    pub reader: Arc<dyn EventReader>,
    pub bus: Arc<dyn Bus>,
    pub names: TopicNames,
    pub replies: Replies,
    /// The configuration the process runs with (for starting more processes beside it).
    pub config: Config,
    /// The real stack's keyspace and database of this harness, dropped by [`Self::stop`].
    throwaway: Option<(StoreConfig, AnalyticsConfig)>,
    _dir: tempfile::TempDir,
}

pub enum Replies {
    Sandbox,
    Fake(FakeCloudApi),
}

/// What the provider was asked to send: (to, text body, wamid).
pub type Sent = (String, String, String);

pub fn base_config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config {
        data_dir: dir.path().join("data").display().to_string(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".into();
    config.http.max_body_bytes = 64 * 1024;
    config.admin.require_api_key = false;
    config.engine.flush_max_delay_ms = 50;
    config.analytics.batch_max_delay_ms = 100;
    config.bus.partitions = 4;
    // OCR has tests of its own (tests/engine_ocr.rs); here images only become jobs.
    config.engine.roles.retain(|role| *role != Role::Ocr);
    config.ocr.workers = 1;
    // The fixtures' messages are dated 2024: the default retention's sweep at start could
    // clear their bodies under a test's feet. Retention has tests of its own.
    config.store.message_body_retention_days = 0;
    config
}

/// Sends through (and fetches media from) the fake Cloud API.
pub fn use_fake_cloud_api(config: &mut Config, fake: &FakeCloudApi) {
    config.whatsapp.provider = ProviderKind::CloudApi;
    config.whatsapp.api_base_url = fake.base_url();
    config.whatsapp.api_version = fake.api_version().into();
    config.whatsapp.phone_number_id = "106540352242922".into();
    // The fake serves its media from loopback.
    config.media.cloud_api_hosts = vec!["127.0.0.1".into()];
    config.media.allow_private_addresses = true;
}

pub fn secrets() -> Secrets {
    Secrets {
        whatsapp_app_secret: Some(Secret::new(APP_SECRET)),
        whatsapp_verify_token: Some(Secret::new("verify-me")),
        whatsapp_access_token: Some(Secret::new("fake-cloud-api-token")),
        ic_encryption_key: Some(Secret::new("11".repeat(32))),
        ic_hash_key: Some(Secret::new("22".repeat(32))),
        // The local stack's S3 (used when a test's media store is S3).
        s3_access_key_id: Some(Secret::new(S3_IDENTITY)),
        s3_secret_access_key: Some(Secret::new(S3_CREDENTIAL)),
        ..Secrets::default()
    }
}

/// A Cloud API provider that sends to the fake.
pub fn fake_provider_for(fake: &FakeCloudApi) -> Arc<dyn WhatsappProvider> {
    Arc::new(
        CloudApiProvider::new(
            CloudApiConfig::new(fake.base_url(), fake.api_version()),
            Secret::new(fake.access_token()),
        )
        .unwrap(),
    )
}

impl Harness {
    pub async fn embedded() -> Harness {
        Harness::embedded_with(false, |store| store).await
    }

    /// The embedded backends, sending through the fake Cloud API when `fake` is set, with
    /// the store passed through `wrap_store` (fault injection).
    pub async fn embedded_with(
        fake: bool,
        wrap_store: impl FnOnce(Arc<dyn ContactStore>) -> Arc<dyn ContactStore>,
    ) -> Harness {
        Harness::embedded_tuned(fake, wrap_store, |_| {}).await
    }

    /// As [`Harness::embedded_with`], with `tune` changing the configuration first.
    pub async fn embedded_tuned(
        fake: bool,
        wrap_store: impl FnOnce(Arc<dyn ContactStore>) -> Arc<dyn ContactStore>,
        tune: impl FnOnce(&mut Config),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(&dir);
        tune(&mut config);
        let fake = if fake {
            let fake = FakeCloudApi::start(FakeConfig::default()).await;
            use_fake_cloud_api(&mut config, &fake);
            Some(fake)
        } else {
            None
        };
        let mut backends = Backends::from_config(&config, &secrets()).await.unwrap();
        backends.store = wrap_store(backends.store);
        let files = FileSink::open(std::path::Path::new(&config.data_dir).join("events")).unwrap();
        let replies = match fake {
            Some(fake) => Replies::Fake(fake),
            None => Replies::Sandbox,
        };
        Harness::start(config, backends, Arc::new(files), replies, dir).await
    }

    /// Kafka, Cassandra and ClickHouse, each with names no other run uses; `None` when the
    /// stack is not configured.
    pub async fn real_stack() -> Option<Harness> {
        Harness::real_stack_tuned(|_| {}).await
    }

    /// As [`Harness::real_stack`], with `tune` changing the configuration first.
    pub async fn real_stack_tuned(tune: impl FnOnce(&mut Config)) -> Option<Harness> {
        Harness::real_stack_built(tune, |_, _| {}).await
    }

    /// As [`Harness::real_stack_tuned`], with `build` changing the backends (after the
    /// provider is set to the fake Cloud API) before the engine starts.
    pub async fn real_stack_built(
        tune: impl FnOnce(&mut Config),
        build: impl FnOnce(&Config, &mut Backends),
    ) -> Option<Harness> {
        let kafka = service(KAFKA)?;
        let cassandra = service(CASSANDRA)?;
        let clickhouse = service(CLICKHOUSE)?;
        let s3 = service(S3)?;
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(&dir);
        config.bus.backend = BusBackend::Kafka;
        config.bus.kafka_brokers = kafka.clone();
        config.bus.namespace = unique_name("e2e");
        config.store.backend = StoreBackend::Scylla;
        config.analytics.sink = EventSinkBackend::Clickhouse;
        config.whatsapp.provider = ProviderKind::CloudApi;
        config.media.store = MediaStoreBackend::S3;
        config.media.s3_endpoint = s3;
        config.media.s3_allow_http = true;
        config.media.s3_bucket = S3_BUCKET.into();
        config.media.s3_region = "us-east-1".into();
        config.media.s3_prefix = format!("{}/", unique_name("e2e"));
        config.store.scylla_nodes = vec![cassandra];
        config.store.scylla_keyspace = unique_name("sembang_e2e");
        config.store.scylla_request_timeout_ms = 20_000;
        config.analytics.clickhouse_url = clickhouse;
        config.analytics.clickhouse_database = unique_name("e2e");
        tune(&mut config);

        schemas::migrate_all(&config).await.unwrap();
        let fake = FakeCloudApi::start(FakeConfig::default()).await;
        use_fake_cloud_api(&mut config, &fake);
        let mut backends = Backends::from_config(&config, &secrets()).await.unwrap();
        backends.provider = fake_provider_for(&fake);
        build(&config, &mut backends);
        let reader =
            ClickHouseSink::new(pseudonymized_clickhouse_config(&config, &secrets()).unwrap());
        let reader = Arc::new(reader.unwrap());
        let throwaway = (config.store.clone(), config.analytics.clone());
        let mut harness = Harness::start(config, backends, reader, Replies::Fake(fake), dir).await;
        harness.throwaway = Some(throwaway);
        Some(harness)
    }

    pub async fn start(
        config: Config,
        backends: Backends,
        reader: Arc<dyn EventReader>,
        replies: Replies,
        dir: tempfile::TempDir,
    ) -> Harness {
        Harness::start_with(config, secrets(), backends, reader, replies, dir).await
    }

    pub async fn start_with(
        config: Config,
        secrets: Secrets,
        backends: Backends,
        reader: Arc<dyn EventReader>,
        replies: Replies,
        dir: tempfile::TempDir,
    ) -> Harness {
        let store = backends.store.clone();
        let bus = backends.bus.clone();
        let running = start(&config, &secrets, backends).await.unwrap();
        let started_config = config.clone();
        Harness {
            base: format!("http://{}", running.http_addr),
            admin_base: format!("http://{}", running.admin_addr),
            running: Some(running),
            http: reqwest::Client::new(),
            store,
            reader,
            bus,
            names: TopicNames::new(&config.bus.namespace),
            replies,
            throwaway: None,
            config: started_config,
            _dir: dir,
        }
    }

    /// The process's segment index, when it has one.
    pub fn segment_index(&self) -> Option<Arc<sembang::segments::SegmentIndex>> {
        self.running
            .as_ref()
            .and_then(|r| r.segments.as_ref())
            .map(|(index, _)| index.clone())
    }

    pub async fn post_raw(&self, body: &[u8], signature: Option<String>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/webhook/whatsapp", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Posts a signed body and expects 200.
    pub async fn post(&self, body: &Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let (status, answer) = self
            .post_raw(&bytes, Some(sign(APP_SECRET.as_bytes(), &bytes)))
            .await;
        assert_eq!(status, 200, "webhook answer: {answer}");
    }

    /// `GET /api/contacts/<phone>/`, as sent.
    pub async fn get_contact(&self, phone: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/contacts/{phone}/", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn contact(&self, phone: &str) -> Option<Value> {
        let response = self.get_contact(phone).await;
        match response.status().as_u16() {
            200 => Some(response.json().await.unwrap()),
            404 => None,
            other => panic!("GET contact: {other} {:?}", response.text().await),
        }
    }

    /// Waits until the contact satisfies `check`, and returns it.
    pub async fn contact_where(
        &self,
        phone: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let contact = self.contact(phone).await;
            if let Some(contact) = &contact {
                if check(contact) {
                    return contact.clone();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; contact: {contact:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn message_count_reaches(&self, phone: &str, count: u64) -> Value {
        self.contact_where(phone, &format!("message_count {count}"), |c| {
            c["message_count"].as_u64() == Some(count)
        })
        .await
    }

    /// The Prometheus text on /metrics.
    /// Starts another process beside this one (the same namespace, keyspace, database and
    /// provider) with `roles`.
    pub async fn start_beside(&self, roles: Vec<Role>) -> Running {
        let mut config = self.config.clone();
        config.engine.roles = roles;
        config.http.listen = "127.0.0.1:0".into();
        let backends = Backends::from_config(&config, &secrets()).await.unwrap();
        start(&config, &secrets(), backends).await.unwrap()
    }

    /// Polls `GET /api/campaigns/<id>/` until `check` holds, for at most `within`; a timeout
    /// panics with the campaign, its pending recipients and how much the provider sent.
    pub async fn campaign_where(
        &self,
        id: &str,
        what: &str,
        within: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, c) = self
                .api(reqwest::Method::GET, &format!("/api/campaigns/{id}/"), None)
                .await;
            assert_eq!(status, 200, "{c}");
            if check(&c) {
                return c;
            }
            if tokio::time::Instant::now() >= deadline {
                let (_, pending) = self
                    .api(
                        reqwest::Method::GET,
                        &format!("/api/campaigns/{id}/recipients/?status=pending"),
                        None,
                    )
                    .await;
                let sent = self.sent().await.len();
                panic!("timed out waiting for {what}: {c}\npending: {pending}\nsent by the provider: {sent}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates the segment of opted-in contacts and waits until it counts `count`; its id.
    pub async fn opted_in_segment(&self, count: u64) -> String {
        let (status, segment) = self
            .api(
                reqwest::Method::POST,
                "/api/segments/",
                Some(json!({"name": "Opted in", "custom_filters": {"field": "marketing_opt_in", "op": "eq", "value": true}})),
            )
            .await;
        assert_eq!(status, 201, "{segment}");
        let id = segment["id"].as_str().unwrap().to_string();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, shown) = self
                .api(reqwest::Method::GET, &format!("/api/segments/{id}/"), None)
                .await;
            if shown["count"] == count {
                return id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "segment count: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An admin API call: the status and the body (JSON, or the text as a string).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn sent(&self) -> Vec<Sent> {
        match &self.replies {
            Replies::Sandbox => {
                let list: Vec<Value> = self
                    .http
                    .get(format!("{}/api/sandbox/messages/", self.base))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                list.iter()
                    .map(|m| {
                        (
                            m["to"].as_str().unwrap().to_string(),
                            m["body"].as_str().unwrap_or("").to_string(),
                            m["wamid"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            }
            Replies::Fake(fake) => fake
                .sent()
                .into_iter()
                .map(|s| {
                    let body = s.body["text"]["body"].as_str().unwrap_or("").to_string();
                    (s.to, body, s.wamid)
                })
                .collect(),
        }
    }

    pub async fn sent_reaches(&self, count: usize) -> Vec<Sent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let sent = self.sent().await;
            if sent.len() >= count {
                return sent;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {count} sends; got {sent:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `table` holds at least `count` events.
    pub async fn events_reach_at_least(&self, table: EventTable, count: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.reader.count_events(table).await.unwrap() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{table:?}: fewer than {count} events"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn events_reach(&self, table: EventTable, count: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.reader.count_events(table).await.unwrap();
            if got >= count {
                assert_eq!(got, count, "{table:?}: more events than expected");
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out: {table:?} has {got} of {count} events"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads `topic` from the start in a group of its own until `found` holds for a record.
    pub async fn find_record(
        &self,
        topic: sembang::topics::Topic,
        found: impl Fn(&Message) -> bool,
    ) -> Message {
        let group = unique_name("probe");
        let mut consumer = self
            .bus
            .subscribe(&group, &[self.names.name(topic)])
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, consumer.next())
                .await
                .unwrap_or_else(|_| panic!("no matching record on {}", topic.name))
                .unwrap();
            match event {
                ConsumerEvent::Message(m) if found(&m) => {
                    let _ = consumer.close().await;
                    return m;
                }
                ConsumerEvent::Revoked { ack, .. } => ack.commit(Vec::new()),
                _ => {}
            }
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        // A failed test skips this and leaves its data to look at.
        if let Some((store, analytics)) = self.throwaway.take() {
            schemas::drop_store(&store).await.unwrap();
            schemas::drop_sink(&analytics).await.unwrap();
        }
    }
}

// ---- payloads ---------------------------------------------------------------------------

pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn envelope(value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": value }] }]
    })
}

pub fn metadata() -> Value {
    json!({ "display_phone_number": "60321611234", "phone_number_id": "106540352242922" })
}

pub fn text(from: &str, wamid: &str, at: i64, body: &str) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{ "profile": { "name": "Pelanggan" }, "wa_id": from }],
        "messages": [{ "from": from, "id": wamid, "timestamp": at.to_string(),
                       "type": "text", "text": { "body": body } }]
    }))
}

pub fn status(recipient: &str, wamid: &str, status: &str, at: i64) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "statuses": [{ "id": wamid, "status": status, "timestamp": at.to_string(),
                       "recipient_id": recipient }]
    }))
}

pub const T0: i64 = 1_732_510_800;
