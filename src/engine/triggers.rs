//! The running campaigns triggered by a contact's own events (a tier upgrade, a first
//! purchase), as the shards see them: refreshed from the catalog every few seconds, so a
//! campaign launched or paused takes effect within that time.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::campaigns::definition_of;
use crate::domain::campaign::{CampaignStatus, Trigger};
use crate::storage::store::ContactStore;

/// A running campaign that a contact's event starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTrigger {
    pub campaign_id: String,
    pub trigger: Trigger,
}

pub struct EventTriggers {
    active: RwLock<Arc<Vec<EventTrigger>>>,
    /// How often the list is refreshed (`campaigns.trigger_refresh_ms`).
    refresh: Duration,
}

impl Default for EventTriggers {
    fn default() -> Self {
        EventTriggers::new(Duration::from_secs(5))
    }
}

impl EventTriggers {
    pub fn new(refresh: Duration) -> Self {
        EventTriggers {
            active: RwLock::default(),
            refresh,
        }
    }

    pub fn current(&self) -> Arc<Vec<EventTrigger>> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set(&self, triggers: Vec<EventTrigger>) {
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(triggers);
    }

    /// Reads the catalog once.
    pub async fn refresh(&self, store: &dyn ContactStore) {
        match store.campaigns().await {
            Ok(campaigns) => self.set(
                campaigns
                    .iter()
                    .filter(|c| c.status == CampaignStatus::Running)
                    .filter_map(|c| {
                        let trigger = definition_of(c).ok()?.trigger?;
                        matches!(trigger, Trigger::TierUpgrade | Trigger::FirstPurchase).then(
                            || EventTrigger {
                                campaign_id: c.campaign_id.clone(),
                                trigger,
                            },
                        )
                    })
                    .collect(),
            ),
            // The last list stays; the next refresh tries again.
            Err(e) => tracing::warn!(error = %e, "campaign triggers not refreshed"),
        }
    }

    /// Refreshes every `refresh` until `shutdown`.
    pub async fn follow(
        self: Arc<Self>,
        store: Arc<dyn ContactStore>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            self.refresh(&*store).await;
            tokio::select! {
                _ = tokio::time::sleep(self.refresh) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
