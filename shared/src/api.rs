//! The JSON bodies of the HTTP API (`/api/...`), shared by the server and the page.
//!
//! Every error response is an [`ApiError`] with a 4xx or 5xx status.

use serde::{Deserialize, Serialize};

use crate::chat::{ChatMessage, DirectMessage};

/// `POST /api/register` and `POST /api/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// 3 to 32 characters from `a-z`, `0-9`, `_`, `-`.
    pub username: String,
    /// At least [`MIN_PASSWORD_CHARS`] characters.
    pub password: String,
}

/// The shortest password accepted at registration.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted (argon2 hashes any length, but work should be bounded).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A signed-in session: the STOMP `passcode` and the HTTP bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionToken {
    /// The account's name: the STOMP `login`.
    pub username: String,
    /// The secret: the STOMP `passcode`, and `Authorization: Bearer <token>` over HTTP.
    pub token: String,
}

/// Every HTTP error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for people.
    pub error: String,
}

/// `POST /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRoom {
    /// 1 to 32 characters from `a-z`, `0-9`, `_`, `-`.
    pub name: String,
}

/// One room in `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room's name.
    pub name: String,
    /// How many users have joined it.
    pub members: u64,
    /// Whether the asking user has joined it.
    pub joined: bool,
    /// The id of its latest message; 0 when it has none.
    pub last_seq: u64,
    /// Messages after the asking user's read marker (0 unless joined).
    pub unread: u64,
}

/// `POST /api/rooms/{room}/read` and `POST /api/dms/{peer}/read`: everything up to `seq`
/// has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMarker {
    /// The last seen message id.
    pub seq: u64,
}

/// `GET /api/rooms/{room}/messages?before=&limit=`: one page of history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPage {
    /// The messages.
    pub messages: Vec<ChatMessage>,
    /// Whether older messages exist before this page.
    pub more: bool,
}

/// One conversation in `GET /api/dms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmSummary {
    /// The other user.
    pub peer: String,
    /// The asking user's inbox id of the latest message with `peer`.
    pub last_seq: u64,
    /// Messages from `peer` after the read marker.
    pub unread: u64,
}

/// `GET /api/dms/{peer}/messages?before=&limit=`: one page of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmPage {
    /// The messages, with the asking user's inbox ids.
    pub messages: Vec<DirectMessage>,
    /// Whether older messages exist before this page.
    pub more: bool,
}

/// The most messages one history page returns.
pub const MAX_PAGE: usize = 200;
/// Messages a room subscription replays when it gives no `since`.
pub const DEFAULT_REPLAY: usize = 50;

/// `POST /api/rooms/{room}/messages` and `POST /api/dms/{peer}/messages`: a message from a
/// script or bot. An `Idempotency-Key` header makes a retry safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// What to say.
    pub text: String,
}

/// `POST /api/rooms/{room}/webhooks`: a new incoming webhook, posting as the bot `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhook {
    /// The bot it posts as; a new account name.
    pub name: String,
}

/// An incoming webhook of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Its public id (for deleting it).
    pub id: String,
    /// The room it posts into.
    pub room: String,
    /// The bot it posts as.
    pub name: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: crate::chat::Millis,
    /// The secret URL path (`/hooks/...`): only in the answer that creates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
