//! Campaigns end to end on a running process, on the embedded default and on the real
//! stack: a campaign launched to a segment reaches exactly the customers who may be sent
//! it (the others recorded with their reason), personalised, with tracking links; delivery
//! reports (out of order), clicks and a purchase move its funnel; a second campaign meets
//! the frequency cap; pause, a STOP while paused, resume and cancel lose and double
//! nothing against the fake Cloud API.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use sembang::config::Config;
use sembang::domain::money::Money;
use sembang::domain::mykad::MyKad;
use sembang::domain::phone::PhoneNumber;
use sembang::pii::IcVault;
use sembang::storage::bus::Record;
use sembang::topics;
use sembang::topics::inbound::Business;
use sembang::topics::ocr::{IcLinkOutcome, MyKadReading, OcrOutcome, OcrResult, ReceiptReading};

use support::engine::*;

const AMIN: &str = "60129876543";
const MEI: &str = "60135550123";
const ALI: &str = "60145550199";
const LINKS: &str = "https://t.example.my";

fn now() -> i64 {
    Utc::now().timestamp()
}

/// Campaign settings for tests: no quiet hours, no messaging limit, no pair interval, a
/// fast clock, tracking links.
fn tune(config: &mut Config) {
    // The sandbox's number, as in config/embedded.toml (campaigns are sent from it).
    config.whatsapp.phone_number_id = "106540352242922".into();
    config.campaigns.quiet_hours_start = "00:00".into();
    config.campaigns.quiet_hours_end = "00:00".into();
    config.campaigns.messaging_limit_24h = 0;
    config.campaigns.pair_interval_ms = 0;
    config.campaigns.clock_tick_ms = 200;
    config.campaigns.stall_resume_secs = 60;
    config.campaigns.link_base_url = LINKS.into();
    config.campaigns.trigger_refresh_ms = 100;
}

