//! `sembang-drill campaign`: a campaign to `--recipients` opted-in customers from two (or
//! `--processes`) engine processes on the real stack, sent through the fake Cloud API at
//! `--rate` msg/s; one engine is killed with SIGKILL once a third of the campaign has gone
//! and started again a few seconds later. Afterwards, from the fake's record and the
//! campaign's recipient ledger (through the API):
//! - duplicate sends: recipients the fake received the campaign message from more than
//!   once (must be 0);
//! - every recipient accounted for: sent, failed (the send killed mid-request is recorded as
//!   an unknown outcome), skipped with a reason; none left pending;
//! - recipients the fake received it from whom the ledger does not show as sent (the
//!   unknown outcomes, reported as such).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use sembang::provider::fake_cloud_api::FakeCloudApi;

use super::{message, Cluster, Kind, Load};

const PROMO: &str = "Promo drill";
/// How long the campaign may take after the kill before the drill gives up.
const SETTLE: Duration = Duration::from_secs(300);

/// The engine settings a campaign drill needs beyond the other drills'.
pub fn env(rate: u64) -> Vec<(String, String)> {
    [
        ("SEMBANG_WHATSAPP_MESSAGES_PER_SECOND", rate.to_string()),
        ("SEMBANG_ADMIN_REQUIRE_API_KEY", "false".into()),
        ("SEMBANG_CAMPAIGNS_QUIET_HOURS_START", "00:00".into()),
        ("SEMBANG_CAMPAIGNS_QUIET_HOURS_END", "00:00".into()),
        ("SEMBANG_CAMPAIGNS_MESSAGING_LIMIT_24H", "0".into()),
        ("SEMBANG_CAMPAIGNS_PAIR_INTERVAL_MS", "0".into()),
        ("SEMBANG_CAMPAIGNS_CLOCK_TICK_MS", "1000".into()),
        ("SEMBANG_CAMPAIGNS_STALL_RESUME_SECS", "15".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn api(
    http: &reqwest::Client,
    port: u16,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = http.request(method, format!("http://127.0.0.1:{port}{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.expect("the admin API answers");
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Runs the drill; returns the problems found (empty: passed).
pub async fn run(
    cluster: &mut Cluster,
    load: &Arc<Load>,
    fake: &FakeCloudApi,
    recipients: u64,
    run: &str,
) -> Vec<String> {
    let http = load.http.clone();
    let started = Instant::now();
    let at = || started.elapsed().as_secs_f64();
    // Customers opt in with START, posted to the webhooks as WhatsApp would.
    // Numbers of this run's own (a second run on the same stack finds fresh contacts):
    // 100,000 a run, at an offset from the process id.
    let offset = u64::from(std::process::id() % 99) * 100_000;
    let phones: Vec<String> = (0..recipients.min(100_000))
        .map(|n| format!("6016{:07}", offset + n))
        .collect();
    let mut posts = tokio::task::JoinSet::new();
    for (n, phone) in phones.iter().enumerate() {
        let body = message(
            phone,
            &format!("wamid.CAMPAIGN-{run}-{n}"),
            json!({ "type": "text", "text": { "body": "START" } }),
        );
        posts.spawn(load.clone().deliver(body, Kind::Inbound(phone.clone())));
    }
    while posts.join_next().await.is_some() {}
    let port = cluster.engines[0].port;
    let segment = api(
        &http,
        port,
        reqwest::Method::POST,
        "/api/segments/",
        Some(json!({"name": "Opted in", "custom_filters": {"field": "marketing_opt_in", "op": "eq", "value": true}})),
    )
    .await;
    let segment_id = segment["id"].as_str().expect("segment id").to_string();
    loop {
        let shown = api(
            &http,
            port,
            reqwest::Method::GET,
            &format!("/api/segments/{segment_id}/"),
            None,
        )
        .await;
        if shown["count"].as_u64() == Some(recipients) {
            break;
        }
        assert!(
            at() < 600.0,
            "the segment never reached {recipients}: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("{:>6.1} s: {recipients} customers opted in", at());
    let campaign = api(
        &http,
        port,
        reqwest::Method::POST,
        "/api/campaigns/",
        Some(json!({"name": "Drill", "segments": [segment_id], "message_text": PROMO})),
    )
    .await;
    let id = campaign["id"].as_str().expect("campaign id").to_string();
    api(
        &http,
        port,
        reqwest::Method::POST,
        &format!("/api/campaigns/{id}/launch"),
        None,
    )
    .await;
    let promos = |fake: &FakeCloudApi| {
        fake.sent()
            .into_iter()
            .filter(|s| s.body["text"]["body"] == PROMO)
            .count() as u64
    };
    while promos(fake) < recipients / 3 {
        assert!(at() < 900.0, "the campaign does not send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last engine: the survivor keeps answering the API.
    let victim = cluster.engines.len() - 1;
    cluster.kill(victim);
    println!(
        "{:>6.1} s: killed an engine with SIGKILL after {} sends",
        at(),
        promos(fake)
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.spawn().await;
    println!("{:>6.1} s: started it again", at());
    let killed_at = Instant::now();
    let done = loop {
        let shown = api(
            &http,
            port,
            reqwest::Method::GET,
            &format!("/api/campaigns/{id}/"),
            None,
        )
        .await;
        if shown["status"] == "completed" {
            break shown;
        }
        if killed_at.elapsed() > SETTLE {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let finished = at();
    let mut per_recipient: HashMap<String, u64> = HashMap::new();
    for sent in fake
        .sent()
        .into_iter()
        .filter(|s| s.body["text"]["body"] == PROMO)
    {
        *per_recipient.entry(sent.to).or_default() += 1;
    }
    let duplicates = per_recipient.values().filter(|n| **n > 1).count();
    let number = |key: &str| done[key].as_u64().unwrap_or(0);
    let (sent, failed, skipped, pending) = (
        number("sent"),
        number("failed"),
        number("skipped"),
        number("pending"),
    );
    let received = per_recipient.len() as u64;
    println!(
        "| campaign, kill -9 mid-send | {} processes | {recipients} recipients | {:.0} s | {} received at the fake, {duplicates} twice | ledger: {sent} sent, {failed} failed (unknown outcome), {skipped} skipped, {pending} pending | status {} |",
        cluster.engines.len(),
        finished,
        received,
        done["status"],
    );
    let mut problems = Vec::new();
    if duplicates > 0 {
        problems.push(format!("{duplicates} recipients sent twice"));
    }
    if pending > 0 || done["status"] != "completed" {
        problems.push(format!("{pending} pending, status {}", done["status"]));
    }
    if sent + failed + skipped != recipients {
        problems.push(format!(
            "{sent} sent + {failed} failed + {skipped} skipped is not {recipients}"
        ));
    }
    // Every recipient the fake took the message for is sent in the ledger or an unknown
    // outcome; none is sent in the ledger without the fake having it.
    if sent > received || received > sent + failed {
        problems.push(format!(
            "the fake received {received}, the ledger has {sent} sent and {failed} failed"
        ));
    }
    problems
}
