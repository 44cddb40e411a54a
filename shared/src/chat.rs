//! The chat layer carried inside STOMP: destination names and JSON payloads.
//!
//! Destinations:
//! - `/topic/room.<room>`: subscribe to a room; a SEND here is also a chat message.
//! - `/app/room.<room>`: send a [`ClientEvent`] (or a `text/plain` body) to a room.
//! - `/user/queue/dm`: subscribe to your direct messages, on every tab.
//! - `/app/dm.<user>`: send a direct message.
//! - `/user/queue/notices`: subscribe to [`Notice`]s meant for you alone.
//! - `/topic/rooms`: subscribe to [`DirectoryEvent`]s: rooms being created. Written by the
//!   server only.
//! - `/topic/<anything else>`: a plain pub/sub topic with no chat semantics.
//!
//! Every body a room delivers is a [`RoomEvent`] as JSON, tagged by `"type"`; the DM queue
//! delivers [`DirectMessage`]s.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::room::{Role, RoomChange};

/// The most characters a chat message may have.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The most files one message may carry.
pub const MAX_FILES_PER_MESSAGE: usize = 10;

/// The room every client joins first.
pub const LOBBY: &str = "lobby";

/// A room's or user's name is at most this many characters.
pub const MAX_NAME_CHARS: usize = 32;

/// A user name has at least this many characters.
pub const MIN_USERNAME_CHARS: usize = 3;

/// The STOMP header that carries a message's id within its room or inbox.
pub const SEQ_HEADER: &str = "seq";

/// The STOMP header on SUBSCRIBE that asks for the messages after this id, then live ones.
pub const SINCE_HEADER: &str = "since";

/// The STOMP header on SEND that makes a resend harmless: a message with a key already seen
/// from the same sender in the same room or conversation is stored and delivered once.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Milliseconds since the Unix epoch, as stamped by the server.
pub type Millis = i64;

/// What a room broadcasts to its subscribers.
// Nearly every event is a message: boxing it would add an allocation to each for nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Someone is typing; not stored. Show it for a few seconds.
    Typing {
        /// Who.
        user: String,
    },
}

/// A chat message as stored and broadcast. The server sets every field but `text`.
///
/// A change to the room (a ban, a new topic, a deleted message) is an entry of the same
/// stream, numbered like a message, with `change` set and `text` the line that describes
/// it, so that clients that do not know changes still show something true.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Its id in the room: strictly increasing from 1, no gaps.
    pub seq: u64,
    /// The room it was said in.
    pub room: String,
    /// Who said it: the sender's login, never a value the client chose.
    pub sender: String,
    /// What was said.
    pub text: String,
    /// When the server accepted it.
    pub sent_at: Millis,
    /// The sender is a bot (an integration, a webhook), not a person.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bot: bool,
    /// What this entry changed in the room, when it is not something said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<RoomChange>,
    /// The message was deleted: `text` is empty, and the store keeps nothing of it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// The message this one answers, as it reads now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Quote>,
    /// The room's members it mentions with `@name`, as the server found them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// When its author last changed its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Millis>,
    /// Reactions, in the order they were first given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// The formatting of what this entry shows (its `text`, or an edit's new text), as
    /// the server parsed it; absent when that text has no Markdown, and then
    /// [`crate::markdown::plain_blocks`] gives its tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rich: Option<Vec<crate::markdown::Block>>,
    /// The files sent with it, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<Attachment>,
}

/// A file sent with a message, as readers get it. Its bytes are at `/api/files/{id}`, and
/// an image's thumbnail at `/api/files/{id}/thumb`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Its id: 32 lowercase hex digits.
    pub id: String,
    /// The name it was uploaded with (no path, no control characters).
    pub name: String,
    /// Its type, as the server found it from its bytes (never the uploader's word).
    pub mime: String,
    /// Its size in bytes.
    pub size: u64,
    /// An image the page can show (PNG, JPEG, GIF, WebP): its size in pixels, upright; it
    /// has a thumbnail. Absent for anything else, which is offered as a download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<(u32, u32)>,
}

