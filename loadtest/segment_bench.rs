//! `sembang-segment-bench --contacts N [--clickhouse URL]`: the segment index at scale.
//!
//! Generates N contacts with retail-like distributions (ages 18–80, states by population,
//! tiers from a long-tailed spend, 0–40 purchases over two years, an outlet, tags, a VIP
//! flag), feeds them to a [`SegmentIndex`] of 8 partitions the way a rebuild does (each as
//! an encoded crm.contacts record, decoded and applied), and reports:
//! - rebuild rate (records decoded and applied per second) and memory (resident set growth
//!   and the index's own estimate) per contact;
//! - count latency p50/p99 for five definitions, from one seed filter to five criteria plus
//!   a custom tree with a windowed purchase count;
//! - with `--clickhouse`: the same contacts in a ClickHouse table and the same counts by the
//!   SQL an analyst would write, in the same run (counts must agree);
//! - live updates: contacts changed per second while counts are served.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use sembang::domain::contact::{Contact, InteractionStats, WhatsappStatus};
use sembang::domain::money::Money;
use sembang::domain::person::{Gender, MaritalStatus};
use sembang::domain::phone::PhoneNumber;
use sembang::domain::segment::{EvalContext, SegmentDefinition};
use sembang::domain::spending::PurchaseEvent;
use sembang::domain::tier::Tier;
use sembang::segments::live::PartitionSlot;
use sembang::segments::SegmentIndex;
use sembang::storage::bus::partitioner::partition_for;
use sembang::topics::contacts::ContactState;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PARTITIONS: u32 = 8;
/// States with rough population weights (percent).
const STATES: [(&str, u32); 16] = [
    ("Selangor", 22),
    ("Johor", 12),
    ("Sabah", 10),
    ("Perak", 8),
    ("Sarawak", 8),
    ("WP Kuala Lumpur", 6),
    ("Kedah", 6),
    ("Kelantan", 6),
    ("Pulau Pinang", 5),
    ("Pahang", 5),
    ("Negeri Sembilan", 4),
    ("Terengganu", 4),
    ("Melaka", 3),
    ("Perlis", 1),
    ("WP Putrajaya", 1),
    ("WP Labuan", 1),
];
const OUTLETS: [&str; 12] = [
    "KLCC",
    "Mid Valley",
    "Sunway",
    "IOI City",
    "Pavilion",
    "1 Utama",
    "Gurney",
    "Paradigm",
    "Aeon Tebrau",
    "Imago",
    "Vivacity",
    "Queensbay",
];
const TAGS: [&str; 6] = ["kids", "halal", "pets", "beauty", "sports", "gadgets"];

struct Args {
    contacts: usize,
    clickhouse: Option<String>,
    repeats: usize,
}

fn args() -> Args {
    let mut args = Args {
        contacts: 1_000_000,
        clickhouse: None,
        repeats: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--contacts" => args.contacts = value().parse().expect("--contacts N"),
            "--clickhouse" => args.clickhouse = Some(value()),
            "--repeats" => args.repeats = value().parse().expect("--repeats N"),
            other => {
                panic!("unknown flag {other}; use --contacts N [--clickhouse URL] [--repeats N]")
            }
        }
    }
    args
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 6).unwrap()
}

fn ctx() -> EvalContext {
    let now: DateTime<Utc> = "2026-12-06T04:00:00Z".parse().unwrap();
    EvalContext::new(now, today())
}

/// A roughly normal sample (sum of uniforms).
fn normal(rng: &mut SmallRng, mean: f64, sd: f64) -> f64 {
    let sum: f64 = (0..6).map(|_| rng.random::<f64>()).sum();
    mean + (sum - 3.0) / 0.707 * sd
}

