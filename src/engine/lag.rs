//! Consumer lag for the dashboards: per consumer group, records written to its topic and
//! not yet committed (`sembang_consumer_lag_records{group}`), read from the bus every few
//! seconds. A group that has committed nothing counts from the start of the topic.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::storage::bus::Bus;

use super::error::EngineError;
use crate::metrics::catalog;

const INTERVAL: Duration = Duration::from_secs(5);

/// (metric label, consumer group, topic)
pub type Watched = Vec<(String, String, String)>;

pub async fn run(
    bus: Arc<dyn Bus>,
    watched: Arc<Watched>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = tick.tick() => {}
        }
        for (label, group, topic) in watched.iter() {
            match lag(&*bus, group, topic).await {
                Ok(lag) => catalog::CONSUMER_LAG
                    .gauge(&[label.clone().into()])
                    .set(lag as f64),
                // Lag is best effort: a bus hiccup must not restart anything.
                Err(error) => tracing::debug!(%error, group, "consumer lag not available"),
            }
        }
    }
}

pub async fn lag(bus: &dyn Bus, group: &str, topic: &str) -> Result<u64, EngineError> {
    let ends = bus.end_offsets(topic).await?;
    let committed = bus.committed_offsets(group, topic).await?;
    Ok(ends
        .iter()
        .enumerate()
        .map(|(p, end)| end.saturating_sub(committed.get(p).copied().flatten().unwrap_or(0)))
        .sum())
}
