//! The analytics sink's contract, run against every backend: the file sink (default
//! profile) in a temporary directory, and ClickHouse in a fresh database per test
//! (SEMBANG_TEST_CLICKHOUSE; see tests/support).

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sembang::domain::contact::WhatsappStatus;
use sembang::domain::message::DeliveryStatus;
use sembang::domain::money::Money;
use sembang::domain::person::{Gender, MaritalStatus};
use sembang::domain::phone::PhoneNumber;
use sembang::domain::purchase::PurchaseStatus;
use sembang::domain::tier::Tier;
use sembang::pii::pseudonym::PseudonymKey;
use sembang::storage::migrate::{migrate, MigrateError};
use sembang::storage::sink::batcher::FlushReason;
use sembang::storage::sink::{
    AnalyticsEvent, AnalyticsReader, Batcher, BatcherConfig, CampaignSendEvent, ClickHouseConfig,
    ClickHouseSink, ContactSnapshotEvent, CustomerValue, DemographicRow, EventReader, EventSink,
    EventTable, FileSink, FunnelRow, InboundMessageEvent, MessageStatusEvent, OcrOutcomeRow,
    OcrResultEvent, OutboundMessageEvent, PurchaseEvent, RevenueRow, SendOutcome, SinkError,
    ValueBucket, CLICKHOUSE_MIGRATIONS,
};
use sembang::topics::events::{OcrStatus, PersonalDataAccessEvent};
use sembang::topics::ocr::OcrKind;
use sembang::topics::outbound::Origin;
use uuid::Uuid;

/// Hang guard only: every awaited operation is bounded by the sink's own timeouts.
const GUARD: Duration = Duration::from_secs(60);

// ---- backends ----------------------------------------------------------------------------

fn file_sink() -> (tempfile::TempDir, FileSink) {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::open(dir.path().join("events")).unwrap();
    (dir, sink)
}

/// A fresh, migrated database; `None` when the stack is not configured.
async fn clickhouse_sink() -> Option<ClickHouseSink> {
    let url = support::service(support::CLICKHOUSE)?;
    let mut config = ClickHouseConfig::new(url, support::unique_name("sink_test"));
    config.request_timeout = Duration::from_secs(20);
    // As deployed: phone numbers written as pseudonyms.
    config.phone_pseudonyms = Some(PseudonymKey([9; 32]));
    let sink = ClickHouseSink::new(config).unwrap();
    let report = sink.migrate().await.unwrap();
    assert_eq!(report.applied, vec![1, 2, 3, 4]);
    Some(sink)
}

async fn drop_database(sink: &ClickHouseSink) {
    let sql = format!("DROP DATABASE IF EXISTS {}", sink.config().database);
    sink.execute("drop database", &sql).await.unwrap();
}

async fn clickhouse_count(sink: &ClickHouseSink, sql: &str) -> u64 {
    let sql = sql.replace("{db}", &sink.config().database);
    sink.client().query(&sql).fetch_one::<u64>().await.unwrap()
}

// ---- fixtures ----------------------------------------------------------------------------

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("601234567{n:02}")).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x5e4b_0000_0000_4000_8000_0000_0000_0000 | n)
}

const BUSINESS: &str = "60362001234";
const UNICODE: &str = "Terima kasih! 谢谢 நன்றி 🙏 — \"quoted\", back\\slash, tab\tend";

fn inbound(n: u128, t: &str, contact: u32, campaign: Option<&str>) -> AnalyticsEvent {
    InboundMessageEvent {
        event_id: id(n),
        occurred_at: at(t),
        contact_phone: phone(contact),
        business_number: BUSINESS.into(),
        wamid: format!("wamid.in{n}"),
        message_type: "text".into(),
        text: Some("Ya, saya berminat".into()),
        context_wamid: campaign.map(|c| format!("wamid.{c}.{contact}")),
        campaign_id: campaign.map(str::to_string),
    }
    .into()
}

fn status(
    n: u128,
    t: &str,
    contact: u32,
    campaign: Option<&str>,
    status: DeliveryStatus,
) -> AnalyticsEvent {
    MessageStatusEvent {
        event_id: id(n),
        occurred_at: at(t),
        contact_phone: phone(contact),
        business_number: BUSINESS.into(),
        wamid: format!("wamid.out{contact}"),
        status,
        campaign_id: campaign.map(str::to_string),
        error_code: (status == DeliveryStatus::Failed).then_some(131_026),
        error_title: (status == DeliveryStatus::Failed).then(|| "Message undeliverable".into()),
    }
    .into()
}

#[allow(clippy::too_many_arguments)]
fn purchase(
    n: u128,
    t: &str,
    contact: u32,
    purchase_id: &str,
    purchase_date: NaiveDate,
    total_sen: i64,
    status: PurchaseStatus,
    campaign: Option<&str>,
) -> AnalyticsEvent {
    PurchaseEvent {
        event_id: id(n),
        occurred_at: at(t),
        contact_phone: phone(contact),
        business_number: BUSINESS.into(),
        purchase_id: purchase_id.into(),
        purchase_date,
        merchant: Some("AEON Big".into()),
        receipt_no: Some(format!("R-{purchase_id}")),
        total: Money::from_sen(total_sen),
        item_count: 3,
        status,
        ocr_confidence: Some(88.5),
        campaign_id: campaign.map(str::to_string),
    }
    .into()
}

fn send(n: u128, t: &str, contact: u32, campaign: &str, outcome: SendOutcome) -> AnalyticsEvent {
    CampaignSendEvent {
        event_id: id(n),
        occurred_at: at(t),
        campaign_id: campaign.into(),
        contact_phone: phone(contact),
        business_number: BUSINESS.into(),
        outcome,
        template_name: Some("raya_promo".into()),
        wamid: (outcome == SendOutcome::Sent).then(|| format!("wamid.{campaign}.{contact}")),
        skip_reason: (outcome == SendOutcome::Skipped).then(|| "opted_out".into()),
        error_code: (outcome == SendOutcome::Failed).then_some(131_026),
        revenue: None,
    }
    .into()
}

