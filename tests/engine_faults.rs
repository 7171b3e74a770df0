//! Faults the engine must absorb: provider rate limits, server errors and permanent
//! refusals (through the fake Cloud API), and a store that fails long enough for a contact
//! shard to give up, so its role is restarted by the supervisor and the message is applied
//! exactly once by the new incarnation; and an engine deposed by a rebalance whose flush
//! lands after its successor's.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::Notify;

use sembang::app::{self as runtime, Backends};
use sembang::domain::campaign::{RecipientSteps, RecipientUpdate};
use sembang::domain::contact::Contact;
use sembang::domain::contact_fields::{ContactField, ContactFields};
use sembang::domain::message::DeliveryStatus;
use sembang::domain::phone::PhoneNumber;
use sembang::domain::purchase::Purchase;
use sembang::provider::fake_cloud_api::FakeFailure;
use sembang::provider::OutboundContent;
use sembang::storage::bus::{EmbeddedBus, EmbeddedBusConfig, KafkaBus, KafkaBusConfig, Record};
use sembang::storage::sink::{AnalyticsEvent, EventTable, FileSink};
use sembang::storage::store::{
    CampaignRecord, Catalog, Claim, ContactStore, ContactWrite, Contacts, IcLink, MessageLog,
    MessageRecord, Page, PageToken, RecipientLedger, RecipientRow, SegmentRecord, SendLedger,
    SendOutcome, SendResult, StoreError,
};
use sembang::topics;
use sembang::topics::outbound::{Origin, OutboundRequest};

use support::engine::*;

fn fake(h: &Harness) -> &sembang::provider::fake_cloud_api::FakeCloudApi {
    match &h.replies {
        Replies::Fake(fake) => fake,
        Replies::Sandbox => panic!("this harness sends through the sandbox"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_rate_limits_and_outages_are_retried_and_refusals_recorded() {
    let h = Harness::embedded_with(true, |store| store).await;
    let siti = PhoneNumber::parse(SITI).unwrap();

    // Over the throughput limit, then a 503: both retried with backoff, delivered once.
    fake(&h).fail_next(
        1,
        FakeFailure::Code {
            http_status: 400,
            code: 130_429,
        },
    );
    fake(&h).fail_next(1, FakeFailure::ServerError(503));
    h.post(&text(SITI, "wamid.F-1", T0, "help")).await;
    let sent = h.sent_reaches(1).await;
    assert!(sent[0].1.contains("MyKad"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.sent().await.len(), 1, "one delivery despite the retries");

    // Undeliverable (131026) is permanent: not retried, recorded as a failed message.
    fake(&h).fail_next(
        1,
        FakeFailure::Code {
            http_status: 400,
            code: 131_026,
        },
    );
    h.post(&text(SITI, "wamid.F-2", T0 + 10, "daftar")).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let failed = loop {
        if let Some(m) = h.store.message(&siti, "reply:wamid.F-2").await.unwrap() {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refusal was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed.timeline.current(), DeliveryStatus::Failed);
    assert_eq!(failed.timeline.error_code, Some(131_026));
    h.events_reach(EventTable::MessageStatuses, 1).await;
    let statuses = h
        .reader
        .fetch_events(EventTable::MessageStatuses, 10)
        .await
        .unwrap();
    match &statuses[..] {
        [AnalyticsEvent::MessageStatus(s)] => {
            assert_eq!(
                (s.status, s.error_code),
                (DeliveryStatus::Failed, Some(131_026))
            )
        }
        other => panic!("expected one failed status, got {other:?}"),
    }
    assert_eq!(h.sent().await.len(), 1, "the refused reply was not sent");
    h.stop().await;
}

/// A send that times out may have been taken by the provider: it is recorded as failed
/// with an unknown outcome and not sent again, so the customer never gets it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_whose_answer_times_out_is_not_sent_again() {
    let h = Harness::embedded_tuned(
        true,
        |store| store,
        |config| config.whatsapp.request_timeout_ms = 300,
    )
    .await;
    let siti = PhoneNumber::parse(SITI).unwrap();
    // The fake takes the message, then answers after the client gave up.
    fake(&h).fail_next(1, FakeFailure::Delay(Duration::from_secs(2)));
    h.post(&text(SITI, "wamid.T-1", T0, "help")).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let failed = loop {
        if let Some(m) = h.store.message(&siti, "reply:wamid.T-1").await.unwrap() {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unknown outcome was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed.timeline.current(), DeliveryStatus::Failed);
    // Longer than the sender's first retry backoff and the fake's delay together.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(h.sent().await.len(), 1, "taken once, not sent again");
    let metrics = h.metrics().await;
    assert!(
        // Other tests of this binary share the recorder: the series, not its value.
        metrics.contains("sembang_sender_sends_total{outcome=\"unknown\"}"),
        "unknown outcome counted:\n{metrics}"
    );

    // The next reply goes through normally.
    h.post(&text(SITI, "wamid.T-2", T0 + 10, "help")).await;
    h.sent_reaches(2).await;
    h.stop().await;
}

/// WhatsApp may deliver a message again long after it was applied, when the contact's
/// dedupe window (its latest 32 events) has forgotten it: its stored row still marks it as
/// applied, so it counts nothing and is not answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redelivery_older_than_the_dedupe_window_changes_nothing() {
    let h = Harness::embedded().await;
    h.post(&text(SITI, "wamid.OLD-1", T0, "help")).await;
    h.message_count_reaches(SITI, 1).await;
    for i in 1..=40 {
        h.post(&text(SITI, &format!("wamid.OLD-N{i}"), T0 + i, "ok"))
            .await;
    }
    h.message_count_reaches(SITI, 41).await;
    let replies = h.sent_reaches(1).await.len();

    h.post(&text(SITI, "wamid.OLD-1", T0, "help")).await;
    // A message after it, on the same partition: once it counts, the redelivery was seen.
    h.post(&text(SITI, "wamid.OLD-LAST", T0 + 100, "ok")).await;
    let contact = h.message_count_reaches(SITI, 42).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let contact_now = h.contact(SITI).await.unwrap();
    assert_eq!(contact_now["message_count"], 42, "{contact}");
    assert_eq!(h.sent().await.len(), replies, "not answered again");
    let metrics = h.metrics().await;
    assert!(
        metrics
            .contains("sembang_engine_messages_total{message_type=\"text\",outcome=\"duplicate\"}"),
        "{metrics}"
    );
    h.stop().await;
}

/// Repeats further back than the dedupe window reaches, within one webhook (one batch):
/// one of an event applied earlier and still unflushed or just flushed, and one of an
/// event of the same batch. Neither counts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeats_beyond_the_window_within_one_batch_change_nothing() {
    let h = Harness::embedded().await;
    h.post(&text(SITI, "wamid.W-0", T0, "ok")).await;
    h.message_count_reaches(SITI, 1).await;

    let mut messages: Vec<(String, i64)> =
        (1..=40).map(|i| (format!("wamid.W-{i}"), T0 + i)).collect();
    messages.push(("wamid.W-0".into(), T0));
    messages.push(("wamid.W-1".into(), T0 + 1));
    h.post(&texts(SITI, &messages)).await;
    h.message_count_reaches(SITI, 41).await;
    // A message after them, on the same partition: once it counts, the repeats were seen.
    h.post(&text(SITI, "wamid.W-LAST", T0 + 100, "ok")).await;
    h.message_count_reaches(SITI, 42).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let contact = h.contact(SITI).await.unwrap();
    assert_eq!(contact["message_count"], 42, "{contact}");
    h.stop().await;
}

/// One webhook carrying several texts of `from`, in order: (wamid, time).
fn texts(from: &str, messages: &[(String, i64)]) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(wamid, at)| {
            json!({ "from": from, "id": wamid, "timestamp": at.to_string(),
                    "type": "text", "text": { "body": "ok" } })
        })
        .collect();
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{ "profile": { "name": "Pelanggan" }, "wa_id": from }],
        "messages": messages,
    }))
}