fn contact(i: usize, rng: &mut SmallRng) -> Contact {
    let phone = PhoneNumber::from_e164_digits(&format!("6011{:08}", i)).unwrap();
    let created = Utc::now() - chrono::Duration::days(rng.random_range(0..900));
    let mut c = Contact::new(phone, created);
    let registered = rng.random_bool(0.8);
    if registered {
        let age = normal(rng, 38.0, 12.0).clamp(18.0, 80.0) as u64;
        c.date_of_birth = today()
            .checked_sub_days(Days::new(age * 365 + rng.random_range(0..365)))
            .filter(|d| *d <= today());
        c.gender = Some(if rng.random_bool(0.52) {
            Gender::Female
        } else {
            Gender::Male
        });
        let mut pick = rng.random_range(0..100);
        let state = STATES
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or("Selangor", |(s, _)| s);
        c.state = Some(state.to_string());
        c.name = Some(format!("Pelanggan {i}"));
    }
    if rng.random_bool(0.6) {
        c.marital_status = Some(match rng.random_range(0..10) {
            0..=3 => MaritalStatus::Single,
            4..=7 => MaritalStatus::Married,
            8 => MaritalStatus::Divorced,
            _ => MaritalStatus::Widowed,
        });
    }
    // Purchases: most buy a few times, a long tail buys often and big.
    let purchases =
        (normal(rng, 0.0, 1.0).abs() * 6.0) as usize + usize::from(rng.random_bool(0.05)) * 30;
    for p in 0..purchases {
        let ringgit = (normal(rng, 3.5, 1.0).exp()).clamp(1.0, 20_000.0);
        c.purchases.apply(&PurchaseEvent {
            purchase_id: format!("p{p}"),
            amount: Money::from_sen((ringgit * 100.0) as i64),
            purchased_on: today() - Days::new(rng.random_range(0..730)),
        });
    }
    let spent = c.spending().total_spent.sen();
    c.customer_tier = match spent {
        s if s >= 500_000 => Tier::Platinum,
        s if s >= 200_000 => Tier::Gold,
        s if s >= 50_000 => Tier::Silver,
        _ => Tier::Bronze,
    };
    c.whatsapp_status = match rng.random_range(0..100) {
        0..=2 => WhatsappStatus::Blocked,
        3..=7 => WhatsappStatus::Unsubscribed,
        _ => WhatsappStatus::Active,
    };
    c.marketing_opt_in = c.whatsapp_status == WhatsappStatus::Active && rng.random_bool(0.6);
    let outbound = rng.random_range(0..20);
    c.interactions = InteractionStats {
        message_count: rng.random_range(1..60),
        last_interaction: Some(Utc::now() - chrono::Duration::hours(rng.random_range(0..20_000))),
        outbound_count: outbound,
        replied_count: rng.random_range(0..=outbound),
        last_outbound: None,
    };
    c.attributes.insert(
        "outlet".into(),
        json!(OUTLETS[rng.random_range(0..OUTLETS.len())]),
    );
    let tags: Vec<&str> = TAGS
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.2))
        .collect();
    if !tags.is_empty() {
        c.attributes.insert("tags".into(), json!(tags));
    }
    if rng.random_bool(0.1) {
        c.attributes.insert("vip".into(), json!(true));
    }
    c
}

fn definitions() -> Vec<(&'static str, Value)> {
    vec![
        (
            "1 seed filter (tier)",
            json!({"name": "gold", "tier": "Gold"}),
        ),
        (
            "2 criteria (age, gender)",
            json!({"name": "w", "min_age": 25, "max_age": 45, "gender": "female"}),
        ),
        (
            "3 criteria (spend, state, tier)",
            json!({"name": "s", "min_spending": "500", "state": ["Selangor", "WP Kuala Lumpur"], "tier": ["Gold", "Platinum"]}),
        ),
        (
            "5 criteria",
            json!({"name": "five", "min_spending": "200", "min_age": 25, "max_age": 45, "gender": "female", "state": ["Selangor", "WP Kuala Lumpur"], "tier": ["Gold", "Platinum"]}),
        ),
        (
            "5 criteria + custom tree, windowed count",
            json!({"name": "complex", "min_spending": "200", "min_age": 25, "max_age": 45, "gender": "female", "state": ["Selangor", "WP Kuala Lumpur"], "tier": ["Gold", "Platinum"], "custom": {"and": [
                {"field": "purchase_count_in_last_days", "days": 90, "op": "gte", "value": 2},
                {"field": "attributes.tags", "op": "contains", "value": "kids"},
                {"not": {"field": "whatsapp_status", "op": "in", "value": ["blocked", "unsubscribed"]}}
            ]}}),
        ),
    ]
}

