//! The STOMP broker core: sessions, subscriptions, fan-out, and chat rooms.
//!
//! Nothing here knows about axum or sockets. A [`Session`] takes decoded frames in and puts
//! encoded frames into its [`Outbox`]; `ws.rs` moves bytes between the socket and those two.
//!
//! Lock order, where two are held: `presence` before `topics`.

mod acks;
mod message;
mod outbox;
mod session;
mod topics;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shared::chat::{ChatMessage, Destination, Millis, RoomEvent};
use shared::stomp::{Headers, Limits};

pub use acks::{AckLedger, TooManyUnacked};
pub use message::{EncodedMessage, FrameCache, RESERVED_HEADERS};
pub use outbox::{AckRef, Outbox, OutboxReceiver, Outgoing, OverflowSignal};
pub use session::{Flow, Negotiated, Session};
pub use topics::{SessionId, Subscriber, Topics};

/// Tunables of the broker; the CLI fills them from its options.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The heart-beat interval the server offers and asks for, in ms; 0 disables.
    pub heart_beat_ms: u32,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
    /// Frames an outbox holds before its consumer counts as too slow.
    pub outbox_frames: usize,
    /// Deliveries a session may leave unacknowledged.
    pub max_unacked: usize,
    /// Decoder limits for client frames.
    pub limits: Limits,
    /// Subscriptions per session.
    pub max_subscriptions: usize,
    /// Open transactions per session.
    pub max_transactions: usize,
    /// Frames held by one transaction.
    pub max_transaction_frames: usize,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            heart_beat_ms: 10_000,
            connect_timeout: Duration::from_secs(10),
            outbox_frames: 1024,
            max_unacked: 4096,
            limits: Limits::default(),
            max_subscriptions: 256,
            max_transactions: 16,
            max_transaction_frames: 1024,
        }
    }
}

/// A cheap handle on the broker shared by every session of this node.
#[derive(Debug, Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: BrokerConfig,
    topics: Topics,
    /// Room → user → how many of the user's subscriptions are in the room.
    presence: Mutex<HashMap<String, HashMap<String, usize>>>,
    node_id: String,
    next_session: AtomicU64,
    next_message: AtomicU64,
}

impl Broker {
    /// A broker with no sessions.
    pub fn new(config: BrokerConfig) -> Broker {
        let node_id = format!("{:08x}", RandomState::new().hash_one(std::process::id()) as u32);
        Broker {
            inner: Arc::new(Inner {
                config,
                topics: Topics::default(),
                presence: Mutex::default(),
                node_id,
                next_session: AtomicU64::new(1),
                next_message: AtomicU64::new(1),
            }),
        }
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// A new session with its outbox receiver and ack ledger, for the connection's writer.
    pub fn open_session(&self) -> (Session, OutboxReceiver, AckLedger) {
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        Session::new(self.clone(), id)
    }

    /// A message id unique across nodes and restarts.
    fn next_message_id(&self) -> String {
        let n = self.inner.next_message.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.inner.node_id)
    }

    /// The session id as shown in CONNECTED.
    fn session_name(&self, id: SessionId) -> String {
        format!("{}-{id}", self.inner.node_id)
    }

    /// Publishes to a generic topic; returns how many subscriptions got the message.
    pub fn publish(&self, destination: &str, headers: &Headers, body: &[u8]) -> usize {
        let message = EncodedMessage::new(destination, &self.next_message_id(), headers, body);
        self.inner.topics.deliver(destination, &message)
    }

    /// Subscribes to a generic topic.
    pub fn subscribe_topic(&self, destination: &str, subscriber: Subscriber) {
        self.inner.topics.subscribe(destination, subscriber);
    }

    /// Ends a generic topic subscription.
    pub fn unsubscribe_topic(&self, destination: &str, session: SessionId, subscription: &str) {
        self.inner.topics.unsubscribe(destination, session, subscription);
    }

    /// Subscribes to a room. The subscriber first receives `Presence`, the room's members;
    /// when this is the user's first subscription there, the others receive `Joined`.
    pub fn join_room(&self, room: &str, user: &str, subscriber: Subscriber) {
        let mut presence = self.presence();
        let members = presence.entry(room.to_owned()).or_default();
        let count = members.entry(user.to_owned()).or_default();
        *count += 1;
        let first = *count == 1;
        let mut users: Vec<String> = members.keys().cloned().collect();
        users.sort();
        let destination = Destination::room(room);
        let snapshot = self.room_message(&destination, &RoomEvent::Presence { users });
        let ack = subscriber.ack_kind();
        subscriber.outbox.push(FrameCache::new(&snapshot).outgoing(&subscriber.subscription, ack));
        if first {
            self.broadcast(room, &RoomEvent::Joined { user: user.to_owned(), at: now_millis() });
        }
        self.inner.topics.subscribe(&destination, subscriber);
    }

    /// Ends a room subscription. When it was the user's last there, the others receive
    /// `Left`.
    pub fn leave_room(&self, room: &str, user: &str, session: SessionId, subscription: &str) {
        let mut presence = self.presence();
        if !self.inner.topics.unsubscribe(&Destination::room(room), session, subscription) {
            return;
        }
        let Some(members) = presence.get_mut(room) else {
            return;
        };
        let Some(count) = members.get_mut(user) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            members.remove(user);
            if members.is_empty() {
                presence.remove(room);
            }
            self.broadcast(room, &RoomEvent::Left { user: user.to_owned(), at: now_millis() });
        }
    }

    /// Who is in a room, sorted.
    pub fn room_members(&self, room: &str) -> Vec<String> {
        let presence = self.presence();
        let mut members: Vec<String> =
            presence.get(room).map(|members| members.keys().cloned().collect()).unwrap_or_default();
        members.sort();
        members
    }

    /// Stamps and broadcasts a chat message; the text has been validated.
    pub fn say(&self, room: &str, sender: &str, text: String) -> ChatMessage {
        let message = ChatMessage {
            room: room.to_owned(),
            sender: sender.to_owned(),
            text,
            sent_at: now_millis(),
        };
        self.broadcast(room, &RoomEvent::Message(message.clone()));
        message
    }

    fn broadcast(&self, room: &str, event: &RoomEvent) {
        let destination = Destination::room(room);
        let message = self.room_message(&destination, event);
        self.inner.topics.deliver(&destination, &message);
    }

    fn room_message(&self, destination: &str, event: &RoomEvent) -> EncodedMessage {
        let body = serde_json::to_vec(event).expect("room events always serialize");
        let headers: Headers = [("content-type", "application/json")].into_iter().collect();
        EncodedMessage::new(destination, &self.next_message_id(), &headers, &body)
    }

    fn presence(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, usize>>> {
        self.inner.presence.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The server clock in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}