/// Waits until the row of inbound message `wamid` of `contact` is stored.
async fn message_row_appears(h: &Harness, contact: &str, wamid: &str) {
    let phone = PhoneNumber::parse(contact).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while h.store.message(&phone, wamid).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the row of {wamid} was never written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A reply request on wa.outbound, as the shards produce it.
fn reply_request(request_id: &str, body: &str) -> Record {
    let request = OutboundRequest {
        request_id: request_id.into(),
        phone_number_id: "106540352242922".into(),
        business_number: "60321611234".into(),
        to: PhoneNumber::parse(SITI).unwrap(),
        content: OutboundContent::Text {
            body: body.into(),
            preview_url: false,
        },
        origin: Origin::AutoReply,
        rule: Some("help".into()),
        campaign_id: None,
        in_reply_to: None,
        created_at: Utc::now(),
    };
    Record::new(
        "",
        request.phone_number_id.as_bytes().to_vec(),
        serde_json::to_vec(&request).unwrap(),
    )
}

/// A sender that stopped after claiming a request finishes it on the replay without sending
/// it again: from the result it stored (the provider took it: message row and event); from
/// the result a claimant still at work stores while the replay waits; or, with none stored
/// once any send would have ended, as an unknown outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_send_is_finished_from_what_was_recorded_not_sent_again() {
    let h = Harness::embedded_tuned(
        false,
        |store| store,
        |config| {
            config.whatsapp.send_budget_ms = 1_000;
            config.whatsapp.request_timeout_ms = 300;
        },
    )
    .await;
    let siti = PhoneNumber::parse(SITI).unwrap();
    let outbound = h.names.name(topics::OUTBOUND);
    let taken_at = Utc::now() - chrono::Duration::seconds(30);
    // The provider took "reply:wamid.S-1"; the process stopped before the row and event.
    assert_eq!(
        h.store.claim_send("reply:wamid.S-1", &siti).await.unwrap(),
        Claim::Claimed
    );
    let taken = SendResult {
        at: taken_at,
        outcome: SendOutcome::Sent {
            wamid: "wamid.PROVIDER-1".into(),
        },
    };
    h.store
        .record_send_result("reply:wamid.S-1", &siti, &taken)
        .await
        .unwrap();
    // "reply:wamid.S-2" was claimed, and the process stopped during the send.
    h.store.claim_send("reply:wamid.S-2", &siti).await.unwrap();
    // "reply:wamid.S-3" was claimed by a sender still at it: its result comes in a moment.
    h.store.claim_send("reply:wamid.S-3", &siti).await.unwrap();
    // S-3 first: the sender waits for its result before it reaches the others.
    for (id, body) in [
        ("reply:wamid.S-3", "three"),
        ("reply:wamid.S-1", "one"),
        ("reply:wamid.S-2", "two"),
    ] {
        let mut record = reply_request(id, body);
        record.topic = outbound.clone();
        h.bus.producer().send(record).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = SendResult {
        at: Utc::now(),
        outcome: SendOutcome::Sent {
            wamid: "wamid.PROVIDER-3".into(),
        },
    };
    h.store
        .record_send_result("reply:wamid.S-3", &siti, &late)
        .await
        .unwrap();

    h.events_reach(EventTable::OutboundMessages, 2).await;
    h.events_reach(EventTable::MessageStatuses, 1).await;
    assert!(
        h.store
            .message(&siti, "wamid.PROVIDER-3")
            .await
            .unwrap()
            .is_some(),
        "the claimant's result, not an unknown outcome"
    );
    assert!(h
        .store
        .message(&siti, "reply:wamid.S-3")
        .await
        .unwrap()
        .is_none());
    let message = h
        .store
        .message(&siti, "wamid.PROVIDER-1")
        .await
        .unwrap()
        .expect("the message row, under the provider's wamid");
    assert_eq!(message.body.as_deref(), Some("one"));
    assert_eq!(
        message.created_at.timestamp_millis(),
        taken_at.timestamp_millis()
    );
    let unknown = h
        .store
        .message(&siti, "reply:wamid.S-2")
        .await
        .unwrap()
        .expect("the unknown outcome, under the request id");
    assert_eq!(unknown.timeline.current(), DeliveryStatus::Failed);
    let recorded = h
        .store
        .send_result("reply:wamid.S-2", &siti)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&recorded.outcome, SendOutcome::Failed { reason, .. } if reason.contains("outcome unknown")),
        "{recorded:?}"
    );
    assert!(h.sent().await.is_empty(), "nothing sent again");
    h.stop().await;
}

