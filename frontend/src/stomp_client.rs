//! The page's STOMP connection: opens a WebSocket to `/ws`, speaks `shared` frames over it,
//! and reconnects with backoff whenever it drops.
//!
//! On every (re)connect it subscribes to the user's queues and joined rooms, each resumed
//! with `since` from the last id the page holds, then resends every unconfirmed message
//! with its idempotency key: nothing is lost, nothing is doubled.
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
use shared::chat::{
    ClientEvent, Destination, DirectMessage, DirectoryEvent, IDEMPOTENCY_HEADER, Notice, ROOMS,
    RoomEvent, SINCE_HEADER, USER_DM, USER_NOTICES,
};
use shared::stomp::{
    ClientFrame, Decoder, Headers, HeartBeat, Limits, ServerFrame, encode_to_bytes,
};

use crate::model::{ChatState, Conv, Pending, Status};

/// Heart-beat interval asked of the server and promised to it, in ms.
const HEART_BEAT_MS: u32 = 10_000;
/// How often the connection checks heart-beats and overdue receipts.
const TICK_MS: u32 = 1_000;
/// Silence from the server, in ms, after which the connection is presumed dead.
const SERVER_SILENCE_MS: f64 = 2.5 * HEART_BEAT_MS as f64;
/// Reconnect delays, in seconds; the last one repeats.
const BACKOFF_SECS: [u32; 6] = [1, 2, 4, 8, 15, 30];
/// The subscription ids of the user's queues.
const DM_SUBSCRIPTION: &str = "dm";
const NOTICES_SUBSCRIPTION: &str = "notices";
/// The subscription id of the room directory's announcements.
const ROOMS_SUBSCRIPTION: &str = "rooms";
/// The ERROR message the server sends for a bad or expired token.
const AUTHENTICATION_FAILED: &str = "authentication failed";
/// How the server's ERROR begins when it ends a session whose token was revoked (signed
/// out elsewhere).
const SIGNED_OUT: &str = "signed out";

/// What the page asks the connection to do.
#[derive(Debug, Clone)]
pub enum Request {
    /// Send the pending message with this key in this conversation.
    Send {
        /// Where.
        conv: Conv,
        /// The message, with its idempotency key.
        message: Pending,
    },
    /// Edit, delete or react to a message of a room or a direct conversation.
    Change {
        /// Where.
        conv: Conv,
        /// The edit, deletion or reaction.
        event: ClientEvent,
    },
    /// Tell a room that the user is typing.
    Typing(String),
    /// Start receiving a room, resuming after the last id the page holds.
    Subscribe(String),
    /// Stop receiving a room.
    Unsubscribe(String),
}

/// A handle for sending requests to the connection; cheap to clone.
#[derive(Debug, Clone)]
pub struct Connection {
    requests: UnboundedSender<Request>,
}

impl Connection {
    /// Starts connecting and keeps the connection up for the life of the page.
    /// `on_signed_out` runs if the server no longer accepts the token.
    /// `ready` completes once the page holds the resume points (room list, inbox).
    pub fn start(
        state: ChatState,
        on_signed_out: impl Fn() + 'static,
        ready: impl Future<Output = ()> + 'static,
    ) -> Connection {
        let (requests, incoming) = unbounded();
        leptos::task::spawn_local(async move {
            ready.await;
            keep_connected(state, incoming, on_signed_out).await;
        });
        Connection { requests }
    }

    /// Queues a request; it is dropped only if the page is closing.
    pub fn request(&self, request: Request) {
        let _ = self.requests.unbounded_send(request);
    }
}

async fn keep_connected(
    state: ChatState,
    mut requests: UnboundedReceiver<Request>,
    on_signed_out: impl Fn(),
) {
    let mut failures = 0usize;
    let mut was_online = false;
    loop {
        state.status.set(Status::Connecting);
        let end = run_session(state, &mut requests, was_online).await;
        if end.signed_out {
            on_signed_out();
            return;
        }
        if end.was_online {
            failures = 0;
            was_online = true;
        }
        let delay = BACKOFF_SECS[failures.min(BACKOFF_SECS.len() - 1)];
        failures += 1;
        // Spread reconnects so that a restarted server is not hit by every tab at once.
        let jitter_ms = (js_sys::Math::random() * 500.0) as u32;
        state.status.set(Status::Offline { reason: end.reason, retry_in_secs: delay });
        // Requests made while offline are not lost: messages stay pending in the model
        // and are resent on reconnect; subscriptions are rebuilt from the room list.
        let pause = TimeoutFuture::new(delay * 1000 + jitter_ms);
        drain_while(&mut requests, pause).await;
    }
}