/// The SQL an analyst would write for the same definitions (age bounds as birth dates).
fn sql(table: &str) -> Vec<String> {
    let years_back = |y: u32| today().checked_sub_months(Months::new(12 * y)).unwrap();
    let born = format!(
        // Birth dates as ISO text: ClickHouse 18.16's Date starts in 1970.
        "dob > '{}' AND dob <= '{}'",
        years_back(46),
        years_back(25)
    );
    let five = format!(
        "total_spent_sen >= 20000 AND {born} AND gender = 'female' AND state IN ('Selangor', 'WP Kuala Lumpur') AND tier IN ('Gold', 'Platinum')"
    );
    let window = today() - Days::new(89);
    vec![
        format!("SELECT count() FROM {table} WHERE tier = 'Gold'"),
        format!("SELECT count() FROM {table} WHERE {born} AND gender = 'female'"),
        format!("SELECT count() FROM {table} WHERE total_spent_sen >= 50000 AND state IN ('Selangor', 'WP Kuala Lumpur') AND tier IN ('Gold', 'Platinum')"),
        format!("SELECT count() FROM {table} WHERE {five}"),
        format!("SELECT count() FROM {table} WHERE {five} AND arrayCount(d -> d >= toDate('{window}'), purchase_dates) >= 2 AND has(tags, 'kids') AND whatsapp_status NOT IN ('blocked', 'unsubscribed')"),
    ]
}

fn tsv_row(c: &Contact) -> String {
    let text = |s: Option<String>| s.unwrap_or_default().replace(['\t', '\n', '\\'], " ");
    let tags = c
        .attributes
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let dates = c
        .purchases
        .entries()
        .map(|(_, e)| format!("'{}'", e.purchased_on))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t[{}]\t[{}]\n",
        c.phone_number.as_str(),
        text(c.gender.map(|g| g.to_string())),
        text(c.marital_status.map(|m| m.to_string())),
        text(c.state.clone()),
        c.customer_tier,
        c.date_of_birth.map_or(String::new(), |d| d.to_string()),
        c.spending().total_spent.sen(),
        c.whatsapp_status.as_str(),
        tags,
        dates,
    )
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn timed(repeats: usize, mut f: impl FnMut() -> u64) -> (u64, Duration, Duration) {
    let mut result = 0;
    for _ in 0..3 {
        result = f();
    }
    let mut times: Vec<Duration> = (0..repeats)
        .map(|_| {
            let started = Instant::now();
            result = f();
            started.elapsed()
        })
        .collect();
    times.sort();
    (result, percentile(&times, 0.5), percentile(&times, 0.99))
}

struct ClickHouse {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
}

impl ClickHouse {
    fn run(&self, query: &str, body: Option<String>) -> String {
        let request = match body {
            Some(body) => self
                .http
                .post(&self.url)
                .query(&[("query", query)])
                .body(body),
            None => self.http.post(&self.url).body(query.to_string()),
        };
        self.runtime.block_on(async {
            let response = request.send().await.expect("ClickHouse answers");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "{query}: {status} {text}");
            text
        })
    }
}

