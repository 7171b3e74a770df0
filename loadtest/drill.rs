//! Reliability drills on the real stack (issue 16): a steady mixed load posted to the
//! engines' webhooks as WhatsApp would post it (signed; a refused post is posted again
//! later, as Meta retries), while a fault is injected:
//!
//! - `outage kafka|cassandra|clickhouse`: the service is stopped for `--fault-secs` (60)
//!   with `deploy/local/down` and started again with `deploy/local/up`;
//! - `kill`: one of `--processes` (3) engines, chosen at random, is killed with SIGKILL
//!   `--kills` (10) times at random points, and started again;
//! - `soak`: no fault, for `--minutes` (30), sampling each engine's RSS and lag.
//!
//! The load: texts from a growing set of customers (each one's first message is "help",
//! which the engine answers once), a receipt photo now and then from customers of their
//! own, and the delivery statuses (sent, delivered, read) of every answer the fake Cloud
//! API took. Afterwards every accepted message must have its effects exactly once: each
//! customer's message count in Cassandra, the distinct inbound, status and OCR events in
//! ClickHouse, and no answer sent twice. The report goes to stdout (BENCHMARKS.md); the
//! exit status is 1 when anything was lost or doubled.
//!
//! Usage: sembang-drill outage|kill|soak [SERVICE] [--rate R] [--processes N] [--kills K]
//!        [--fault-secs S] [--minutes M]
//! Needs the local stack (deploy/local/up) and `cargo build --release --bins`.

mod campaign_drill;
mod flags;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use sembang::domain::phone::PhoneNumber;
use sembang::ingress::sign;
use sembang::provider::fake_cloud_api::{FakeCloudApi, FakeConfig};
use sembang::storage::sink::{ClickHouseConfig, ClickHouseSink, EventReader, EventTable};
use sembang::storage::store::{Contacts, ScyllaConfig, ScyllaStore};

const APP_SECRET: &str = "drill-app-secret";
const PHONE_NUMBER_ID: &str = "106540352242922";
/// One message in this many comes from a new customer (who says "help" first).
const NEW_CUSTOMER_EVERY: u64 = 10;
/// One message in this many is a receipt photo from a customer of its own.
const PHOTO_EVERY: u64 = 500;
/// Posts in flight at once; beyond it the load waits (as Meta's sender would).
const MAX_IN_FLIGHT_POSTS: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Drill {
    Outage(&'static str),
    Kill,
    Soak,
    Campaign,
}

struct Args {
    drill: Drill,
    rate: u64,
    processes: usize,
    kills: usize,
    fault_secs: u64,
    minutes: u64,
    recipients: u64,
}

const USAGE: &str =
    "usage: sembang-drill outage kafka|cassandra|clickhouse | kill | soak | campaign \
[--rate R] [--processes N] [--kills K] [--fault-secs S] [--minutes M] [--recipients N]";

fn usage_error(problem: &str) -> ! {
    flags::usage_error(USAGE, problem)
}

fn number(flag: &str, value: Option<String>) -> u64 {
    flags::number(USAGE, flag, value)
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let drill = match it.next().as_deref() {
        Some("outage") => match it.next().as_deref() {
            Some("kafka") => Drill::Outage("kafka"),
            Some("cassandra") => Drill::Outage("cassandra"),
            Some("clickhouse") => Drill::Outage("clickhouse"),
            _ => usage_error("outage of kafka, cassandra or clickhouse"),
        },
        Some("kill") => Drill::Kill,
        Some("soak") => Drill::Soak,
        Some("campaign") => Drill::Campaign,
        Some("--help" | "-h") => {
            println!("{USAGE}");
            std::process::exit(0)
        }
        _ => usage_error("which drill?"),
    };
    let mut args = Args {
        drill,
        rate: 200,
        processes: match drill {
            Drill::Kill => 3,
            Drill::Campaign => 2,
            _ => 1,
        },
        kills: 10,
        fault_secs: 60,
        minutes: 30,
        recipients: 2_000,
    };
    if drill == Drill::Campaign {
        // The campaign's rate at the fake Cloud API.
        args.rate = 80;
    }
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--rate" => args.rate = number(&flag, it.next()).max(1),
            "--processes" => args.processes = number(&flag, it.next()).max(1) as usize,
            "--kills" => args.kills = number(&flag, it.next()) as usize,
            "--fault-secs" => args.fault_secs = number(&flag, it.next()),
            "--minutes" => args.minutes = number(&flag, it.next()).max(1),
            "--recipients" => args.recipients = number(&flag, it.next()).max(3),
            other => usage_error(&format!("unknown flag {other}")),
        }
    }
    args
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// The `sembang` binary beside this one.
fn sembang_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.with_file_name("sembang")
}

