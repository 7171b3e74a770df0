//! `sembang-loadtest`: end-to-end throughput and latency of the stream engine on the real
//! stack (or the embedded default), next to the raw rdkafka consume rate of the same topic,
//! in one run.
//!
//! 1. Creates a fresh namespace (topics), keyspace and ClickHouse database, and migrates.
//! 2. Starts the engine in this process (roles engine, sender, analytics).
//! 3. Produces N generated inbound text events to wa.inbound (what the webhook ingress
//!    produces), keyed by C contacts, remembering when each offset was acknowledged.
//! 4. Watches the engine group's committed offsets: the engine commits an offset only once
//!    that record's effects (contact, message row, events) are stored, so the commit time
//!    of an offset bounds its end-to-end latency from above (commits happen every 200 ms).
//! 5. Waits for ClickHouse to hold every inbound event. Then consumes the same topic with
//!    a plain rdkafka consumer in a fresh group, for the raw rate, and once more storing
//!    each record in Cassandra, for the durable baseline (baseline.rs).
//!
//! 6. Drops what it created (keyspace, ClickHouse database, topics) unless `--keep`: a
//!    node that collects the tables of every run spends its heap on their memtables and
//!    metrics, and later runs measure that.
//!
//! Usage: sembang-loadtest [--messages N] [--contacts C] [--profile local|embedded]
//!                         [--rate R (messages/s; default 0 = as fast as possible)] [--keep]
//! Addresses come from SEMBANG_TEST_KAFKA, SEMBANG_TEST_CASSANDRA, SEMBANG_TEST_CLICKHOUSE
//! (as scripts/test exports them), defaulting to the deploy/local ports.

mod baseline;

mod flags;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use sembang::app::{clickhouse_config, schemas};
use sembang::app::{start, Backends};
use sembang::config::{BusBackend, Config, EventSinkBackend, Secrets, StoreBackend};
use sembang::ingress::parse_webhook;
use sembang::storage::bus::{Record, TopicSpec};
use sembang::storage::sink::{ClickHouseSink, EventReader, EventTable};
use sembang::topics::inbound::InboundEvent;
use sembang::topics::{self, TopicNames};

/// The same allocator as the `sembang` binary, so the engine is measured as it runs
/// (`--no-default-features` for heap profilers).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Args {
    messages: u64,
    contacts: u64,
    profile: String,
    /// Messages per second to produce at; 0 produces as fast as the bus takes them (a
    /// backlog, for throughput). Below capacity, latencies are those of a steady load.
    rate: u64,
    /// Keep the keyspace, database and topics of the run.
    keep: bool,
    /// `store.embedded_cache_mb` and `engine.max_resident_mb`, to compare settings.
    store_cache_mb: Option<u32>,
    resident_mb: Option<u32>,
}

const USAGE: &str = "usage: sembang-loadtest [--messages N] [--contacts C] \
[--profile local|embedded] [--rate R] [--keep] [--store-cache-mb M] [--resident-mb M]";

fn usage_error(problem: &str) -> ! {
    flags::usage_error(USAGE, problem)
}

fn number(flag: &str, value: Option<String>) -> u64 {
    flags::number(USAGE, flag, value)
}

fn args() -> Args {
    let mut args = Args {
        messages: 100_000,
        contacts: 10_000,
        profile: "local".into(),
        rate: 0,
        keep: false,
        store_cache_mb: None,
        resident_mb: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--messages" => args.messages = number(&flag, it.next()),
            "--contacts" => args.contacts = number(&flag, it.next()).max(1),
            "--rate" => args.rate = number(&flag, it.next()),
            "--profile" => match it.next().as_deref() {
                Some(profile @ ("local" | "embedded")) => args.profile = profile.to_string(),
                _ => usage_error("--profile is local or embedded"),
            },
            "--keep" => args.keep = true,
            "--store-cache-mb" => args.store_cache_mb = Some(number(&flag, it.next()) as u32),
            "--resident-mb" => args.resident_mb = Some(number(&flag, it.next()) as u32),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => usage_error(&format!("unknown flag {other}")),
        }
    }
    args
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

