//! End to end: signed webhooks in over HTTP, through the bus, the contact shards, the
//! sender and the analytics role, out to the store, the event sink and the provider. The
//! same scenario runs on the embedded default (embedded bus, redb store, event files,
//! sandbox provider) and on the real stack (Kafka, Cassandra, ClickHouse, and the fake
//! Cloud API as the provider).

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use sembang::config::{
    BusBackend, Config, EventSinkBackend, ProviderKind, Secret, Secrets, StoreBackend,
};
use sembang::domain::message::DeliveryStatus;
use sembang::domain::phone::PhoneNumber;
use sembang::engine::runtime::{start, Backends, Running};
use sembang::ingress::sign;
use sembang::provider::fake_cloud_api::{FakeCloudApi, FakeConfig};
use sembang::provider::{CloudApiConfig, CloudApiProvider};
use sembang::storage::bus::dead_letter::HEADER_ERROR_KIND;
use sembang::storage::bus::topics::{self, TopicNames};
use sembang::storage::bus::{Bus, ConsumerEvent, KafkaBus, KafkaBusConfig, Message, Record};
use sembang::storage::migrate::migrate;
use sembang::storage::sink::{ClickHouseConfig, ClickHouseSink, EventReader, EventTable, FileSink};
use sembang::storage::store::{
    ContactStore, CqlMigrationTarget, ScyllaConfig, ScyllaStore, CQL_MIGRATIONS,
};

const APP_SECRET: &str = "e2e-app-secret";
const SITI: &str = "60123456789";
const WAIT: Duration = Duration::from_secs(60);

struct Harness {
    running: Option<Running>,
    base: String,
    http: reqwest::Client,
    store: Arc<dyn ContactStore>,
    reader: Arc<dyn EventReader>,
    bus: Arc<dyn Bus>,
    names: TopicNames,
    replies: Replies,
    _dir: tempfile::TempDir,
}

enum Replies {
    Sandbox,
    Fake(FakeCloudApi),
}

/// What the provider was asked to send: (to, text body, wamid).
type Sent = (String, String, String);

fn base_config(dir: &tempfile::TempDir) -> Config {
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
    config
}

fn secrets() -> Secrets {
    Secrets {
        whatsapp_app_secret: Some(Secret::new(APP_SECRET)),
        whatsapp_verify_token: Some(Secret::new("verify-me")),
        whatsapp_access_token: Some(Secret::new("fake-cloud-api-token")),
        ..Secrets::default()
    }
}

