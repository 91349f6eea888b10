//! Client-side rate limits and retries, on tokio's clock so both are tested with paused time.
//!
//! A hand-written limiter rather than `governor`: governor keeps its own clock, so a test
//! with tokio's paused clock could not check that quotas hold.
//!
//! Limits are per (account, region), shared by every target whose credentials resolve to
//! the same account (ACM's quotas are the account's, not the profile's), and slow down
//! after a throttled answer. Every call goes through a [`Scope`], which counts it by
//! operation, target and region, and which a stopped pass (SIGTERM) refuses to send.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ErrorKind, Refusal};

/// Spaces calls evenly: at most `rate` per second, no bursts, with 10% headroom; after a
/// throttled answer the spacing doubles (up to 16 times), and each success then takes back
/// a quarter of the slowdown.
///
/// Calls spaced at exactly the quota arrive at the service with network and scheduling
/// jitter, so two of them can land less than one interval apart and be throttled; each
/// throttle then costs a backoff. 10% slower than the quota avoids that (measured with
/// bench/deploy.sh: 45 throttled imports and 1.68x the floor without it).
#[derive(Debug)]
pub struct RateLimiter {
    base: Duration,
    state: Mutex<LimiterState>,
}

#[derive(Debug)]
struct LimiterState {
    next: Option<Instant>,
    interval: Duration,
}

impl RateLimiter {
    /// Headroom under the quota.
    const HEADROOM: f64 = 1.1;
    /// The most a run of throttled answers slows the limiter down.
    const MAX_SLOWDOWN: u32 = 16;

