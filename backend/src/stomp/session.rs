//! One STOMP session: the protocol state machine between a connection's decoded frames and
//! its outbox: CONNECT, receipts, transactions, rate limits, and closing.
//!
//! The session never touches the socket. It answers every frame by queueing frames (and at
//! most one [`Outgoing::Close`]) and tells the caller, through [`Flow`], what changed. What
//! a SEND or SUBSCRIBE means for chat is in [`super::routes`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shared::api::DEFAULT_REPLAY;
use shared::chat::{Notice, SINCE_HEADER};
use shared::stomp::{
    AckMode, ClientFrame, Frame, FrameError, Headers, HeartBeat, ServerFrame, Version,
    encode_to_bytes,
};

use super::Broker;
use super::rates::{self, Charge, SharedRates};
use super::refusal::{Refusal, Retry};
use super::routes::{self, Attachment, Send, Sent};
use crate::auth::token_hash;
use crate::delivery::{
    AckKind, AckLedger, FrameCache, Outbox, OutboxReceiver, Outgoing, Position, SessionId,
    Subscriber, notice_message,
};
use crate::engine::{Replay, SessionInfo};
use crate::metrics::{Limit, metrics};

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
    Connected(SessionInfo),
    Closed,
}

/// A frame held by an open transaction, checked when it was enlisted.
#[derive(Debug)]
enum Enlisted {
    Send(Send),
    Ack { id: String, nack: bool },
}

impl Enlisted {
    fn held_bytes(&self) -> usize {
        match self {
            Enlisted::Send(send) => send.held_bytes(),
            Enlisted::Ack { id, .. } => 64 + id.len(),
        }
    }
}

/// The versions this server speaks, for the ERROR of a failed negotiation.
const SUPPORTED_VERSIONS: &str = "1.0,1.1,1.2";

/// SENDs of one connection stored together at most.
const MAX_IN_FLIGHT: usize = 64;

/// A frame as it came: its receipt header, and what it parsed to.
type Parsed = (Option<String>, Result<ClientFrame, Refusal>);

/// A SEND outside a transaction.
fn is_plain_send(parsed: &Parsed) -> bool {
    matches!(parsed.1, Ok(ClientFrame::Send { transaction: None, .. }))
}

/// The largest id a client may name: ids are stored as signed 64-bit integers.
const MAX_SEQ: u64 = i64::MAX as u64;

/// A connection's STOMP state.
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    broker: Broker,
    outbox: Outbox,
    acks: AckLedger,
    state: State,
    subscriptions: HashMap<Arc<str>, Attachment>,
    transactions: HashMap<String, Vec<Enlisted>>,
    /// Bytes held by open transactions, across all of them.
    transaction_bytes: usize,
    /// The user's rate buckets on this node, once connected.
    rates: Option<SharedRates>,
    /// The user is a bot: their messages say so.
    bot: bool,
}

