//! Retries of writes to the store, bus and sink. Their errors are transient far more often
//! than not (a broker election, a Cassandra timeout); a write that still fails after the
//! last attempt fails the actor, whose supervisor restarts it from the committed offsets.

use crate::metrics::catalog;
use std::future::Future;
use std::time::Duration;

/// Delays between attempts: 50 ms doubling to 1.6 s, about 3 s in all.
const DELAYS_MS: [u64; 6] = [50, 100, 200, 400, 800, 1_600];

pub async fn with_retries<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delays = DELAYS_MS.iter();
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => match delays.next() {
                Some(ms) => {
                    tracing::warn!(%error, retry_in_ms = ms, "{what} failed; retrying");
                    catalog::ENGINE_RETRIES
                        .counter(&[what.to_string().into()])
                        .increment(1);
                    tokio::time::sleep(Duration::from_millis(*ms)).await;
                }
                None => return Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_then_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, String> = with_retries("op", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 3 {
                Err(format!("fail {n}"))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(result, Ok(3));
        calls.store(0, Ordering::SeqCst);
        let result: Result<(), String> = with_retries("op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("down".to_string())
        })
        .await;
        assert_eq!(result, Err("down".into()));
        assert_eq!(calls.load(Ordering::SeqCst), DELAYS_MS.len() as u32 + 1);
    }
}
