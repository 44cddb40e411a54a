//! The only module that touches WebSockets: the `/ws` upgrade, subprotocol negotiation, and
//! the two loops that move bytes between a socket and its [`Session`]; and in [`json`], the
//! original design's plain JSON endpoint (`/room`).
//!
//! - The read loop appends each WebSocket message to a buffer, decodes every complete
//!   frame, and hands it to the session. It enforces the CONNECT deadline and the client's
//!   heart-beat, and stops the session on shutdown.
//! - The write loop drains the session's outbox into the socket, several frames per flush,
//!   sends heart-beat EOLs when idle, and closes a slow consumer with an ERROR.

mod json;

use std::time::Duration;

pub use json::upgrade as upgrade_json;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use shared::stomp::{Decoder, ServerFrame, Version, encode_to_bytes};
use tokio::time::{Instant, sleep_until};

use tracing::Instrument;

use crate::AppState;
use crate::delivery::{AckLedger, AckRef, OutboxReceiver, Outgoing};
use crate::http::HttpError;
use crate::limits::{ClientAddress, ConnectionSlot, SlotRefused};
use crate::metrics;
use crate::shutdown::ShutdownGuard;
use crate::stomp::{BrokerConfig, Flow, Session};

/// The subprotocols we speak, best first: "the highest the client offers wins".
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Frames written per flush at most, so one busy connection cannot starve the heart-beat.
const WRITE_BATCH: usize = 64;

/// Per-connection WebSocket buffers. tungstenite's defaults reserve 128 KiB each way.
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// `GET /ws`: upgrades to WebSocket with a STOMP subprotocol.
///
/// Refused before the upgrade: a page from another site (403: its `Origin` is neither this
/// server nor an `--allowed-origin`), a node at its connection cap (503) and an address at
/// its own (429).
pub async fn upgrade(
    State(app): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let slot = match admit(&app, &address, &headers) {
        Ok(slot) => slot,
        Err(refused) => return refused.into_response(),
    };
    let offered: Vec<String> = ws
        .requested_protocols()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(',').map(|name| name.trim().to_owned()))
        .collect();
    let speaks_stomp = offered.iter().any(|name| Version::from_subprotocol(name).is_some());
    if !offered.is_empty() && !speaks_stomp {
        return HttpError::bad_request(format!(
            "unsupported websocket subprotocol {offered:?}: offer v12.stomp, v11.stomp or v10.stomp"
        ))
        .into_response();
    }
    let max_frame = app.broker.config().limits.max_frame_bytes;
    // A WebSocket message may carry several frames; one far over the frame limit is cut off
    // by the WebSocket layer, and a frame over it by the STOMP decoder, with a clear ERROR.
    let max_message = 2 * max_frame + 4096;
    ws.protocols(SUBPROTOCOLS)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES + 2 * max_message)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve(socket, app, slot))
}

/// What every WebSocket upgrade passes first: the origin check (403) and a connection slot
/// (503 when the node is full, 429 when the address is).
fn admit(
    app: &AppState,
    address: &ClientAddress,
    headers: &HeaderMap,
) -> Result<ConnectionSlot, HttpError> {
    check_origin(headers, &app.allowed_origins)?;
    app.protection.connections.admit(address.key()).map_err(|refused| {
        metrics::metrics().limited(metrics::Limit::Connections);
        let status = match refused {
            SlotRefused::Full => StatusCode::SERVICE_UNAVAILABLE,
            SlotRefused::TooManyFromAddress => StatusCode::TOO_MANY_REQUESTS,
        };
        HttpError::new(status, refused.to_string()).retry_after(Duration::from_secs(5))
    })
}

/// A browser sends the page's origin with every WebSocket upgrade; a page may connect only
/// to the server that served it, or to one that lists its origin. Clients that are not
/// browsers send no `Origin` and are not affected (they authenticate with a token anyway:
/// this keeps other sites' pages from using a visitor's browser as a client).
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), HttpError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok()).unwrap_or_default();
    let authority = origin.split_once("://").map_or("", |(_, authority)| authority);
    let same_site = !host.is_empty() && authority.eq_ignore_ascii_case(host);
    let listed =
        allowed.iter().any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if same_site || listed {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::FORBIDDEN,
            format!("pages from {origin:?} may not connect here (see --allowed-origin)"),
        ))
    }
}