#[allow(clippy::too_many_arguments)]
fn snapshot(
    n: u128,
    t: &str,
    contact: u32,
    gender: Option<Gender>,
    age: Option<u8>,
    state: Option<&str>,
    tier: Tier,
) -> AnalyticsEvent {
    ContactSnapshotEvent {
        event_id: id(n),
        occurred_at: at(t),
        contact_phone: phone(contact),
        gender,
        age,
        state: state.map(str::to_string),
        marital_status: None,
        tier,
        total_spent: Money::from_sen(10_000),
        purchase_count: 1,
        whatsapp_status: WhatsappStatus::Active,
        marketing_opt_in: true,
        ic_masked: None,
        reason: "purchase".into(),
    }
    .into()
}

/// One event per table with every field set, one with every optional field empty.
fn full_rows() -> Vec<AnalyticsEvent> {
    vec![
        InboundMessageEvent {
            event_id: id(1),
            occurred_at: at("2024-02-29T23:59:59.750Z"),
            contact_phone: phone(1),
            business_number: BUSINESS.into(),
            wamid: "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQUE=".into(),
            message_type: "button".into(),
            text: Some(format!("{UNICODE} IC saya 900101-14-5678")),
            context_wamid: Some("wamid.campaign.1".into()),
            campaign_id: Some("raya-2024".into()),
        }
        .into(),
        OutboundMessageEvent {
            event_id: id(2),
            occurred_at: at("2024-03-01T00:00:00Z"),
            contact_phone: phone(1),
            business_number: BUSINESS.into(),
            wamid: Some("wamid.out.2".into()),
            message_type: "template".into(),
            template_name: Some("raya_promo".into()),
            body: Some(UNICODE.into()),
            campaign_id: Some("raya-2024".into()),
            origin: Origin::Campaign,
        }
        .into(),
        MessageStatusEvent {
            event_id: id(3),
            occurred_at: at("2024-03-01T00:00:01Z"),
            contact_phone: phone(1),
            business_number: BUSINESS.into(),
            wamid: "wamid.out.2".into(),
            status: DeliveryStatus::Failed,
            campaign_id: Some("raya-2024".into()),
            error_code: Some(131_049),
            error_title: Some("Healthy ecosystem engagement — ditolak".into()),
        }
        .into(),
        PurchaseEvent {
            event_id: id(4),
            occurred_at: at("2024-03-01T00:00:02Z"),
            contact_phone: phone(1),
            business_number: BUSINESS.into(),
            purchase_id: "pur-4".into(),
            purchase_date: date(2024, 2, 29),
            merchant: Some("Kedai Runcit Ah Seng 亚成杂货店".into()),
            receipt_no: Some("INV-0001/24".into()),
            total: Money::from_sen(123_456_789_012),
            item_count: 12,
            status: PurchaseStatus::PendingReview,
            ocr_confidence: Some(91.25),
            campaign_id: Some("raya-2024".into()),
        }
        .into(),
        OcrResultEvent {
            event_id: id(5),
            occurred_at: at("2024-03-01T00:00:03Z"),
            contact_phone: phone(1),
            media_id: "media-5".into(),
            kind: OcrKind::Ic,
            status: OcrStatus::Parsed,
            confidence: 87.75,
            duration_ms: 1234,
            fields_json:
                r#"{"ic":"900101145678","name":"SITI BINTI ALI","address":"No 1, Jalan 雪兰莪"}"#
                    .into(),
            error: Some("low contrast".into()),
        }
        .into(),
        ContactSnapshotEvent {
            event_id: id(6),
            occurred_at: at("2024-03-01T00:00:04Z"),
            contact_phone: phone(1),
            gender: Some(Gender::Female),
            age: Some(34),
            state: Some("Wilayah Persekutuan Kuala Lumpur".into()),
            marital_status: Some(MaritalStatus::Married),
            tier: Tier::Platinum,
            total_spent: Money::from_sen(-5),
            purchase_count: 42,
            whatsapp_status: WhatsappStatus::Unsubscribed,
            marketing_opt_in: true,
            ic_masked: Some("900101-**-****".into()),
            reason: "registered".into(),
        }
        .into(),
        CampaignSendEvent {
            event_id: id(7),
            occurred_at: at("2024-03-01T00:00:05Z"),
            campaign_id: "raya-2024".into(),
            contact_phone: phone(1),
            business_number: BUSINESS.into(),
            outcome: SendOutcome::Failed,
            template_name: Some("raya_promo".into()),
            wamid: Some("wamid.out.7".into()),
            skip_reason: Some("n/a".into()),
            error_code: Some(131_026),
            revenue: None,
        }
        .into(),
        PersonalDataAccessEvent {
            event_id: id(8),
            occurred_at: at("2024-03-01T00:00:06Z"),
            key_id: "key-0123456789ab".into(),
            role: "viewer".into(),
            method: "GET".into(),
            route: "/api/contacts/{phone}/".into(),
            query: Some("q=900101-14-5678".into()),
            contact_phone: Some(phone(1)),
            status: 200,
        }
        .into(),
    ]
}