    /// A limiter for `per_second` calls per second (values below 0.01 count as 0.01).
    pub fn per_second(per_second: f64) -> RateLimiter {
        let base = Duration::from_secs_f64(Self::HEADROOM / per_second.max(0.01));
        RateLimiter {
            base,
            state: Mutex::new(LimiterState {
                next: None,
                interval: base,
            }),
        }
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut s = self.state.lock().expect("limiter lock");
            let now = Instant::now();
            let slot = s.next.map_or(now, |n| n.max(now));
            s.next = Some(slot + s.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// The service said "too fast": slow down.
    pub fn throttled(&self) {
        let mut s = self.state.lock().expect("limiter lock");
        s.interval = (s.interval * 2).min(self.base * Self::MAX_SLOWDOWN);
        let now = Instant::now();
        s.next = Some(s.next.map_or(now, |n| n.max(now)) + s.interval);
    }

    /// A call went through: recover part of any slowdown.
    pub fn succeeded(&self) {
        let mut s = self.state.lock().expect("limiter lock");
        if s.interval > self.base {
            s.interval = (s.interval - (s.interval - self.base) / 4).max(self.base);
        }
    }

    /// The spacing now.
    pub fn interval(&self) -> Duration {
        self.state.lock().expect("limiter lock").interval
    }
}

/// The limiters of one account and region.
#[derive(Debug)]
pub struct RegionLimits {
    /// ListCertificates.
    pub list: RateLimiter,
    /// GetCertificate.
    pub get: RateLimiter,
    /// DescribeCertificate.
    pub describe: RateLimiter,
    /// ImportCertificate.
    pub import: RateLimiter,
    /// AddTagsToCertificate.
    pub add_tags: RateLimiter,
    /// ListTagsForCertificate.
    pub list_tags: RateLimiter,
    /// DeleteCertificate.
    pub delete: RateLimiter,
}

impl RegionLimits {
    fn new(q: &Quotas) -> RegionLimits {
        RegionLimits {
            list: RateLimiter::per_second(q.list_certificates),
            get: RateLimiter::per_second(q.get_certificate),
            describe: RateLimiter::per_second(q.describe_certificate),
            import: RateLimiter::per_second(q.import_certificate),
            add_tags: RateLimiter::per_second(q.add_tags_to_certificate),
            list_tags: RateLimiter::per_second(q.list_tags_for_certificate),
            delete: RateLimiter::per_second(q.delete_certificate),
        }
    }
}

/// Limiters by (account, region), made on first use and shared by every target whose
/// credentials resolve to that account.
#[derive(Debug)]
pub struct LimiterPool {
    quotas: Quotas,
    pool: Mutex<BTreeMap<(String, String), Arc<RegionLimits>>>,
}

impl LimiterPool {
    /// An empty pool for these quotas.
    pub fn new(quotas: Quotas) -> LimiterPool {
        LimiterPool {
            quotas,
            pool: Mutex::new(BTreeMap::new()),
        }
    }

    /// The limiters of `account` in `region`.
    pub fn get(&self, account: &str, region: &str) -> Arc<RegionLimits> {
        self.pool
            .lock()
            .expect("pool lock")
            .entry((account.to_owned(), region.to_owned()))
            .or_insert_with(|| Arc::new(RegionLimits::new(&self.quotas)))
            .clone()
    }
}

/// Request rates under ACM's quotas, per account and region (requests per second).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// ListCertificates (ACM quota: 8).
    pub list_certificates: f64,
    /// DescribeCertificate (10).
    pub describe_certificate: f64,
    /// GetCertificate (10).
    pub get_certificate: f64,
    /// ImportCertificate (1).
    pub import_certificate: f64,
    /// AddTagsToCertificate (5).
    pub add_tags_to_certificate: f64,
    /// ListTagsForCertificate (10).
    pub list_tags_for_certificate: f64,
    /// DeleteCertificate (10).
    pub delete_certificate: f64,
    /// IAM calls (shared, global).
    pub iam: f64,
}

impl Default for Quotas {
    fn default() -> Self {
        // Published ACM quotas; a little below them is no faster in practice and leaves
        // headroom for other tools in the same account.
        Quotas {
            list_certificates: 8.0,
            describe_certificate: 10.0,
            get_certificate: 10.0,
            import_certificate: 1.0,
            add_tags_to_certificate: 5.0,
            list_tags_for_certificate: 10.0,
            delete_certificate: 10.0,
            iam: 5.0,
        }
    }
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff, in milliseconds; doubles each attempt.
    pub base_delay_ms: u64,
    /// Longest single backoff, in milliseconds.
    pub max_delay_ms: u64,
    /// No retry starts after this many seconds since the first attempt.
    pub total_timeout_s: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay_ms: 200,
            max_delay_ms: 20_000,
            total_timeout_s: 120,
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1`: exponential, capped, with "equal jitter"
    /// (between half and all of it) so callers spread out yet always wait.
    pub fn backoff(&self, attempt: u32, random: u64) -> Duration {
        let exp = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(self.max_delay_ms);
        let half = exp / 2;
        Duration::from_millis(half + random % (exp - half + 1))
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    calls: u64,
    errors: u64,
    throttled: u64,
}

/// Counts of AWS calls by operation, target and region: made, failed, throttled.
#[derive(Debug, Default)]
pub struct CallStats {
    counts: Mutex<BTreeMap<(&'static str, String, String), Counts>>,
}

/// Calls of one operation in one target and region.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LocationCalls {
    /// The operation.
    pub operation: String,
    /// The target.
    pub target: String,
    /// The region (`global` for STS and IAM).
    pub region: String,
    /// Attempts made.
    pub calls: u64,
    /// Attempts that failed.
    pub errors: u64,
    /// Attempts answered with throttling.
    pub throttled: u64,
}

/// A snapshot of [`CallStats`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CallCounts {
    /// Calls made (every attempt), by operation.
    pub calls: BTreeMap<String, u64>,
    /// Failed attempts, by operation.
    pub errors: BTreeMap<String, u64>,
    /// Attempts answered with throttling.
    pub throttled: u64,
    /// All calls.
    pub total: u64,
    /// The same, by operation, target and region.
    pub by_location: Vec<LocationCalls>,
}

impl CallStats {
    fn bump(&self, op: &'static str, target: &str, region: &str, f: impl FnOnce(&mut Counts)) {
        let mut m = self.counts.lock().expect("stats lock");
        f(m.entry((op, target.to_owned(), region.to_owned()))
            .or_default());
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CallCounts {
        let m = self.counts.lock().expect("stats lock");
        let mut out = CallCounts::default();
        for ((op, target, region), c) in m.iter() {
            *out.calls.entry((*op).to_owned()).or_default() += c.calls;
            if c.errors > 0 {
                *out.errors.entry((*op).to_owned()).or_default() += c.errors;
            }
            out.throttled += c.throttled;
            out.total += c.calls;
            out.by_location.push(LocationCalls {
                operation: (*op).to_owned(),
                target: target.clone(),
                region: region.clone(),
                calls: c.calls,
                errors: c.errors,
                throttled: c.throttled,
            });
        }
        out
    }
}

fn jitter_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    // splitmix64: spread for jitter, not for secrecy.
    let mut z = COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ nanos;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random fraction in [-1, 1], for spreading intervals.
pub(crate) fn jitter_unit() -> f64 {
    (jitter_seed() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Whether a failed call may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotence {
    /// Doing it twice is doing it once (reads, re-imports into the same ARN, tags):
    /// throttling and transient failures are retried.
    Safe,
    /// Doing it twice makes two (a first ImportCertificate): only a throttled answer, which
    /// says the call was not carried out, is retried. After a lost answer the caller looks
    /// before it acts again.
    Unsafe,
}

/// Where calls go and how they are counted: one target and region of one pass.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Retry policy.
    pub policy: RetryPolicy,
    /// Counts, shared by the pass.
    pub stats: Arc<CallStats>,
    /// Target name, for counts and messages.
    pub target: String,
    /// Region (`global` for STS and IAM).
    pub region: String,
    /// Cancelled when the pass is told to stop: no new call is sent.
    pub stop: CancellationToken,
}

impl Scope {
    /// A scope for one target and region.
    pub fn new(
        policy: RetryPolicy,
        stats: Arc<CallStats>,
        target: &str,
        region: &str,
        stop: CancellationToken,
    ) -> Scope {
        Scope {
            policy,
            stats,
            target: target.to_owned(),
            region: region.to_owned(),
            stop,
        }
    }

    /// The same target, another region.
    pub fn in_region(&self, region: &str) -> Scope {
        Scope {
            region: region.to_owned(),
            ..self.clone()
        }
    }

    fn stopped(&self, operation: &'static str) -> ApiError {
        ApiError::refused(operation, &self.region, Refusal::Stopped)
    }

    /// Runs `call` under the limiter, retrying throttling (and, for [`Idempotence::Safe`]
    /// calls, transient failures) with backoff until it succeeds, fails for good (access
    /// denied, validation, quota), runs out of attempts, or the next wait would pass the
    /// total time cap. Nothing is sent once the pass is stopped; a call in flight finishes.
    pub async fn call<T, F, Fut>(
        &self,
        limiter: Option<&RateLimiter>,
        operation: &'static str,
        idempotence: Idempotence,
        mut call: F,
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let start = Instant::now();
        let total = Duration::from_secs(self.policy.total_timeout_s);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(l) = limiter {
                tokio::select! {
                    biased;
                    () = self.stop.cancelled() => return Err(self.stopped(operation)),
                    () = l.acquire() => {}
                }
            }
            if self.stop.is_cancelled() {
                return Err(self.stopped(operation));
            }
            let result = call().await;
            // A call the SDK could not sign (no credentials) never left: not counted.
            if !matches!(&result, Err(e) if e.kind == ErrorKind::NoCredentials) {
                self.stats
                    .bump(operation, &self.target, &self.region, |c| c.calls += 1);
            }
            match result {
                Err(e) if e.kind == ErrorKind::NoCredentials => return Err(e),
                Ok(v) => {
                    if let Some(l) = limiter {
                        l.succeeded();
                    }
                    return Ok(v);
                }
                Err(mut e) => {
                    let throttled = e.kind == ErrorKind::Throttled;
                    self.stats.bump(operation, &self.target, &self.region, |c| {
                        c.errors += 1;
                        c.throttled += u64::from(throttled);
                    });
                    if throttled && let Some(l) = limiter {
                        l.throttled();
                    }
                    e.attempts = attempt;
                    let again = match idempotence {
                        Idempotence::Safe => e.kind.is_retryable(),
                        Idempotence::Unsafe => throttled,
                    };
                    if !again || attempt >= self.policy.max_attempts {
                        return Err(e);
                    }
                    let delay = self.policy.backoff(attempt, jitter_seed());
                    if start.elapsed() + delay > total {
                        return Err(e);
                    }
                    tokio::select! {
                        biased;
                        () = self.stop.cancelled() => return Err(self.stopped(operation)),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    fn err(kind: ErrorKind) -> ApiError {
        ApiError {
            kind,
            operation: "ListCertificates",
            region: "us-east-1".into(),
            code: format!("{kind:?}"),
            message: String::new(),
            attempts: 0,
            request_id: None,
            refusal: None,
        }
    }

    fn scope() -> Scope {
        Scope::new(
            RetryPolicy::default(),
            Arc::new(CallStats::default()),
            "default",
            "us-east-1",
            CancellationToken::new(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_calls_at_the_quota() {
        let l = RateLimiter::per_second(1.0);
        let start = Instant::now();
        for _ in 0..5 {
            l.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(4400),
            "5 calls at 1/s take 4 s and the headroom, not less"
        );
        let fast = RateLimiter::per_second(10.0);
        let start = Instant::now();
        for _ in 0..11 {
            fast.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_answer_slows_the_limiter_and_successes_recover() {
        let l = RateLimiter::per_second(10.0);
        let base = l.interval();
        l.throttled();
        l.throttled();
        assert_eq!(l.interval(), base * 4);
        for _ in 0..100 {
            l.throttled();
        }
        assert_eq!(l.interval(), base * 16, "bounded");
        for _ in 0..40 {
            l.succeeded();
        }
        assert!(l.interval() < base * 2 && l.interval() >= base);
    }

    #[tokio::test(start_paused = true)]
    async fn limiters_are_shared_per_account_and_region() {
        let pool = LimiterPool::new(Quotas::default());
        let a = pool.get("111111111111", "us-east-1");
        let b = pool.get("111111111111", "us-east-1");
        let c = pool.get("222222222222", "us-east-1");
        assert!(Arc::ptr_eq(&a, &b), "two targets, one account: one quota");
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_with_growing_backoff() {
        let s = scope();
        let n = AtomicU32::new(0);
        let start = Instant::now();
        let out = s
            .call(None, "ListCertificates", Idempotence::Safe, || async {
                if n.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(err(ErrorKind::Throttled))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out.unwrap(), 7);
        let waited = start.elapsed();
        // 200, 400, 800 ms, each between half and all of it.
        assert!(
            waited >= Duration::from_millis(700) && waited <= Duration::from_millis(1400),
            "{waited:?}"
        );
        let c = s.stats.snapshot();
        assert_eq!(c.calls["ListCertificates"], 4);
        assert_eq!(c.throttled, 3);
        assert_eq!(c.by_location[0].region, "us-east-1");
    }

    #[tokio::test(start_paused = true)]
    async fn access_denied_validation_and_quota_fail_at_once() {
        for kind in [
            ErrorKind::AccessDenied,
            ErrorKind::Validation,
            ErrorKind::QuotaExceeded,
        ] {
            let s = scope();
            let e = s
                .call(None, "ImportCertificate", Idempotence::Safe, || async {
                    Err::<(), _>(err(kind))
                })
                .await
                .unwrap_err();
            assert_eq!(e.attempts, 1, "{kind:?}");
            assert_eq!(s.stats.snapshot().total, 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_is_not_idempotent_is_retried_only_when_throttled() {
        let s = scope();
        let n = AtomicU32::new(0);
        let e = s
            .call(None, "ImportCertificate", Idempotence::Unsafe, || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(err(ErrorKind::Transient))
            })
            .await
            .unwrap_err();
        assert_eq!(n.load(Ordering::SeqCst), 1, "a lost answer is not retried");
        assert!(e.outcome_unknown());
        let n = AtomicU32::new(0);
        s.call(None, "ImportCertificate", Idempotence::Unsafe, || async {
            if n.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(err(ErrorKind::Throttled))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_scope_sends_nothing_and_stops_waiting() {
        let s = scope();
        let l = RateLimiter::per_second(0.1);
        l.acquire().await;
        let stop = s.stop.clone();
        let start = Instant::now();
        let waiting = s.call(
            Some(&l),
            "ImportCertificate",
            Idempotence::Unsafe,
            || async { Ok::<_, ApiError>(()) },
        );
        let (r, ()) = tokio::join!(waiting, async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.cancel();
        });
        assert_eq!(r.unwrap_err().kind, ErrorKind::Stopped);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "did not wait out the limiter"
        );
        assert_eq!(s.stats.snapshot().total, 0, "nothing sent");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_total_time_cap() {
        let mut s = scope();
        s.policy = RetryPolicy {
            max_attempts: 1000,
            base_delay_ms: 1000,
            max_delay_ms: 10_000,
            total_timeout_s: 30,
        };
        let start = Instant::now();
        let e = s
            .call(None, "DescribeCertificate", Idempotence::Safe, || async {
                Err::<(), _>(err(ErrorKind::Transient))
            })
            .await
            .unwrap_err();
        assert!(start.elapsed() <= Duration::from_secs(30));
        assert!(e.attempts > 3 && e.attempts < 20, "{}", e.attempts);
    }

    #[test]
    fn backoff_bounds() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            for r in [0, 1, u64::MAX / 3, u64::MAX] {
                let d = p.backoff(attempt, r);
                assert!(d <= Duration::from_millis(p.max_delay_ms));
                assert!(d >= Duration::from_millis(p.base_delay_ms / 2));
            }
        }
        for _ in 0..100 {
            let j = jitter_unit();
            assert!((-1.0..=1.0).contains(&j));
        }
    }
}
