//! OCR results (crm.ocr.results) through the engine: a MyKad registers the contact, a
//! receipt records a purchase and moves the tier, each is answered, and a replayed result
//! changes nothing. The results are produced as the OCR role will produce them; the same
//! scenario runs on the embedded default and on the real stack.

mod support;

use chrono::{NaiveDate, Utc};

use sembang::domain::money::Money;
use sembang::domain::mykad::MyKad;
use sembang::domain::phone::PhoneNumber;
use sembang::domain::purchase::PurchaseStatus;
use sembang::pii::IcVault;
use sembang::storage::bus::Record;
use sembang::storage::sink::EventTable;
use sembang::topics;
use sembang::topics::inbound::Business;
use sembang::topics::ocr::{IcLinkOutcome, MyKadReading, OcrOutcome, OcrResult, ReceiptReading};

use support::engine::*;

fn result(job: &str, outcome: OcrOutcome) -> OcrResult {
    OcrResult {
        job_id: job.into(),
        contact: PhoneNumber::parse(SITI).unwrap(),
        business: Business {
            waba_id: "102290129340398".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "60321611234".into(),
        },
        image_sha256: Some("cd".repeat(32)),
        confidence: 88.5,
        outcome,
        completed_at: Utc::now(),
    }
}

fn receipt(id: &str, ringgit: i64) -> OcrOutcome {
    OcrOutcome::Receipt(ReceiptReading {
        purchase_id: id.into(),
        total: Money::from_ringgit(ringgit),
        purchased_on: NaiveDate::from_ymd_opt(2024, 11, 20).unwrap(),
        merchant: Some("AEON Mid Valley".into()),
        receipt_no: Some(format!("R-{id}")),
        item_count: 2,
        parse_confidence: 0.95,
        needs_review: false,
        duplicate_of: None,
    })
}

async fn produce(h: &Harness, result: &OcrResult) {
    h.bus
        .producer()
        .send(Record::new(
            h.names.name(topics::OCR_RESULTS),
            SITI.as_bytes().to_vec(),
            serde_json::to_vec(result).unwrap(),
        ))
        .await
        .unwrap();
}

async fn scenario(h: Harness) {
    // The customer writes first (the image message), then the OCR role's results arrive.
    h.post(&text(SITI, "wamid.OCR-HELLO", T0, "hi")).await;
    h.message_count_reaches(SITI, 1).await;

    let vault = IcVault::new([3; 32], [4; 32]).unwrap();
    let ic = MyKad::parse(
        "900101-14-5678",
        NaiveDate::from_ymd_opt(2025, 11, 25).unwrap(),
    )
    .unwrap();
    let registration = result(
        "wamid.OCR-IC",
        OcrOutcome::MyKad(MyKadReading {
            ic: vault.protect(&ic),
            birth_date: ic.birth_date(),
            gender: ic.gender(),
            state: Some("WP Kuala Lumpur".into()),
            name: Some("SITI NURHALIZA".into()),
            link: IcLinkOutcome::Linked,
        }),
    );
    produce(&h, &registration).await;
    let contact = h
        .contact_where(SITI, "registered", |c| c["ic_number"].is_string())
        .await;
    assert_eq!(contact["ic_number"], "900101-**-****");
    assert_eq!(contact["gender"], "female");
    assert_eq!(contact["state"], "WP Kuala Lumpur");
    assert_eq!(contact["date_of_birth"], "1990-01-01");
    assert_eq!(contact["name"], "SITI NURHALIZA");
    assert!(contact["age"].as_u64().unwrap() >= 35);
    let sent = h.sent_reaches(1).await;
    assert!(sent[0].1.contains("900101-**-****") && !sent[0].1.contains("5678"));

    // Two receipts: RM 300 then RM 250 crosses Silver (RM 500); the second is replayed.
    produce(&h, &result("wamid.OCR-R1", receipt("p-1", 300))).await;
    let second = result("wamid.OCR-R2", receipt("p-2", 250));
    produce(&h, &second).await;
    produce(&h, &second).await;
    // Purchases are stored a step before the contact's row (CQL): wait for both.
    let contact = h
        .contact_where(SITI, "two purchases and the tier", |c| {
            c["purchase_count"] == 2 && c["customer_tier"] != "Bronze"
        })
        .await;
    assert_eq!(contact["total_spent"], "550.00");
    assert_eq!(contact["average_spend"], "275.00");
    assert_eq!(contact["customer_tier"], "Silver");
    let sent = h.sent_reaches(3).await;
    assert!(
        sent[2].1.contains("now Silver"),
        "upgrade message: {}",
        sent[2].1
    );
    let purchases = h
        .store
        .purchases(&PhoneNumber::parse(SITI).unwrap())
        .await
        .unwrap();
    assert_eq!(purchases.len(), 2);
    assert!(purchases
        .iter()
        .all(|p| p.status == PurchaseStatus::Counted));
    h.events_reach(EventTable::Purchases, 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        h.sent().await.len(),
        3,
        "the replayed result was not answered again"
    );
    assert_eq!(h.contact(SITI).await.unwrap()["purchase_count"], 2);
    review_queue(&h).await;
    erasure(&h, &vault, &ic).await;
    h.stop().await;
}

