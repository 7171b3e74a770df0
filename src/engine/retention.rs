//! Retention of message bodies, applied by the engine: a background sweep clears the body
//! of every stored message older than `store.message_body_retention_days` (the message,
//! its times and statuses stay, so counts and timelines do not change).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::storage::store::ContactStore;

/// How long bodies are kept, and how often the store is swept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyRetention {
    pub keep: Duration,
    pub every: Duration,
}

/// Clears old bodies now and every `retention.every`, until shutdown. A failed sweep is
/// logged and tried again at the next one (nothing is lost by waiting).
pub async fn sweep_message_bodies(
    store: Arc<dyn ContactStore>,
    retention: BodyRetention,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let before = Utc::now() - chrono::Duration::from_std(retention.keep).unwrap_or_default();
        match store.expire_message_bodies(before).await {
            Ok(0) => {}
            Ok(cleared) => tracing::info!(cleared, "message bodies past their retention cleared"),
            Err(error) => tracing::warn!(%error, "message body retention sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(retention.every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
