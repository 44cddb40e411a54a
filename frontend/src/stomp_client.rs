//! The page's STOMP connection: opens a WebSocket to `/ws`, speaks `shared` frames over it,
//! and reconnects with backoff whenever it drops.
//!
//! Every frame is built as a typed [`ClientFrame`] and encoded by `shared`; every byte
//! received goes through `shared`'s [`Decoder`]. No STOMP text is written by hand here.

use bytes::{Bytes, BytesMut};
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::stream::{SplitSink, StreamExt};
use futures::{SinkExt, select};
use gloo_net::websocket::{Message, futures::WebSocket};
use gloo_timers::future::{IntervalStream, TimeoutFuture};
use leptos::prelude::*;
use shared::chat::{ClientEvent, Destination, RoomEvent};
use shared::stomp::{
    ClientFrame, Decoder, Headers, HeartBeat, Limits, ServerFrame, Version, encode_to_bytes,
};

use crate::model::{ChatState, Status};

/// Heart-beat interval asked of the server and promised to it, in ms.
const HEART_BEAT_MS: u32 = 10_000;
/// How often the connection checks its heart-beats.
const TICK_MS: u32 = 2_000;
/// Silence from the server, in ms, after which the connection is presumed dead.
const SERVER_SILENCE_MS: f64 = 2.5 * HEART_BEAT_MS as f64;
/// Reconnect delays, in seconds; the last one repeats.
const BACKOFF_SECS: [u32; 6] = [1, 2, 4, 8, 15, 30];

/// What the page asks the connection to do.
#[derive(Debug, Clone)]
pub enum Request {
    /// Say something in a room.
    Say {
        /// The room.
        room: String,
        /// The text, already validated.
        text: String,
    },
}

/// A handle for sending requests to the connection; cheap to clone.
#[derive(Debug, Clone)]
pub struct Connection {
    requests: UnboundedSender<Request>,
}

impl Connection {
    /// Starts connecting as `login`, subscribed to the state's room, and keeps the
    /// connection up for the life of the page.
    pub fn start(login: String, state: ChatState) -> Connection {
        let (requests, incoming) = unbounded();
        leptos::task::spawn_local(keep_connected(login, state, incoming));
        Connection { requests }
    }

    /// Queues a request; returns `false` if the connection task is gone.
    pub fn request(&self, request: Request) -> bool {
        self.requests.unbounded_send(request).is_ok()
    }
}

async fn keep_connected(login: String, state: ChatState, mut requests: UnboundedReceiver<Request>) {
    let mut failures = 0usize;
    let mut was_online = false;
    loop {
        state.status.set(Status::Connecting);
        let end = run_session(&login, state, &mut requests, was_online).await;
        if end.was_online {
            failures = 0;
            was_online = true;
        }
        let delay = BACKOFF_SECS[failures.min(BACKOFF_SECS.len() - 1)];
        failures += 1;
        // Spread reconnects so that a restarted server is not hit by every tab at once.
        let jitter_ms = (js_sys::Math::random() * 500.0) as u32;
        state.status.set(Status::Offline { reason: end.reason, retry_in_secs: delay });
        TimeoutFuture::new(delay * 1000 + jitter_ms).await;
    }
}

/// How a session ended.
struct SessionEnd {
    reason: String,
    was_online: bool,
}

/// Where the session is.
#[derive(PartialEq)]
enum Phase {
    AwaitingConnected,
    Online,
}

/// The browser origin's `/ws` endpoint, `wss:` under `https:`.
fn ws_url() -> String {
    let location = window().location();
    let scheme = if location.protocol().ok().as_deref() == Some("https:") { "wss" } else { "ws" };
    let host = location.host().unwrap_or_else(|_| "localhost".to_owned());
    format!("{scheme}://{host}/ws")
}

