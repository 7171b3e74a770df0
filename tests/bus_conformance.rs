//! The event-bus contract (src/storage/bus/mod.rs), checked against both backends: every
//! scenario runs on the embedded bus (temp dir) and on a real Kafka (`SEMBANG_TEST_KAFKA`),
//! with unique topic and group names per test.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sembang::storage::bus::dead_letter::{self, dead_letter};
use sembang::storage::bus::partitioner::partition_for;
use sembang::storage::bus::{
    Bus, BusError, Consumer, ConsumerEvent, EmbeddedBus, EmbeddedBusConfig, KafkaBus,
    KafkaBusConfig, Message, Record, TopicPartition, TopicSpec,
};
use tempfile::TempDir;

/// Waits for events that should come promptly (a Kafka group join takes a few seconds).
const PATIENCE: Duration = Duration::from_secs(45);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(1500);
/// The harnesses' revocation deadline (short, so the deadline scenario is quick).
const REVOKE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Embedded,
    Kafka,
}

struct Harness {
    backend: Backend,
    bus: Arc<dyn Bus>,
    _dir: Option<TempDir>,
}

fn embedded_config(dir: &std::path::Path) -> EmbeddedBusConfig {
    let mut config = EmbeddedBusConfig::new(dir);
    config.revoke_timeout = REVOKE_TIMEOUT;
    config
}

fn kafka_config(brokers: &str) -> KafkaBusConfig {
    let mut config = KafkaBusConfig::new(brokers);
    config.client_id = "sembang-bus-conformance".into();
    config.revoke_timeout = REVOKE_TIMEOUT;
    config.heartbeat_interval = Some(Duration::from_millis(500));
    config.session_timeout = Some(Duration::from_secs(6));
    // Small, so the bulk and stall scenarios exercise flow control.
    config.max_buffered_messages = 256;
    // librdkafka waits this long for a topic it does not know to appear before failing a
    // record for it (default 30 s); shortened for the unknown-topic check.
    config
        .properties
        .push(("topic.metadata.propagation.max.ms".into(), "1500".into()));
    config
}

impl Harness {
    fn embedded() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let bus = EmbeddedBus::open(embedded_config(dir.path())).expect("open embedded bus");
        Harness {
            backend: Backend::Embedded,
            bus: Arc::new(bus),
            _dir: Some(dir),
        }
    }

    fn kafka() -> Option<Harness> {
        let brokers = support::service(support::KAFKA)?;
        let bus = KafkaBus::new(kafka_config(&brokers)).expect("kafka bus");
        Some(Harness {
            backend: Backend::Kafka,
            bus: Arc::new(bus),
            _dir: None,
        })
    }

    async fn topic(&self, prefix: &str, partitions: u32) -> String {
        let name = support::unique_name(prefix);
        self.bus
            .ensure_topics(&[spec(&name, partitions)])
            .await
            .expect("create topic");
        name
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Box<dyn Consumer> {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        self.bus.subscribe(group, &topics).await.expect("subscribe")
    }

    /// `count` records on each listed partition, payload `"{partition}:{i}"`.
    async fn fill(&self, topic: &str, partitions: &[(u32, usize)]) {
        let producer = self.bus.producer();
        for &(p, count) in partitions {
            for i in 0..count {
                let record =
                    Record::new(topic, format!("k{p}"), format!("{p}:{i}")).to_partition(p);
                let delivery = producer.send_to(record).await.expect("send_to");
                assert_eq!(delivery.partition, p);
            }
        }
    }
}

fn spec(name: &str, partitions: u32) -> TopicSpec {
    TopicSpec {
        name: name.to_string(),
        partitions,
        replication_factor: 1,
        compacted: false,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The next event within `within`, or `None`; a consumer error fails the test.
async fn next_within(consumer: &mut Box<dyn Consumer>, within: Duration) -> Option<ConsumerEvent> {
    match tokio::time::timeout(within, consumer.next()).await {
        Ok(Ok(event)) => Some(event),
        Ok(Err(e)) => panic!("consumer failed: {e}"),
        Err(_) => None,
    }
}

/// Receives `count` messages (group events other than revocations are skipped).
async fn receive(consumer: &mut Box<dyn Consumer>, count: usize) -> Vec<Message> {
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_within(consumer, left).await {
            Some(ConsumerEvent::Message(m)) => out.push(m),
            Some(ConsumerEvent::Assigned(_)) => {}
            Some(ConsumerEvent::Revoked { partitions, .. }) => {
                panic!("unexpected revocation of {partitions:?}")
            }
            None => panic!(
                "received {} of {count} messages in {PATIENCE:?}; last offsets per partition: {:?}",
                out.len(),
                offsets_by_partition(&out)
                    .iter()
                    .map(|(p, o)| (*p, o.len(), o.last().copied()))
                    .collect::<Vec<_>>()
            ),
        }
    }
    out
}

/// Asserts nothing but group assignments arrives for `QUIET`.
async fn assert_quiet(consumer: &mut Box<dyn Consumer>) {
    let deadline = Instant::now() + QUIET;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_within(consumer, left).await {
            None => return,
            Some(ConsumerEvent::Assigned(_)) => {}
            Some(ConsumerEvent::Message(m)) => panic!(
                "unexpected message {}[{}]@{}",
                m.topic, m.partition, m.offset
            ),
            Some(ConsumerEvent::Revoked { partitions, .. }) => {
                panic!("unexpected revocation of {partitions:?}")
            }
        }
    }
}

async fn wait_assigned(consumer: &mut Box<dyn Consumer>) -> Vec<TopicPartition> {
    match next_within(consumer, PATIENCE).await {
        Some(ConsumerEvent::Assigned(partitions)) => partitions,
        Some(other) => panic!("expected an assignment, got {other:?}"),
        None => panic!("no assignment within {PATIENCE:?}"),
    }
}

fn offsets_by_partition(messages: &[Message]) -> BTreeMap<u32, Vec<u64>> {
    let mut out: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for m in messages {
        out.entry(m.partition).or_default().push(m.offset);
    }
    out
}