/// Split brain: an engine loses its partitions while a flush hangs (the rebalance stops
/// waiting for it after the revoke timeout), and that flush lands after the successor
/// has applied the same messages and newer ones. Contacts are versioned by updated_at,
/// so the late flush does not put the successor's contacts back. On the embedded bus and
/// store here, on Kafka and Cassandra in the next test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deposed_engines_late_flush_does_not_undo_its_successors_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(&dir);
    split_brain_config(&mut config);
    let mut backends = Backends::from_config(&config, &secrets()).await.unwrap();
    let mut bus = EmbeddedBusConfig::new(dir.path().join("rebalancing-bus"));
    bus.revoke_timeout = REVOKE_TIMEOUT;
    backends.bus = Arc::new(EmbeddedBus::open(bus).unwrap());
    let split = SplitBrain::gate(&config, &mut backends);
    let files = FileSink::open(std::path::Path::new(&config.data_dir).join("events")).unwrap();
    let h = Harness::start(config, backends, Arc::new(files), Replies::Sandbox, dir).await;
    deposed_engine_scenario(h, split).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deposed_engines_late_flush_does_not_undo_its_successors_work_on_the_real_stack() {
    let mut split = None;
    let Some(h) = Harness::real_stack_built(split_brain_config, |config, backends| {
        let mut bus = KafkaBusConfig::new(config.bus.kafka_brokers.clone());
        bus.revoke_timeout = REVOKE_TIMEOUT;
        backends.bus = Arc::new(KafkaBus::new(bus).unwrap());
        split = Some(SplitBrain::gate(config, backends));
    })
    .await
    else {
        return;
    };
    deposed_engine_scenario(h, split.unwrap()).await;
}

/// One shard, whose flushes wait long enough for a round of messages to all contacts to
/// be in one.
fn split_brain_config(config: &mut sembang::config::Config) {
    config.engine.shards = 1;
    config.engine.flush_max_delay_ms = 500;
}

/// How long a rebalance waits for a revoked engine in the split-brain tests.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(1);

