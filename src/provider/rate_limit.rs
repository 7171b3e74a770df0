//! Throughput limits. [`TokenBucket`] is pure (the caller passes the time), so it is tested
//! without sleeping; [`RateLimiter`] puts one bucket per business number behind an async wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket holding up to `burst` tokens, refilled at `rate_per_second`; it starts full.
///
/// Kept as the time at which the bucket would be full again ("theoretical arrival time",
/// GCRA) rather than a fractional token count: the same behaviour, in exact integer time, so a
/// returned wait is never a rounding error too short.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Time one token takes to refill.
    interval: Duration,
    /// How far ahead of `now` the full-again time may run: `burst - 1` intervals.
    tolerance: Duration,
    full_at: Option<Instant>,
}

impl TokenBucket {
    /// `rate_per_second` must be positive and finite (e.g. `1.0 / 6.0` for one per 6 s);
    /// a `burst` of 0 is taken as 1.
    pub fn new(rate_per_second: f64, burst: u32) -> Self {
        assert!(
            rate_per_second.is_finite() && rate_per_second > 0.0,
            "token bucket rate must be positive, got {rate_per_second}"
        );
        let interval = Duration::from_secs_f64(1.0 / rate_per_second).max(Duration::from_nanos(1));
        TokenBucket {
            interval,
            tolerance: interval * (burst.max(1) - 1),
            full_at: None,
        }
    }

    /// Takes a token at `now`, or says how long until one is there. Times earlier than a
    /// previous call are treated as that call's time.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        // A waiter woken a little late (timers fire on millisecond ticks) keeps the
        // schedule: up to half an interval behind it still counts from the schedule, so a
        // busy bucket runs at its rate, not at the rate of its timer; further behind (idle),
        // it starts from now.
        let full_at = match self.full_at {
            Some(t) if t >= now => t,
            Some(t) if now - t <= self.interval / 2 => t,
            _ => now,
        };
        let ahead = full_at - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        self.full_at = Some(full_at + self.interval);
        Ok(())
    }
}

/// One [`TokenBucket`] per key (the business phone number id), shared by every sending task,
/// with two priorities: a reply takes the next slot; a campaign send takes a slot only when
/// no reply on that number is waiting, so campaigns use what replies leave of the rate.
/// Keys are never evicted: there are a handful of business numbers, not one per recipient.
pub struct RateLimiter {
    rate_per_second: f64,
    burst: u32,
    /// Keys whose rate differs from `rate_per_second`.
    rates: HashMap<String, f64>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: TokenBucket,
    /// Replies waiting for a slot on this number.
    replies_waiting: usize,
}

