//! Retention of message text, applied in the background: the engine role clears the body
//! of every stored message older than `store.message_body_retention_days`, and the
//! analytics role clears the same text from its copies (the message events). The
//! messages, their times and statuses stay, so counts, timelines and funnels do not change.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::storage::sink::EventSink;
use crate::storage::store::ContactStore;

/// How long bodies are kept, and how often the store is swept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyRetention {
    pub keep: Duration,
    pub every: Duration,
}

/// Clears the store's old bodies now and every `retention.every`, until shutdown.
pub async fn sweep_message_bodies(
    store: Arc<dyn ContactStore>,
    retention: BodyRetention,
    shutdown: watch::Receiver<bool>,
) {
    sweep("message bodies", retention, shutdown, move |before| {
        let store = store.clone();
        async move { store.expire_message_bodies(before).await.map(Some) }
    })
    .await
}

/// Clears the text of old message events in the analytics sink, on the same schedule.
pub async fn sweep_message_text(
    sink: Arc<dyn EventSink>,
    retention: BodyRetention,
    shutdown: watch::Receiver<bool>,
) {
    sweep(
        "analytics message text",
        retention,
        shutdown,
        move |before| {
            let sink = sink.clone();
            async move { sink.expire_message_text(before).await.map(|()| None) }
        },
    )
    .await
}

/// Runs `expire` (with the cut-off time; it answers how many it cleared, when it knows)
/// now and every `retention.every`, until shutdown. A failed sweep is logged and tried
/// again at the next one (nothing is lost by waiting).
async fn sweep<F, Fut, E>(
    what: &'static str,
    retention: BodyRetention,
    mut shutdown: watch::Receiver<bool>,
    mut expire: F,
) where
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: Future<Output = Result<Option<u64>, E>>,
    E: Display,
{
    loop {
        let before = Utc::now() - chrono::Duration::from_std(retention.keep).unwrap_or_default();
        match expire(before).await {
            Ok(Some(0)) => {}
            Ok(cleared) => tracing::info!(what, ?cleared, "text past its retention cleared"),
            Err(error) => tracing::warn!(what, %error, "retention sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(retention.every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
