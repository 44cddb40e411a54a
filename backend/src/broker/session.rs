//! One STOMP session: the protocol state machine between a connection's decoded frames and
//! its outbox.
//!
//! The session never touches the socket. It answers every frame by queueing frames (and at
//! most one [`Outgoing::Close`]) and tells the caller, through [`Flow`], what changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shared::api::DEFAULT_REPLAY;
use shared::chat::{
    ClientEvent, Destination, IDEMPOTENCY_HEADER, Notice, SINCE_HEADER, validate_text,
};
use shared::stomp::{
    AckMode, ClientFrame, Frame, FrameError, Headers, HeartBeat, ServerFrame, Version,
    encode_to_bytes,
};

use super::Broker;
use super::acks::AckLedger;
use super::hub::{SessionId, Subscriber, notices_key};
use super::message::{FrameCache, RESERVED_HEADERS, notice_message};
use super::outbox::{Outbox, OutboxReceiver, Outgoing};
use crate::auth::token_hash;
use crate::engine::{EngineError, Replay};

/// What the connection should do after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The session is now connected with these terms; keep reading.
    Connected(Negotiated),
    /// Stop reading; the outbox ends with [`Outgoing::Close`].
    Close,
}

/// The terms agreed by CONNECT and CONNECTED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol version.
    pub version: Version,
    /// How often the client promised to send something; `None` for never.
    pub client_heart_beat: Option<Duration>,
    /// How often the server sends heart-beats; `None` for never.
    pub server_heart_beat: Option<Duration>,
}

#[derive(Debug)]
enum State {
    AwaitingConnect,
    Connected { login: String },
    Closed,
}

/// What a subscription is attached to, to detach it again.
#[derive(Debug)]
enum Attachment {
    Room(String),
    Key(String),
}

/// A protocol error to report in an ERROR frame before closing.
#[derive(Debug)]
struct Refusal {
    message: String,
    headers: Headers,
    body: String,
    /// The same request may succeed later (the store was unreachable).
    retryable: bool,
}

impl Refusal {
    fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            headers: Headers::new(),
            body: String::new(),
            retryable: false,
        }
    }
}

impl From<FrameError> for Refusal {
    fn from(error: FrameError) -> Refusal {
        Refusal::new(error.to_string())
    }
}

impl From<EngineError> for Refusal {
    fn from(error: EngineError) -> Refusal {
        match error {
            EngineError::Unavailable => Refusal {
                retryable: true,
                ..Refusal::new("not accepted: the message store is unavailable, try again")
            },
            EngineError::Conflict(message) | EngineError::NotFound(message) => {
                Refusal::new(message)
            }
            other => {
                tracing::error!(error = %other, "engine failure");
                Refusal::new("internal error: the request was not completed")
            }
        }
    }
}

/// The versions this server speaks, for the ERROR of a failed negotiation.
const SUPPORTED_VERSIONS: &str = "1.0,1.1,1.2";

/// A connection's STOMP state.
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    broker: Broker,
    outbox: Outbox,
    acks: AckLedger,
    state: State,
    subscriptions: HashMap<Arc<str>, Attachment>,
    transactions: HashMap<String, Vec<ClientFrame>>,
}

impl Session {
    pub(super) fn new(broker: Broker, id: SessionId) -> (Session, OutboxReceiver, AckLedger) {
        let config = broker.config();
        let (outbox, receiver) = Outbox::with_capacity(config.outbox_frames, config.outbox_bytes);
        let acks = AckLedger::new(config.max_unacked);
        let session = Session {
            id,
            broker,
            outbox,
            acks: acks.clone(),
            state: State::AwaitingConnect,
            subscriptions: HashMap::new(),
            transactions: HashMap::new(),
        };
        (session, receiver, acks)
    }

    /// The user this session is logged in as, once connected.
    pub fn login(&self) -> Option<&str> {
        match &self.state {
            State::Connected { login } => Some(login),
            _ => None,
        }
    }