/// `deploy/local/<verb> <service>`.
fn stack(verb: &str, service: &str) {
    let script = format!("{}/deploy/local/{verb}", env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(&script)
        .arg(service)
        .stdout(Stdio::null())
        .status()
        .expect("deploy/local script");
    assert!(status.success(), "{script} {service}: {status:?}");
}

/// One engine process with its HTTP port.
struct Engine {
    child: Child,
    port: u16,
}

impl Engine {
    fn peak_rss_kb(&self) -> u64 {
        proc_status_kb(self.child.id(), "VmHWM:")
    }
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

struct Cluster {
    run: String,
    env: Vec<(String, String)>,
    engines: Vec<Engine>,
    /// Peak RSS of engines that were killed, read before the kill.
    peak_rss_kb: u64,
    http: reqwest::Client,
}

impl Cluster {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(sembang_binary());
        command.args(args).args(["--profile", "local"]);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    async fn spawn(&mut self) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Each engine's log, for when a drill fails.
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("{}-{port}.log", self.run)))
                .expect("engine log file");
        let child = self
            .command(&["run"])
            .env("SEMBANG_HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sembang run");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self
                .http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "engine on {port} not ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.engines.push(Engine { child, port });
    }

    fn kill_one(&mut self, rng: &mut SmallRng) {
        let i = rng.random_range(0..self.engines.len());
        self.kill(i);
    }

    /// SIGKILL to engine `i`, which leaves the cluster.
    fn kill(&mut self, i: usize) {
        let mut engine = self.engines.remove(i);
        self.peak_rss_kb = self.peak_rss_kb.max(engine.peak_rss_kb());
        Command::new("kill")
            .args(["-KILL", &engine.child.id().to_string()])
            .status()
            .unwrap();
        let _ = engine.child.wait();
    }

    fn ports(&self) -> Vec<u16> {
        self.engines.iter().map(|e| e.port).collect()
    }

    /// Engines that exited on their own (a drill must not need a restart).
    fn exited(&mut self) -> usize {
        self.engines
            .iter_mut()
            .map(|e| e.child.try_wait())
            .filter(|status| !matches!(status, Ok(None)))
            .count()
    }

    fn peak_rss_kb(&self) -> u64 {
        self.engines
            .iter()
            .map(Engine::peak_rss_kb)
            .max()
            .unwrap_or(0)
            .max(self.peak_rss_kb)
    }

    fn stop(&mut self) {
        for engine in &mut self.engines {
            let _ = Command::new("kill")
                .args(["-TERM", &engine.child.id().to_string()])
                .status();
            let _ = engine.child.wait();
        }
    }
}

/// What was posted and what the engines accepted (answered 200).
#[derive(Default)]
struct Ledger {
    /// Inbound messages accepted, by customer phone.
    inbound: HashMap<String, u64>,
    photos: u64,
    statuses: u64,
    /// Answers of the fake Cloud API whose statuses were posted.
    statused: usize,
}

#[derive(Default)]
struct Counters {
    posts: AtomicU64,
    refused: AtomicU64,
    unreachable: AtomicU64,
    other: AtomicU64,
    /// Posts never accepted: a failure of the drill.
    given_up: AtomicU64,
}

struct Load {
    http: reqwest::Client,
    ports: Mutex<Vec<u16>>,
    ledger: Mutex<Ledger>,
    counters: Counters,
    permits: tokio::sync::Semaphore,
}

enum Kind {
    Inbound(String),
    Photo(String),
    Status,
}

/// A post still refused after this long is given up (and the drill fails).
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

