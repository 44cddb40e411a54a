//! The node's hub: who on this node is subscribed to what, and the fan-out that hands one
//! encoded message to every local subscriber.
//!
//! Numbered messages (a room's or an inbox's) go only to subscriptions that are live and
//! have not had that id yet; unnumbered events (presence, typing, notices, topics) go to
//! every subscription that has been greeted. Nothing here waits: a full outbox marks its
//! connection as a slow consumer and is skipped.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::message::{EncodedMessage, FrameCache};
use super::{SessionId, Subscriber};

/// What a subscription is to, on this node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HubKey {
    /// A room's events (`/topic/room.<room>`).
    Room(String),
    /// A user's direct messages (`/user/queue/dm`, resolved to its owner).
    Inbox(String),
    /// A user's notices (`/user/queue/notices`, resolved to its owner).
    Notices(String),
    /// A generic topic (`/topic/<name>`), `rooms` included.
    Topic(String),
}

/// The node's registry; a cheap handle.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    subscriptions: std::sync::Arc<RwLock<HashMap<HubKey, Vec<Subscriber>>>>,
}

impl Hub {
    /// Adds a subscriber under `key`.
    pub fn subscribe(&self, key: HubKey, subscriber: Subscriber) {
        let mut map = self.subscriptions.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(key).or_default().push(subscriber);
    }

    /// Removes a session's subscription; returns it if it existed.
    pub fn unsubscribe(
        &self,
        key: &HubKey,
        session: SessionId,
        subscription: &str,
    ) -> Option<Subscriber> {
        let mut map = self.subscriptions.write().unwrap_or_else(PoisonError::into_inner);
        let subscribers = map.get_mut(key)?;
        let index = subscribers
            .iter()
            .position(|s| s.session == session && &*s.subscription == subscription)?;
        let removed = subscribers.swap_remove(index);
        if subscribers.is_empty() {
            map.remove(key);
        }
        Some(removed)
    }

    /// Removes every subscription of `user` under `key` (someone kicked or banned from a
    /// room), ending their positions; returns them.
    pub fn remove_user(&self, key: &HubKey, user: &str) -> Vec<Subscriber> {
        let mut map = self.subscriptions.write().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = map.get_mut(key) else { return Vec::new() };
        let (removed, kept): (Vec<_>, Vec<_>) =
            std::mem::take(subscribers).into_iter().partition(|s| &*s.login == user);
        *subscribers = kept;
        if subscribers.is_empty() {
            map.remove(key);
        }
        for subscriber in &removed {
            subscriber.position.end();
        }
        removed
    }

    /// Queues a numbered message (`seq` in its stream) for every live subscriber of `key`
    /// that does not have it yet; returns how many got it.
    pub fn deliver_numbered(&self, key: &HubKey, message: &EncodedMessage, seq: u64) -> usize {
        self.fan_out(key, message, |subscriber| {
            let position = &subscriber.position;
            if !position.is_live() || seq <= position.cursor() {
                return false;
            }
            position.advance(seq);
            true
        })
    }

    /// Queues an unnumbered event for every greeted subscriber of `key`.
    pub fn deliver(&self, key: &HubKey, message: &EncodedMessage) -> usize {
        self.fan_out(key, message, |subscriber| subscriber.position.is_greeted())
    }

    /// Like [`Hub::deliver`], but skips the subscriptions of `user`: a user does not hear
    /// their own `joined` and `left`.
    pub fn deliver_to_others(&self, key: &HubKey, message: &EncodedMessage, user: &str) -> usize {
        self.fan_out(key, message, |subscriber| {
            &*subscriber.login != user && subscriber.position.is_greeted()
        })
    }

    /// Whether `key` has a subscriber on this node.
    pub fn has_subscribers(&self, key: &HubKey) -> bool {
        let map = self.subscriptions.read().unwrap_or_else(PoisonError::into_inner);
        map.contains_key(key)
    }

    fn fan_out(
        &self,
        key: &HubKey,
        message: &EncodedMessage,
        mut wants: impl FnMut(&Subscriber) -> bool,
    ) -> usize {
        let map = self.subscriptions.read().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = map.get(key) else { return 0 };
        let mut cache = FrameCache::new(message);
        let mut n_delivered = 0;
        for subscriber in subscribers {
            if !wants(subscriber) {
                continue;
            }
            let outgoing = cache.outgoing(&subscriber.subscription, subscriber.ack_kind());
            if subscriber.outbox.push(outgoing) {
                n_delivered += 1;
            }
        }
        crate::metrics::metrics().deliveries.inc_by(n_delivered as u64);
        n_delivered
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shared::stomp::{AckMode, Headers};

    use super::*;
    use crate::delivery::{AckLedger, Outbox, OutboxReceiver, Position};

    fn subscriber(position: Arc<Position>) -> (Subscriber, OutboxReceiver) {
        let (outbox, receiver) = Outbox::with_capacity(16, 1 << 20);
        let subscriber = Subscriber {
            session: 1,
            login: "ann".into(),
            subscription: "s".into(),
            ack: AckMode::Auto,
            outbox,
            acks: AckLedger::new(16),
            position,
        };
        (subscriber, receiver)
    }

    fn message() -> EncodedMessage {
        EncodedMessage::new("/topic/room.lobby", "m", &Headers::new(), b"x")
    }

    #[test]
    fn numbered_messages_skip_replaying_subscribers_and_what_they_have() {
        let hub = Hub::default();
        let key = HubKey::Room("lobby".into());
        let replaying = Position::replaying_after(5);
        let (first, mut first_rx) = subscriber(replaying.clone());
        let (second, mut second_rx) = subscriber(Position::live());
        hub.subscribe(key.clone(), first);
        hub.subscribe(key.clone(), second);
        assert_eq!(hub.deliver_numbered(&key, &message(), 6), 1, "the replaying one waits");
        assert!(first_rx.try_recv().is_none());
        assert!(second_rx.try_recv().is_some());
        replaying.advance(7);
        replaying.go_live();
        assert_eq!(hub.deliver_numbered(&key, &message(), 7), 1, "7 came with the replay");
        assert_eq!(hub.deliver_numbered(&key, &message(), 8), 2);
        assert_eq!(replaying.cursor(), 8);
    }

    #[test]
    fn unnumbered_events_wait_for_the_greeting() {
        let hub = Hub::default();
        let key = HubKey::Room("lobby".into());
        let position = Position::replaying_after(0);
        let (first, _rx) = subscriber(position.clone());
        hub.subscribe(key.clone(), first);
        assert_eq!(hub.deliver(&key, &message()), 0);
        position.greet();
        assert_eq!(hub.deliver(&key, &message()), 1);
        assert_eq!(hub.deliver_to_others(&key, &message(), "ann"), 0);
        assert!(hub.unsubscribe(&key, 1, "s").is_some());
        assert!(!hub.has_subscribers(&key));
    }

    #[test]
    fn a_removed_user_hears_nothing_more() {
        let hub = Hub::default();
        let key = HubKey::Room("lobby".into());
        let (ann, mut ann_rx) = subscriber(Position::live());
        hub.subscribe(key.clone(), ann);
        assert_eq!(hub.remove_user(&key, "bob").len(), 0);
        assert_eq!(hub.remove_user(&key, "ann").len(), 1);
        assert_eq!(hub.deliver_numbered(&key, &message(), 1), 0);
        assert!(ann_rx.try_recv().is_none());
        assert!(!hub.has_subscribers(&key));
    }
}