/// How a group member answers a revocation.
#[derive(Clone, Copy)]
enum Ack {
    /// Commit everything it received.
    Consumed,
    /// Commit this offset for every revoked partition.
    Fixed(u64),
}

/// A consumer-group member driven by [`drive`].
struct Member {
    consumer: Box<dyn Consumer>,
    owned: BTreeSet<TopicPartition>,
    messages: Vec<Message>,
    revoked: Vec<TopicPartition>,
    ack: Ack,
}

impl Member {
    fn new(consumer: Box<dyn Consumer>) -> Member {
        Member {
            consumer,
            owned: BTreeSet::new(),
            messages: Vec::new(),
            revoked: Vec::new(),
            ack: Ack::Consumed,
        }
    }

    fn handle(&mut self, event: ConsumerEvent) {
        match event {
            ConsumerEvent::Message(m) => {
                assert!(
                    self.owned.contains(&m.topic_partition()),
                    "message of {}[{}] not owned by this member",
                    m.topic,
                    m.partition
                );
                self.messages.push(m);
            }
            ConsumerEvent::Assigned(partitions) => self.owned.extend(partitions),
            ConsumerEvent::Revoked { partitions, ack } => {
                // The bus waits for this ack until the lease it recorded ends, at most
                // the revoke timeout from now (the engine abandons work past it).
                let by = std::time::Instant::now() + REVOKE_TIMEOUT;
                let ended = self.consumer.leases().ended(by);
                assert!(
                    partitions.iter().all(|tp| ended.contains(tp)),
                    "leases of {partitions:?} end within the revoke timeout"
                );
                let offsets = partitions
                    .iter()
                    .filter_map(|tp| match self.ack {
                        Ack::Fixed(offset) => Some((tp.clone(), offset)),
                        Ack::Consumed => self
                            .messages
                            .iter()
                            .filter(|m| m.topic_partition() == *tp)
                            .map(|m| m.offset + 1)
                            .max()
                            .map(|next| (tp.clone(), next)),
                    })
                    .collect();
                for tp in &partitions {
                    self.owned.remove(tp);
                }
                self.revoked.extend(partitions);
                ack.commit(offsets);
            }
        }
    }

    async fn close(self) {
        self.consumer.close().await.expect("close");
    }
}

/// Drives every member until `done` holds, failing after `within`.
async fn drive(members: &mut [Member], within: Duration, done: impl Fn(&[Member]) -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done(members) {
        let next = {
            let futures = members
                .iter_mut()
                .enumerate()
                .map(|(i, m)| Box::pin(async move { (i, m.consumer.next().await) }));
            tokio::time::timeout_at(deadline, futures::future::select_all(futures))
                .await
                .map(|((i, event), _, _)| (i, event))
        };
        match next {
            Ok((i, Ok(event))) => members[i].handle(event),
            Ok((i, Err(e))) => panic!("member {i} failed: {e}"),
            Err(_) => {
                let state: Vec<_> = members
                    .iter()
                    .map(|m| (m.owned.clone(), m.messages.len(), m.revoked.clone()))
                    .collect();
                panic!("condition not reached within {within:?}; members (owned, received, revoked): {state:?}")
            }
        }
    }
}

