//! The node's hub: who on this node is subscribed to what, who is present in which room,
//! and the fan-out that hands one encoded message to every local subscriber.
//!
//! Keys are internal destination names: `/topic/...` as clients write them, and
//! `/user/<name>/queue/dm` for a user's direct messages (clients see `/user/queue/dm`).
//!
//! Lock order, where two are held: `presence` before `subscriptions`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use shared::chat::RoomEvent;
use shared::stomp::AckMode;

use super::message::{EncodedMessage, FrameCache, notice_message, room_event_message};
use super::outbox::{Outbox, Outgoing};

/// Identifies a connection within this node.
pub type SessionId = u64;

/// One subscription of one session.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The session that owns it.
    pub session: SessionId,
    /// The session's user.
    pub login: Arc<str>,
    /// Its `id` header.
    pub subscription: Arc<str>,
    /// Its `ack` mode.
    pub ack: AckMode,
    /// Where its MESSAGE frames go.
    pub outbox: Outbox,
    /// Messages with a `seq` at or below this were replayed already; live copies are
    /// skipped, so a resumed subscription gets each message exactly once.
    pub replayed_up_to: u64,
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

/// The internal key of a user's direct-message queue.
pub fn inbox_key(user: &str) -> String {
    format!("/user/{user}/queue/dm")
}

/// The internal key of a user's notice queue.
pub fn notices_key(user: &str) -> String {
    format!("/user/{user}/queue/notices")
}

/// The node's registry; a cheap handle.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug, Default)]
struct HubInner {
    subscriptions: RwLock<HashMap<String, Vec<Subscriber>>>,
    /// Room → user → how many of the user's subscriptions on this node are in the room.
    presence: Mutex<HashMap<String, HashMap<String, usize>>>,
    /// User → open sessions on this node.
    online: Mutex<HashMap<String, usize>>,
}

impl Hub {
    /// Adds a subscriber under `key`.
    pub fn subscribe(&self, key: &str, subscriber: Subscriber) {
        let mut map = self.inner.subscriptions.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(key.to_owned()).or_default().push(subscriber);
    }

    /// Removes a session's subscription; returns whether it existed.
    pub fn unsubscribe(&self, key: &str, session: SessionId, subscription: &str) -> bool {
        let mut map = self.inner.subscriptions.write().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = map.get_mut(key) else { return false };
        let before = subscribers.len();
        subscribers.retain(|s| !(s.session == session && &*s.subscription == subscription));
        let removed = subscribers.len() != before;
        if subscribers.is_empty() {
            map.remove(key);
        }
        removed
    }

    /// Queues `message` for every subscriber of `key`; returns how many got it.
    ///
    /// A subscriber that already has `seq` from its replay is skipped. A subscriber whose
    /// outbox is full is not waited for: its connection is closed as a slow consumer.
    pub fn deliver(&self, key: &str, message: &EncodedMessage, seq: Option<u64>) -> usize {
        let map = self.inner.subscriptions.read().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = map.get(key) else { return 0 };
        let mut cache = FrameCache::new(message);
        let mut n_delivered = 0;
        for subscriber in subscribers {
            if seq.is_some_and(|seq| seq <= subscriber.replayed_up_to) {
                continue;
            }
            let outgoing = cache.outgoing(&subscriber.subscription, subscriber.ack_kind());
            if subscriber.outbox.push(outgoing) {
                n_delivered += 1;
            }
        }
        n_delivered
    }

    /// Like [`Hub::deliver`], but skips the subscriptions of `user`: a user does not hear
    /// their own `joined` and `left`.
    pub fn deliver_to_others(&self, key: &str, message: &EncodedMessage, user: &str) -> usize {
        let map = self.inner.subscriptions.read().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = map.get(key) else { return 0 };
        let mut cache = FrameCache::new(message);
        let mut n_delivered = 0;
        for subscriber in subscribers.iter().filter(|subscriber| &*subscriber.login != user) {
            if subscriber
                .outbox
                .push(cache.outgoing(&subscriber.subscription, subscriber.ack_kind()))
            {
                n_delivered += 1;
            }
        }
        n_delivered
    }

    /// How many subscriptions `key` has on this node.
    pub fn count(&self, key: &str) -> usize {
        let map = self.inner.subscriptions.read().unwrap_or_else(PoisonError::into_inner);
        map.get(key).map_or(0, Vec::len)
    }

    /// Registers a room subscription in one step that no presence change can split: the
    /// subscriber gets the presence snapshot, then `history` (already encoded, in order),
    /// then live messages after `replayed_up_to`; when this is the user's first
    /// subscription there, the room's others get `joined`.
    pub fn attach_room(
        &self,
        room: &str,
        user: &str,
        subscriber: Subscriber,
        history: Vec<Outgoing>,
        joined: &RoomEvent,
    ) {
        let key = shared::chat::Destination::room(room);
        let mut presence = self.presence();
        let members = presence.entry(room.to_owned()).or_default();
        let count = members.entry(user.to_owned()).or_default();
        *count += 1;
        let first = *count == 1;
        let mut users: Vec<String> = members.keys().cloned().collect();
        users.sort();
        let snapshot = room_event_message(&key, &RoomEvent::Presence { users });
        let mut frames = vec![
            FrameCache::new(&snapshot).outgoing(&subscriber.subscription, subscriber.ack_kind()),
        ];
        frames.extend(history);
        subscriber.outbox.push(Outgoing::Batch(frames));
        if first {
            self.deliver(&key, &room_event_message(&key, joined), None);
        }
        self.subscribe(&key, subscriber);
    }

    /// Ends a room subscription. When it was the user's last there, the others get the
    /// event `left` makes. Returns whether the subscription existed.
    pub fn detach_room(
        &self,
        room: &str,
        user: &str,
        session: SessionId,
        subscription: &str,
        left: impl FnOnce() -> RoomEvent,
    ) -> bool {
        let key = shared::chat::Destination::room(room);
        let mut presence = self.presence();
        if !self.unsubscribe(&key, session, subscription) {
            return false;
        }
        let Some(members) = presence.get_mut(room) else { return true };
        let Some(count) = members.get_mut(user) else { return true };
        *count -= 1;
        if *count == 0 {
            members.remove(user);
            if members.is_empty() {
                presence.remove(room);
            }
            self.deliver(&key, &room_event_message(&key, &left()), None);
        }
        true
    }

    /// Who is in a room, sorted.
    pub fn room_members(&self, room: &str) -> Vec<String> {
        let presence = self.presence();
        let mut members: Vec<String> =
            presence.get(room).map(|members| members.keys().cloned().collect()).unwrap_or_default();
        members.sort();
        members
    }

    /// Counts a new session of `user`.
    pub fn session_opened(&self, user: &str) {
        *self.online().entry(user.to_owned()).or_default() += 1;
    }

    /// Uncounts a session of `user`.
    pub fn session_closed(&self, user: &str) {
        let mut online = self.online();
        if let Some(count) = online.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                online.remove(user);
            }
        }
    }

    /// Whether `user` has an open session on this node.
    pub fn is_online(&self, user: &str) -> bool {
        self.online().contains_key(user)
    }

    /// Sends a notice to one user's notice queue, on every session of this node.
    pub fn notify(&self, user: &str, notice: &shared::chat::Notice) {
        self.deliver(&notices_key(user), &notice_message(notice), None);
    }

    fn presence(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, usize>>> {
        self.inner.presence.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn online(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.inner.online.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