fn sparse_rows() -> Vec<AnalyticsEvent> {
    let t = at("2024-03-02T08:00:00Z");
    vec![
        InboundMessageEvent {
            event_id: id(11),
            occurred_at: t,
            contact_phone: phone(2),
            business_number: BUSINESS.into(),
            wamid: "wamid.11".into(),
            message_type: "image".into(),
            text: None,
            context_wamid: None,
            campaign_id: None,
        }
        .into(),
        OutboundMessageEvent {
            event_id: id(12),
            occurred_at: t,
            contact_phone: phone(2),
            business_number: BUSINESS.into(),
            wamid: None,
            message_type: "text".into(),
            template_name: None,
            body: None,
            campaign_id: None,
            origin: Origin::AutoReply,
        }
        .into(),
        MessageStatusEvent {
            event_id: id(13),
            occurred_at: t,
            contact_phone: phone(2),
            business_number: BUSINESS.into(),
            wamid: "wamid.12".into(),
            status: DeliveryStatus::Read,
            campaign_id: None,
            error_code: None,
            error_title: None,
        }
        .into(),
        PurchaseEvent {
            event_id: id(14),
            occurred_at: t,
            contact_phone: phone(2),
            business_number: BUSINESS.into(),
            purchase_id: "pur-14".into(),
            purchase_date: date(1970, 1, 1),
            merchant: None,
            receipt_no: None,
            total: Money::ZERO,
            item_count: 0,
            status: PurchaseStatus::Counted,
            ocr_confidence: None,
            campaign_id: None,
        }
        .into(),
        OcrResultEvent {
            event_id: id(15),
            occurred_at: t,
            contact_phone: phone(2),
            media_id: "media-15".into(),
            kind: OcrKind::Unknown,
            status: OcrStatus::Failed,
            confidence: 0.0,
            duration_ms: 0,
            fields_json: "{}".into(),
            error: None,
        }
        .into(),
        ContactSnapshotEvent {
            event_id: id(16),
            occurred_at: t,
            contact_phone: phone(2),
            gender: None,
            age: None,
            state: None,
            marital_status: None,
            tier: Tier::Bronze,
            total_spent: Money::ZERO,
            purchase_count: 0,
            whatsapp_status: WhatsappStatus::Active,
            marketing_opt_in: false,
            ic_masked: None,
            reason: "first_message".into(),
        }
        .into(),
        CampaignSendEvent {
            event_id: id(17),
            occurred_at: t,
            campaign_id: "cny-2024".into(),
            contact_phone: phone(2),
            business_number: BUSINESS.into(),
            outcome: SendOutcome::Queued,
            template_name: None,
            wamid: None,
            skip_reason: None,
            error_code: None,
            revenue: None,
        }
        .into(),
        PersonalDataAccessEvent {
            event_id: id(18),
            occurred_at: t,
            key_id: "open".into(),
            role: "admin".into(),
            method: "GET".into(),
            route: "/api/contacts/".into(),
            query: None,
            contact_phone: None,
            status: 403,
        }
        .into(),
    ]
}

const RAYA: &str = "raya-2024";
const CNY: &str = "cny-2024";
// Contacts A..E.
const A: u32 = 1;
const B: u32 = 2;
const C: u32 = 3;
const D: u32 = 4;
const E: u32 = 5;

/// The data behind the funnel, revenue and demographics expectations below. Day 1 is
/// 2024-03-01 in Malaysia (UTC+8), day 2 is 2024-03-02.
#[rustfmt::skip]
fn view_fixture() -> Vec<AnalyticsEvent> {
    use DeliveryStatus::*;
    use PurchaseStatus::*;
    vec![
        // Campaign sends.
        send(101, "2024-03-01T02:00:00Z", A, RAYA, SendOutcome::Sent),
        send(102, "2024-03-01T02:00:01Z", B, RAYA, SendOutcome::Sent),
        send(103, "2024-03-01T02:00:02Z", C, RAYA, SendOutcome::Skipped),
        send(104, "2024-03-01T02:00:03Z", D, RAYA, SendOutcome::Failed),
        send(105, "2024-03-02T01:00:00Z", D, CNY, SendOutcome::Sent),
        // Statuses of campaign messages (B's delivered reported twice, as WhatsApp does).
        status(201, "2024-03-01T02:01:00Z", A, Some(RAYA), Delivered),
        status(202, "2024-03-01T02:05:00Z", A, Some(RAYA), Read),
        status(203, "2024-03-01T02:01:00Z", B, Some(RAYA), Delivered),
        status(204, "2024-03-01T02:01:30Z", B, Some(RAYA), Delivered),
        // 16:30 UTC is 00:30 the next day in Malaysia.
        status(205, "2024-03-01T16:30:00Z", B, Some(RAYA), Read),
        status(206, "2024-03-01T02:00:04Z", D, Some(RAYA), Failed),
        status(207, "2024-03-01T03:00:00Z", C, None, Delivered),
        // Replies.
        inbound(301, "2024-03-01T03:00:00Z", A, Some(RAYA)),
        inbound(302, "2024-03-01T03:10:00Z", C, None),
        // Purchases.
        purchase(401, "2024-03-01T04:00:00Z", A, "P1", date(2024, 3, 1), 12_050, Counted, Some(RAYA)),
        purchase(402, "2024-03-01T10:00:00Z", B, "P2", date(2024, 3, 1), 4_560, PendingReview, Some(RAYA)),
        purchase(403, "2024-03-02T03:00:00Z", B, "P2", date(2024, 3, 1), 4_560, Counted, Some(RAYA)),
        purchase(404, "2024-03-01T05:00:00Z", C, "P3", date(2024, 3, 1), 30, Counted, None),
        purchase(405, "2024-03-03T05:00:00Z", C, "P3", date(2024, 3, 1), 30, Rejected, None),
        purchase(406, "2024-03-02T05:00:00Z", D, "P4", date(2024, 3, 2), 9_999, Counted, Some(CNY)),
        purchase(407, "2024-03-01T06:00:00Z", A, "P5", date(2024, 3, 1), 20, Counted, None),
        purchase(408, "2024-03-01T07:00:00Z", E, "P6", date(2024, 2, 29), 1_000, Rejected, None),
        // A misread receipt date, corrected on review.
        purchase(409, "2024-03-02T08:00:00Z", E, "P7", date(2024, 3, 2), 500, PendingReview, None),
        purchase(410, "2024-03-02T09:00:00Z", E, "P7", date(2024, 3, 1), 500, Counted, None),
        // Contact snapshots.
        snapshot(501, "2024-03-01T04:00:00Z", A, Some(Gender::Male), Some(30), Some("Selangor"), Tier::Gold),
        snapshot(502, "2024-03-01T06:00:00Z", A, Some(Gender::Male), Some(30), Some("Selangor"), Tier::Gold),
        snapshot(503, "2024-03-01T04:00:00Z", B, Some(Gender::Female), Some(17), Some("Johor"), Tier::Bronze),
        snapshot(504, "2024-03-01T05:00:00Z", C, None, None, None, Tier::Bronze),
        snapshot(505, "2024-03-02T04:00:00Z", A, Some(Gender::Male), Some(30), Some("Selangor"), Tier::Platinum),
        // 15:59:59 UTC is still day 1 in Malaysia.
        snapshot(506, "2024-03-01T15:59:59Z", D, Some(Gender::Female), Some(70), Some("Pulau Pinang"), Tier::Silver),
        snapshot(507, "2024-03-01T07:00:00Z", E, Some(Gender::Male), Some(28), Some("Selangor"), Tier::Gold),
    ]
}