/// Drives every member for `period` (to catch anything that should not arrive).
async fn settle(members: &mut [Member], period: Duration) {
    let deadline = tokio::time::Instant::now() + period;
    loop {
        let next = {
            let futures = members
                .iter_mut()
                .enumerate()
                .map(|(i, m)| Box::pin(async move { (i, m.consumer.next().await) }));
            tokio::time::timeout_at(deadline, futures::future::select_all(futures))
                .await
                .map(|((i, event), _, _)| (i, event))
        };
        match next {
            Ok((i, Ok(event))) => members[i].handle(event),
            Ok((i, Err(e))) => panic!("member {i} failed: {e}"),
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// Keys land on `partition_for(key, n)`; each partition is delivered in offset order, and
/// each key's records in the order they were sent. Explicit partitions are honoured; an
/// empty key and a partition out of range are rejected.
async fn keyed_records_follow_partition_for_in_order(h: &Harness) {
    let topic = h.topic("bus_keyed", 4).await;
    let producer = h.bus.producer();
    let mut sent: Vec<(String, String)> = Vec::new();
    for i in 0..200 {
        let key = format!("6012345{:04}", i % 23);
        let payload = format!("{i}");
        let delivery = producer
            .send(Record::new(&topic, key.clone(), payload.clone()))
            .await
            .expect("send");
        assert_eq!(
            delivery.partition,
            partition_for(key.as_bytes(), 4),
            "key {key} on the murmur2 partition"
        );
        sent.push((key, payload));
    }
    // send_all keeps the same placement.
    let batch: Vec<Record> = (0..20)
        .map(|i| Record::new(&topic, format!("batch{i}"), "b"))
        .collect();
    let deliveries = producer.send_all(batch).await.expect("send_all");
    for (i, d) in deliveries.iter().enumerate() {
        assert_eq!(
            d.partition,
            partition_for(format!("batch{i}").as_bytes(), 4)
        );
    }
    let explicit = producer
        .send_to(Record::new(&topic, "any", "explicit").to_partition(3))
        .await
        .expect("send_to");
    assert_eq!(explicit.partition, 3);

    let empty_key = producer.send(Record::new(&topic, Vec::new(), "x")).await;
    assert!(
        matches!(empty_key, Err(BusError::RecordRefused { .. })),
        "empty key: {empty_key:?}"
    );
    let out_of_range = producer
        .send_to(Record::new(&topic, "k", "x").to_partition(9))
        .await;
    assert!(
        matches!(out_of_range, Err(BusError::Rejected { .. })),
        "partition 9 of 4: {out_of_range:?}"
    );

    let mut consumer = h
        .subscribe(&support::unique_name("g_keyed"), &[&topic])
        .await;
    let messages = receive(&mut consumer, 221).await;
    for (p, offsets) in offsets_by_partition(&messages) {
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "partition {p} in offset order without gaps: {offsets:?}"
        );
        assert_eq!(offsets[0], 0);
    }
    let mut per_key: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    for m in messages.iter().filter(|m| m.key.starts_with(b"6012345")) {
        assert_eq!(m.partition, partition_for(&m.key, 4));
        per_key
            .entry(m.key.clone())
            .or_default()
            .push(String::from_utf8(m.payload.clone()).unwrap());
    }
    let mut expected: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    for (key, payload) in sent {
        expected.entry(key.into_bytes()).or_default().push(payload);
    }
    assert_eq!(per_key, expected, "each key's records in send order");
    consumer.close().await.expect("close");
}

/// Headers (order, repeated names, empty and binary values), key, payload and the
/// production timestamp survive the round trip.
async fn headers_and_timestamps_round_trip(h: &Harness) {
    let topic = h.topic("bus_headers", 1).await;
    let binary: Vec<u8> = (0..=255).collect();
    let record = Record::new(&topic, b"\x00key\xff".to_vec(), binary.clone())
        .with_header("trace", "abc")
        .with_header("dup", "1")
        .with_header("empty", Vec::new())
        .with_header("dup", "2")
        .with_header("bin", vec![0u8, 159, 146, 150]);
    let before = now_ms();
    h.bus.producer().send(record.clone()).await.expect("send");
    let after = now_ms();
    let plain = Record::new(&topic, "k2", Vec::new());
    h.bus.producer().send(plain).await.expect("send plain");

    let mut consumer = h
        .subscribe(&support::unique_name("g_headers"), &[&topic])
        .await;
    let messages = receive(&mut consumer, 2).await;
    let m = &messages[0];
    assert_eq!(m.key, record.key);
    assert_eq!(m.payload, binary);
    assert_eq!(m.headers, record.headers);
    assert_eq!(m.header("dup"), Some(&b"1"[..]), "first of repeated names");
    assert!(
        m.timestamp_ms >= before - 5 && m.timestamp_ms <= after + 5,
        "timestamp {} within [{before}, {after}]",
        m.timestamp_ms
    );
    assert!(messages[1].headers.is_empty());
    assert!(messages[1].payload.is_empty());
    consumer.close().await.expect("close");
}

/// One consumer in a group gets every record of every partition exactly once.
async fn a_group_consumes_everything(h: &Harness) {
    let topic = h.topic("bus_all", 3).await;
    let records: Vec<Record> = (0..300)
        .map(|i| Record::new(&topic, format!("c{i}"), format!("{i}")))
        .collect();
    h.bus.producer().send_all(records).await.expect("send_all");
    let mut consumer = h.subscribe(&support::unique_name("g_all"), &[&topic]).await;
    let messages = receive(&mut consumer, 300).await;
    let payloads: HashSet<Vec<u8>> = messages.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(payloads.len(), 300, "no duplicates");
    assert_quiet(&mut consumer).await;
    consumer.close().await.expect("close");
}

/// After a commit, the next consumer of the group starts at the committed offsets: records
/// before them are not redelivered, records after them (uncommitted) are.
async fn commit_then_resume_redelivers_uncommitted(h: &Harness) {
    let topic = h.topic("bus_commit", 2).await;
    h.fill(&topic, &[(0, 20), (1, 20)]).await;
    let group = support::unique_name("g_commit");
    let mut first = h.subscribe(&group, &[&topic]).await;
    let messages = receive(&mut first, 40).await;
    assert_eq!(messages.len(), 40);
    let committed = [
        (TopicPartition::new(&topic, 0), 12),
        (TopicPartition::new(&topic, 1), 5),
    ];
    first.commit(&committed).await.expect("commit");
    assert_eq!(
        h.bus.committed_offsets(&group, &topic).await.unwrap(),
        vec![Some(12), Some(5)]
    );
    first.close().await.expect("close");

    let mut second = h.subscribe(&group, &[&topic]).await;
    let again = receive(&mut second, 8 + 15).await;
    let by_partition = offsets_by_partition(&again);
    assert_eq!(by_partition[&0], (12..20).collect::<Vec<u64>>());
    assert_eq!(by_partition[&1], (5..20).collect::<Vec<u64>>());
    for m in &again {
        assert_eq!(
            m.payload,
            format!("{}:{}", m.partition, m.offset).into_bytes()
        );
    }
    assert_quiet(&mut second).await;
    second.close().await.expect("close");
}

/// Two groups are independent: each gets everything, and commits of one do not move the
/// other.
async fn two_groups_each_get_everything(h: &Harness) {
    let topic = h.topic("bus_groups", 2).await;
    h.fill(&topic, &[(0, 15), (1, 10)]).await;
    let (group_a, group_b) = (support::unique_name("g_a"), support::unique_name("g_b"));
    let mut a = h.subscribe(&group_a, &[&topic]).await;
    let mut b = h.subscribe(&group_b, &[&topic]).await;
    let (ma, mb) = tokio::join!(receive(&mut a, 25), receive(&mut b, 25));
    for messages in [&ma, &mb] {
        let by_partition = offsets_by_partition(messages);
        assert_eq!(by_partition[&0], (0..15).collect::<Vec<u64>>());
        assert_eq!(by_partition[&1], (0..10).collect::<Vec<u64>>());
    }
    a.commit(&[(TopicPartition::new(&topic, 0), 15)])
        .await
        .expect("commit");
    assert_eq!(
        h.bus.committed_offsets(&group_a, &topic).await.unwrap(),
        vec![Some(15), None]
    );
    assert_eq!(
        h.bus.committed_offsets(&group_b, &topic).await.unwrap(),
        vec![None, None]
    );
    a.close().await.expect("close");
    b.close().await.expect("close");
}

/// Two members of one group own disjoint partitions covering the topic, and each record
/// goes to exactly one of them.
async fn members_of_a_group_split_the_partitions(h: &Harness) {
    let topic = h.topic("bus_split", 6).await;
    let group = support::unique_name("g_split");
    let mut members = vec![
        Member::new(h.subscribe(&group, &[&topic]).await),
        Member::new(h.subscribe(&group, &[&topic]).await),
    ];
    drive(&mut members, PATIENCE, |m| {
        !m[0].owned.is_empty() && !m[1].owned.is_empty() && m[0].owned.len() + m[1].owned.len() == 6
    })
    .await;
    assert!(members[0].owned.is_disjoint(&members[1].owned));
    let all: BTreeSet<u32> = members
        .iter()
        .flat_map(|m| m.owned.iter().map(|tp| tp.partition))
        .collect();
    assert_eq!(all, (0..6).collect());
    assert_eq!(members[0].owned.len(), 3, "balanced");

    let records: Vec<Record> = (0..120)
        .map(|i| Record::new(&topic, format!("contact{i}"), format!("{i}")))
        .collect();
    h.bus.producer().send_all(records).await.expect("send_all");
    drive(&mut members, PATIENCE, |m| {
        m[0].messages.len() + m[1].messages.len() >= 120
    })
    .await;
    settle(&mut members, Duration::from_millis(500)).await;
    let mut payloads = HashSet::new();
    for m in &members {
        for message in &m.messages {
            assert!(m.owned.contains(&message.topic_partition()));
            assert!(payloads.insert(message.payload.clone()), "delivered once");
        }
    }
    assert_eq!(payloads.len(), 120);
    for m in members {
        m.close().await;
    }
}

/// Topics subscribed together are co-partitioned: partition N of each goes to the same
/// member, through joins and leaves (so a contact's messages and its OCR results have one
/// owner). Four members on six partitions split unevenly, which a balancing assignor would
/// do differently per topic. Topics of different partition counts are refused.
async fn topics_subscribed_together_are_co_partitioned(h: &Harness) {
    let inbound = h.topic("bus_co_a", 6).await;
    let results = h.topic("bus_co_b", 6).await;
    let group = support::unique_name("g_co");
    let paired = |members: &[Member]| {
        for m in members {
            let of = |topic: &str| -> BTreeSet<u32> {
                m.owned
                    .iter()
                    .filter(|tp| tp.topic == topic)
                    .map(|tp| tp.partition)
                    .collect()
            };
            assert_eq!(of(&inbound), of(&results), "owned: {:?}", m.owned);
        }
    };
    let covered = |members: &[Member]| {
        members.iter().all(|m| !m.owned.is_empty())
            && members.iter().map(|m| m.owned.len()).sum::<usize>() == 12
    };
    let mut members = Vec::new();
    for _ in 0..4 {
        members.push(Member::new(
            h.subscribe(&group, &[&inbound, &results]).await,
        ));
    }
    drive(&mut members, PATIENCE, covered).await;
    settle(&mut members, Duration::from_millis(500)).await;
    paired(&members);
    let leaving = members.remove(1);
    leaving.close().await;
    drive(&mut members, PATIENCE, covered).await;
    settle(&mut members, Duration::from_millis(500)).await;
    paired(&members);
    for m in members {
        m.close().await;
    }

    let fewer = h.topic("bus_co_c", 4).await;
    let refused = h
        .bus
        .subscribe(&group, &[inbound.clone(), fewer.clone()])
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&refused, BusError::Group { detail, .. } if detail.contains("same partition count")),
        "{refused}"
    );
}

