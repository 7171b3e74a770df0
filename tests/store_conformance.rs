//! The contact-store contract, run against both backends: the embedded store (a fresh redb
//! file per test) and the CQL store on a real Cassandra (one fresh keyspace per test run,
//! created through the migrations, dropped when the last test using it finishes).
//!
//! Every scenario is an `async fn(Arc<dyn ContactStore>)`; the `conformance!` list turns
//! each into one test per backend (`embedded::name`, `scylla::name`). All tests share one
//! multi-threaded runtime so the CQL session (whose connections are tasks on the runtime
//! that created it) outlives any single test.
//!
//! Run against the real stack: SEMBANG_TEST_CASSANDRA=127.0.0.1:9042
//! SEMBANG_TEST_REQUIRE_STACK=1 cargo test --test store_conformance

mod support;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::OnceCell;

use sembang::domain::campaign::{
    CampaignStatus, Failure, RecipientStatus, RecipientSteps, RecipientUpdate, SkipReason,
};
use sembang::domain::contact::{
    ConsentChange, Contact, InteractionStats, ProtectedIc, WhatsappStatus,
};
use sembang::domain::contact_fields::ContactFields;
use sembang::domain::message::{DeliveryStatus, DeliveryTimeline};
use sembang::domain::money::Money;
use sembang::domain::person::{Gender, MaritalStatus};
use sembang::domain::phone::PhoneNumber;
use sembang::domain::purchase::{Purchase, PurchaseStatus};
use sembang::domain::tier::Tier;
use sembang::storage::migrate::{migrate, MigrateError, MigrationReport};
use sembang::storage::store::{
    CampaignRecord, Claim, ContactStore, ContactWrite, Contacts, Direction, IcLink, MessageLog,
    MessageRecord, PageToken, SegmentRecord, SendOutcome, SendResult, StoreError,
};
use sembang::storage::store::{
    CqlMigrationTarget, EmbeddedStore, ScyllaConfig, ScyllaStore, CQL_MIGRATIONS,
};

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("test runtime")
});

const REPLICATION: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

fn run_embedded<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<dyn ContactStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("store").join("contacts.redb")).unwrap();
    RUNTIME.block_on(scenario(Arc::new(store)));
}

/// The shared keyspace of this test run.
struct SharedCluster {
    store: Arc<ScyllaStore>,
    first: MigrationReport,
    second: MigrationReport,
}

static CLUSTER: OnceCell<SharedCluster> = OnceCell::const_new();

/// Tests that use the shared keyspace (the scenarios and three CQL-only tests); the last one
/// to finish drops it.
static USERS_LEFT: AtomicUsize = AtomicUsize::new(SCYLLA_SCENARIOS + 3);

fn cluster_config(keyspace: &str) -> Option<ScyllaConfig> {
    let node = support::service(support::CASSANDRA)?;
    Some(ScyllaConfig {
        nodes: vec![node],
        keyspace: keyspace.to_string(),
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(5),
    })
}

async fn shared_cluster(config: ScyllaConfig) -> &'static SharedCluster {
    CLUSTER
        .get_or_init(|| async move {
            let target = CqlMigrationTarget::connect(&config, REPLICATION)
                .await
                .expect("connect for migrations");
            let first = migrate(&target, CQL_MIGRATIONS, &target.vars())
                .await
                .expect("migrate a fresh keyspace");
            let second = migrate(&target, CQL_MIGRATIONS, &target.vars())
                .await
                .expect("migrate again");
            let store = ScyllaStore::connect(config)
                .await
                .expect("connect the store");
            SharedCluster {
                store: Arc::new(store),
                first,
                second,
            }
        })
        .await
}

static KEYSPACE: LazyLock<String> = LazyLock::new(|| support::unique_name("sembang_conf"));

/// Drops the shared keyspace after the last test that uses it (also when it panicked).
struct LeaveCluster;

impl Drop for LeaveCluster {
    fn drop(&mut self) {
        if USERS_LEFT.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        if let Some(shared) = CLUSTER.get() {
            let session = Arc::clone(shared.store.session());
            let statement = format!("DROP KEYSPACE IF EXISTS {}", *KEYSPACE);
            let _ = RUNTIME.block_on(async move { session.query_unpaged(statement, ()).await });
        }
    }
}

fn run_scylla<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<dyn ContactStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    on_shared_cluster(|shared| scenario(Arc::clone(&shared.store) as Arc<dyn ContactStore>));
}

/// Runs `test` on the shared keyspace (when the stack is configured).
fn on_shared_cluster<F, Fut>(test: F)
where
    F: FnOnce(&'static SharedCluster) -> Fut,
    Fut: Future<Output = ()>,
{
    let _leave = LeaveCluster;
    let Some(config) = cluster_config(&KEYSPACE) else {
        return;
    };
    RUNTIME.block_on(async move { test(shared_cluster(config).await).await });
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        const SCYLLA_SCENARIOS: usize = [$(stringify!($name)),*].len();

        mod embedded {
            $(
                #[test]
                fn $name() {
                    super::run_embedded(super::$name);
                }
            )*
        }

        mod scylla {
            $(
                #[test]
                fn $name() {
                    super::run_scylla(super::$name);
                }
            )*
        }
    };
}

conformance!(
    contact_round_trip_keeps_every_field,
    unknown_contact_is_none,
    upsert_overwrites_every_field,
    times_are_kept_to_the_millisecond,
    ledger_is_rebuilt_from_counted_purchases_only,
    purchases_upsert_by_id_and_list_oldest_first,
    link_ic_links_once_and_never_moves,
    claim_receipt_first_claim_wins,
    claim_send_first_claim_wins,
    a_send_result_is_kept_per_claim,
    an_inbound_message_is_found_by_contact_time_and_wamid,
    concurrent_claims_have_exactly_one_winner,
    messages_newest_first_with_limit,
    record_status_any_order_gives_the_same_timeline,
    failure_code_of_the_earliest_failure_wins,
    put_message_never_regresses_statuses,
    put_messages_stores_each_like_put_message,
    write_behind_stores_contacts_and_many_messages,
    write_behind_of_the_changed_fields_gives_the_new_contact,
    write_behind_of_many_large_contacts_in_one_flush,
    an_older_contact_version_never_replaces_a_later_one,
    segments_crud,
    campaigns_crud,
    scan_pages_through_every_contact_once,
    recipient_steps_merge_in_any_order_and_page_through_every_recipient,
    retention_clears_old_message_bodies_only,
    reaches_are_found_after_their_time_and_leave_with_an_erasure,
);

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A fresh phone number: unique within the run (the CQL keyspace is shared by tests).
fn phone() -> PhoneNumber {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PhoneNumber::parse(&format!("6012{n:07}")).unwrap()
}

fn id(prefix: &str) -> String {
    support::unique_name(prefix)
}