/// A person erased (PDPA) is gone from everywhere: the contact with its IC, the IC link,
/// purchases, messages, the segment index, the analytics events; a later message from the
/// same number starts a new contact with nothing of the old one.
async fn erasure(h: &Harness, vault: &IcVault, ic: &MyKad) {
    let siti = PhoneNumber::parse(SITI).unwrap();
    let hash = vault.keyed_hash(ic);
    h.store.link_ic(&hash, &siti).await.unwrap();
    let segment: serde_json::Value = h
        .http
        .post(format!("{}/api/segments/", h.base))
        .json(&serde_json::json!({"name": "Everyone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let segment = format!(
        "{}/api/segments/{}/",
        h.base,
        segment["id"].as_str().unwrap()
    );
    let count = || async {
        let view: serde_json::Value = h
            .http
            .get(&segment)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        view["count"].as_u64().unwrap()
    };
    let started = std::time::Instant::now();
    while count().await != 1 {
        assert!(started.elapsed() < WAIT, "Siti never counted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    h.events_reach_at_least(EventTable::Purchases, 1).await;

    let answer = h
        .http
        .delete(format!("{}/api/contacts/{SITI}/", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    let started = std::time::Instant::now();
    while h.contact(SITI).await.is_some() {
        assert!(started.elapsed() < WAIT, "the contact stayed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        h.store.purchases(&siti).await.unwrap().is_empty(),
        "purchases"
    );
    assert!(
        h.store.messages(&siti, 100).await.unwrap().is_empty(),
        "messages"
    );
    assert_eq!(
        h.store.find_by_ic(&hash).await.unwrap(),
        None,
        "the IC link"
    );
    while count().await != 0 {
        assert!(started.elapsed() < WAIT, "the segment index kept Siti");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The analytics copies: no event of Siti's left in any table (ClickHouse applies the
    // deletes as mutations, in the background). The audit trail is kept: it is the record
    // of who handled her data, the erasure included, and names her only by pseudonym.
    loop {
        let mut left = Vec::new();
        for table in EventTable::ALL {
            if table == EventTable::PersonalDataAccess {
                continue;
            }
            let count = h
                .reader
                .fetch_events(table, 100_000)
                .await
                .unwrap()
                .iter()
                .filter(|e| e.contact_phone() == Some(&siti))
                .count();
            if count > 0 {
                left.push((table, count));
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "analytics events of Siti stayed: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The erasure itself stays in the audit trail (written after the answer: polled).
    loop {
        let trail = h
            .reader
            .fetch_events(EventTable::PersonalDataAccess, 100_000)
            .await
            .unwrap();
        let recorded = trail.iter().any(|e| {
            matches!(e, sembang::storage::sink::AnalyticsEvent::PersonalDataAccess(a)
                if a.method == "DELETE" && a.contact_phone.as_ref() == Some(&siti) && a.status == 202)
        });
        if recorded {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the erasure is not in the audit trail"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // She writes again: a new contact, nothing of the old one.
    h.post(&text(
        SITI,
        "wamid.AFTER-ERASURE",
        Utc::now().timestamp(),
        "hai",
    ))
    .await;
    let again = h.message_count_reaches(SITI, 1).await;
    assert!(again["ic_number"].is_null(), "{again}");
    assert_eq!(again["purchase_count"], 0);
    assert_eq!(again["total_spent"], "0.00");
}

/// Receipts the OCR could not confirm wait in the review queue; an approval (here with a
/// corrected amount) counts through the shard like any receipt and tells the customer, a
/// rejection never counts, and a purchase decided once cannot be decided again.
async fn review_queue(h: &Harness) {
    let pending = |id: &str, ringgit: i64| {
        let OcrOutcome::Receipt(mut reading) = receipt(id, ringgit) else {
            unreachable!()
        };
        reading.needs_review = true;
        result(&format!("wamid.OCR-{id}"), OcrOutcome::Receipt(reading))
    };
    produce(h, &pending("p-3", 400)).await;
    produce(h, &pending("p-4", 20)).await;
    let queue = |limit: &str| {
        let request = h
            .http
            .get(format!("{}/api/purchases/review/{limit}", h.base));
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status().as_u16(), 200);
            answer.json::<serde_json::Value>().await.unwrap()
        }
    };
    let started = std::time::Instant::now();
    let listed = loop {
        let listed = queue("").await;
        if listed.as_array().unwrap().len() == 2 {
            break listed;
        }
        assert!(
            started.elapsed() < WAIT,
            "the queue never showed both: {listed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(listed[0]["purchase_id"], "p-3", "oldest first: {listed}");
    assert_eq!(listed[0]["phone_number"], SITI);
    assert_eq!(listed[0]["total"], "400.00");
    assert_eq!(listed[1]["purchase_id"], "p-4");
    assert_eq!(queue("?limit=1").await.as_array().unwrap().len(), 1);
    assert_eq!(
        h.contact(SITI).await.unwrap()["total_spent"],
        "550.00",
        "pending receipts do not count"
    );

    let decide = |id: &str, body: serde_json::Value| {
        let request = h
            .http
            .post(format!(
                "{}/api/customers/{SITI}/purchases/{id}/review/",
                h.base
            ))
            .json(&body);
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<serde_json::Value>().await.unwrap())
        }
    };
    for (id, body, status, kind) in [
        (
            "p-4",
            serde_json::json!({"decision": "reject", "amount": "20.00"}),
            400,
            "invalid_review",
        ),
        (
            "p-3",
            serde_json::json!({"decision": "approve", "amount": "0"}),
            400,
            "invalid_review",
        ),
        (
            "p-3",
            serde_json::json!({"decision": "approve", "purchase_date": "2999-01-01"}),
            400,
            "invalid_review",
        ),
        (
            "p-3",
            serde_json::json!({"decision": "maybe"}),
            400,
            "invalid_body",
        ),
        (
            "p-9",
            serde_json::json!({"decision": "approve"}),
            404,
            "no_such_purchase",
        ),
        (
            "p-1",
            serde_json::json!({"decision": "reject"}),
            409,
            "already_reviewed",
        ),
    ] {
        let (got, error) = decide(id, body.clone()).await;
        assert_eq!(
            (got, error["error"]["kind"].clone()),
            (status, serde_json::json!(kind)),
            "{id} {body}: {error}"
        );
    }

    // The customer writes again (inside the 24 h window now, so they can be told); the
    // reviewer reads RM 480.00 where the OCR read 400.00, and approves.
    h.post(&text(
        SITI,
        "wamid.OCR-AGAIN",
        Utc::now().timestamp(),
        "sudah semak?",
    ))
    .await;
    h.message_count_reaches(SITI, 2).await;
    let (status, accepted) = decide(
        "p-3",
        serde_json::json!({"decision": "approve", "amount": "480.00", "merchant": " AEON Bukit Tinggi ", "phone_number_id": "106540352242922"}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "counted");
    let contact = h
        .contact_where(SITI, "the approved receipt counted", |c| {
            c["purchase_count"] == 3
        })
        .await;
    assert_eq!(contact["total_spent"], "1030.00");
    let started = std::time::Instant::now();
    while !h
        .sent()
        .await
        .iter()
        .any(|(_, text, _)| text.contains("checked and counted"))
    {
        if started.elapsed() > WAIT {
            let messages = h
                .http
                .get(format!("{}/api/contacts/{SITI}/messages/", h.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            panic!("the customer was not told: {:?} {messages}", h.sent().await);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stored = h
        .store
        .purchases(&PhoneNumber::parse(SITI).unwrap())
        .await
        .unwrap();
    let p3 = stored.iter().find(|p| p.purchase_id == "p-3").unwrap();
    assert_eq!(
        (p3.status, p3.amount, p3.merchant.as_deref()),
        (
            PurchaseStatus::Counted,
            Money::from_ringgit(480),
            Some("AEON Bukit Tinggi")
        )
    );
    let (status, again) = decide("p-3", serde_json::json!({"decision": "reject"})).await;
    assert_eq!(
        (status, again["error"]["kind"].clone()),
        (409, serde_json::json!("already_reviewed"))
    );

    let (status, _) = decide(
        "p-4",
        serde_json::json!({"decision": "reject", "notify": false, "phone_number_id": "106540352242922"}),
    )
    .await;
    assert_eq!(status, 202);
    let started = std::time::Instant::now();
    while !queue("").await.as_array().unwrap().is_empty() {
        assert!(
            started.elapsed() < WAIT,
            "decided receipts stayed in the queue"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stored = h
        .store
        .purchases(&PhoneNumber::parse(SITI).unwrap())
        .await
        .unwrap();
    let p4 = stored.iter().find(|p| p.purchase_id == "p-4").unwrap();
    assert_eq!(p4.status, PurchaseStatus::Rejected);
    let contact = h.contact(SITI).await.unwrap();
    assert_eq!(
        (
            contact["purchase_count"].clone(),
            contact["total_spent"].clone()
        ),
        (serde_json::json!(3), serde_json::json!("1030.00"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ocr_results_on_the_embedded_default() {
    scenario(Harness::embedded().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ocr_results_on_the_real_stack() {
    let Some(h) = Harness::real_stack().await else {
        return;
    };
    scenario(h).await;
}
