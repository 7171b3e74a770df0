//! The HTTP surface outside the message flow: the Cloud API subscription handshake, admin
//! API keys, the wabot.my webhook and /metrics.

mod support;

use std::sync::Arc;

use serde_json::json;

use sembang::app::Backends;
use sembang::config::Secret;
use sembang::storage::sink::FileSink;

use support::engine::*;

async fn harness(require_key: bool, keys: &[&str]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(&dir);
    config.admin.require_api_key = require_key;
    let mut secrets = secrets();
    secrets.admin_api_keys = keys.iter().map(|k| Secret::new(*k)).collect();
    secrets.wabot_access_token = Some(Secret::new("gateway-token"));
    let backends = Backends::from_config(&config, &secrets).await.unwrap();
    let files = FileSink::open(std::path::Path::new(&config.data_dir).join("events")).unwrap();
    Harness::start_with(
        config,
        secrets,
        backends,
        Arc::new(files),
        Replies::Sandbox,
        dir,
    )
    .await
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_handshake_echoes_the_challenge_only_for_the_right_token() {
    let h = harness(false, &[]).await;
    let url = format!("{}/webhook/whatsapp", h.base);
    let answer = h
        .http
        .get(&url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "verify-me"),
            ("hub.challenge", "1158201444"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.text().await.unwrap(), "1158201444");
    let wrong = h.http.get(&url).query(&[
        ("hub.mode", "subscribe"),
        ("hub.verify_token", "nope"),
        ("hub.challenge", "1"),
    ]);
    assert_eq!(status_of(wrong).await, 403);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_a_key_where_the_profile_says_so() {
    let h = harness(true, &["admin:k-123"]).await;
    let url = format!("{}/api/sandbox/messages/", h.base);
    assert_eq!(status_of(h.http.get(&url)).await, 401);
    assert_eq!(status_of(h.http.get(&url).bearer_auth("wrong")).await, 401);
    assert_eq!(status_of(h.http.get(&url).bearer_auth("k-123")).await, 200);
    assert_eq!(
        status_of(h.http.get(&url).header("x-api-key", "k-123")).await,
        200
    );
    let contact = format!("{}/api/contacts/60123456789/", h.base);
    assert_eq!(
        status_of(h.http.get(&contact).bearer_auth("k-123")).await,
        404
    );
    assert_eq!(
        status_of(
            h.http
                .get(format!("{}/api/contacts/abc/", h.base))
                .bearer_auth("k-123")
        )
        .await,
        400
    );
    let media = format!("{}/api/contacts/60123456789/media", h.base);
    assert_eq!(status_of(h.http.post(&media).body("x")).await, 401);
    assert_eq!(
        status_of(h.http.post(&media).bearer_auth("k-123").body("x")).await,
        415,
        "past the key, the body is checked"
    );
    // The webhook and /metrics are not behind admin keys.
    assert_eq!(
        status_of(h.http.get(format!("{}/metrics", h.base))).await,
        200
    );
    h.stop().await;

    // Required but none configured: closed, not open.
    let h = harness(true, &[]).await;
    assert_eq!(
        status_of(h.http.get(format!("{}/api/sandbox/messages/", h.base))).await,
        401
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wabot_webhook_takes_gateway_messages_with_its_token() {
    use sembang::ingress::sign;
    let h = harness(false, &[]).await;
    let url = format!("{}/webhook/wabot", h.base);
    let message = json!({"instance_id": "609ABC", "id": "3EB0C767", "from": "60123456789",
        "push_name": "Siti", "timestamp": 1732510800, "type": "text", "message": "daftar"});
    let body = serde_json::to_vec(&message).unwrap();
    let post = |body: &[u8]| {
        h.http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_vec())
    };
    assert_eq!(status_of(post(&body)).await, 401, "no secret");
    let wrong = post(&body).header("x-wabot-token", "gateway-tokeN");
    assert_eq!(status_of(wrong).await, 401, "a secret that is almost right");
    // Even the right secret is refused in the query string, where proxies log it.
    let in_query = h
        .http
        .post(format!("{url}?token=gateway-token"))
        .json(&message);
    let answer = in_query.send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    assert!(answer.text().await.unwrap().contains("query string"));
    let malformed = post(b"{]").header("x-wabot-token", "gateway-token");
    assert_eq!(status_of(malformed).await, 400);
    // A signature made for another body is refused.
    let forged = post(&body).header(
        "x-wabot-signature",
        sign(b"gateway-token", b"{\"another\": \"body\"}"),
    );
    assert_eq!(status_of(forged).await, 401);
    let signed = post(&body).header("x-wabot-signature", sign(b"gateway-token", &body));
    assert_eq!(status_of(signed).await, 200);
    let again = post(&body).header("x-wabot-token", "gateway-token");
    assert_eq!(status_of(again).await, 200, "a retry is accepted");
    let contact = h.message_count_reaches(SITI, 1).await;
    assert_eq!(contact["name"], "Siti");
    let sent = h.sent_reaches(1).await;
    assert!(
        sent[0].1.contains("MyKad"),
        "the registration reply: {}",
        sent[0].1
    );
    h.stop().await;
}

/// The bus is down: the webhook answers 503 within its store timeout (not the producer's
/// much longer one), so WhatsApp keeps the message and retries it later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_answers_503_when_the_bus_cannot_take_the_events() {
    use sembang::api::{router, AdminState, ApiKeys};
    use sembang::ingress::http::WebhookState;
    use sembang::ingress::sign;
    use sembang::storage::bus::{Bus, KafkaBus, KafkaBusConfig};
    use sembang::storage::store::EmbeddedStore;
    use std::future::IntoFuture;
    use std::time::{Duration, Instant};

    // Nothing listens on port 1 of loopback.
    let mut kafka = KafkaBusConfig::new("127.0.0.1:1");
    kafka.message_timeout = Duration::from_secs(300);
    kafka.request_timeout = Duration::from_secs(300);
    let bus = KafkaBus::new(kafka).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let webhook = Arc::new(WebhookState {
        store_timeout: Duration::from_millis(500),
        producer: bus.producer(),
        inbound_topic: "wa.inbound".into(),
        dead_letter_topic: "crm.dlq".into(),
        app_secret: Some(Secret::new(APP_SECRET)),
        verify_token: None,
        wabot_token: None,
    });
    let admin = Arc::new(AdminState {
        store: Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).unwrap()),
        sandbox: None,
        keys: ApiKeys::default(),
        require_key: false,
        uploads: None,
        segments: None,
        edits: None,
        campaigns: None,
        ocr: None,
        dead_letters: None,
        audit: None,
        analytics: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        axum::serve(
            listener,
            router(Some(webhook), None, admin, Arc::new(Vec::new), 1 << 20),
        )
        .into_future(),
    );

    let body = serde_json::to_vec(&text(SITI, "wamid.DOWN-1", T0, "hello")).unwrap();
    let started = Instant::now();
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/webhook/whatsapp"))
        .header("x-hub-signature-256", sign(APP_SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"]["kind"], "unavailable");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("127.0.0.1") && !message.to_lowercase().contains("kafka"),
        "a 503 says what to do, not what failed inside: {message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(200),
        "bounded by the webhook's store timeout, not the producer's 300 s"
    );
    server.abort();
}

/// Staff upload a customer's photo: checked from its bytes, kept in the object store under
/// its hash, queued as an OCR job for the contact (the same job when uploaded again);
/// everything else is refused with a typed reason and queues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_checked_stored_and_queued_for_ocr() {
    use sembang::topics;
    use sembang::topics::ocr::OcrJob;

    let h = harness(false, &[]).await;
    let photo_path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ocr/card-0001.jpg");
    // No business number configured (the test config has none) and none given: refused.
    let answer = h
        .http
        .post(format!("{}/api/contacts/{SITI}/media", h.base))
        .body(std::fs::read(&photo_path).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 422);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"]["kind"], "no_business_number");
    let photo = std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ocr/card-0001.jpg"),
    )
    .unwrap();
    let upload = |phone: &str, body: Vec<u8>| {
        h.http
            .post(format!(
                "{}/api/contacts/{phone}/media?caption=at%20the%20counter&phone_number_id=555",
                h.base
            ))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };

    let answer = upload(SITI, photo.clone()).await.unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    let accepted: serde_json::Value = answer.json().await.unwrap();
    let sha256 = accepted["sha256"].as_str().unwrap().to_string();
    assert_eq!(accepted["format"], "jpg");
    assert!(accepted["width"].as_u64().unwrap() > 0);
    let job_id = accepted["job_id"].as_str().unwrap().to_string();
    let object = accepted["object"].as_str().unwrap();
    let stored = std::fs::read(object.strip_prefix("file://").unwrap()).unwrap();
    assert!(
        stored.starts_with(b"SBM1") && stored.len() > photo.len(),
        "kept encrypted"
    );
    assert!(
        !stored
            .windows(64)
            .any(|w| photo.windows(64).next() == Some(w)),
        "no run of the original bytes on disk"
    );

    let record = h
        .find_record(topics::OCR_JOBS, |m| {
            serde_json::from_slice::<OcrJob>(&m.payload).is_ok_and(|j| j.job_id == job_id)
        })
        .await;
    let job: OcrJob = serde_json::from_slice(&record.payload).unwrap();
    assert_eq!(record.key, SITI.as_bytes(), "keyed by the contact");
    assert_eq!(job.media_id, format!("stored:{sha256}.jpg"));
    assert_eq!(job.caption.as_deref(), Some("at the counter"));
    assert_eq!(
        job.business.phone_number_id, "555",
        "answered from the number asked for"
    );
    assert_eq!(job.sha256.as_deref(), Some(sha256.as_str()));

    // A retry of the same upload is the same job; another contact's is another.
    let again: serde_json::Value = upload(SITI, photo.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["job_id"], job_id.as_str());
    let other: serde_json::Value = upload("60198765432", photo.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["job_id"], job_id.as_str());

    let refusals: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("12", photo.clone(), 400, "invalid_phone_number"),
        (
            SITI,
            b"GIF89a not a photo we read".to_vec(),
            415,
            "unsupported_format",
        ),
        (
            SITI,
            b"%PDF-1.7 a scanned receipt".to_vec(),
            415,
            "unsupported_format",
        ),
        (
            SITI,
            support::png_header(100_000, 100_000, 0),
            422,
            "too_many_pixels",
        ),
        (SITI, vec![0xFF; 17 * 1024 * 1024], 413, "too_large"),
    ];
    for (phone, body, status, kind) in refusals {
        let answer = upload(phone, body).await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{kind}");
        let error: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(error["error"]["kind"], kind);
    }
    h.stop().await;
}

