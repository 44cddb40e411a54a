//! What SEND and SUBSCRIBE mean in Confab: destinations routed to the engine, chat input
//! parsed and checked. The session calls in here; this module knows nothing of
//! transactions, receipts or the connection's state.

use bytes::Bytes;
use shared::chat::{
    ClientEvent, Destination, IDEMPOTENCY_HEADER, Notice, RoomChange, validate_emoji,
    validate_message, validate_text,
};
use shared::stomp::Headers;

use super::rates::Charge;
use super::refusal::Refusal;
use crate::delivery::{HubKey, RESERVED_HEADERS, SessionId, Subscriber};
use crate::engine::{Engine, EngineError, Missing, Replay};
use crate::store::NewPost;

/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Whether `key` can be an idempotency key: not empty (it would make every later message of
/// its sender look like a resend), not too long. The HTTP API checks its header with it.
pub fn check_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        Err("idempotency-key must not be empty".into())
    } else if key.len() > MAX_IDEMPOTENCY_KEY {
        Err(format!("idempotency-key is longer than {MAX_IDEMPOTENCY_KEY} bytes"))
    } else {
        Ok(())
    }
}

/// A SEND that passed its checks: what it asks for, ready to run.
#[derive(Debug)]
pub(super) enum Send {
    /// Chat input for a room.
    Room {
        /// The room.
        room: String,
        /// A message or a typing event.
        event: ClientEvent,
        /// The idempotency key of a message.
        key: Option<String>,
    },
    /// A direct message.
    Dm {
        /// The recipient.
        to: String,
        /// What was said.
        text: String,
        /// The files sent with it.
        files: Vec<String>,
        /// The idempotency key.
        key: Option<String>,
    },
    /// An edit, a deletion or a reaction to a message of a direct conversation.
    DmChange {
        /// The other participant.
        peer: String,
        /// The change, its `seq` numbered in the sender's inbox.
        change: RoomChange,
    },
    /// A publication on a generic topic, with the headers its subscribers get.
    Topic {
        /// The destination, as the client wrote it.
        destination: String,
        /// The publisher's headers, minus those the server owns.
        headers: Headers,
        /// The body, as it came.
        body: Bytes,
    },
}

/// How a frame ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    /// Done: a RECEIPT may follow.
    Done,
    /// Done, and its RECEIPT is queued later by someone else (a SUBSCRIBE's, after its
    /// replay).
    ReceiptLater,
    /// Refused with a notice to the sender (a DM to nobody): no RECEIPT, no ERROR.
    RefusedWithNotice,
}

impl Send {
    /// Checks a SEND: its destination, and for chat destinations its content type, text and
    /// idempotency key.
    pub fn check(
        destination: &str,
        headers: Headers,
        body: Bytes,
        generic_topics: bool,
    ) -> Result<Send, Refusal> {
        let parsed =
            Destination::parse(destination).map_err(|error| Refusal::new(error.to_string()))?;
        match parsed {
            Destination::Room(room) | Destination::AppRoom(room) => {
                let key = idempotency_key(&headers)?;
                Ok(Send::Room { room, event: chat_event(&headers, &body)?, key })
            }
            Destination::AppDm(to) => {
                let key = idempotency_key(&headers)?;
                match chat_event(&headers, &body)? {
                    ClientEvent::Message { text, reply_to: None, files } => {
                        Ok(Send::Dm { to, text, files, key })
                    }
                    ClientEvent::Message { reply_to: Some(_), .. } => {
                        Err(Refusal::new("replies are for rooms: a direct message has no reply_to"))
                    }
                    ClientEvent::Typing => {
                        Err(Refusal::new("typing events go to /app/room.<room>"))
                    }
                    event @ (ClientEvent::Edit { .. }
                    | ClientEvent::Delete { .. }
                    | ClientEvent::React { .. }) => match event.change() {
                        Some(change) => Ok(Send::DmChange { peer: to, change }),
                        None => Err(Refusal::new("not a change to a message")),
                    },
                }
            }
            Destination::UserDm | Destination::UserNotices => {
                Err(Refusal::new(format!("{destination} is for receiving: send to /app/dm.<user>")))
            }
            Destination::Rooms => Err(Refusal::new(format!(
                "{destination} is written by the server: create a room with POST /api/rooms"
            ))),
            Destination::Topic(topic) => {
                check_topic(&topic, generic_topics)?;
                let mut headers = headers;
                for name in RESERVED_HEADERS {
                    headers.take(name);
                }
                // Passed on to every subscriber as they are: no control characters, which
                // some clients would misread (security review L8).
                if let Some((name, _)) = headers
                    .iter()
                    .find(|(name, value)| name.chars().chain(value.chars()).any(char::is_control))
                {
                    return Err(Refusal::new(format!(
                        "header {name:?} has a control character: it cannot be passed on"
                    )));
                }
                if headers.get("content-type").is_none() {
                    let guess = if std::str::from_utf8(&body).is_ok() {
                        "text/plain;charset=utf-8"
                    } else {
                        "application/octet-stream"
                    };
                    headers.push("content-type", guess);
                }
                Ok(Send::Topic { destination: destination.to_owned(), headers, body })
            }
        }
    }