/// The parts of a split-brain test: the store behind the gate, the gate, and what the
/// successor engine starts with (the same bus, store and sink, no gate).
struct SplitBrain {
    store: Arc<dyn ContactStore>,
    gate: Arc<Gate>,
    successor_config: sembang::config::Config,
    successor: Backends,
    _successor_dir: tempfile::TempDir,
}

impl SplitBrain {
    /// Puts a gate in front of `backends`' store and keeps what the successor needs.
    fn gate(config: &sembang::config::Config, backends: &mut Backends) -> SplitBrain {
        let store = backends.store.clone();
        let gate = Arc::new(Gate::default());
        backends.store = Arc::new(FlakyStore {
            gate: Some(gate.clone()),
            ..FlakyStore::new(store.clone(), Arc::default())
        });
        let successor_dir = tempfile::tempdir().unwrap();
        let mut successor_config = config.clone();
        successor_config.data_dir = successor_dir.path().display().to_string();
        SplitBrain {
            successor: Backends {
                bus: backends.bus.clone(),
                store: store.clone(),
                sink: backends.sink.clone(),
                analytics: backends.analytics.clone(),
                provider: backends.provider.clone(),
                sandbox: backends.sandbox.clone(),
            },
            store,
            gate,
            successor_config,
            _successor_dir: successor_dir,
        }
    }
}