/// 2025-06-15 plus `seconds` and `millis`: millisecond precision, as both stores keep.
fn at(seconds: i64, millis: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, millis * 1_000_000)
        .unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn full_contact(phone: PhoneNumber) -> Contact {
    let mut contact = Contact::new(phone, at(0, 123));
    contact.name = Some("Nur Aisyah binti Ahmad".into());
    contact.gender = Some(Gender::Female);
    contact.date_of_birth = Some(day(1990, 2, 28));
    contact.state = Some("Selangor".into());
    contact.marital_status = Some(MaritalStatus::Married);
    contact.whatsapp_status = WhatsappStatus::Unsubscribed;
    contact.marketing_opt_in = true;
    contact.consent_change = Some(ConsentChange {
        at: at(50, 5),
        source: "keyword:STOP".into(),
        wording: None,
    });
    contact.ic = Some(ProtectedIc {
        masked: "900228-10-****".into(),
        keyed_hash: vec![0, 1, 2, 254, 255],
        ciphertext: (0..=60).collect(),
    });
    contact.customer_tier = Tier::Gold;
    contact.interactions = InteractionStats {
        message_count: 42,
        last_interaction: Some(at(60, 7)),
        outbound_count: 10,
        replied_count: 3,
        last_outbound: Some(at(55, 250)),
    };
    contact.applied_events.insert("wamid.A");
    contact.applied_events.insert("wamid.B:read");
    contact.updated_at = at(70, 999);
    contact.attributes = BTreeMap::from([
        ("loyalty_no".to_string(), json!("L-000123")),
        ("outlet".to_string(), json!({"id": 7, "name": "Shah Alam"})),
        ("vip".to_string(), json!(true)),
        ("score".to_string(), json!(4.5)),
        ("tags".to_string(), json!(["baby", "halal"])),
        ("note".to_string(), json!(null)),
    ]);
    contact
        .campaign_touches
        .record_send("campaign-1", "wamid.C1", at(40, 17), 7);
    contact
        .campaign_touches
        .status("wamid.C1", DeliveryStatus::Delivered, at(41, 0));
    contact
}

fn purchase(id: &str, sen: i64, status: PurchaseStatus, recorded: DateTime<Utc>) -> Purchase {
    Purchase {
        purchase_id: id.to_string(),
        amount: Money::from_sen(sen),
        purchased_on: day(2025, 6, 1),
        merchant: Some("99 Speedmart".into()),
        receipt_no: Some("R-0001".into()),
        item_count: 3,
        image_sha256: Some("ab".repeat(32)),
        ocr_confidence: Some(0.875),
        status,
        recorded_at: recorded,
    }
}