fn funnel(day: NaiveDate, campaign: &str, stage: &str, contacts: u64, events: u64) -> FunnelRow {
    FunnelRow {
        day,
        campaign_id: campaign.into(),
        stage: stage.into(),
        contacts,
        events,
    }
}

/// Worked out by hand from [`view_fixture`].
fn expected_funnel() -> Vec<FunnelRow> {
    let (d1, d2) = (date(2024, 3, 1), date(2024, 3, 2));
    vec![
        funnel(d1, RAYA, "converted", 1, 1), // P1 (A); P2 was still pending that day
        funnel(d1, RAYA, "delivered", 2, 3), // A, B (B twice)
        funnel(d1, RAYA, "failed", 1, 2),    // D: send failed and status failed
        funnel(d1, RAYA, "read", 1, 1),      // A
        funnel(d1, RAYA, "replied", 1, 1),   // A
        funnel(d1, RAYA, "sent", 2, 2),      // A, B
        funnel(d1, RAYA, "skipped", 1, 1),   // C
        funnel(d2, CNY, "converted", 1, 1),  // P4 (D)
        funnel(d2, CNY, "sent", 1, 1),       // D
        funnel(d2, RAYA, "converted", 1, 1), // P2 counted (B)
        funnel(d2, RAYA, "read", 1, 1),      // B, after Malaysian midnight
    ]
}

fn expected_revenue() -> Vec<RevenueRow> {
    vec![
        // P6 was rejected: the day is there, with nothing counted.
        RevenueRow {
            day: date(2024, 2, 29),
            purchases: 0,
            buyers: 0,
            revenue: Money::ZERO,
        },
        // P1 120.50 (A) + P2 45.60 (B, counted after review) + P5 0.20 (A) + P7 5.00 (E,
        // its date corrected from 2024-03-02); P3 was rejected later.
        RevenueRow {
            day: date(2024, 3, 1),
            purchases: 4,
            buyers: 3,
            revenue: Money::from_sen(17_130),
        },
        RevenueRow {
            day: date(2024, 3, 2),
            purchases: 1,
            buyers: 1,
            revenue: Money::from_sen(9_999),
        },
    ]
}

fn demo(
    day: NaiveDate,
    gender: &str,
    band: &str,
    state: &str,
    tier: &str,
    n: u64,
) -> DemographicRow {
    DemographicRow {
        day,
        gender: gender.into(),
        age_band: band.into(),
        state: state.into(),
        tier: tier.into(),
        contacts: n,
    }
}

fn expected_demographics() -> Vec<DemographicRow> {
    let (d1, d2) = (date(2024, 3, 1), date(2024, 3, 2));
    vec![
        demo(d1, "", "unknown", "", "Bronze", 1),               // C
        demo(d1, "female", "65+", "Pulau Pinang", "Silver", 1), // D
        demo(d1, "female", "under 18", "Johor", "Bronze", 1),   // B
        demo(d1, "male", "25-34", "Selangor", "Gold", 2),       // A (twice), E
        demo(d2, "male", "25-34", "Selangor", "Platinum", 1),   // A after a tier change
    ]
}

// ---- scenarios ---------------------------------------------------------------------------

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {GUARD:?}"))
}

