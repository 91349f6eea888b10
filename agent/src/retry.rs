//! Client-side rate limits and retries, on tokio's clock so both are tested with paused time.
//!
//! A hand-written limiter rather than `governor`: governor keeps its own clock, so a test
//! with tokio's paused clock could not check that quotas hold.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use crate::error::{ApiError, ErrorKind};

/// Spaces calls evenly: at most `rate` per second, no bursts, with 10% headroom.
///
/// Calls spaced at exactly the quota arrive at the service with network and scheduling
/// jitter, so two of them can land less than one interval apart and be throttled; each
/// throttle then costs a backoff. 10% slower than the quota avoids that (measured with
/// bench/deploy.sh: 45 throttled imports and 1.68x the floor without it).
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// Headroom under the quota.
    const HEADROOM: f64 = 1.1;

    /// A limiter for `per_second` calls per second (values below 0.01 count as 0.01).
    pub fn per_second(per_second: f64) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(Self::HEADROOM / per_second.max(0.01)),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().expect("limiter lock");
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
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

/// Counts of AWS calls, by operation: made, failed, throttled.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    throttled: AtomicU64,
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
}

impl CallStats {
    fn call(&self, op: &'static str) {
        *self
            .calls
            .lock()
            .expect("stats lock")
            .entry(op)
            .or_default() += 1;
    }

    fn error(&self, op: &'static str, kind: ErrorKind) {
        *self
            .errors
            .lock()
            .expect("stats lock")
            .entry(op)
            .or_default() += 1;
        if kind == ErrorKind::Throttled {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CallCounts {
        let calls: BTreeMap<String, u64> = self
            .calls
            .lock()
            .expect("stats lock")
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        CallCounts {
            total: calls.values().sum(),
            calls,
            errors: self
                .errors
                .lock()
                .expect("stats lock")
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
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

/// Runs `call` under the limiter, retrying throttling and transient failures with backoff
/// until it succeeds, fails for good (access denied, validation, quota), runs out of
/// attempts, or the next wait would pass the total time cap.
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    limiter: Option<&RateLimiter>,
    stats: &CallStats,
    operation: &'static str,
    mut call: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let start = Instant::now();
    let total = Duration::from_secs(policy.total_timeout_s);
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some(l) = limiter {
            l.acquire().await;
        }
        stats.call(operation);
        match call().await {
            Ok(v) => return Ok(v),
            Err(mut e) => {
                stats.error(operation, e.kind);
                e.attempts = attempt;
                if !e.kind.is_retryable() || attempt >= policy.max_attempts {
                    return Err(e);
                }
                let delay = policy.backoff(attempt, jitter_seed());
                if start.elapsed() + delay > total {
                    return Err(e);
                }
                tokio::time::sleep(delay).await;
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
        }
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
    async fn throttling_is_retried_with_growing_backoff() {
        let policy = RetryPolicy::default();
        let stats = CallStats::default();
        let n = AtomicU32::new(0);
        let start = Instant::now();
        let out = with_retry(&policy, None, &stats, "ListCertificates", || async {
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
        let c = stats.snapshot();
        assert_eq!(c.calls["ListCertificates"], 4);
        assert_eq!(c.throttled, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn access_denied_validation_and_quota_fail_at_once() {
        for kind in [
            ErrorKind::AccessDenied,
            ErrorKind::Validation,
            ErrorKind::QuotaExceeded,
        ] {
            let stats = CallStats::default();
            let e = with_retry(
                &RetryPolicy::default(),
                None,
                &stats,
                "ImportCertificate",
                || async { Err::<(), _>(err(kind)) },
            )
            .await
            .unwrap_err();
            assert_eq!(e.attempts, 1, "{kind:?}");
            assert_eq!(stats.snapshot().total, 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_total_time_cap() {
        let policy = RetryPolicy {
            max_attempts: 1000,
            base_delay_ms: 1000,
            max_delay_ms: 10_000,
            total_timeout_s: 30,
        };
        let stats = CallStats::default();
        let start = Instant::now();
        let e = with_retry(&policy, None, &stats, "DescribeCertificate", || async {
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
    }
}
