//! `sembang-campaign-bench`: a campaign to N opted-in customers on the real stack, sent
//! through the fake Cloud API enforcing R messages/s for the number, while inbound
//! messages keep arriving. It measures:
//! - planning: from the launch to every recipient planned (the planners' counter);
//! - pacing at the fake: the share of R used between the first and the last campaign send,
//!   and one-second windows (sliding, every send starting one) holding more than R sends
//!   of the number (campaign and replies together); 130429 answers the sender received;
//! - reply latency (inbound produced → the fake receives the auto-reply), p50 / p99,
//!   before the campaign and during it;
//! - duplicates and recipients not sent.
//!
//! Usage: sembang-campaign-bench [--recipients N] [--rate R] [--inbound-rate M] [--keep]
//! Addresses as for sembang-loadtest (SEMBANG_TEST_KAFKA, _CASSANDRA, _CLICKHOUSE).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;

use sembang::app::{schemas, start, Backends};
use sembang::config::{
    BusBackend, Config, EventSinkBackend, ProviderKind, Role, Secret, Secrets, StoreBackend,
};
use sembang::domain::clock::malaysian_day;
use sembang::domain::segment::{EvalContext, SegmentDefinition};
use sembang::ingress::parse_webhook;
use sembang::provider::fake_cloud_api::{FakeCloudApi, FakeConfig, FakeSent};
use sembang::storage::bus::{Producer, Record, TopicSpec};
use sembang::topics::{self, TopicNames};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const NUMBER: &str = "106540352242922";

struct Args {
    recipients: u64,
    rate: u32,
    inbound_rate: u64,
    keep: bool,
}