/// A joining member triggers a revocation on the current owner; the offsets it acks are
/// committed, and the newcomer starts exactly there (no loss, no redelivery of acked work).
/// Partitions that do not move stay with their owner.
async fn joining_member_takes_over_at_acked_offsets(h: &Harness) {
    let topic = h.topic("bus_join", 4).await;
    h.fill(&topic, &[(0, 10), (1, 10), (2, 10), (3, 10)]).await;
    let group = support::unique_name("g_join");
    let mut members = vec![Member::new(h.subscribe(&group, &[&topic]).await)];
    drive(&mut members, PATIENCE, |m| m[0].messages.len() == 40).await;
    assert_eq!(members[0].owned.len(), 4);
    members[0].ack = Ack::Fixed(7); // "work done up to offset 7" on whatever is revoked

    members.push(Member::new(h.subscribe(&group, &[&topic]).await));
    drive(&mut members, PATIENCE, |m| {
        !m[1].owned.is_empty() && m[1].messages.len() == 3 * m[1].owned.len()
    })
    .await;
    settle(&mut members, Duration::from_millis(1000)).await;

    let moved = members[1].owned.clone();
    assert_eq!(moved.len(), 2, "balanced: two of four move");
    assert_eq!(
        members[0].revoked.iter().cloned().collect::<BTreeSet<_>>(),
        moved,
        "only the partitions that move are revoked"
    );
    assert_eq!(
        members[0].messages.len(),
        40,
        "the first member got nothing again"
    );
    let by_partition = offsets_by_partition(&members[1].messages);
    for tp in &moved {
        assert_eq!(
            by_partition[&tp.partition],
            vec![7, 8, 9],
            "the newcomer starts at the acked offset of {tp}"
        );
    }
    let committed = h.bus.committed_offsets(&group, &topic).await.unwrap();
    for tp in &moved {
        assert_eq!(committed[tp.partition as usize], Some(7));
    }
    for m in members {
        m.close().await;
    }
}

