//! End to end: signed webhooks in over HTTP, through the bus, the contact shards, the
//! sender and the analytics role, out to the store, the event sink and the provider. The
//! same scenario runs on the embedded default (embedded bus, redb store, event files,
//! sandbox provider) and on the real stack (Kafka, Cassandra, ClickHouse, and the fake
//! Cloud API as the provider).

mod support;

use std::time::Duration;

use serde_json::Value;

use sembang::domain::message::DeliveryStatus;
use sembang::domain::phone::PhoneNumber;
use sembang::ingress::sign;
use sembang::storage::bus::dead_letter::{
    HEADER_ERROR, HEADER_ERROR_KIND, HEADER_ORIGINAL_TOPIC, HEADER_PAYLOAD_OMITTED,
};
use sembang::storage::bus::Record;
use sembang::storage::sink::EventTable;
use sembang::topics;
use sembang::topics::contacts::ContactState;

use support::engine::*;

// ---- the scenario -------------------------------------------------------------------------

/// A Singapore mobile, as its `wa_id`.
const SINGAPOREAN: &str = "6591234567";

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
    // The flush that stored the new contact wrote its state to the contact changelog.
    let change = h
        .find_record(topics::CONTACTS, |m| m.key == SITI.as_bytes())
        .await;
    let state = ContactState::decode(&change.payload).unwrap().unwrap();
    assert_eq!(state.phone_number, siti);
    assert_eq!(state.name.as_deref(), Some("Siti Nurhaliza"));
    assert_eq!(state.interactions.message_count, 1);
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
    // An unreadable item in a readable envelope: the rest is taken (200), and the item goes
    // to the dead-letter topic with its reason instead of failing the whole body forever.
    let mut mixed = text(SITI, "wamid.E2E-MIXED", T0 + 310, "ok");
    mixed["entry"][0]["changes"][0]["value"]["messages"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"from": SITI, "id": "wamid.E2E-NOBODY",
            "timestamp": (T0 + 311).to_string(), "type": "text", "text": {}}));
    let body = serde_json::to_vec(&mixed).unwrap();
    let (code, answer) = h
        .post_raw(&body, Some(sign(APP_SECRET.as_bytes(), &body)))
        .await;
    assert_eq!(
        (
            code,
            answer["accepted"].as_u64(),
            answer["dead_lettered"].as_u64()
        ),
        (200, Some(1), Some(1)),
        "{answer}"
    );
    let dead = h
        .find_record(topics::DEAD_LETTER, |m| {
            String::from_utf8_lossy(&m.payload).contains("wamid.E2E-NOBODY")
        })
        .await;
    assert_eq!(
        dead.header(HEADER_ERROR_KIND),
        Some(&b"malformed_webhook_item"[..])
    );
    assert!(String::from_utf8_lossy(dead.header(HEADER_ERROR).unwrap()).contains("text.body"));
    assert_eq!(dead.key, SITI.as_bytes(), "keyed by the customer");

    // 8. Unknown message types are kept (three messages: reaction, order, unknown
    //    interactive), and a poison record goes to the dead-letter topic while the engine
    //    goes on.
    h.post(&fixture("unknown_types")).await;
    h.message_count_reaches(SITI, 11).await;
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
    h.message_count_reaches(SITI, 12).await;
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
    h.message_count_reaches(SITI, 13).await;
    // 60112223333 is not a valid Malaysian number (011 numbers have 8 more digits): its
    // image and its status reports are kept in the dead-letter topic with the reason.
    let answer = h.get_contact("60112223333").await;
    assert_eq!(
        answer.status().as_u16(),
        400,
        "the API refuses the number too"
    );
    let dead = h
        .find_record(topics::DEAD_LETTER, |m| {
            m.key == b"60112223333"
                && m.header(HEADER_ERROR_KIND) == Some(&b"invalid_contact_number"[..])
        })
        .await;
    assert!(
        String::from_utf8_lossy(&dead.payload).contains("wamid.BATCH-E1C0-M0")
            || String::from_utf8_lossy(&dead.payload).contains("\"status\"")
    );

    // 9b. A customer from Singapore is served like any other: contact, reply, API.
    h.post(&text(SINGAPOREAN, "wamid.E2E-SG", T0 + 500, "help"))
        .await;
    // The API takes another country's number with its +.
    let visitor = h.message_count_reaches(&format!("+{SINGAPOREAN}"), 1).await;
    assert_eq!(visitor["phone_number"], format!("+{SINGAPOREAN}"));
    let bare = h.get_contact(SINGAPOREAN).await;
    assert_eq!(
        bare.status().as_u16(),
        400,
        "bare digits are Malaysian or refused"
    );
    assert_eq!(visitor["whatsapp_status"], "active");
    let sent = h.sent_reaches(5).await;
    assert_eq!(sent[4].0, SINGAPOREAN);

    // 9c. A contact last written by an engine whose clock ran an hour ahead (a previous
    //     owner of its partition): this engine's change still takes effect. Contacts are
    //     versioned by updated_at, and the shard writes a version past the stored one.
    let ahead = PhoneNumber::parse("60135550123").unwrap();
    let mut stored = sembang::domain::contact::Contact::new(ahead.clone(), chrono::Utc::now());
    stored.updated_at = chrono::Utc::now() + chrono::Duration::hours(1);
    stored.interactions.message_count = 5;
    h.store.upsert_contact(&stored).await.unwrap();
    h.post(&text(
        ahead.as_str(),
        "wamid.E2E-AHEAD",
        T0 + 600,
        "ok noted",
    ))
    .await;
    h.message_count_reaches(ahead.as_str(), 6).await;
    let written = h.store.load_contact(&ahead).await.unwrap().unwrap();
    assert!(written.updated_at > stored.updated_at);

    // 10. Analytics: every inbound message, reply and status once, however often replayed.
    //     Inbound: Siti 13 + 60167778888 + the Singaporean + 60135550123; outbound: 5
    //     replies; statuses: read + delivered of the reply, and the batch's delivered and
    //     read.
    h.events_reach(EventTable::InboundMessages, 16).await;
    h.events_reach(EventTable::OutboundMessages, 5).await;
    h.events_reach(EventTable::MessageStatuses, 4).await;

    // 11. A segment count from the live index: every contact of the scenario is in it.
    let started = std::time::Instant::now();
    loop {
        let preview: Value = h
            .http
            .post(format!("{}/api/segments/preview", h.base))
            .json(
                &serde_json::json!({"custom": {"field": "message_count", "op": "gte", "value": 1}}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if preview["count"] == 4 {
            break;
        }
        assert!(started.elapsed() < WAIT, "segment count: {preview}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // 12. What operators see on /metrics.
    let metrics = h.metrics().await;
    for name in [
        "sembang_ingress_requests_total{outcome=\"accepted\"}",
        "sembang_ingress_requests_total{outcome=\"bad_signature\"}",
        "sembang_engine_events_total{type=\"message\",outcome=\"applied\"}",
        "sembang_engine_events_total{type=\"message\",outcome=\"duplicate\"}",
        // Messages by their WhatsApp type (unknown types share "other").
        "sembang_engine_messages_total{message_type=\"text\",outcome=\"applied\"}",
        "sembang_engine_messages_total{message_type=\"text\",outcome=\"duplicate\"}",
        "sembang_engine_messages_total{message_type=\"image\",outcome=\"applied\"}",
        "sembang_engine_messages_total{message_type=\"other\",outcome=\"applied\"}",
        "sembang_dlq_total{reason=\"malformed_webhook_item\"}",
        "sembang_consumer_lag_records{group=\"engine\"}",
        "sembang_dlq_total{reason=\"malformed_event\"}",
        "sembang_sender_sends_total{outcome=\"sent\"}",
        "sembang_shard_flush_seconds_bucket",
        "sembang_shard_resident_contacts{shard=",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    assert!(!metrics.contains(SITI), "no phone number in metric labels");
    assert_metrics_match_catalogue(&metrics);

    h.stop().await;
}

/// Contacts stored before the changelog existed are backfilled by `sembang contacts
/// reindex`: every stored contact's state is written to crm.contacts.
async fn reindex_backfills_the_changelog(h: Harness) {
    let old = PhoneNumber::parse("0199990000").unwrap();
    let mut contact = sembang::domain::contact::Contact::new(old.clone(), chrono::Utc::now());
    contact.name = Some("Aminah".into());
    h.store.upsert_contact(&contact).await.unwrap();
    let written = sembang::app::reindex_into(&*h.bus, &*h.store, &h.names)
        .await
        .unwrap();
    assert!(written >= 1);
    let change = h
        .find_record(topics::CONTACTS, |m| m.key == old.as_str().as_bytes())
        .await;
    let state = ContactState::decode(&change.payload).unwrap().unwrap();
    assert_eq!(state.name.as_deref(), Some("Aminah"));
    assert_eq!(
        state.updated_at.timestamp_millis(),
        contact.updated_at.timestamp_millis()
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_reindex_backfills_the_changelog() {
    reindex_backfills_the_changelog(Harness::embedded().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_stack_reindex_backfills_the_changelog() {
    let Some(harness) = Harness::real_stack().await else {
        return;
    };
    reindex_backfills_the_changelog(harness).await;
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

/// An IC number a customer types is masked before anything keeps it: the event on
/// wa.inbound, the message row, and the dead letter of an unreadable item.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn typed_ic_numbers_are_masked_before_they_are_stored() {
    let h = Harness::embedded().await;
    h.post(&text(
        SITI,
        "wamid.TYPED-IC",
        T0,
        "IC saya 900101-14-5678, tolong daftar",
    ))
    .await;
    h.message_count_reaches(SITI, 1).await;
    let who = PhoneNumber::parse(SITI).unwrap();
    let row = h
        .store
        .message(&who, "wamid.TYPED-IC")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.body.as_deref(),
        Some("IC saya 900101-**-****, tolong daftar")
    );
    let inbound = h
        .find_record(topics::INBOUND, |m| {
            String::from_utf8_lossy(&m.payload).contains("wamid.TYPED-IC")
        })
        .await;
    let payload = String::from_utf8_lossy(&inbound.payload).to_string();
    assert!(
        !payload.contains("14-5678") && payload.contains("900101-**-****"),
        "{payload}"
    );
    // An unreadable item (no timestamp) carrying an IC: dead-lettered masked.
    let mut body = text(SITI, "wamid.TYPED-IC-2", T0 + 1, "900101145678");
    body["entry"][0]["changes"][0]["value"]["messages"][0]
        .as_object_mut()
        .unwrap()
        .remove("timestamp");
    let bytes = serde_json::to_vec(&body).unwrap();
    let (code, _) = h
        .post_raw(&bytes, Some(sign(APP_SECRET.as_bytes(), &bytes)))
        .await;
    assert_eq!(code, 200);
    let dead = h
        .find_record(topics::DEAD_LETTER, |m| {
            String::from_utf8_lossy(&m.payload).contains("wamid.TYPED-IC-2")
        })
        .await;
    let payload = String::from_utf8_lossy(&dead.payload).to_string();
    assert!(!payload.contains("145678"), "{payload}");
    h.stop().await;
}

/// A START stamped a year ahead is taken as received now, so the STOP sent after it wins;
/// and a table configured without an opt-out rule still unsubscribes on STOP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opt_out_wins_over_future_stamps_and_configuration() {
    let h = Harness::embedded_tuned(
        false,
        |store| store,
        |config| {
            config
                .engine
                .auto_replies
                .retain(|rule| rule.action != sembang::domain::auto_reply::ReplyAction::OptOut);
        },
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    h.post(&text(
        SITI,
        "wamid.FUTURE-START",
        now + 365 * 86_400,
        "START",
    ))
    .await;
    h.contact_where(SITI, "subscribed", |c| c["marketing_opt_in"] == true)
        .await;
    // A second later by the clock (timestamps are whole seconds).
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let later = chrono::Utc::now().timestamp();
    h.post(&text(SITI, "wamid.LATER-STOP", later, "STOP")).await;
    let contact = h
        .contact_where(SITI, "unsubscribed by the later STOP", |c| {
            c["whatsapp_status"] == "unsubscribed"
        })
        .await;
    assert_eq!(contact["marketing_opt_in"], false);
    let sent = h.sent_reaches(2).await;
    assert!(sent[1].1.contains("unsubscribed"), "{}", sent[1].1);

    // A reply queued before the STOP and reaching the sender after it is not sent: the
    // sender checks consent when the message goes.
    use sembang::topics::outbound::{Origin, OutboundContent, OutboundRequest};
    let queued = OutboundRequest {
        request_id: "reply:wamid.BEFORE-STOP".into(),
        phone_number_id: "106540352242922".into(),
        business_number: "60321611234".into(),
        to: PhoneNumber::parse(SITI).unwrap(),
        content: OutboundContent::Text {
            body: "queued before the STOP".into(),
            preview_url: false,
        },
        origin: Origin::AutoReply,
        rule: Some("help".into()),
        campaign_id: None,
        in_reply_to: Some("wamid.BEFORE-STOP".into()),
        created_at: chrono::Utc::now() - chrono::Duration::seconds(30),
    };
    h.bus
        .producer()
        .send(Record::new(
            h.names.name(topics::OUTBOUND),
            SITI.as_bytes().to_vec(),
            serde_json::to_vec(&queued).unwrap(),
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !h
        .metrics()
        .await
        .contains("sembang_sender_sends_total{outcome=\"suppressed\"} 1")
    {
        assert!(tokio::time::Instant::now() < deadline, "never suppressed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.sent().await.len(), 2, "nothing sent after the STOP");
    h.stop().await;
}

/// An event larger than Kafka takes (here a 1.2 MB text, under a raised body limit) would be
/// refused on every retry: the webhook still answers 200, the event is in the dead-letter
/// topic with the reason (its payload, too large there as well, replaced by its size), and
/// the next message goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_stack_oversized_event_is_dead_lettered_not_retried() {
    let Some(h) = Harness::real_stack_tuned(|config| {
        config.http.max_body_bytes = 4 * 1024 * 1024;
    })
    .await
    else {
        return;
    };
    let body = "x".repeat(1_200_000);
    h.post(&text(SITI, "wamid.HUGE-1", T0, &body)).await;
    let dead = h
        .find_record(topics::DEAD_LETTER, |m| {
            m.key == SITI.as_bytes() && m.header(HEADER_ERROR_KIND) == Some(&b"output_refused"[..])
        })
        .await;
    assert_eq!(
        dead.header(HEADER_ORIGINAL_TOPIC),
        Some(h.names.name(topics::INBOUND).as_bytes())
    );
    let omitted: usize = String::from_utf8_lossy(dead.header(HEADER_PAYLOAD_OMITTED).unwrap())
        .parse()
        .unwrap();
    assert!(omitted > 1_200_000, "{omitted}");
    let reason = String::from_utf8_lossy(dead.header(HEADER_ERROR).unwrap()).to_string();
    assert!(reason.contains("message.max.bytes"), "{reason}");

    h.post(&text(SITI, "wamid.HUGE-2", T0 + 10, "hello")).await;
    h.message_count_reaches(SITI, 1).await;
    h.stop().await;
}

/// What /metrics exposes after the scenario is exactly the catalogue (src/metrics/catalog.rs),
/// kind included, less the metrics only faults, OCR or uploads record, none of which this
/// scenario has.
fn assert_metrics_match_catalogue(exposition: &str) {
    use sembang::metrics::catalog::{Kind, ALL};
    const NOT_IN_THIS_SCENARIO: [&str; 22] = [
        // No business number is configured here (tests/observability.rs sees it).
        "sembang_sender_rate_limit_per_second",
        "sembang_media_uploads_total",
        // Campaigns have their own scenario (tests/campaigns.rs checks these).
        "sembang_campaign_recipients_planned_total",
        "sembang_campaign_plan_seconds",
        "sembang_campaign_sends_total",
        "sembang_campaign_send_queue",
        "sembang_campaign_clicks_total",
        "sembang_messaging_limit_remaining",
        "sembang_engine_retries_total",
        "sembang_shard_evicted_contacts_total",
        "sembang_shard_abandoned_contacts_total",
        "sembang_shard_abandoned_records_total",
        "sembang_actor_restarts_total",
        "sembang_sink_write_errors_total",
        "sembang_provider_errors_total",
        "sembang_ocr_seconds",
        "sembang_ocr_confidence",
        "sembang_ocr_outcomes_total",
        "sembang_ocr_jobs_in_flight",
        "sembang_ocr_queue_depth",
        "sembang_ocr_pauses_total",
        "sembang_ocr_partitions_paused",
    ];
    let exposed: std::collections::BTreeMap<&str, &str> = exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .collect();
    for (name, kind) in &exposed {
        let metric = ALL
            .iter()
            .find(|m| m.name == *name)
            .unwrap_or_else(|| panic!("{name} is exposed but not in the catalogue"));
        let expected = match metric.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            // Durations get buckets; counts are summaries (src/metrics/mod.rs).
            Kind::Histogram if name.ends_with("_seconds") => "histogram",
            Kind::Histogram => "summary",
        };
        assert_eq!(*kind, expected, "{name}");
    }
    let mut missing: Vec<&str> = ALL
        .iter()
        .map(|m| m.name)
        .filter(|name| !exposed.contains_key(name) && !NOT_IN_THIS_SCENARIO.contains(name))
        .collect();
    missing.sort_unstable();
    assert!(
        missing.is_empty(),
        "catalogued but not exposed: {missing:?}"
    );
}
