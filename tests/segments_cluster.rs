//! The segment index across processes on Kafka: two engine-only processes in one consumer
//! group each index only the partitions they own, an API process counts every contact
//! exactly, across a rebalance; and a process started afresh rebuilds the same counts from
//! the changelog.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sembang::app::{Running, SegmentScope};
use sembang::config::Role;
use sembang::domain::clock::malaysian_day;
use sembang::domain::segment::{EvalContext, SegmentDefinition};
use sembang::segments::SegmentIndex;

use support::engine::*;

const CONTACTS: usize = 40;

fn everyone() -> SegmentDefinition {
    SegmentDefinition::from_json(&serde_json::json!({"name": "everyone"})).unwrap()
}

fn count(index: &SegmentIndex) -> u64 {
    let now = chrono::Utc::now();
    index.count(&everyone(), &EvalContext::new(now, malaysian_day(now)))
}

fn index_of(running: &Running) -> (Arc<SegmentIndex>, SegmentScope) {
    running
        .segments
        .clone()
        .expect("the process has a segment index")
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engines_index_their_own_partitions_and_the_api_counts_them_all() {
    // The harness process takes the webhooks and serves the API; the engines are apart.
    let Some(api) = Harness::real_stack_tuned(|config| {
        config.engine.roles = vec![Role::Ingress, Role::Api];
    })
    .await
    else {
        return;
    };
    let partitions: BTreeSet<u32> = (0..api.config.bus.partitions).collect();
    let api_index = api.segment_index().unwrap();
    let first = api.start_beside(vec![Role::Engine]).await;
    let (first_index, scope) = index_of(&first);
    assert_eq!(scope, SegmentScope::OwnedPartitions);

    for i in 0..CONTACTS {
        let phone = format!("6011{:08}", 2_000 + i);
        api.post(&text(
            &phone,
            &format!("wamid.CLUSTER-{i}"),
            T0 + i as i64,
            "hello",
        ))
        .await;
    }
    until("the API counts every contact", || {
        count(&api_index) == CONTACTS as u64
    })
    .await;
    until("the only engine indexes every partition", || {
        first_index
            .partitions()
            .into_iter()
            .collect::<BTreeSet<_>>()
            == partitions
            && first_index.is_live()
            && count(&first_index) == CONTACTS as u64
    })
    .await;

    // A second engine joins: the partitions split, each indexes only its own, and the two
    // counts add up to the API's.
    let second = api.start_beside(vec![Role::Engine]).await;
    let (second_index, _) = index_of(&second);
    until("the partitions split between the engines", || {
        let a: BTreeSet<u32> = first_index.partitions().into_iter().collect();
        let b: BTreeSet<u32> = second_index.partitions().into_iter().collect();
        !a.is_empty()
            && !b.is_empty()
            && a.is_disjoint(&b)
            && a.union(&b).copied().collect::<BTreeSet<_>>() == partitions
            && first_index.is_live()
            && second_index.is_live()
            && count(&first_index) + count(&second_index) == CONTACTS as u64
    })
    .await;
    assert!(count(&first_index) > 0 && count(&second_index) > 0);
    assert_eq!(count(&api_index), CONTACTS as u64);

    // It leaves again: the first takes every partition back and rebuilds them.
    second.shutdown().await;
    until("the first engine indexes every partition again", || {
        first_index
            .partitions()
            .into_iter()
            .collect::<BTreeSet<_>>()
            == partitions
            && first_index.is_live()
            && count(&first_index) == CONTACTS as u64
    })
    .await;

    // A new API process rebuilds from the changelog alone: the same count.
    let fresh = api.start_beside(vec![Role::Api]).await;
    let (fresh_index, scope) = index_of(&fresh);
    assert_eq!(scope, SegmentScope::AllPartitions);
    until("a fresh API process has rebuilt the same count", || {
        fresh_index.is_live() && count(&fresh_index) == CONTACTS as u64
    })
    .await;
    fresh.shutdown().await;
    first.shutdown().await;
    api.stop().await;
}