/// A member that closes leaves the group: the remaining member takes its partitions (without
/// losing any of its own) and resumes them at the closing member's committed offsets.
async fn closing_member_hands_over_its_partitions(h: &Harness) {
    let topic = h.topic("bus_leave", 4).await;
    h.fill(&topic, &[(0, 5), (1, 5), (2, 5), (3, 5)]).await;
    let group = support::unique_name("g_leave");
    let mut members = vec![
        Member::new(h.subscribe(&group, &[&topic]).await),
        Member::new(h.subscribe(&group, &[&topic]).await),
    ];
    drive(&mut members, PATIENCE, |m| {
        m[0].owned.len() == 2
            && m[1].owned.len() == 2
            && m[0].messages.len() + m[1].messages.len() >= 20
    })
    .await;
    settle(&mut members, Duration::from_millis(300)).await;
    let mut leaving = members.remove(0);
    let handed_over = leaving.owned.clone();
    let commits: Vec<(TopicPartition, u64)> =
        handed_over.iter().map(|tp| (tp.clone(), 3)).collect();
    leaving.consumer.commit(&commits).await.expect("commit");
    leaving.close().await;

    let staying = &mut members;
    let before = staying[0].messages.len();
    let kept = staying[0].owned.clone();
    // Only what happens from the hand-over on counts: while the group first formed, either
    // member may have been given all four partitions and given two back (which of them
    // joins first is up to the broker).
    staying[0].revoked.clear();
    drive(staying, PATIENCE, |m| {
        m[0].owned.len() == 4 && m[0].messages.len() == before + 2 * 2
    })
    .await;
    settle(staying, Duration::from_millis(500)).await;
    assert!(
        staying[0].revoked.is_empty(),
        "nothing taken from the staying member"
    );
    assert!(kept.is_subset(&staying[0].owned));
    let again = offsets_by_partition(&staying[0].messages[before..]);
    assert_eq!(
        again.keys().copied().collect::<BTreeSet<u32>>(),
        handed_over.iter().map(|tp| tp.partition).collect()
    );
    for offsets in again.values() {
        assert_eq!(offsets, &vec![3, 4], "resumed at the committed offset");
    }
    for m in members {
        m.close().await;
    }
}

/// A revocation nobody acknowledges still completes after the deadline: the partitions move
/// without a commit, so the newcomer redelivers them from the last committed offset, and
/// the old member's lease on them has ended.
async fn unacknowledged_revocation_moves_after_the_deadline(h: &Harness) {
    let topic = h.topic("bus_deadline", 2).await;
    h.fill(&topic, &[(0, 5), (1, 5)]).await;
    let group = support::unique_name("g_deadline");
    let mut silent = h.subscribe(&group, &[&topic]).await;
    let seen = receive(&mut silent, 10).await;
    assert_eq!(seen.len(), 10);
    // `silent` is not polled from here on: it never sees its revocation.
    let started = Instant::now();
    let mut members = vec![Member::new(h.subscribe(&group, &[&topic]).await)];
    drive(&mut members, PATIENCE, |m| {
        !m[0].owned.is_empty() && m[0].messages.len() == 5
    })
    .await;
    assert!(
        started.elapsed() >= REVOKE_TIMEOUT - Duration::from_millis(500),
        "the move waited for the revocation deadline ({:?})",
        started.elapsed()
    );
    let tp = members[0].owned.iter().next().unwrap().clone();
    let offsets: Vec<u64> = members[0].messages.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        vec![0, 1, 2, 3, 4],
        "{tp} redelivered from the start"
    );
    // The silent member's lease on the partition has ended, though it never read the
    // revocation: its engine would abandon that work rather than write it.
    assert!(
        silent
            .leases()
            .ended(std::time::Instant::now())
            .contains(&tp),
        "{tp}'s lease ended"
    );
    silent.close().await.expect("close");
    for m in members {
        m.close().await;
    }
}