/// Each admin route admits only its roles: 401 without a known key, 403 with a key whose
/// role may not, and past the guard with one that may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_enforce_roles() {
    let h = harness(
        true,
        &[
            "admin:k-admin",
            "marketer:k-market",
            "analyst:k-analyst",
            "viewer:k-view",
        ],
    )
    .await;
    let contact = format!("{}/api/contacts/60123456789/", h.base);
    let contact_bare = format!("{}/api/contacts/60123456789", h.base);
    let sandbox = format!("{}/api/sandbox/messages/", h.base);
    let media = format!("{}/api/contacts/60123456789/media", h.base);
    let segments = format!("{}/api/segments/", h.base);
    let segment = format!("{}/api/segments/no-such-id/", h.base);
    let export = format!("{}/api/segments/no-such-id/export.csv", h.base);
    let new_segment = json!({"name": "", "gender": "male"});
    let revenue = format!("{}/api/analytics/revenue/", h.base);
    let export_person = format!("{}/api/contacts/60123456789/export", h.base);
    let history = format!("{}/api/contacts/60123456789/messages/", h.base);
    let purchases = format!("{}/api/customers/60123456789/purchases/", h.base);
    let list = format!("{}/api/contacts/", h.base);
    let ocr = format!("{}/api/ocr/process/", h.base);
    let dead_letters = format!("{}/api/dead-letters/", h.base);
    let review_queue = format!("{}/api/purchases/review/", h.base);
    let decide = format!("{}/api/customers/60123456789/purchases/p-1/review/", h.base);
    let approve = json!({"decision": "approve"});
    // (request, key, expected status): 404 = past the guard, no such contact; 415 = past
    // the guard, the body is not a photo.
    let cases: Vec<(reqwest::RequestBuilder, Option<&str>, u16)> = vec![
        (h.http.get(&contact), None, 401),
        (h.http.get(&contact), Some("k-admin"), 404),
        (h.http.get(&contact), Some("k-market"), 404),
        (h.http.get(&contact), Some("k-view"), 404),
        (h.http.get(&contact), Some("k-analyst"), 403),
        (h.http.get(&contact_bare), Some("k-analyst"), 403),
        (h.http.get(&contact_bare), Some("k-view"), 404),
        (h.http.get(&sandbox), None, 401),
        (h.http.get(&sandbox), Some("k-view"), 200),
        (h.http.get(&sandbox), Some("k-analyst"), 403),
        (h.http.post(&media).body("x"), None, 401),
        (h.http.post(&media).body("x"), Some("k-admin"), 415),
        (h.http.post(&media).body("x"), Some("k-market"), 415),
        (h.http.post(&media).body("x"), Some("k-view"), 403),
        (h.http.post(&media).body("x"), Some("k-analyst"), 403),
        // Segments: every role reads aggregates; marketers and admins change them; member
        // exports need a role that may read contacts. 400 = past the guard, blank name.
        (h.http.get(&segments), None, 401),
        (h.http.get(&segments), Some("k-analyst"), 200),
        (h.http.get(&segments), Some("k-view"), 200),
        (h.http.get(&segment), Some("k-analyst"), 404),
        (
            h.http.post(&segments).json(&new_segment),
            Some("k-market"),
            400,
        ),
        (
            h.http.post(&segments).json(&new_segment),
            Some("k-admin"),
            400,
        ),
        (
            h.http.post(&segments).json(&new_segment),
            Some("k-view"),
            403,
        ),
        (
            h.http.post(&segments).json(&new_segment),
            Some("k-analyst"),
            403,
        ),
        (h.http.delete(&segment), Some("k-analyst"), 403),
        (h.http.delete(&segment), Some("k-market"), 404),
        (h.http.get(&export), Some("k-analyst"), 403),
        (h.http.get(&export), Some("k-view"), 404),
        // Analytics: analysts and admins only.
        (h.http.get(&revenue), None, 401),
        (h.http.get(&revenue), Some("k-analyst"), 200),
        (h.http.get(&revenue), Some("k-admin"), 200),
        (h.http.get(&revenue), Some("k-market"), 403),
        (h.http.get(&revenue), Some("k-view"), 403),
        (
            h.http.get(format!("{}/api/analytics/customers/", h.base)),
            Some("k-analyst"),
            200,
        ),
        (
            h.http.get(format!("{}/api/analytics/customers/", h.base)),
            Some("k-market"),
            403,
        ),
        (
            h.http.get(format!("{}/api/analytics/ocr/", h.base)),
            Some("k-analyst"),
            200,
        ),
        (
            h.http.get(format!("{}/api/analytics/ocr/", h.base)),
            Some("k-view"),
            403,
        ),
        // A whole person's data: admins only (404 = past the guard, no such contact).
        (h.http.get(&export_person), None, 401),
        (h.http.get(&export_person), Some("k-admin"), 404),
        (h.http.get(&export_person), Some("k-market"), 403),
        (h.http.get(&export_person), Some("k-view"), 403),
        (h.http.get(&export_person), Some("k-analyst"), 403),
        // The contact list: every role (names masked for the analyst).
        (h.http.get(&list), None, 401),
        (h.http.get(&list), Some("k-analyst"), 200),
        (h.http.get(&list), Some("k-view"), 200),
        // Reading a photo: the roles that change contacts (415 = past the guard).
        (h.http.post(&ocr).body("x"), None, 401),
        (h.http.post(&ocr).body("x"), Some("k-market"), 415),
        (h.http.post(&ocr).body("x"), Some("k-view"), 403),
        (h.http.post(&ocr).body("x"), Some("k-analyst"), 403),
        // The receipt review queue: read by the roles that read contacts, decided by those
        // that change them (404 = past the guard, no such contact).
        (h.http.get(&review_queue), Some("k-view"), 200),
        (h.http.get(&review_queue), Some("k-analyst"), 403),
        (h.http.post(&decide).json(&approve), Some("k-market"), 404),
        (h.http.post(&decide).json(&approve), Some("k-view"), 403),
        (h.http.post(&decide).json(&approve), Some("k-analyst"), 403),
        // Dead letters: admins only.
        (h.http.get(&dead_letters), None, 401),
        (h.http.get(&dead_letters), Some("k-admin"), 200),
        (h.http.get(&dead_letters), Some("k-market"), 403),
        (h.http.get(&dead_letters), Some("k-view"), 403),
        (h.http.get(&dead_letters), Some("k-analyst"), 403),
        // A contact's history: the roles that read contacts.
        (h.http.get(&history), Some("k-analyst"), 403),
        (h.http.get(&history), Some("k-view"), 200),
        (h.http.get(&purchases), Some("k-analyst"), 403),
        (h.http.get(&purchases), Some("k-view"), 404),
    ];
    for (i, (request, key, expected)) in cases.into_iter().enumerate() {
        let request = match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(status, expected, "case {i} ({key:?}): {body}");
        if status == 403 {
            assert_eq!(body["error"]["kind"], "forbidden", "case {i}");
        }
    }
    h.stop().await;
}

