//! The registry of this node's subscriptions, by destination, and the fan-out over it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use shared::stomp::AckMode;

use super::message::{EncodedMessage, FrameCache};
use super::outbox::Outbox;

/// Identifies a connection within this node.
pub type SessionId = u64;

/// One subscription of one session.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The session that owns it.
    pub session: SessionId,
    /// Its `id` header.
    pub subscription: Arc<str>,
    /// Its `ack` mode.
    pub ack: AckMode,
    /// Where its MESSAGE frames go.
    pub outbox: Outbox,
}

impl Subscriber {
    /// What a delivery needs for this subscription's ack mode: `None` for `auto`, else
    /// whether an ACK is cumulative.
    pub fn ack_kind(&self) -> Option<bool> {
        match self.ack {
            AckMode::Auto => None,
            AckMode::Client => Some(true),
            AckMode::ClientIndividual => Some(false),
        }
    }
}

/// Destination → subscribers. Publishers share the read lock; only subscribing and
/// unsubscribing take the write lock.
#[derive(Debug, Default)]
pub struct Topics {
    map: RwLock<HashMap<String, Vec<Subscriber>>>,
}

impl Topics {
    /// Adds a subscriber to `destination`.
    pub fn subscribe(&self, destination: &str, subscriber: Subscriber) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(destination.to_owned()).or_default().push(subscriber);
    }

    /// Removes a session's subscription; returns whether it existed.
    pub fn unsubscribe(&self, destination: &str, session: SessionId, subscription: &str) -> bool {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = map.get_mut(destination) else {
            return false;
        };
        let before = subscribers.len();
        subscribers.retain(|s| !(s.session == session && &*s.subscription == subscription));
        let removed = subscribers.len() != before;
        if subscribers.is_empty() {
            map.remove(destination);
        }
        removed
    }

    /// Queues `message` for every subscriber of `destination`; returns how many got it.
    ///
    /// A subscriber whose outbox is full is not waited for: its connection is closed as a
    /// slow consumer by its own writer.
    pub fn deliver(&self, destination: &str, message: &EncodedMessage) -> usize {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = map.get(destination) else {
            return 0;
        };
        let mut cache = FrameCache::new(message);
        let mut n_delivered = 0;
        for subscriber in subscribers {
            let outgoing = cache.outgoing(&subscriber.subscription, subscriber.ack_kind());
            if subscriber.outbox.push(outgoing) {
                n_delivered += 1;
            }
        }
        n_delivered
    }

    /// How many subscriptions `destination` has on this node.
    pub fn count(&self, destination: &str) -> usize {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(destination).map_or(0, Vec::len)
    }
}