impl Load {
    /// Posts `body` until an engine accepts it, then records it. A refusal for what the
    /// post is (a 4xx other than 408 or 429) or [`GIVE_UP_AFTER`] of refusals gives up.
    async fn deliver(self: Arc<Self>, body: Vec<u8>, kind: Kind) {
        let _permit = self.permits.acquire().await.unwrap();
        let first_try = Instant::now();
        let signature = sign(APP_SECRET.as_bytes(), &body);
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0usize;
        loop {
            let ports = self.ports.lock().unwrap().clone();
            if !ports.is_empty() {
                let port = ports[attempt % ports.len()];
                self.counters.posts.fetch_add(1, Ordering::Relaxed);
                let answer = self
                    .http
                    .post(format!("http://127.0.0.1:{port}/webhook/whatsapp"))
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", &signature)
                    .body(body.clone())
                    .send()
                    .await;
                match answer.map(|r| r.status().as_u16()) {
                    Ok(200) => break,
                    Ok(503) => self.counters.refused.fetch_add(1, Ordering::Relaxed),
                    Ok(408 | 429) => self.counters.other.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => {
                        self.counters.other.fetch_add(1, Ordering::Relaxed);
                        self.counters.given_up.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(_) => self.counters.unreachable.fetch_add(1, Ordering::Relaxed),
                };
            }
            if first_try.elapsed() > GIVE_UP_AFTER {
                self.counters.given_up.fetch_add(1, Ordering::Relaxed);
                return;
            }
            attempt += 1;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        let mut ledger = self.ledger.lock().unwrap();
        match kind {
            Kind::Inbound(phone) => *ledger.inbound.entry(phone).or_default() += 1,
            Kind::Photo(phone) => {
                *ledger.inbound.entry(phone).or_default() += 1;
                ledger.photos += 1;
            }
            Kind::Status => ledger.statuses += 1,
        }
    }
}

fn envelope(value: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": value }] }]
    }))
    .unwrap()
}

fn metadata() -> Value {
    json!({ "display_phone_number": "60321611234", "phone_number_id": PHONE_NUMBER_ID })
}

fn message(from: &str, id: &str, kind: Value) -> Vec<u8> {
    let mut m = json!({ "from": from, "id": id,
                        "timestamp": chrono::Utc::now().timestamp().to_string() });
    for (k, v) in kind.as_object().unwrap() {
        m[k] = v.clone();
    }
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{ "profile": { "name": "Pelanggan" }, "wa_id": from }],
        "messages": [m]
    }))
}

fn status(wamid: &str, to: &str, status: &str) -> Vec<u8> {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "statuses": [{ "id": wamid, "status": status, "recipient_id": to,
                       "timestamp": chrono::Utc::now().timestamp().to_string() }]
    }))
}

/// Customers who said "help" among the first `generated` messages.
fn generated_customers(generated: u64) -> usize {
    (0..generated)
        .filter(|n| n.is_multiple_of(NEW_CUSTOMER_EVERY) && n % PHOTO_EVERY != PHOTO_EVERY - 1)
        .count()
}

fn customer(n: u64) -> String {
    format!("6013{:07}", n)
}

fn photo_customer(n: u64) -> String {
    format!("6014{:07}", n)
}