/// The message a reply answers: enough to show a snippet without loading it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Its id in the room.
    pub seq: u64,
    /// Who said it.
    pub sender: String,
    /// Its text's first [`QUOTE_CHARS`] characters (empty once deleted).
    pub text: String,
    /// It was deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

/// How much of an answered message a reply carries.
pub const QUOTE_CHARS: usize = 140;

/// One emoji given to a message, and by whom.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The emoji.
    pub emoji: String,
    /// Who gave it, in the order they did.
    pub users: Vec<String>,
}

/// Different emoji on one message, at most.
pub const MAX_REACTIONS: usize = 20;

/// Applies a reaction change to a message's reactions: idempotent, so that a change
/// applied twice (a replay, a history page and a live event) leaves the same result.
pub fn react(reactions: &mut Vec<Reaction>, user: &str, emoji: &str, on: bool) {
    let position = reactions.iter().position(|reaction| reaction.emoji == emoji);
    match (position, on) {
        (Some(index), true) => {
            let users = &mut reactions[index].users;
            if !users.iter().any(|name| name == user) {
                users.push(user.to_owned());
            }
        }
        (None, true) => {
            reactions.push(Reaction { emoji: emoji.to_owned(), users: vec![user.to_owned()] })
        }
        (Some(index), false) => {
            reactions[index].users.retain(|name| name != user);
            if reactions[index].users.is_empty() {
                reactions.remove(index);
            }
        }
        (None, false) => {}
    }
}

/// The most characters of one reaction (an emoji with its modifiers and joiners).
const MAX_EMOJI_CHARS: usize = 12;

/// Checks a reaction: one emoji (a short run of non-ASCII symbols, with the joiners,
/// selectors and keycaps emoji are made of), no letters, spaces or control characters.
pub fn validate_emoji(emoji: &str) -> Result<(), String> {
    let count = emoji.chars().count();
    if count == 0 || count > MAX_EMOJI_CHARS {
        return Err(format!("a reaction is one emoji (1 to {MAX_EMOJI_CHARS} characters)"));
    }
    let keycap = emoji.contains('\u{20E3}');
    let fits = |c: char| {
        if c.is_ascii() {
            keycap && (c.is_ascii_digit() || c == '#' || c == '*')
        } else {
            !c.is_alphabetic() && !c.is_whitespace() && !is_forbidden(c)
        }
    };
    if emoji.chars().all(fits) && !emoji.is_ascii() {
        Ok(())
    } else {
        Err("a reaction is one emoji, not text".into())
    }
}

/// The most people one message mentions.
pub const MAX_MENTIONS: usize = 50;

/// The user names `text` mentions as `@name`, each once, in order of first mention. An
/// `@` inside a word (an e-mail address) or in code is no mention; the server keeps those
/// that name members of the room.
pub fn mentioned(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut in_code = false;
    let mut previous = ' ';
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == '`' {
            in_code = !in_code;
        } else if c == '@' && !in_code && !(previous.is_alphanumeric() || previous == '_') {
            let end = rest
                .find(|c: char| !matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-'))
                .unwrap_or(rest.len());
            let name = rest[..end].trim_end_matches('-').to_ascii_lowercase();
            if validate_username(&name).is_ok() && !names.contains(&name) {
                names.push(name);
                if names.len() == MAX_MENTIONS {
                    break;
                }
            }
        }
        previous = c;
    }
    names
}

fn is_false(value: &bool) -> bool {
    !value
}

/// A direct message, as each participant's inbox holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectMessage {
    /// Its id in the receiving user's inbox: strictly increasing from 1, no gaps.
    pub seq: u64,
    /// Who sent it.
    pub from: String,
    /// Who it is for.
    pub to: String,
    /// What was said.
    pub text: String,
    /// When the server accepted it.
    pub sent_at: Millis,
    /// The sender is a bot.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bot: bool,
    /// An edit, a deletion or a reaction (its `seq` numbered in this inbox), when this
    /// entry changes another message instead of saying something; `text` is the line
    /// that describes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<RoomChange>,
    /// The message was deleted: `text` is empty, and the store keeps nothing of it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// When its author last changed its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Millis>,
    /// Reactions, in the order they were first given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// The formatting of what this entry shows (its `text`, or an edit's new text), as
    /// the server parsed it; absent when that text has no Markdown, and then
    /// [`crate::markdown::plain_blocks`] gives its tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rich: Option<Vec<crate::markdown::Block>>,
    /// The files sent with it, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<Attachment>,
}