/// One WebSocket connection, from open to close.
async fn run_session(
    login: &str,
    state: ChatState,
    requests: &mut UnboundedReceiver<Request>,
    reconnecting: bool,
) -> SessionEnd {
    let ended = |reason: String, was_online: bool| SessionEnd { reason, was_online };
    let protocols = [Version::V1_2, Version::V1_1, Version::V1_0].map(Version::subprotocol);
    let socket = match WebSocket::open_with_protocols(&ws_url(), &protocols) {
        Ok(socket) => socket,
        Err(error) => return ended(format!("cannot open a connection: {error}"), false),
    };
    let (mut sink, stream) = socket.split();
    let mut stream = stream.fuse();
    let connect = ClientFrame::Connect {
        stomp_command: false,
        accept_version: Some("1.1,1.2".to_owned()),
        host: window().location().hostname().ok(),
        login: Some(login.to_owned()),
        passcode: None,
        heart_beat: HeartBeat { can_send_ms: HEART_BEAT_MS, want_receive_ms: HEART_BEAT_MS },
        headers: Headers::new(),
    };
    if let Err(reason) = write(&mut sink, connect).await {
        return ended(reason, false);
    }

    let mut decoder = Decoder::new(Limits { max_frame_bytes: 1 << 20, ..Limits::default() });
    let mut buf = BytesMut::new();
    let mut phase = Phase::AwaitingConnected;
    let mut ticks = IntervalStream::new(TICK_MS).fuse();
    let mut last_received = js_sys::Date::now();
    let mut last_sent = js_sys::Date::now();
    let room = state.room.get_untracked();

    let reason = 'session: loop {
        select! {
            message = stream.next() => {
                let data = match message {
                    Some(Ok(Message::Text(text))) => Bytes::from(text),
                    Some(Ok(Message::Bytes(data))) => Bytes::from(data),
                    Some(Err(error)) => break 'session format!("connection lost: {error}"),
                    None => break 'session "connection closed".to_owned(),
                };
                last_received = js_sys::Date::now();
                buf.extend_from_slice(&data);
                loop {
                    let frame = match decoder.decode(&mut buf) {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(error) => break 'session format!("bad frame from server: {error}"),
                    };
                    match ServerFrame::try_from(frame) {
                        Ok(ServerFrame::Connected { version, .. }) => {
                            decoder.set_version(version);
                            let subscribe = ClientFrame::Subscribe {
                                destination: Destination::room(&room),
                                id: format!("room.{room}"),
                                ack: Default::default(),
                                receipt: None,
                                headers: Headers::new(),
                            };
                            if let Err(reason) = write(&mut sink, subscribe).await {
                                break 'session reason;
                            }
                            last_sent = js_sys::Date::now();
                            phase = Phase::Online;
                            state.status.set(Status::Online);
                            if reconnecting {
                                state.reconnected();
                            }
                        }
                        Ok(ServerFrame::Message { body, .. }) => match serde_json::from_slice::<RoomEvent>(&body) {
                            Ok(event) => state.apply(event),
                            Err(error) => leptos::logging::warn!("ignoring an unreadable event: {error}"),
                        },
                        Ok(ServerFrame::Error { message, .. }) => {
                            let message = message.unwrap_or_else(|| "unknown error".to_owned());
                            state.error.set(Some(message.clone()));
                            break 'session format!("server error: {message}");
                        }
                        Ok(ServerFrame::Receipt { .. }) => {}
                        Err(error) => break 'session format!("bad frame from server: {error}"),
                    }
                }
            }
            request = requests.next() => {
                let Some(request) = request else { break 'session "page closed".to_owned() };
                if phase != Phase::Online {
                    state.error.set(Some("Not connected: the message was not sent".to_owned()));
                    continue;
                }
                let frame = match request {
                    Request::Say { room, text } => ClientFrame::Send {
                        destination: Destination::app_room(&room),
                        transaction: None,
                        receipt: None,
                        headers: [("content-type", "application/json")].into_iter().collect(),
                        body: Bytes::from(serde_json::to_vec(&ClientEvent::Message { text }).unwrap_or_default()),
                    },
                };
                if let Err(reason) = write(&mut sink, frame).await {
                    break 'session reason;
                }
                last_sent = js_sys::Date::now();
            }
            _ = ticks.next() => {
                let now = js_sys::Date::now();
                if now - last_received > SERVER_SILENCE_MS {
                    break 'session "the server stopped responding".to_owned();
                }
                // "if the sender has no real STOMP frame to send, it MUST send an end-of-line"
                if phase == Phase::Online && now - last_sent > f64::from(HEART_BEAT_MS) / 2.0 {
                    if sink.send(Message::Text("\n".to_owned())).await.is_err() {
                        break 'session "connection lost".to_owned();
                    }
                    last_sent = now;
                }
            }
        }
    };
    // Dropping a gloo WebSocket leaves the browser socket open: close it explicitly.
    if let Ok(socket) = sink.reunite(stream.into_inner()) {
        let _ = socket.close(Some(1000), Some("reconnecting"));
    }
    ended(reason, phase == Phase::Online)
}

/// Encodes and sends one frame.
async fn write(sink: &mut SplitSink<WebSocket, Message>, frame: ClientFrame) -> Result<(), String> {
    let bytes = encode_to_bytes(&frame.into_frame());
    let message = match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Message::Text(text),
        Err(error) => Message::Bytes(error.into_bytes()),
    };
    sink.send(message).await.map_err(|error| format!("connection lost: {error}"))
}
