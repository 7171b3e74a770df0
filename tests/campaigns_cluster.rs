//! A campaign across processes on Kafka: an API process (webhook, API, campaign clock) and
//! engine + sender processes; a second one joins mid-campaign, the partitions move, and
//! every recipient is still sent exactly once, none forgotten.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde_json::json;

use sembang::config::Role;

use support::engine::*;

const CUSTOMERS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebalance_mid_campaign_sends_everyone_exactly_once() {
    let Some(api) = Harness::real_stack_tuned(|config| {
        config.engine.roles = vec![Role::Ingress, Role::Api];
        config.campaigns.quiet_hours_start = "00:00".into();
        config.campaigns.quiet_hours_end = "00:00".into();
        config.campaigns.messaging_limit_24h = 0;
        config.campaigns.pair_interval_ms = 0;
        config.campaigns.clock_tick_ms = 200;
        // Slow enough that the campaign is still sending when the second process joins.
        config.whatsapp.messages_per_second = 10;
    })
    .await
    else {
        return;
    };
    let first = api.start_beside(vec![Role::Engine, Role::Sender]).await;
    let t = Utc::now().timestamp();
    let phones: Vec<String> = (0..CUSTOMERS)
        .map(|i| format!("6011{:08}", 3_000 + i))
        .collect();
    for (i, phone) in phones.iter().enumerate() {
        api.post(&text(phone, &format!("wamid.CC-{i}"), t - 30, "START"))
            .await;
    }
    let segment_id = api.opted_in_segment(CUSTOMERS as u64).await;
    let (_, created) = api
        .api(
            Method::POST,
            "/api/campaigns/",
            Some(json!({"name": "Cluster", "segments": [segment_id], "message_text": "Cluster deal"})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let (status, launched) = api
        .api(Method::POST, &format!("/api/campaigns/{id}/launch"), None)
        .await;
    assert_eq!(status, 200, "{launched}");
    api.campaign_where(&id, "some sent", WAIT * 2, |c| {
        c["sent"].as_u64().unwrap_or(0) >= 10
    })
    .await;

    // A second engine + sender joins mid-campaign: partitions (and the number's send
    // partition) may move to it.
    let second = api.start_beside(vec![Role::Engine, Role::Sender]).await;
    let done = api
        .campaign_where(&id, "everyone sent", WAIT * 2, |c| {
            c["sent"] == CUSTOMERS as u64 && c["pending"] == 0
        })
        .await;
    assert_eq!(done["recipients"], CUSTOMERS as u64, "{done}");
    assert_eq!(done["failed"], 0, "{done}");
    // Exactly once each at the provider.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_customer: HashMap<String, usize> = HashMap::new();
    for (to, body, _) in api.sent().await {
        if body == "Cluster deal" {
            *per_customer.entry(to).or_default() += 1;
        }
    }
    assert_eq!(per_customer.len(), CUSTOMERS, "{per_customer:?}");
    let doubles: Vec<_> = per_customer.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubles.is_empty(), "sent twice: {doubles:?}");
    second.shutdown().await;
    first.shutdown().await;
    api.stop().await;
}