impl Session {
    /// The session's number on this node.
    pub fn id(&self) -> SessionId {
        self.id
    }

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
            transaction_bytes: 0,
            rates: None,
            bot: false,
        };
        (session, receiver, acks)
    }

    /// The user this session is logged in as, once connected.
    pub fn login(&self) -> Option<&str> {
        match &self.state {
            State::Connected(info) => Some(&info.login),
            _ => None,
        }
    }

    /// Handles one decoded frame.
    pub async fn handle(&mut self, frame: Frame) -> Flow {
        metrics().frame_in(frame.command.as_str());
        let receipt = frame.headers.get("receipt").map(str::to_owned);
        self.handle_parsed(receipt, ClientFrame::try_from(frame).map_err(Refusal::from)).await
    }

    /// Handles frames that arrived together, in order, as [`Session::handle`] would one by
    /// one, except that a run of SENDs that store messages is stored together: each still
    /// in its own write and answered in order, but without waiting for one commit each, so
    /// a busy publisher is not held to one message per commit. Stops at the first frame
    /// that ends the session; SENDs of the run after it may be stored already, without a
    /// RECEIPT (only a RECEIPT promises anything).
    ///
    /// Only for a connected session: CONNECT must be handled alone, since it decides how
    /// the frames after it are decoded.
    pub async fn handle_all(&mut self, frames: Vec<Frame>) -> Flow {
        let mut queue: VecDeque<Parsed> = frames
            .into_iter()
            .map(|frame| {
                metrics().frame_in(frame.command.as_str());
                let receipt = frame.headers.get("receipt").map(str::to_owned);
                (receipt, ClientFrame::try_from(frame).map_err(Refusal::from))
            })
            .collect();
        while let Some(first) = queue.pop_front() {
            let flow = if is_plain_send(&first) && queue.front().is_some_and(is_plain_send) {
                let mut run = vec![first];
                while run.len() < MAX_IN_FLIGHT
                    && let Some(next) = queue.pop_front_if(|parsed| is_plain_send(parsed))
                {
                    run.push(next);
                }
                let (flow, rest) = self.send_all(run).await;
                for parsed in rest.into_iter().rev() {
                    queue.push_front(parsed);
                }
                flow
            } else {
                let (receipt, parsed) = first;
                self.handle_parsed(receipt, parsed).await
            };
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// A run of SENDs outside transactions: those from the start that store a message and
    /// pass their checks and rates go to the store together; the rest are handed back, to
    /// be handled one by one.
    async fn send_all(&mut self, run: Vec<Parsed>) -> (Flow, Vec<Parsed>) {
        let Some(login) = self.login().map(str::to_owned) else { return (Flow::Close, Vec::new()) };
        let mut sends = Vec::new();
        let mut run = run.into_iter();
        let mut rest = Vec::new();
        for (receipt, parsed) in run.by_ref() {
            // Checked on copies (the body is shared, not copied): a SEND that does not
            // qualify is handled as it came.
            let checked = match &parsed {
                Ok(ClientFrame::Send { destination, headers, body, .. }) => self
                    .check_send(destination, headers.clone(), body.clone())
                    .ok()
                    .filter(Send::stores)
                    .filter(|send| self.charge(send.charge()).is_ok()),
                _ => None,
            };
            match checked {
                Some(send) => sends.push((receipt, send)),
                None => {
                    rest.push((receipt, parsed));
                    break;
                }
            }
        }
        rest.extend(run);
        if sends.is_empty() {
            // The first does not qualify: it is handled alone, and the rest go back.
            let mut rest = rest.into_iter();
            let flow = match rest.next() {
                Some((receipt, parsed)) => self.handle_parsed(receipt, parsed).await,
                None => Flow::Continue,
            };
            return (flow, rest.collect());
        }
        let engine = self.broker.engine().clone();
        let posts = sends
            .iter()
            .map(|(_, send)| send.to_post(&login, self.bot).into_iter().collect())
            .collect();
        let outcomes = engine.post_each(posts).await;
        for ((receipt, send), outcome) in sends.into_iter().zip(outcomes) {
            let sent = send.answer(&engine, &login, outcome.map(drop)).await;
            let flow = match self.conclude(&login, receipt.clone(), true, sent) {
                Ok(flow) => flow,
                Err(refusal) => self.refuse(refusal, receipt),
            };
            if flow != Flow::Continue {
                return (flow, Vec::new());
            }
        }
        (Flow::Continue, rest)
    }

    async fn handle_parsed(
        &mut self,
        receipt: Option<String>,
        parsed: Result<ClientFrame, Refusal>,
    ) -> Flow {
        let result = match parsed {
            Ok(frame) => self.dispatch(frame).await,
            Err(refusal) => Err(refusal),
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
                    ClientFrame::Connect {
                        accept_version, login, passcode, heart_beat, ..
                    } => self.connect(accept_version, login, passcode, heart_beat).await,
                    other => Err(Refusal::new(format!(
                        "expected CONNECT or STOMP as the first frame, got {}",
                        other.command()
                    ))),
                };
            }
            State::Connected(info) => info.login.clone(),
            State::Closed => return Ok(Flow::Close),
        };
        let receipt = frame.receipt().map(str::to_owned);
        if let ClientFrame::Disconnect { .. } = frame {
            self.send_receipt(receipt);
            self.close();
            return Ok(Flow::Close);
        }
        let is_send = matches!(frame, ClientFrame::Send { transaction: None, .. });
        let sent = self.handle_connected(&login, frame).await;
        self.conclude(&login, receipt, is_send, sent)
    }

    /// What follows a frame's outcome: its RECEIPT, a notice, or the refusal that ends the
    /// session.
    fn conclude(
        &mut self,
        login: &str,
        receipt: Option<String>,
        is_send: bool,
        sent: Result<Sent, Refusal>,
    ) -> Result<Flow, Refusal> {
        match sent {
            Ok(Sent::Done) => {
                self.send_receipt(receipt);
                Ok(Flow::Continue)
            }
            // Refused with a notice (no RECEIPT), or the RECEIPT comes after a replay.
            Ok(Sent::RefusedWithNotice | Sent::ReceiptLater) => Ok(Flow::Continue),
            // Only a SEND hears "not accepted": anything else the store could not do ends
            // the session, and the client starts over.
            Err(refusal) if refusal.retry == Retry::Later && !is_send => Err(refusal),
            Err(refusal) => self.refused_softly(login, receipt, refusal),
        }
    }

    /// Every frame after CONNECT.
    async fn handle_connected(&mut self, login: &str, frame: ClientFrame) -> Result<Sent, Refusal> {
        match frame {
            ClientFrame::Connect { .. } => Err(Refusal::new("already connected")),
            ClientFrame::Disconnect { .. } => unreachable!("handled by dispatch"),
            ClientFrame::Send {
                transaction: Some(transaction),
                destination,
                headers,
                body,
                ..
            } => {
                // Checked now, not at COMMIT: a transaction holds only frames that can run.
                let send = self.check_send(&destination, headers, body)?;
                self.charge(send.charge())?;
                self.enlist(&transaction, Enlisted::Send(send))?;
                Ok(Sent::Done)
            }
            ClientFrame::Send { destination, headers, body, .. } => {
                let send = self.check_send(&destination, headers, body)?;
                self.charge(send.charge())?;
                send.run(self.broker.engine(), login, self.bot).await
            }
            ClientFrame::Ack { transaction: Some(transaction), nack, id, .. } => {
                self.enlist(&transaction, Enlisted::Ack { id, nack })?;
                Ok(Sent::Done)
            }
            ClientFrame::Ack { id, nack, .. } => self.settle(&id, nack).map(|()| Sent::Done),
            ClientFrame::Subscribe { destination, id, ack, headers, receipt } => {
                self.charge(Charge::Subscription)?;
                self.subscribe(login, &destination, id, ack, &headers, receipt).await
            }
            ClientFrame::Unsubscribe { id, .. } => {
                self.charge(Charge::Subscription)?;
                self.unsubscribe(login, &id)?;
                Ok(Sent::Done)
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
                Ok(Sent::Done)
            }
            ClientFrame::Commit { transaction, .. } => {
                self.commit(login, &transaction).await.map_err(fatal)?;
                Ok(Sent::Done)
            }
            ClientFrame::Abort { transaction, .. } => {
                self.end_transaction(&transaction)?;
                Ok(Sent::Done)
            }
        }
    }

    /// COMMIT: every message the transaction holds is stored in one transaction of the
    /// store, all or none (security review L4), and delivered; then its other frames run
    /// in order (typing, topic publications, ACKs).
    async fn commit(&mut self, login: &str, transaction: &str) -> Result<(), Refusal> {
        let enlisted = self.end_transaction(transaction)?;
        let engine = self.broker.engine().clone();
        let posts: Vec<_> = enlisted
            .iter()
            .filter_map(|frame| match frame {
                Enlisted::Send(send) => send.to_post(login, self.bot),
                Enlisted::Ack { .. } => None,
            })
            .collect();
        if !posts.is_empty() {
            engine.post(posts).await.map_err(|error| {
                let refusal = Refusal::from(error);
                Refusal::new(format!(
                    "transaction {transaction:?} was not committed, nothing of it was stored: {}",
                    refusal.message
                ))
            })?;
        }
        for frame in enlisted {
            match frame {
                Enlisted::Send(Send::Dm { to, .. }) => {
                    routes::tell_if_offline(&engine, login, &to).await;
                }
                Enlisted::Send(send) if !send.stores() => {
                    send.run(&engine, login, self.bot).await?;
                }
                Enlisted::Send(_) => {}
                Enlisted::Ack { id, nack } => self.settle(&id, nack)?,
            }
        }
        Ok(())
    }

    /// A refusal that may be told as a notice rather than an ERROR. A SEND the store could
    /// not take gets `not_accepted` on the session's notice subscription; a frame over a
    /// rate limit gets `rate_limited` and costs a strike. A client out of strikes, or one
    /// that does not listen for notices when the store is away, gets the ERROR after all.
    fn refused_softly(
        &mut self,
        login: &str,
        receipt: Option<String>,
        refusal: Refusal,
    ) -> Result<Flow, Refusal> {
        match refusal.retry {
            Retry::Never => Err(refusal),
            Retry::Later => {
                let notice = Notice::NotAccepted { receipt, reason: refusal.message.clone() };
                if self.tell(login, notice) { Ok(Flow::Continue) } else { Err(refusal) }
            }
            Retry::Denied => {
                let notice = Notice::Denied { receipt, reason: refusal.message.clone() };
                if self.tell(login, notice) { Ok(Flow::Continue) } else { Err(refusal) }
            }
            Retry::After(wait) => {
                let tolerated = self.rates.as_ref().is_none_or(|rates| rates::lock(rates).strike());
                if !tolerated {
                    return Err(Refusal::new(
                        "rate limit exceeded: too many frames refused, slow down",
                    ));
                }
                let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                // A client that does not listen for notices loses the frame, without a
                // RECEIPT; its strikes still run out.
                self.tell(login, Notice::RateLimited { receipt, retry_after_ms });
                Ok(Flow::Continue)
            }
        }
    }

    /// A SEND's destination (after prefix aliases) and content, checked.
    fn check_send(
        &self,
        destination: &str,
        headers: Headers,
        body: Bytes,
    ) -> Result<Send, Refusal> {
        let topics = self.broker.config().generic_topics;
        Send::check(&self.broker.canonical(destination), headers, body, topics)
    }

    /// Takes a token for `charge` from the user's buckets.
    fn charge(&self, charge: Charge) -> Result<(), Refusal> {
        match &self.rates {
            Some(rates) => rates::lock(rates).take(charge).map_err(|retry| {
                metrics().limited(match charge {
                    Charge::Message => Limit::Send,
                    Charge::Typing => Limit::Typing,
                    Charge::Subscription => Limit::Subscribe,
                    Charge::Topic => Limit::Topic,
                });
                Refusal::rate_limited(retry)
            }),
            None => Ok(()),
        }
    }

    /// ACK or NACK outside a transaction, or at its COMMIT.
    fn settle(&self, id: &str, nack: bool) -> Result<(), Refusal> {
        // NACK'd messages of a topic are discarded: "The server can then either send the
        // message to a different client, discard it, or put it in a dead letter queue."
        if self.acks.settle(id) {
            Ok(())
        } else {
            let command = if nack { "NACK" } else { "ACK" };
            Err(Refusal::new(format!("{command} names unknown ack id {id:?}")))
        }
    }

    async fn connect(
        &mut self,
        accept_version: Option<String>,
        login: Option<String>,
        passcode: Option<String>,
        heart_beat: HeartBeat,
    ) -> Result<Flow, Refusal> {
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
        let token_hash = token_hash(&passcode);
        let owner = self.broker.engine().token_identity(&token_hash).await?;
        let Some(identity) = owner.filter(|identity| identity.name == login) else {
            return Err(authentication_failed());
        };
        self.bot = identity.bot;
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
        let info = SessionInfo { id: self.id, login, token_hash };
        self.broker.engine().session_opened(&info, self.outbox.clone()).await?;
        self.rates = Some(self.broker.rates_of(&info.login));
        tracing::Span::current().record("user", tracing::field::display(&info.login));
        tracing::debug!(version = %negotiated.version, "signed in");
        self.state = State::Connected(info);
        Ok(Flow::Connected(negotiated))
    }

    /// Queues a notice on this session's own notice subscription; `false` if it has none.
    fn tell(&self, login: &str, notice: Notice) -> bool {
        let Some(subscription) = self
            .subscriptions
            .iter()
            .find(|(_, attachment)| attachment.is_notices_of(login))
            .map(|(id, _)| id.clone())
        else {
            return false;
        };
        self.outbox
            .push(FrameCache::new(&notice_message(&notice)).outgoing(&subscription, AckKind::None));
        true
    }

    async fn subscribe(
        &mut self,
        login: &str,
        destination: &str,
        id: String,
        ack: AckMode,
        headers: &Headers,
        receipt: Option<String>,
    ) -> Result<Sent, Refusal> {
        // "Within the same connection, different subscriptions MUST use different
        // subscription identifiers."
        if self.subscriptions.contains_key(id.as_str()) {
            return Err(Refusal::new(format!("subscription id {id:?} is already in use")));
        }
        if self.subscriptions.len() >= self.broker.config().max_subscriptions {
            return Err(Refusal::new("too many subscriptions"));
        }
        let replay = match headers.get(SINCE_HEADER) {
            None => Replay::Latest(DEFAULT_REPLAY),
            Some(text) => Replay::Since(
                text.parse().ok().filter(|&since| since <= MAX_SEQ).ok_or_else(|| {
                    Refusal::new(format!(
                        "invalid since header {text:?}: expected the last seq you have, a number below 2^63"
                    ))
                })?,
            ),
        };
        let subscription: Arc<str> = id.into();
        let subscriber = Subscriber {
            session: self.id,
            login: login.into(),
            subscription: subscription.clone(),
            ack,
            outbox: self.outbox.clone(),
            acks: self.acks.clone(),
            position: Arc::new(Position::default()),
        };
        let engine = self.broker.engine();
        let (attachment, sent) = routes::attach(
            engine,
            login,
            &self.broker.canonical(destination),
            subscriber,
            replay,
            receipt,
            self.broker.config().generic_topics,
        )
        .await?;
        self.subscriptions.insert(subscription, attachment);
        metrics().subscriptions.inc();
        Ok(sent)
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
        metrics().subscriptions.dec();
        routes::detach(self.broker.engine(), login, attachment, self.id, id);
        self.acks.forget(id);
    }

    fn enlist(&mut self, transaction: &str, frame: Enlisted) -> Result<(), Refusal> {
        let config = self.broker.config();
        let (frame_limit, byte_limit) =
            (config.max_transaction_frames, config.max_transaction_bytes);
        let frames =
            self.transactions.get_mut(transaction).ok_or_else(|| unknown_tx(transaction))?;
        if frames.len() >= frame_limit {
            return Err(Refusal::new(format!("transaction {transaction:?} holds too many frames")));
        }
        let size = frame.held_bytes();
        if self.transaction_bytes + size > byte_limit {
            return Err(Refusal::new(format!(
                "open transactions hold more than {byte_limit} bytes: commit or abort first"
            )));
        }
        self.transaction_bytes += size;
        frames.push(frame);
        Ok(())
    }

    /// Removes a transaction (COMMIT or ABORT), giving back the bytes it held.
    fn end_transaction(&mut self, transaction: &str) -> Result<Vec<Enlisted>, Refusal> {
        let frames =
            self.transactions.remove(transaction).ok_or_else(|| unknown_tx(transaction))?;
        self.transaction_bytes -= frames.iter().map(Enlisted::held_bytes).sum::<usize>();
        Ok(frames)
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
        // The refusal's message is not logged: it may quote what the client sent.
        tracing::debug!("refusing a frame: ERROR, then close");
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
            State::Connected(info) => {
                for (id, attachment) in std::mem::take(&mut self.subscriptions) {
                    self.detach(&info.login, &id, &attachment);
                }
                self.broker.engine().session_closed(&info);
            }
        }
        self.transactions.clear();
        self.transaction_bytes = 0;
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

/// Inside a COMMIT, nothing is told softly: a frame that fails fails the commit.
fn fatal(refusal: Refusal) -> Refusal {
    Refusal { retry: Retry::Never, ..refusal }
}

fn unknown_tx(transaction: &str) -> Refusal {
    Refusal::new(format!("no transaction {transaction:?} was started"))
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}