impl DirectMessage {
    /// The other participant, seen from `me`.
    pub fn peer(&self, me: &str) -> &str {
        if self.from == me { &self.to } else { &self.from }
    }
}

/// What the server tells one user alone, on `/user/queue/notices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// A direct message was stored, but its recipient has no open session.
    UserOffline {
        /// The recipient.
        user: String,
    },
    /// A direct message was refused: there is no such user.
    NoSuchUser {
        /// The name given.
        user: String,
    },
    /// A message was not stored and will not be delivered (the store is unreachable);
    /// send it again later. No RECEIPT follows.
    NotAccepted {
        /// The `receipt` header of the refused SEND, if it had one.
        receipt: Option<String>,
        /// Why.
        reason: String,
    },
    /// Someone added this user to a room (a private room gains members so): subscribe to
    /// it to see it.
    Added {
        /// The room.
        room: String,
        /// Who added them.
        by: String,
    },
    /// A SEND or SUBSCRIBE was refused by the room's rules (a private room, a ban, a mute,
    /// an archived room); nothing was stored, and no RECEIPT follows. A client that does
    /// not listen for notices gets an ERROR instead.
    Denied {
        /// The `receipt` header of the refused frame, if it had one.
        receipt: Option<String>,
        /// Why.
        reason: String,
    },
    /// A frame was refused because its sender is over a rate limit; nothing was stored or
    /// delivered, and no RECEIPT follows. Send it again after `retry_after_ms`. A client
    /// that keeps sending over the limit is disconnected with an ERROR.
    RateLimited {
        /// The `receipt` header of the refused frame, if it had one.
        receipt: Option<String>,
        /// How long to wait before the next try, in milliseconds.
        retry_after_ms: u64,
    },
}

/// What the server announces on [`ROOMS`], to everyone who listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DirectoryEvent {
    /// A room was created.
    Created {
        /// The room.
        room: String,
        /// Who created it.
        by: String,
    },
}

/// What a client sends to `/app/room.<room>` or `/app/dm.<user>` as `application/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEvent {
    /// Say something.
    Message {
        /// The text, 1 to [`MAX_MESSAGE_CHARS`] characters (may be empty with files).
        text: String,
        /// The id of the message this answers (rooms only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        /// Files uploaded by the sender (`POST /api/files`) and not sent yet, at most
        /// [`MAX_FILES_PER_MESSAGE`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<String>,
    },
    /// I am typing (rooms only).
    Typing,
    /// Change the text of one's own message.
    Edit {
        /// The message's id.
        seq: u64,
        /// The new text.
        text: String,
    },
    /// Delete a message: one's own, or in a room any as a moderator.
    Delete {
        /// The message's id.
        seq: u64,
    },
    /// Give (`on`) or take back a reaction.
    React {
        /// The message's id.
        seq: u64,
        /// The emoji.
        emoji: String,
        /// Given or taken back.
        on: bool,
    },
}

impl ClientEvent {
    /// The change to the room an edit, a deletion or a reaction asks for.
    pub fn change(&self) -> Option<RoomChange> {
        match self {
            ClientEvent::Edit { seq, text } => {
                Some(RoomChange::Edited { seq: *seq, text: text.clone() })
            }
            ClientEvent::Delete { seq } => Some(RoomChange::Deleted { seq: *seq }),
            ClientEvent::React { seq, emoji, on } => {
                Some(RoomChange::Reacted { seq: *seq, emoji: emoji.clone(), on: *on })
            }
            ClientEvent::Message { .. } | ClientEvent::Typing => None,
        }
    }
}