/// Waits for `pause`, discarding requests meanwhile (the model keeps what matters).
async fn drain_while(requests: &mut UnboundedReceiver<Request>, pause: TimeoutFuture) {
    let mut pause = futures::FutureExt::fuse(pause);
    loop {
        select! {
            () = pause => return,
            request = requests.next() => if request.is_none() { return },
        }
    }
}

/// How a session ended.
struct SessionEnd {
    reason: String,
    was_online: bool,
    signed_out: bool,
}

/// The browser origin's `/ws` endpoint, `wss:` under `https:`.
fn ws_url() -> String {
    let location = window().location();
    let scheme = if location.protocol().ok().as_deref() == Some("https:") { "wss" } else { "ws" };
    let host = location.host().unwrap_or_else(|_| "localhost".to_owned());
    format!("{scheme}://{host}/ws")
}

fn subscribe_frame(destination: String, id: String, since: u64) -> ClientFrame {
    let mut headers = Headers::new();
    headers.push(SINCE_HEADER, since.to_string());
    ClientFrame::Subscribe { destination, id, ack: Default::default(), receipt: None, headers }
}

fn room_subscription(state: ChatState, room: &str) -> ClientFrame {
    let since = state.conv(&Conv::Room(room.to_owned())).last_seq.get_untracked();
    subscribe_frame(Destination::room(room), Conv::subscription_id(room), since)
}

fn send_frame(conv: &Conv, message: Pending) -> ClientFrame {
    let Pending { key, text, reply_to, files, .. } = message;
    let files = files.into_iter().map(|file| file.id).collect();
    let destination = match conv {
        Conv::Room(room) => Destination::app_room(room),
        Conv::Dm(peer) => Destination::app_dm(peer),
    };
    let mut headers: Headers = [("content-type", "application/json")].into_iter().collect();
    headers.push(IDEMPOTENCY_HEADER, key.clone());
    ClientFrame::Send {
        destination,
        transaction: None,
        receipt: Some(format!("send:{key}")),
        headers,
        body: Bytes::from(
            serde_json::to_vec(&ClientEvent::Message { text, reply_to, files }).unwrap_or_default(),
        ),
    }
}

fn event_frame(conv: &Conv, event: &ClientEvent) -> ClientFrame {
    let destination = match conv {
        Conv::Room(room) => Destination::app_room(room),
        Conv::Dm(peer) => Destination::app_dm(peer),
    };
    ClientFrame::Send {
        destination,
        transaction: None,
        receipt: None,
        headers: [("content-type", "application/json")].into_iter().collect(),
        body: Bytes::from(serde_json::to_vec(event).unwrap_or_default()),
    }
}