/// Pausing a partition stops its delivery (others continue); resuming continues exactly
/// where it stopped.
async fn pause_stops_delivery_and_resume_restarts_it(h: &Harness) {
    let topic = h.topic("bus_pause", 2).await;
    h.fill(&topic, &[(0, 10)]).await;
    let mut consumer = h
        .subscribe(&support::unique_name("g_pause"), &[&topic])
        .await;
    let first = receive(&mut consumer, 3).await;
    assert_eq!(
        first.iter().map(|m| m.offset).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let p0 = TopicPartition::new(&topic, 0);
    let p1 = TopicPartition::new(&topic, 1);
    consumer
        .pause(std::slice::from_ref(&p0))
        .await
        .expect("pause");
    h.fill(&topic, &[(0, 10), (1, 4)]).await;
    // The unpaused partition still flows; the paused one does not.
    let others = receive(&mut consumer, 4).await;
    assert!(
        others.iter().all(|m| m.partition == 1),
        "only p1 while p0 is paused"
    );
    assert_quiet(&mut consumer).await;

    consumer
        .pause(std::slice::from_ref(&p1))
        .await
        .expect("pause p1");
    h.fill(&topic, &[(1, 2)]).await;
    assert_quiet(&mut consumer).await;

    consumer
        .resume(&[p0.clone(), p1.clone()])
        .await
        .expect("resume");
    let rest = receive(&mut consumer, 17 + 2).await;
    let by_partition = offsets_by_partition(&rest);
    assert_eq!(
        by_partition[&0],
        (3..20).collect::<Vec<u64>>(),
        "no gap, no duplicate"
    );
    assert_eq!(by_partition[&1], vec![4, 5]);
    assert_quiet(&mut consumer).await;
    consumer.close().await.expect("close");
}

/// `ensure_topics` creates once, accepts the same spec again, and refuses another partition
/// count; unknown topics are typed errors everywhere.
async fn ensure_topics_is_idempotent_and_detects_mismatch(h: &Harness) {
    let a = support::unique_name("bus_ensure_a");
    let b = support::unique_name("bus_ensure_b");
    let specs = [spec(&a, 3), spec(&b, 1)];
    h.bus.ensure_topics(&specs).await.expect("create");
    h.bus.ensure_topics(&specs).await.expect("again");
    assert_eq!(h.bus.partition_count(&a).await.unwrap(), 3);
    assert_eq!(h.bus.partition_count(&b).await.unwrap(), 1);
    match h.bus.ensure_topics(&[spec(&a, 5)]).await {
        Err(BusError::PartitionMismatch {
            topic,
            expected,
            actual,
        }) => {
            assert_eq!((topic.as_str(), expected, actual), (a.as_str(), 5, 3));
        }
        other => panic!("expected a partition mismatch, got {other:?}"),
    }
    assert_eq!(h.bus.partition_count(&a).await.unwrap(), 3, "unchanged");

    let missing = support::unique_name("bus_missing");
    assert!(matches!(
        h.bus.partition_count(&missing).await,
        Err(BusError::UnknownTopic(t)) if t == missing
    ));
    assert!(matches!(
        h.bus.end_offsets(&missing).await,
        Err(BusError::UnknownTopic(_))
    ));
    assert!(matches!(
        h.bus.committed_offsets("g", &missing).await,
        Err(BusError::UnknownTopic(_))
    ));
    let subscribed = h
        .bus
        .subscribe(
            &support::unique_name("g_missing"),
            &[a.clone(), missing.clone()],
        )
        .await;
    assert!(matches!(subscribed, Err(BusError::UnknownTopic(t)) if t == missing));
    let sent = tokio::time::timeout(
        PATIENCE,
        h.bus.producer().send(Record::new(&missing, "k", "v")),
    )
    .await
    .expect("send to a missing topic returns");
    assert!(
        matches!(&sent, Err(BusError::UnknownTopic(t)) if *t == missing),
        "send to a missing topic: {sent:?}"
    );
}

/// End offsets are the per-partition high watermarks; committed offsets are `None` until
/// committed.
async fn end_and_committed_offsets(h: &Harness) {
    let topic = h.topic("bus_offsets", 3).await;
    assert_eq!(h.bus.end_offsets(&topic).await.unwrap(), vec![0, 0, 0]);
    h.fill(&topic, &[(0, 3), (2, 5)]).await;
    assert_eq!(h.bus.end_offsets(&topic).await.unwrap(), vec![3, 0, 5]);
    let group = support::unique_name("g_offsets");
    assert_eq!(
        h.bus.committed_offsets(&group, &topic).await.unwrap(),
        vec![None, None, None]
    );
    let mut consumer = h.subscribe(&group, &[&topic]).await;
    let assigned = wait_assigned(&mut consumer).await;
    assert_eq!(assigned.len(), 3);
    consumer
        .commit(&[(TopicPartition::new(&topic, 2), 4)])
        .await
        .expect("commit");
    assert_eq!(
        h.bus.committed_offsets(&group, &topic).await.unwrap(),
        vec![None, None, Some(4)]
    );
    consumer
        .commit(&[
            (TopicPartition::new(&topic, 0), 3),
            (TopicPartition::new(&topic, 2), 5),
        ])
        .await
        .expect("commit");
    assert_eq!(
        h.bus.committed_offsets(&group, &topic).await.unwrap(),
        vec![Some(3), None, Some(5)]
    );
    consumer.close().await.expect("close");
}

/// A group-less reader of some partitions gets every record of those partitions from the
/// first, in offset order, nothing of the others, then what is written later; it commits
/// nothing, so a group subscribed afterwards still starts from the beginning.
async fn a_reader_reads_chosen_partitions_from_the_start(h: &Harness) {
    const WAIT: Duration = Duration::from_secs(30);
    let topic = h.topic("bus_reader", 3).await;
    h.fill(&topic, &[(0, 2), (1, 3), (2, 4)]).await;
    let mut reader = h
        .bus
        .read_from_start(&topic, &[1, 2])
        .await
        .expect("reader");
    let mut got: BTreeMap<u32, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    let take = |got: &BTreeMap<u32, Vec<(u64, Vec<u8>)>>| got.values().map(Vec::len).sum::<usize>();
    while take(&got) < 7 {
        assert!(Instant::now() < deadline, "read only {got:?}");
        let batch = tokio::time::timeout(WAIT, reader.next_batch())
            .await
            .expect("records")
            .expect("read");
        assert!(!batch.is_empty());
        for m in batch {
            got.entry(m.partition)
                .or_default()
                .push((m.offset, m.payload));
        }
    }
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    for (p, records) in &got {
        let expected: Vec<(u64, Vec<u8>)> = (0..records.len())
            .map(|i| (i as u64, format!("{p}:{i}").into_bytes()))
            .collect();
        assert_eq!(records, &expected, "partition {p}");
    }
    // Later writes arrive; writes to another partition do not.
    h.fill(&topic, &[(0, 1), (2, 1)]).await;
    let batch = tokio::time::timeout(WAIT, reader.next_batch())
        .await
        .expect("the new record")
        .expect("read");
    assert_eq!(batch.len(), 1, "{batch:?}");
    assert_eq!((batch[0].partition, batch[0].offset), (2, 4));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), reader.next_batch())
            .await
            .is_err(),
        "nothing more"
    );
    assert!(
        h.bus.read_from_start(&topic, &[3]).await.is_err(),
        "no partition 3"
    );
}

/// A dead letter keeps the original key, payload and headers and adds why and where from.
async fn dead_letters_round_trip(h: &Harness) {
    let topic = h.topic("bus_dl_src", 2).await;
    let dlq = h.topic("bus_dl", 1).await;
    let original = Record::new(&topic, "60123456789", "{not json").with_header("trace", "t-1");
    h.bus.producer().send(original.clone()).await.expect("send");
    let mut consumer = h.subscribe(&support::unique_name("g_dl"), &[&topic]).await;
    let message = receive(&mut consumer, 1).await.remove(0);
    let letter = dead_letter(&dlq, &message, "malformed_json", "expected value at line 1");
    h.bus
        .producer()
        .send(letter.clone())
        .await
        .expect("send dead letter");
    consumer.close().await.expect("close");

    let mut reader = h.subscribe(&support::unique_name("g_dlq"), &[&dlq]).await;
    let dead = receive(&mut reader, 1).await.remove(0);
    assert_eq!(dead.key, original.key);
    assert_eq!(dead.payload, original.payload);
    assert_eq!(dead.headers, letter.headers);
    assert_eq!(dead.header("trace"), Some(&b"t-1"[..]));
    assert_eq!(
        dead.header(dead_letter::HEADER_ERROR_KIND),
        Some(&b"malformed_json"[..])
    );
    assert_eq!(
        dead.header(dead_letter::HEADER_ORIGINAL_TOPIC),
        Some(topic.as_bytes())
    );
    assert_eq!(
        dead.header(dead_letter::HEADER_ORIGINAL_PARTITION),
        Some(message.partition.to_string().as_bytes())
    );
    assert_eq!(
        dead.header(dead_letter::HEADER_ORIGINAL_OFFSET),
        Some(&b"0"[..])
    );
    reader.close().await.expect("close");
}

