//! The one retry policy for calls that may fail for a moment (a broker election, a
//! Cassandra timeout, a ClickHouse merge backlog, a media server's 503): exponential backoff
//! with jitter (the `backon` crate), retried only while the caller's own error
//! classification says the failure is transient. A call that still fails after its last
//! retry fails its role, whose supervisor restarts it from the committed offsets.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::metrics::catalog;

/// How often and how long to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay before the first retry; each next one doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub retries: usize,
    /// Random extra delay, up to the delay again, so processes that failed together do not
    /// retry together.
    pub jitter: bool,
}

impl RetryPolicy {
    /// Writes to the store, the bus and the sink: 50 ms doubling to 1.6 s, about 3 s in all.
    pub const WRITES: RetryPolicy = RetryPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(1_600),
        retries: 6,
        jitter: true,
    };

    /// Fetching a photo: three attempts, 400 ms then 800 ms apart.
    pub const MEDIA_FETCH: RetryPolicy = RetryPolicy {
        first_delay: Duration::from_millis(400),
        max_delay: Duration::from_millis(800),
        retries: 2,
        jitter: true,
    };

    /// A failed role's restarts: 400 ms doubling to 25.6 s, without end (a role is
    /// restarted for as long as it fails; the delay resets after a healthy run).
    pub const RESTARTS: RetryPolicy = RetryPolicy {
        first_delay: Duration::from_millis(400),
        max_delay: Duration::from_millis(25_600),
        retries: usize::MAX,
        jitter: false,
    };

    /// The delay before the `n`-th retry (from 1), without jitter: for schedules that are
    /// not a loop around one call, such as restarting a role.
    pub fn delay(&self, n: u32) -> Duration {
        let doubled = self
            .first_delay
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(31)));
        doubled.min(self.max_delay)
    }

    pub fn backoff(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.retries);
        if self.jitter {
            builder.with_jitter()
        } else {
            builder
        }
    }

    /// Sends to the WhatsApp provider: 200 ms doubling to 3.2 s, five retries (a rate
    /// limit waits five times longer: see the sender). No jitter: the delays of a rate
    /// limit add up to 31 s, which must stay within the send budget (60 s by default).
    pub const SENDS: RetryPolicy = RetryPolicy {
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_millis(3_200),
        retries: 5,
        jitter: false,
    };

    /// Runs `attempt` until it succeeds, fails with an error `transient` refuses, or has
    /// no retry left. Each retry is logged and counted under `operation`.
    pub async fn run<T, E, F, Fut>(
        &self,
        operation: &'static str,
        transient: impl Fn(&E) -> bool,
        attempt: F,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_adjusted(operation, transient, |_, delay| delay, attempt)
            .await
    }

    /// As [`RetryPolicy::run`], with `adjust` changing each next delay from the error that
    /// led to it (`None`: give up now).
    pub async fn run_adjusted<T, E, F, Fut>(
        &self,
        operation: &'static str,
        transient: impl Fn(&E) -> bool,
        adjust: impl FnMut(&E, Option<Duration>) -> Option<Duration>,
        attempt: F,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        attempt
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(transient)
            .adjust(adjust)
            .notify(|error, delay| {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "{operation} failed; retrying");
                catalog::ENGINE_RETRIES.counter(&[operation.into()]).increment(1);
            })
            .await
    }
}

/// Retries a store, bus or sink write on any error, with [`RetryPolicy::WRITES`]: their
/// errors are transient far more often than not, and one that is not fails the role after
/// about three seconds, which its supervisor restarts from the committed offsets.
pub async fn with_retries<T, E, F, Fut>(operation: &'static str, attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    RetryPolicy::WRITES.run(operation, |_| true, attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_until_success_then_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, String> = RetryPolicy::WRITES
            .run(
                "op",
                |_| true,
                || async {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    if n < 3 {
                        Err(format!("fail {n}"))
                    } else {
                        Ok(n)
                    }
                },
            )
            .await;
        assert_eq!(result, Ok(3));
        calls.store(0, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let result: Result<(), String> = RetryPolicy::WRITES
            .run(
                "op",
                |_| true,
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>("down".to_string())
                },
            )
            .await;
        assert_eq!(result, Err("down".into()));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            RetryPolicy::WRITES.retries as u32 + 1
        );
        // 50 + 100 + ... + 1600 ms, each with up to as much again of jitter.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(3_150) && waited <= Duration::from_millis(6_300),
            "{waited:?}"
        );
    }

    #[test]
    fn delays_double_up_to_the_maximum() {
        let p = RetryPolicy::RESTARTS;
        assert_eq!(p.delay(1), Duration::from_millis(400));
        assert_eq!(p.delay(2), Duration::from_millis(800));
        assert_eq!(p.delay(7), Duration::from_millis(25_600));
        assert_eq!(p.delay(40), Duration::from_millis(25_600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_is_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), String> = RetryPolicy::WRITES
            .run(
                "op",
                |e: &String| e != "permanent",
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>("permanent".to_string())
                },
            )
            .await;
        assert_eq!(result, Err("permanent".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