/// Every table stores and returns every field exactly; IC numbers come back masked.
async fn every_table_round_trips<S: EventSink + EventReader>(sink: &S) {
    let mut written = full_rows();
    written.extend(sparse_rows());
    guarded("write", sink.write(&written)).await.unwrap();
    for table in EventTable::ALL {
        let expected: Vec<AnalyticsEvent> = written
            .iter()
            .filter(|e| e.table() == table)
            .map(AnalyticsEvent::normalized)
            .collect();
        assert_eq!(expected.len(), 2, "{table:?}");
        let fetched = guarded("fetch", sink.fetch_events(table, 100))
            .await
            .unwrap();
        assert_eq!(fetched, expected, "{table:?} on {}", sink.name());
        assert_eq!(sink.count_events(table).await.unwrap(), 2, "{table:?}");
        assert_eq!(sink.fetch_events(table, 1).await.unwrap().len(), 1);
    }

    // Spot checks of what normalization promised.
    let inbound = &sink
        .fetch_events(EventTable::InboundMessages, 1)
        .await
        .unwrap()[0];
    let AnalyticsEvent::InboundMessage(inbound) = inbound else {
        panic!("{inbound:?}")
    };
    assert_eq!(inbound.occurred_at, at("2024-02-29T23:59:59Z"));
    assert_eq!(
        inbound.text.as_deref(),
        Some(format!("{UNICODE} IC saya 900101-**-****").as_str())
    );
    let ocr = &sink.fetch_events(EventTable::OcrResults, 1).await.unwrap()[0];
    let AnalyticsEvent::OcrResult(ocr) = ocr else {
        panic!("{ocr:?}")
    };
    assert!(
        ocr.fields_json.contains(r#""ic":"900101-**-****""#),
        "{}",
        ocr.fields_json
    );
    assert!(!ocr.fields_json.contains("5678"));
    let purchase = &sink.fetch_events(EventTable::Purchases, 1).await.unwrap()[0];
    let AnalyticsEvent::Purchase(purchase) = purchase else {
        panic!("{purchase:?}")
    };
    assert_eq!(purchase.total.to_string(), "1234567890.12");
}

/// Retention: the text of message events before the cut-off is cleared, in every file or
/// partition that holds one; later messages (the same day included) and every other
/// column and table are left as they were. ClickHouse applies it as a mutation, in the
/// background: the check waits for it.
async fn message_text_expires_before_the_cutoff<S: EventSink + EventReader>(sink: &S) {
    let mut written = full_rows();
    written.push(inbound(50, "2024-03-05T10:00:00Z", 3, None));
    written.push(inbound(51, "2024-03-02T08:00:00Z", 3, None));
    written.push(inbound(52, "2024-03-02T05:00:00Z", 3, None));
    sink.write(&written).await.unwrap();
    let counts_before: Vec<u64> = counts(sink).await;
    let cutoff = at("2024-03-02T06:00:00Z");
    sink.expire_message_text(cutoff).await.unwrap();
    // Twice: a repeated sweep changes nothing more.
    sink.expire_message_text(cutoff).await.unwrap();

    let texts = |events: Vec<AnalyticsEvent>| -> Vec<(Uuid, bool)> {
        events
            .into_iter()
            .map(|mut e| {
                (
                    e.event_id(),
                    e.message_text_mut().is_some_and(|t| t.is_some()),
                )
            })
            .collect()
    };
    let expected_inbound = vec![
        (id(1), false),
        (id(52), false),
        (id(51), true),
        (id(50), true),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let inbound = texts(
            sink.fetch_events(EventTable::InboundMessages, 100)
                .await
                .unwrap(),
        );
        let outbound = texts(
            sink.fetch_events(EventTable::OutboundMessages, 100)
                .await
                .unwrap(),
        );
        if inbound == expected_inbound && outbound == vec![(id(2), false)] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: inbound {inbound:?}, outbound {outbound:?}",
            sink.name()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(counts(sink).await, counts_before, "no event lost");
    // The rest of a cleared event stays as written.
    let outbound = &sink
        .fetch_events(EventTable::OutboundMessages, 1)
        .await
        .unwrap()[0];
    let AnalyticsEvent::OutboundMessage(outbound) = outbound else {
        panic!("{outbound:?}")
    };
    assert_eq!(outbound.template_name.as_deref(), Some("raya_promo"));
    assert_eq!(outbound.campaign_id.as_deref(), Some("raya-2024"));
}

async fn counts<S: EventReader>(sink: &S) -> Vec<u64> {
    let mut counts = Vec::new();
    for table in EventTable::ALL {
        counts.push(sink.count_events(table).await.unwrap());
    }
    counts
}

/// Writing the same batch again, whole or in part, leaves one event per id.
async fn replays_leave_one_event_per_id<S: EventSink + EventReader>(
    sink: &S,
) -> Vec<AnalyticsEvent> {
    let batch = view_fixture();
    guarded("write", sink.write(&batch)).await.unwrap();
    guarded("replay", sink.write(&batch)).await.unwrap();
    guarded("partial replay", sink.write(&batch[3..9]))
        .await
        .unwrap();
    for table in EventTable::ALL {
        let expected: Vec<AnalyticsEvent> = {
            let mut events: Vec<AnalyticsEvent> = batch
                .iter()
                .filter(|e| e.table() == table)
                .map(AnalyticsEvent::normalized)
                .collect();
            events.sort_by_key(|e| (e.occurred_at(), e.event_id()));
            events
        };
        assert_eq!(
            sink.count_events(table).await.unwrap(),
            expected.len() as u64,
            "{table:?} on {}",
            sink.name()
        );
        assert_eq!(
            sink.fetch_events(table, 1000).await.unwrap(),
            expected,
            "{table:?}"
        );
    }
    batch
}

async fn assert_views<S: AnalyticsReader>(sink: &S, when: &str) {
    let (from, to) = (date(2024, 1, 1), date(2024, 12, 31));
    assert_eq!(
        sink.campaign_funnel(from, to).await.unwrap(),
        expected_funnel(),
        "funnel {when}"
    );
    assert_eq!(
        sink.daily_revenue(from, to).await.unwrap(),
        expected_revenue(),
        "revenue {when}"
    );
    assert_eq!(
        sink.demographics(from, to).await.unwrap(),
        expected_demographics(),
        "demographics {when}"
    );
    // Day ranges are inclusive and filter.
    let day2 = date(2024, 3, 2);
    assert_eq!(
        sink.campaign_funnel(day2, day2).await.unwrap(),
        expected_funnel()
            .into_iter()
            .filter(|r| r.day == day2)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        sink.daily_revenue(day2, day2).await.unwrap(),
        expected_revenue()[2..]
    );
    assert!(sink
        .demographics(date(2025, 1, 1), date(2025, 1, 31))
        .await
        .unwrap()
        .is_empty());
}

/// The analyst views match hand-computed answers, before and after replays.
async fn views_are_exact_under_replay<S: EventSink + EventReader + AnalyticsReader>(sink: &S) {
    let batch = view_fixture();
    let (first, second) = batch.split_at(batch.len() / 2);
    guarded("write", sink.write(first)).await.unwrap();
    guarded("write", sink.write(second)).await.unwrap();
    assert_views(sink, "after the first write").await;

    // A crash-and-replay: the whole batch again, then a part of it in reverse order.
    guarded("replay", sink.write(&batch)).await.unwrap();
    let mut part: Vec<AnalyticsEvent> = batch[10..25].to_vec();
    part.reverse();
    guarded("replay", sink.write(&part)).await.unwrap();
    assert_views(sink, "after replays").await;
}

/// Lifetime value (spend bands, tiers, registration cohorts) from each contact's latest
/// snapshot, and OCR outcomes per kind, the same on both backends, replays included.
async fn value_and_ocr_views_are_exact_under_replay<S: EventSink + AnalyticsReader>(sink: &S) {
    let snap =
        |n: u128, t: &str, contact: u32, spent: i64, count: u32, tier: Tier, reason: &str| {
            AnalyticsEvent::from(ContactSnapshotEvent {
                event_id: id(n),
                occurred_at: at(t),
                contact_phone: phone(contact),
                gender: None,
                age: None,
                state: None,
                marital_status: None,
                tier,
                total_spent: Money::from_sen(spent),
                purchase_count: count,
                whatsapp_status: WhatsappStatus::Active,
                marketing_opt_in: false,
                ic_masked: None,
                reason: reason.into(),
            })
        };
    let ocr = |n: u128, t: &str, kind: OcrKind, status: OcrStatus, confidence: f32, ms: u32| {
        AnalyticsEvent::from(OcrResultEvent {
            event_id: id(n),
            occurred_at: at(t),
            contact_phone: phone(11),
            media_id: format!("m-{n}"),
            kind,
            status,
            confidence,
            duration_ms: ms,
            fields_json: "{}".into(),
            error: None,
        })
    };
    let batch = vec![
        snap(
            901,
            "2024-03-01T02:00:00Z",
            11,
            0,
            0,
            Tier::Bronze,
            "registered",
        ),
        snap(
            902,
            "2024-03-05T02:00:00Z",
            11,
            15_000,
            2,
            Tier::Bronze,
            "purchase",
        ),
        // 01:00 on 1 April in Malaysia: the April cohort.
        snap(
            903,
            "2024-03-31T17:00:00Z",
            12,
            0,
            0,
            Tier::Bronze,
            "registered",
        ),
        snap(
            904,
            "2024-03-02T02:00:00Z",
            13,
            600_000,
            10,
            Tier::Gold,
            "purchase",
        ),
        snap(
            905,
            "2024-03-03T02:00:00Z",
            14,
            9_999,
            1,
            Tier::Bronze,
            "purchase",
        ),
        ocr(
            911,
            "2024-03-01T02:00:00Z",
            OcrKind::Ic,
            OcrStatus::Parsed,
            90.0,
            1_000,
        ),
        ocr(
            912,
            "2024-03-01T03:00:00Z",
            OcrKind::Ic,
            OcrStatus::Rejected,
            50.0,
            3_000,
        ),
        ocr(
            913,
            "2024-03-02T02:00:00Z",
            OcrKind::Ic,
            OcrStatus::Parsed,
            70.0,
            2_000,
        ),
        ocr(
            914,
            "2024-03-02T03:00:00Z",
            OcrKind::Receipt,
            OcrStatus::Parsed,
            80.0,
            500,
        ),
        ocr(
            915,
            "2024-05-01T02:00:00Z",
            OcrKind::Receipt,
            OcrStatus::Parsed,
            10.0,
            9_000,
        ),
    ];
    guarded("write", sink.write(&batch)).await.unwrap();
    guarded("replay", sink.write(&batch[1..7])).await.unwrap();
    let bucket = |name: &str, customers: u64, sen: i64, purchases: u64| ValueBucket {
        bucket: name.into(),
        customers,
        total_spent: Money::from_sen(sen),
        purchases,
    };
    assert_eq!(
        sink.customer_value().await.unwrap(),
        CustomerValue {
            spending: vec![
                bucket("none", 1, 0, 0),
                bucket("under 100", 1, 9_999, 1),
                bucket("100-499", 1, 15_000, 2),
                bucket("5000+", 1, 600_000, 10),
            ],
            by_tier: vec![
                bucket("Bronze", 3, 24_999, 3),
                bucket("Gold", 1, 600_000, 10)
            ],
            by_cohort: vec![bucket("2024-03", 1, 15_000, 2), bucket("2024-04", 1, 0, 0)],
        },
        "on {}",
        sink.name()
    );
    let outcomes = sink
        .ocr_outcomes(date(2024, 3, 1), date(2024, 3, 31))
        .await
        .unwrap();
    let row = |kind: &str, photos, parsed, mean_confidence, p50_ms, p95_ms| OcrOutcomeRow {
        kind: kind.into(),
        photos,
        parsed,
        mean_confidence,
        p50_ms,
        p95_ms,
    };
    assert_eq!(
        outcomes,
        vec![
            row("ic", 3, 2, 70.0, 2_000, 3_000),
            row("receipt", 1, 1, 80.0, 500, 500)
        ],
        "on {}",
        sink.name()
    );
}

/// The batcher writes when `max_rows` is reached and when `max_delay` has passed, and
/// reports the tokens of exactly the records it wrote.
async fn batcher_flushes_on_size_and_time(sink: Arc<dyn EventSink>, reader: &dyn EventReader) {
    let config = BatcherConfig {
        max_rows: 3,
        max_delay: Duration::from_millis(300),
    };
    let mut batcher: Batcher<u64> = Batcher::new(sink, config);
    let events = view_fixture();
    let sends = EventTable::CampaignSends;

    assert!(batcher.push(events[0].clone(), 10).await.unwrap().is_none());
    assert!(batcher.push(events[1].clone(), 11).await.unwrap().is_none());
    assert_eq!(reader.count_events(sends).await.unwrap(), 0);
    let report = guarded("push", batcher.push(events[2].clone(), 12))
        .await
        .unwrap()
        .expect("a flush at max_rows");
    assert_eq!(report.reason, FlushReason::Size);
    assert_eq!((report.events, report.tokens), (3, vec![10, 11, 12]));
    assert_eq!(reader.count_events(sends).await.unwrap(), 3);
    assert!(batcher.is_empty());

    // Time: one record with two events, below max_rows, written once the delay passed.
    let started = tokio::time::Instant::now();
    let pushed = batcher
        .push_all(vec![events[3].clone(), events[4].clone()], 13)
        .await
        .unwrap();
    assert!(pushed.is_none());
    assert!(batcher.flush_due().await.unwrap().is_none(), "not due yet");
    guarded("wait_due", batcher.wait_due()).await;
    assert!(started.elapsed() >= config.max_delay);
    let report = guarded("flush_due", batcher.flush_due())
        .await
        .unwrap()
        .expect("due after max_delay");
    assert_eq!(report.reason, FlushReason::Delay);
    assert_eq!((report.events, report.tokens), (2, vec![13]));
    assert_eq!(reader.count_events(sends).await.unwrap(), 5);
    assert_eq!(batcher.deadline(), None);
}

// ---- file sink ---------------------------------------------------------------------------

#[tokio::test]
async fn files_every_table_round_trips() {
    let (_dir, sink) = file_sink();
    every_table_round_trips(&sink).await;
    // On disk: one JSON object per line, in <table>/<UTC day>.jsonl, money as text, no IC.
    let path = sink.dir().join("purchases").join("2024-03-01.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#""total":"1234567890.12""#), "{text}");
    for table in EventTable::ALL {
        for entry in std::fs::read_dir(sink.dir().join(table.name())).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            assert!(
                !text.contains("14-5678") && !text.contains("900101145678"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn files_replays_leave_one_event_per_id() {
    let (_dir, sink) = file_sink();
    let batch = replays_leave_one_event_per_id(&sink).await;
    // Appends are kept; the read side collapses them.
    let sends = |events: &[AnalyticsEvent]| {
        events
            .iter()
            .filter(|e| e.table() == EventTable::CampaignSends)
            .count() as u64
    };
    assert_eq!(
        sink.count_lines(EventTable::CampaignSends).await.unwrap(),
        2 * sends(&batch) + sends(&batch[3..9])
    );
}

#[tokio::test]
async fn files_views_are_exact_under_replay() {
    let (_dir, sink) = file_sink();
    views_are_exact_under_replay(&sink).await;
}

#[tokio::test]
async fn files_message_text_expires_before_the_cutoff() {
    let (_dir, sink) = file_sink();
    message_text_expires_before_the_cutoff(&sink).await;
}

#[tokio::test]
async fn clickhouse_message_text_expires_before_the_cutoff() {
    let Some(sink) = clickhouse_sink().await else {
        return;
    };
    message_text_expires_before_the_cutoff(&sink).await;
    drop_database(&sink).await;
}

#[tokio::test]
async fn files_value_and_ocr_views_are_exact_under_replay() {
    let (_dir, sink) = file_sink();
    value_and_ocr_views_are_exact_under_replay(&sink).await;
}

#[tokio::test]
async fn clickhouse_value_and_ocr_views_are_exact_under_replay() {
    let Some(sink) = clickhouse_sink().await else {
        return;
    };
    value_and_ocr_views_are_exact_under_replay(&sink).await;
    drop_database(&sink).await;
}

#[tokio::test]
async fn files_batcher_flushes_on_size_and_time() {
    let (_dir, sink) = file_sink();
    let sink = Arc::new(sink);
    batcher_flushes_on_size_and_time(sink.clone(), sink.as_ref()).await;
}

#[tokio::test]
async fn files_survive_a_torn_last_line() {
    let (_dir, sink) = file_sink();
    let batch = view_fixture();
    sink.write(&batch[..2]).await.unwrap();
    // A crash mid-append leaves half a line and no acknowledgement...
    let path = sink.dir().join("campaign_steps").join("2024-03-01.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"event_id":"5e4b0000-0000-40"#).unwrap();
    drop(file);
    // ...so the batch is written again, and the torn line is ignored.
    sink.write(&batch[..4]).await.unwrap();
    assert_eq!(
        sink.count_events(EventTable::CampaignSends).await.unwrap(),
        4
    );
}

// ---- ClickHouse --------------------------------------------------------------------------

#[tokio::test]
async fn clickhouse_every_table_round_trips() {
    let Some(sink) = clickhouse_sink().await else {
        return;
    };
    every_table_round_trips(&sink).await;
    let raw = clickhouse_count(
        &sink,
        "SELECT count() FROM {db}.ocr_results WHERE position(fields_json, '5678') > 0",
    )
    .await;
    assert_eq!(raw, 0, "an IC number reached ClickHouse");
    drop_database(&sink).await;
}

#[tokio::test]
async fn clickhouse_replays_leave_one_row_per_id() {
    let Some(sink) = clickhouse_sink().await else {
        return;
    };
    let batch = replays_leave_one_event_per_id(&sink).await;
    for table in EventTable::ALL {
        let distinct = batch.iter().filter(|e| e.table() == table).count() as u64;
        let final_rows = clickhouse_count(
            &sink,
            &format!("SELECT count() FROM {{db}}.{} FINAL", table.name()),
        )
        .await;
        assert_eq!(final_rows, distinct, "{table:?} with FINAL");
        sink.optimize_final(table.name()).await.unwrap();
        let rows = clickhouse_count(
            &sink,
            &format!("SELECT count() FROM {{db}}.{}", table.name()),
        )
        .await;
        assert_eq!(rows, distinct, "{table:?} after OPTIMIZE FINAL");
    }
    drop_database(&sink).await;
}

#[tokio::test]
async fn clickhouse_views_are_exact_under_replay() {
    let Some(sink) = clickhouse_sink().await else {
        return;
    };
    views_are_exact_under_replay(&sink).await;
    // Merging the copies changes nothing either.
    for table in [
        "campaign_funnel_daily",
        "revenue_by_purchase",
        "demographics_daily",
    ] {
        sink.optimize_final(table).await.unwrap();
    }
    assert_views(&sink, "after OPTIMIZE FINAL").await;
    drop_database(&sink).await;
}

#[tokio::test]
async fn clickhouse_batcher_flushes_on_size_and_time() {
    let Some(sink) = clickhouse_sink().await else {
        return;
    };
    let shared = Arc::new(sink.clone());
    batcher_flushes_on_size_and_time(shared, &sink).await;
    drop_database(&sink).await;
}

#[tokio::test]
async fn clickhouse_migrations_apply_once_and_refuse_a_newer_schema() {
    let Some(sink) = clickhouse_sink().await else {
        return;
    };
    let database = sink.config().database.clone();
    let vars = [("DATABASE", database.as_str())];
    let again = migrate(&sink.migrations(), CLICKHOUSE_MIGRATIONS, &vars)
        .await
        .unwrap();
    assert!(again.applied.is_empty());
    assert_eq!((again.from_version, again.to_version), (4, 4));
    let views = clickhouse_count(
        &sink,
        "SELECT count() FROM system.tables WHERE database = '{db}' AND engine = 'MaterializedView'",
    )
    .await;
    assert_eq!(views, 7);

    sink.execute(
        "record a future version",
        &format!(
            "INSERT INTO {database}.schema_migrations (version, name, applied_at) \
             SELECT toUInt32(5), 'from_the_future', now()"
        ),
    )
    .await
    .unwrap();
    let err = sink.migrate().await.unwrap_err();
    assert!(
        matches!(
            err,
            MigrateError::NewerThanKnown {
                target: "clickhouse",
                found: 5,
                known: 4
            }
        ),
        "{err}"
    );
    drop_database(&sink).await;
}

/// No phone number is in ClickHouse: every table's contact column holds one pseudonym per
/// number (analysts join and count on it), and the engine reads the numbers back.
#[tokio::test]
async fn clickhouse_holds_pseudonyms_never_phone_numbers() {
    let Some(sink) = clickhouse_sink().await else {
        return;
    };
    let events = view_fixture();
    sink.write(&events).await.unwrap();
    let tables = [
        "inbound_messages",
        "outbound_messages",
        "message_statuses",
        "purchases",
        "contact_snapshots",
    ];
    for table in tables {
        let clear = clickhouse_count(
            &sink,
            &format!("SELECT count() FROM {{db}}.{table} WHERE contact_phone LIKE '60%'"),
        )
        .await;
        assert_eq!(clear, 0, "{table} holds phone numbers");
    }
    let sealed = clickhouse_count(
        &sink,
        "SELECT count() FROM {db}.inbound_messages WHERE contact_phone LIKE 'p1:%'",
    )
    .await;
    assert!(sealed > 0);
    // One value per number, the same in every table: a join key.
    let joined = clickhouse_count(
        &sink,
        "SELECT count() FROM (SELECT DISTINCT contact_phone FROM {db}.inbound_messages) \
         WHERE contact_phone IN (SELECT contact_phone FROM {db}.contact_snapshots)",
    )
    .await;
    assert!(
        joined > 0,
        "the same contact has the same value in both tables"
    );
    let read = sink
        .fetch_events(EventTable::InboundMessages, 100)
        .await
        .unwrap();
    assert!(read.iter().all(|e| e
        .contact_phone()
        .is_some_and(|p| p.as_str().starts_with("60"))));
    drop_database(&sink).await;
}

#[tokio::test]
async fn clickhouse_rejects_without_retrying_what_cannot_succeed() {
    let Some(url) = support::service(support::CLICKHOUSE) else {
        return;
    };
    // A database that was never migrated: the server answers with an exception at once.
    let mut config = ClickHouseConfig::new(url, support::unique_name("sink_missing"));
    config.initial_backoff = Duration::from_secs(5);
    let sink = ClickHouseSink::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = guarded("write", sink.write(&view_fixture()[..1]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::Rejected {
                service: "clickhouse",
                operation: "insert",
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "it was retried");

    // An event ClickHouse cannot hold is refused before any request.
    let mut old = sparse_rows()[0].clone();
    if let AnalyticsEvent::InboundMessage(e) = &mut old {
        e.occurred_at = at("1969-12-31T23:59:59Z");
    }
    let err = sink.write(&[old]).await.unwrap_err();
    assert!(matches!(err, SinkError::InvalidEvent { .. }), "{err}");

    assert!(ClickHouseSink::new(ClickHouseConfig::new("http://x", "bad-name; DROP")).is_err());
}

#[tokio::test]
async fn clickhouse_unreachable_is_a_typed_error_in_bounded_time() {
    let mut config = ClickHouseConfig::new("http://127.0.0.1:1", "sembang");
    config.request_timeout = Duration::from_secs(2);
    config.max_retries = 3;
    config.initial_backoff = Duration::from_millis(50);
    let sink = ClickHouseSink::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = guarded("write", sink.write(&view_fixture()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::Unavailable {
                service: "clickhouse",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("clickhouse"), "{err}");
    let err = guarded("count", sink.count_events(EventTable::Purchases))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
    let err = guarded("migrate", sink.migrate()).await.unwrap_err();
    assert!(
        matches!(
            err,
            MigrateError::Target {
                target: "clickhouse",
                ..
            }
        ),
        "{err}"
    );
    // Three attempts' backoff (50 + 100 + 200 ms) per operation, no hanging.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn clickhouse_that_never_answers_times_out() {
    // A server that accepts connections and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = ClickHouseConfig::new(format!("http://{address}"), "sembang");
    config.request_timeout = Duration::from_millis(300);
    config.max_retries = 1;
    config.initial_backoff = Duration::from_millis(10);
    let sink = ClickHouseSink::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = guarded("write", sink.write(&view_fixture()[..2]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::Timeout {
                service: "clickhouse",
                operation: "insert",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    server.abort();
}