async fn created(h: &Harness, path: &str, body: Value) -> Value {
    let (status, created) = h.api(Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Creates the campaign `body` describes and launches it; returns its id.
async fn launched(h: &Harness, body: Value) -> String {
    let id = created(h, "/api/campaigns/", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    action(h, &id, "launch").await;
    id
}

async fn campaign(h: &Harness, id: &str) -> Value {
    h.campaign_where(id, "the campaign", WAIT, |_| true).await
}

/// Polls the campaign until `check` holds.
async fn campaign_where(
    h: &Harness,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    h.campaign_where(id, what, WAIT, check).await
}

async fn segment_count_reaches(h: &Harness, id: &str, want: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, segment) = h
            .api(Method::GET, &format!("/api/segments/{id}/"), None)
            .await;
        if segment["count"] == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "segment count: {segment}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls an analytics report until `check` holds (events reach the reader in batches).
async fn analytics_where(
    h: &Harness,
    path: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, report) = h.api(Method::GET, path, None).await;
        assert_eq!(status, 200, "{report}");
        if check(&report) {
            return report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn action(h: &Harness, id: &str, action: &str) -> (u16, Value) {
    h.api(Method::POST, &format!("/api/campaigns/{id}/{action}"), None)
        .await
}

fn receipt(job: &str, to: &str, ringgit: i64) -> OcrResult {
    OcrResult {
        job_id: job.into(),
        contact: PhoneNumber::parse(to).unwrap(),
        business: Business {
            waba_id: "102290129340398".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "60321611234".into(),
        },
        image_sha256: Some("ab".repeat(32)),
        confidence: 91.0,
        outcome: OcrOutcome::Receipt(ReceiptReading {
            purchase_id: format!("p-{job}"),
            total: Money::from_ringgit(ringgit),
            purchased_on: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            merchant: Some("AEON Mid Valley".into()),
            receipt_no: Some(format!("R-{job}")),
            item_count: 1,
            parse_confidence: 0.97,
            needs_review: false,
            duplicate_of: None,
        }),
        completed_at: Utc::now(),
    }
}

async fn produce_ocr_result(h: &Harness, result: &OcrResult) {
    h.bus
        .producer()
        .send(Record::new(
            h.names.name(topics::OCR_RESULTS),
            result.contact.as_str().as_bytes().to_vec(),
            serde_json::to_vec(result).unwrap(),
        ))
        .await
        .unwrap();
}

/// The tracking token in a sent body.
fn token_in(body: &str) -> String {
    let at = body.find(&format!("{LINKS}/r/")).expect("a tracking link") + LINKS.len() + 3;
    body[at..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

async fn launch_to_a_segment(h: Harness) {
    let t = now();
    // Siti and Amin opt in (START, MULA); Mei writes without consent; Ali opts in, then out.
    h.post(&text(SITI, "wamid.CAMP-1", t - 60, "START")).await;
    h.post(&text(AMIN, "wamid.CAMP-2", t - 60, "mula")).await;
    h.post(&text(MEI, "wamid.CAMP-3", t - 60, "hello")).await;
    h.post(&text(ALI, "wamid.CAMP-4", t - 60, "START")).await;
    h.post(&text(ALI, "wamid.CAMP-5", t - 30, "STOP")).await;
    let everyone = created(
        &h,
        "/api/segments/",
        json!({"name": "Everyone", "custom_filters": {"field": "message_count", "op": "gte", "value": 1}}),
    )
    .await;
    let segment = everyone["id"].as_str().unwrap().to_string();
    let opted_in = created(
        &h,
        "/api/segments/",
        json!({"name": "Opted in", "custom_filters": {"field": "marketing_opt_in", "op": "eq", "value": true}}),
    )
    .await;
    segment_count_reaches(&h, &segment, 4).await;
    segment_count_reaches(&h, opted_in["id"].as_str().unwrap(), 2).await;

    // Bad campaigns are refused with the field at fault.
    let (status, bad) = h
        .api(
            Method::POST,
            "/api/campaigns/create/",
            Some(json!({"name": "x", "segments": [segment], "message_text": "Hi {{frist_name}}"})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("frist_name"),
        "{bad}"
    );
    let (status, bad) = h
        .api(
            Method::POST,
            "/api/campaigns/",
            Some(json!({"name": "x", "segments": ["no-such-segment"], "message_text": "Hi"})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");

    let campaign_body = json!({
        "name": "Raya sale",
        "objective": "Bring members back",
        "segments": [segment],
        "custom_recipients": ["0123456789", "0199999999"],
        "message_text": "Hi {{first_name|there}}! {{tier}} members get 20% off: https://shop.example.my/raya",
    });
    let draft = created(&h, "/api/campaigns/create/", campaign_body).await;
    let id = draft["id"].as_str().unwrap().to_string();
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["sent"], 0);
    assert_eq!(
        draft["custom_recipients"],
        json!(["6012****789", "6019****999"])
    );

    // The audience before launch: who would get it, and why the others would not.
    let (status, audience) = h
        .api(Method::GET, &format!("/api/campaigns/{id}/audience"), None)
        .await;
    assert_eq!(status, 200, "{audience}");
    assert_eq!(audience["audience"], 4, "{audience}");
    assert_eq!(audience["eligible"], 2, "{audience}");
    assert_eq!(
        audience["excluded"],
        json!({"no_consent": 1, "opted_out": 1}),
        "{audience}"
    );
    assert_eq!(audience["unknown_custom_recipients"], 1);

    let (status, launched) = action(&h, &id, "launch").await;
    assert_eq!(status, 200, "{launched}");
    assert_eq!(launched["status"], "running");
    let done = campaign_where(&h, &id, "two sends and three skips", |c| {
        c["sent"] == 2 && c["skipped"] == 3 && c["pending"] == 0
    })
    .await;
    assert_eq!(done["recipients"], 5);
    assert_eq!(
        done["skipped_by_reason"],
        json!({"no_consent": 1, "opted_out": 1, "unknown_contact": 1})
    );
    let (status, again) = action(&h, &id, "launch").await;
    assert_eq!(status, 409, "{again}");

    // Exactly the two, personalised, each with their own tracking link.
    let campaign_sends: Vec<Sent> = h
        .sent()
        .await
        .into_iter()
        .filter(|s| s.1.starts_with("Hi Pelanggan!"))
        .collect();
    let mut to: Vec<&str> = campaign_sends.iter().map(|s| s.0.as_str()).collect();
    to.sort();
    let mut expected = vec![SITI, AMIN];
    expected.sort();
    assert_eq!(to, expected);
    let mut tokens = Vec::new();
    for (_, body, _) in &campaign_sends {
        assert!(
            body.starts_with("Hi Pelanggan! Bronze members get 20% off: https://t.example.my/r/"),
            "{body}"
        );
        assert!(!body.contains("shop.example.my"), "{body}");
        tokens.push(token_in(body));
    }
    assert_ne!(tokens[0], tokens[1]);
    let (_, siti_body, siti_wamid) = campaign_sends.iter().find(|s| s.0 == SITI).unwrap().clone();

    // Delivery reports out of order: read before delivered; each counted once.
    let t = now();
    h.post(&support::engine::status(SITI, &siti_wamid, "read", t - 2))
        .await;
    h.post(&support::engine::status(
        SITI,
        &siti_wamid,
        "delivered",
        t - 3,
    ))
    .await;
    h.post(&support::engine::status(SITI, &siti_wamid, "read", t - 2))
        .await;
    campaign_where(&h, &id, "delivered and read", |c| {
        c["delivered"] == 1 && c["read"] == 1
    })
    .await;

    // A click: redirected at once, counted once however often it is clicked.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = token_in(&siti_body);
    for _ in 0..2 {
        let answer = no_redirects
            .get(format!("{}/r/{token}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 302);
        assert_eq!(
            answer.headers()["location"].to_str().unwrap(),
            "https://shop.example.my/raya"
        );
    }
    let mut forged = token.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for bad in [forged.as_str(), "AAAA", "x"] {
        let answer = no_redirects
            .get(format!("{}/r/{bad}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 404, "{bad}");
    }
    campaign_where(&h, &id, "clicked", |c| c["clicked"] == 1).await;

    // A purchase after delivery converts Siti, once, with its amount.
    produce_ocr_result(&h, &receipt("conv-1", SITI, 45)).await;
    produce_ocr_result(&h, &receipt("conv-2", SITI, 30)).await;
    let converted = campaign_where(&h, &id, "converted", |c| c["converted"] == 1).await;
    assert_eq!(converted["attributed_revenue"], "45.00");
    // Amin bought nothing: still sent, not converted.
    assert_eq!(converted["sent"], 2);

    // Analysts see both purchases in the revenue of their receipt date, and the
    // conversion in the campaign's funnel (from the same events, replays collapsed).
    let revenue = analytics_where(
        &h,
        "/api/analytics/revenue/?from=2026-12-01&to=2026-12-01",
        "both purchases",
        |r| r["purchases"] == 2,
    )
    .await;
    assert_eq!(revenue["revenue"], "75.00", "{revenue}");
    assert_eq!(revenue["days"][0]["buyers"], 1, "{revenue}");
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let funnel = analytics_where(
        &h,
        &format!("/api/analytics/campaigns/?from=2026-12-01&to={tomorrow}"),
        "the conversion",
        |f| {
            f["stages"].as_array().is_some_and(|stages| {
                stages.iter().any(|s| {
                    s["campaign_id"] == id.as_str()
                        && s["stage"] == "converted"
                        && s["contacts"] == 1
                })
            })
        },
    )
    .await;
    let sent: u64 = funnel["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["campaign_id"] == id.as_str() && s["stage"] == "sent")
        .map(|s| s["contacts"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 2, "{funnel}");
    // Her lifetime value: RM 75.00 over two purchases puts her alone in the under-100
    // band, from her latest profile (the earlier ones and any replays do not count).
    let value = analytics_where(&h, "/api/analytics/customers/", "Siti's spend", |v| {
        v["spending"].as_array().is_some_and(|bands| {
            bands
                .iter()
                .any(|b| b["bucket"] == "under 100" && b["total_spent"] == "75.00")
        })
    })
    .await;
    let band = value["spending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bucket"] == "under 100")
        .unwrap();
    assert_eq!(
        (
            band["customers"].clone(),
            band["average_spent"].clone(),
            band["average_purchases"].clone()
        ),
        (json!(1), json!("75.00"), json!(2.0)),
        "{value}"
    );
    let bronze = &value["by_tier"][0];
    assert_eq!(bronze["bucket"], "Bronze", "{value}");
    // Siti asks what is held on her (PDPA access): her profile, consent, purchases,
    // messages and this campaign, from the store.
    let (status, held) = h
        .api(Method::GET, &format!("/api/contacts/{SITI}/export"), None)
        .await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["phone_number"], SITI);
    assert_eq!(held["consent"]["marketing_opt_in"], true, "{held}");
    assert!(
        held["consent"]["source"]
            .as_str()
            .unwrap()
            .starts_with("keyword:"),
        "{held}"
    );
    let mut amounts: Vec<&str> = held["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount"].as_str().unwrap())
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, ["30.00", "45.00"], "{held}");
    let messages = held["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m["direction"] == "outbound" && m["campaign_id"] == id.as_str()),
        "{held}"
    );
    assert!(messages.iter().any(|m| m["direction"] == "inbound"));
    assert_eq!(held["messages_truncated"], false);
    let received: Vec<&Value> = held["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["campaign_id"] == id.as_str())
        .collect();
    assert_eq!(received.len(), 1, "{held}");
    assert_eq!(received[0]["steps"]["status"], "converted", "{held}");
    assert_eq!(received[0]["name"], "Raya sale");
    // The same history through the operator's routes.
    let (status, purchases) = h
        .api(
            Method::GET,
            &format!("/api/customers/{SITI}/purchases/"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{purchases}");
    assert_eq!(purchases.as_array().unwrap().len(), 2, "{purchases}");
    let (status, newest) = h
        .api(
            Method::GET,
            &format!("/api/contacts/{SITI}/messages/?limit=2"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{newest}");
    let newest = newest.as_array().unwrap();
    assert_eq!(newest.len(), 2);
    let at = |m: &Value| {
        chrono::DateTime::parse_from_rfc3339(m["created_at"].as_str().unwrap()).unwrap()
    };
    assert!(at(&newest[0]) >= at(&newest[1]), "newest first: {newest:?}");
    let (status, _) = h
        .api(
            Method::GET,
            &format!("/api/contacts/{SITI}/messages/?limit=0"),
            None,
        )
        .await;
    assert_eq!(status, 400);

    let (status, refused) = h
        .api(
            Method::GET,
            "/api/analytics/revenue/?from=2026-12-02&to=2026-12-01",
            None,
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["kind"], "invalid_range");
    // A malformed query string gets the API's JSON error with the reason, on every route.
    for path in [
        "/api/analytics/revenue/?from=2026-13-01".to_string(),
        "/api/analytics/ocr/?to=yesterday".to_string(),
        format!("/api/campaigns/{id}/recipients/?status=bogus"),
        format!("/api/contacts/{SITI}/messages/?limit=many"),
    ] {
        let (status, refused) = h.api(Method::GET, &path, None).await;
        assert_eq!(status, 400, "{path}: {refused}");
        assert_eq!(
            refused["error"]["kind"], "invalid_query",
            "{path}: {refused}"
        );
        assert!(!refused["error"]["message"].as_str().unwrap().is_empty());
    }

    // The recipients list: by status, masked, paged; and as CSV.
    let (status, skipped) = h
        .api(
            Method::GET,
            &format!("/api/campaigns/{id}/recipients/?status=skipped&limit=2"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{skipped}");
    let first = skipped["recipients"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    let cursor = skipped["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = h
        .api(
            Method::GET,
            &format!("/api/campaigns/{id}/recipients/?status=skipped&limit=2&cursor={cursor}"),
            None,
        )
        .await;
    let rest = rest["recipients"].as_array().unwrap().clone();
    assert_eq!(rest.len(), 1, "{rest:?}");
    let reasons: BTreeMap<String, String> = first
        .iter()
        .chain(&rest)
        .map(|r| {
            (
                r["phone_number"].as_str().unwrap().to_string(),
                r["skip_reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        BTreeMap::from([
            ("6013****123".to_string(), "no_consent".to_string()),
            ("6014****199".to_string(), "opted_out".to_string()),
            ("6019****999".to_string(), "unknown_contact".to_string()),
        ])
    );
    let (_, converted_list) = h
        .api(
            Method::GET,
            &format!("/api/campaigns/{id}/recipients/?status=converted"),
            None,
        )
        .await;
    assert_eq!(
        converted_list["recipients"][0]["phone_number"],
        "6012****789"
    );
    let (status, csv) = h
        .api(
            Method::GET,
            &format!("/api/campaigns/{id}/recipients.csv"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let csv = csv.as_str().unwrap();
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.contains("6012****789,converted,"), "{csv}");
    assert!(!csv.contains(SITI), "phones are masked: {csv}");

    // A test send reaches the given number and leaves the counts alone.
    let (status, test) = h
        .api(
            Method::POST,
            &format!("/api/campaigns/{id}/test"),
            Some(json!({"phone_numbers": ["0177777777"]})),
        )
        .await;
    assert_eq!(status, 202, "{test}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !h
        .sent()
        .await
        .iter()
        .any(|s| s.0 == "60177777777" && s.1.contains("https://shop.example.my/raya"))
    {
        assert!(tokio::time::Instant::now() < deadline, "no test send");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(campaign(&h, &id).await["recipients"], 5);

    // A second campaign with a cap of one per week: both already had one.
    let capped = created(
        &h,
        "/api/campaigns/",
        json!({"name": "Follow-up", "segments": [segment], "message_text": "Last day!",
               "frequency_cap": {"max": 1, "days": 7}}),
    )
    .await;
    let capped_id = capped["id"].as_str().unwrap().to_string();
    // The touches reach the index through the changelog: wait until the audience sees them.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, audience) = h
            .api(
                Method::GET,
                &format!("/api/campaigns/{capped_id}/audience"),
                None,
            )
            .await;
        if audience["excluded"]["frequency_cap"] == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{audience}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    action(&h, &capped_id, "launch").await;
    let capped = campaign_where(&h, &capped_id, "all skipped", |c| {
        c["skipped"] == 4 && c["pending"] == 0
    })
    .await;
    assert_eq!(capped["skipped_by_reason"]["frequency_cap"], 2, "{capped}");
    assert_eq!(capped["sent"], 0);
    // The clock completes both once nothing is pending.
    campaign_where(&h, &id, "completed", |c| c["status"] == "completed").await;

    // What operators see of it.
    let metrics = h.metrics().await;
    for name in [
        "sembang_campaign_recipients_planned_total{outcome=\"queued\"}",
        "sembang_campaign_recipients_planned_total{outcome=\"no_consent\"}",
        "sembang_campaign_plan_seconds_bucket",
        "sembang_campaign_sends_total{outcome=\"sent\"}",
        "sembang_campaign_send_queue",
        "sembang_campaign_clicks_total{outcome=\"redirected\"}",
        "sembang_campaign_clicks_total{outcome=\"invalid\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_to_a_segment_on_the_embedded_default() {
    launch_to_a_segment(Harness::embedded_tuned(false, |s| s, tune).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_to_a_segment_on_the_real_stack() {
    let Some(h) = Harness::real_stack_tuned(tune).await else {
        return;
    };
    launch_to_a_segment(h).await;
}

/// Customers who opted in, writing now.
async fn opted_in_customers(h: &Harness, count: usize) -> Vec<String> {
    let t = now();
    let phones: Vec<String> = (0..count).map(|i| format!("6011{:08}", 1000 + i)).collect();
    for (i, phone) in phones.iter().enumerate() {
        h.post(&text(phone, &format!("wamid.OPT-{i}"), t - 30, "START"))
            .await;
    }
    phones
}

async fn audience(h: &Harness, id: &str) -> Value {
    let (status, audience) = h
        .api(Method::GET, &format!("/api/campaigns/{id}/audience/"), None)
        .await;
    assert_eq!(status, 200, "{audience}");
    audience
}

/// The portfolio's messaging limit: past it, new customers wait (pending, not sent, not
/// lost); the audience preview shows the room left from the reach log, and a second
/// campaign to the same customers needs no room for those already reached.
async fn the_messaging_limit_holds_new_customers(h: Harness) {
    opted_in_customers(&h, 5).await;
    let segment = h.opted_in_segment(5).await;
    let body = json!({"name": "Limited", "segments": [segment], "message_text": "Promo"});
    let first = created(&h, "/api/campaigns/", body.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = audience(&h, &first).await;
    assert_eq!(
        (
            before["eligible"].as_u64(),
            before["messaging_limit_remaining"].as_u64(),
            before["eligible_already_reached"].as_u64()
        ),
        (Some(5), Some(3), Some(0)),
        "{before}"
    );
    // Two of five wait for room: about a day.
    assert!(
        before["estimated_send_seconds"].as_u64().unwrap() >= 86_000,
        "{before}"
    );
    action(&h, &first, "launch").await;
    let held = campaign_where(&h, &first, "three sent", |c| {
        c["sent"] == 3 && c["recipients"] == 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let still = campaign(&h, &first).await;
    assert_eq!(
        (
            still["sent"].as_u64(),
            still["pending"].as_u64(),
            still["status"].as_str()
        ),
        (Some(3), Some(2), Some("running")),
        "{held}"
    );
    let promos = h
        .sent()
        .await
        .into_iter()
        .filter(|s| s.1 == "Promo")
        .count();
    assert_eq!(promos, 3);
    assert!(h
        .metrics()
        .await
        .contains("sembang_messaging_limit_remaining 0"));
    // A second campaign to the same five: the three reached take no room, two wait.
    let second = created(
        &h,
        "/api/campaigns/",
        json!({"name": "Again", "segments": [segment], "message_text": "Again"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let after = audience(&h, &second).await;
    assert_eq!(
        (
            after["messaging_limit_remaining"].as_u64(),
            after["eligible_already_reached"].as_u64()
        ),
        (Some(0), Some(3)),
        "{after}"
    );
    h.stop().await;
}

fn limited(config: &mut Config) {
    tune(config);
    config.campaigns.messaging_limit_24h = 3;
    config.campaigns.stall_resume_secs = 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_messaging_limit_holds_new_customers_on_the_embedded_default() {
    the_messaging_limit_holds_new_customers(Harness::embedded_tuned(true, |s| s, limited).await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_messaging_limit_holds_new_customers_on_the_real_stack() {
    let Some(h) = Harness::real_stack_tuned(limited).await else {
        return;
    };
    the_messaging_limit_holds_new_customers(h).await;
}

/// Pause, a STOP while paused, resume: everyone is sent once, except the one who opted
/// out, who is recorded as such; a cancel settles the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_resume_and_stop_while_paused_lose_and_double_nothing() {
    let h = Harness::embedded_tuned(
        true,
        |s| s,
        |config| {
            tune(config);
            // Slow, so the campaign is still sending when it is paused.
            config.whatsapp.messages_per_second = 4;
        },
    )
    .await;
    let phones = opted_in_customers(&h, 12).await;
    let segment = created(
        &h,
        "/api/segments/",
        json!({"name": "Opted in", "custom_filters": {"field": "marketing_opt_in", "op": "eq", "value": true}}),
    )
    .await;
    segment_count_reaches(&h, segment["id"].as_str().unwrap(), 12).await;
    let body = json!({"name": "Slow", "segments": [segment["id"]], "message_text": "Weekend deal"});
    let id = created(&h, "/api/campaigns/", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let campaign_sent = |sent: &[Sent]| sent.iter().filter(|s| s.1 == "Weekend deal").count();
    action(&h, &id, "launch").await;
    campaign_where(&h, &id, "a few sent", |c| c["sent"].as_u64().unwrap() >= 2).await;
    let (status, paused) = action(&h, &id, "pause").await;
    assert_eq!((status, paused["status"].as_str()), (200, Some("paused")));
    // Within a second nothing more goes out.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let at_pause = campaign_sent(&h.sent().await);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        campaign_sent(&h.sent().await),
        at_pause,
        "sent while paused"
    );
    assert!(
        at_pause < 12,
        "the campaign finished before the pause: {at_pause}"
    );

    // One who was not sent yet opts out while the campaign is paused.
    let sent_to: Vec<String> = h
        .sent()
        .await
        .iter()
        .filter(|s| s.1 == "Weekend deal")
        .map(|s| s.0.clone())
        .collect();
    let quitter = phones
        .iter()
        .find(|p| !sent_to.contains(p))
        .unwrap()
        .clone();
    h.post(&text(&quitter, "wamid.QUIT", now(), "STOP")).await;
    h.contact_where(&quitter, "opted out", |c| {
        c["whatsapp_status"] == "unsubscribed"
    })
    .await;

    let (status, resumed) = action(&h, &id, "resume").await;
    assert_eq!((status, resumed["status"].as_str()), (200, Some("running")));
    let done = campaign_where(&h, &id, "everyone accounted for", |c| {
        c["pending"] == 0 && c["sent"].as_u64().unwrap() + c["skipped"].as_u64().unwrap() == 12
    })
    .await;
    assert_eq!(done["sent"], 11, "{done}");
    assert_eq!(done["skipped_by_reason"], json!({"opted_out": 1}), "{done}");
    // Each customer got the campaign once; the quitter never got it.
    let mut per_customer: HashMap<String, usize> = HashMap::new();
    for (to, body, _) in h.sent().await {
        if body == "Weekend deal" {
            *per_customer.entry(to).or_default() += 1;
        }
    }
    assert_eq!(per_customer.len(), 11, "{per_customer:?}");
    assert!(per_customer.values().all(|n| *n == 1), "{per_customer:?}");
    assert!(!per_customer.contains_key(&quitter));
    let (status, _) = action(&h, &id, "resume").await;
    assert_eq!(status, 409, "a running campaign cannot resume");
    h.stop().await;
}

/// A MyKad registration whose holder was born on this Malaysian day in 1992.
fn born_today(job: &str, to: &str) -> OcrResult {
    let today = sembang::domain::clock::malaysia_today();
    let number = format!("92{}-14-5678", today.format("%m%d"));
    let ic = MyKad::parse(&number, today).unwrap();
    let vault = IcVault::new([3; 32], [4; 32]).unwrap();
    let mut result = receipt(job, to, 1);
    result.outcome = OcrOutcome::MyKad(MyKadReading {
        ic: vault.protect(&ic),
        birth_date: ic.birth_date(),
        gender: ic.gender(),
        state: Some("Selangor".into()),
        name: Some("SITI NURHALIZA".into()),
        link: IcLinkOutcome::Linked,
    });
    result
}

/// A birthday campaign (from the IC's date of birth, at its local time) and a tier-upgrade
/// campaign (when a receipt moves a customer up) each send once to the customer their
/// trigger picks.
async fn triggered_campaigns(h: Harness) {
    let t = now();
    h.post(&text(SITI, "wamid.TRIG-1", t - 30, "START")).await;
    h.post(&text(AMIN, "wamid.TRIG-2", t - 30, "START")).await;
    for phone in [SITI, AMIN] {
        h.contact_where(phone, "opted in", |c| c["marketing_opt_in"] == true)
            .await;
    }
    produce_ocr_result(&h, &born_today("trig-ic", SITI)).await;
    let with_birthday = created(
        &h,
        "/api/segments/",
        json!({"name": "Known birthday", "custom_filters": {"field": "date_of_birth", "op": "exists"}}),
    )
    .await;
    segment_count_reaches(&h, with_birthday["id"].as_str().unwrap(), 1).await;

    let birthday = created(
        &h,
        "/api/campaigns/",
        json!({"name": "Birthday", "message_text": "Selamat hari jadi {{first_name|}}!",
               "trigger": {"kind": "birthday", "local_time": "00:00:00"}}),
    )
    .await;
    let birthday_id = birthday["id"].as_str().unwrap().to_string();
    let tier = created(
        &h,
        "/api/campaigns/",
        json!({"name": "Tier up", "message_text": "Tahniah, anda kini {{tier}}!",
               "trigger": {"kind": "tier_upgrade"}}),
    )
    .await;
    let tier_id = tier["id"].as_str().unwrap().to_string();
    let welcome = created(
        &h,
        "/api/campaigns/",
        json!({"name": "First purchase", "message_text": "Terima kasih atas pembelian pertama anda!",
               "trigger": {"kind": "first_purchase"}}),
    )
    .await;
    let welcome_id = welcome["id"].as_str().unwrap().to_string();
    for id in [&birthday_id, &tier_id, &welcome_id] {
        let (status, launched) = action(&h, id, "launch").await;
        assert_eq!(
            (status, launched["status"].as_str()),
            (200, Some("running")),
            "{launched}"
        );
    }
    let (status, _) = action(&h, &tier_id, "schedule").await;
    assert_eq!(status, 409, "a running campaign is not scheduled");

    campaign_where(&h, &birthday_id, "the birthday sent", |c| c["sent"] == 1).await;
    // Let the engines see the tier campaign before the receipt.
    tokio::time::sleep(Duration::from_millis(500)).await;
    produce_ocr_result(&h, &receipt("trig-r1", AMIN, 600)).await;
    campaign_where(&h, &tier_id, "the upgrade sent", |c| c["sent"] == 1).await;
    campaign_where(&h, &welcome_id, "the first purchase thanked", |c| {
        c["sent"] == 1
    })
    .await;
    // Another receipt that moves no tier sends nothing more.
    produce_ocr_result(&h, &receipt("trig-r2", AMIN, 100)).await;
    h.contact_where(AMIN, "the second receipt", |c| c["total_spent"] == "700.00")
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sent = h.sent().await;
    let birthdays: Vec<_> = sent
        .iter()
        .filter(|s| s.1.starts_with("Selamat hari jadi"))
        .collect();
    assert_eq!(birthdays.len(), 1, "{sent:?}");
    assert_eq!(birthdays[0].0, SITI);
    assert_eq!(birthdays[0].1, "Selamat hari jadi SITI!");
    let upgrades: Vec<_> = sent.iter().filter(|s| s.1.starts_with("Tahniah")).collect();
    assert_eq!(upgrades.len(), 1, "{sent:?}");
    assert_eq!(
        (upgrades[0].0.as_str(), upgrades[0].1.as_str()),
        (AMIN, "Tahniah, anda kini Silver!")
    );
    assert_eq!(campaign(&h, &tier_id).await["recipients"], 1);
    // The second receipt is not a first purchase: thanked once.
    let thanks: Vec<_> = sent
        .iter()
        .filter(|s| s.1.starts_with("Terima kasih atas"))
        .collect();
    assert_eq!(thanks.len(), 1, "{sent:?}");
    assert_eq!(thanks[0].0, AMIN);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn triggered_campaigns_on_the_embedded_default() {
    triggered_campaigns(Harness::embedded_tuned(false, |s| s, tune).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn triggered_campaigns_on_the_real_stack() {
    let Some(h) = Harness::real_stack_tuned(tune).await else {
        return;
    };
    triggered_campaigns(h).await;
}

/// Each error code of the Cloud API does what it means, against the fake: 131026 marks the
/// contact undeliverable, 131047 records outside-window, 131049 and an exhausted rate
/// limit are retryable, 131050 stops marketing; "retry the failed" sends only to the
/// retryable ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn error_codes_are_recorded_by_meaning_and_only_retryable_failures_are_retried() {
    use sembang::provider::fake_cloud_api::FakeFailure;
    let h = Harness::embedded_tuned(
        true,
        |s| s,
        |config| {
            tune(config);
            // A rate limit that never lifts uses up the send budget quickly.
            config.whatsapp.send_budget_ms = 1_500;
        },
    )
    .await;
    let Replies::Fake(fake) = &h.replies else {
        unreachable!("the fake Cloud API")
    };
    let phones = opted_in_customers(&h, 6).await;
    let code = |code| FakeFailure::Code {
        http_status: 400,
        code,
    };
    fake.fail_recipient(&phones[0], code(131_026));
    fake.fail_recipient(&phones[1], code(131_047));
    fake.fail_recipient(&phones[2], code(131_049));
    fake.fail_recipient(&phones[3], code(131_050));
    fake.fail_recipient(&phones[4], code(130_429));
    let segment = h.opted_in_segment(6).await;
    let id = launched(
        &h,
        json!({"name": "Codes", "segments": [segment], "message_text": "Promo"}),
    )
    .await;
    let done = campaign_where(&h, &id, "every outcome", |c| {
        c["pending"] == 0 && c["recipients"] == 6
    })
    .await;
    assert_eq!(done["sent"], 1, "{done}");
    assert_eq!(done["failed"], 3, "{done}");
    assert_eq!(
        done["skipped_by_reason"],
        json!({"no_consent": 1, "outside_window": 1}),
        "{done}"
    );
    let (_, failed) = h
        .api(
            Method::GET,
            &format!("/api/campaigns/{id}/recipients/?status=failed"),
            None,
        )
        .await;
    let by_code: BTreeMap<i64, bool> = failed["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["error_code"].as_i64().unwrap(),
                r["retryable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_code,
        BTreeMap::from([(130_429, true), (131_026, false), (131_049, true)])
    );
    // The contact changes the codes mean, through the contact's shard.
    h.contact_where(&phones[0], "undeliverable", |c| {
        c["whatsapp_status"] == "blocked"
    })
    .await;
    h.contact_where(&phones[3], "marketing stopped", |c| {
        c["marketing_opt_in"] == false
    })
    .await;

    // Retry the failed: only the two retryable ones are sent, once.
    fake.clear_recipient_failures();
    let (status, retried) = action(&h, &id, "retry-failed").await;
    assert_eq!(status, 200, "{retried}");
    let done = campaign_where(&h, &id, "retried", |c| c["sent"] == 3).await;
    assert_eq!(done["failed"], 1, "{done}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let promos: Vec<String> = h
        .sent()
        .await
        .into_iter()
        .filter(|s| s.1 == "Promo")
        .map(|s| s.0)
        .collect();
    let mut expected = vec![phones[2].clone(), phones[4].clone(), phones[5].clone()];
    expected.sort();
    let mut promos_sorted = promos.clone();
    promos_sorted.sort();
    assert_eq!(
        promos_sorted, expected,
        "undeliverable and stopped are not retried"
    );
    h.stop().await;
}

/// The campaign's first failed recipient, as the API lists it.
async fn first_failed(h: &Harness, id: &str) -> Option<Value> {
    let path = format!("/api/campaigns/{id}/recipients/?status=failed");
    let (_, page) = h.api(Method::GET, &path, None).await;
    page["recipients"]
        .as_array()
        .and_then(|r| r.first().cloned())
}

/// A send refused for Meta's marketing cap (131049) is tried again by itself after the
/// configured delay: the campaign stays running while the retry is scheduled, the
/// recipient shows when, a second refusal schedules the next one, and when the cap lifts
/// the message goes, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_marketing_cap_refusal_is_retried_by_itself_after_the_delay() {
    use sembang::provider::fake_cloud_api::FakeFailure;
    let h = Harness::embedded_tuned(
        true,
        |s| s,
        |config| {
            tune(config);
            config.campaigns.cap_retry_after_secs = 2;
            config.campaigns.cap_retries = 3;
        },
    )
    .await;
    let Replies::Fake(fake) = &h.replies else {
        unreachable!("the fake Cloud API")
    };
    let phones = opted_in_customers(&h, 2).await;
    fake.fail_recipient(
        &phones[0],
        FakeFailure::Code {
            http_status: 400,
            code: 131_049,
        },
    );
    let segment = h.opted_in_segment(2).await;
    let id = launched(
        &h,
        json!({"name": "Capped", "segments": [segment], "message_text": "Promo"}),
    )
    .await;
    // The first refusal: a retry is scheduled, the campaign is not done.
    let first = campaign_where(&h, &id, "the refusal", |c| {
        c["failed"] == 1 && c["sent"] == 1
    })
    .await;
    assert_eq!(
        (first["sent"].as_u64(), first["status"].as_str()),
        (Some(1), Some("running"))
    );
    let row = first_failed(&h, &id).await.expect("a failed recipient");
    assert_eq!(
        (
            row["error_code"].as_i64(),
            row["automatic_retries"].as_u64()
        ),
        (Some(131_049), Some(0))
    );
    let failed_at: chrono::DateTime<Utc> = row["failed_at"].as_str().unwrap().parse().unwrap();
    let retry_at: chrono::DateTime<Utc> = row["next_retry_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(retry_at - failed_at, chrono::Duration::seconds(2), "{row}");
    // The first automatic retry is refused too: the next one is scheduled.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let row = first_failed(&h, &id).await.expect("still failed");
        if row["automatic_retries"] == 1 {
            assert!(row["next_retry_at"].is_string(), "{row}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no automatic retry: {row}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(campaign(&h, &id).await["status"], "running");
    // The cap lifts: the second retry goes, and the campaign completes.
    fake.clear_recipient_failures();
    let done = campaign_where(&h, &id, "completed", |c| c["status"] == "completed").await;
    assert_eq!(
        (done["sent"].as_u64(), done["failed"].as_u64()),
        (Some(2), Some(0)),
        "{done}"
    );
    let promos: Vec<String> = h
        .sent()
        .await
        .into_iter()
        .filter(|s| s.1 == "Promo")
        .map(|s| s.0)
        .collect();
    assert_eq!(
        promos.iter().filter(|p| **p == phones[0]).count(),
        1,
        "{promos:?}"
    );
    assert_eq!(promos.len(), 2, "{promos:?}");
    h.stop().await;
}

/// A campaign whose sends are all refused for a reason retrying cannot fix (a template
/// that does not exist) pauses itself after `pause_after_errors` in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_pauses_itself_after_consecutive_refusals() {
    use sembang::provider::fake_cloud_api::FakeFailure;
    let h = Harness::embedded_tuned(
        true,
        |s| s,
        |config| {
            tune(config);
            config.campaigns.pause_after_errors = 3;
            config.whatsapp.messages_per_second = 5;
        },
    )
    .await;
    let Replies::Fake(fake) = &h.replies else {
        unreachable!("the fake Cloud API")
    };
    let phones = opted_in_customers(&h, 8).await;
    for phone in &phones {
        fake.fail_recipient(
            phone,
            FakeFailure::Code {
                http_status: 404,
                code: 132_001,
            },
        );
    }
    let segment = created(
        &h,
        "/api/segments/",
        json!({"name": "Opted in", "custom_filters": {"field": "marketing_opt_in", "op": "eq", "value": true}}),
    )
    .await;
    segment_count_reaches(&h, segment["id"].as_str().unwrap(), 8).await;
    let body = json!({"name": "Broken template", "segments": [segment["id"]],
                      "template": {"name": "no_such_template", "language": "ms"}});
    let id = created(&h, "/api/campaigns/", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    action(&h, &id, "launch").await;
    let paused = campaign_where(&h, &id, "paused", |c| c["status"] == "paused").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = campaign(&h, &id).await;
    assert_eq!(after["status"], "paused");
    assert_eq!(after["failed"], 3, "{paused}");
    assert_eq!(after["pending"], 5, "the rest wait for a resume: {after}");
    h.stop().await;
}

/// During quiet hours marketing sends wait (the recipients stay pending, nothing goes);
/// at the campaign's end those still waiting are recorded as expired and the campaign
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quiet_hours_hold_sends_and_the_end_expires_the_rest() {
    let malaysia_now = Utc::now().with_timezone(&sembang::domain::clock::malaysia());
    let h = Harness::embedded_tuned(
        true,
        |s| s,
        |config| {
            tune(config);
            // Quiet hours around now, whatever the time of day the test runs.
            let hhmm = |t: chrono::DateTime<chrono::FixedOffset>| t.format("%H:%M").to_string();
            config.campaigns.quiet_hours_start = hhmm(malaysia_now - chrono::Duration::hours(1));
            config.campaigns.quiet_hours_end = hhmm(malaysia_now + chrono::Duration::hours(1));
        },
    )
    .await;
    opted_in_customers(&h, 3).await;
    let segment = created(
        &h,
        "/api/segments/",
        json!({"name": "Opted in", "custom_filters": {"field": "marketing_opt_in", "op": "eq", "value": true}}),
    )
    .await;
    segment_count_reaches(&h, segment["id"].as_str().unwrap(), 3).await;
    let end = Utc::now() + chrono::Duration::seconds(4);
    let body = json!({"name": "Night owl", "segments": [segment["id"]], "message_text": "Late deal",
                      "scheduled_end": end});
    let id = created(&h, "/api/campaigns/", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    action(&h, &id, "launch").await;
    campaign_where(&h, &id, "planned", |c| c["recipients"] == 3).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let waiting = campaign(&h, &id).await;
    assert_eq!(
        (waiting["pending"].as_u64(), waiting["sent"].as_u64()),
        (Some(3), Some(0)),
        "{waiting}"
    );
    assert!(h
        .metrics()
        .await
        .contains("sembang_campaign_sends_total{outcome=\"quiet_hours\"}"));
    let ended = campaign_where(&h, &id, "ended", |c| c["status"] == "completed").await;
    assert_eq!(ended["skipped_by_reason"], json!({"expired": 3}), "{ended}");
    assert!(Utc::now() >= end);
    assert!(!h.sent().await.iter().any(|s| s.1 == "Late deal"));
    h.stop().await;
}

/// Cancelling a campaign mid-send: nothing more goes out, and every recipient not sent is
/// recorded as cancelled (none is left pending).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_campaign_sends_nothing_more_and_settles_everyone() {
    let h = Harness::embedded_tuned(
        true,
        |s| s,
        |config| {
            tune(config);
            config.whatsapp.messages_per_second = 3;
        },
    )
    .await;
    opted_in_customers(&h, 10).await;
    let segment = created(
        &h,
        "/api/segments/",
        json!({"name": "Opted in", "custom_filters": {"field": "marketing_opt_in", "op": "eq", "value": true}}),
    )
    .await;
    segment_count_reaches(&h, segment["id"].as_str().unwrap(), 10).await;
    let body =
        json!({"name": "Cancel me", "segments": [segment["id"]], "message_text": "Flash sale"});
    let id = created(&h, "/api/campaigns/", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    action(&h, &id, "launch").await;
    campaign_where(&h, &id, "one sent", |c| c["sent"].as_u64().unwrap() >= 1).await;
    let (status, cancelled) = action(&h, &id, "cancel").await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    let settled = campaign_where(&h, &id, "settled", |c| {
        c["pending"] == 0 && c["sent"].as_u64().unwrap() + c["skipped"].as_u64().unwrap() == 10
    })
    .await;
    assert!(
        settled["skipped_by_reason"]["cancelled"].as_u64().unwrap() >= 1,
        "{settled}"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let sent = h
        .sent()
        .await
        .iter()
        .filter(|s| s.1 == "Flash sale")
        .count() as u64;
    let after = campaign(&h, &id).await;
    assert_eq!(after["sent"].as_u64(), Some(sent), "{after}");
    assert!(
        sent < 10,
        "the cancel came too late to show anything: {sent}"
    );
    let (status, _) = action(&h, &id, "resume").await;
    assert_eq!(status, 409, "a cancelled campaign cannot resume");
    h.stop().await;
}