fn message(contact: &PhoneNumber, wamid: &str, created_at: DateTime<Utc>) -> MessageRecord {
    MessageRecord {
        wamid: wamid.to_string(),
        contact: contact.clone(),
        direction: Direction::Outbound,
        kind: "template".into(),
        body: Some("Salam! Promosi Hari Raya".into()),
        campaign_id: Some("raya-2025".into()),
        created_at,
        timeline: DeliveryTimeline::default(),
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

async fn contact_round_trip_keeps_every_field(store: Arc<dyn ContactStore>) {
    let contact = full_contact(phone());
    store.upsert_contact(&contact).await.unwrap();
    let loaded = store.load_contact(&contact.phone_number).await.unwrap();
    assert_eq!(loaded.as_ref(), Some(&contact));

    // The defaults of a new contact round-trip too (no IC, no consent change, empty map).
    let bare = Contact::new(phone(), at(1, 0));
    store.upsert_contact(&bare).await.unwrap();
    assert_eq!(
        store.load_contact(&bare.phone_number).await.unwrap(),
        Some(bare)
    );
}

async fn unknown_contact_is_none(store: Arc<dyn ContactStore>) {
    assert_eq!(store.load_contact(&phone()).await.unwrap(), None);
    assert_eq!(store.purchases(&phone()).await.unwrap(), vec![]);
    assert_eq!(store.find_by_ic(b"no such hash").await.unwrap(), None);
    assert_eq!(store.message(&phone(), "wamid.none").await.unwrap(), None);
    assert_eq!(store.messages(&phone(), 10).await.unwrap(), vec![]);
    assert_eq!(store.segment(&id("no_segment")).await.unwrap(), None);
    assert_eq!(store.campaign(&id("no_campaign")).await.unwrap(), None);
}

async fn upsert_overwrites_every_field(store: Arc<dyn ContactStore>) {
    let first = full_contact(phone());
    store.upsert_contact(&first).await.unwrap();

    let mut second = Contact::new(first.phone_number.clone(), first.created_at);
    second.updated_at = at(500, 1);
    second.customer_tier = Tier::Platinum;
    second.attributes = BTreeMap::from([("outlet".to_string(), json!("KLCC"))]);
    store.upsert_contact(&second).await.unwrap();
    assert_eq!(
        store.load_contact(&first.phone_number).await.unwrap(),
        Some(second.clone()),
        "fields set before and absent now must be cleared"
    );

    // Replaying the same upsert changes nothing.
    store.upsert_contact(&second).await.unwrap();
    assert_eq!(
        store.load_contact(&first.phone_number).await.unwrap(),
        Some(second)
    );
}

async fn times_are_kept_to_the_millisecond(store: Arc<dyn ContactStore>) {
    let precise = Utc.timestamp_opt(1_750_000_000, 123_456_789).unwrap();
    let mut contact = Contact::new(phone(), precise);
    contact.interactions.last_interaction = Some(precise);
    store.upsert_contact(&contact).await.unwrap();
    let loaded = store
        .load_contact(&contact.phone_number)
        .await
        .unwrap()
        .unwrap();
    let millis = Utc.timestamp_opt(1_750_000_000, 123_000_000).unwrap();
    assert_eq!(loaded.created_at, millis);
    assert_eq!(loaded.updated_at, millis);
    assert_eq!(loaded.interactions.last_interaction, Some(millis));
}

async fn ledger_is_rebuilt_from_counted_purchases_only(store: Arc<dyn ContactStore>) {
    let mut contact = full_contact(phone());
    // Whatever ledger the caller holds is not what is stored: purchases are.
    contact.purchases.apply(
        &purchase("stale", 1, PurchaseStatus::Counted, at(0, 0))
            .counted_event()
            .unwrap(),
    );
    store.upsert_contact(&contact).await.unwrap();
    let who = &contact.phone_number;
    store
        .put_purchase(
            who,
            &purchase("p1", 4_560, PurchaseStatus::Counted, at(10, 0)),
        )
        .await
        .unwrap();
    store
        .put_purchase(
            who,
            &purchase("p2", 99_999, PurchaseStatus::PendingReview, at(11, 0)),
        )
        .await
        .unwrap();
    store
        .put_purchase(
            who,
            &purchase("p3", 77_700, PurchaseStatus::Rejected, at(12, 0)),
        )
        .await
        .unwrap();
    store
        .put_purchase(
            who,
            &purchase("p4", 1_005, PurchaseStatus::Counted, at(13, 0)),
        )
        .await
        .unwrap();

    let loaded = store.load_contact(who).await.unwrap().unwrap();
    let ids: Vec<&str> = loaded.purchases.entries().map(|(id, _)| id).collect();
    assert_eq!(ids, vec!["p1", "p4"]);
    assert_eq!(loaded.spending().total_spent, Money::from_sen(5_565));
    assert_eq!(loaded.spending().purchase_count, 2);

    // A reviewed purchase becomes counted by an upsert of the same id.
    store
        .put_purchase(
            who,
            &purchase("p2", 99_999, PurchaseStatus::Counted, at(11, 0)),
        )
        .await
        .unwrap();
    let loaded = store.load_contact(who).await.unwrap().unwrap();
    assert_eq!(loaded.spending().purchase_count, 3);
    assert_eq!(loaded.spending().total_spent, Money::from_sen(105_564));
}

async fn purchases_upsert_by_id_and_list_oldest_first(store: Arc<dyn ContactStore>) {
    let who = phone();
    let late = purchase("b-late", 300, PurchaseStatus::Counted, at(300, 0));
    let early = purchase("z-early", 100, PurchaseStatus::PendingReview, at(100, 0));
    let middle = purchase("a-middle", 200, PurchaseStatus::Rejected, at(200, 0));
    for p in [&late, &early, &middle] {
        store.put_purchase(&who, p).await.unwrap();
    }
    assert_eq!(
        store.purchases(&who).await.unwrap(),
        vec![early.clone(), middle.clone(), late.clone()]
    );

    // Replays change nothing; an upsert of an existing id replaces it in place.
    store.put_purchase(&who, &late).await.unwrap();
    store.put_purchase(&who, &early).await.unwrap();
    let mut corrected = middle.clone();
    corrected.amount = Money::from_sen(250);
    corrected.merchant = None;
    corrected.receipt_no = None;
    corrected.image_sha256 = None;
    corrected.ocr_confidence = None;
    corrected.status = PurchaseStatus::Counted;
    store.put_purchase(&who, &corrected).await.unwrap();
    assert_eq!(
        store.purchases(&who).await.unwrap(),
        vec![early, corrected, late]
    );
    // Another contact's purchases are separate.
    assert_eq!(store.purchases(&phone()).await.unwrap(), vec![]);
}

async fn link_ic_links_once_and_never_moves(store: Arc<dyn ContactStore>) {
    let hash = id("ic").into_bytes();
    let owner = phone();
    let other = phone();
    assert_eq!(store.find_by_ic(&hash).await.unwrap(), None);
    assert_eq!(store.link_ic(&hash, &owner).await.unwrap(), IcLink::Linked);
    assert_eq!(
        store.link_ic(&hash, &owner).await.unwrap(),
        IcLink::AlreadyLinked
    );
    assert_eq!(
        store.link_ic(&hash, &other).await.unwrap(),
        IcLink::LinkedToOther(owner.clone())
    );
    assert_eq!(store.find_by_ic(&hash).await.unwrap(), Some(owner.clone()));

    // Binary hashes (any byte) are distinct keys.
    let binary = vec![0u8, 255, 10, 13, 0];
    assert_eq!(
        store.link_ic(&binary, &other).await.unwrap(),
        IcLink::Linked
    );
    assert_eq!(store.find_by_ic(&binary).await.unwrap(), Some(other));
    assert_eq!(store.find_by_ic(&hash).await.unwrap(), Some(owner));
}

async fn claim_receipt_first_claim_wins(store: Arc<dyn ContactStore>) {
    let fingerprint = id("receipt");
    assert_eq!(
        store
            .claim_receipt(&fingerprint, "purchase-1")
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        store
            .claim_receipt(&fingerprint, "purchase-2")
            .await
            .unwrap(),
        Claim::AlreadyClaimed("purchase-1".into())
    );
    // The first claimant replaying its claim is told who holds it: itself.
    assert_eq!(
        store
            .claim_receipt(&fingerprint, "purchase-1")
            .await
            .unwrap(),
        Claim::AlreadyClaimed("purchase-1".into())
    );
    assert_eq!(
        store
            .claim_receipt(&id("receipt"), "purchase-2")
            .await
            .unwrap(),
        Claim::Claimed
    );
}

/// Retention clears the bodies of messages older than the cut-off, inbound and outbound,
/// and keeps everything else of them; newer messages keep their bodies. The messages are
/// dated 2001-2002, before any other scenario's (the CQL keyspace is shared).
async fn retention_clears_old_message_bodies_only(store: Arc<dyn ContactStore>) {
    let who = phone();
    let year = |y: i32| Utc.with_ymd_and_hms(y, 3, 1, 10, 0, 0).unwrap();
    let mut old_inbound = message(&who, &format!("wamid.{}", id("old-in")), year(2001));
    old_inbound.direction = Direction::Inbound;
    old_inbound.kind = "text".into();
    old_inbound.campaign_id = None;
    let old_outbound = message(&who, &format!("wamid.{}", id("old-out")), year(2001));
    let new_outbound = message(&who, &format!("wamid.{}", id("new-out")), year(2002));
    let all = [
        old_inbound.clone(),
        old_outbound.clone(),
        new_outbound.clone(),
    ];
    store.write_behind(&[], &all, &[]).await.unwrap();
    let cutoff = Utc.with_ymd_and_hms(2001, 12, 31, 0, 0, 0).unwrap();
    let cleared = store.expire_message_bodies(cutoff).await.unwrap();
    assert!(cleared >= 2, "{cleared}");
    for (sent, kept) in [
        (&old_inbound, false),
        (&old_outbound, false),
        (&new_outbound, true),
    ] {
        let stored = store.message(&who, &sent.wamid).await.unwrap().unwrap();
        assert_eq!(stored.body.is_some(), kept, "{}", sent.wamid);
        assert_eq!(
            (stored.kind.as_str(), stored.created_at),
            (sent.kind.as_str(), sent.created_at)
        );
    }
    let listed = store.messages(&who, 10).await.unwrap();
    assert_eq!(listed.len(), 3, "the messages stay, only their bodies go");
    assert_eq!(listed.iter().filter(|m| m.body.is_some()).count(), 1);
    assert_eq!(
        store.expire_message_bodies(cutoff).await.unwrap(),
        0,
        "nothing left to clear"
    );
}

async fn an_inbound_message_is_found_by_contact_time_and_wamid(store: Arc<dyn ContactStore>) {
    let who = phone();
    let mut inbound = message(&who, &format!("wamid.{}", id("in")), at(12, 0));
    inbound.direction = Direction::Inbound;
    inbound.kind = "text".into();
    inbound.campaign_id = None;
    store
        .write_behind(&[], std::slice::from_ref(&inbound), &[])
        .await
        .unwrap();
    let stored = |contact: PhoneNumber, wamid: String| {
        let store = store.clone();
        async move {
            store
                .inbound_stored(&contact, at(12, 0), &wamid)
                .await
                .unwrap()
        }
    };
    assert!(stored(who.clone(), inbound.wamid.clone()).await);
    assert!(!stored(who.clone(), format!("wamid.{}", id("other"))).await);
    assert!(!stored(phone(), inbound.wamid.clone()).await);
}

async fn a_send_result_is_kept_per_claim(store: Arc<dyn ContactStore>) {
    let request = id("reply:wamid");
    let who = phone();
    assert_eq!(store.send_result(&request, &who).await.unwrap(), None);
    let sent = SendResult {
        at: at(7, 123),
        outcome: SendOutcome::Sent {
            wamid: format!("wamid.{}", id("out")),
        },
    };
    store
        .record_send_result(&request, &who, &sent)
        .await
        .unwrap();
    // Recorded again (a replay): the same.
    store
        .record_send_result(&request, &who, &sent)
        .await
        .unwrap();
    assert_eq!(store.send_result(&request, &who).await.unwrap(), Some(sent));
    assert_eq!(store.send_result(&request, &phone()).await.unwrap(), None);
    assert_eq!(
        store.send_result(&id("reply:other"), &who).await.unwrap(),
        None
    );
    // Failures, with and without a Graph code.
    for (n, code) in [(1, Some(131_026)), (2, None)] {
        let failed = SendResult {
            at: at(8 + n, 0),
            outcome: SendOutcome::Failed {
                code,
                reason: format!("refused {n}"),
            },
        };
        let other = phone();
        store
            .record_send_result(&request, &other, &failed)
            .await
            .unwrap();
        assert_eq!(
            store.send_result(&request, &other).await.unwrap(),
            Some(failed)
        );
    }
}

async fn claim_send_first_claim_wins(store: Arc<dyn ContactStore>) {
    let campaign = id("campaign");
    let who = phone();
    let before = Utc::now() - chrono::Duration::seconds(60);
    assert_eq!(
        store.claim_send(&campaign, &who).await.unwrap(),
        Claim::Claimed
    );
    let Claim::AlreadyClaimed(first) = store.claim_send(&campaign, &who).await.unwrap() else {
        panic!("a second send claim must be refused");
    };
    // The value is the first claim's time, and stays the same for later claimants.
    let claimed_at = DateTime::parse_from_rfc3339(&first).expect("claim time");
    assert!(claimed_at >= before && claimed_at <= Utc::now() + chrono::Duration::seconds(60));
    assert_eq!(
        store.claim_send(&campaign, &who).await.unwrap(),
        Claim::AlreadyClaimed(first)
    );
    // Other contacts and other campaigns are separate claims.
    assert_eq!(
        store.claim_send(&campaign, &phone()).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        store.claim_send(&id("campaign"), &who).await.unwrap(),
        Claim::Claimed
    );
}

async fn concurrent_claims_have_exactly_one_winner(store: Arc<dyn ContactStore>) {
    let fingerprint = id("race");
    let hash = id("race_ic").into_bytes();
    let phones: Vec<PhoneNumber> = (0..8).map(|_| phone()).collect();
    let claims = (0..8).map(|i| {
        let store = Arc::clone(&store);
        let fingerprint = fingerprint.clone();
        tokio::spawn(async move { store.claim_receipt(&fingerprint, &format!("p{i}")).await })
    });
    let links = phones.iter().cloned().map(|p| {
        let store = Arc::clone(&store);
        let hash = hash.clone();
        tokio::spawn(async move { store.link_ic(&hash, &p).await })
    });
    let claims: Vec<Claim> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let links: Vec<IcLink> = futures::future::join_all(links)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();

    let winners: Vec<usize> = (0..8).filter(|i| claims[*i] == Claim::Claimed).collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
    let winner = format!("p{}", winners[0]);
    for (i, claim) in claims.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(claim, &Claim::AlreadyClaimed(winner.clone()));
        }
    }

    let linked: Vec<usize> = (0..8).filter(|i| links[*i] == IcLink::Linked).collect();
    assert_eq!(linked.len(), 1, "{links:?}");
    let owner = phones[linked[0]].clone();
    for (i, link) in links.iter().enumerate() {
        if i != linked[0] {
            assert_eq!(link, &IcLink::LinkedToOther(owner.clone()));
        }
    }
    assert_eq!(store.find_by_ic(&hash).await.unwrap(), Some(owner));
}