/// Runs one connection to its end; its slot is given back when it returns.
///
/// Every line logged about the connection, by any layer, names it and (once CONNECT has
/// said) its user: the read and write loops run in its span. The loops are instrumented,
/// not this function: an async wrapper taking the session as an argument would hold it
/// (and the socket) twice in every connection's future.
async fn serve(socket: WebSocket, app: AppState, _slot: ConnectionSlot) {
    let _open = metrics::Open::new(&metrics::metrics().stomp_connections);
    let (session, outbox, acks) = app.broker.open_session();
    let span = connection_span(session.id(), None);
    span.in_scope(|| tracing::debug!("connection opened"));
    let (sink, stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(sink, outbox, acks).instrument(span.clone()));
    let reader = read_loop(stream, session, app.guards.guard(), app.broker.config());
    tokio::select! {
        () = reader.instrument(span) => {}
        _ = &mut writer => return,
    }
    // The session is gone, so the writer drains the outbox, closes, and ends. A client that
    // stops reading cannot hold it forever.
    if tokio::time::timeout(Duration::from_secs(10), &mut writer).await.is_err() {
        writer.abort();
    }
}

/// The span of one connection's log lines: `connection{id user}`. The session records the
/// user when CONNECT succeeds.
pub(crate) fn connection_span(id: u64, user: Option<&str>) -> tracing::Span {
    tracing::info_span!("connection", id, user = user.map(tracing::field::display))
}

async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    mut session: Session,
    mut guard: ShutdownGuard,
    config: &BrokerConfig,
) {
    let mut decoder = Decoder::new(config.limits);
    let mut buf = BytesMut::new();
    // Until CONNECT, the deadline is fixed: a socket that has not signed in within the
    // connect timeout is closed whatever else it sends. After CONNECT, the deadline moves
    // with every message, by the client's heart-beat.
    let mut silence_limit = None;
    let mut deadline = Some(Instant::now() + config.connect_timeout);
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            () = sleep_until_opt(deadline) => {
                let reason = if session.login().is_some() {
                    "heart-beat timeout: no data received from the client"
                } else {
                    "timed out waiting for CONNECT"
                };
                session.abort(reason);
                return;
            }
            () = guard.stopping() => {
                session.abort("server is shutting down");
                return;
            }
        };
        // "any new data received over the network connection is an indication that the
        // remote end is alive"
        if let Some(limit) = silence_limit {
            deadline = Some(Instant::now() + limit);
        }
        // Whatever else has already arrived is taken now too: a burst of SENDs is then
        // handled together, and stored without one commit each.
        let mut end = None;
        let mut taken = 0;
        let mut next = Input::from(message);
        loop {
            match next {
                Input::Data(data) => {
                    taken += data.len();
                    buf.extend_from_slice(&data);
                }
                Input::End => {
                    end = Some(None);
                    break;
                }
                Input::Failed(error) => {
                    end = Some(Some(error));
                    break;
                }
            }
            if taken > DRAIN_BYTES {
                break;
            }
            match stream.next().now_or_never() {
                Some(message) => next = Input::from(message),
                None => break,
            }
        }
        let mut frames = Vec::new();
        let flow = loop {
            match decoder.decode(&mut buf) {
                // Until CONNECT, one frame at a time: CONNECT decides how the rest decode.
                Ok(Some(frame)) if session.login().is_none() => {
                    // Boxed: handling a frame may await the store through deep futures,
                    // and inline they would enlarge every connection's task for its life.
                    match Box::pin(session.handle(frame)).await {
                        Flow::Continue => {}
                        Flow::Connected(negotiated) => {
                            decoder.set_version(negotiated.version);
                            // "because of timing inaccuracies, the receiver SHOULD be
                            // tolerant and take into account an error margin"
                            silence_limit = negotiated
                                .client_heart_beat
                                .map(|every| every * 2 + Duration::from_millis(500));
                            deadline = silence_limit.map(|limit| Instant::now() + limit);
                        }
                        Flow::Close => break Flow::Close,
                    }
                }
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break Flow::Continue,
                Err(error) => {
                    let flow = Box::pin(session.handle_all(std::mem::take(&mut frames))).await;
                    if flow == Flow::Close {
                        break flow;
                    }
                    break session.malformed(error);
                }
            }
        };
        if flow == Flow::Close {
            return;
        }
        if !frames.is_empty() && Box::pin(session.handle_all(frames)).await == Flow::Close {
            return;
        }
        match end {
            None => {}
            Some(None) => return,
            Some(Some(error)) => {
                // Mostly a message over the size limit; the socket may still take an ERROR.
                session.abort(&format!("websocket error: {error}"));
                return;
            }
        }
    }
}

