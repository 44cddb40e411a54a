//! Token buckets: a steady rate with room for a burst.

use std::time::{Duration, Instant};

/// A sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second; `0` means no limit.
    pub per_second: f64,
    /// The most tokens the bucket holds.
    pub burst: f64,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Rate = Rate { per_second: 0.0, burst: 0.0 };

    /// `per_second` with a burst of `burst`.
    pub fn new(per_second: f64, burst: f64) -> Rate {
        Rate { per_second, burst: burst.max(1.0) }
    }
}

/// One bucket. Not shared: its owner holds it under its own lock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> TokenBucket {
        TokenBucket { rate, tokens: rate.burst, updated: Instant::now() }
    }

    /// Takes a token; `Err(wait)` with the time until one is available if none is.
    pub fn take(&mut self) -> Result<(), Duration> {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate.per_second <= 0.0 {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket { rate: Rate::new(2.0, 3.0), tokens: 3.0, updated: start };
        for _ in 0..3 {
            assert_eq!(bucket.take_at(start), Ok(()));
        }
        assert_eq!(bucket.take_at(start), Err(Duration::from_millis(500)));
        assert_eq!(bucket.take_at(start + Duration::from_millis(500)), Ok(()));
        assert!(bucket.take_at(start + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn zero_means_unlimited() {
        let mut bucket = TokenBucket::new(Rate::UNLIMITED);
        for _ in 0..10_000 {
            assert_eq!(bucket.take(), Ok(()));
        }
    }
}