/// Message `n` of the load.
fn next_message(n: u64, run: &str, rng: &mut SmallRng) -> (Vec<u8>, Kind) {
    let id = format!("wamid.DRILL-{run}-{n}");
    if n % PHOTO_EVERY == PHOTO_EVERY - 1 {
        let from = photo_customer(n / PHOTO_EVERY);
        let body = message(
            &from,
            &id,
            json!({ "type": "image", "image": { "id": "7001", "mime_type": "image/jpeg" } }),
        );
        return (body, Kind::Photo(from));
    }
    let customers = n / NEW_CUSTOMER_EVERY + 1;
    let (from, text) = if n.is_multiple_of(NEW_CUSTOMER_EVERY) {
        (customer(n / NEW_CUSTOMER_EVERY), "help".to_string())
    } else {
        let who = rng.random_range(0..customers);
        (customer(who), format!("message {n}"))
    };
    let body = message(
        &from,
        &id,
        json!({ "type": "text", "text": { "body": text } }),
    );
    (body, Kind::Inbound(from))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    // Unique per run: a reused name would find the previous run's effects and count them.
    let run = format!(
        "drill_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp()
    );
    let kafka = env_or("SEMBANG_TEST_KAFKA", "127.0.0.1:9092");
    let cassandra = env_or("SEMBANG_TEST_CASSANDRA", "127.0.0.1:9042");
    let clickhouse = env_or("SEMBANG_TEST_CLICKHOUSE", "http://127.0.0.1:8123");
    let fake = Arc::new(
        FakeCloudApi::start(FakeConfig {
            // The campaign drill's fake enforces the number's rate, as Meta does.
            messages_per_second: (args.drill == Drill::Campaign).then_some(args.rate as u32),
            ..FakeConfig::default()
        })
        .await,
    );
    fake.add_media(
        "7001",
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ocr/receipt-0001.jpg"
        ))
        .expect("receipt fixture"),
        "image/jpeg",
    );
    let env: Vec<(String, String)> = [
        ("SEMBANG_BUS_KAFKA_BROKERS", kafka),
        ("SEMBANG_BUS_NAMESPACE", run.clone()),
        ("SEMBANG_STORE_SCYLLA_NODES", cassandra.clone()),
        ("SEMBANG_STORE_SCYLLA_KEYSPACE", run.clone()),
        ("SEMBANG_ANALYTICS_CLICKHOUSE_URL", clickhouse.clone()),
        ("SEMBANG_ANALYTICS_CLICKHOUSE_DATABASE", run.clone()),
        ("SEMBANG_WHATSAPP_PROVIDER", "cloud_api".into()),
        ("SEMBANG_WHATSAPP_API_BASE_URL", fake.base_url()),
        ("SEMBANG_WHATSAPP_API_VERSION", fake.api_version().into()),
        ("SEMBANG_WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID.into()),
        ("SEMBANG_WHATSAPP_MESSAGES_PER_SECOND", "1000".into()),
        ("SEMBANG_WHATSAPP_ACCESS_TOKEN", fake.access_token().into()),
        ("SEMBANG_WHATSAPP_APP_SECRET", APP_SECRET.into()),
        ("SEMBANG_IC_ENCRYPTION_KEY", "33".repeat(32)),
        ("SEMBANG_IC_HASH_KEY", "44".repeat(32)),
        ("SEMBANG_OCR_WORKERS", "1".into()),
        ("SEMBANG_MEDIA_CLOUD_API_HOSTS", "127.0.0.1".into()),
        ("SEMBANG_MEDIA_ALLOW_PRIVATE_ADDRESSES", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(if args.drill == Drill::Campaign {
        campaign_drill::env(args.rate)
    } else {
        Vec::new()
    })
    .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut cluster = Cluster {
        run: run.clone(),
        env,
        engines: Vec::new(),
        peak_rss_kb: 0,
        http: http.clone(),
    };
    let migrated = cluster.command(&["migrate"]).output().unwrap();
    assert!(
        migrated.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    for _ in 0..args.processes {
        cluster.spawn().await;
    }

    let load = Arc::new(Load {
        http,
        ports: Mutex::new(cluster.ports()),
        ledger: Mutex::new(Ledger::default()),
        counters: Counters::default(),
        permits: tokio::sync::Semaphore::new(MAX_IN_FLIGHT_POSTS),
    });
    if args.drill == Drill::Campaign {
        let problems = campaign_drill::run(&mut cluster, &load, &fake, args.recipients, &run).await;
        let exited = cluster.exited();
        cluster.stop();
        if !problems.is_empty() || exited > 0 {
            println!("FAILED: {problems:?}, {exited} engine(s) exited on their own");
            std::process::exit(1);
        }
        println!("passed: no duplicate, every recipient accounted for");
        return;
    }
    let duration = match args.drill {
        Drill::Outage(_) => Duration::from_secs(args.fault_secs + 60),
        Drill::Kill => Duration::from_secs(15 * args.kills as u64 + 15),
        Drill::Soak => Duration::from_secs(args.minutes * 60),
        Drill::Campaign => unreachable!("the campaign drill ran above"),
    };
    println!(
        "drill {:?}: {} engine process(es), {} messages/s for {} s (run {run})",
        args.drill,
        args.processes,
        args.rate,
        duration.as_secs()
    );
    let started = Instant::now();
    let generating = {
        let load = load.clone();
        let fake = fake.clone();
        let rate = args.rate;
        let run = run.clone();
        tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(7);
            let mut tasks = tokio::task::JoinSet::new();
            let mut n = 0u64;
            let tick = Duration::from_millis(50);
            let per_tick = (rate / 20).max(1);
            let mut next = tokio::time::Instant::now();
            while started.elapsed() < duration {
                for _ in 0..per_tick {
                    let (body, kind) = next_message(n, &run, &mut rng);
                    tasks.spawn(load.clone().deliver(body, kind));
                    n += 1;
                }
                // Statuses of the answers sent since the last tick: sent, delivered, read.
                let new: Vec<(String, String)> = {
                    let mut ledger = load.ledger.lock().unwrap();
                    let sent = fake.sent_since(ledger.statused);
                    ledger.statused += sent.len();
                    sent.into_iter().map(|s| (s.wamid, s.to)).collect()
                };
                for (wamid, to) in new {
                    for s in ["sent", "delivered", "read"] {
                        tasks.spawn(load.clone().deliver(status(&wamid, &to, s), Kind::Status));
                    }
                }
                while tasks.try_join_next().is_some() {}
                next += tick;
                tokio::time::sleep_until(next).await;
            }
            while tasks.join_next().await.is_some() {}
            n
        })
    };

    // The fault.
    let mut rng = SmallRng::seed_from_u64(11);
    let mut faults = 0usize;
    match args.drill {
        Drill::Outage(service) => {
            tokio::time::sleep(Duration::from_secs(20)).await;
            println!("{:>6.1} s: {service} down", started.elapsed().as_secs_f64());
            stack("down", service);
            tokio::time::sleep(Duration::from_secs(args.fault_secs)).await;
            println!("{:>6.1} s: {service} up", started.elapsed().as_secs_f64());
            stack("up", service);
            faults = 1;
        }
        Drill::Kill => {
            for _ in 0..args.kills {
                tokio::time::sleep(Duration::from_millis(rng.random_range(5_000..15_000))).await;
                cluster.kill_one(&mut rng);
                *load.ports.lock().unwrap() = cluster.ports();
                println!(
                    "{:>6.1} s: killed an engine with SIGKILL",
                    started.elapsed().as_secs_f64()
                );
                cluster.spawn().await;
                *load.ports.lock().unwrap() = cluster.ports();
                faults += 1;
            }
        }
        Drill::Soak => {
            let mut samples = Vec::new();
            while started.elapsed() < duration {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let rss: Vec<u64> = cluster
                    .engines
                    .iter()
                    .map(|e| proc_status_kb(e.child.id(), "VmRSS:") / 1024)
                    .collect();
                let lag = consumer_lag(&load.http, &cluster).await;
                println!(
                    "{:>6.1} min: RSS {rss:?} MiB, inbound lag {lag:?}",
                    started.elapsed().as_secs_f64() / 60.0
                );
                samples.push((rss, lag));
            }
        }
        Drill::Campaign => unreachable!("the campaign drill ran above"),
    }
    let generated = generating.await.unwrap();
    let load_secs = started.elapsed().as_secs_f64();
    println!("{load_secs:>6.1} s: load done ({generated} messages generated); checking effects");

    let lost_or_doubled = check(&load, &fake, &cassandra, &clickhouse, &run, generated).await;
    let exited = cluster.exited();
    let peak = cluster.peak_rss_kb();
    let c = &load.counters;
    let ledger = load.ledger.lock().unwrap();
    let accepted: u64 = ledger.inbound.values().sum::<u64>() + ledger.statuses;
    let given_up = c.given_up.load(Ordering::Relaxed);
    println!(
        "| {:?} | {} | {:.0} msg/s for {:.0} s | {} | {} accepted of {} posts ({} answered 503, {} unreachable, {} other, {} never accepted) | {} MiB | {} | {} |",
        args.drill,
        args.processes,
        generated as f64 / load_secs,
        load_secs,
        faults,
        accepted,
        c.posts.load(Ordering::Relaxed),
        c.refused.load(Ordering::Relaxed),
        c.unreachable.load(Ordering::Relaxed),
        c.other.load(Ordering::Relaxed),
        given_up,
        peak / 1024,
        if exited == 0 { "no restart" } else { "ENGINE EXITED" },
        if lost_or_doubled.is_empty() { "0 lost, 0 doubled".to_string() } else { lost_or_doubled.join("; ") },
    );
    drop(ledger);
    cluster.stop();
    if !lost_or_doubled.is_empty() || exited > 0 || given_up > 0 {
        std::process::exit(1);
    }
}

/// The inbound topic's lag, from the first engine's /metrics.
async fn consumer_lag(http: &reqwest::Client, cluster: &Cluster) -> Option<f64> {
    let port = cluster.engines.first()?.port;
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| l.starts_with("sembang_consumer_lag") && l.contains("engine"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(f64::max)
}

/// What was accepted, to compare with the effects.
struct Expected {
    inbound: BTreeMap<String, u64>,
    photos: u64,
    statuses: u64,
    answers: usize,
}

/// Waits (up to 5 minutes) for every accepted message's effects, then waits out the
/// producer's message timeout (a post answered 503 may still reach Kafka and be applied
/// late) and looks again: returns what is missing or doubled then.
async fn check(
    load: &Load,
    fake: &FakeCloudApi,
    cassandra: &str,
    clickhouse: &str,
    run: &str,
    generated: u64,
) -> Vec<String> {
    let store = ScyllaStore::connect(ScyllaConfig {
        nodes: vec![cassandra.to_string()],
        keyspace: run.to_string(),
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(5),
    })
    .await
    .expect("cassandra");
    let sink = ClickHouseSink::new(ClickHouseConfig::new(clickhouse, run)).expect("clickhouse");
    let expected = {
        let ledger = load.ledger.lock().unwrap();
        Expected {
            inbound: ledger.inbound.clone().into_iter().collect(),
            photos: ledger.photos,
            statuses: ledger.statuses,
            // Each customer's "help" and each photo is answered once, and nothing else.
            answers: generated_customers(generated) + ledger.photos as usize,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let problems = problems_now(&expected, &store, &sink, fake).await;
        if problems.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            println!(
                "not settled after 5 min: {} problems, first: {:?}",
                problems.len(),
                &problems[..problems.len().min(5)]
            );
            return problems.into_iter().take(5).collect();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(40)).await;
    let problems = problems_now(&expected, &store, &sink, fake).await;
    problems.into_iter().take(5).collect()
}

/// Every difference between what was accepted and its effects now.
async fn problems_now(
    expected: &Expected,
    store: &ScyllaStore,
    sink: &ClickHouseSink,
    fake: &FakeCloudApi,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (phone, want) in &expected.inbound {
        let number = PhoneNumber::parse(phone).unwrap();
        let got = store
            .load_contact(&number)
            .await
            .ok()
            .flatten()
            .map_or(0, |c| c.interactions.message_count);
        if got != *want {
            let doubled = if got > *want { " (doubled)" } else { "" };
            problems.push(format!("{phone} counted {got} of {want}{doubled}"));
        }
    }
    // Distinct events: a doubled one collapses here (as it does for analysts); doubling
    // shows in the message counts above and the answers below.
    for (table, want) in [
        (
            EventTable::InboundMessages,
            expected.inbound.values().sum::<u64>(),
        ),
        (EventTable::MessageStatuses, expected.statuses),
        (EventTable::OcrResults, expected.photos),
    ] {
        let got = sink.count_events(table).await.unwrap_or(0);
        if got != want {
            problems.push(format!("{} has {got} of {want}", table.name()));
        }
    }
    let mut answers: HashMap<String, u32> = HashMap::new();
    for s in fake.sent() {
        *answers.entry(s.to.clone()).or_default() += 1;
    }
    let doubled = answers.values().filter(|&&n| n > 1).count();
    if doubled > 0 {
        problems.push(format!("{doubled} customers answered twice"));
    }
    if answers.len() != expected.answers {
        problems.push(format!(
            "{} of {} customers answered",
            answers.len(),
            expected.answers
        ));
    }
    problems
}
