//! Storage and fan-out behind one interface, so a node runs the same way on the embedded
//! store (one process, SQLite) as on a shared one.
//!
//! The engine owns what outlives a connection: accounts, tokens, rooms and memberships,
//! history with its ids, direct messages. It also decides how a stored message reaches the
//! subscribers: the embedded engine hands it to this node's [`Hub`] right after the commit.
//!
//! Every method that stores and delivers does both in one ordered step, so that
//! subscribers see messages in id order, and a subscription that asks to resume gets
//! exactly the messages it missed.

mod embedded;
mod redis;
mod redis_scripts;
pub mod sqlite;

use shared::api::{DmPage, DmSummary, RoomPage, RoomSummary};
use shared::chat::{ChatMessage, DirectMessage, Notice};
use shared::stomp::Headers;

use crate::broker::{Hub, SessionId, Subscriber};
pub use embedded::Embedded;
pub use redis::{RedisConfig, RedisEngine};

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The thing to create exists already.
    #[error("{0}")]
    Conflict(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The embedded store failed.
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store holds something this version cannot use.
    #[error("{0}")]
    Corrupt(String),
    /// The shared store answered with an error.
    #[error("redis error: {0}")]
    Redis(String),
    /// The store cannot be reached; nothing was stored.
    #[error("the message store is unavailable")]
    Unavailable,
}

/// The outcome of storing a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted<T> {
    /// What is stored: the new message, or the one stored earlier under the same key.
    pub message: T,
    /// The idempotency key was seen before: nothing new was stored or delivered.
    pub duplicate: bool,
}

/// What a subscription receives before live messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The latest messages, at most this many.
    Latest(usize),
    /// Every message after this id, then live ones. At most [`MAX_REPLAY`] are replayed:
    /// the newest ones, so a client sees the jump in ids and pages the rest over HTTP.
    Since(u64),
}

/// The most messages one subscription replays.
pub const MAX_REPLAY: usize = 5_000;

/// The engine a node runs on.
#[derive(Debug, Clone)]
pub enum Engine {
    /// One process: SQLite for storage, this node's hub for fan-out.
    Embedded(Embedded),
    /// Any number of nodes sharing one Redis: storage, presence and fan-out in Redis.
    Redis(RedisEngine),
}

macro_rules! dispatch {
    ($self:ident, $engine:ident => $call:expr) => {
        match $self {
            Engine::Embedded($engine) => $call,
            Engine::Redis($engine) => $call,
        }
    };
}

impl Engine {
    /// This node's local registry of subscribers.
    pub fn hub(&self) -> &Hub {
        dispatch!(self, engine => engine.hub())
    }