/// An engine that stops reading for a while (longer than the Kafka consumer holds records
/// before it pauses its partitions) loses nothing and gets nothing twice.
async fn a_stalled_engine_loses_nothing(h: &Harness) {
    let topic = h.topic("bus_stall", 2).await;
    let records: Vec<Record> = (0..3000)
        .map(|i| Record::new(&topic, format!("c{}", i % 50), format!("{i}")))
        .collect();
    h.bus.producer().send_all(records).await.expect("send_all");
    let mut consumer = h
        .subscribe(&support::unique_name("g_stall"), &[&topic])
        .await;
    let mut messages = receive(&mut consumer, 100).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    messages.extend(receive(&mut consumer, 1400).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    messages.extend(receive(&mut consumer, 1500).await);
    let ends = h.bus.end_offsets(&topic).await.unwrap();
    for (p, offsets) in offsets_by_partition(&messages) {
        assert_eq!(
            offsets,
            (0..ends[p as usize]).collect::<Vec<u64>>(),
            "partition {p}"
        );
    }
    assert_quiet(&mut consumer).await;
    consumer.close().await.expect("close");
}

/// Informal throughput: 100k small records produced (in batches of 5000 concurrent sends)
/// and consumed by one member; every record arrives once, in order per partition.
async fn hundred_thousand_records(h: &Harness) {
    const N: usize = 100_000;
    let topic = h.topic("bus_bulk", 4).await;
    let producer = h.bus.producer();
    let started = Instant::now();
    let mut sent = 0;
    while sent < N {
        let batch: Vec<Record> = (sent..(sent + 5000).min(N))
            .map(|i| Record::new(&topic, format!("6011{:07}", i % 5000), format!("{i:064}")))
            .collect();
        sent += batch.len();
        producer.send_all(batch).await.expect("send_all");
    }
    let produce = started.elapsed();
    let mut consumer = h
        .subscribe(&support::unique_name("g_bulk"), &[&topic])
        .await;
    wait_assigned(&mut consumer).await;
    let started = Instant::now();
    let messages = receive(&mut consumer, N).await;
    let consume = started.elapsed();
    let by_partition = offsets_by_partition(&messages);
    let ends = h.bus.end_offsets(&topic).await.unwrap();
    for (p, offsets) in &by_partition {
        assert_eq!(
            offsets,
            &(0..ends[*p as usize]).collect::<Vec<u64>>(),
            "partition {p} complete and in order"
        );
    }
    assert_eq!(ends.iter().sum::<u64>(), N as u64);
    println!(
        "informal throughput ({:?}, debug build): produced {N} records in {:.2?} ({:.0}/s), consumed in {:.2?} ({:.0}/s)",
        h.backend,
        produce,
        N as f64 / produce.as_secs_f64(),
        consume,
        N as f64 / consume.as_secs_f64()
    );
    consumer.close().await.expect("close");
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::Harness::embedded()).await;
                }
            )*
        }
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(h) = super::Harness::kafka() {
                        super::$scenario(&h).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    keyed_records_follow_partition_for_in_order,
    headers_and_timestamps_round_trip,
    a_group_consumes_everything,
    commit_then_resume_redelivers_uncommitted,
    two_groups_each_get_everything,
    members_of_a_group_split_the_partitions,
    topics_subscribed_together_are_co_partitioned,
    joining_member_takes_over_at_acked_offsets,
    closing_member_hands_over_its_partitions,
    unacknowledged_revocation_moves_after_the_deadline,
    pause_stops_delivery_and_resume_restarts_it,
    ensure_topics_is_idempotent_and_detects_mismatch,
    end_and_committed_offsets,
    a_reader_reads_chosen_partitions_from_the_start,
    dead_letters_round_trip,
    a_stalled_engine_loses_nothing,
    hundred_thousand_records,
);

// ---------------------------------------------------------------------------------------
// Failure and recovery
// ---------------------------------------------------------------------------------------

fn unreachable(result: &Result<impl std::fmt::Debug, BusError>) -> bool {
    matches!(
        result,
        Err(BusError::Unavailable {
            service: "kafka",
            ..
        })
    )
}

/// An unreachable broker gives a typed error within a bounded time, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_unreachable_broker_is_a_typed_error() {
    let mut config = kafka_config("127.0.0.1:1");
    config.request_timeout = Duration::from_secs(2);
    config.message_timeout = Duration::from_secs(3);
    let bus = KafkaBus::new(config).expect("clients are created without contacting a broker");
    let bound = Duration::from_secs(60);
    let send = tokio::time::timeout(
        bound,
        bus.producer().send(Record::new("wa.inbound", "k", "v")),
    )
    .await
    .expect("send returns");
    assert!(unreachable(&send), "send: {send:?}");
    let ensure = tokio::time::timeout(bound, bus.ensure_topics(&[spec("wa.inbound", 1)]))
        .await
        .expect("ensure_topics returns");
    assert!(unreachable(&ensure), "ensure_topics: {ensure:?}");
    let count = tokio::time::timeout(bound, bus.partition_count("wa.inbound"))
        .await
        .expect("partition_count returns");
    assert!(unreachable(&count), "partition_count: {count:?}");
    let subscribed = tokio::time::timeout(bound, bus.subscribe("g", &["wa.inbound".into()]))
        .await
        .expect("subscribe returns");
    assert!(
        matches!(subscribed, Err(BusError::Unavailable { .. })),
        "subscribe: {:?}",
        subscribed.err()
    );
}

