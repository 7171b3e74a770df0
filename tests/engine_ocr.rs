//! The OCR loop end to end: a WhatsApp image message of a MyKad and one of a receipt
//! (committed synthetic photos, served as Cloud API media by the fake), through the OCR
//! role (download, OpenCV, Tesseract, parsing, IC protection and linking, receipt claims),
//! back through the contact's shard: the profile and the purchase stored, the OCR events in
//! the sink, the confirmations at the fake Cloud API. A second photo of the same receipt
//! counts nothing; a corrupt photo gets a request for a clearer one. Embedded default and
//! real stack.

mod support;

use std::path::PathBuf;

use serde_json::{json, Value};

use sembang::config::Role;
use sembang::domain::phone::PhoneNumber;
use sembang::storage::bus::dead_letter;
use sembang::storage::sink::EventTable;
use sembang::topics;

use support::engine::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ocr")
            .join(name),
    )
    .unwrap()
}

fn truth(file: &str) -> Value {
    let all: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocr/truth.json"),
        )
        .unwrap(),
    )
    .unwrap();
    all.into_iter().find(|t| t["file"] == file).unwrap()
}

fn image(from: &str, wamid: &str, at: i64, media_id: &str) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{ "profile": { "name": "Pelanggan" }, "wa_id": from }],
        "messages": [{ "from": from, "id": wamid, "timestamp": at.to_string(), "type": "image",
                       "image": { "id": media_id, "mime_type": "image/jpeg", "sha256": "x" } }]
    }))
}

fn with_ocr(config: &mut sembang::config::Config) {
    if !config.engine.roles.contains(&Role::Ocr) {
        config.engine.roles.push(Role::Ocr);
    }
    config.ocr.max_media_bytes = 4 * 1024 * 1024;
}

/// Uploads the MyKad photo `file` for `phone` through the admin API (accepted: 202) and
/// returns the contact once registered.
async fn register_by_upload(h: &Harness, phone: &str, file: &str) -> Value {
    let answer = h
        .http
        .post(format!("{}/api/contacts/{phone}/media", h.base))
        .body(fixture(file))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    h.contact_where(phone, "registered from an upload", |c| {
        c["ic_number"].is_string()
    })
    .await
}