/// Bytes taken from the socket at once, at most (and a message more).
const DRAIN_BYTES: usize = 64 * 1024;

/// What one read from the socket brought.
enum Input {
    /// Bytes of frames (none for a ping or pong).
    Data(Bytes),
    /// The client closed the connection.
    End,
    /// The connection failed.
    Failed(String),
}

impl From<Option<Result<Message, axum::Error>>> for Input {
    fn from(message: Option<Result<Message, axum::Error>>) -> Input {
        match message {
            Some(Ok(Message::Text(text))) => Input::Data(Bytes::from(text)),
            Some(Ok(Message::Binary(data))) => Input::Data(data),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Input::Data(Bytes::new()),
            Some(Ok(Message::Close(_))) | None => Input::End,
            Some(Err(error)) => Input::Failed(error.to_string()),
        }
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: OutboxReceiver,
    acks: AckLedger,
) {
    let overflow = outbox.overflow_signal();
    let mut heart_beat: Option<Duration> = None;
    let mut last_write = Instant::now();
    let mut written = Written::new();
    loop {
        // An atomic load per turn: a push that failed because the outbox was full must end
        // the connection even while the writer keeps draining.
        if overflow.happened() {
            metrics::metrics().slow_consumers.inc();
            close_with_error(
                &mut sink,
                "slow consumer: too many frames queued for this connection",
                "slow consumer",
            )
            .await;
            return;
        }
        let next_beat = heart_beat.map(|every| last_write + every);
        // Branches are polled in order and the first ready one wins, so on the busy path
        // only `recv` and the write are polled; the overflow signal and the heart-beat
        // timer are only set up when the writer would wait anyway.
        let step = tokio::select! {
            biased;
            item = outbox.recv() => {
                tokio::select! {
                    biased;
                    step = write_batch(&mut sink, &mut outbox, &acks, item, &mut heart_beat, &mut written) => step,
                    // A consumer that stops reading blocks this write; the overflow signal
                    // still ends the connection.
                    () = overflow.wait() => Step::Overflowed,
                }
            }
            () = overflow.wait() => Step::Overflowed,
            () = sleep_until_opt(next_beat) => {
                metrics::metrics().frames_out("HEARTBEAT", 1);
                written.begin();
                match sink.send(Message::Text(Utf8Bytes::from_static("\n"))).await {
                    Ok(()) => Step::Wrote,
                    Err(_) => Step::Stop,
                }
            }
        };
        match step {
            Step::Wrote => last_write = Instant::from_std(written.started),
            Step::Idle => {}
            Step::Stop => return,
            Step::Overflowed => {
                metrics::metrics().slow_consumers.inc();
                let error = "slow consumer: too many frames queued for this connection";
                close_with_error(&mut sink, error, "slow consumer").await;
                return;
            }
            Step::Refused(error) => {
                close_with_error(&mut sink, &error, "too many unacknowledged messages").await;
                return;
            }
        }
    }
}

/// What one turn of the write loop did.
enum Step {
    /// Sent something.
    Wrote,
    /// Sent nothing, e.g. only changed the heart-beat.
    Idle,
    /// The connection is closed or must close now.
    Stop,
    /// The outbox overflowed: close as a slow consumer.
    Overflowed,
    /// The client broke a rule while being written to: close with this ERROR.
    Refused(String),
}

/// Writes `first` and whatever else is already queued, up to [`WRITE_BATCH`] frames, with
/// one flush.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    outbox: &mut OutboxReceiver,
    acks: &AckLedger,
    first: Option<Outgoing>,
    heart_beat: &mut Option<Duration>,
    written: &mut Written,
) -> Step {
    written.begin();
    let mut next = first;
    loop {
        match next {
            None | Some(Outgoing::Close) => {
                let _ = sink.flush().await;
                let _ = sink.close().await;
                written.count();
                return Step::Stop;
            }
            Some(Outgoing::HeartBeat(every)) => *heart_beat = Some(every),
            Some(Outgoing::Frame { bytes, ack, queued_at }) => {
                written.add(&bytes, queued_at);
                if let Err(step) = write_frame(sink, acks, bytes, ack).await {
                    return step;
                }
            }
        }
        if written.frames >= WRITE_BATCH {
            break;
        }
        match outbox.try_recv() {
            Some(item) => next = Some(item),
            None => break,
        }
    }
    if written.frames == 0 {
        return Step::Idle;
    }
    let flushed = sink.flush().await;
    written.count();
    match flushed {
        Ok(()) => Step::Wrote,
        Err(_) => Step::Stop,
    }
}