/// A STOMP destination, as Confab interprets it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// `/topic/room.<room>`: a chat room's broadcast.
    Room(String),
    /// `/app/room.<room>`: chat input for a room.
    AppRoom(String),
    /// `/app/dm.<user>`: a direct message to a user.
    AppDm(String),
    /// `/user/queue/dm`: the subscriber's own direct messages.
    UserDm,
    /// `/user/queue/notices`: the subscriber's own notices.
    UserNotices,
    /// `/topic/rooms`: the room directory's announcements; written by the server only.
    Rooms,
    /// `/topic/<name>`: a generic topic.
    Topic(String),
}

/// Where the direct-message queue lives, as seen by its owner.
pub const USER_DM: &str = "/user/queue/dm";
/// Where notices arrive, as seen by their owner.
pub const USER_NOTICES: &str = "/user/queue/notices";
/// Where the server announces new rooms.
pub const ROOMS: &str = "/topic/rooms";

/// Why a destination string is not one Confab serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// None of the known forms.
    #[error(
        "unknown destination {0:?}: use /topic/<name>, /topic/room.<room>, /topic/rooms, /app/room.<room>, /app/dm.<user>, /user/queue/dm or /user/queue/notices"
    )]
    Unknown(String),
    /// The room or user part breaks the naming rules.
    #[error("invalid name {0:?}: {1}")]
    InvalidName(String, NameError),
    /// `/user/<someone>/...`: each user can only reach their own queues, as `/user/queue/...`.
    #[error("{0:?} is another user's queue: subscribe to /user/queue/dm for your own")]
    OtherUser(String),
}

impl Destination {
    /// Parses a destination header.
    pub fn parse(text: &str) -> Result<Destination, DestinationError> {
        let name = |name: &str| {
            validate_name(name)
                .map(|()| name.to_owned())
                .map_err(|reason| DestinationError::InvalidName(name.to_owned(), reason))
        };
        if let Some(room) = text.strip_prefix("/topic/room.") {
            Ok(Destination::Room(name(room)?))
        } else if let Some(room) = text.strip_prefix("/app/room.") {
            Ok(Destination::AppRoom(name(room)?))
        } else if let Some(user) = text.strip_prefix("/app/dm.") {
            Ok(Destination::AppDm(name(user)?))
        } else if text == USER_DM {
            Ok(Destination::UserDm)
        } else if text == USER_NOTICES {
            Ok(Destination::UserNotices)
        } else if text == ROOMS {
            Ok(Destination::Rooms)
        } else if text.starts_with("/user/") {
            Err(DestinationError::OtherUser(text.to_owned()))
        } else if let Some(topic) = text.strip_prefix("/topic/")
            && !topic.is_empty()
        {
            Ok(Destination::Topic(topic.to_owned()))
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

    /// Where clients send a direct message to `user`.
    pub fn app_dm(user: &str) -> String {
        format!("/app/dm.{user}")
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Room(name) => write!(f, "/topic/room.{name}"),
            Destination::AppRoom(name) => write!(f, "/app/room.{name}"),
            Destination::AppDm(name) => write!(f, "/app/dm.{name}"),
            Destination::UserDm => f.write_str(USER_DM),
            Destination::UserNotices => f.write_str(USER_NOTICES),
            Destination::Rooms => f.write_str(ROOMS),
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
    /// A user name under [`MIN_USERNAME_CHARS`].
    #[error("user names have 3 to 32 characters")]
    TooShort,
}

/// User names: 3 to 32 characters from `[a-z0-9_-]`.
pub fn validate_username(name: &str) -> Result<(), NameError> {
    if name.len() < MIN_USERNAME_CHARS {
        return Err(NameError::TooShort);
    }
    validate_name(name)
}

/// Room names (and the name part of destinations): 1 to 32 characters from `[a-z0-9_-]`.
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
    /// Nothing but white space and invisible characters.
    #[error("message is empty")]
    Empty,
    /// Longer than [`MAX_MESSAGE_CHARS`].
    #[error("message is longer than 4000 characters")]
    TooLong,
    /// A control character (other than tab and line breaks) or a bidirectional override,
    /// which could make the message display as something else.
    #[error("message contains control or direction-override characters (U+{0:04X})")]
    Control(u32),
}

/// Checks a chat message's text: at most [`MAX_MESSAGE_CHARS`] characters, something
/// visible in it, and no control characters except tab and line breaks, nor the Unicode
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) that
/// make text display in another order than it reads.
pub fn validate_text(text: &str) -> Result<(), TextError> {
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(TextError::TooLong);
    }
    if let Some(bad) = text.chars().find(|&c| is_forbidden(c)) {
        return Err(TextError::Control(u32::from(bad)));
    }
    if text.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return Err(TextError::Empty);
    }
    Ok(())
}

