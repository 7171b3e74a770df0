//! The segments API on a running process, on the embedded default and on the real stack:
//! definitions round trip in both spellings, counts and member pages come from the live
//! index, bad definitions get the path to the bad node, roles hold, and a count moves
//! within a second of the message, receipt or profile change behind it.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use support::engine::*;

const AMIN: &str = "60129876543";
const MEI: &str = "60135550123";
/// How soon after the change that moves it a count must show it.
const LIVE: Duration = Duration::from_secs(1);

async fn call(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = h.http.request(method, format!("{}{path}", h.base));
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

async fn get(h: &Harness, path: &str) -> (u16, Value) {
    call(h, reqwest::Method::GET, path, None).await
}

/// Polls a segment's count until `want`; returns how long that took.
async fn count_reaches(h: &Harness, id: &str, want: u64) -> Duration {
    let started = Instant::now();
    loop {
        let (status, segment) = get(h, &format!("/api/segments/{id}/")).await;
        assert_eq!(status, 200, "{segment}");
        if segment["count"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT,
            "count stuck at {} (want {want})",
            segment["count"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create(h: &Harness, body: Value) -> Value {
    let (status, segment) = call(
        h,
        reqwest::Method::POST,
        "/api/segments/create/",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{segment}");
    segment
}

/// Three customers write in; a segment of reachable customers counts them, pages through
/// them, breaks them down, exports them; then a STOP moves the count within a second.
async fn round_trip(h: &Harness) {
    for (i, phone) in [SITI, AMIN, MEI].into_iter().enumerate() {
        h.post(&text(
            phone,
            &format!("wamid.SEG-{i}"),
            T0 + i as i64,
            "hello",
        ))
        .await;
    }
    // Both spellings of the seed filters, and a custom tree.
    let reachable = create(
        h,
        json!({"name": "Reachable", "custom_filters": {"field": "whatsapp_status", "op": "eq", "value": "active"}}),
    )
    .await;
    let id = reachable["id"].as_str().unwrap().to_string();
    assert_eq!(reachable["name"], "Reachable");
    assert_eq!(
        reachable["definition"]["custom"]["field"],
        "whatsapp_status"
    );
    count_reaches(h, &id, 3).await;

    // The list shows it with its live count.
    let (status, list) = get(h, "/api/segments/").await;
    assert_eq!(status, 200);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["count"], 3);

    // Member pages: masked phones, cursor paging without repeats, every member once.
    let (_, first) = get(h, &format!("/api/segments/{id}/?limit=2")).await;
    assert_eq!(first["members"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = get(h, &format!("/api/segments/{id}/?limit=2&cursor={cursor}")).await;
    assert_eq!(second["members"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let mut phones: Vec<String> = first["members"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["members"].as_array().unwrap())
        .map(|m| m["phone_number"].as_str().unwrap().to_string())
        .collect();
    phones.sort();
    assert_eq!(phones, ["6012****543", "6012****789", "6013****123"]);
    assert_eq!(first["members"][0]["customer_tier"], "Bronze");
    assert_eq!(first["members"][0]["total_spent"], "0.00");
    let (status, bad) = get(h, &format!("/api/segments/{id}/?cursor=nonsense")).await;
    assert_eq!(
        (status, bad["error"]["kind"].clone()),
        (400, json!("invalid_cursor"))
    );

    // Breakdown and CSV export.
    let (status, breakdown) = get(h, &format!("/api/segments/{id}/breakdown")).await;
    assert_eq!(status, 200);
    assert_eq!(breakdown["total"], 3);
    assert_eq!(breakdown["tier"]["Bronze"], 3);
    assert_eq!(breakdown["age_band"]["unknown"], 3);
    let (status, csv) = get(h, &format!("/api/segments/{id}/export.csv")).await;
    assert_eq!(status, 200);
    let csv = csv.as_str().unwrap();
    assert!(
        csv.starts_with("phone_number,name,customer_tier,total_spent\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(!csv.contains(SITI), "phones are masked in exports: {csv}");

    // A STOP takes Siti out within a second of the webhook's answer.
    h.post(&text(SITI, "wamid.SEG-STOP", T0 + 10, "STOP")).await;
    let took = count_reaches(h, &id, 2).await;
    println!("STOP reached the count in {took:?}");
    assert!(took <= LIVE, "the count moved {took:?} after the STOP");

    // PATCH in the seed's spelling narrows it; PUT replaces it; preview does not save.
    let (status, patched) = call(
        h,
        reqwest::Method::PATCH,
        &format!("/api/segments/{id}/"),
        Some(json!({"customer_tier_filter": ["Gold"]})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["definition"]["tier"], "Gold");
    assert_eq!(patched["count"], 0);
    let (status, replaced) = call(
        h,
        reqwest::Method::PUT,
        &format!("/api/segments/{id}/"),
        Some(json!({"name": "Everyone", "tier": ["Bronze", "Silver"]})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        (replaced["name"].clone(), replaced["count"].clone()),
        (json!("Everyone"), json!(3))
    );
    let (status, preview) = call(
        h,
        reqwest::Method::POST,
        "/api/segments/preview",
        Some(json!({"custom": {"field": "phone_number", "op": "contains", "value": "6013"}})),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["count"], 1);
    assert_eq!(preview["sample"][0]["phone_number"], "6013****123");

    // Bad definitions: the path to the bad node, in the spelling the caller used.
    for (body, message) in [
        (
            json!({"name": "x", "gender_filter": ["male", "mael"]}),
            "gender_filter[1]: ",
        ),
        (
            json!({"name": "x", "custom": {"and": [{"field": "agee", "op": "eq", "value": 1}]}}),
            "custom.and[0].field: unknown field \"agee\"",
        ),
        (
            json!({"name": "x", "gender": "male", "gender_filter": "female"}),
            "gender_filter: given twice",
        ),
        (
            json!({"name": "x", "min_spending": "500", "max_spending": "100"}),
            "min_spending: min_spending 500.00 is greater than max_spending 100.00",
        ),
    ] {
        for path in ["/api/segments/preview", "/api/segments/"] {
            let (status, error) = call(h, reqwest::Method::POST, path, Some(body.clone())).await;
            assert_eq!(status, 400, "{path} {body}: {error}");
            assert_eq!(error["error"]["kind"], "invalid_segment");
            let text = error["error"]["message"].as_str().unwrap();
            assert!(text.starts_with(message), "{path} {body}: {text}");
        }
    }

    // A profile edit through the API reaches the count within a second, through the shard.
    let married = create(
        h,
        json!({"name": "Married", "marital_status_filter": ["married"]}),
    )
    .await;
    let married_id = married["id"].as_str().unwrap().to_string();
    count_reaches(h, &married_id, 0).await;
    let (status, accepted) = call(
        h,
        reqwest::Method::PATCH,
        &format!("/api/contacts/{AMIN}/"),
        Some(json!({"marital_status": "married", "attributes": {"outlet": "KLCC", "visits": 3}, "tags": ["vip"]})),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let took = count_reaches(h, &married_id, 1).await;
    println!("a profile edit reached the count in {took:?}");
    assert!(took <= LIVE, "the count moved {took:?} after the edit");
    let (_, tagged) = call(
        h,
        reqwest::Method::POST,
        "/api/segments/preview",
        Some(json!({"custom": {"and": [
            {"field": "attributes.tags", "op": "contains", "value": "VIP"},
            {"field": "attributes.visits", "op": "gte", "value": 3},
            {"field": "attributes.outlet", "op": "eq", "value": "klcc"}
        ]}})),
    )
    .await;
    assert_eq!(tagged["count"], 1, "{tagged}");
    for (body, message) in [
        (json!({"nickname": "x"}), "unknown field `nickname`"),
        (
            json!({"attributes": {"tags": ["x"]}}),
            "attributes.tags: set tags with",
        ),
        (
            json!({"marital_status": "complicated"}),
            "unknown variant `complicated`",
        ),
        (json!({}), "the edit changes nothing"),
    ] {
        let (status, error) = call(
            h,
            reqwest::Method::PATCH,
            &format!("/api/contacts/{AMIN}/"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["kind"], "invalid_profile");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{body}: {error}"
        );
    }

    // The contact list: search by name or phone digits, filter by tier, state and segment,
    // page with a cursor; the filters mean what they mean in a segment.
    let (status, _) = call(
        h,
        reqwest::Method::PATCH,
        &format!("/api/contacts/{MEI}/"),
        Some(json!({"name": "Mei Ling Tan"})),
    )
    .await;
    assert_eq!(status, 202);
    let started = Instant::now();
    loop {
        let (status, found) = get(h, "/api/contacts/?q=ling").await;
        assert_eq!(status, 200, "{found}");
        if found["total"] == 1 {
            assert_eq!(found["contacts"][0]["phone_number"], "6013****123");
            assert_eq!(found["contacts"][0]["name"], "Mei Ling Tan");
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the name never became searchable: {found}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, everyone) = get(h, "/api/contacts/").await;
    assert_eq!(everyone["total"], 3, "{everyone}");
    assert_eq!(everyone["live"], true);
    let (_, by_phone) = get(h, "/api/contacts/?q=012-9876").await;
    assert_eq!(by_phone["total"], 1, "{by_phone}");
    assert_eq!(by_phone["contacts"][0]["phone_number"], "6012****543");
    let (_, married_members) = get(h, &format!("/api/contacts/?segment={married_id}")).await;
    assert_eq!(married_members["total"], 1, "{married_members}");
    assert_eq!(
        married_members["contacts"][0]["phone_number"],
        "6012****543"
    );
    let (_, none) = get(h, &format!("/api/contacts/?segment={married_id}&q=ling")).await;
    assert_eq!(none["total"], 0, "segment and search together: {none}");
    let (_, gold) = get(h, "/api/contacts/?tier=Gold,Platinum").await;
    assert_eq!(gold["total"], 0);
    let (_, bronze) = get(h, "/api/contacts/?tier=bronze&limit=2").await;
    assert_eq!(bronze["total"], 3);
    assert_eq!(bronze["contacts"].as_array().unwrap().len(), 2);
    let cursor = bronze["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = get(
        h,
        &format!("/api/contacts/?tier=bronze&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(rest["contacts"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest["next_cursor"].is_null());
    let (_, no_state) = get(h, "/api/contacts/?state=Selangor").await;
    assert_eq!(no_state["total"], 0, "no contact has a known state yet");
    for (query, kind) in [
        ("tier=Diamond", "invalid_query"),
        ("state=Atlantis", "invalid_query"),
        ("limit=0", "invalid_limit"),
        ("cursor=x", "invalid_cursor"),
        ("limit=many", "invalid_query"),
    ] {
        let (status, error) = get(h, &format!("/api/contacts/?{query}")).await;
        assert_eq!(
            (status, error["error"]["kind"].clone()),
            (400, json!(kind)),
            "{query}: {error}"
        );
    }
    assert_eq!(get(h, "/api/contacts/?segment=no-such").await.0, 404);

    // Delete; then it is gone.
    let (status, _) = call(
        h,
        reqwest::Method::DELETE,
        &format!("/api/segments/{id}/"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(get(h, &format!("/api/segments/{id}/")).await.0, 404);
    assert_eq!(
        call(
            h,
            reqwest::Method::DELETE,
            &format!("/api/segments/{id}/"),
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn segments_round_trip_on_the_embedded_default() {
    let h = Harness::embedded().await;
    round_trip(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn segments_round_trip_on_the_real_stack() {
    let Some(h) = Harness::real_stack().await else {
        return;
    };
    round_trip(&h).await;
    h.stop().await;
}

/// Polls a segment's count and the store's view of `SITI` together until both show a
/// change; returns how long after the store the count showed it.
async fn count_follows_store(
    h: &Harness,
    id: &str,
    stored_when: impl Fn(&Value) -> bool,
) -> Duration {
    let started = Instant::now();
    let (mut stored, mut counted) = (None, None);
    while stored.is_none() || counted.is_none() {
        assert!(started.elapsed() < WAIT, "the change never counted");
        let contact = h.contact(SITI).await;
        if stored.is_none() && contact.as_ref().is_some_and(&stored_when) {
            stored = Some(Instant::now());
        }
        let (_, segment) = get(h, &format!("/api/segments/{id}/")).await;
        if counted.is_none() && segment["count"] == 1 {
            counted = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    counted.unwrap().saturating_duration_since(stored.unwrap())
}

async fn upload(h: &Harness, file: &str) {
    let photo = std::fs::read(format!(
        "{}/tests/fixtures/ocr/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let answer = h
        .http
        .post(format!("{}/api/contacts/{SITI}/media", h.base))
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
}

/// A MyKad photo (registration) and a receipt photo (a purchase) each reach a segment's
/// count within a second of the change being stored (the OCR before it takes what it takes).
async fn photos_move_counts(h: &Harness) {
    h.post(&text(SITI, "wamid.PHOTO-0", T0, "hello")).await;
    let registered = create(
        h,
        json!({"name": "Registered", "custom": {"field": "date_of_birth", "op": "exists"}}),
    )
    .await;
    let spenders = create(h, json!({"name": "Spenders", "min_spending": "0.01"})).await;
    let (registered, spenders) = (
        registered["id"].as_str().unwrap().to_string(),
        spenders["id"].as_str().unwrap().to_string(),
    );
    count_reaches(h, &registered, 0).await;
    count_reaches(h, &spenders, 0).await;
    upload(h, "card-0001.jpg").await;
    let lag = count_follows_store(h, &registered, |c| c["ic_number"].is_string()).await;
    println!("a registration reached the count {lag:?} after the store showed it");
    assert!(
        lag <= LIVE,
        "the count moved {lag:?} after the registration was stored"
    );
    upload(h, "receipt-0002.jpg").await;
    let lag = count_follows_store(h, &spenders, |c| c["total_spent"] != "0.00").await;
    println!("a receipt reached the count {lag:?} after the store showed it");
    assert!(
        lag <= LIVE,
        "the count moved {lag:?} after the purchase was stored"
    );
}

fn with_ocr(config: &mut sembang::config::Config) {
    config.engine.roles.push(sembang::config::Role::Ocr);
    config.ocr.max_media_bytes = 4 * 1024 * 1024;
    config.whatsapp.phone_number_id = "106540352242922".into();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_move_counts_on_the_embedded_default() {
    let h = Harness::embedded_tuned(false, |store| store, with_ocr).await;
    photos_move_counts(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_move_counts_on_the_real_stack() {
    let Some(h) = Harness::real_stack_tuned(with_ocr).await else {
        return;
    };
    photos_move_counts(&h).await;
    h.stop().await;
}