/// A record larger than the broker takes is refused for what it is (the engine then
/// dead-letters it instead of retrying it forever), and the producer goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_refuses_an_oversized_record_as_such() {
    let Some(h) = Harness::kafka() else {
        return;
    };
    let topic = h.topic("oversized", 1).await;
    let producer = h.bus.producer();
    // librdkafka's message.max.bytes and the broker's limit are about 1 MB.
    let oversized = producer
        .send(Record::new(&topic, "k", vec![b'x'; 2 << 20]))
        .await;
    assert!(
        matches!(oversized, Err(BusError::RecordRefused { .. })),
        "2 MiB record: {oversized:?}"
    );
    producer
        .send(Record::new(&topic, "k", "small"))
        .await
        .expect("the next record goes through");
}

/// The embedded bus's "unreachable": a directory it cannot use, or one already in use.
#[tokio::test]
async fn embedded_unusable_directory_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let opened = EmbeddedBus::open(EmbeddedBusConfig::new(&file));
    assert!(matches!(opened, Err(BusError::Unavailable { .. })));

    let _first = EmbeddedBus::open(EmbeddedBusConfig::new(dir.path().join("bus"))).unwrap();
    let second = EmbeddedBus::open(EmbeddedBusConfig::new(dir.path().join("bus")));
    assert!(
        matches!(&second, Err(BusError::Unavailable { detail, .. }) if detail.contains("in use")),
        "{:?}",
        second.err()
    );
}

/// Records and committed offsets survive closing and reopening the embedded bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_reopen_keeps_records_and_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "wa.inbound";
    let group = "engine";
    {
        let bus = EmbeddedBus::open(embedded_config(dir.path())).unwrap();
        bus.ensure_topics(&[spec(topic, 2)]).await.unwrap();
        let records: Vec<Record> = (0..50)
            .map(|i| {
                Record::new(topic, format!("c{i}"), format!("{i}")).with_header("n", format!("{i}"))
            })
            .collect();
        bus.producer().send_all(records).await.unwrap();
        let mut consumer = bus.subscribe(group, &[topic.to_string()]).await.unwrap();
        receive(&mut consumer, 50).await;
        consumer
            .commit(&[
                (TopicPartition::new(topic, 0), 3),
                (TopicPartition::new(topic, 1), 4),
            ])
            .await
            .unwrap();
        consumer.close().await.unwrap();
    }
    let bus = EmbeddedBus::open(embedded_config(dir.path())).expect("reopen");
    assert_eq!(bus.partition_count(topic).await.unwrap(), 2);
    let ends = bus.end_offsets(topic).await.unwrap();
    assert_eq!(ends.iter().sum::<u64>(), 50);
    assert_eq!(
        bus.committed_offsets(group, topic).await.unwrap(),
        vec![Some(3), Some(4)]
    );
    let mut consumer = bus.subscribe(group, &[topic.to_string()]).await.unwrap();
    let again = receive(&mut consumer, 50 - 7).await;
    let by_partition = offsets_by_partition(&again);
    assert_eq!(by_partition[&0], (3..ends[0]).collect::<Vec<u64>>());
    assert_eq!(by_partition[&1], (4..ends[1]).collect::<Vec<u64>>());
    for m in &again {
        assert_eq!(m.header("n"), Some(m.payload.as_slice()));
    }
    // Appends continue after the recovered records.
    let next = bus
        .producer()
        .send_to(Record::new(topic, "k", "after").to_partition(0))
        .await
        .unwrap();
    assert_eq!(next.offset, ends[0]);
    assert_eq!(receive(&mut consumer, 1).await[0].payload, b"after");
    consumer.close().await.unwrap();
}

/// A torn or corrupt trailing frame is truncated on recovery; everything before it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_torn_trailing_frame_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "crm.events";
    let log = dir.path().join("logs").join(topic).join("0.log");
    {
        let bus = EmbeddedBus::open(embedded_config(dir.path())).unwrap();
        bus.ensure_topics(&[spec(topic, 1)]).await.unwrap();
        for i in 0..10 {
            bus.producer()
                .send(Record::new(topic, "k", format!("record {i}")))
                .await
                .unwrap();
        }
    }
    let intact = std::fs::metadata(&log).unwrap().len();
    // A torn write: a frame header announcing 100 bytes, followed by only 10.
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(&100u32.to_le_bytes()).unwrap();
        file.write_all(&[0xAB; 4]).unwrap();
        file.write_all(&[1; 10]).unwrap();
    }
    {
        let bus = EmbeddedBus::open(embedded_config(dir.path())).expect("recover");
        assert_eq!(bus.end_offsets(topic).await.unwrap(), vec![10]);
        assert_eq!(
            std::fs::metadata(&log).unwrap().len(),
            intact,
            "tail truncated"
        );
        let mut consumer = bus.subscribe("g", &[topic.to_string()]).await.unwrap();
        let messages = receive(&mut consumer, 10).await;
        assert_eq!(messages[9].payload, b"record 9");
        let next = bus
            .producer()
            .send(Record::new(topic, "k", "record 10"))
            .await
            .unwrap();
        assert_eq!(next.offset, 10);
        consumer.close().await.unwrap();
    }
    // A corrupt last frame (bit flip in its payload) fails its CRC and is dropped too.
    {
        let mut bytes = std::fs::read(&log).unwrap();
        let last = bytes.len() - 1;
        bytes[last - 20] ^= 0x40;
        std::fs::write(&log, &bytes).unwrap();
    }
    let bus = EmbeddedBus::open(embedded_config(dir.path())).expect("recover again");
    assert_eq!(bus.end_offsets(topic).await.unwrap(), vec![10]);
    let mut consumer = bus.subscribe("g2", &[topic.to_string()]).await.unwrap();
    let messages = receive(&mut consumer, 10).await;
    assert_eq!(
        messages.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (0..10).collect::<Vec<u64>>()
    );
    assert_quiet(&mut consumer).await;
    consumer.close().await.unwrap();
}
