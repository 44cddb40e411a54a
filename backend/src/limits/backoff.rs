//! Back-off after failed attempts, per key: a few failures are free, then each further
//! attempt must wait twice as long as the one before.
//!
//! Login keys this by user name *and* client address, so that someone guessing passwords
//! from one place slows down only there: the real user, elsewhere, still signs in.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::MAX_TRACKED_KEYS;

/// Failures allowed before any waiting.
const FREE_FAILURES: u32 = 5;
/// The first wait; it doubles with each further failure.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Failures are forgotten this long after the last one.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

/// Failure counts per key; bounded in keys.
#[derive(Debug, Default)]
pub struct FailureBackoff {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl FailureBackoff {
    /// `Err(wait)` if `key` must wait before its next attempt.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(&(count, last)) = failures.get(key) else { return Ok(()) };
        let wait = wait_after(count);
        let since = now.duration_since(last);
        if since >= wait { Ok(()) } else { Err(wait - since) }
    }

    /// Records a failed attempt under `key`.
    pub fn failed(&self, key: &str) {
        self.failed_at(key, Instant::now());
    }

    fn failed_at(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if !failures.contains_key(key) && failures.len() >= MAX_TRACKED_KEYS {
            failures.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
            if failures.len() >= MAX_TRACKED_KEYS
                && let Some(oldest) =
                    failures.iter().min_by_key(|(_, (_, last))| *last).map(|(k, _)| k.clone())
            {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(key.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) >= FORGET_AFTER {
            entry.0 = 0;
        }
        *entry = (entry.0.saturating_add(1), now);
    }

    /// Forgets the failures of `key` (after a success).
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

/// How long to wait after `count` failures.
fn wait_after(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES).min(20);
    FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_failures_are_free_then_waits_double() {
        let backoff = FailureBackoff::default();
        let start = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            backoff.failed_at("ann@a", start);
        }
        assert_eq!(backoff.check_at("ann@a", start), Ok(()));
        backoff.failed_at("ann@a", start);
        assert_eq!(backoff.check_at("ann@a", start), Err(Duration::from_secs(1)));
        assert_eq!(backoff.check_at("ann@a", start + Duration::from_secs(1)), Ok(()));
        backoff.failed_at("ann@a", start);
        assert_eq!(backoff.check_at("ann@a", start), Err(Duration::from_secs(2)));
        assert_eq!(backoff.check_at("ann@b", start), Ok(()), "another address is not slowed");
        backoff.succeeded("ann@a");
        assert_eq!(backoff.check_at("ann@a", start), Ok(()));
    }

    #[test]
    fn waits_are_capped() {
        assert_eq!(wait_after(1000), MAX_WAIT);
    }
}
