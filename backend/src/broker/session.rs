//! One STOMP session: the protocol state machine between a connection's decoded frames and
//! its outbox.
//!
//! The session never touches the socket. It answers every frame by queueing frames (and at
//! most one [`Outgoing::Close`]) and tells the caller, through [`Flow`], what changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shared::chat::{ClientEvent, Destination, validate_name, validate_text};
use shared::stomp::{
    AckMode, ClientFrame, Frame, FrameError, Headers, HeartBeat, ServerFrame, Version,
    encode_to_bytes,
};

use super::Broker;
use super::acks::AckLedger;
use super::message::RESERVED_HEADERS;
use super::outbox::{Outbox, OutboxReceiver, Outgoing};
use super::topics::{SessionId, Subscriber};

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

#[derive(Debug)]
struct Subscription {
    destination: Destination,
}

/// A protocol error to report in an ERROR frame before closing.
#[derive(Debug)]
struct Refusal {
    message: String,
    headers: Headers,
    body: String,
}

impl Refusal {
    fn new(message: impl Into<String>) -> Refusal {
        Refusal { message: message.into(), headers: Headers::new(), body: String::new() }
    }
}

impl From<FrameError> for Refusal {
    fn from(error: FrameError) -> Refusal {
        Refusal::new(error.to_string())
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
    subscriptions: HashMap<Arc<str>, Subscription>,
    transactions: HashMap<String, Vec<ClientFrame>>,
}

impl Session {
    pub(super) fn new(broker: Broker, id: SessionId) -> (Session, OutboxReceiver, AckLedger) {
        let config = broker.config();
        let (outbox, receiver) = Outbox::with_capacity(config.outbox_frames);
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
    pub fn handle(&mut self, frame: Frame) -> Flow {
        let receipt = frame.headers.get("receipt").map(str::to_owned);
        let result = ClientFrame::try_from(frame)
            .map_err(Refusal::from)
            .and_then(|frame| self.dispatch(frame));
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

    fn dispatch(&mut self, frame: ClientFrame) -> Result<Flow, Refusal> {
        let login = match &self.state {
            State::AwaitingConnect => {
                return match frame {
                    ClientFrame::Connect { .. } => self.connect(frame),
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
        let flow = match frame {
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
                Flow::Continue
            }
            ClientFrame::Ack { transaction: Some(transaction), nack, id, headers, .. } => {
                let frame =
                    ClientFrame::Ack { nack, id, transaction: None, receipt: None, headers };
                self.enlist(&transaction, frame)?;
                Flow::Continue
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
                Flow::Continue
            }
            ClientFrame::Commit { transaction, .. } => {
                let frames = self
                    .transactions
                    .remove(&transaction)
                    .ok_or_else(|| unknown_tx(&transaction))?;
                for frame in frames {
                    self.execute(&login, frame)?;
                }
                Flow::Continue
            }
            ClientFrame::Abort { transaction, .. } => {
                self.transactions.remove(&transaction).ok_or_else(|| unknown_tx(&transaction))?;
                Flow::Continue
            }
            frame => {
                self.execute(&login, frame)?;
                Flow::Continue
            }
        };
        self.send_receipt(receipt);
        Ok(flow)
    }

    /// Performs SEND, SUBSCRIBE, UNSUBSCRIBE, ACK and NACK, outside any transaction.
    fn execute(&mut self, login: &str, frame: ClientFrame) -> Result<(), Refusal> {
        match frame {
            ClientFrame::Send { destination, headers, body, .. } => {
                self.send(login, &destination, headers, body)
            }
            ClientFrame::Subscribe { destination, id, ack, .. } => {
                self.subscribe(login, &destination, id, ack)
            }
            ClientFrame::Unsubscribe { id, .. } => self.unsubscribe(login, &id),
            ClientFrame::Ack { id, nack, .. } => {
                // NACK'd messages of a topic are discarded: "The server can then either send
                // the message to a different client, discard it, or put it in a dead letter
                // queue."
                if self.acks.settle(&id) {
                    Ok(())
                } else {
                    let command = if nack { "NACK" } else { "ACK" };
                    Err(Refusal::new(format!("{command} names unknown ack id {id:?}")))
                }
            }
            other => Err(Refusal::new(format!("{} is not allowed here", other.command()))),
        }
    }

    fn connect(&mut self, frame: ClientFrame) -> Result<Flow, Refusal> {
        let ClientFrame::Connect { accept_version, login, heart_beat, .. } = frame else {
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
        let login = login
            .ok_or_else(|| Refusal::new("login required: set the login header to your name"))?;
        validate_name(&login)
            .map_err(|reason| Refusal::new(format!("invalid login {login:?}: {reason}")))?;
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
        self.state = State::Connected { login };
        Ok(Flow::Connected(negotiated))
    }

    fn send(
        &mut self,
        login: &str,
        destination: &str,
        headers: Headers,
        body: Bytes,
    ) -> Result<(), Refusal> {
        match Destination::parse(destination).map_err(|error| Refusal::new(error.to_string()))? {
            Destination::Room(room) | Destination::AppRoom(room) => {
                let text = chat_text(&headers, &body)?;
                self.broker.say(&room, login, text);
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
                self.broker.publish(destination, &headers, &body);
            }
        }
        Ok(())
    }

    fn subscribe(
        &mut self,
        login: &str,
        destination: &str,
        id: String,
        ack: AckMode,
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
        let subscription: Arc<str> = id.into();
        let subscriber = Subscriber {
            session: self.id,
            subscription: subscription.clone(),
            ack,
            outbox: self.outbox.clone(),
        };
        match &parsed {
            Destination::Room(room) => self.broker.join_room(room, login, subscriber),
            Destination::Topic(_) => self.broker.subscribe_topic(destination, subscriber),
            Destination::AppRoom(room) => {
                return Err(Refusal::new(format!(
                    "cannot subscribe to {destination}: subscribe to {} instead",
                    Destination::room(room)
                )));
            }
        }
        self.subscriptions.insert(subscription, Subscription { destination: parsed });
        Ok(())
    }

    fn unsubscribe(&mut self, login: &str, id: &str) -> Result<(), Refusal> {
        // "This header MUST match the subscription identifier of an existing subscription."
        let subscription = self
            .subscriptions
            .remove(id)
            .ok_or_else(|| Refusal::new(format!("no subscription with id {id:?}")))?;
        self.end_subscription(login, id, &subscription);
        Ok(())
    }

    fn end_subscription(&self, login: &str, id: &str, subscription: &Subscription) {
        match &subscription.destination {
            Destination::Room(room) => self.broker.leave_room(room, login, self.id, id),
            destination => self.broker.unsubscribe_topic(&destination.to_string(), self.id, id),
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
                for (id, subscription) in std::mem::take(&mut self.subscriptions) {
                    self.end_subscription(&login, &id, &subscription);
                }
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
    }
}

fn unknown_tx(transaction: &str) -> Refusal {
    Refusal::new(format!("no transaction {transaction:?} was started"))
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// The text of a chat SEND: a `text/plain` body, or a JSON [`ClientEvent`].
fn chat_text(headers: &Headers, body: &[u8]) -> Result<String, Refusal> {
    let content_type = headers.get("content-type").unwrap_or("text/plain");
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    let text = match mime {
        "application/json" => match serde_json::from_slice::<ClientEvent>(body) {
            Ok(ClientEvent::Message { text }) => text,
            Err(error) => return Err(Refusal::new(format!("invalid chat event: {error}"))),
        },
        "text/plain" => String::from_utf8(body.to_vec())
            .map_err(|_| Refusal::new("chat message is not valid utf-8"))?,
        other => {
            return Err(Refusal::new(format!(
                "unsupported content-type {other:?} for a chat message: use text/plain or application/json"
            )));
        }
    };
    validate_text(&text).map_err(|reason| Refusal::new(reason.to_string()))?;
    Ok(text)
}