fn main() {
    let args = args();
    let n = args.contacts;
    println!(
        "segment benchmark: {n} contacts, {PARTITIONS} partitions, {} repeats per count",
        args.repeats
    );

    let clickhouse = args.clickhouse.as_ref().map(|url| {
        let ch = ClickHouse {
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            // A fresh connection per request: ClickHouse closes idle keep-alive connections
            // after 3 s, less than generating a batch can take.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(600))
                .build()
                .unwrap(),
            url: url.clone(),
        };
        ch.run("CREATE DATABASE IF NOT EXISTS segbench", None);
        ch.run("DROP TABLE IF EXISTS segbench.contacts", None);
        ch.run(
            "CREATE TABLE segbench.contacts (phone String, gender String, marital String, state String, tier String, dob String, total_spent_sen Int64, whatsapp_status String, tags Array(String), purchase_dates Array(Date)) ENGINE = MergeTree ORDER BY phone",
            None,
        );
        ch
    });

    let index = SegmentIndex::default();
    let slots: Vec<(u32, Arc<PartitionSlot>)> = index.assign(&(0..PARTITIONS).collect::<Vec<_>>());
    let rss_before = rss_bytes();
    let mut rng = SmallRng::seed_from_u64(14);
    let mut applying = Duration::ZERO;
    let mut decoding = Duration::ZERO;
    let mut tsv = String::new();
    let mut inserting = Duration::ZERO;
    for i in 0..n {
        let c = contact(i, &mut rng);
        let record = ContactState::from(&c).encode();
        if let Some(ch) = &clickhouse {
            tsv.push_str(&tsv_row(&c));
            if tsv.len() > 32 << 20 || i + 1 == n {
                let started = Instant::now();
                ch.run(
                    "INSERT INTO segbench.contacts FORMAT TabSeparated",
                    Some(std::mem::take(&mut tsv)),
                );
                inserting += started.elapsed();
            }
        }
        // What a rebuild does per changelog record: decode, then apply to its partition.
        let started = Instant::now();
        let state = ContactState::decode(&record).unwrap().unwrap();
        let decoded = Instant::now();
        let partition = partition_for(state.phone_number.as_str().as_bytes(), PARTITIONS);
        let slot = &slots[partition as usize].1;
        slot.index
            .write()
            .unwrap()
            .apply(&state.phone_number.clone(), Some(&state));
        decoding += decoded - started;
        applying += decoded.elapsed();
        if (i + 1) % 1_000_000 == 0 {
            eprintln!("  {} contacts indexed", i + 1);
        }
    }
    let rss_after = rss_bytes();
    let estimate: usize = slots
        .iter()
        .map(|(_, s)| s.index.read().unwrap().bytes())
        .sum();
    let rebuild = decoding + applying;
    println!(
        "rebuild: {n} records decoded and applied in {:.2} s = {:.0} contacts/s on one thread (JSON decode alone {:.0}/s, index apply alone {:.0}/s)",
        rebuild.as_secs_f64(),
        n as f64 / rebuild.as_secs_f64(),
        n as f64 / decoding.as_secs_f64(),
        n as f64 / applying.as_secs_f64(),
    );
    println!(
        "memory: resident set grew {:.0} MB = {:.0} bytes/contact; the index's own estimate {:.0} bytes/contact",
        (rss_after.saturating_sub(rss_before)) as f64 / 1e6,
        rss_after.saturating_sub(rss_before) as f64 / n as f64,
        estimate as f64 / n as f64,
    );
    if clickhouse.is_some() {
        println!(
            "clickhouse: {n} rows inserted in {:.1} s",
            inserting.as_secs_f64()
        );
    }

    let ctx = ctx();
    let queries = sql("segbench.contacts");
    println!("| definition | members | index p50 | index p99 | ClickHouse SQL p50 | ClickHouse p99 | SQL ÷ index (p50) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, (label, json)) in definitions().into_iter().enumerate() {
        let definition = SegmentDefinition::from_json(&json).unwrap();
        let (count, p50, p99) = timed(args.repeats, || index.count(&definition, &ctx));
        let sql_part = match &clickhouse {
            Some(ch) => {
                let (sql_count, sql_p50, sql_p99) = timed(args.repeats.min(10), || {
                    ch.run(&queries[i], None).trim().parse().unwrap()
                });
                let differ = if sql_count == count {
                    String::new()
                } else {
                    format!(" (SQL counts {sql_count})")
                };
                format!(
                    "{:.1} ms{differ} | {:.1} ms | {:.0}×",
                    sql_p50.as_secs_f64() * 1e3,
                    sql_p99.as_secs_f64() * 1e3,
                    sql_p50.as_secs_f64() / p50.as_secs_f64()
                )
            }
            None => "– | – | –".into(),
        };
        println!(
            "| {label} | {count} | {:.2} ms | {:.2} ms | {sql_part} |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }

    // Live updates: one thread changes contacts (a new purchase each) as fast as the index
    // takes them while this one serves the 5-criteria count.
    let five = SegmentDefinition::from_json(&definitions()[3].1).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, updates, slots) = (stop.clone(), updates.clone(), slots.clone());
        std::thread::spawn(move || {
            let mut rng = SmallRng::seed_from_u64(99);
            let mut version = 1;
            while !stop.load(Ordering::Relaxed) {
                let i = rng.random_range(0..n);
                let mut c = contact(i, &mut SmallRng::seed_from_u64(i as u64));
                c.updated_at = Utc::now() + chrono::Duration::seconds(version);
                version += 1;
                c.purchases.apply(&PurchaseEvent {
                    purchase_id: format!("live{version}"),
                    amount: Money::from_sen(rng.random_range(100..50_000)),
                    purchased_on: today(),
                });
                let state = ContactState::from(&c);
                let partition = partition_for(state.phone_number.as_str().as_bytes(), PARTITIONS);
                slots[partition as usize]
                    .1
                    .index
                    .write()
                    .unwrap()
                    .apply(&state.phone_number.clone(), Some(&state));
                updates.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let (_, p50, p99) = timed(args.repeats, || index.count(&five, &ctx));
    let window = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    println!(
        "live: {:.0} contact changes/s absorbed (generate + apply, one thread) while serving the 5-criteria count at p50 {:.2} ms, p99 {:.2} ms",
        updates.load(Ordering::Relaxed) as f64 / window.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}