/// Checks what a message says: its text by [`validate_text`], which may be empty when
/// files go with it; at most [`MAX_FILES_PER_MESSAGE`] files, each named once.
pub fn validate_message(text: &str, files: &[String]) -> Result<(), String> {
    if files.len() > MAX_FILES_PER_MESSAGE {
        return Err(format!("a message carries at most {MAX_FILES_PER_MESSAGE} files"));
    }
    if let Some(id) = files.iter().find(|id| !crate::api::is_file_id(id)) {
        return Err(format!("{id:?} is not a file id"));
    }
    if files.iter().enumerate().any(|(i, id)| files[..i].contains(id)) {
        return Err("a file is named twice".into());
    }
    match validate_text(text) {
        Err(TextError::Empty) if !files.is_empty() => Ok(()),
        other => other.map_err(|error| error.to_string()),
    }
}

fn is_forbidden(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that take no space: a message of only these looks empty.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_names_after_an_at_sign_outside_words_and_code() {
        assert_eq!(mentioned("hi @ann and @Bob, @ann again"), ["ann", "bob"]);
        assert_eq!(mentioned("mail ann@example.com"), Vec::<String>::new());
        assert_eq!(mentioned("`@ann` is code, @carol- is not"), ["carol"]);
        assert_eq!(mentioned("@al is too short, (@dave_2) fits"), ["dave_2"]);
        assert_eq!(mentioned("@"), Vec::<String>::new());
        let many: String = (0..80).map(|n| format!("@user{n} ")).collect();
        assert_eq!(mentioned(&many).len(), MAX_MENTIONS);
    }

    #[test]
    fn reactions_say_what_is_there_now() {
        let mut reactions = Vec::new();
        react(&mut reactions, "ann", "👍", true);
        react(&mut reactions, "ann", "👍", true);
        react(&mut reactions, "bob", "👍", true);
        react(&mut reactions, "bob", "🎉", true);
        assert_eq!(reactions[0].users, ["ann", "bob"]);
        react(&mut reactions, "ann", "👍", false);
        react(&mut reactions, "bob", "👍", false);
        react(&mut reactions, "bob", "👍", false);
        assert_eq!(reactions, [Reaction { emoji: "🎉".into(), users: vec!["bob".into()] }]);
    }

    #[test]
    fn reactions_are_emoji_not_text() {
        for good in ["👍", "🎉", "❤️", "👩‍💻", "🇫🇷", "1️⃣", "✅", "👍🏽"]
        {
            assert_eq!(validate_emoji(good), Ok(()), "{good}");
        }
        for bad in ["", "a", "ok", "👍 ", "é", "<b>", "\u{202E}👍", &"👍".repeat(13), "1"] {
            assert!(validate_emoji(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_events_read_as_tagged_json() {
        let edit: ClientEvent =
            serde_json::from_str(r#"{"type":"edit","seq":4,"text":"x"}"#).unwrap();
        assert_eq!(edit.change(), Some(RoomChange::Edited { seq: 4, text: "x".into() }));
        let message: ClientEvent =
            serde_json::from_str(r#"{"type":"message","text":"hi"}"#).unwrap();
        assert_eq!(
            message,
            ClientEvent::Message { text: "hi".into(), reply_to: None, files: Vec::new() }
        );
    }
}