    /// Handles one decoded frame.
    pub async fn handle(&mut self, frame: Frame) -> Flow {
        let receipt = frame.headers.get("receipt").map(str::to_owned);
        let result = match ClientFrame::try_from(frame) {
            Ok(frame) => self.dispatch(frame).await,
            Err(error) => Err(error.into()),
        };
        match result {
            Ok(flow) => flow,
            Err(refusal) => self.refuse(refusal, receipt),
        }
    }

    /// Reports a frame that could not be decoded and ends the session.
    pub fn malformed(&mut self, error: FrameError) -> Flow {
        self.refuse(error.into(), None)
    }

    /// Ends the session with an ERROR carrying `message`, for reasons outside any frame
    /// (heart-beat timeout, shutdown).
    pub fn abort(&mut self, message: &str) -> Flow {
        self.refuse(Refusal::new(message), None)
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Result<Flow, Refusal> {
        let login = match &self.state {
            State::AwaitingConnect => {
                return match frame {
                    ClientFrame::Connect { .. } => self.connect(frame).await,
                    other => Err(Refusal::new(format!(
                        "expected CONNECT or STOMP as the first frame, got {}",
                        other.command()
                    ))),
                };
            }
            State::Connected { login } => login.clone(),
            State::Closed => return Ok(Flow::Close),
        };
        let receipt = frame.receipt().map(str::to_owned);
        match frame {
            ClientFrame::Connect { .. } => return Err(Refusal::new("already connected")),
            ClientFrame::Disconnect { .. } => {
                self.send_receipt(receipt);
                self.close();
                return Ok(Flow::Close);
            }
            ClientFrame::Send {
                transaction: Some(transaction),
                destination,
                headers,
                body,
                ..
            } => {
                // Refuse a bad destination now rather than at COMMIT.
                Destination::parse(&destination)
                    .map_err(|error| Refusal::new(error.to_string()))?;
                let frame = ClientFrame::Send {
                    destination,
                    transaction: None,
                    receipt: None,
                    headers,
                    body,
                };
                self.enlist(&transaction, frame)?;
            }
            ClientFrame::Ack { transaction: Some(transaction), nack, id, headers, .. } => {
                let frame =
                    ClientFrame::Ack { nack, id, transaction: None, receipt: None, headers };
                self.enlist(&transaction, frame)?;
            }
            ClientFrame::Begin { transaction, .. } => {
                if self.transactions.contains_key(&transaction) {
                    return Err(Refusal::new(format!(
                        "transaction {transaction:?} already started"
                    )));
                }
                if self.transactions.len() >= self.broker.config().max_transactions {
                    return Err(Refusal::new("too many open transactions"));
                }
                self.transactions.insert(transaction, Vec::new());
            }
            ClientFrame::Commit { transaction, .. } => {
                let frames = self
                    .transactions
                    .remove(&transaction)
                    .ok_or_else(|| unknown_tx(&transaction))?;
                for frame in frames {
                    if !self.execute(&login, frame).await? {
                        // A refused direct message inside a transaction refuses the commit.
                        return Err(Refusal::new(format!(
                            "transaction {transaction:?} was not committed in full"
                        )));
                    }
                }
            }
            ClientFrame::Abort { transaction, .. } => {
                self.transactions.remove(&transaction).ok_or_else(|| unknown_tx(&transaction))?;
            }
            frame => {
                let is_send = matches!(frame, ClientFrame::Send { .. });
                match self.execute(&login, frame).await {
                    Ok(true) => {}
                    // Refused with a notice: no RECEIPT, the connection stays open.
                    Ok(false) => return Ok(Flow::Continue),
                    // The store is unreachable: a client that listens to its notices hears
                    // that this message was not accepted, and keeps its connection.
                    Err(refusal)
                        if is_send
                            && refusal.retryable
                            && self.tell_not_accepted(&login, &receipt, &refusal) =>
                    {
                        return Ok(Flow::Continue);
                    }
                    Err(refusal) => return Err(refusal),
                }
            }
        }
        self.send_receipt(receipt);
        Ok(Flow::Continue)
    }

    /// Performs SEND, SUBSCRIBE, UNSUBSCRIBE, ACK and NACK, outside any transaction.
    /// `Ok(false)` means refused with a notice rather than an ERROR.
    async fn execute(&mut self, login: &str, frame: ClientFrame) -> Result<bool, Refusal> {
        match frame {
            ClientFrame::Send { destination, headers, body, .. } => {
                self.send(login, &destination, headers, body).await
            }
            ClientFrame::Subscribe { destination, id, ack, headers, .. } => {
                self.subscribe(login, &destination, id, ack, &headers).await.map(|()| true)
            }
            ClientFrame::Unsubscribe { id, .. } => self.unsubscribe(login, &id).map(|()| true),
            ClientFrame::Ack { id, nack, .. } => {
                // NACK'd messages of a topic are discarded: "The server can then either send
                // the message to a different client, discard it, or put it in a dead letter
                // queue."
                if self.acks.settle(&id) {
                    Ok(true)
                } else {
                    let command = if nack { "NACK" } else { "ACK" };
                    Err(Refusal::new(format!("{command} names unknown ack id {id:?}")))
                }
            }
            other => Err(Refusal::new(format!("{} is not allowed here", other.command()))),
        }
    }

    async fn connect(&mut self, frame: ClientFrame) -> Result<Flow, Refusal> {
        let ClientFrame::Connect { accept_version, login, passcode, heart_beat, .. } = frame else {
            return Err(Refusal::new("expected CONNECT"));
        };
        // "If the client and server do not share any common protocol versions, then the
        // server MUST respond with an ERROR frame ... and then close the connection."
        let Some(version) = Version::negotiate(accept_version.as_deref()) else {
            let mut refusal = Refusal::new("unsupported protocol version");
            refusal.headers.push("version", SUPPORTED_VERSIONS);
            refusal.headers.push("content-type", "text/plain");
            refusal.body = "Supported protocol versions are 1.0 1.1 1.2".to_owned();
            return Err(refusal);
        };
        let authentication_failed = || {
            let mut refusal = Refusal::new("authentication failed");
            refusal.headers.push("content-type", "text/plain");
            refusal.body =
                "CONNECT with login set to your user name and passcode set to a session token \
                            from POST /api/login"
                    .to_owned();
            refusal
        };
        let (Some(login), Some(passcode)) = (login, passcode) else {
            return Err(authentication_failed());
        };
        let owner = self.broker.engine().token_user(&token_hash(&passcode)).await?;
        if owner.as_deref() != Some(login.as_str()) {
            return Err(authentication_failed());
        }
        let offer = self.broker.config().heart_beat_ms;
        let server_offer = HeartBeat { can_send_ms: offer, want_receive_ms: offer };
        let negotiated = Negotiated {
            version,
            // "heart-beats every MAX(<cx>,<sy>) milliseconds", and the other way round.
            client_heart_beat: HeartBeat::interval(heart_beat.can_send_ms, offer).map(millis),
            server_heart_beat: HeartBeat::interval(offer, heart_beat.want_receive_ms).map(millis),
        };
        let mut headers = Headers::new();
        headers.push("user-name", login.clone());
        self.push(ServerFrame::Connected {
            version,
            heart_beat: server_offer,
            session: Some(self.broker.session_name(self.id)),
            server: Some(concat!("confab/", env!("CARGO_PKG_VERSION")).to_owned()),
            headers,
        });
        if let Some(interval) = negotiated.server_heart_beat {
            self.outbox.push(Outgoing::HeartBeat(interval));
        }
        self.broker.engine().session_opened(&login).await?;
        self.state = State::Connected { login };
        Ok(Flow::Connected(negotiated))
    }

    async fn send(
        &mut self,
        login: &str,
        destination: &str,
        headers: Headers,
        body: Bytes,
    ) -> Result<bool, Refusal> {
        let engine = self.broker.engine();
        match Destination::parse(destination).map_err(|error| Refusal::new(error.to_string()))? {
            Destination::Room(room) | Destination::AppRoom(room) => {
                match chat_event(&headers, &body)? {
                    ClientEvent::Message { text } => {
                        let key = headers.get(IDEMPOTENCY_HEADER);
                        engine.post_room(&room, login, &text, key).await?;
                    }
                    ClientEvent::Typing => {
                        if !engine.room_exists(&room).await? {
                            return Err(Refusal::new(format!("no room named {room:?}")));
                        }
                        engine.typing(&room, login).await?;
                    }
                }
            }
            Destination::AppDm(to) => match chat_event(&headers, &body)? {
                ClientEvent::Message { text } => {
                    let key = headers.get(IDEMPOTENCY_HEADER);
                    match engine.post_dm(login, &to, &text, key).await {
                        Ok(_) => {
                            if !engine.is_online(&to).await? {
                                self.notify(login, &Notice::UserOffline { user: to }).await;
                            }
                        }
                        Err(EngineError::NotFound(_)) => {
                            self.notify(login, &Notice::NoSuchUser { user: to }).await;
                            return Ok(false);
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                ClientEvent::Typing => {
                    return Err(Refusal::new("typing events go to /app/room.<room>"));
                }
            },
            Destination::UserDm | Destination::UserNotices => {
                return Err(Refusal::new(format!(
                    "{destination} is for receiving: send to /app/dm.<user>"
                )));
            }
            Destination::Rooms => {
                return Err(Refusal::new(format!(
                    "{destination} is written by the server: create a room with POST /api/rooms"
                )));
            }
            Destination::Topic(_) => {
                let mut headers = headers;
                for name in RESERVED_HEADERS {
                    headers.take(name);
                }
                if headers.get("content-type").is_none() {
                    let guess = if std::str::from_utf8(&body).is_ok() {
                        "text/plain;charset=utf-8"
                    } else {
                        "application/octet-stream"
                    };
                    headers.push("content-type", guess);
                }
                engine.publish_topic(destination, &headers, &body).await?;
            }
        }
        Ok(true)
    }

    /// Queues a `not_accepted` notice on this session's own notice subscription; `false`
    /// if it has none.
    fn tell_not_accepted(&self, login: &str, receipt: &Option<String>, refusal: &Refusal) -> bool {
        let key = notices_key(login);
        let Some(subscription) = self
            .subscriptions
            .iter()
            .find(|(_, attachment)| matches!(attachment, Attachment::Key(k) if *k == key))
            .map(|(id, _)| id.clone())
        else {
            return false;
        };
        let notice =
            Notice::NotAccepted { receipt: receipt.clone(), reason: refusal.message.clone() };
        self.outbox.push(FrameCache::new(&notice_message(&notice)).outgoing(&subscription, None));
        true
    }

    async fn notify(&self, user: &str, notice: &Notice) {
        if let Err(error) = self.broker.engine().notify(user, notice).await {
            tracing::warn!(%error, user, "a notice was not delivered");
        }
    }

    async fn subscribe(
        &mut self,
        login: &str,
        destination: &str,
        id: String,
        ack: AckMode,
        headers: &Headers,
    ) -> Result<(), Refusal> {
        // "Within the same connection, different subscriptions MUST use different
        // subscription identifiers."
        if self.subscriptions.contains_key(id.as_str()) {
            return Err(Refusal::new(format!("subscription id {id:?} is already in use")));
        }
        if self.subscriptions.len() >= self.broker.config().max_subscriptions {
            return Err(Refusal::new("too many subscriptions"));
        }
        let parsed =
            Destination::parse(destination).map_err(|error| Refusal::new(error.to_string()))?;
        let replay = match headers.get(SINCE_HEADER) {
            None => Replay::Latest(DEFAULT_REPLAY),
            Some(text) => Replay::Since(text.parse().map_err(|_| {
                Refusal::new(format!(
                    "invalid since header {text:?}: expected the last seq you have, a number"
                ))
            })?),
        };
        let subscription: Arc<str> = id.into();
        let subscriber = Subscriber {
            session: self.id,
            login: login.into(),
            subscription: subscription.clone(),
            ack,
            outbox: self.outbox.clone(),
            replayed_up_to: 0,
        };
        let engine = self.broker.engine();
        let attachment = match &parsed {
            Destination::Room(room) => {
                if !engine.room_exists(room).await? {
                    return Err(Refusal::new(format!(
                        "no room named {room:?}: create it with POST /api/rooms"
                    )));
                }
                engine.attach_room(room, login, subscriber, replay).await?;
                Attachment::Room(room.clone())
            }
            Destination::UserDm => {
                engine.attach_inbox(login, subscriber, replay).await?;
                Attachment::Key(super::hub::inbox_key(login))
            }
            Destination::UserNotices => {
                let key = notices_key(login);
                engine.attach_key(&key, subscriber).await?;
                Attachment::Key(key)
            }
            Destination::Topic(_) | Destination::Rooms => {
                engine.attach_key(destination, subscriber).await?;
                Attachment::Key(destination.to_owned())
            }
            Destination::AppRoom(room) => {
                return Err(Refusal::new(format!(
                    "cannot subscribe to {destination}: subscribe to {} instead",
                    Destination::room(room)
                )));
            }
            Destination::AppDm(_) => {
                return Err(Refusal::new(format!(
                    "cannot subscribe to {destination}: subscribe to /user/queue/dm"
                )));
            }
        };
        self.subscriptions.insert(subscription, attachment);
        Ok(())
    }

    fn unsubscribe(&mut self, login: &str, id: &str) -> Result<(), Refusal> {
        // "This header MUST match the subscription identifier of an existing subscription."
        let attachment = self
            .subscriptions
            .remove(id)
            .ok_or_else(|| Refusal::new(format!("no subscription with id {id:?}")))?;
        self.detach(login, id, &attachment);
        Ok(())
    }

    fn detach(&self, login: &str, id: &str, attachment: &Attachment) {
        match attachment {
            Attachment::Room(room) => self.broker.engine().detach_room(room, login, self.id, id),
            Attachment::Key(key) => self.broker.engine().detach_key(key, self.id, id),
        }
        self.acks.forget(id);
    }

    fn enlist(&mut self, transaction: &str, frame: ClientFrame) -> Result<(), Refusal> {
        let limit = self.broker.config().max_transaction_frames;
        let frames =
            self.transactions.get_mut(transaction).ok_or_else(|| unknown_tx(transaction))?;
        if frames.len() >= limit {
            return Err(Refusal::new(format!("transaction {transaction:?} holds too many frames")));
        }
        frames.push(frame);
        Ok(())
    }

    fn send_receipt(&self, receipt: Option<String>) {
        if let Some(receipt_id) = receipt {
            self.push(ServerFrame::Receipt { receipt_id, headers: Headers::new() });
        }
    }

    fn push(&self, frame: ServerFrame) {
        self.outbox.push(Outgoing::frame(encode_to_bytes(&frame.into_frame())));
    }

    /// "The server MAY send ERROR frames if something goes wrong. In this case, it MUST
    /// then close the connection just after sending the ERROR frame."
    fn refuse(&mut self, refusal: Refusal, receipt: Option<String>) -> Flow {
        if matches!(self.state, State::Closed) {
            return Flow::Close;
        }
        tracing::debug!(session = self.id, message = %refusal.message, "refusing frame");
        self.push(ServerFrame::Error {
            message: Some(refusal.message),
            receipt_id: receipt,
            headers: refusal.headers,
            body: Bytes::from(refusal.body),
        });
        self.close();
        Flow::Close
    }

    /// Leaves every subscription and queues the close. Open transactions are dropped:
    /// "Any started transactions which have not been committed will be implicitly aborted".
    fn close(&mut self) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Closed => return,
            State::AwaitingConnect => {}
            State::Connected { login } => {
                for (id, attachment) in std::mem::take(&mut self.subscriptions) {
                    self.detach(&login, &id, &attachment);
                }
                self.broker.engine().session_closed(&login);
            }
        }
        self.transactions.clear();
        self.outbox.push(Outgoing::Close);
    }
}

impl Drop for Session {
    /// A dropped connection leaves its rooms like a DISCONNECT does.
    fn drop(&mut self) {
        self.close();
        self.broker.session_ended();
    }
}

fn unknown_tx(transaction: &str) -> Refusal {
    Refusal::new(format!("no transaction {transaction:?} was started"))
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
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
        },
        other => {
            return Err(Refusal::new(format!(
                "unsupported content-type {other:?} for a chat message: use text/plain or application/json"
            )));
        }
    };
    if let ClientEvent::Message { text } = &event {
        validate_text(text).map_err(|reason| Refusal::new(reason.to_string()))?;
    }
    Ok(event)
}