async fn messages_newest_first_with_limit(store: Arc<dyn ContactStore>) {
    let who = phone();
    let neighbour = phone();
    let mut all = vec![];
    for (i, second) in [30, 10, 50, 20, 40].into_iter().enumerate() {
        let mut m = message(&who, &format!("wamid.{}.{i}", id("m")), at(second, 0));
        if i % 2 == 0 {
            m.direction = Direction::Inbound;
            m.kind = "text".into();
            m.campaign_id = None;
        }
        if i == 1 {
            m.body = None;
        }
        store.put_message(&m).await.unwrap();
        all.push(m);
    }
    store
        .put_message(&message(&neighbour, "wamid.neighbour", at(60, 0)))
        .await
        .unwrap();
    // Same time, different ids: both kept.
    let tie = message(&who, "wamid.tie", at(50, 0));
    store.put_message(&tie).await.unwrap();
    all.push(tie);

    let mut expected = all.clone();
    expected.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.wamid.cmp(&b.wamid)));

    let newest = store.messages(&who, 3).await.unwrap();
    assert_eq!(newest, expected[..3].to_vec());
    assert_eq!(store.messages(&who, 100).await.unwrap(), expected);
    assert_eq!(store.messages(&who, 0).await.unwrap(), vec![]);

    // Point look-ups; a replayed put changes nothing.
    for m in &all {
        assert_eq!(
            store.message(&who, &m.wamid).await.unwrap().as_ref(),
            Some(m)
        );
    }
    store.put_message(&all[0]).await.unwrap();
    assert_eq!(store.messages(&who, 100).await.unwrap(), expected);
    assert_eq!(
        store.message(&neighbour, &all[0].wamid).await.unwrap(),
        None
    );
}

async fn record_status_any_order_gives_the_same_timeline(store: Arc<dyn ContactStore>) {
    use DeliveryStatus::*;
    let who = phone();
    let reports = [
        (Accepted, at(0, 0)),
        (Sent, at(1, 100)),
        (Delivered, at(2, 200)),
        (Read, at(3, 300)),
    ];
    let mut expected = DeliveryTimeline::default();
    for (status, when) in reports {
        expected.apply(status, when, None);
    }

    let in_order = message(&who, "wamid.in_order", at(0, 0));
    store.put_message(&in_order).await.unwrap();
    for (status, when) in reports {
        store
            .record_status(&who, &in_order.wamid, status, when, None)
            .await
            .unwrap();
    }

    // Read receipt first, delivered after it, later duplicates (retries with later times),
    // and exact replays.
    let shuffled = message(&who, "wamid.shuffled", at(0, 0));
    store.put_message(&shuffled).await.unwrap();
    let arrivals = [
        (Read, at(3, 300)),
        (Read, at(9, 0)),
        (Delivered, at(7, 0)),
        (Delivered, at(2, 200)),
        (Sent, at(1, 100)),
        (Delivered, at(2, 200)),
        (Sent, at(8, 0)),
        (Accepted, at(0, 0)),
        (Read, at(3, 300)),
    ];
    for (status, when) in arrivals {
        store
            .record_status(&who, &shuffled.wamid, status, when, None)
            .await
            .unwrap();
    }

    let a = store.message(&who, &in_order.wamid).await.unwrap().unwrap();
    let b = store.message(&who, &shuffled.wamid).await.unwrap().unwrap();
    assert_eq!(a.timeline, expected);
    assert_eq!(b.timeline, expected);
    assert_eq!(b.timeline.current(), Read);
    assert_eq!(b.timeline.delivered_at, Some(at(2, 200)));

    // An earlier report of a recorded status corrects its time.
    store
        .record_status(&who, &shuffled.wamid, Delivered, at(1, 500), None)
        .await
        .unwrap();
    let b = store.message(&who, &shuffled.wamid).await.unwrap().unwrap();
    assert_eq!(b.timeline.delivered_at, Some(at(1, 500)));
    // The rest of the message is untouched by reports.
    assert_eq!(
        MessageRecord {
            timeline: DeliveryTimeline::default(),
            ..b
        },
        shuffled
    );
}

async fn failure_code_of_the_earliest_failure_wins(store: Arc<dyn ContactStore>) {
    use DeliveryStatus::*;
    let who = phone();
    type Report = (DeliveryStatus, DateTime<Utc>, Option<i64>);
    let orders: [&[Report]; 2] = [
        &[
            (Sent, at(1, 0), None),
            (Failed, at(5, 0), Some(131_026)),
            (Failed, at(9, 0), Some(131_047)),
        ],
        &[
            (Failed, at(9, 0), Some(131_047)),
            (Failed, at(5, 0), Some(131_026)),
            (Sent, at(1, 0), None),
            (Failed, at(9, 0), Some(131_047)),
        ],
    ];
    for (i, reports) in orders.iter().enumerate() {
        let m = message(&who, &format!("wamid.failed.{i}"), at(0, 0));
        store.put_message(&m).await.unwrap();
        for (status, when, code) in reports.iter() {
            store
                .record_status(&who, &m.wamid, *status, *when, *code)
                .await
                .unwrap();
        }
        let timeline = store
            .message(&who, &m.wamid)
            .await
            .unwrap()
            .unwrap()
            .timeline;
        assert_eq!(timeline.failed_at, Some(at(5, 0)), "order {i}");
        assert_eq!(timeline.error_code, Some(131_026), "order {i}");
        assert_eq!(timeline.current(), Failed);
        // A read receipt outranks the failure; the failure stays recorded.
        store
            .record_status(&who, &m.wamid, Read, at(12, 0), None)
            .await
            .unwrap();
        let timeline = store
            .message(&who, &m.wamid)
            .await
            .unwrap()
            .unwrap()
            .timeline;
        assert_eq!(timeline.current(), Read);
        assert_eq!(timeline.error_code, Some(131_026));
    }
}