async fn deposed_engine_scenario(h: Harness, split: SplitBrain) {
    let SplitBrain {
        store,
        gate,
        successor_config,
        successor,
        _successor_dir,
    } = split;
    let phones: Vec<PhoneNumber> = (0..12)
        .map(|i| PhoneNumber::parse(&format!("6013{:07}", 4_000_000 + i)).unwrap())
        .collect();
    // A round is one webhook with `each` texts from every contact (an entry per text), so
    // the engine takes it in one go and a flush holds all of it.
    let post_round = |round: i64, each: usize, to: Vec<PhoneNumber>| {
        let h = &h;
        async move {
            let mut entries: Vec<Value> = Vec::new();
            for phone in &to {
                for i in 0..each {
                    let wamid = format!("wamid.SPLIT-{}-{round}-{i}", phone.as_str());
                    let at = T0 + round * 10 + i as i64;
                    entries.push(text(phone.as_str(), &wamid, at, "ok")["entry"][0].clone());
                }
            }
            h.post(&json!({ "object": "whatsapp_business_account", "entry": entries }))
                .await;
        }
    };
    // Round 1, stored and committed by the only engine.
    post_round(1, 1, phones.clone()).await;
    message_counts_until(&*store, &phones, "round 1", |c| c.iter().all(|&n| n == 1)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Round 2's flush hangs; round 3 (three texts each) waits behind it in the shard.
    gate.armed.store(true, Ordering::SeqCst);
    post_round(2, 1, phones.clone()).await;
    tokio::time::timeout(WAIT, gate.held.notified())
        .await
        .expect("a flush is held");
    post_round(3, 3, phones.clone()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A second engine joins; the first cannot hand over in time, so the successor takes
    // some partitions from the last commit and applies rounds 2 and 3 again, then 4.
    let running = runtime::start(&successor_config, &secrets(), successor)
        .await
        .unwrap();
    message_counts_until(&*store, &phones, "successor", |c| c.contains(&5)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = message_counts(&*store, &phones).await;
    let (moved, kept): (Vec<PhoneNumber>, Vec<PhoneNumber>) = phones
        .iter()
        .cloned()
        .partition(|phone| counts[phones.iter().position(|p| p == phone).unwrap()] == 5);
    assert!(
        !moved.is_empty() && !kept.is_empty(),
        "the successor took some partitions, not all: {} of {}",
        moved.len(),
        phones.len()
    );
    let held = gate.held_contacts.lock().unwrap().clone();
    assert!(
        moved.iter().all(|phone| held.contains(phone)),
        "the held flush has round 2 of every moved contact: {held:?}"
    );
    post_round(4, 1, moved.clone()).await;
    let counts_of = |of: &[PhoneNumber], c: &[u64]| -> Vec<u64> {
        c.iter()
            .zip(&phones)
            .filter(|(_, p)| of.contains(p))
            .map(|(&n, _)| n)
            .collect()
    };
    message_counts_until(&*store, &phones, "round 4 at the successor", |c| {
        counts_of(&moved, c).iter().all(|&n| n == 6)
    })
    .await;

    // The deposed engine's round-2 flush lands now, then it goes on with round 3: its
    // own contacts' and, past its lease, not the moved ones'.
    gate.open.notify_one();
    tokio::time::timeout(WAIT, gate.landed.notified())
        .await
        .expect("the held flush lands");
    let after = message_counts(&*store, &phones).await;
    assert_eq!(
        counts_of(&moved, &after),
        vec![6; moved.len()],
        "a late write of the deposed engine went over round 4: {after:?}"
    );
    // The moved contacts' round 3 was abandoned, not finished: the deposed engine still
    // reads on (its revocation, then new records) with those records in flight.
    message_counts_until(&*store, &phones, "round 3 of the kept contacts", |c| {
        counts_of(&kept, c).iter().all(|&n| n == 5)
    })
    .await;
    post_round(5, 1, kept.clone()).await;
    message_counts_until(&*store, &phones, "round 5 of the kept contacts", |c| {
        counts_of(&kept, c).iter().all(|&n| n == 6)
    })
    .await;
    let settled = message_counts(&*store, &phones).await;
    assert_eq!(
        counts_of(&moved, &settled),
        vec![6; moved.len()],
        "the deposed engine applied round 3 over round 4: {settled:?}"
    );
    running.shutdown().await;
    h.stop().await;
}

/// The stored message count of each of `phones` (0 when unknown).
async fn message_counts(store: &dyn ContactStore, phones: &[PhoneNumber]) -> Vec<u64> {
    let mut counts = Vec::with_capacity(phones.len());
    for phone in phones {
        let contact = store.load_contact(phone).await.unwrap();
        counts.push(contact.map_or(0, |c| c.interactions.message_count));
    }
    counts
}

/// Waits until the stored message counts of `phones` satisfy `done`; returns them.
async fn message_counts_until(
    store: &dyn ContactStore,
    phones: &[PhoneNumber],
    what: &str,
    done: impl Fn(&[u64]) -> bool,
) -> Vec<u64> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let counts = message_counts(store, phones).await;
        if done(&counts) {
            return counts;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A store in front of another that injects the [`Faults`] its test sets. A gate, if
/// any, holds the first write-behind flush with contacts after it is armed, until it is
/// opened, then lets it through: a flush that hangs past a rebalance and lands late.
struct FlakyStore {
    inner: Arc<dyn ContactStore>,
    faults: Arc<Faults>,
    gate: Option<Arc<Gate>>,
}

/// What a [`FlakyStore`] does, shared with the test that drives it. Contact writes fail
/// while `failures` is above zero. Write-behind flushes fail part-way, as when a flush's
/// batches or tables are applied separately: while `torn` is above zero the message rows
/// are stored and the rows of contacts already stored are not; while `rows_lost` is, the
/// contacts' rows are stored and the message rows are not; while `second_writes_fail`
/// is, the writes a flush sends after its contacts' rows (no contacts, only rows) fail.
/// `flushed` records the fields each flush marked as changed, per contact.
#[derive(Default)]
struct Faults {
    failures: AtomicU32,
    torn: AtomicU32,
    rows_lost: AtomicU32,
    second_writes_fail: AtomicU32,
    flushed: Mutex<Vec<(String, ContactFields)>>,
}

impl FlakyStore {
    fn new(inner: Arc<dyn ContactStore>, faults: Arc<Faults>) -> Self {
        FlakyStore {
            inner,
            faults,
            gate: None,
        }
    }

    fn fail(&self) -> Result<(), StoreError> {
        if take_one(&self.faults.failures) {
            Err(outage())
        } else {
            Ok(())
        }
    }
}

/// The embedded engine, its store behind a [`FlakyStore`] with `faults`.
async fn on_flaky_store(faults: &Arc<Faults>) -> Harness {
    let faults = faults.clone();
    Harness::embedded_with(false, move |inner| Arc::new(FlakyStore::new(inner, faults))).await
}

#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    /// Notified when a flush is held.
    held: Notify,
    /// The contacts of the held flush.
    held_contacts: Mutex<Vec<PhoneNumber>>,
    open: Notify,
    /// Notified when the held flush has been written.
    landed: Notify,
}

/// Decrements `counter` if it is above zero; whether it was.
fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

fn outage() -> StoreError {
    StoreError::Unavailable {
        service: "flaky",
        detail: "injected outage".into(),
    }
}
#[async_trait]
impl Contacts for FlakyStore {
    async fn load_contact(&self, phone: &PhoneNumber) -> Result<Option<Contact>, StoreError> {
        self.inner.load_contact(phone).await
    }
    async fn upsert_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        self.fail()?;
        self.inner.upsert_contact(contact).await
    }
    async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<(), StoreError> {
        self.fail()?;
        self.inner.upsert_contacts(contacts).await
    }
    async fn write_behind(
        &self,
        contacts: &[ContactWrite<'_>],
        messages: &[MessageRecord],
        purchases: &[(PhoneNumber, Purchase)],
    ) -> Result<(), StoreError> {
        if let Some(gate) = &self.gate {
            if !contacts.is_empty() && gate.armed.swap(false, Ordering::SeqCst) {
                let phones = contacts.iter().map(|w| w.contact.phone_number.clone());
                gate.held_contacts.lock().unwrap().extend(phones);
                gate.held.notify_one();
                gate.open.notified().await;
                let written = self.inner.write_behind(contacts, messages, purchases).await;
                gate.landed.notify_one();
                return written;
            }
        }
        self.fail()?;
        if take_one(&self.faults.torn) {
            // Everything is written but the rows of contacts already stored, which keep
            // their old version (new contacts' rows are written).
            let mut new_contacts = Vec::new();
            for write in contacts {
                let phone = &write.contact.phone_number;
                if self.inner.load_contact(phone).await?.is_none() {
                    new_contacts.push(*write);
                }
            }
            self.inner
                .write_behind(&new_contacts, messages, purchases)
                .await?;
            return Err(outage());
        }
        if contacts.is_empty() && take_one(&self.faults.second_writes_fail) {
            return Err(outage());
        }
        if take_one(&self.faults.rows_lost) {
            self.inner.write_behind(contacts, &[], purchases).await?;
            return Err(outage());
        }
        // Recorded before the write, so whoever sees its effect sees the record too.
        self.faults.flushed.lock().unwrap().extend(
            contacts
                .iter()
                .map(|w| (w.contact.phone_number.as_str().to_string(), w.changed)),
        );
        self.inner.write_behind(contacts, messages, purchases).await
    }
    async fn scan_contacts(
        &self,
        from: Option<PageToken>,
        limit: u32,
    ) -> Result<Page<PhoneNumber>, StoreError> {
        self.inner.scan_contacts(from, limit).await
    }
    async fn link_ic(&self, keyed_hash: &[u8], phone: &PhoneNumber) -> Result<IcLink, StoreError> {
        self.inner.link_ic(keyed_hash, phone).await
    }
    async fn find_by_ic(&self, keyed_hash: &[u8]) -> Result<Option<PhoneNumber>, StoreError> {
        self.inner.find_by_ic(keyed_hash).await
    }
    async fn put_purchase(
        &self,
        contact: &PhoneNumber,
        purchase: &Purchase,
    ) -> Result<(), StoreError> {
        self.inner.put_purchase(contact, purchase).await
    }
    async fn purchases(&self, contact: &PhoneNumber) -> Result<Vec<Purchase>, StoreError> {
        self.inner.purchases(contact).await
    }
    async fn erase_contact(
        &self,
        contact: &PhoneNumber,
    ) -> Result<sembang::storage::store::ErasedContact, StoreError> {
        self.inner.erase_contact(contact).await
    }
    async fn claim_receipt(
        &self,
        fingerprint: &str,
        purchase_id: &str,
    ) -> Result<Claim, StoreError> {
        self.inner.claim_receipt(fingerprint, purchase_id).await
    }
}

#[async_trait]
impl MessageLog for FlakyStore {
    async fn put_message(&self, message: &MessageRecord) -> Result<(), StoreError> {
        self.inner.put_message(message).await
    }
    async fn message(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        self.inner.message(contact, wamid).await
    }
    async fn messages(
        &self,
        contact: &PhoneNumber,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.inner.messages(contact, limit).await
    }
    async fn record_status(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Result<(), StoreError> {
        self.inner
            .record_status(contact, wamid, status, at, error_code)
            .await
    }
    async fn inbound_stored(
        &self,
        contact: &PhoneNumber,
        at: DateTime<Utc>,
        wamid: &str,
    ) -> Result<bool, StoreError> {
        self.inner.inbound_stored(contact, at, wamid).await
    }
    async fn expire_message_bodies(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.expire_message_bodies(before).await
    }
}

#[async_trait]
impl SendLedger for FlakyStore {
    async fn claim_send(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Claim, StoreError> {
        self.inner.claim_send(campaign_id, contact).await
    }
    async fn record_send_result(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
        result: &SendResult,
    ) -> Result<(), StoreError> {
        self.inner
            .record_send_result(campaign_id, contact, result)
            .await
    }
    async fn send_result(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<SendResult>, StoreError> {
        self.inner.send_result(campaign_id, contact).await
    }
    async fn record_reach(
        &self,
        contact: &PhoneNumber,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.inner.record_reach(contact, at).await
    }
    async fn reaches_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(PhoneNumber, chrono::DateTime<chrono::Utc>)>, StoreError> {
        self.inner.reaches_since(since).await
    }
}

#[async_trait]
impl Catalog for FlakyStore {
    async fn put_segment(&self, segment: &SegmentRecord) -> Result<(), StoreError> {
        self.inner.put_segment(segment).await
    }
    async fn segment(&self, segment_id: &str) -> Result<Option<SegmentRecord>, StoreError> {
        self.inner.segment(segment_id).await
    }
    async fn segments(&self) -> Result<Vec<SegmentRecord>, StoreError> {
        self.inner.segments().await
    }
    async fn delete_segment(&self, segment_id: &str) -> Result<(), StoreError> {
        self.inner.delete_segment(segment_id).await
    }
    async fn put_campaign(&self, campaign: &CampaignRecord) -> Result<(), StoreError> {
        self.inner.put_campaign(campaign).await
    }
    async fn campaign(&self, campaign_id: &str) -> Result<Option<CampaignRecord>, StoreError> {
        self.inner.campaign(campaign_id).await
    }
    async fn campaigns(&self) -> Result<Vec<CampaignRecord>, StoreError> {
        self.inner.campaigns().await
    }
}

#[async_trait]
impl RecipientLedger for FlakyStore {
    async fn record_recipients(
        &self,
        campaign_id: &str,
        updates: &[(PhoneNumber, RecipientUpdate)],
    ) -> Result<(), StoreError> {
        self.inner.record_recipients(campaign_id, updates).await
    }
    async fn recipient(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<RecipientSteps>, StoreError> {
        self.inner.recipient(campaign_id, contact).await
    }
    async fn recipients(
        &self,
        campaign_id: &str,
        from: Option<PageToken>,
        limit: u32,
    ) -> Result<Page<RecipientRow>, StoreError> {
        self.inner.recipients(campaign_id, from, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_shard_is_restarted_and_its_records_applied_once() {
    let faults = Arc::new(Faults::default());
    let h = on_flaky_store(&faults).await;
    h.post(&text(SITI, "wamid.R-1", T0, "hello")).await;
    h.message_count_reaches(SITI, 1).await;

    // More consecutive failures than one flush retries (7 attempts): the shard fails, its
    // role is restarted, and the new incarnation re-reads the uncommitted records.
    faults.failures.store(9, Ordering::SeqCst);
    h.post(&text(SITI, "wamid.R-2", T0 + 10, "help")).await;
    h.post(&text(SITI, "wamid.R-3", T0 + 20, "ok")).await;
    let contact = h.message_count_reaches(SITI, 3).await;
    assert_eq!(
        faults.failures.load(Ordering::SeqCst),
        0,
        "the outage was used up"
    );
    assert_eq!(contact["response_rate"], 1.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let contact = h.contact(SITI).await.unwrap();
    assert_eq!(
        contact["message_count"], 3,
        "nothing applied twice after the restart"
    );
    assert_eq!(
        h.sent_reaches(1).await.len(),
        1,
        "one reply, not one per incarnation"
    );

    let metrics = h.metrics().await;
    assert!(
        metrics.contains("sembang_actor_restarts_total{role=\"engine\"}"),
        "restart counted in /metrics:\n{metrics}"
    );
    assert!(metrics.contains("sembang_ingress_requests_total{outcome=\"accepted\"}"));
    h.stop().await;
}

/// A flush cut short after its message rows and before its contact's row. A late message
/// (no newer than the contact's latest) has its row written only after its contact's, so
/// the restarted shard, which looks such a message up, finds no row and applies it; had
/// the row been written with the others, it would take the message for a redelivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_message_whose_flush_was_torn_is_applied_after_the_restart() {
    let faults = Arc::new(Faults::default());
    let h = on_flaky_store(&faults).await;
    for i in 1..=40 {
        h.post(&text(SITI, &format!("wamid.T-{i}"), T0 + 10 * i, "ok"))
            .await;
    }
    h.message_count_reaches(SITI, 40).await;

    // A new message, then one first delivered now though written before the latest ones
    // (older than the dedupe window holds): their flush is torn until the shard gives up
    // (7 attempts) and twice more in the next incarnation.
    faults.torn.store(9, Ordering::SeqCst);
    h.post(&text(SITI, "wamid.T-NEW", T0 + 420, "ok")).await;
    h.post(&text(SITI, "wamid.T-LATE", T0 + 55, "ok")).await;
    // (The torn flushes are used up first, across the shard's restart; only then is the
    // count read.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while faults.torn.load(Ordering::SeqCst) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the torn flushes were not used up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.message_count_reaches(SITI, 42).await;

    // Once a later message counts, everything before it on the partition has been seen.
    h.post(&text(SITI, "wamid.T-AFTER", T0 + 500, "ok")).await;
    h.message_count_reaches(SITI, 43).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let contact = h.contact(SITI).await.unwrap();
    assert_eq!(contact["message_count"], 43, "applied once: {contact}");
    message_row_appears(&h, SITI, "wamid.T-LATE").await;
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("sembang_actor_restarts_total{role=\"engine\"}"),
        "{metrics}"
    );
    h.stop().await;
}

/// A flush cut short after the contact's row and before its message's row: the restarted
/// shard finds the message in the contact's window, a duplicate, and writes its row again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_row_lost_beside_its_contact_is_written_again_on_replay() {
    let faults = Arc::new(Faults::default());
    faults.rows_lost.store(9, Ordering::SeqCst);
    let h = on_flaky_store(&faults).await;
    h.post(&text(SITI, "wamid.L-1", T0, "ok")).await;
    message_row_appears(&h, SITI, "wamid.L-1").await;
    assert_eq!(faults.rows_lost.load(Ordering::SeqCst), 0);
    h.post(&text(SITI, "wamid.L-2", T0 + 10, "ok")).await;
    h.message_count_reaches(SITI, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let contact = h.contact(SITI).await.unwrap();
    assert_eq!(contact["message_count"], 2, "applied once: {contact}");
    h.stop().await;
}

/// A late message followed by more of its contact's events than the dedupe window holds,
/// all in one webhook; the flush's second write (the late message's row, after the
/// contact's) fails until the shard is restarted. The shard flushed before the window
/// could lose the late message, so the stored contact knows it and the replay counts it
/// once (and writes its row).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_message_stays_known_until_its_row_is_stored() {
    let faults = Arc::new(Faults::default());
    let h = on_flaky_store(&faults).await;
    h.post(&text(SITI, "wamid.K-0", T0 + 100, "ok")).await;
    h.message_count_reaches(SITI, 1).await;

    faults.second_writes_fail.store(9, Ordering::SeqCst);
    let mut messages = vec![("wamid.K-LATE".to_string(), T0 + 50)];
    messages.extend((1..=40).map(|i| (format!("wamid.K-{i}"), T0 + 100 + i)));
    h.post(&texts(SITI, &messages)).await;
    message_row_appears(&h, SITI, "wamid.K-LATE").await;
    assert_eq!(
        faults.second_writes_fail.load(Ordering::SeqCst),
        0,
        "the failures were used up"
    );
    h.post(&text(SITI, "wamid.K-LAST", T0 + 500, "ok")).await;
    h.message_count_reaches(SITI, 43).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let contact = h.contact(SITI).await.unwrap();
    assert_eq!(contact["message_count"], 43, "applied once: {contact}");
    h.stop().await;
}

/// A new contact's first flush writes every field; later flushes write only what their
/// events changed (the CQL store then leaves the other cells alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushes_write_the_fields_their_events_changed() {
    use ContactField::*;
    let faults = Arc::new(Faults::default());
    let h = on_flaky_store(&faults).await;
    let of_siti = || -> Vec<ContactFields> {
        let flushed = faults.flushed.lock().unwrap();
        flushed
            .iter()
            .filter(|(phone, _)| phone == SITI)
            .map(|(_, changed)| *changed)
            .collect()
    };
    h.post(&text(SITI, "wamid.W-1", T0, "hello")).await;
    h.message_count_reaches(SITI, 1).await;
    assert_eq!(
        of_siti(),
        vec![ContactFields::ALL],
        "a new contact is written whole"
    );

    h.post(&text(SITI, "wamid.W-2", T0 + 10, "hello again"))
        .await;
    h.message_count_reaches(SITI, 2).await;
    let interaction: ContactFields = [MessageCount, LastInteraction, AppliedEvents, UpdatedAt]
        .into_iter()
        .collect();
    assert_eq!(of_siti(), vec![ContactFields::ALL, interaction]);

    // Opting out moves the consent fields too.
    h.post(&text(SITI, "wamid.W-3", T0 + 20, "STOP")).await;
    h.message_count_reaches(SITI, 3).await;
    let stop = of_siti()[2];
    for field in [WhatsappStatus, ConsentChange, MessageCount, AppliedEvents] {
        assert!(stop.contains(field), "{field:?} in {stop:?}");
    }
    for field in [Name, Gender, Ic, CreatedAt, Attributes] {
        assert!(!stop.contains(field), "{field:?} in {stop:?}");
    }
    h.stop().await;
}

/// A memory budget far below the number of contacts: shards evict least recently used
/// clean contacts and reload them from the store, and no change is lost on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evicted_contacts_come_back_from_the_store_intact() {
    let h = Harness::embedded_tuned(
        false,
        |store| store,
        |config| {
            config.engine.shards = 1;
            config.engine.max_resident_contacts = 3;
            config.engine.flush_max_delay_ms = 20;
        },
    )
    .await;
    let phones: Vec<String> = (0..12)
        .map(|i| format!("6012{:07}", 3_000_000 + i))
        .collect();
    for round in 0..3 {
        for (i, phone) in phones.iter().enumerate() {
            let at = T0 + round * 100 + i as i64;
            h.post(&text(phone, &format!("wamid.EV-{i}-{round}"), at, "hi"))
                .await;
        }
        // Let flushes and evictions happen between rounds.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for phone in &phones {
        h.message_count_reaches(phone, 3).await;
    }
    let metrics = h.metrics().await;
    let evicted: f64 = metrics
        .lines()
        .find(|l| l.starts_with("sembang_shard_evicted_contacts_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("eviction counter in /metrics");
    assert!(
        evicted >= 9.0,
        "12 contacts through a budget of 3 evict at least 9: {evicted}"
    );
    h.stop().await;
}