fn args() -> Args {
    let mut args = Args {
        recipients: 10_000,
        rate: 1_000,
        inbound_rate: 20,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a whole number"))
        };
        match flag.as_str() {
            "--recipients" => args.recipients = number(),
            "--rate" => args.rate = number() as u32,
            "--inbound-rate" => args.inbound_rate = number(),
            "--keep" => args.keep = true,
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// An inbound text from `from`, as the webhook ingress would produce it.
fn inbound(names: &TopicNames, from: &str, wamid: &str, body: &str) -> Record {
    let envelope = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "60321611234", "phone_number_id": NUMBER },
            "contacts": [{ "profile": { "name": "Pelanggan" }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid,
                           "timestamp": Utc::now().timestamp().to_string(),
                           "type": "text", "text": { "body": body } }]
        }}]}]
    });
    let event = parse_webhook(&serde_json::to_vec(&envelope).unwrap())
        .unwrap()
        .events
        .remove(0);
    Record::new(
        names.name(topics::INBOUND),
        event.partition_key().as_bytes().to_vec(),
        serde_json::to_vec(&event).unwrap(),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends `help` from fresh contacts at `rate`/s for `seconds`; returns the latency of each
/// reply as the fake received it.
async fn reply_latencies(
    producer: &dyn Producer,
    names: &TopicNames,
    fake: &FakeCloudApi,
    tag: &str,
    rate: u64,
    seconds: u64,
) -> Vec<Duration> {
    let mut produced: HashMap<String, chrono::DateTime<Utc>> = HashMap::new();
    let total = rate * seconds;
    let started = Instant::now();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let from = format!("60199{tag}{i:05}");
        produced.insert(from.clone(), Utc::now());
        producer
            .send(inbound(names, &from, &format!("wamid.{tag}-{i}"), "help"))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let replies: HashMap<String, chrono::DateTime<Utc>> = fake
            .sent()
            .into_iter()
            .filter(|s| produced.contains_key(&s.to))
            .map(|s| (s.to, s.time))
            .collect();
        if replies.len() as u64 >= total || Instant::now() > deadline {
            let mut latencies: Vec<Duration> = replies
                .iter()
                .map(|(to, at)| (*at - produced[to]).to_std().unwrap_or_default())
                .collect();
            latencies.sort();
            return latencies;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The largest number of sends in any one-second window starting at a send, and how many
/// such windows hold more than `rate`.
fn windows(sends: &[FakeSent], rate: u32) -> (usize, usize) {
    let mut times: Vec<chrono::DateTime<Utc>> = sends.iter().map(|s| s.time).collect();
    times.sort();
    let (mut worst, mut over, mut end) = (0, 0, 0);
    for start in 0..times.len() {
        while end < times.len() && times[end] - times[start] < chrono::Duration::seconds(1) {
            end += 1;
        }
        let count = end - start;
        worst = worst.max(count);
        if count > rate as usize {
            over += 1;
        }
    }
    (worst, over)
}

fn metric_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let run = format!("campaign_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeCloudApi::start(FakeConfig {
        messages_per_second: Some(args.rate),
        ..FakeConfig::default()
    })
    .await;
    let mut config = Config {
        data_dir: dir.path().display().to_string(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".into();
    config.bus.namespace = run.clone();
    config.engine.roles = vec![Role::Engine, Role::Sender, Role::Analytics, Role::Api];
    // Loopback only, as in the embedded profile.
    config.admin.require_api_key = false;
    config.bus.backend = BusBackend::Kafka;
    config.bus.kafka_brokers = env_or("SEMBANG_TEST_KAFKA", "127.0.0.1:9092");
    config.store.backend = StoreBackend::Scylla;
    config.store.scylla_nodes = vec![env_or("SEMBANG_TEST_CASSANDRA", "127.0.0.1:9042")];
    config.store.scylla_keyspace = run.clone();
    config.store.scylla_request_timeout_ms = 20_000;
    config.analytics.sink = EventSinkBackend::Clickhouse;
    config.analytics.clickhouse_url = env_or("SEMBANG_TEST_CLICKHOUSE", "http://127.0.0.1:8123");
    config.analytics.clickhouse_database = run.clone();
    config.whatsapp.provider = ProviderKind::CloudApi;
    config.whatsapp.api_base_url = fake.base_url();
    config.whatsapp.api_version = fake.api_version().into();
    config.whatsapp.phone_number_id = NUMBER.into();
    config.whatsapp.messages_per_second = args.rate;
    config.campaigns.quiet_hours_start = "00:00".into();
    config.campaigns.quiet_hours_end = "00:00".into();
    config.campaigns.messaging_limit_24h = 0;
    config.campaigns.pair_interval_ms = 0;
    config.campaigns.clock_tick_ms = 1_000;
    let secrets = Secrets {
        whatsapp_access_token: Some(Secret::new(fake.access_token())),
        whatsapp_app_secret: Some(Secret::new("bench")),
        ic_encryption_key: Some(Secret::new("11".repeat(32))),
        ic_hash_key: Some(Secret::new("22".repeat(32))),
        ..Secrets::default()
    };
    schemas::migrate_all(&config).await.expect("schemas");
    let backends = Backends::from_config(&config, &secrets)
        .await
        .expect("backends");
    let bus = backends.bus.clone();
    let names = TopicNames::new(&run);
    bus.ensure_topics(&TopicSpec::all(&names, config.bus.partitions, 1))
        .await
        .unwrap();
    let producer = bus.producer();
    let running = start(&config, &secrets, backends).await.unwrap();
    let base = format!("http://{}", running.http_addr);
    let http = reqwest::Client::new();
    let (index, _) = running.segments.clone().expect("the api role's index");
    println!(
        "campaign-bench: {} recipients, {} msg/s at the fake, {} inbound/s",
        args.recipients, args.rate, args.inbound_rate
    );

    // Customers opt in (START).
    let seeded = Instant::now();
    let records: Vec<Record> = (0..args.recipients)
        .map(|i| {
            inbound(
                &names,
                &format!("6013{i:07}"),
                &format!("wamid.SEED-{i}"),
                "START",
            )
        })
        .collect();
    for chunk in records.chunks(5_000) {
        producer.send_all(chunk.to_vec()).await.unwrap();
    }
    let opted_in = SegmentDefinition::from_json(&json!({"name": "opted in",
        "custom": {"field": "marketing_opt_in", "op": "eq", "value": true}}))
    .unwrap();
    loop {
        let now = Utc::now();
        let count = index.count(&opted_in, &EvalContext::new(now, malaysian_day(now)));
        if count >= args.recipients {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "seeded {} opted-in contacts in {:.1} s",
        args.recipients,
        seeded.elapsed().as_secs_f64()
    );
    // The STARTs' confirmations go out at the number's rate: let them finish.
    while (fake.sent().len() as u64) < args.recipients {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let before = reply_latencies(&*producer, &names, &fake, "1", args.inbound_rate, 10).await;

    let segment: serde_json::Value = http
        .post(format!("{base}/api/segments/"))
        .json(&json!({"name": "Opted in", "custom_filters": {"field": "marketing_opt_in", "op": "eq", "value": true}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let campaign: serde_json::Value = http
        .post(format!("{base}/api/campaigns/"))
        .json(&json!({"name": "Bench", "segments": [segment["id"]], "message_text": "Promo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = campaign["id"]
        .as_str()
        .unwrap_or_else(|| panic!("campaign not created: {campaign}"))
        .to_string();
    let launched = Instant::now();
    let answer = http
        .post(format!("{base}/api/campaigns/{id}/launch"))
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
    let planning = {
        let mut planned_at = None;
        let during = {
            let producer = producer.clone();
            let names = names.clone();
            let fake_ref = &fake;
            async move {
                // Replies during the campaign, after planning has begun.
                tokio::time::sleep(Duration::from_secs(2)).await;
                reply_latencies(&*producer, &names, fake_ref, "2", args.inbound_rate, 10).await
            }
        };
        let watch = async {
            loop {
                let metrics = http
                    .get(format!("{base}/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let planned = metric_sum(&metrics, "sembang_campaign_recipients_planned_total");
                if planned_at.is_none() && planned >= args.recipients as f64 {
                    planned_at = Some(launched.elapsed());
                }
                let promos = fake
                    .sent()
                    .iter()
                    .filter(|s| s.body["text"]["body"] == "Promo")
                    .count();
                if promos as u64 >= args.recipients {
                    return metrics;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let (during, metrics) = tokio::join!(during, watch);
        (planned_at, during, metrics)
    };
    let (planned_in, during, metrics) = planning;
    let sent = fake.sent();
    let promos: Vec<&FakeSent> = sent
        .iter()
        .filter(|s| s.body["text"]["body"] == "Promo")
        .collect();
    let unique: HashSet<&str> = promos.iter().map(|s| s.to.as_str()).collect();
    let first = promos.iter().map(|s| s.time).min().unwrap();
    let last = promos.iter().map(|s| s.time).max().unwrap();
    let span = (last - first).to_std().unwrap().as_secs_f64();
    let achieved = (promos.len() as f64 - 1.0) / span;
    let since_launch: Vec<FakeSent> = sent.iter().filter(|s| s.time >= first).cloned().collect();
    // Everything the number sent while the campaign was sending (replies take their part).
    let number_sends = since_launch.iter().filter(|s| s.time <= last).count();
    let number_rate = (number_sends as f64 - 1.0) / span;
    let (worst, over) = windows(&since_launch, args.rate);
    println!(
        "planning: {:.2} s for {} recipients",
        planned_in.unwrap_or_default().as_secs_f64(),
        args.recipients
    );
    println!(
        "pacing: {} campaign sends in {:.1} s = {:.1} msg/s = {:.1} % of {}; with replies the number sent {:.1} msg/s = {:.1} %; busiest second {} sends of the number; windows over the rate {}; 130429 answers {}",
        promos.len(),
        span,
        achieved,
        100.0 * achieved / f64::from(args.rate),
        args.rate,
        number_rate,
        100.0 * number_rate / f64::from(args.rate),
        worst,
        over,
        metric_sum(&metrics, "sembang_provider_errors_total{code=\"130429\"}") + 0.0
    );
    println!(
        "exactly once: {} sends to {} distinct recipients of {}",
        promos.len(),
        unique.len(),
        args.recipients
    );
    println!(
        "reply latency before: p50 {} ms p99 {} ms ({} replies); during: p50 {} ms p99 {} ms ({} replies)",
        percentile(&before, 0.5).as_millis(),
        percentile(&before, 0.99).as_millis(),
        before.len(),
        percentile(&during, 0.5).as_millis(),
        percentile(&during, 0.99).as_millis(),
        during.len()
    );
    running.shutdown().await;
    if !args.keep {
        let _ = schemas::drop_store(&config.store).await;
        let _ = schemas::drop_sink(&config.analytics).await;
    }
}