    /// The rate bucket the SEND is charged to.
    pub fn charge(&self) -> Charge {
        match self {
            Send::Room { event: ClientEvent::Typing, .. } => Charge::Typing,
            Send::Room { .. } | Send::Dm { .. } | Send::DmChange { .. } => Charge::Message,
            Send::Topic { .. } => Charge::Topic,
        }
    }

    /// Bytes the SEND holds while it waits in a transaction.
    pub fn held_bytes(&self) -> usize {
        const OVERHEAD: usize = 64;
        OVERHEAD
            + match self {
                Send::Room { room, event, key } => {
                    room.len()
                        + key.as_ref().map_or(0, String::len)
                        + match event {
                            ClientEvent::Message { text, .. } | ClientEvent::Edit { text, .. } => {
                                text.len()
                            }
                            ClientEvent::React { emoji, .. } => emoji.len(),
                            ClientEvent::Typing | ClientEvent::Delete { .. } => 0,
                        }
                }
                Send::Dm { to, text, files, key } => {
                    to.len() + text.len() + key.as_ref().map_or(0, String::len) + files.len() * 32
                }
                Send::DmChange { peer, change } => {
                    peer.len() + change.describe("", str::to_owned).len()
                }
                Send::Topic { destination, headers, body } => {
                    destination.len()
                        + body.len()
                        + headers
                            .iter()
                            .map(|(name, value)| name.len() + value.len() + 2)
                            .sum::<usize>()
                }
            }
    }

    /// Whether the SEND stores a message (a chat message or a DM).
    pub fn stores(&self) -> bool {
        matches!(self, Send::Room { event: ClientEvent::Message { .. }, .. } | Send::Dm { .. })
    }

    /// What to store, for the SENDs that store a message.
    pub fn to_post(&self, sender: &str, bot: bool) -> Option<NewPost> {
        match self {
            Send::Room { room, event: ClientEvent::Message { text, reply_to, files }, key } => {
                Some(NewPost::Room {
                    room: room.clone(),
                    sender: sender.to_owned(),
                    text: text.clone(),
                    key: key.clone(),
                    bot,
                    reply_to: *reply_to,
                    files: files.clone(),
                })
            }
            Send::Dm { to, text, files, key } => Some(NewPost::Dm {
                from: sender.to_owned(),
                to: to.clone(),
                text: text.clone(),
                key: key.clone(),
                bot,
                files: files.clone(),
            }),
            Send::Room { .. } | Send::Topic { .. } | Send::DmChange { .. } => None,
        }
    }