/// A write-behind flush stores many messages of many contacts in one call, each merged as
/// put_message would (a status already recorded survives).
async fn put_messages_stores_each_like_put_message(store: Arc<dyn ContactStore>) {
    use DeliveryStatus::*;
    let (a, b) = (phone(), phone());
    let batch: Vec<MessageRecord> = (0..5)
        .map(|i| {
            let who = if i % 2 == 0 { &a } else { &b };
            message(
                who,
                &format!("wamid.{}", id(&format!("batch_{i}"))),
                at(i, 0),
            )
        })
        .collect();
    store
        .record_status(&a, &batch[0].wamid, Read, at(30, 0), None)
        .await
        .unwrap();
    store.put_messages(&batch).await.unwrap();
    store.put_messages(&batch).await.unwrap();
    let of_a = store.messages(&a, 10).await.unwrap();
    let of_b = store.messages(&b, 10).await.unwrap();
    assert_eq!(
        (of_a.len(), of_b.len()),
        (3, 2),
        "each once, under its contact"
    );
    assert_eq!(of_a[0].wamid, batch[4].wamid, "newest first");
    let first = store.message(&a, &batch[0].wamid).await.unwrap().unwrap();
    assert_eq!(first.timeline.read_at, Some(at(30, 0)));
    assert_eq!(first.body, batch[0].body);
    store.put_messages(&[]).await.unwrap();
}

/// A flush of contacts with their messages and purchases: a contact with more messages (and
/// bytes) than one write fits, outbound messages with reports, purchases counted and
/// pending, a message of a contact not in the flush; everything lands once, and replaying
/// the flush changes nothing.
async fn write_behind_stores_contacts_and_many_messages(store: Arc<dyn ContactStore>) {
    use DeliveryStatus::*;
    let (busy, quiet, absent) = (phone(), phone(), phone());
    let mut busy_contact = full_contact(busy.clone());
    busy_contact.interactions.message_count = 60;
    let quiet_contact = full_contact(quiet.clone());
    let long_body = "x".repeat(2_000);
    let mut messages: Vec<MessageRecord> = (0..60)
        .map(|i| {
            let mut m = message(
                &busy,
                &format!("wamid.{}", id(&format!("wb_{i}"))),
                at(i, 0),
            );
            m.body = Some(format!("{i} {long_body}"));
            m
        })
        .collect();
    let mut outbound = message(&quiet, &format!("wamid.{}", id("wb_out")), at(100, 0));
    outbound.direction = Direction::Outbound;
    outbound.timeline.sent_at = Some(at(101, 0));
    outbound.timeline.delivered_at = Some(at(102, 0));
    messages.push(outbound.clone());
    messages.push(message(
        &absent,
        &format!("wamid.{}", id("wb_absent")),
        at(5, 0),
    ));
    let counted = purchase("wb-p1", 4_560, PurchaseStatus::Counted, at(103, 0));
    let pending = purchase("wb-p2", 99_999, PurchaseStatus::PendingReview, at(104, 0));
    let purchases = vec![(quiet.clone(), counted.clone()), (quiet.clone(), pending)];
    let contacts = vec![
        ContactWrite::whole(&busy_contact),
        ContactWrite::whole(&quiet_contact),
    ];

    store
        .write_behind(&contacts, &messages, &purchases)
        .await
        .unwrap();
    store
        .write_behind(&contacts, &messages, &purchases)
        .await
        .unwrap();

    assert_eq!(store.load_contact(&busy).await.unwrap(), Some(busy_contact));
    let mut quiet_with_ledger = quiet_contact;
    quiet_with_ledger
        .purchases
        .apply(&counted.counted_event().unwrap());
    assert_eq!(
        store.load_contact(&quiet).await.unwrap(),
        Some(quiet_with_ledger)
    );
    assert_eq!(store.purchases(&quiet).await.unwrap().len(), 2);
    assert_eq!(store.load_contact(&absent).await.unwrap(), None);
    let of_busy = store.messages(&busy, 100).await.unwrap();
    assert_eq!(of_busy.len(), 60, "every message once");
    assert!(
        of_busy[0].body.as_deref().unwrap().starts_with("59 "),
        "newest first"
    );
    let stored = store
        .message(&quiet, &outbound.wamid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.timeline.current(), Delivered);
    assert_eq!(stored.timeline.sent_at, Some(at(101, 0)));
    assert_eq!(store.messages(&absent, 10).await.unwrap().len(), 1);
    store.write_behind(&[], &[], &[]).await.unwrap();
}

/// What a flush usually writes: a stored contact with its interaction stats, its
/// applied-event keys, its tier and its name changed, only those fields marked.
async fn write_behind_of_the_changed_fields_gives_the_new_contact(store: Arc<dyn ContactStore>) {
    let who = phone();
    let before = full_contact(who.clone());
    store.upsert_contact(&before).await.unwrap();
    let mut after = before.clone();
    after.name = Some("Nur Aisyah".into());
    after.customer_tier = Tier::Platinum;
    after.interactions.message_count += 1;
    after.interactions.last_interaction = Some(at(90, 1));
    after.applied_events.insert("wamid.C");
    after.updated_at = at(90, 2);
    let changed = ContactFields::changed(&before, &after);
    assert_eq!(changed.len(), 6);

    let write = ContactWrite {
        contact: &after,
        changed,
    };
    store.write_behind(&[write], &[], &[]).await.unwrap();
    assert_eq!(store.load_contact(&who).await.unwrap(), Some(after.clone()));

    // Nothing changed: the contact reads the same.
    let unchanged = ContactWrite {
        contact: &after,
        changed: ContactFields::NONE,
    };
    store.write_behind(&[unchanged], &[], &[]).await.unwrap();
    assert_eq!(store.load_contact(&who).await.unwrap(), Some(after));
}