/// How often a waiting campaign send looks again while replies go first.
const YIELD_POLL: Duration = Duration::from_millis(2);

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: u32) -> Self {
        // Fail at construction, not inside the first send.
        let _ = TokenBucket::new(rate_per_second, burst);
        RateLimiter {
            rate_per_second,
            burst,
            rates: HashMap::new(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The same, with its own rate for some keys (each positive and finite).
    pub fn with_rates(mut self, rates: impl IntoIterator<Item = (String, f64)>) -> Self {
        for (key, rate) in rates {
            let _ = TokenBucket::new(rate, self.burst);
            self.rates.insert(key, rate);
        }
        self
    }

    fn with_bucket<T>(&self, key: &str, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let rate = self.rates.get(key).copied().unwrap_or(self.rate_per_second);
        let bucket = buckets.entry(key.to_string()).or_insert_with(|| Bucket {
            tokens: TokenBucket::new(rate, self.burst),
            replies_waiting: 0,
        });
        f(bucket)
    }

    /// Waits until `key` may send one more message, and takes that slot (a reply: first in
    /// line). Cancel-safe: a cancelled wait has taken nothing.
    pub async fn until_ready(&self, key: &str) {
        struct Waiting<'a>(&'a RateLimiter, &'a str);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.with_bucket(self.1, |b| b.replies_waiting -= 1);
            }
        }
        self.with_bucket(key, |b| b.replies_waiting += 1);
        let _waiting = Waiting(self, key);
        loop {
            // tokio's clock, so tests with a paused runtime clock see the waits pass.
            let now = tokio::time::Instant::now().into_std();
            match self.with_bucket(key, |b| b.tokens.try_take(now)) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// As [`Self::until_ready`], for a campaign send: only when no reply on `key` waits.
    pub async fn until_ready_after_replies(&self, key: &str) {
        loop {
            let now = tokio::time::Instant::now().into_std();
            let outcome = self.with_bucket(key, |b| {
                if b.replies_waiting > 0 {
                    Err(YIELD_POLL)
                } else {
                    b.tokens.try_take(now)
                }
            });
            match outcome {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

/// The pair rate (131056: about one message per interval from a number to one customer,
/// short bursts tolerated), shared by replies and campaign sends of the process that owns
/// the number. Replies are recorded, never held (see [`PairLimiter::reply_now`]); a
/// campaign send goes a whole interval after the latest message to the customer, whichever
/// lane sent it, and reserves its time at once so two campaign sends to one customer wait
/// for each other.
pub struct PairLimiter {
    interval: Duration,
    reply_burst: u32,
    pairs: Mutex<HashMap<(String, String), Pair>>,
}

struct Pair {
    replies: TokenBucket,
    /// When the latest message to the customer went, or is reserved to go.
    last: Instant,
}

/// Pairs kept before idle ones are dropped.
const PAIRS_KEPT: usize = 100_000;

impl PairLimiter {
    /// An `interval` of zero: no pacing.
    pub fn new(interval: Duration, reply_burst: u32) -> Self {
        PairLimiter {
            interval,
            reply_burst: reply_burst.max(1),
            pairs: Mutex::new(HashMap::new()),
        }
    }

    fn with_pair<T>(
        &self,
        number: &str,
        to: &str,
        now: Instant,
        f: impl FnOnce(&mut Pair, bool) -> T,
    ) -> T {
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        if pairs.len() >= PAIRS_KEPT {
            // Idle for a whole burst's refill: a fresh pair behaves the same.
            let idle = self.interval * self.reply_burst;
            pairs.retain(|_, pair| pair.last + idle > now);
        }
        let key = (number.to_string(), to.to_string());
        let fresh = !pairs.contains_key(&key);
        let pair = pairs.entry(key).or_insert_with(|| Pair {
            replies: TokenBucket::new(1.0 / self.interval.as_secs_f64(), self.reply_burst),
            last: now,
        });
        f(pair, fresh)
    }

    /// Records a reply from `number` to `to` going now; whether it fits the pair's burst.
    /// A reply never waits here: replies are sent one at a time, so a wait for one
    /// customer would hold up every other customer's answer; one over the pair rate is
    /// refused by the provider (131056) and retried by the send's own backoff.
    pub fn reply_now(&self, number: &str, to: &str) -> bool {
        if self.interval.is_zero() {
            return true;
        }
        let now = tokio::time::Instant::now().into_std();
        self.with_pair(number, to, now, |pair, _| {
            pair.last = pair.last.max(now);
            pair.replies.try_take(now).is_ok()
        })
    }

    /// Waits until a campaign message from `number` to `to` may go: an interval after the
    /// latest message to them.
    pub async fn until_campaign_ready(&self, number: &str, to: &str) {
        if self.interval.is_zero() {
            return;
        }
        let now = tokio::time::Instant::now().into_std();
        let at = self.with_pair(number, to, now, |pair, fresh| {
            let at = if fresh {
                now
            } else {
                (pair.last + self.interval).max(now)
            };
            pair.last = at;
            // It uses the customer's allowance too: a reply just after it waits less of a
            // burst.
            let _ = pair.replies.try_take(at);
            at
        });
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_full_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(t0), Ok(()));
        }
        assert_eq!(bucket.try_take(t0), Err(ms(100)));
        assert_eq!(bucket.try_take(t0 + ms(40)), Err(ms(60)));
        assert_eq!(bucket.try_take(t0 + ms(100)), Ok(()));
        assert_eq!(bucket.try_take(t0 + ms(100)), Err(ms(100)));
    }

    #[test]
    fn never_holds_more_than_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 2);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(bucket.try_take(later), Ok(()));
        assert_eq!(bucket.try_take(later), Ok(()));
        assert_eq!(bucket.try_take(later), Err(ms(100)));
    }

    #[test]
    fn following_the_returned_wait_succeeds_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(80.0, 1);
        let mut now = t0;
        let mut sent = 0;
        while now < t0 + Duration::from_secs(1) {
            match bucket.try_take(now) {
                Ok(()) => sent += 1,
                Err(wait) => {
                    assert!(wait > Duration::ZERO);
                    now += wait;
                }
            }
        }
        assert_eq!(sent, 80);
    }

    #[test]
    fn a_waiter_woken_late_keeps_the_schedule() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(80.0, 1);
        // Each take 1 ms after it was due (a timer tick late), for a simulated second.
        let mut now = t0;
        let mut sent = 0;
        while now < t0 + Duration::from_secs(1) {
            match bucket.try_take(now) {
                Ok(()) => sent += 1,
                Err(wait) => now += wait + ms(1),
            }
        }
        assert_eq!(sent, 80, "the rate, not the timer's");
        // Long idle: no catching up beyond half an interval.
        let later = now + Duration::from_secs(5);
        assert_eq!(bucket.try_take(later), Ok(()));
        assert!(bucket.try_take(later).is_err());
    }

    #[test]
    fn slow_rates_and_zero_burst() {
        let t0 = Instant::now();
        let mut pair = TokenBucket::new(1.0 / 6.0, 0);
        assert_eq!(pair.try_take(t0), Ok(()));
        assert_eq!(pair.try_take(t0 + ms(1000)), Err(ms(5000)));
        assert_eq!(pair.try_take(t0 + ms(6000)), Ok(()));
    }

    #[test]
    fn earlier_times_do_not_underflow() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 1);
        assert_eq!(bucket.try_take(t0 + ms(500)), Ok(()));
        assert_eq!(bucket.try_take(t0), Err(ms(1500)));
    }

    #[tokio::test(start_paused = true)]
    async fn replies_take_the_slots_before_campaign_sends() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10.0, 1));
        limiter.until_ready("n").await; // the bucket is empty now
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let campaign = {
            let (limiter, order) = (limiter.clone(), order.clone());
            tokio::spawn(async move {
                limiter.until_ready_after_replies("n").await;
                order.lock().unwrap().push("campaign");
            })
        };
        tokio::task::yield_now().await;
        let replies: Vec<_> = (0..2)
            .map(|_| {
                let (limiter, order) = (limiter.clone(), order.clone());
                tokio::spawn(async move {
                    limiter.until_ready("n").await;
                    order.lock().unwrap().push("reply");
                })
            })
            .collect();
        for task in replies {
            task.await.unwrap();
        }
        campaign.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["reply", "reply", "campaign"]);
        // Another number is not held up by this one's replies, and has its own rate.
        let limiter = RateLimiter::new(10.0, 1).with_rates([("fast".to_string(), 1000.0)]);
        let started = tokio::time::Instant::now();
        for _ in 0..10 {
            limiter.until_ready("fast").await;
        }
        assert!(
            started.elapsed() < Duration::from_millis(20),
            "1,000/s, not 10/s"
        );
        let started = tokio::time::Instant::now();
        limiter.until_ready_after_replies("other").await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "must be positive")]
    fn zero_rate_is_refused() {
        TokenBucket::new(0.0, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_paces_each_key_on_its_own() {
        let limiter = RateLimiter::new(10.0, 2);
        let start = tokio::time::Instant::now();
        for _ in 0..4 {
            limiter.until_ready("111").await;
        }
        // Two from the burst, then one each 100 ms.
        assert_eq!(start.elapsed(), ms(200));
        let other = tokio::time::Instant::now();
        limiter.until_ready("222").await;
        limiter.until_ready("222").await;
        assert_eq!(other.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn replies_are_never_held_and_campaign_sends_wait_out_the_latest_message() {
        let pairs = PairLimiter::new(Duration::from_secs(6), 3);
        let start = tokio::time::Instant::now();
        // Three quick replies fit the burst; a fourth goes too, over it.
        for _ in 0..3 {
            assert!(pairs.reply_now("n", "601"));
        }
        assert!(!pairs.reply_now("n", "601"));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(pairs.reply_now("n", "601"));
        // A campaign message waits an interval after that reply.
        pairs.until_campaign_ready("n", "601").await;
        assert_eq!(start.elapsed(), Duration::from_secs(12));
        // Two campaign sends to one customer reserve one after the other.
        let started = tokio::time::Instant::now();
        pairs.until_campaign_ready("n", "602").await;
        pairs.until_campaign_ready("n", "602").await;
        assert_eq!(started.elapsed(), Duration::from_secs(6));
        // Other customers, and other numbers, are not held up.
        let started = tokio::time::Instant::now();
        pairs.until_campaign_ready("n", "603").await;
        assert!(pairs.reply_now("m", "601"));
        assert_eq!(started.elapsed(), Duration::ZERO);
        // No interval: no pacing.
        let free = PairLimiter::new(Duration::ZERO, 1);
        let started = tokio::time::Instant::now();
        for _ in 0..5 {
            free.until_campaign_ready("n", "601").await;
            assert!(free.reply_now("n", "601"));
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
