//! What is live only: events that nodes hand each other, who is present in which room,
//! who is online, and which nodes are alive. Nothing durable passes through here alone:
//! every numbered event is in the store before it is published, so losing the bus loses
//! presence and live delivery until it is back, never a stored message.
//!
//! Two implementations: [`local::LocalBus`] for one node (there is nobody to tell), and
//! [`redis::RedisBus`] for any number of nodes on one Redis server.
//!
//! A node publishes to the *other* nodes; its own subscribers are served by the engine
//! directly. A node receives a channel only while it listens to it, which the engine does
//! only while it has a local subscriber there.

pub mod local;
pub mod redis;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shared::chat::{ChatMessage, DirectMessage, Millis, Notice};
use tokio::sync::mpsc;

use crate::delivery::EncodedMessage;

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// A room: its messages (numbered), presence and typing.
    Room(String),
    /// A user: direct messages (numbered by inbox id) and notices.
    User(String),
    /// A generic topic, the room directory (`rooms`) included.
    Topic(String),
    /// Account events every node hears (a revoked token).
    Control,
}

/// What passes between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusEvent {
    /// A stored room message (on [`Channel::Room`]).
    Message(ChatMessage),
    /// A stored direct message, as `owner`'s inbox holds it (on [`Channel::User`]).
    Dm {
        /// Whose inbox copy.
        owner: String,
        /// The copy.
        message: DirectMessage,
    },
    /// Someone entered a room.
    Joined {
        /// Who.
        user: String,
        /// When.
        at: Millis,
    },
    /// Someone left a room.
    Left {
        /// Who.
        user: String,
        /// When.
        at: Millis,
    },
    /// Someone is typing in a room.
    Typing {
        /// Who.
        user: String,
    },
    /// A notice for a user.
    Notice(Notice),
    /// A session token was revoked: its sessions end, on every node.
    Revoked {
        /// The token's hash.
        token_hash: String,
    },
    /// A publication on a generic topic, encoded once by the publishing node.
    #[serde(skip)]
    Topic(EncodedMessage),
}

/// What a node receives from the bus.
// Nearly everything received is an event: boxing it would add an allocation to each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Incoming {
    /// An event another node published.
    Event(Channel, BusEvent),
    /// The bus connection was lost and is back: events may have been missed.
    Reconnected,
}

/// Why a bus operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The bus cannot be reached now.
    #[error("the message bus is unavailable")]
    Unavailable,
    /// Anything else.
    #[error("bus error: {0}")]
    Failed(String),
}

/// Who is in a room, after someone entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Everyone present, sorted, the one who entered included.
    pub users: Vec<String>,
    /// This was the user's first subscription there, on any node: the room hears `joined`.
    pub first: bool,
}

/// The live side of a deployment.
#[async_trait]
pub trait Bus: Send + Sync + fmt::Debug + 'static {
    /// Sends an event to the other nodes that listen to `channel`.
    async fn publish(&self, channel: &Channel, event: &BusEvent) -> Result<(), BusError>;

    /// Starts receiving `channel` on this node. Calls are counted: as many
    /// [`Bus::unlisten`] end it.
    async fn listen(&self, channel: &Channel) -> Result<(), BusError>;

    /// Counts one [`Bus::listen`] of `channel` less.
    fn unlisten(&self, channel: &Channel);

    /// `user` has one more subscription in `room` on this node.
    async fn enter(&self, room: &str, user: &str) -> Result<Presence, BusError>;

    /// `user` has one subscription less in `room` on this node; `true` if it was their
    /// last anywhere, and the room hears `left`.
    async fn leave(&self, room: &str, user: &str) -> Result<bool, BusError>;

    /// `user` opened a session on this node.
    async fn session_opened(&self, user: &str) -> Result<(), BusError>;

    /// `user` closed a session on this node.
    fn session_closed(&self, user: &str);

    /// Whether `user` has a session on any node.
    async fn is_online(&self, user: &str) -> Result<bool, BusError>;

    /// Whether the bus is connected and listening now.
    fn ready(&self) -> bool;
}

/// Where a bus delivers what it receives.
pub type IncomingSender = mpsc::UnboundedSender<Incoming>;