    /// Stores and delivers, or publishes.
    pub async fn run(self, engine: &Engine, login: &str, bot: bool) -> Result<Sent, Refusal> {
        if let Some(post) = self.to_post(login, bot) {
            let outcome = engine.post(vec![post]).await.map(drop);
            return self.answer(engine, login, outcome).await;
        }
        match self {
            Send::Room { room, event: ClientEvent::Typing, .. } => {
                // Only members who may post may say they are typing: a bystander cannot
                // make a room's indicator flicker, nor can someone muted.
                let standing = engine.readable(&room, login).await?;
                standing.may_post().map_err(|denied| EngineError::Forbidden(denied.0))?;
                engine.typing(&room, login).await;
            }
            Send::Room { room, event, .. } => {
                if let Some(change) = event.change() {
                    engine.change_room(&room, login, change).await?;
                }
            }
            Send::Topic { destination, headers, body } => {
                engine.publish_topic(&destination, &headers, &body).await;
            }
            Send::DmChange { peer, change } => {
                engine.change_dm(login, &peer, change).await?;
            }
            Send::Dm { .. } => {}
        }
        Ok(Sent::Done)
    }
}

impl Send {
    /// What a SEND that stores a message comes to, once the store has answered: done (and
    /// the sender of a DM to someone offline told it will wait), a notice for a DM to
    /// nobody, or the store's refusal.
    pub async fn answer(
        &self,
        engine: &Engine,
        login: &str,
        outcome: Result<(), EngineError>,
    ) -> Result<Sent, Refusal> {
        match outcome {
            Ok(()) => {
                if let Send::Dm { to, .. } = self {
                    tell_if_offline(engine, login, to).await;
                }
                Ok(Sent::Done)
            }
            Err(EngineError::NotFound(Missing::User(user))) => {
                engine.notify(login, &Notice::NoSuchUser { user }).await;
                Ok(Sent::RefusedWithNotice)
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Tells the sender of a DM whose recipient has no session that it will wait.
pub(super) async fn tell_if_offline(engine: &Engine, sender: &str, recipient: &str) {
    if !engine.is_online(recipient).await.unwrap_or(true) {
        engine.notify(sender, &Notice::UserOffline { user: recipient.to_owned() }).await;
    }
}

/// What a subscription is attached to, to detach it again.
#[derive(Debug)]
pub(super) enum Attachment {
    /// A room: its presence changes when the subscription ends.
    Room(String),
    /// Any other hub key.
    Key(HubKey),
}

impl Attachment {
    /// Whether this is the user's notice queue.
    pub fn is_notices_of(&self, login: &str) -> bool {
        matches!(self, Attachment::Key(HubKey::Notices(user)) if user == login)
    }
}

/// Attaches `subscriber` to what `destination` names. A room's or the inbox's RECEIPT is
/// queued after its replay ([`Sent::ReceiptLater`]).
pub(super) async fn attach(
    engine: &Engine,
    login: &str,
    destination: &str,
    subscriber: Subscriber,
    replay: Replay,
    receipt: Option<String>,
    generic_topics: bool,
) -> Result<(Attachment, Sent), Refusal> {
    let parsed =
        Destination::parse(destination).map_err(|error| Refusal::new(error.to_string()))?;
    Ok(match parsed {
        Destination::Room(room) => {
            match engine.readable(&room, login).await {
                Ok(_) => {}
                Err(EngineError::NotFound(_)) => {
                    return Err(Refusal::new(format!(
                        "no room named {room:?}: create it with POST /api/rooms"
                    )));
                }
                Err(error) => return Err(error.into()),
            }
            // Joins the room if need be: the store refuses whoever the rules keep out.
            engine.attach_room(&room, login, subscriber, replay, receipt).await?;
            (Attachment::Room(room), Sent::ReceiptLater)
        }
        Destination::UserDm => {
            engine.attach_inbox(login, subscriber, replay, receipt).await?;
            (Attachment::Key(HubKey::Inbox(login.to_owned())), Sent::ReceiptLater)
        }
        Destination::UserNotices => {
            let key = HubKey::Notices(login.to_owned());
            engine.attach_key(key.clone(), subscriber).await?;
            (Attachment::Key(key), Sent::Done)
        }
        Destination::Topic(topic) => {
            check_topic(&topic, generic_topics)?;
            let key = HubKey::Topic(topic);
            engine.attach_key(key.clone(), subscriber).await?;
            (Attachment::Key(key), Sent::Done)
        }
        Destination::Rooms => {
            let key = HubKey::Topic(shared::chat::ROOMS.trim_start_matches("/topic/").to_owned());
            engine.attach_key(key.clone(), subscriber).await?;
            (Attachment::Key(key), Sent::Done)
        }
        Destination::AppRoom(room) => {
            return Err(Refusal::new(format!(
                "cannot subscribe to {destination}: subscribe to {} instead",
                Destination::room(&room)
            )));
        }
        Destination::AppDm(_) => {
            return Err(Refusal::new(format!(
                "cannot subscribe to {destination}: subscribe to /user/queue/dm"
            )));
        }
    })
}

/// Ends a subscription made by [`attach`].
pub(super) fn detach(
    engine: &Engine,
    login: &str,
    attachment: &Attachment,
    session: SessionId,
    id: &str,
) {
    match attachment {
        Attachment::Room(room) => engine.detach_room(room, login, session, id),
        Attachment::Key(key) => engine.detach_key(key, session, id),
    }
}

/// The longest generic topic name, after `/topic/`.
const MAX_TOPIC_CHARS: usize = 128;

/// A generic topic's name is a key on every node and a channel on the bus: short, and of
/// visible characters. None is served with `--generic-topics off`.
pub(super) fn check_topic(topic: &str, generic_topics: bool) -> Result<(), Refusal> {
    if !generic_topics {
        return Err(Refusal::new(format!(
            "/topic/{topic} is not served: this server has generic topics switched off; rooms are /topic/room.<room>"
        )));
    }
    if topic.chars().count() > MAX_TOPIC_CHARS {
        return Err(Refusal::new(format!("topic names have at most {MAX_TOPIC_CHARS} characters")));
    }
    if topic.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Refusal::new("topic names have no spaces or control characters"));
    }
    Ok(())
}

/// A SEND's `idempotency-key`, if any. An empty key would make every later message of its
/// sender look like a resend, so it is refused, as is one too long to be a key.
fn idempotency_key(headers: &Headers) -> Result<Option<String>, Refusal> {
    match headers.get(IDEMPOTENCY_HEADER) {
        Some(key) => {
            check_idempotency_key(key).map(|()| Some(key.to_owned())).map_err(Refusal::new)
        }
        None => Ok(None),
    }
}

/// The event a chat SEND carries: a `text/plain` body is a message; `application/json` is a
/// [`ClientEvent`]. Messages are checked here.
fn chat_event(headers: &Headers, body: &[u8]) -> Result<ClientEvent, Refusal> {
    let content_type = headers.get("content-type").unwrap_or("text/plain");
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    let event = match mime {
        "application/json" => serde_json::from_slice::<ClientEvent>(body)
            .map_err(|error| Refusal::new(format!("invalid chat event: {error}")))?,
        "text/plain" => ClientEvent::Message {
            text: String::from_utf8(body.to_vec())
                .map_err(|_| Refusal::new("chat message is not valid utf-8"))?,
            reply_to: None,
            files: Vec::new(),
        },
        other => {
            return Err(Refusal::new(format!(
                "unsupported content-type {other:?} for a chat message: use text/plain or application/json"
            )));
        }
    };
    match &event {
        ClientEvent::Message { text, files, .. } => {
            validate_message(text, files).map_err(Refusal::new)?;
        }
        ClientEvent::Edit { text, .. } => {
            validate_text(text).map_err(|reason| Refusal::new(reason.to_string()))?;
        }
        ClientEvent::React { emoji, .. } => validate_emoji(emoji).map_err(Refusal::new)?,
        ClientEvent::Typing | ClientEvent::Delete { .. } => {}
    }
    Ok(event)
}