/// What one batch wrote: MESSAGE frames, counted once the batch is flushed, each with its
/// delivery latency; other commands at once. Kept by the write loop (small: every
/// connection holds one), read from the clock once per batch.
struct Written {
    /// When the batch began; also when the connection last wrote.
    started: std::time::Instant,
    /// The same moment, as the stamps queued frames carry.
    started_stamp: metrics::Stamp,
    frames: usize,
    messages: u64,
}

impl Written {
    fn new() -> Written {
        let started = std::time::Instant::now();
        Written { started, started_stamp: metrics::Stamp::at(started), frames: 0, messages: 0 }
    }

    fn begin(&mut self) {
        self.started = std::time::Instant::now();
        self.started_stamp = metrics::Stamp::at(self.started);
    }

    fn add(&mut self, frame: &[u8], queued_at: Option<metrics::Stamp>) {
        match queued_at {
            Some(queued_at) => {
                let took = self.started_stamp.since(queued_at);
                metrics::metrics().delivery_latency.observe(took);
                self.messages += 1;
            }
            // Receipts, errors, CONNECTED: rare, counted at once.
            None => metrics::metrics().frames_out(metrics::command_of(frame), 1),
        }
        self.frames += 1;
    }

    fn count(&mut self) {
        if self.messages > 0 {
            metrics::metrics().frames_out("MESSAGE", self.messages);
            self.messages = 0;
        }
        self.frames = 0;
    }
}

/// Records a delivery that needs an ACK, then queues the frame in the socket's buffer.
async fn write_frame(
    sink: &mut SplitSink<WebSocket, Message>,
    acks: &AckLedger,
    bytes: Bytes,
    ack: Option<AckRef>,
) -> Result<(), Step> {
    if let Some(delivery) = ack {
        acks.record(delivery).map_err(|error| Step::Refused(error.to_string()))?;
    }
    sink.feed(ws_message(bytes)).await.map_err(|_| Step::Stop)
}

/// Sends an ERROR that skips the queue, then closes. A peer that does not read gets a
/// second to take it; after that the connection is simply dropped.
async fn close_with_error(
    sink: &mut SplitSink<WebSocket, Message>,
    message: &str,
    reason: &'static str,
) {
    tracing::info!(message, "closing connection");
    let frame = ServerFrame::error(message, None);
    let goodbye = async {
        sink.send(ws_message(encode_to_bytes(&frame.into_frame()))).await?;
        let close = CloseFrame { code: close_code::POLICY, reason: Utf8Bytes::from_static(reason) };
        sink.send(Message::Close(Some(close))).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), goodbye).await;
}

/// A frame goes out as a text message when it is UTF-8, as binary otherwise.
fn ws_message(bytes: Bytes) -> Message {
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(bytes),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