/// One WebSocket connection, from open to close.
async fn run_session(
    state: ChatState,
    requests: &mut UnboundedReceiver<Request>,
    reconnecting: bool,
) -> SessionEnd {
    let ended =
        |reason: String, was_online: bool| SessionEnd { reason, was_online, signed_out: false };
    // No subprotocol offered: CONNECT's accept-version negotiates the STOMP version, so a
    // proxy that drops Sec-WebSocket-Protocol (trunk serve's, and some in production)
    // cannot break the connection. The server speaks STOMP on /ws either way.
    let socket = match WebSocket::open(&ws_url()) {
        Ok(socket) => socket,
        Err(error) => return ended(format!("cannot open a connection: {error}"), false),
    };
    let (mut sink, stream) = socket.split();
    let mut stream = stream.fuse();
    let connect = ClientFrame::Connect {
        stomp_command: false,
        accept_version: Some("1.1,1.2".to_owned()),
        host: window().location().hostname().ok(),
        login: Some(state.me()),
        passcode: Some(state.token()),
        heart_beat: HeartBeat { can_send_ms: HEART_BEAT_MS, want_receive_ms: HEART_BEAT_MS },
        headers: Headers::new(),
    };
    if let Err(reason) = write(&mut sink, connect).await {
        return ended(reason, false);
    }

    // The server's frames are trusted but may be large: a presence snapshot of a room with
    // tens of thousands of people passes 1 MiB (security review L14).
    let mut decoder = Decoder::new(Limits { max_frame_bytes: 16 << 20, ..Limits::default() });
    let mut buf = BytesMut::new();
    let mut online = false;
    let mut signed_out = false;
    let mut ticks = IntervalStream::new(TICK_MS).fuse();
    let mut last_received = js_sys::Date::now();
    let mut last_sent = js_sys::Date::now();

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
                            let mut frames = vec![
                                subscribe_frame(USER_NOTICES.to_owned(), NOTICES_SUBSCRIPTION.to_owned(), 0),
                                subscribe_frame(USER_DM.to_owned(), DM_SUBSCRIPTION.to_owned(), state.inbox_seq.get_untracked()),
                                ClientFrame::Subscribe {
                                    destination: ROOMS.to_owned(),
                                    id: ROOMS_SUBSCRIPTION.to_owned(),
                                    ack: Default::default(),
                                    receipt: None,
                                    headers: Headers::new(),
                                },
                            ];
                            frames.extend(state.joined_rooms().iter().map(|room| room_subscription(state, room)));
                            for (conv, pending) in state.unconfirmed() {
                                state.mark_sent(&conv, &pending.key);
                                frames.push(send_frame(&conv, pending));
                            }
                            for frame in frames {
                                if let Err(reason) = write(&mut sink, frame).await {
                                    break 'session reason;
                                }
                            }
                            last_sent = js_sys::Date::now();
                            online = true;
                            state.status.set(Status::Online);
                            if reconnecting {
                                state.reconnected();
                            }
                        }
                        Ok(ServerFrame::Message { subscription, body, .. }) => deliver(state, &subscription, &body),
                        Ok(ServerFrame::Receipt { receipt_id, .. }) => {
                            if let Some(key) = receipt_id.strip_prefix("send:") {
                                state.confirm(key);
                            }
                        }
                        Ok(ServerFrame::Error { message, .. }) => {
                            let message = message.unwrap_or_else(|| "unknown error".to_owned());
                            if message == AUTHENTICATION_FAILED || message.starts_with(SIGNED_OUT) {
                                signed_out = true;
                            } else {
                                state.error.set(Some(format!("The server closed the connection: {message}")));
                            }
                            break 'session format!("server error: {message}");
                        }
                        Err(error) => break 'session format!("bad frame from server: {error}"),
                    }
                }
            }
            request = requests.next() => {
                let Some(request) = request else { break 'session "page closed".to_owned() };
                if !online {
                    // Sent after CONNECTED, from the model's state.
                    continue;
                }
                let frame = match request {
                    Request::Send { conv, message } => {
                        state.mark_sent(&conv, &message.key);
                        send_frame(&conv, message)
                    }
                    Request::Change { conv, event } => event_frame(&conv, &event),
                    Request::Typing(room) => event_frame(&Conv::Room(room), &ClientEvent::Typing),
                    Request::Subscribe(room) => room_subscription(state, &room),
                    Request::Unsubscribe(room) => ClientFrame::Unsubscribe {
                        id: Conv::subscription_id(&room),
                        receipt: None,
                        headers: Headers::new(),
                    },
                };
                if let Err(reason) = write(&mut sink, frame).await {
                    break 'session reason;
                }
                last_sent = js_sys::Date::now();
            }
            _ = ticks.next() => {
                let now = js_sys::Date::now();
                state.expire(now);
                if now - last_received > SERVER_SILENCE_MS {
                    break 'session "the server stopped responding".to_owned();
                }
                // "if the sender has no real STOMP frame to send, it MUST send an end-of-line"
                if online && now - last_sent > f64::from(HEART_BEAT_MS) / 2.0 {
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
    SessionEnd { reason, was_online: online, signed_out }
}

/// Routes a MESSAGE body to the model by the subscription it came on.
fn deliver(state: ChatState, subscription: &str, body: &[u8]) {
    let result = if let Some(room) = subscription.strip_prefix("room.") {
        serde_json::from_slice::<RoomEvent>(body).map(|event| state.apply_room(room, event))
    } else if subscription == DM_SUBSCRIPTION {
        serde_json::from_slice::<DirectMessage>(body).map(|message| state.apply_dm(message))
    } else if subscription == NOTICES_SUBSCRIPTION {
        serde_json::from_slice::<Notice>(body).map(|notice| state.apply_notice(notice))
    } else if subscription == ROOMS_SUBSCRIPTION {
        serde_json::from_slice::<DirectoryEvent>(body).map(|_| state.rooms_changed())
    } else {
        Ok(())
    };
    if let Err(error) = result {
        leptos::logging::warn!("ignoring an unreadable event on {subscription}: {error}");
    }
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