/// Contacts are versioned by `updated_at`: a deposed engine's flush of an older version
/// that lands after its successor's changes nothing, whole or field by field; a version a
/// millisecond later takes effect.
async fn an_older_contact_version_never_replaces_a_later_one(store: Arc<dyn ContactStore>) {
    let who = phone();
    let mut stored = full_contact(who.clone());
    stored.updated_at = at(200, 0);
    stored.interactions.message_count = 10;
    store.upsert_contact(&stored).await.unwrap();

    let mut older = stored.clone();
    older.updated_at = at(199, 999);
    older.name = Some("Older Name".into());
    older.customer_tier = Tier::Silver;
    older.interactions.message_count = 7;
    let changed = ContactFields::changed(&stored, &older);
    assert_eq!(changed.len(), 4);
    store
        .write_behind(
            &[ContactWrite {
                contact: &older,
                changed,
            }],
            &[],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        store.load_contact(&who).await.unwrap(),
        Some(stored.clone())
    );
    store.upsert_contact(&older).await.unwrap();
    assert_eq!(
        store.load_contact(&who).await.unwrap(),
        Some(stored.clone())
    );

    let mut later = stored.clone();
    later.updated_at = at(200, 1);
    later.interactions.message_count = 11;
    let changed = ContactFields::changed(&stored, &later);
    store
        .write_behind(
            &[ContactWrite {
                contact: &later,
                changed,
            }],
            &[],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(store.load_contact(&who).await.unwrap(), Some(later));
}

/// A flush of many contacts whose rows are large (long custom attributes): however the
/// backend groups them, each write stays within what the server takes.
async fn write_behind_of_many_large_contacts_in_one_flush(store: Arc<dyn ContactStore>) {
    let contacts: Vec<Contact> = (0..40)
        .map(|i| {
            let mut contact = full_contact(phone());
            contact
                .attributes
                .insert("notes".into(), json!(format!("{i} {}", "n".repeat(10_000))));
            contact
        })
        .collect();
    let writes: Vec<ContactWrite<'_>> = contacts.iter().map(ContactWrite::whole).collect();
    store.write_behind(&writes, &[], &[]).await.unwrap();
    for contact in &contacts {
        assert_eq!(
            store
                .load_contact(&contact.phone_number)
                .await
                .unwrap()
                .as_ref(),
            Some(contact)
        );
    }
}

async fn put_message_never_regresses_statuses(store: Arc<dyn ContactStore>) {
    use DeliveryStatus::*;
    let who = phone();
    let m = message(&who, &format!("wamid.{}", id("early_status")), at(0, 0));
    // Reports can arrive before the message is stored: no message yet, but kept.
    store
        .record_status(&who, &m.wamid, Delivered, at(5, 0), None)
        .await
        .unwrap();
    store
        .record_status(&who, &m.wamid, Sent, at(4, 0), None)
        .await
        .unwrap();
    assert_eq!(store.message(&who, &m.wamid).await.unwrap(), None);
    assert_eq!(store.messages(&who, 10).await.unwrap(), vec![]);

    store.put_message(&m).await.unwrap();
    let stored = store.message(&who, &m.wamid).await.unwrap().unwrap();
    assert_eq!(stored.timeline.sent_at, Some(at(4, 0)));
    assert_eq!(stored.timeline.delivered_at, Some(at(5, 0)));
    assert_eq!(stored.body, m.body);

    // A stale copy of the message (later times, fewer statuses) does not regress them;
    // statuses it adds are merged.
    let mut stale = m.clone();
    stale.body = Some("edited".into());
    stale.timeline = DeliveryTimeline {
        sent_at: Some(at(6, 0)),
        delivered_at: Some(at(8, 0)),
        read_at: Some(at(9, 0)),
        failed_at: None,
        error_code: None,
    };
    store.put_message(&stale).await.unwrap();
    let stored = store.message(&who, &m.wamid).await.unwrap().unwrap();
    assert_eq!(stored.body.as_deref(), Some("edited"));
    assert_eq!(
        stored.timeline,
        DeliveryTimeline {
            sent_at: Some(at(4, 0)),
            delivered_at: Some(at(5, 0)),
            read_at: Some(at(9, 0)),
            failed_at: None,
            error_code: None,
        }
    );
    assert_eq!(store.messages(&who, 10).await.unwrap(), vec![stored]);
}

fn segment(segment_id: &str, name: &str, created: DateTime<Utc>) -> SegmentRecord {
    SegmentRecord {
        segment_id: segment_id.to_string(),
        name: name.to_string(),
        definition_json: r#"{"and":[{"field":"state","op":"eq","value":"Selangor"}]}"#.into(),
        created_at: created,
        updated_at: created,
    }
}

async fn segments_crud(store: Arc<dyn ContactStore>) {
    let a = segment(&id("seg_a"), "Selangor mums", at(0, 1));
    let b = segment(&id("seg_b"), "Gold tier", at(1, 2));
    store.put_segment(&a).await.unwrap();
    store.put_segment(&b).await.unwrap();
    assert_eq!(store.segment(&a.segment_id).await.unwrap(), Some(a.clone()));
    let ours = |all: Vec<SegmentRecord>| -> Vec<SegmentRecord> {
        all.into_iter()
            .filter(|s| s.segment_id == a.segment_id || s.segment_id == b.segment_id)
            .collect()
    };
    let listed = ours(store.segments().await.unwrap());
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&a) && listed.contains(&b));

    let mut renamed = a.clone();
    renamed.name = "Selangor parents".into();
    renamed.definition_json = r#"{"field":"gender","op":"eq","value":"female"}"#.into();
    renamed.updated_at = at(100, 0);
    store.put_segment(&renamed).await.unwrap();
    assert_eq!(
        store.segment(&a.segment_id).await.unwrap(),
        Some(renamed.clone())
    );

    store.delete_segment(&a.segment_id).await.unwrap();
    assert_eq!(store.segment(&a.segment_id).await.unwrap(), None);
    assert_eq!(ours(store.segments().await.unwrap()), vec![b.clone()]);
    // Deleting again, or something unknown, is not an error.
    store.delete_segment(&a.segment_id).await.unwrap();
    store.delete_segment(&id("seg_none")).await.unwrap();
    assert_eq!(store.segment(&b.segment_id).await.unwrap(), Some(b));
}

async fn campaigns_crud(store: Arc<dyn ContactStore>) {
    let a = CampaignRecord {
        campaign_id: id("camp_a"),
        name: "Hari Raya".into(),
        status: CampaignStatus::Draft,
        definition_json: r#"{"segments":["gold"],"template":"raya_promo"}"#.into(),
        created_at: at(0, 10),
        updated_at: at(0, 10),
    };
    let b = CampaignRecord {
        campaign_id: id("camp_b"),
        name: "Merdeka".into(),
        status: CampaignStatus::Scheduled,
        definition_json: "{}".into(),
        created_at: at(5, 0),
        updated_at: at(6, 0),
    };
    store.put_campaign(&a).await.unwrap();
    store.put_campaign(&b).await.unwrap();
    assert_eq!(
        store.campaign(&a.campaign_id).await.unwrap(),
        Some(a.clone())
    );
    let mut launched = a.clone();
    launched.status = CampaignStatus::Running;
    launched.updated_at = at(50, 0);
    store.put_campaign(&launched).await.unwrap();
    assert_eq!(
        store.campaign(&a.campaign_id).await.unwrap(),
        Some(launched.clone())
    );
    let ours: Vec<CampaignRecord> = store
        .campaigns()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.campaign_id == a.campaign_id || c.campaign_id == b.campaign_id)
        .collect();
    assert_eq!(ours.len(), 2);
    assert!(ours.contains(&launched) && ours.contains(&b));
}

async fn scan_pages_through_every_contact_once(store: Arc<dyn ContactStore>) {
    let contacts: Vec<Contact> = (0..250)
        .map(|i| {
            let mut c = Contact::new(phone(), at(i, 0));
            c.name = Some(format!("Contact {i}"));
            c
        })
        .collect();
    store.upsert_contacts(&contacts).await.unwrap();
    // The batch wrote every contact in full.
    for c in [&contacts[0], &contacts[124], &contacts[249]] {
        assert_eq!(
            store.load_contact(&c.phone_number).await.unwrap().as_ref(),
            Some(c)
        );
    }

    let mut seen = HashSet::new();
    let mut token: Option<PageToken> = None;
    let mut pages = 0;
    loop {
        let page = store.scan_contacts(token.take(), 100).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 100, "page of {}", page.items.len());
        for phone in page.items {
            assert!(seen.insert(phone.clone()), "{phone} returned twice");
        }
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
        assert!(pages < 10_000, "the scan does not end");
    }
    for c in &contacts {
        assert!(seen.contains(&c.phone_number), "{} missing", c.phone_number);
    }
    // Other tests share the CQL keyspace, so there may be more, but at least 3 pages.
    assert!(pages >= 3, "{pages} pages for {} contacts", seen.len());
}