/// `POST /api/ocr/process/` reads a card and a receipt at once, masks the IC number in
/// every field and in the text, applies a reading to a contact only when asked (queued like
/// an upload), refuses what is not a photo with the upload's reasons, and tells callers
/// beyond its bound to come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocr_route_reads_masks_and_applies() {
    use sembang::topics;
    use sembang::topics::ocr::OcrJob;

    let h = harness(false, &[]).await;
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocr");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("truth.json")).unwrap()).unwrap();
    let truth_of = |file: &str| {
        truth
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["file"] == file)
            .unwrap()
            .clone()
    };
    let process = |query: &str, body: Vec<u8>| {
        h.http
            .post(format!("{}/api/ocr/process/{query}", h.base))
            .body(body)
            .send()
    };

    let card = std::fs::read(fixtures.join("card-0001.jpg")).unwrap();
    let answer = process("", card.clone()).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let text = answer.text().await.unwrap();
    let read: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ic = truth_of("card-0001.jpg")["ic"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        (read["kind"].clone(), read["accepted"].clone()),
        (json!("ic"), json!(true)),
        "{read}"
    );
    assert_eq!(read["ic"]["masked"], format!("{}-**-****", &ic[..6]));
    assert_eq!(read["ic"]["birth_date"], "1979-01-20");
    assert_eq!(read["ic"]["gender"], "male");
    assert_eq!(read["card"]["name"], "AHMAD IZZAT BIN ISMAIL");
    assert!(read["text"].as_str().unwrap().contains(&ic[..6]), "{read}");
    assert!(
        !text.contains(&ic[6..]) && !text.contains(&format!("{}-{}", &ic[6..8], &ic[8..])),
        "the IC number's hidden digits appear nowhere in the answer: {text}"
    );
    assert!(read["applied"].is_null(), "not applied unless asked");

    let receipt = std::fs::read(fixtures.join("receipt-0001.jpg")).unwrap();
    let read: serde_json::Value = process("", receipt).await.unwrap().json().await.unwrap();
    assert_eq!(read["kind"], "receipt", "{read}");
    assert_eq!(
        read["receipt"]["total"],
        truth_of("receipt-0001.jpg")["total"],
        "{read}"
    );

    // Applied to a contact: the photo is queued for the contact's shard like an upload.
    let answer = process(
        &format!("?contact={SITI}&phone_number_id=555"),
        card.clone(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let read: serde_json::Value = answer.json().await.unwrap();
    let job_id = read["applied"]["job_id"].as_str().unwrap().to_string();
    let record = h
        .find_record(topics::OCR_JOBS, |m| {
            serde_json::from_slice::<OcrJob>(&m.payload).is_ok_and(|j| j.job_id == job_id)
        })
        .await;
    assert_eq!(record.key, SITI.as_bytes());

    for (query, body, status, kind) in [
        (
            "",
            b"GIF89a not a photo".to_vec(),
            415,
            "unsupported_format",
        ),
        (
            "",
            b"%PDF-1.7 a receipt".to_vec(),
            415,
            "unsupported_format",
        ),
        (
            "",
            support::png_header(100_000, 100_000, 0),
            422,
            "too_many_pixels",
        ),
        ("?contact=12", card.clone(), 400, "invalid_phone_number"),
        (
            "?contact=60123456789&x=1&contact=2",
            card.clone(),
            400,
            "invalid_query",
        ),
    ] {
        let answer = process(query, body).await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{kind}");
        let error: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(error["error"]["kind"], kind);
    }

    // More photos at once than the route reads or queues: the rest get 503 and Retry-After,
    // and every one that is read is read the same.
    let answers = futures::future::join_all((0..12).map(|_| process("", card.clone()))).await;
    let mut busy = 0;
    let mut masked = std::collections::BTreeSet::new();
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status().as_u16() {
            200 => {
                let read: serde_json::Value = answer.json().await.unwrap();
                masked.insert(read["ic"]["masked"].as_str().unwrap().to_string());
            }
            503 => {
                assert_eq!(answer.headers()["retry-after"], "1");
                let error: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(error["error"]["kind"], "ocr_busy");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "12 photos at once must exceed the bound of 4");
    assert_eq!(masked.len(), 1, "{masked:?}");
    h.stop().await;
}

/// The contact list shows the analyst initials, never a name; the roles that may read
/// contacts see the name. Phone numbers are masked for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_list_masks_names_for_the_analyst() {
    let h = harness(true, &["admin:k-admin", "analyst:k-analyst"]).await;
    h.post(&text(SITI, "wamid.LIST-1", T0, "hello")).await;
    let edit = h
        .http
        .patch(format!("{}/api/contacts/{SITI}/", h.base))
        .bearer_auth("k-admin")
        .json(&json!({"name": "Siti Aminah"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edit.status().as_u16(), 202);
    let list = |key: &'static str| {
        let request = h
            .http
            .get(format!("{}/api/contacts/", h.base))
            .bearer_auth(key);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let started = std::time::Instant::now();
    while list("k-admin").await["contacts"][0]["name"] != "Siti Aminah" {
        assert!(started.elapsed() < WAIT, "the name never reached the list");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let seen = list("k-analyst").await;
    assert_eq!(seen["contacts"][0]["name"], "S*** A***", "{seen}");
    assert_eq!(seen["contacts"][0]["phone_number"], "6012****789");
    h.stop().await;
}

/// A malformed key entry or an unknown role stops the process from starting, rather than
/// leaving the API open or a key silently unused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_api_keys_are_a_start_up_error() {
    for entry in ["k-without-role", "root:k-1", "admin:"] {
        let dir = tempfile::tempdir().unwrap();
        let config = base_config(&dir);
        let mut secrets = secrets();
        secrets.admin_api_keys = vec![Secret::new(entry)];
        let backends = Backends::from_config(&config, &secrets).await.unwrap();
        let error = match sembang::app::start(&config, &secrets, backends).await {
            Ok(_) => panic!("{entry:?} started"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("SEMBANG_ADMIN_API_KEYS entry 1"), "{error}");
        assert!(
            !error.contains("k-1") && !error.contains("k-without"),
            "{error}"
        );
    }
}

/// docs/openapi.json is what the code generates (run `sembang openapi --out
/// docs/openapi.json` after changing a route), and the running process serves the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_committed_served_and_complete() {
    let generated = sembang::api::openapi();
    let mut text = serde_json::to_string_pretty(&generated).unwrap();
    text.push('\n');
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .expect("docs/openapi.json exists");
    assert!(
        committed == text,
        "docs/openapi.json is stale: run `cargo run -- openapi --out docs/openapi.json`"
    );

    let h = harness(true, &["viewer:k-view"]).await;
    let served: serde_json::Value = h
        .http
        .get(format!("{}/api/openapi.json", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(served, doc);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    // Every route of the process is documented, with its methods.
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/webhook/whatsapp", "get"),
        ("/webhook/whatsapp", "post"),
        ("/webhook/wabot", "post"),
        ("/api/contacts/{phone}/", "get"),
        ("/api/contacts/{phone}/", "patch"),
        ("/api/contacts/import", "post"),
        ("/api/contacts/{phone}/media", "post"),
        ("/api/sandbox/messages/", "get"),
        ("/api/segments/", "get"),
        ("/api/segments/", "post"),
        ("/api/segments/create/", "post"),
        ("/api/segments/{id}/", "get"),
        ("/api/segments/{id}/", "put"),
        ("/api/segments/{id}/", "patch"),
        ("/api/segments/{id}/", "delete"),
        ("/api/segments/preview", "post"),
        ("/api/segments/{id}/breakdown", "get"),
        ("/api/segments/{id}/export.csv", "get"),
        ("/api/openapi.json", "get"),
        ("/metrics", "get"),
        ("/healthz", "get"),
    ] {
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"))[method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} documents no response"
        );
    }
    // ... and every documented operation is routed: none answers axum's bare 404 or 405.
    let mut routed = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = format!(
                "{}{}",
                h.base,
                path.replace("{phone}", "60123456789")
                    .replace("{id}", "no-such-id")
            );
            let request = match method.as_str() {
                "get" => h.http.get(&url),
                "post" => h.http.post(&url).body("{}"),
                "put" => h.http.put(&url).body("{}"),
                "patch" => h.http.patch(&url).body("{}"),
                "delete" => h.http.delete(&url),
                other => panic!("unexpected method {other}"),
            };
            let response = request.bearer_auth("k-view").send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert!(
                status != 405 && !(status == 404 && body.is_empty()),
                "{method} {path} is documented but not routed ({status})"
            );
            routed += 1;
        }
    }
    assert!(routed >= 9);

    // Every reference resolves.
    fn refs<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for reference in found {
        let pointer = reference.strip_prefix('#').expect("local reference");
        assert!(
            doc.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert!(schemes["api_key"].is_object() && schemes["bearer"].is_object());
    h.stop().await;
}

/// The public listener serves the webhooks and nothing private; the admin API and /metrics
/// are on their own listener; both refuse slow clients and cap open connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_and_private_surfaces_listen_apart_and_refuse_slow_clients() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(&dir);
    config.http.admin_listen = "127.0.0.1:0".into();
    config.http.header_timeout_ms = 1_000;
    config.http.request_timeout_ms = 500;
    config.http.max_connections = 1;
    let secrets = secrets();
    let backends = Backends::from_config(&config, &secrets).await.unwrap();
    let files = FileSink::open(std::path::Path::new(&config.data_dir).join("events")).unwrap();
    let h = Harness::start_with(
        config,
        secrets,
        backends,
        Arc::new(files),
        Replies::Sandbox,
        dir,
    )
    .await;
    assert_ne!(h.base, h.admin_base);
    let get = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    // The private surface is not on the public listener, and the webhook not on the private.
    assert_eq!(get(format!("{}/metrics", h.base)).await, 404);
    assert_eq!(get(format!("{}/api/contacts/{SITI}/", h.base)).await, 404);
    assert_eq!(get(format!("{}/api/openapi.json", h.base)).await, 404);
    assert_eq!(get(format!("{}/metrics", h.admin_base)).await, 200);
    assert_eq!(get(format!("{}/api/openapi.json", h.admin_base)).await, 200);
    let handshake =
        "/webhook/whatsapp?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=7";
    assert_eq!(get(format!("{}{handshake}", h.base)).await, 200);
    assert_eq!(get(format!("{}{handshake}", h.admin_base)).await, 404);
    // Readiness on both, naming the roles.
    for base in [&h.base, &h.admin_base] {
        let health: serde_json::Value = reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["ready"], true, "{health}");
        let roles: Vec<&str> = health["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["role"].as_str().unwrap())
            .collect();
        assert!(
            roles.contains(&"http") && roles.contains(&"engine"),
            "{roles:?}"
        );
    }

    let addr = h.base.trim_start_matches("http://").to_string();
    let closed_within = |mut stream: TcpStream| async move {
        let mut buf = [0u8; 512];
        let mut answer = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return Some(String::from_utf8_lossy(&answer).into_owned())
                }
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => return None,
            }
        }
    };
    // Slowloris: headers that never end. The connection is closed, not kept forever.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /webhook/whatsapp HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(slow).await.is_some(),
        "unfinished headers are cut off"
    );
    // A body trickled in: 408 when the request's deadline passes.
    let mut trickle = TcpStream::connect(&addr).await.unwrap();
    trickle
        .write_all(b"POST /webhook/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"object\"")
        .await
        .unwrap();
    let answer = closed_within(trickle).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // One connection at a time (max_connections = 1): a second waits until the first goes.
    let held = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waiting = tokio::spawn(get(format!("{}/healthz", h.base)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "served past the connection cap");
    drop(held);
    assert_eq!(
        waiting.await.unwrap(),
        200,
        "served once the first went away"
    );
    h.stop().await;
}

