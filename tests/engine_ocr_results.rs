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
    h.stop().await;
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