async fn recipient_steps_merge_in_any_order_and_page_through_every_recipient(
    store: Arc<dyn ContactStore>,
) {
    let campaign = id("campaign");
    let who = phone();
    let steps = vec![
        RecipientUpdate::Planned { at: at(10, 1) },
        RecipientUpdate::Failed(Failure {
            at: at(11, 0),
            code: Some(130429),
            reason: "throughput".into(),
            retryable: true,
            cap_retries: 0,
        }),
        RecipientUpdate::Failed(Failure {
            at: at(12, 0),
            code: None,
            reason: "timeout".into(),
            retryable: false,
            // Kept with the failure (an automatic retry's count).
            cap_retries: 2,
        }),
        RecipientUpdate::Sent {
            at: at(13, 5),
            wamid: "wamid.S".into(),
        },
        RecipientUpdate::Read { at: at(15, 0) },
        RecipientUpdate::Delivered { at: at(14, 9) },
        RecipientUpdate::Delivered { at: at(14, 500) },
        RecipientUpdate::Clicked { at: at(16, 0) },
        RecipientUpdate::Converted {
            at: at(17, 0),
            amount: Money::from_sen(4560),
        },
        RecipientUpdate::Converted {
            at: at(18, 0),
            amount: Money::from_sen(1),
        },
    ];
    let mut expected = RecipientSteps::default();
    for step in &steps {
        expected.apply(step);
    }
    // Backwards, one write per step, then forwards all at once: the same row.
    for step in steps.iter().rev() {
        store
            .record_recipients(&campaign, &[(who.clone(), step.clone())])
            .await
            .unwrap();
    }
    let both: Vec<_> = steps.iter().map(|s| (who.clone(), s.clone())).collect();
    store.record_recipients(&campaign, &both).await.unwrap();
    let stored = store.recipient(&campaign, &who).await.unwrap().unwrap();
    assert_eq!(stored, expected);
    assert_eq!(stored.status(), RecipientStatus::Converted);
    assert_eq!(stored.failed.as_ref().unwrap().code, None, "latest attempt");
    assert_eq!(store.recipient(&campaign, &phone()).await.unwrap(), None);
    assert_eq!(store.recipient(&id("other"), &who).await.unwrap(), None);

    // Many recipients, one skipped: each listed once, with its own steps.
    let many: Vec<PhoneNumber> = (0..230).map(|_| phone()).collect();
    let mut planned: Vec<_> = many
        .iter()
        .map(|p| (p.clone(), RecipientUpdate::Planned { at: at(20, 0) }))
        .collect();
    planned.push((
        many[7].clone(),
        RecipientUpdate::Skipped {
            at: at(20, 0),
            reason: SkipReason::FrequencyCap,
        },
    ));
    store.record_recipients(&campaign, &planned).await.unwrap();
    let mut seen = HashSet::new();
    let mut token: Option<PageToken> = None;
    let mut pages = 0;
    loop {
        let page = store.recipients(&campaign, token.take(), 50).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 50);
        for row in page.items {
            let skipped = row.contact == many[7];
            assert_eq!(
                row.steps.status(),
                if row.contact == who {
                    RecipientStatus::Converted
                } else if skipped {
                    RecipientStatus::Skipped
                } else {
                    RecipientStatus::Pending
                },
                "{}",
                row.contact
            );
            assert!(seen.insert(row.contact), "listed twice");
        }
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
        assert!(pages < 1_000, "the listing does not end");
    }
    assert_eq!(seen.len(), 231);
    assert!(pages >= 5);
}

// ---------------------------------------------------------------------------------------
// Backend-specific
// ---------------------------------------------------------------------------------------

#[test]
fn embedded_store_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.redb");
    let contact = full_contact(phone());
    let hash = b"persisted".to_vec();
    RUNTIME.block_on(async {
        let store = EmbeddedStore::open(&path).unwrap();
        store.upsert_contact(&contact).await.unwrap();
        store
            .put_purchase(
                &contact.phone_number,
                &purchase("kept", 1_234, PurchaseStatus::Counted, at(1, 0)),
            )
            .await
            .unwrap();
        store.link_ic(&hash, &contact.phone_number).await.unwrap();
    });
    RUNTIME.block_on(async {
        let store = EmbeddedStore::open(&path).unwrap();
        let loaded = store
            .load_contact(&contact.phone_number)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(loaded.spending().total_spent, Money::from_sen(1_234));
        assert_eq!(
            store.link_ic(&hash, &phone()).await.unwrap(),
            IcLink::LinkedToOther(contact.phone_number.clone())
        );
    });
}

#[test]
fn embedded_scan_token_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("s.redb")).unwrap();
    let err = RUNTIME
        .block_on(store.scan_contacts(Some(PageToken(vec![0xff, 0xfe])), 10))
        .unwrap_err();
    assert!(matches!(err, StoreError::Query { .. }), "{err}");
}

#[test]
fn scylla_migrations_apply_once() {
    on_shared_cluster(|shared| async move {
        let all: Vec<u32> = CQL_MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(shared.first.from_version, 0);
        assert_eq!(shared.first.applied, all);
        assert_eq!(shared.first.target, "scylla");
        assert_eq!(shared.second.applied, Vec::<u32>::new());
        assert_eq!(shared.second.from_version, *all.last().unwrap());

        // A third run on the store's own session: still nothing to do.
        let target =
            CqlMigrationTarget::new(Arc::clone(shared.store.session()), &KEYSPACE, REPLICATION)
                .unwrap();
        let third = migrate(&target, CQL_MIGRATIONS, &target.vars())
            .await
            .unwrap();
        assert!(third.applied.is_empty());
    });
}

/// The one row `cql` reads, with the contact's number as its only value.
async fn one_row<R>(session: &::scylla::client::session::Session, cql: &str, who: &PhoneNumber) -> R
where
    R: for<'f, 'm> ::scylla::deserialize::row::DeserializeRow<'f, 'm>,
{
    session
        .query_unpaged(cql.to_string(), (who.as_str(),))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row::<R>()
        .unwrap()
}

