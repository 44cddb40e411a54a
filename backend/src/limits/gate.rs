//! The gate in front of password hashing: argon2 takes 19 MiB and tens of milliseconds of
//! a core per call, so at most a few run at once and a short queue waits; anything beyond
//! is told to come back (HTTP 503) at once rather than piling up threads and memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gate was full, or the wait too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy: try again in a moment")]
pub struct GateClosed;

/// At most `running` holders at once, at most `queue` waiting.
#[derive(Debug)]
pub struct HashGate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

impl HashGate {
    /// A gate for `running` concurrent holders and `queue` waiters, each waiting at most
    /// `max_wait`.
    pub fn new(running: usize, queue: usize, max_wait: Duration) -> HashGate {
        HashGate {
            permits: Arc::new(Semaphore::new(running.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting: queue,
            max_wait,
        }
    }

    /// A gate sized for this machine: as many hashes at once as cores.
    pub fn for_this_machine() -> HashGate {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        HashGate::new(cores, 8 * cores, Duration::from_secs(5))
    }

    /// Waits for a turn, or fails at once when the queue is full.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, GateClosed> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(GateClosed);
        }
        let permit =
            tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match permit {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(GateClosed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_queue_is_refused_at_once() {
        let gate = Arc::new(HashGate::new(1, 1, Duration::from_secs(5)));
        let running = gate.enter().await.unwrap();
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter().await.map(drop) })
        };
        while gate.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.enter().await.err(), Some(GateClosed));
        drop(running);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }
}
