//! Fixed-window counters: at most `limit` events per key per window.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::MAX_TRACKED_KEYS;

/// Counts events per key in fixed windows; bounded in keys.
#[derive(Debug)]
pub struct WindowLimiter {
    window: Duration,
    max_keys: usize,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl WindowLimiter {
    /// A limiter with windows of this length.
    pub fn new(window: Duration) -> WindowLimiter {
        WindowLimiter::with_capacity(window, MAX_TRACKED_KEYS)
    }

    /// A limiter that tracks at most `max_keys` keys.
    pub fn with_capacity(window: Duration, max_keys: usize) -> WindowLimiter {
        WindowLimiter { window, max_keys: max_keys.max(1), counts: Mutex::default() }
    }

    /// Counts an event under `key`; `false` when `limit` events already fell in its
    /// current window (the refused event is not counted).
    pub fn allow(&self, key: &str, limit: u32) -> bool {
        self.allow_at(key, limit, Instant::now())
    }

    fn allow_at(&self, key: &str, limit: u32, now: Instant) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if !counts.contains_key(key) && counts.len() >= self.max_keys {
            let window = self.window;
            counts.retain(|_, (start, _)| now.duration_since(*start) < window);
            if counts.len() >= self.max_keys {
                // Still full of live windows: forget the oldest one to make room. An
                // attacker who fills the table only resets other keys' windows early,
                // which the per-address limit in front of this one bounds.
                if let Some(oldest) =
                    counts.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| k.clone())
                {
                    counts.remove(&oldest);
                }
            }
        }
        let entry = counts.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// How many keys are tracked now.
    pub fn len(&self) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_resets_with_the_window() {
        let limiter = WindowLimiter::new(Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.allow_at("a", 3, start));
        }
        assert!(!limiter.allow_at("a", 3, start));
        assert!(limiter.allow_at("b", 3, start), "keys are independent");
        assert!(limiter.allow_at("a", 3, start + Duration::from_secs(60)));
    }

    #[test]
    fn the_table_is_bounded() {
        let limiter = WindowLimiter::with_capacity(Duration::from_secs(60), 100);
        let now = Instant::now();
        for n in 0..10_000 {
            limiter.allow_at(&format!("k{n}"), 1, now);
        }
        assert_eq!(limiter.len(), 100);
    }
}