impl Harness {
    async fn embedded() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = base_config(&dir);
        let backends = Backends::from_config(&config, &secrets()).await.unwrap();
        let files = FileSink::open(std::path::Path::new(&config.data_dir).join("events")).unwrap();
        Harness::start(config, backends, Arc::new(files), Replies::Sandbox, dir).await
    }

    /// Kafka, Cassandra and ClickHouse, each with names no other run uses; `None` when the
    /// stack is not configured.
    async fn real_stack() -> Option<Harness> {
        let kafka = support::service(support::KAFKA)?;
        let cassandra = support::service(support::CASSANDRA)?;
        let clickhouse = support::service(support::CLICKHOUSE)?;
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(&dir);
        config.bus.backend = BusBackend::Kafka;
        config.bus.kafka_brokers = kafka.clone();
        config.bus.namespace = support::unique_name("e2e");
        config.store.backend = StoreBackend::Scylla;
        config.analytics.sink = EventSinkBackend::Clickhouse;
        config.whatsapp.provider = ProviderKind::CloudApi;

        let keyspace = support::unique_name("sembang_e2e");
        let scylla = ScyllaConfig {
            nodes: vec![cassandra],
            keyspace: keyspace.clone(),
            request_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
        };
        let target = CqlMigrationTarget::connect(
            &scylla,
            "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        )
        .await
        .unwrap();
        migrate(&target, CQL_MIGRATIONS, &target.vars())
            .await
            .unwrap();
        let store = Arc::new(ScyllaStore::connect(scylla).await.unwrap());

        let mut clickhouse = ClickHouseConfig::new(clickhouse, support::unique_name("e2e"));
        clickhouse.request_timeout = Duration::from_secs(20);
        let sink = Arc::new(ClickHouseSink::new(clickhouse).unwrap());
        sink.migrate().await.unwrap();

        let fake = FakeCloudApi::start(FakeConfig::default()).await;
        config.whatsapp.api_base_url = fake.base_url();
        let provider = CloudApiProvider::new(
            CloudApiConfig::new(fake.base_url(), fake.api_version()),
            Secret::new(fake.access_token()),
        )
        .unwrap();
        let bus = Arc::new(KafkaBus::new(KafkaBusConfig::new(kafka)).unwrap());
        let backends = Backends {
            bus,
            store,
            sink: sink.clone(),
            provider: Arc::new(provider),
            sandbox: None,
        };
        Some(Harness::start(config, backends, sink, Replies::Fake(fake), dir).await)
    }

    async fn start(
        config: Config,
        backends: Backends,
        reader: Arc<dyn EventReader>,
        replies: Replies,
        dir: tempfile::TempDir,
    ) -> Harness {
        let store = backends.store.clone();
        let bus = backends.bus.clone();
        let running = start(&config, &secrets(), backends).await.unwrap();
        Harness {
            base: format!("http://{}", running.http_addr),
            running: Some(running),
            http: reqwest::Client::new(),
            store,
            reader,
            bus,
            names: TopicNames::new(&config.bus.namespace),
            replies,
            _dir: dir,
        }
    }

    async fn post_raw(&self, body: &[u8], signature: Option<String>) -> (u16, Value) {
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
    async fn post(&self, body: &Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let (status, answer) = self
            .post_raw(&bytes, Some(sign(APP_SECRET.as_bytes(), &bytes)))
            .await;
        assert_eq!(status, 200, "webhook answer: {answer}");
    }

    async fn contact(&self, phone: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}/api/contacts/{phone}/", self.base))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => Some(response.json().await.unwrap()),
            404 => None,
            other => panic!("GET contact: {other} {:?}", response.text().await),
        }
    }

    /// Waits until the contact satisfies `check`, and returns it.
    async fn contact_where(
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

    async fn message_count_reaches(&self, phone: &str, count: u64) -> Value {
        self.contact_where(phone, &format!("message_count {count}"), |c| {
            c["message_count"].as_u64() == Some(count)
        })
        .await
    }

    async fn sent(&self) -> Vec<Sent> {
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

    async fn sent_reaches(&self, count: usize) -> Vec<Sent> {
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

    async fn events_reach(&self, table: EventTable, count: u64) {
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
    async fn find_record(&self, topic: &str, found: impl Fn(&Message) -> bool) -> Message {
        let group = support::unique_name("probe");
        let mut consumer = self
            .bus
            .subscribe(&group, &[self.names.name(topic)])
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, consumer.next())
                .await
                .unwrap_or_else(|_| panic!("no matching record on {topic}"))
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

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

// ---- payloads ---------------------------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn envelope(value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": value }] }]
    })
}

fn metadata() -> Value {
    json!({ "display_phone_number": "60321611234", "phone_number_id": "106540352242922" })
}

fn text(from: &str, wamid: &str, at: i64, body: &str) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{ "profile": { "name": "Pelanggan" }, "wa_id": from }],
        "messages": [{ "from": from, "id": wamid, "timestamp": at.to_string(),
                       "type": "text", "text": { "body": body } }]
    }))
}

fn status(recipient: &str, wamid: &str, status: &str, at: i64) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "statuses": [{ "id": wamid, "status": status, "timestamp": at.to_string(),
                       "recipient_id": recipient }]
    }))
}

const T0: i64 = 1_732_510_800;