/// The CQL store writes only the changed fields' cells: an unchanged column keeps its
/// write time, and a value changed outside the flush (here, straight in the table) stays.
#[test]
fn scylla_write_behind_writes_only_changed_columns() {
    on_shared_cluster(|shared| async move {
        let store = &shared.store;
        let session = Arc::clone(store.session());
        let who = phone();
        let before = full_contact(who.clone());
        store.upsert_contact(&before).await.unwrap();
        let select = format!(
            "SELECT WRITETIME(name), WRITETIME(state), WRITETIME(message_count), \
             WRITETIME(updated_at), state FROM {}.contacts WHERE phone = ?",
            *KEYSPACE
        );
        type Times = (
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let first: Times = one_row(&session, &select, &who).await;
        // Someone else moves the state; the flush below does not know of it.
        session
            .query_unpaged(
                format!(
                    "UPDATE {}.contacts SET state = 'Johor' WHERE phone = ?",
                    *KEYSPACE
                ),
                (who.as_str(),),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;

        let mut after = before.clone();
        after.interactions.message_count += 1;
        after.updated_at = at(95, 0);
        let write = ContactWrite {
            contact: &after,
            changed: ContactFields::changed(&before, &after),
        };
        store.write_behind(&[write], &[], &[]).await.unwrap();

        let second: Times = one_row(&session, &select, &who).await;
        assert_eq!(second.0, first.0, "name not rewritten");
        assert!(second.2 > first.2, "message_count written");
        assert!(second.3 > first.3, "updated_at written");
        assert_eq!(
            second.4.as_deref(),
            Some("Johor"),
            "the other writer's state stays"
        );
        let loaded = store.load_contact(&who).await.unwrap().unwrap();
        assert_eq!(loaded.interactions.message_count, 43);
        assert_eq!(loaded.name, before.name);
    });
}

/// An inbound message takes one row (in `inbound_messages`), not a row in `messages` plus
/// its time index; inbound messages stored the old way are still read, in time order with
/// the new ones.
#[test]
fn scylla_inbound_messages_take_one_row_and_old_ones_still_read() {
    on_shared_cluster(|shared| async move {
        let store = &shared.store;
        let session = Arc::clone(store.session());
        let who = phone();
        let mut new = message(&who, &format!("wamid.{}", id("in_new")), at(20, 0));
        new.direction = Direction::Inbound;
        new.kind = "text".into();
        new.campaign_id = None;
        store.write_behind(&[], &[new.clone()], &[]).await.unwrap();

        let count = |table: &str| {
            format!(
                "SELECT COUNT(*) FROM {}.{table} WHERE contact = ?",
                *KEYSPACE
            )
        };
        let rows = |table: &'static str| {
            let (session, cql, who) = (Arc::clone(&session), count(table), who.clone());
            async move { one_row::<(i64,)>(&session, &cql, &who).await.0 }
        };
        assert_eq!(rows("inbound_messages").await, 1);
        assert_eq!(rows("messages").await, 0);
        assert_eq!(rows("messages_by_time").await, 0);

        // One stored before the migration: a `messages` row and its index row.
        let old_wamid = format!("wamid.{}", id("in_old"));
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {}.messages (contact, wamid, direction, kind, body, created_at) \
                     VALUES (?, ?, 'inbound', 'text', 'hi', ?)",
                    *KEYSPACE
                ),
                (
                    who.as_str(),
                    old_wamid.as_str(),
                    ::scylla::value::CqlTimestamp(at(10, 0).timestamp_millis()),
                ),
            )
            .await
            .unwrap();
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {}.messages_by_time (contact, created_at, wamid) VALUES (?, ?, ?)",
                    *KEYSPACE
                ),
                (
                    who.as_str(),
                    ::scylla::value::CqlTimestamp(at(10, 0).timestamp_millis()),
                    old_wamid.as_str(),
                ),
            )
            .await
            .unwrap();
        let mut outbound = message(&who, &format!("wamid.{}", id("out")), at(15, 0));
        outbound.timeline.sent_at = Some(at(16, 0));
        store.put_message(&outbound).await.unwrap();

        let listed: Vec<String> = store
            .messages(&who, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.wamid)
            .collect();
        assert_eq!(
            listed,
            vec![new.wamid.clone(), outbound.wamid.clone(), old_wamid.clone()]
        );
        let newest_two = store.messages(&who, 2).await.unwrap();
        assert_eq!(newest_two[0], new);
        assert_eq!(newest_two[1], outbound);
        assert_eq!(store.message(&who, &new.wamid).await.unwrap(), Some(new));
        let old = store.message(&who, &old_wamid).await.unwrap().unwrap();
        assert_eq!(
            (old.direction, old.body.as_deref()),
            (Direction::Inbound, Some("hi"))
        );
    });
}

#[test]
fn scylla_refuses_a_newer_schema_and_a_missing_one() {
    let keyspace = support::unique_name("sembang_newer");
    let Some(config) = cluster_config(&keyspace) else {
        return;
    };
    RUNTIME.block_on(async move {
        let target = CqlMigrationTarget::connect(&config, REPLICATION)
            .await
            .unwrap();
        // A database some newer binary migrated to version 99.
        sembang::storage::migrate::MigrationTarget::prepare(&target)
            .await
            .unwrap();
        target.record_version(99, "from_the_future").await.unwrap();
        let err = migrate(&target, CQL_MIGRATIONS, &target.vars())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                MigrateError::NewerThanKnown {
                    target: "scylla",
                    found: 99,
                    known
                } if known == CQL_MIGRATIONS.len() as u32
            ),
            "{err}"
        );
        // Nothing was applied: the store cannot start on this keyspace, and says why.
        let err = match ScyllaStore::connect(config.clone()).await {
            Ok(_) => panic!("the store started on a keyspace without tables"),
            Err(e) => e,
        };
        assert!(matches!(err, StoreError::Schema(_)), "{err}");
        assert!(err.to_string().contains("migrations"), "{err}");

        target
            .session()
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
            .await
            .unwrap();
    });
}

#[test]
fn scylla_unreachable_cluster_gives_a_typed_error() {
    // Nothing listens on port 1. Runs without the stack too: no service is needed.
    let config = ScyllaConfig {
        nodes: vec!["127.0.0.1:1".into()],
        keyspace: "sembang_unreachable".into(),
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
    };
    RUNTIME.block_on(async move {
        let guard = Duration::from_secs(60);
        let store = tokio::time::timeout(guard, ScyllaStore::connect(config.clone()))
            .await
            .expect("connecting to an unreachable node hung");
        let err = match store {
            Ok(_) => panic!("connected to nothing"),
            Err(e) => e,
        };
        assert!(
            matches!(
                err,
                StoreError::Unavailable {
                    service: "scylla",
                    ..
                } | StoreError::Timeout {
                    service: "scylla",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("scylla"), "{err}");

        let target = tokio::time::timeout(guard, CqlMigrationTarget::connect(&config, REPLICATION))
            .await
            .expect("connecting for migrations hung");
        assert!(
            matches!(
                target,
                Err(StoreError::Unavailable { .. } | StoreError::Timeout { .. })
            ),
            "{:?}",
            target.err()
        );
    });
}

async fn reaches_are_found_after_their_time_and_leave_with_an_erasure(
    store: Arc<dyn ContactStore>,
) {
    let (amin, mei) = (phone(), phone());
    // Whole milliseconds, as both stores keep.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let hours = |h: i64| now - chrono::Duration::hours(h);
    for (who, when) in [
        (&amin, hours(30)),
        (&amin, hours(2)),
        (&mei, hours(23)),
        (&mei, now),
    ] {
        store.record_reach(who, when).await.unwrap();
    }
    // Other tests share the CQL keyspace: only these two customers are looked at.
    let ours = |reaches: Vec<(PhoneNumber, DateTime<Utc>)>| {
        let mut ours: Vec<_> = reaches
            .into_iter()
            .filter(|(p, _)| *p == amin || *p == mei)
            .collect();
        ours.sort();
        ours
    };
    let mut expected = vec![
        (amin.clone(), hours(2)),
        (mei.clone(), hours(23)),
        (mei.clone(), now),
    ];
    expected.sort();
    assert_eq!(
        ours(store.reaches_since(hours(24)).await.unwrap()),
        expected
    );
    // `since` itself is excluded.
    assert_eq!(
        ours(store.reaches_since(hours(2)).await.unwrap()),
        vec![(mei.clone(), now)]
    );
    store.erase_contact(&mei).await.unwrap();
    assert_eq!(
        ours(store.reaches_since(hours(48)).await.unwrap()),
        vec![(amin.clone(), hours(30)), (amin.clone(), hours(2))]
    );
}