    /// Adds a user with an argon2 password hash; `Conflict` if the name is taken.
    pub async fn create_user(&self, name: &str, password_hash: &str) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.create_user(name, password_hash).await)
    }

    /// A user's password hash, if the user exists.
    pub async fn password_hash(&self, name: &str) -> Result<Option<String>, EngineError> {
        dispatch!(self, engine => engine.password_hash(name).await)
    }

    /// Whether a user exists.
    pub async fn user_exists(&self, name: &str) -> Result<bool, EngineError> {
        dispatch!(self, engine => engine.user_exists(name).await)
    }

    /// Records a session token (by its hash) for a user.
    pub async fn store_token(&self, token_hash: &str, name: &str) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.store_token(token_hash, name).await)
    }

    /// The user a token hash belongs to. Cheap: no password hashing, usually no I/O.
    pub async fn token_user(&self, token_hash: &str) -> Result<Option<String>, EngineError> {
        dispatch!(self, engine => engine.token_user(token_hash).await)
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, token_hash: &str) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.revoke_token(token_hash).await)
    }

    /// Whether the engine can take requests now (`GET /readyz`).
    pub async fn ready(&self) -> bool {
        dispatch!(self, engine => engine.ready().await)
    }

    /// Creates a room, its creator its first member; `Conflict` if it exists.
    pub async fn create_room(&self, name: &str, creator: &str) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.create_room(name, creator).await)
    }

    /// How many rooms `user` has created.
    pub async fn rooms_created_by(&self, user: &str) -> Result<u64, EngineError> {
        dispatch!(self, engine => engine.rooms_created_by(user).await)
    }

    /// Whether a room exists.
    pub async fn room_exists(&self, name: &str) -> Result<bool, EngineError> {
        dispatch!(self, engine => engine.room_exists(name).await)
    }

    /// Whether `user` is a member of `room`.
    pub async fn is_member(&self, room: &str, user: &str) -> Result<bool, EngineError> {
        dispatch!(self, engine => engine.is_member(room, user).await)
    }

    /// Makes `user` a member of `room`.
    pub async fn join_room(&self, room: &str, user: &str) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.join_room(room, user).await)
    }

    /// Ends `user`'s membership of `room`.
    pub async fn leave_room(&self, room: &str, user: &str) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.leave_room(room, user).await)
    }

    /// Every room, with member counts and `user`'s unread counts.
    pub async fn rooms_for(&self, user: &str) -> Result<Vec<RoomSummary>, EngineError> {
        dispatch!(self, engine => engine.rooms_for(user).await)
    }

    /// Moves `user`'s read marker in `room` forward.
    pub async fn mark_room_read(
        &self,
        room: &str,
        user: &str,
        seq: u64,
    ) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.mark_room_read(room, user, seq).await)
    }

    /// A page of a room's history before `before`.
    pub async fn room_page(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        dispatch!(self, engine => engine.room_page(room, before, limit).await)
    }

    /// A page of a room's history after `after`, oldest first; `more` if newer follow.
    pub async fn room_page_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        dispatch!(self, engine => engine.room_page_after(room, after, limit).await)
    }

    /// A page of `user`'s whole DM inbox after inbox id `after`; `more` if newer follow.
    pub async fn inbox_page_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<DmPage, EngineError> {
        dispatch!(self, engine => engine.inbox_page_after(user, after, limit).await)
    }

    /// `user`'s conversations.
    pub async fn dm_summaries(&self, user: &str) -> Result<Vec<DmSummary>, EngineError> {
        dispatch!(self, engine => engine.dm_summaries(user).await)
    }

    /// A page of the conversation between `user` and `peer`.
    pub async fn dm_page(
        &self,
        user: &str,
        peer: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<DmPage, EngineError> {
        dispatch!(self, engine => engine.dm_page(user, peer, before, limit).await)
    }

    /// Moves `user`'s read marker for the conversation with `peer` forward.
    pub async fn mark_dm_read(&self, user: &str, peer: &str, seq: u64) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.mark_dm_read(user, peer, seq).await)
    }

    /// Stores a room message, then delivers it to the room's subscribers, in id order.
    pub async fn post_room(
        &self,
        room: &str,
        sender: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<Posted<ChatMessage>, EngineError> {
        dispatch!(self, engine => engine.post_room(room, sender, text, key).await)
    }

    /// Stores a direct message in both inboxes, then delivers each copy to its owner's
    /// sessions. `NotFound` if the recipient does not exist. Returns the sender's copy.
    pub async fn post_dm(
        &self,
        from: &str,
        to: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<Posted<DirectMessage>, EngineError> {
        dispatch!(self, engine => engine.post_dm(from, to, text, key).await)
    }

    /// Subscribes to a room: presence snapshot, replay, then live messages, with nothing
    /// missed or doubled in between. Joins the room if `user` was not a member.
    pub async fn attach_room(
        &self,
        room: &str,
        user: &str,
        subscriber: Subscriber,
        replay: Replay,
    ) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.attach_room(room, user, subscriber, replay).await)
    }

    /// Ends a room subscription; the room hears `left` if it was the user's last.
    pub fn detach_room(&self, room: &str, user: &str, session: SessionId, subscription: &str) {
        dispatch!(self, engine => engine.detach_room(room, user, session, subscription))
    }

    /// Subscribes to `user`'s direct messages: replay, then live ones.
    pub async fn attach_inbox(
        &self,
        user: &str,
        subscriber: Subscriber,
        replay: Replay,
    ) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.attach_inbox(user, subscriber, replay).await)
    }

    /// Subscribes to an unstored key: a generic topic, or a user's notices.
    pub async fn attach_key(&self, key: &str, subscriber: Subscriber) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.attach_key(key, subscriber).await)
    }

    /// Ends a subscription made with [`Engine::attach_key`] or [`Engine::attach_inbox`].
    pub fn detach_key(&self, key: &str, session: SessionId, subscription: &str) {
        dispatch!(self, engine => engine.detach_key(key, session, subscription))
    }

    /// Delivers a message to every subscriber of a generic topic, on every node.
    pub async fn publish_topic(
        &self,
        destination: &str,
        headers: &Headers,
        body: &[u8],
    ) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.publish_topic(destination, headers, body).await)
    }

    /// Tells a room, on every node, that `user` is typing.
    pub async fn typing(&self, room: &str, user: &str) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.typing(room, user).await)
    }

    /// Sends a notice to every session of `user`, on every node.
    pub async fn notify(&self, user: &str, notice: &Notice) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.notify(user, notice).await)
    }

    /// Counts a session of `user` as open.
    pub async fn session_opened(&self, user: &str) -> Result<(), EngineError> {
        dispatch!(self, engine => engine.session_opened(user).await)
    }

    /// Counts a session of `user` as closed.
    pub fn session_closed(&self, user: &str) {
        dispatch!(self, engine => engine.session_closed(user))
    }

    /// Whether `user` has an open session on any node.
    pub async fn is_online(&self, user: &str) -> Result<bool, EngineError> {
        dispatch!(self, engine => engine.is_online(user).await)
    }
}