// ---- the scenario -------------------------------------------------------------------------

async fn scenario(h: Harness) {
    let siti = PhoneNumber::parse(SITI).unwrap();

    // 1. A text with a keyword: the contact is created and gets the register reply.
    h.post(&fixture("text")).await;
    let contact = h.message_count_reaches(SITI, 1).await;
    assert_eq!(contact["name"], "Siti Nurhaliza");
    assert_eq!(contact["whatsapp_status"], "active");
    assert_eq!(contact["ic_number"], Value::Null);
    let sent = h.sent_reaches(1).await;
    assert_eq!(sent[0].0, SITI);
    assert!(sent[0].1.contains("MyKad"), "register reply: {}", sent[0].1);

    // 2. The same webhook again (WhatsApp retries): nothing changes. A later message from
    //    the same contact is applied after it (one partition, one shard), so once it shows,
    //    the replay has been processed.
    h.post(&fixture("text")).await;
    h.post(&text(SITI, "wamid.E2E-THANKS", T0 + 60, "ok thanks"))
        .await;
    let contact = h.message_count_reaches(SITI, 2).await;
    assert_eq!(contact["response_rate"], 1.0, "the reply was answered once");
    assert_eq!(h.sent().await.len(), 1, "the replay sent no second reply");

    // 3. Opt-out in Malay: immediate, recorded, confirmed once; nothing more after it.
    h.post(&text(SITI, "wamid.E2E-STOP", T0 + 120, "BERHENTI"))
        .await;
    let contact = h
        .contact_where(SITI, "unsubscribed", |c| {
            c["whatsapp_status"] == "unsubscribed"
        })
        .await;
    assert_eq!(contact["consent_source"], "keyword:BERHENTI");
    assert_eq!(contact["marketing_opt_in"], false);
    let sent = h.sent_reaches(2).await;
    assert!(
        sent[1].1.contains("unsubscribed"),
        "confirmation: {}",
        sent[1].1
    );
    h.post(&text(SITI, "wamid.E2E-STOP2", T0 + 130, "stop"))
        .await;
    h.post(&text(SITI, "wamid.E2E-HELP", T0 + 140, "help"))
        .await;
    h.message_count_reaches(SITI, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.sent().await.len(),
        2,
        "an opted-out contact gets nothing more"
    );

    // 4. Opt-in again.
    h.post(&text(SITI, "wamid.E2E-START", T0 + 200, "Mula"))
        .await;
    let contact = h
        .contact_where(SITI, "opted in", |c| c["marketing_opt_in"] == true)
        .await;
    assert_eq!(contact["whatsapp_status"], "active");
    assert_eq!(h.sent_reaches(3).await.len(), 3);

    // 5. An image becomes an OCR job.
    h.post(&fixture("image_caption")).await;
    let job = h
        .find_record(topics::OCR_JOBS, |m| {
            serde_json::from_slice::<Value>(&m.payload)
                .map(|v| v["contact"] == SITI && v["media_kind"] == "image")
                .unwrap_or(false)
        })
        .await;
    let job: Value = serde_json::from_slice(&job.payload).unwrap();
    assert!(job["media_id"].as_str().is_some_and(|id| !id.is_empty()));

    // 6. Delivery statuses of our first reply, out of order and replayed.
    let reply_wamid = h.sent().await[0].2.clone();
    h.post(&status(SITI, &reply_wamid, "read", T0 + 30)).await;
    h.post(&status(SITI, &reply_wamid, "delivered", T0 + 20))
        .await;
    h.post(&status(SITI, &reply_wamid, "read", T0 + 30)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let message = loop {
        let message = h.store.message(&siti, &reply_wamid).await.unwrap();
        if let Some(m) = &message {
            if m.timeline.read_at.is_some() && m.timeline.delivered_at.is_some() {
                break m.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "statuses not stored: {message:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(message.timeline.current(), DeliveryStatus::Read);
    assert_eq!(message.timeline.read_at.unwrap().timestamp(), T0 + 30);

    // 7. Bad input gets its answer and changes nothing.
    let body = serde_json::to_vec(&text(SITI, "wamid.E2E-BAD", T0 + 300, "hello")).unwrap();
    let (code, answer) = h.post_raw(&body, None).await;
    assert_eq!(
        (code, answer["error"]["kind"].as_str()),
        (401, Some("bad_signature"))
    );
    let (code, _) = h.post_raw(&body, Some(sign(b"wrong secret", &body))).await;
    assert_eq!(code, 401);
    let malformed = b"{\"object\": \"whatsapp_business_account\", \"entry\": [";
    let (code, answer) = h
        .post_raw(malformed, Some(sign(APP_SECRET.as_bytes(), malformed)))
        .await;
    assert_eq!(
        (code, answer["error"]["kind"].as_str()),
        (400, Some("malformed"))
    );
    let huge = vec![b' '; 65 * 1024];
    let (code, _) = h
        .post_raw(&huge, Some(sign(APP_SECRET.as_bytes(), &huge)))
        .await;
    assert_eq!(code, 413);

    // 8. Unknown message types are kept (three messages: reaction, order, unknown
    //    interactive), and a poison record goes to the dead-letter topic while the engine
    //    goes on.
    h.post(&fixture("unknown_types")).await;
    h.message_count_reaches(SITI, 10).await;
    h.bus
        .producer()
        .send(Record::new(
            h.names.name(topics::INBOUND),
            SITI.as_bytes().to_vec(),
            b"{not an event".to_vec(),
        ))
        .await
        .unwrap();
    h.post(&text(
        SITI,
        "wamid.E2E-AFTER-POISON",
        T0 + 400,
        "still there?",
    ))
    .await;
    h.message_count_reaches(SITI, 11).await;
    let dead = h
        .find_record(topics::DEAD_LETTER, |m| m.payload == b"{not an event")
        .await;
    assert_eq!(
        dead.header(HEADER_ERROR_KIND),
        Some(&b"malformed_event"[..])
    );

    // 9. A batch with several entries, contacts and business numbers; its first contact
    //    opts out at once and is confirmed.
    h.post(&fixture("batch")).await;
    let first = h.message_count_reaches("60167778888", 1).await;
    assert_eq!(first["whatsapp_status"], "unsubscribed");
    assert_eq!(h.sent_reaches(4).await[3].0, "60167778888");
    h.message_count_reaches(SITI, 12).await;
    // 60112223333 is not a valid Malaysian number (011 numbers have 8 more digits): its
    // image and its status reports are kept in the dead-letter topic with the reason.
    let answer = h
        .http
        .get(format!("{}/api/contacts/60112223333/", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status().as_u16(),
        400,
        "the API refuses the number too"
    );
    let dead = h
        .find_record(topics::DEAD_LETTER, |m| {
            m.key == b"60112223333"
                && m.header(HEADER_ERROR_KIND) == Some(&b"unsupported_contact_number"[..])
        })
        .await;
    assert!(
        String::from_utf8_lossy(&dead.payload).contains("wamid.BATCH-E1C0-M0")
            || String::from_utf8_lossy(&dead.payload).contains("\"status\"")
    );

    // 10. Analytics: every inbound message, reply and status once, however often replayed.
    //     Inbound: Siti 12 + 60167778888; outbound: 4 replies; statuses: read + delivered
    //     of the reply, and the batch's delivered and read.
    h.events_reach(EventTable::InboundMessages, 13).await;
    h.events_reach(EventTable::OutboundMessages, 4).await;
    h.events_reach(EventTable::MessageStatuses, 4).await;

    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_default_end_to_end() {
    scenario(Harness::embedded().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_stack_end_to_end() {
    let Some(harness) = Harness::real_stack().await else {
        return;
    };
    scenario(harness).await;
}
