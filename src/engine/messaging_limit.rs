//! The portfolio's 24 h messaging limit as the campaign lane applies it. The window of
//! customers reached is read from the store's reach log when the lane first needs it (so a
//! restart or a rebalance keeps the count), read again every [`REFRESH`] for the reaches of
//! the portfolio's other numbers (sent by other processes), and every send it admits is
//! recorded in the log before it goes.
//!
//! Exact for a portfolio sending from one number. With several numbers owned by several
//! processes, each may admit what the others admitted within the last [`REFRESH`]: the
//! overshoot is bounded by the portfolio's campaign rate times [`REFRESH`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::domain::campaign::{Admission, ReachWindow};
use crate::domain::phone::PhoneNumber;
use crate::metrics::catalog;
use crate::retry::with_retries;
use crate::storage::store::{ContactStore, StoreError};

/// How often the log is read again for other numbers' reaches.
pub const REFRESH: Duration = Duration::from_secs(10);
/// How far before the last read a refresh reads again: reaches written late (a slow write,
/// another process's clock) are still seen.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(60);

pub struct MessagingLimit {
    store: Arc<dyn ContactStore>,
    window: Mutex<ReachWindow>,
    /// When the log was last read, and the lane's time then; `None` before the first read.
    /// An async lock: one read at a time, the sends behind it wait for it.
    last_read: tokio::sync::Mutex<Option<(Instant, DateTime<Utc>)>>,
}

fn lock(window: &Mutex<ReachWindow>) -> std::sync::MutexGuard<'_, ReachWindow> {
    window.lock().unwrap_or_else(|e| e.into_inner())
}

impl MessagingLimit {
    /// `limit` unique customers in a moving 24 h; 0 = unlimited.
    pub fn new(store: Arc<dyn ContactStore>, limit: u64) -> Self {
        MessagingLimit {
            store,
            window: Mutex::new(ReachWindow::new(limit)),
            last_read: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether a business-initiated message may reach `to` now; if so it is counted (and
    /// recorded) before the caller sends.
    pub async fn admit(&self, to: &PhoneNumber, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if lock(&self.window).limit() == 0 {
            return Ok(true);
        }
        self.read_log(now).await?;
        let (admission, remaining) = {
            let mut window = lock(&self.window);
            let admission = window.admit(to, now);
            (admission, window.remaining(now).unwrap_or(0))
        };
        catalog::MESSAGING_LIMIT_REMAINING
            .gauge(&[])
            .set(remaining as f64);
        if admission == Admission::Full {
            return Ok(false);
        }
        // Recorded even for a customer already reached: their latest reach is what counts.
        // A send that then fails has used room it did not need (the safe side).
        let store = self.store.clone();
        with_retries("record_reach", || store.record_reach(to, now)).await?;
        Ok(true)
    }

    async fn read_log(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut last_read = self.last_read.lock().await;
        let since = match *last_read {
            Some((at, _)) if at.elapsed() < REFRESH => return Ok(()),
            Some((_, read_to)) => read_to - OVERLAP,
            None => now - chrono::Duration::hours(24),
        };
        let store = self.store.clone();
        let reaches = with_retries("reaches_since", || store.reaches_since(since)).await?;
        lock(&self.window).note_all(reaches);
        *last_read = Some((Instant::now(), now));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::embedded::EmbeddedStore;

    fn p(n: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("601234{n:05}")).unwrap()
    }

    #[tokio::test]
    async fn the_count_survives_a_restart_and_sees_the_other_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ContactStore> =
            Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).unwrap());
        let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let first = MessagingLimit::new(store.clone(), 2);
        assert!(first.admit(&p(1), now).await.unwrap());
        // A second sender of the portfolio (another number, another process), started
        // later: it counts the first one's reach.
        let other = MessagingLimit::new(store.clone(), 2);
        assert!(other.admit(&p(2), now).await.unwrap());
        assert!(!other.admit(&p(3), now).await.unwrap(), "full");
        assert!(other.admit(&p(1), now).await.unwrap(), "already reached");
        // The first process restarts: the log still holds both reaches.
        drop(first);
        let restarted = MessagingLimit::new(store.clone(), 2);
        assert!(!restarted.admit(&p(3), now).await.unwrap());
        // A day later there is room again.
        let later = now + chrono::Duration::hours(25);
        let next_day = MessagingLimit::new(store, 2);
        assert!(next_day.admit(&p(3), later).await.unwrap());
    }
}
