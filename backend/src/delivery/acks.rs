//! The ledger of deliveries a client still has to acknowledge.
//!
//! The writer records a delivery just before the MESSAGE leaves, so a client can only ACK
//! what it could have received; the session checks and settles ACK and NACK frames here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use super::outbox::AckRef;

/// Why a delivery could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} messages are waiting for an ACK")]
pub struct TooManyUnacked {
    /// The limit.
    pub limit: usize,
}

/// Deliveries awaiting ACK or NACK, in delivery order. Shared by a session, its writer,
/// and its replays, which wait here rather than overrun the limit (security review M11).
#[derive(Debug, Clone)]
pub struct AckLedger {
    inner: Arc<Mutex<VecDeque<AckRef>>>,
    settled: Arc<Notify>,
    limit: usize,
}

impl AckLedger {
    /// An empty ledger holding at most `limit` pending deliveries.
    pub fn new(limit: usize) -> AckLedger {
        AckLedger { inner: Arc::default(), settled: Arc::default(), limit }
    }

    /// The most deliveries that may await an ACK.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Waits until at most half the limit is pending, so that `frames` more fit with room
    /// to spare for live deliveries.
    pub async fn room_for(&self, frames: usize) {
        loop {
            let settled = self.settled.notified();
            if self.len() + frames <= self.limit / 2 {
                return;
            }
            settled.await;
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<AckRef>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a delivery that needs an acknowledgement.
    pub fn record(&self, delivery: AckRef) -> Result<(), TooManyUnacked> {
        let mut pending = self.pending();
        if pending.len() >= self.limit {
            return Err(TooManyUnacked { limit: self.limit });
        }
        pending.push_back(delivery);
        Ok(())
    }

    /// Settles the delivery whose `ack` header was `ack_id`. Returns `false` if no such
    /// delivery is pending.
    ///
    /// "When the ack mode is client, ... The ACK frames sent by the client will be treated
    /// as a cumulative acknowledgment": the delivery and every earlier one of its
    /// subscription are settled. In client-individual mode only the one is.
    pub fn settle(&self, ack_id: &str) -> bool {
        let mut pending = self.pending();
        let Some(position) = pending.iter().position(|delivery| &*delivery.ack_id == ack_id) else {
            return false;
        };
        let settled = pending.remove(position).expect("position is in range");
        if settled.cumulative {
            let mut index = 0;
            pending.retain(|delivery| {
                index += 1;
                index > position || delivery.subscription != settled.subscription
            });
        }
        drop(pending);
        self.settled.notify_waiters();
        true
    }

    /// Forgets every delivery of a subscription that has ended.
    pub fn forget(&self, subscription: &str) {
        self.pending().retain(|delivery| &*delivery.subscription != subscription);
        self.settled.notify_waiters();
    }

    /// How many deliveries are pending.
    pub fn len(&self) -> usize {
        self.pending().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(ack_id: &str, subscription: &str, cumulative: bool) -> AckRef {
        AckRef { ack_id: ack_id.into(), subscription: subscription.into(), cumulative }
    }

    #[test]
    fn client_mode_acks_are_cumulative_per_subscription() {
        let ledger = AckLedger::new(10);
        for (id, subscription) in [("1", "a"), ("2", "b"), ("3", "a"), ("4", "a")] {
            ledger.record(delivery(id, subscription, true)).unwrap();
        }
        assert!(ledger.settle("3"));
        // 1 and 3 are settled; 2 belongs to another subscription, 4 came later.
        assert!(!ledger.settle("1"));
        assert!(ledger.settle("2"));
        assert!(ledger.settle("4"));
        assert!(ledger.is_empty());
    }

    #[test]
    fn client_individual_acks_settle_one() {
        let ledger = AckLedger::new(10);
        ledger.record(delivery("1", "a", false)).unwrap();
        ledger.record(delivery("2", "a", false)).unwrap();
        assert!(ledger.settle("2"));
        assert!(!ledger.settle("2"));
        assert!(ledger.settle("1"));
    }

    #[test]
    fn the_ledger_is_bounded_and_forgets_ended_subscriptions() {
        let ledger = AckLedger::new(2);
        ledger.record(delivery("1", "a", false)).unwrap();
        ledger.record(delivery("2", "b", false)).unwrap();
        assert_eq!(ledger.record(delivery("3", "a", false)), Err(TooManyUnacked { limit: 2 }));
        ledger.forget("a");
        assert_eq!(ledger.len(), 1);
        assert!(!ledger.settle("1"));
    }
}
