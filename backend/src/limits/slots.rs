//! Connection caps: in total, and per client address. A slot is taken at the WebSocket
//! upgrade and given back when the connection ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotRefused {
    /// The node holds as many connections as it may.
    #[error("the server is full: try again later")]
    Full,
    /// This address holds as many connections as it may.
    #[error("too many connections from your address")]
    TooManyFromAddress,
}

/// The node's connection counts; a cheap handle.
#[derive(Debug, Clone)]
pub struct ConnectionSlots {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max_total: usize,
    max_per_address: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<String, usize>,
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    inner: Arc<Inner>,
    address: String,
}

impl ConnectionSlots {
    /// Caps of `max_total` connections and `max_per_address` per address; `0` is no cap.
    pub fn new(max_total: usize, max_per_address: usize) -> ConnectionSlots {
        ConnectionSlots {
            inner: Arc::new(Inner { max_total, max_per_address, counts: Mutex::default() }),
        }
    }

    /// Takes a slot for a connection from `address` (an [`super::address_key`]).
    pub fn admit(&self, address: String) -> Result<ConnectionSlot, SlotRefused> {
        let mut counts = self.inner.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.inner.max_total > 0 && counts.total >= self.inner.max_total {
            return Err(SlotRefused::Full);
        }
        let from_address = counts.by_address.get(&address).copied().unwrap_or(0);
        if self.inner.max_per_address > 0 && from_address >= self.inner.max_per_address {
            return Err(SlotRefused::TooManyFromAddress);
        }
        counts.total += 1;
        *counts.by_address.entry(address.clone()).or_default() += 1;
        Ok(ConnectionSlot { inner: self.inner.clone(), address })
    }

    /// Connections held now.
    pub fn total(&self) -> usize {
        self.inner.counts.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.inner.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if let Some(count) = counts.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_total_and_per_address() {
        let slots = ConnectionSlots::new(3, 2);
        let a1 = slots.admit("a".into()).unwrap();
        let _a2 = slots.admit("a".into()).unwrap();
        assert_eq!(slots.admit("a".into()).unwrap_err(), SlotRefused::TooManyFromAddress);
        let _b1 = slots.admit("b".into()).unwrap();
        assert_eq!(slots.admit("c".into()).unwrap_err(), SlotRefused::Full);
        drop(a1);
        let _a3 = slots.admit("a".into()).unwrap();
        assert_eq!(slots.total(), 3);
    }
}
