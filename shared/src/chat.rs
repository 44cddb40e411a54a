//! The chat layer carried inside STOMP: destination names and JSON payloads.
//!
//! Destinations:
//! - `/topic/room.<room>`: subscribe to a room; a SEND here is also a chat message.
//! - `/app/room.<room>`: send a [`ClientEvent`] (or a `text/plain` body) to a room.
//! - `/topic/<anything else>`: a plain pub/sub topic with no chat semantics.
//!
//! Every body a room delivers is a [`RoomEvent`] as JSON, tagged by `"type"`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most characters a chat message may have.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The room every client joins first.
pub const LOBBY: &str = "lobby";

/// A room's or user's name is 1 to this many characters.
pub const MAX_NAME_CHARS: usize = 32;

/// Milliseconds since the Unix epoch, as stamped by the server.
pub type Millis = i64;

/// What a room broadcasts to its subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    /// Someone said something.
    Message(ChatMessage),
    /// Someone entered the room.
    Joined {
        /// Who.
        user: String,
        /// When, server time.
        at: Millis,
    },
    /// Someone left the room.
    Left {
        /// Who.
        user: String,
        /// When, server time.
        at: Millis,
    },
    /// Who is in the room: the first event of every room subscription.
    Presence {
        /// The members, sorted, the subscriber included.
        users: Vec<String>,
    },
}

/// A chat message as stored and broadcast. The server sets every field but `text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The room it was said in.
    pub room: String,
    /// Who said it: the sender's login, never a value the client chose.
    pub sender: String,
    /// What was said.
    pub text: String,
    /// When the server accepted it.
    pub sent_at: Millis,
}

/// What a client sends to `/app/room.<room>` as `application/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEvent {
    /// Say something.
    Message {
        /// The text, 1 to [`MAX_MESSAGE_CHARS`] characters.
        text: String,
    },
}

/// A STOMP destination, as Confab interprets it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// `/topic/room.<room>`: a chat room's broadcast.
    Room(String),
    /// `/app/room.<room>`: chat input for a room.
    AppRoom(String),
    /// `/topic/<name>`: a generic topic.
    Topic(String),
}

/// Why a destination string is not one Confab serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Neither `/topic/…` nor `/app/room.…`.
    #[error("unknown destination {0:?}: use /topic/<name>, /topic/room.<room> or /app/room.<room>")]
    Unknown(String),
    /// The room part breaks the naming rules.
    #[error("invalid room name {0:?}: {1}")]
    InvalidRoom(String, NameError),
}

impl Destination {
    /// Parses a destination header.
    pub fn parse(text: &str) -> Result<Destination, DestinationError> {
        let room = |name: &str| {
            validate_name(name)
                .map(|()| name.to_owned())
                .map_err(|reason| DestinationError::InvalidRoom(name.to_owned(), reason))
        };
        if let Some(name) = text.strip_prefix("/topic/room.") {
            Ok(Destination::Room(room(name)?))
        } else if let Some(name) = text.strip_prefix("/app/room.") {
            Ok(Destination::AppRoom(room(name)?))
        } else if let Some(name) = text.strip_prefix("/topic/")
            && !name.is_empty()
        {
            Ok(Destination::Topic(name.to_owned()))
        } else {
            Err(DestinationError::Unknown(text.to_owned()))
        }
    }

    /// The broadcast topic of a room.
    pub fn room(name: &str) -> String {
        format!("/topic/room.{name}")
    }

    /// Where clients send a room's chat input.
    pub fn app_room(name: &str) -> String {
        format!("/app/room.{name}")
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Room(name) => write!(f, "/topic/room.{name}"),
            Destination::AppRoom(name) => write!(f, "/app/room.{name}"),
            Destination::Topic(name) => write!(f, "/topic/{name}"),
        }
    }
}

/// Why a room or user name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty, or longer than [`MAX_NAME_CHARS`].
    #[error("names have 1 to 32 characters")]
    Length,
    /// A character outside `a-z`, `0-9`, `_` and `-`.
    #[error("names use only a-z, 0-9, _ and -")]
    Characters,
}

/// Room names: 1 to 32 characters from `[a-z0-9_-]`.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > MAX_NAME_CHARS {
        return Err(NameError::Length);
    }
    if !name.bytes().all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')) {
        return Err(NameError::Characters);
    }
    Ok(())
}

/// Why a chat message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Nothing but white space.
    #[error("message is empty")]
    Empty,
    /// Longer than [`MAX_MESSAGE_CHARS`].
    #[error("message is longer than 4000 characters")]
    TooLong,
}

/// Checks a chat message's text: not blank, at most [`MAX_MESSAGE_CHARS`] characters.
pub fn validate_text(text: &str) -> Result<(), TextError> {
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(TextError::TooLong);
    }
    Ok(())
}