fn event(i: u64, contact: u64) -> InboundEvent {
    let from = format!("6012{:07}", contact);
    let envelope = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "60321611234", "phone_number_id": "106540352242922" },
            "contacts": [{ "profile": { "name": format!("Customer {contact}") }, "wa_id": from }],
            "messages": [{ "from": from, "id": format!("wamid.LOAD-{i}"),
                           "timestamp": (1_732_510_800 + i as i64).to_string(),
                           "type": "text", "text": { "body": format!("order status {i}") } }]
        }}]}]
    });
    parse_webhook(&serde_json::to_vec(&envelope).unwrap())
        .unwrap()
        .events
        .remove(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let run = format!("load_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().display().to_string(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".into();
    config.bus.namespace = run.clone();
    if let Some(mb) = args.store_cache_mb {
        config.store.embedded_cache_mb = mb;
    }
    if let Some(mb) = args.resident_mb {
        config.engine.max_resident_mb = mb;
    }
    config
        .engine
        .roles
        .retain(|r| *r != sembang::config::Role::Ocr);
    let kafka = env_or("SEMBANG_TEST_KAFKA", "127.0.0.1:9092");
    if args.profile == "local" {
        config.bus.backend = BusBackend::Kafka;
        config.bus.kafka_brokers = kafka.clone();
        config.store.backend = StoreBackend::Scylla;
        config.store.scylla_nodes = vec![env_or("SEMBANG_TEST_CASSANDRA", "127.0.0.1:9042")];
        config.store.scylla_keyspace = run.clone();
        config.store.scylla_request_timeout_ms = 20_000;
        config.analytics.sink = EventSinkBackend::Clickhouse;
        config.analytics.clickhouse_url =
            env_or("SEMBANG_TEST_CLICKHOUSE", "http://127.0.0.1:8123");
        config.analytics.clickhouse_database = run.clone();
    }
    schemas::migrate_all(&config).await.expect("schemas");
    // IC keys: photos and ClickHouse's phone pseudonyms are keyed from the vault.
    let secrets = Secrets {
        ic_encryption_key: Some(sembang::config::Secret::new("11".repeat(32))),
        ic_hash_key: Some(sembang::config::Secret::new("22".repeat(32))),
        ..Secrets::default()
    };
    let backends = Backends::from_config(&config, &secrets)
        .await
        .expect("backends");
    let bus = backends.bus.clone();
    let names = TopicNames::new(&run);
    let inbound = names.name(topics::INBOUND);
    bus.ensure_topics(&TopicSpec::all(&names, config.bus.partitions, 1))
        .await
        .unwrap();

    // Generate first, so generation is not measured.
    let records: Vec<Record> = (0..args.messages)
        .map(|i| {
            let event = event(i, 1_000_000 + i % args.contacts);
            Record::new(
                inbound.clone(),
                event.partition_key().as_bytes().to_vec(),
                serde_json::to_vec(&event).unwrap(),
            )
        })
        .collect();

    let running = start(&config, &secrets, backends).await.unwrap();
    println!(
        "loadtest: {} messages from {} contacts, profile {}, {} partitions, rate {}, engine roles {:?}",
        args.messages,
        args.contacts,
        args.profile,
        config.bus.partitions,
        if args.rate == 0 { "unlimited".to_string() } else { format!("{}/s", args.rate) },
        running.roles
    );

    // Produce (in a task, paced when asked), remembering when each (partition, offset) was
    // acknowledged; meanwhile watch the engine's commits and when each offset was first seen
    // committed.
    let producer = bus.producer();
    let started = Instant::now();
    let acked: Arc<std::sync::Mutex<HashMap<(u32, u64), Instant>>> =
        Arc::new(std::sync::Mutex::new(HashMap::with_capacity(records.len())));
    let producing = {
        let acked = acked.clone();
        let rate = args.rate;
        tokio::spawn(async move {
            let chunk_size = if rate == 0 {
                5_000
            } else {
                (rate / 20).max(1) as usize
            };
            for (n, chunk) in records.chunks(chunk_size).enumerate() {
                if rate > 0 {
                    // Chunk n is due at n * chunk_size / rate seconds.
                    let due =
                        started + Duration::from_secs_f64((n * chunk_size) as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let deliveries = producer.send_all(chunk.to_vec()).await.unwrap();
                let now = Instant::now();
                let mut acked = acked.lock().unwrap();
                for d in deliveries {
                    acked.insert((d.partition, d.offset), now);
                }
            }
            started.elapsed()
        })
    };

    let group = names.group("engine");
    let mut committed_seen: HashMap<(u32, u64), Instant> = HashMap::new();
    let mut committed_so_far: Vec<u64> = vec![0; config.bus.partitions as usize];
    let deadline = Instant::now() + Duration::from_secs(900);
    let finished = loop {
        let committed = bus.committed_offsets(&group, &inbound).await.unwrap();
        let now = Instant::now();
        for (p, c) in committed.iter().enumerate() {
            let c = c.unwrap_or(0);
            for offset in committed_so_far[p]..c {
                committed_seen.insert((p as u32, offset), now);
            }
            committed_so_far[p] = committed_so_far[p].max(c);
        }
        if committed_seen.len() as u64 >= args.messages && producing.is_finished() {
            break now;
        }
        assert!(
            now < deadline,
            "the engine did not finish in time ({} done)",
            committed_seen.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let produced_in = producing.await.unwrap();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let mut latencies: Vec<Duration> = committed_seen
        .iter()
        .filter_map(|(key, seen)| acked.get(key).map(|at| seen.saturating_duration_since(*at)))
        .collect();
    let total = finished - started;
    latencies.sort();
    let engine_rate = args.messages as f64 / total.as_secs_f64();
    println!(
        "engine end to end: {:.0} messages/s ({} in {:.2} s; produce took {:.2} s), latency p50 {} ms, p99 {} ms, max {} ms",
        engine_rate,
        args.messages,
        total.as_secs_f64(),
        produced_in.as_secs_f64(),
        percentile(&latencies, 0.50).as_millis(),
        percentile(&latencies, 0.99).as_millis(),
        latencies.last().copied().unwrap_or_default().as_millis()
    );

    // What the shards hold now (their gauges, summed over shards).
    if let Ok(metrics) = reqwest::get(format!("http://{}/metrics", running.admin_addr)).await {
        let text = metrics.text().await.unwrap_or_default();
        let sum = |name: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let contacts = sum("sembang_shard_resident_contacts");
        let bytes = sum("sembang_shard_resident_bytes");
        println!(
            "resident: {contacts:.0} contacts, estimated {:.1} MiB ({:.0} bytes each)",
            bytes / f64::from(1 << 20),
            if contacts > 0.0 {
                bytes / contacts
            } else {
                0.0
            }
        );
    }

    // Analytics catch-up.
    let clickhouse: Option<ClickHouseSink> = (args.profile == "local")
        .then(|| ClickHouseSink::new(clickhouse_config(&config.analytics)).unwrap());
    if let Some(reader) = &clickhouse {
        loop {
            let n = reader
                .count_events(EventTable::InboundMessages)
                .await
                .unwrap();
            if n >= args.messages {
                println!(
                    "analytics: all {} inbound events in ClickHouse {:.2} s after the first produce",
                    n,
                    started.elapsed().as_secs_f64()
                );
                break;
            }
            assert!(Instant::now() < deadline, "ClickHouse stuck at {n}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    running.shutdown().await;

    // Raw consume of the same topic with rdkafka alone.
    if args.profile == "local" {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka)
            .set("group.id", format!("{run}.raw"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[&inbound]).unwrap();
        let mut seen = 0u64;
        let mut first: Option<Instant> = None;
        while seen < args.messages {
            if let Some(result) = consumer.poll(Duration::from_millis(100)) {
                result.unwrap();
                first.get_or_insert_with(Instant::now);
                seen += 1;
            }
        }
        let raw = first.map(|f| f.elapsed()).unwrap_or_default();
        let raw_rate = args.messages as f64 / raw.as_secs_f64();
        println!(
            "raw rdkafka consume: {:.0} messages/s ({} in {:.2} s, from the first record)",
            raw_rate,
            args.messages,
            raw.as_secs_f64()
        );
        println!("ratio engine / raw consume: {:.2}", engine_rate / raw_rate);

        let target = baseline::Target {
            kafka: &kafka,
            group: format!("{run}.baseline"),
            topic: &inbound,
            cassandra: &config.store.scylla_nodes[0],
            keyspace: &config.store.scylla_keyspace,
        };
        let took = baseline::consume_and_store(target, args.messages).await;
        let baseline_rate = args.messages as f64 / took.as_secs_f64();
        println!(
            "durable baseline (consume, one Cassandra insert per record): {:.0} messages/s ({} in {:.2} s)",
            baseline_rate,
            args.messages,
            took.as_secs_f64()
        );
        println!(
            "ratio engine / durable baseline: {:.2}",
            engine_rate / baseline_rate
        );
    }

    if !args.keep {
        drop_run(&run, &config, &names).await;
    }
}

/// Drops the run's keyspace, ClickHouse database and topics (best effort: a failure is
/// reported, not fatal, as the figures are already printed).
async fn drop_run(run: &str, config: &Config, names: &TopicNames) {
    if let Err(e) = schemas::drop_store(&config.store).await {
        eprintln!("loadtest: could not drop keyspace {run}: {e}");
    }
    if let Err(e) = schemas::drop_sink(&config.analytics).await {
        eprintln!("loadtest: could not drop ClickHouse database {run}: {e}");
    }
    if config.bus.backend == BusBackend::Kafka {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &config.bus.kafka_brokers)
            .create()
            .expect("Kafka admin client");
        let topics: Vec<String> = TopicSpec::all(names, 1, 1)
            .into_iter()
            .map(|t| t.name)
            .collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(e) = admin.delete_topics(&topics, &AdminOptions::new()).await {
            eprintln!("loadtest: could not delete topics of {run}: {e}");
        }
    }
}