/// Operators see the dead-letter topic through the API (reasons, masked keys, filters,
/// pages) and replay chosen records to their topic after a fix: a replayed event is
/// applied, a second replay of it is not applied again, and what cannot go back (unknown
/// ids) is reported with why.
async fn dead_letters_round_trip(h: &Harness) {
    use sembang::storage::bus::dead_letter::dead_letter;
    use sembang::storage::bus::{Message, Record};
    use sembang::topics;

    const MEI: &str = "60135550123";
    let dlq = h.names.name(topics::DEAD_LETTER);
    let inbound = h.names.name(topics::INBOUND);
    // An event that failed for a cause since fixed (the store was down): in the
    // dead-letter topic as the engine writes it, never applied.
    let body = serde_json::to_vec(&text(MEI, "wamid.DLQ-1", T0, "hello")).unwrap();
    let event = sembang::ingress::parse::parse_webhook(&body)
        .unwrap()
        .events
        .remove(0);
    let failed = Message {
        topic: inbound.clone(),
        partition: 0,
        offset: 0,
        key: MEI.as_bytes().to_vec(),
        payload: serde_json::to_vec(&event).unwrap(),
        headers: Vec::new(),
        timestamp_ms: T0 * 1000,
    };
    let producer = h.bus.producer();
    producer
        .send(dead_letter(
            &dlq,
            &failed,
            "store_unavailable",
            "the store timed out",
        ))
        .await
        .unwrap();
    // And a poison record the engine dead-letters itself.
    producer
        .send(Record::new(
            inbound.clone(),
            SITI.as_bytes().to_vec(),
            b"{not an event".to_vec(),
        ))
        .await
        .unwrap();

    let get = |query: String| {
        let request = h.http.get(format!("{}/api/dead-letters/{query}", h.base));
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<serde_json::Value>().await.unwrap())
        }
    };
    let started = std::time::Instant::now();
    let poison = loop {
        let (status, page) = get("?kind=malformed_event".into()).await;
        assert_eq!(status, 200, "{page}");
        if page["total"] == 1 {
            break page["dead_letters"][0].clone();
        }
        assert!(
            started.elapsed() < WAIT,
            "the poison record never showed: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        poison["key"], "6012****789",
        "keys that are phones are masked"
    );
    assert_eq!(poison["original_topic"], inbound.as_str());
    assert_eq!(poison["payload_bytes"], 13);
    assert_eq!(poison["replayable"], true);
    assert!(poison.get("payload").is_none(), "payloads are not shown");
    let (_, page) = get("?kind=store_unavailable".into()).await;
    assert_eq!(page["total"], 1, "{page}");
    let failed_id = page["dead_letters"][0]["id"].as_str().unwrap().to_string();
    let (_, all) = get(format!("?original_topic={inbound}")).await;
    assert_eq!(all["total"], 2, "{all}");
    assert_eq!(all["complete"], true);
    let (_, first) = get(format!("?original_topic={inbound}&limit=1")).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = get(format!("?original_topic={inbound}&limit=1&cursor={cursor}")).await;
    assert_eq!(second["dead_letters"].as_array().unwrap().len(), 1);
    assert_ne!(
        second["dead_letters"][0]["id"],
        first["dead_letters"][0]["id"]
    );
    assert!(second["next_cursor"].is_null());

    let replay = |body: serde_json::Value| {
        let request = h
            .http
            .post(format!("{}/api/dead-letters/replay/", h.base))
            .json(&body);
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, outcome) = replay(json!({"ids": [failed_id, "99.99"]})).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["replayed"][0]["topic"], inbound.as_str());
    assert_eq!(
        outcome["skipped"],
        json!([{"id": "99.99", "reason": "not_found"}])
    );
    h.message_count_reaches(MEI, 1).await;
    // Replayed again (an operator's double click): the event is applied once. A later
    // message on the same partition proves the replay was read before it.
    let (status, _) = replay(json!({"ids": [failed_id]})).await;
    assert_eq!(status, 200);
    h.post(&text(MEI, "wamid.DLQ-2", T0 + 1, "again")).await;
    let contact = h.message_count_reaches(MEI, 2).await;
    assert_eq!(contact["message_count"], 2);

    for (body, kind) in [
        (json!({"ids": []}), "invalid_ids"),
        (json!({"ids": ["3-42"]}), "invalid_ids"),
        (json!({"id": ["3.42"]}), "invalid_body"),
    ] {
        let (status, error) = replay(body.clone()).await;
        assert_eq!(
            (status, error["error"]["kind"].clone()),
            (400, json!(kind)),
            "{body}"
        );
    }
    let (status, error) = get("?cursor=abc".into()).await;
    assert_eq!(
        (status, error["error"]["kind"].clone()),
        (400, json!("invalid_cursor"))
    );
    // The operator's reads are in the audit trail (ClickHouse on the real stack), as the
    // open profile's caller.
    let started = std::time::Instant::now();
    loop {
        let trail = h
            .reader
            .fetch_events(sembang::storage::sink::EventTable::PersonalDataAccess, 1000)
            .await
            .unwrap();
        let found = trail.iter().any(|e| {
            matches!(e, sembang::storage::sink::AnalyticsEvent::PersonalDataAccess(a)
                if a.route == "/api/dead-letters/replay/" && a.method == "POST" && a.key_id == "open" && a.status == 200)
        });
        if found {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "no audit of the replay: {trail:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_list_and_replay_on_the_embedded_default() {
    let h = Harness::embedded().await;
    dead_letters_round_trip(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_list_and_replay_on_the_real_stack() {
    let Some(h) = Harness::real_stack().await else {
        return;
    };
    dead_letters_round_trip(&h).await;
    h.stop().await;
}

/// Every request to a route that reads personal data is in the audit trail: the key's id
/// (never the key), the role, the route template, the contact it names, the masked query
/// and the status, refused requests too; aggregates are not recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_reads_are_audited() {
    use sembang::storage::sink::{AnalyticsEvent, EventTable};

    let h = harness(
        true,
        &[
            "admin:k-admin-secret",
            "viewer:k-view-secret",
            "analyst:k-analyst-secret",
        ],
    )
    .await;
    h.post(&text(SITI, "wamid.AUDIT-1", T0, "hello")).await;
    let get = |path: &str, key: &str| {
        h.http
            .get(format!("{}{path}", h.base))
            .bearer_auth(key)
            .send()
    };
    let started = std::time::Instant::now();
    while get(&format!("/api/contacts/{SITI}/"), "k-view-secret")
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(started.elapsed() < WAIT, "the contact never appeared");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let listed = get("/api/contacts/?q=900101-14-5678", "k-analyst-secret")
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let refused = get(&format!("/api/contacts/{SITI}/export"), "k-view-secret")
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let aggregate = get("/api/analytics/revenue/", "k-analyst-secret")
        .await
        .unwrap();
    assert_eq!(aggregate.status(), 200);

    // The polls of the contact, the list and the refused export, once the analytics role
    // has written them.
    let started = std::time::Instant::now();
    let accesses = loop {
        let events = h
            .reader
            .fetch_events(EventTable::PersonalDataAccess, 1000)
            .await
            .unwrap();
        let accesses: Vec<_> = events
            .iter()
            .map(|e| match e {
                AnalyticsEvent::PersonalDataAccess(a) => a.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        if accesses.iter().any(|a| a.status == 403)
            && accesses.iter().any(|a| a.route == "/api/contacts/")
        {
            break accesses;
        }
        assert!(
            started.elapsed() < WAIT,
            "the trail is missing requests: {accesses:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let viewer_read = accesses
        .iter()
        .find(|a| a.route == "/api/contacts/{phone}/" && a.status == 200)
        .expect("the contact read is recorded");
    assert_eq!(viewer_read.role, "viewer");
    assert_eq!(viewer_read.method, "GET");
    assert_eq!(viewer_read.contact_phone.as_ref().unwrap().as_str(), SITI);
    assert!(viewer_read.key_id.starts_with("key-") && viewer_read.key_id.len() == 16);
    let search = accesses
        .iter()
        .find(|a| a.route == "/api/contacts/")
        .expect("the list is recorded");
    assert_eq!(search.role, "analyst");
    assert_eq!(search.contact_phone, None);
    assert_eq!(
        search.query.as_deref(),
        Some("q=900101-**-****"),
        "IC numbers masked"
    );
    assert_ne!(search.key_id, viewer_read.key_id, "keys are told apart");
    let export = accesses
        .iter()
        .find(|a| a.route.starts_with("/api/contacts/{phone}/export"))
        .expect("a refused request is recorded too");
    assert_eq!(export.status, 403);
    assert!(
        accesses.iter().all(|a| !a.route.contains("analytics")),
        "aggregates are not personal data"
    );
    let stored = format!("{accesses:?}");
    assert!(!stored.contains("secret"), "the trail never holds a key");
    h.stop().await;
}

/// Retention, applied by the engine: a message older than `store.message_body_retention_days`
/// keeps its place in the history but loses its body, in the store and in the analytics
/// events; a recent one keeps it. On both
/// backends (the store's own sweep is in the store conformance tests).
async fn message_bodies_expire(h: Harness) {
    h.post(&text(
        SITI,
        "wamid.RET-OLD",
        T0,
        "IC saya ada di sini, alamat rumah saya ...",
    ))
    .await;
    let now = chrono::Utc::now().timestamp();
    h.post(&text(SITI, "wamid.RET-NEW", now, "hello again"))
        .await;
    h.message_count_reaches(SITI, 2).await;
    let started = std::time::Instant::now();
    loop {
        let history: serde_json::Value = h
            .http
            .get(format!("{}/api/contacts/{SITI}/messages/", h.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let inbound: Vec<&serde_json::Value> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "inbound")
            .collect();
        let body = |wamid: &str| {
            inbound
                .iter()
                .find(|m| m["wamid"] == wamid)
                .map(|m| m["body"].clone())
        };
        if inbound.len() == 2 && body("wamid.RET-OLD") == Some(serde_json::Value::Null) {
            assert_eq!(body("wamid.RET-NEW"), Some(json!("hello again")));
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the old body was not cleared: {history}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The analytics copies too: the analytics role's sweep clears the old message's text
    // (ClickHouse in a background mutation), the new one keeps it.
    let started = std::time::Instant::now();
    loop {
        let events = h
            .reader
            .fetch_events(sembang::storage::sink::EventTable::InboundMessages, 100)
            .await
            .unwrap();
        let text = |wamid: &str| {
            events.iter().find_map(|e| match e {
                sembang::topics::events::AnalyticsEvent::InboundMessage(m) if m.wamid == wamid => {
                    Some(m.text.clone())
                }
                _ => None,
            })
        };
        if text("wamid.RET-OLD") == Some(None) {
            assert_eq!(text("wamid.RET-NEW"), Some(Some("hello again".to_string())));
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the analytics copy of the old text was not cleared: {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    h.stop().await;
}

fn short_retention(config: &mut sembang::config::Config) {
    config.store.message_body_retention_days = 30;
    config.store.retention_sweep_secs = 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_bodies_expire_on_the_embedded_default() {
    message_bodies_expire(Harness::embedded_tuned(false, |s| s, short_retention).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_bodies_expire_on_the_real_stack() {
    let Some(h) = Harness::real_stack_tuned(short_retention).await else {
        return;
    };
    message_bodies_expire(h).await;
}