async fn scenario(h: Harness) {
    let Replies::Fake(fake) = &h.replies else {
        panic!("the OCR loop needs the fake Cloud API for media")
    };
    fake.add_media("1001", fixture("card-0002.jpg"), "image/jpeg");
    fake.add_media("1002", fixture("receipt-0002.jpg"), "image/jpeg");
    fake.add_media(
        "1003",
        {
            // The same receipt photographed again: other bytes, same merchant, number, total.
            let mut bytes = fixture("receipt-0002.jpg");
            bytes.extend_from_slice(b"trailing bytes after the JPEG end marker");
            bytes
        },
        "image/jpeg",
    );
    fake.add_media(
        "1004",
        b"\xFF\xD8\xFF\xE0 this is not really a jpeg".repeat(50),
        "image/jpeg",
    );
    fake.add_media(
        "1005",
        {
            let mut bytes = fixture("card-0002.jpg");
            bytes.resize(5 * 1024 * 1024, 0);
            bytes
        },
        "image/jpeg",
    );
    // A PNG header that claims 50,000 x 50,000 pixels: refused before any decoding.
    fake.add_media(
        "1006",
        support::png_header(50_000, 50_000, 1_000),
        "image/png",
    );
    // A strip under the pixel limit that would explode when scaled up: refused and kept.
    fake.add_media(
        "1008",
        support::png_header(60, 1_000_000, 1_000),
        "image/png",
    );
    let card = truth("card-0002.jpg");
    let receipt = truth("receipt-0002.jpg");
    let who = PhoneNumber::parse(SITI).unwrap();

    // The MyKad: registered, with the number protected and the fields from the card.
    h.post(&image(SITI, "wamid.OCR-E2E-1", T0, "1001")).await;
    let contact = h
        .contact_where(SITI, "registered", |c| c["ic_number"].is_string())
        .await;
    let ic = card["ic"].as_str().unwrap();
    assert_eq!(contact["ic_number"], format!("{}-**-****", &ic[..6]));
    assert_eq!(contact["gender"], card["gender"]);
    assert_eq!(contact["date_of_birth"], card["birth_date"]);
    assert_eq!(contact["name"], card["name"]);
    let sent = h.sent_reaches(1).await;
    assert!(
        sent[0].1.contains("registered") && !sent[0].1.contains(&ic[8..]),
        "{}",
        sent[0].1
    );
    let stored = h.store.load_contact(&who).await.unwrap().unwrap();
    let protected = stored.ic.unwrap();
    assert!(
        !protected.ciphertext.windows(12).any(|w| w == ic.as_bytes()),
        "never in clear"
    );

    // The receipt: a counted purchase with the total on the receipt.
    h.post(&image(SITI, "wamid.OCR-E2E-2", T0 + 10, "1002"))
        .await;
    let contact = h
        .contact_where(SITI, "a purchase", |c| c["purchase_count"] == 1)
        .await;
    assert_eq!(contact["total_spent"], receipt["total"]);
    let sent = h.sent_reaches(2).await;
    assert!(
        sent[1]
            .1
            .contains(&format!("RM {}", receipt["total"].as_str().unwrap())),
        "{}",
        sent[1].1
    );

    // The same receipt again (another photo): not counted twice, and the customer is told.
    h.post(&image(SITI, "wamid.OCR-E2E-3", T0 + 20, "1003"))
        .await;
    let sent = h.sent_reaches(3).await;
    assert!(sent[2].1.contains("already recorded"), "{}", sent[2].1);
    assert_eq!(h.contact(SITI).await.unwrap()["purchase_count"], 1);

    // A corrupt photo: asked for a clearer one.
    h.post(&image(SITI, "wamid.OCR-E2E-4", T0 + 30, "1004"))
        .await;
    let sent = h.sent_reaches(4).await;
    assert!(sent[3].1.contains("clearer photo"), "{}", sent[3].1);

    // Over the size limit (refused while it streams) and a decompression bomb (refused from
    // its header): each answered with the reason; the too-large one is also dead-lettered.
    h.post(&image(SITI, "wamid.OCR-E2E-5", T0 + 40, "1005"))
        .await;
    let sent = h.sent_reaches(5).await;
    assert!(sent[4].1.contains("larger than 4 MB"), "{}", sent[4].1);
    h.post(&image(SITI, "wamid.OCR-E2E-6", T0 + 50, "1006"))
        .await;
    let sent = h.sent_reaches(6).await;
    assert!(
        sent[5].1.contains("clearer photo") && sent[5].1.contains("pixels"),
        "{}",
        sent[5].1
    );
    // A poison photo is dead-lettered with its reason, and the customer gets a plain phrase.
    h.post(&image(SITI, "wamid.OCR-E2E-STRIP", T0 + 55, "1008"))
        .await;
    let sent = h.sent_reaches(7).await;
    assert!(sent[6].1.contains("too long and narrow"), "{}", sent[6].1);
    assert!(
        !sent[6].1.contains("1000000"),
        "no technical detail: {}",
        sent[6].1
    );
    let strip = h
        .find_record(topics::DEAD_LETTER, |m| {
            String::from_utf8_lossy(&m.payload).contains("OCR-E2E-STRIP")
        })
        .await;
    assert_eq!(
        strip.header(dead_letter::HEADER_ERROR_KIND),
        Some(&b"misshapen"[..])
    );
    let dead = h
        .find_record(topics::DEAD_LETTER, |m| {
            String::from_utf8_lossy(&m.payload).contains("OCR-E2E-5")
        })
        .await;
    assert_eq!(
        dead.header(dead_letter::HEADER_ERROR_KIND)
            .map(|r| String::from_utf8_lossy(r).to_string()),
        Some("too_large".into())
    );

    // Staff upload another customer's MyKad through the admin API: the same flow, from
    // the object store instead of WhatsApp media.
    let walk_in = "60198765432";
    let walk_in_card = truth("card-0001.jpg");
    let contact = register_by_upload(&h, walk_in, "card-0001.jpg").await;
    assert_eq!(contact["date_of_birth"], walk_in_card["birth_date"]);
    assert_eq!(contact["name"], walk_in_card["name"]);
    let sent = h.sent_reaches(8).await;
    assert_eq!(sent[7].0, walk_in);
    assert!(sent[7].1.contains("registered"), "{}", sent[7].1);

    // Siti's receipt photo forwarded by another customer: the receipt is hers, so it does
    // not count for them, and they are told.
    let forwarder = "60167778888";
    h.post(&image(forwarder, "wamid.OCR-E2E-8", T0 + 60, "1002"))
        .await;
    let sent = h.sent_reaches(9).await;
    assert_eq!(sent[8].0, forwarder);
    assert!(sent[8].1.contains("already recorded"), "{}", sent[8].1);
    let contact = h.contact(forwarder).await.unwrap();
    assert_eq!(contact["purchase_count"], 0, "{contact}");
    assert_eq!(contact["total_spent"], "0.00");

    // Every attempt is an analytics event, with the IC masked in its fields.
    h.events_reach(EventTable::OcrResults, 9).await;
    let events = h
        .reader
        .fetch_events(EventTable::OcrResults, 10)
        .await
        .unwrap();
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(ic), "no clear IC number in the OCR events");
    h.events_reach(EventTable::Purchases, 1).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_register_and_record_purchases_on_the_embedded_default() {
    scenario(Harness::embedded_tuned(true, |store| store, with_ocr).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_register_and_record_purchases_on_the_real_stack() {
    let Some(h) = Harness::real_stack_tuned(with_ocr).await else {
        return;
    };
    scenario(h).await;
}

/// The value of `metric` for this OCR role's consumer group in a /metrics text.
fn ocr_metric(metrics: &str, metric: &str, group: &str) -> Option<f64> {
    let prefix = format!("{metric}{{group=\"{group}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

/// With photos arriving faster than the pool reads them (a slow media host), the OCR role
/// pauses its partitions once its jobs in flight reach the limit, resumes them as jobs
/// finish, and every photo is read and answered in the end.
async fn backpressure(h: Harness) {
    let Replies::Fake(fake) = &h.replies else {
        unreachable!()
    };
    fake.add_media("1007", fixture("card-0003.jpg"), "image/jpeg");
    fake.set_media_delay(std::time::Duration::from_millis(700));
    let group = h.names.group("ocr");
    let photos = 6;
    for i in 0..photos {
        h.post(&image(
            &format!("6012300000{i}"),
            &format!("wamid.FLOW-{i}"),
            T0 + i64::from(i),
            "1007",
        ))
        .await;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen_paused = false;
    loop {
        let metrics = h.metrics().await;
        if ocr_metric(&metrics, "sembang_ocr_partitions_paused", &group).is_some_and(|v| v > 0.0) {
            seen_paused = true;
        }
        if h.sent().await.len() >= photos as usize {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every photo was answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        seen_paused,
        "the partitions were paused while the role was full"
    );
    let sent = h.sent_reaches(photos as usize).await;
    assert_eq!(
        sent.len(),
        photos as usize,
        "one answer per photo, none twice"
    );
    assert!(sent.iter().all(|s| s.1.contains("registered")), "{sent:?}");
    // Drained: resumed.
    let metrics = h.metrics().await;
    assert_eq!(
        ocr_metric(&metrics, "sembang_ocr_partitions_paused", &group),
        Some(0.0)
    );
    assert!(ocr_metric(&metrics, "sembang_ocr_pauses_total", &group).unwrap() >= 1.0);
    assert!(
        metrics.contains("sembang_ocr_queue_depth "),
        "the pool's queue depth is reported"
    );
    h.stop().await;
}

/// One worker: at most two jobs in flight.
fn with_one_ocr_worker(config: &mut sembang::config::Config) {
    with_ocr(config);
    config.ocr.workers = 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_ocr_role_pauses_its_partitions_and_loses_nothing() {
    let namespace = support::unique_name("ocrflow");
    let h = Harness::embedded_tuned(
        true,
        |store| store,
        |config| {
            with_one_ocr_worker(config);
            config.bus.namespace = namespace.clone();
        },
    )
    .await;
    backpressure(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_ocr_role_pauses_its_kafka_partitions_and_loses_nothing() {
    let Some(h) = Harness::real_stack_tuned(with_one_ocr_worker).await else {
        return;
    };
    backpressure(h).await;
}

/// The embedded default sends through the sandbox provider and has no business number
/// configured: a photo uploaded through the admin API still registers the customer and
/// gets its confirmation (its reply needs a bus key all the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_register_customers_on_the_embedded_default() {
    let h = Harness::embedded_tuned(
        false,
        |store| store,
        |config| {
            with_ocr(config);
            // As config/embedded.toml has it.
            config.whatsapp.phone_number_id = "106540352242922".into();
        },
    )
    .await;
    let contact = register_by_upload(&h, SITI, "card-0001.jpg").await;
    assert_eq!(contact["name"], truth("card-0001.jpg")["name"]);
    let sent = h.sent_reaches(1).await;
    assert_eq!(sent[0].0, SITI);
    assert!(sent[0].1.contains("registered"), "{}", sent[0].1);
    h.stop().await;
}

/// A photo whose reading killed the process twice (left unfinished in the attempt journal,
/// as a native crash would leave it) is dead-lettered unread on its next delivery, and the
/// customer is answered; the next photo is read as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_photo_that_crashed_the_process_is_dead_lettered_not_read_again() {
    use sembang::engine::ocr_attempts::{AttemptJournal, MAX_CRASHES};
    let h = Harness::embedded_tuned(
        true,
        |store| store,
        |config| {
            with_ocr(config);
            let path = std::path::Path::new(&config.data_dir).join("ocr-attempts.redb");
            let journal = AttemptJournal::open(&path).unwrap();
            for _ in 0..MAX_CRASHES {
                journal.start("wamid.POISON").unwrap();
            }
        },
    )
    .await;
    let Replies::Fake(fake) = &h.replies else {
        unreachable!()
    };
    fake.add_media("2001", fixture("card-0002.jpg"), "image/jpeg");
    h.post(&image(SITI, "wamid.POISON", T0, "2001")).await;
    let dead = h
        .find_record(topics::DEAD_LETTER, |m| {
            String::from_utf8_lossy(&m.payload).contains("wamid.POISON")
        })
        .await;
    assert_eq!(
        dead.header(dead_letter::HEADER_ERROR_KIND),
        Some(&b"poison_photo"[..])
    );
    let sent = h.sent_reaches(1).await;
    assert!(sent[0].1.contains("could not be read"), "{}", sent[0].1);
    // The same photo under another message is read: only the crashed job is set aside.
    h.post(&image(SITI, "wamid.AFTER", T0 + 10, "2001")).await;
    h.contact_where(SITI, "registered", |c| c["ic_number"].is_string())
        .await;
    h.stop().await;
}

/// Every photo file under `media`, by name.
fn media_files(media: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(media).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            files.push((file.file_name().to_string_lossy().into_owned(), file.path()));
        }
    }
    files
}

/// Photos are encrypted at rest and readable by the process's user only; card photos are
/// kept apart and deleted after their retention, receipts after theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_are_encrypted_at_rest_and_card_photos_expire() {
    use std::os::unix::fs::PermissionsExt;
    // (card retention in hours, photo retention in days): 0 deletes at the next sweep.
    for (retention_hours, photo_days) in [(720, 365), (0, 365), (720, 0)] {
        let h = Harness::embedded_tuned(
            true,
            |store| store,
            |config| {
                with_ocr(config);
                config.media.card_photo_retention_hours = retention_hours;
                config.media.photo_retention_days = photo_days;
                config.media.retention_sweep_secs = 1;
            },
        )
        .await;
        let Replies::Fake(fake) = &h.replies else {
            unreachable!()
        };
        fake.add_media("3001", fixture("card-0002.jpg"), "image/jpeg");
        fake.add_media("3002", fixture("receipt-0002.jpg"), "image/jpeg");
        h.post(&image(SITI, "wamid.KEEP-CARD", T0, "3001")).await;
        h.post(&image(SITI, "wamid.KEEP-RECEIPT", T0 + 10, "3002"))
            .await;
        h.contact_where(SITI, "registered with a purchase", |c| {
            c["ic_number"].is_string() && c["purchase_count"] == 1
        })
        .await;
        let media = std::path::Path::new(&h.config.data_dir).join("media");
        let card_number = truth("card-0002.jpg")["ic"].as_str().unwrap().to_string();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let files = media_files(&media);
            let cards = files.iter().filter(|(n, _)| n.starts_with("card.")).count();
            let receipts = files.len() - cards;
            // The photo retention covers every photo, cards included.
            let expected_cards = usize::from(retention_hours > 0 && photo_days > 0);
            let expected_receipts = usize::from(photo_days > 0);
            if (cards, receipts) == (expected_cards, expected_receipts) {
                for (name, path) in &files {
                    let bytes = std::fs::read(path).unwrap();
                    assert!(bytes.starts_with(b"SBM1"), "{name} is sealed");
                    assert!(!bytes.starts_with(&[0xFF, 0xD8]), "{name} is not a JPEG");
                    let mode = std::fs::metadata(path).unwrap().permissions().mode();
                    assert_eq!(mode & 0o777, 0o600, "{name}");
                    assert!(!bytes
                        .windows(card_number.len())
                        .any(|w| w == card_number.as_bytes()));
                }
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "retention {retention_hours} h, photos {photo_days} days: {files:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        h.stop().await;
    }
}
