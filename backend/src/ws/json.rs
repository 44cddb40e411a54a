//! The original design's first stage, kept working: a plain JSON WebSocket at `/room`
//! (`--json-path`), speaking `{"type", "sender", "receiver", "data"}`, bridged into the same
//! rooms as STOMP and the page.
//!
//! A connection here is a STOMP session underneath: the JSON a client sends becomes the
//! SEND it stands for, and every MESSAGE the session receives becomes the JSON the original
//! clients expect. So the same checks, rate limits, storage and delivery apply, and a
//! message from anywhere reaches everyone the same way. Bad JSON or an unknown type gets
//! `{"type":"error","data":"..."}` and the connection stays open.
//!
//! - `{"type":"message","receiver":"all","data":"hi"}` is a chat message in the room;
//!   `"receiver":"<user>"` makes it a direct message. The sender is always the account.
//! - Others in the room get `{"type":"new","sender":"<user>","receiver":"all"}` when someone
//!   arrives, and `"type":"close"` when they leave.
//! - Chat messages arrive as `{"type":"message","sender","receiver","data","seq","sent_at"}`.

use std::collections::HashMap;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use shared::chat::{
    ChatMessage, ClientEvent, Destination, DirectMessage, LOBBY, Notice, RoomEvent, validate_name,
    validate_text, validate_username,
};
use shared::stomp::{ClientFrame, Decoder, Frame, Headers, HeartBeat, ServerFrame};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tracing::Instrument;

use crate::AppState;
use crate::auth::token_hash;
use crate::delivery::{OutboxReceiver, Outgoing};
use crate::http::HttpError;
use crate::limits::{ClientAddress, ConnectionSlot};
use crate::stomp::{Flow, Session};
use crate::ws::sleep_until_opt;

/// One message of the original design's protocol, either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonMessage {
    /// `message`, `new`, `close`, `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Who sent it (set by the server; ignored from clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// `all` for the room, or a user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The message's id in its room or inbox (stored messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When the server accepted it (stored messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
}

impl JsonMessage {
    fn error(data: impl Into<String>) -> JsonMessage {
        JsonMessage {
            kind: "error".into(),
            sender: None,
            receiver: None,
            data: Some(data.into()),
            seq: None,
            sent_at: None,
        }
    }

    fn presence(kind: &str, user: String) -> JsonMessage {
        JsonMessage {
            kind: kind.into(),
            sender: Some(user),
            receiver: Some("all".into()),
            data: None,
            seq: None,
            sent_at: None,
        }
    }
}

/// The subscription ids the bridge uses.
const ROOM: &str = "room";
const DM: &str = "dm";
const NOTICES: &str = "notices";

/// `GET /room?token=&room=`: the plain JSON WebSocket. The token may also come as
/// `Authorization: Bearer`. 401 without a valid one, 404 for a room that does not exist.
pub async fn upgrade(
    State(app): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let slot = match super::admit(&app, &address, &headers) {
        Ok(slot) => slot,
        Err(refused) => return refused.into_response(),
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = query.get("token").map(String::as_str).or(bearer).map(str::to_owned) else {
        return HttpError::new(StatusCode::UNAUTHORIZED, "give ?token=<session token>")
            .into_response();
    };
    let login = match app.engine.token_user(&token_hash(&token)).await {
        Ok(Some(login)) => login,
        Ok(None) => {
            return HttpError::new(StatusCode::UNAUTHORIZED, "the token is not valid")
                .into_response();
        }
        Err(error) => return HttpError::from(error).into_response(),
    };
    let room = query.get("room").cloned().unwrap_or_else(|| LOBBY.to_owned());
    if let Err(reason) = validate_name(&room) {
        return HttpError::bad_request(format!("invalid room {room:?}: {reason}")).into_response();
    }
    match app.engine.store().room_exists(&room).await {
        Ok(true) => {}
        Ok(false) => {
            return HttpError::new(StatusCode::NOT_FOUND, format!("no room named {room:?}"))
                .into_response();
        }
        Err(error) => return HttpError::from(error).into_response(),
    }
    let max_message = 2 * app.broker.config().limits.max_frame_bytes;
    ws.max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve(socket, app, slot, Bridge { login, token, room }))
}

/// Who a JSON connection is, and where.
struct Bridge {
    login: String,
    token: String,
    room: String,
}

/// Makes the session first, so that its id names the span every line about this
/// connection is logged in. (The session is boxed: an async fn's arguments are stored for
/// its whole life, beside anything they are moved into.)
fn serve(
    socket: WebSocket,
    app: AppState,
    slot: ConnectionSlot,
    bridge: Bridge,
) -> impl Future<Output = ()> + Send + 'static {
    let (session, outbox, _acks) = app.broker.open_session();
    let span = super::connection_span(session.id(), Some(&bridge.login));
    serve_session(socket, app, slot, Box::new(session), outbox, bridge).instrument(span)
}

async fn serve_session(
    socket: WebSocket,
    app: AppState,
    _slot: ConnectionSlot,
    mut session: Box<Session>,
    outbox: OutboxReceiver,
    bridge: Bridge,
) {
    let _open = crate::metrics::Open::new(&crate::metrics::metrics().json_connections);
    tracing::debug!(room = bridge.room, "JSON connection opened");
    let (mut sink, mut stream) = socket.split();
    let (replies, replies_rx) = mpsc::channel::<JsonMessage>(16);
    if !open(&mut session, &app, &bridge).await {
        let _ = sink.send(text(&JsonMessage::error("cannot join the room"))).await;
        return;
    }
    // No STOMP heart-beat here: the server pings at the heart-beat interval, and a client
    // silent for three of them (not even a pong) is gone, and so is its presence.
    let every = Duration::from_millis(u64::from(app.broker.config().heart_beat_ms));
    let silence_limit = (!every.is_zero()).then(|| every * 3);
    let mut writer = tokio::spawn(write_loop(sink, outbox, replies_rx, every).in_current_span());
    let mut guard = app.guards.guard();
    let mut deadline = silence_limit.map(|limit| Instant::now() + limit);
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            () = sleep_until_opt(deadline) => {
                session.abort("no data from the client: the connection is gone");
                break;
            }
            () = guard.stopping() => {
                session.abort("server is shutting down");
                break;
            }
            _ = &mut writer => return,
        };
        // Anything, a pong included, shows the client is there.
        deadline = silence_limit.map(|limit| Instant::now() + limit);
        let input = match message {
            Some(Ok(Message::Text(input))) => input,
            Some(Ok(Message::Binary(_))) => {
                let _ = replies.send(JsonMessage::error("send JSON as text messages")).await;
                continue;
            }
            Some(Err(_) | Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => continue,
        };
        match to_frame(&input, &bridge.room) {
            Ok(frame) => {
                if Box::pin(session.handle(frame)).await == Flow::Close {
                    break;
                }
            }
            Err(reason) => {
                let _ = replies.send(JsonMessage::error(reason)).await;
            }
        }
    }
    drop(session);
    let _ = tokio::time::timeout(Duration::from_secs(5), &mut writer).await;
    writer.abort();
    tracing::debug!("JSON connection closed");
}

/// Moves the session's frames, translated, and the bridge's own replies into the socket;
/// pings every `ping_every` (never if zero); closes a client that does not keep up, as
/// `/ws` does.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: OutboxReceiver,
    mut replies: mpsc::Receiver<JsonMessage>,
    ping_every: Duration,
) {
    let overflow = outbox.overflow_signal();
    let mut next_ping = (!ping_every.is_zero()).then(|| Instant::now() + ping_every);
    loop {
        if overflow.happened() {
            crate::metrics::metrics().slow_consumers.inc();
            let error = JsonMessage::error("slow consumer: too many messages queued");
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(text(&error))).await;
            return;
        }
        let message = tokio::select! {
            item = outbox.recv() => match translate_item(item) {
                Translated::Send(message) => text(&message),
                Translated::Skip => continue,
                Translated::End(last) => {
                    if let Some(last) = last {
                        let _ = sink.send(text(&last)).await;
                    }
                    let _ = sink.close().await;
                    return;
                }
            },
            Some(reply) = replies.recv() => text(&reply),
            () = sleep_until_opt(next_ping) => {
                next_ping = next_ping.map(|_| Instant::now() + ping_every);
                Message::Ping(Bytes::new())
            }
            () = overflow.wait() => continue,
        };
        let sent = tokio::select! {
            sent = sink.send(message) => sent,
            // A client that stops reading blocks the send; the overflow still ends it.
            () = overflow.wait() => continue,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// CONNECT and the three subscriptions, live only: the original clients have no history.
async fn open(session: &mut Session, app: &AppState, bridge: &Bridge) -> bool {
    let connect = ClientFrame::Connect {
        stomp_command: false,
        accept_version: Some("1.2".into()),
        host: None,
        login: Some(bridge.login.clone()),
        passcode: Some(bridge.token.clone()),
        heart_beat: HeartBeat::default(),
        headers: Headers::new(),
    };
    if !matches!(session.handle(connect.into_frame()).await, Flow::Connected(_)) {
        return false;
    }
    let store = app.engine.store();
    let (Ok(room_seq), Ok(inbox_seq)) =
        (store.room_last_seq(&bridge.room).await, store.inbox_last_seq(&bridge.login).await)
    else {
        return false;
    };
    let subscriptions = [
        (Destination::room(&bridge.room), ROOM, Some(room_seq)),
        (shared::chat::USER_DM.to_owned(), DM, Some(inbox_seq)),
        (shared::chat::USER_NOTICES.to_owned(), NOTICES, None),
    ];
    for (destination, id, since) in subscriptions {
        let mut headers = Headers::new();
        if let Some(since) = since {
            headers.push(shared::chat::SINCE_HEADER, since.to_string());
        }
        let subscribe = ClientFrame::Subscribe {
            destination,
            id: id.into(),
            ack: Default::default(),
            receipt: None,
            headers,
        };
        if session.handle(subscribe.into_frame()).await == Flow::Close {
            return false;
        }
    }
    true
}

/// The SEND a client's JSON stands for, or why there is none.
fn to_frame(input: &str, room: &str) -> Result<Frame, String> {
    let message: JsonMessage =
        serde_json::from_str(input).map_err(|error| format!("invalid JSON: {error}"))?;
    if message.kind != "message" {
        return Err(format!("unknown type {:?}: send type \"message\"", message.kind));
    }
    let text = message.data.ok_or("a message needs data: the text")?;
    validate_text(&text).map_err(|reason| reason.to_string())?;
    let destination = match message.receiver.as_deref() {
        None | Some("all") => Destination::app_room(room),
        Some(user) => {
            validate_username(user)
                .map_err(|reason| format!("invalid receiver {user:?}: {reason}"))?;
            Destination::app_dm(user)
        }
    };
    let body =
        serde_json::to_vec(&ClientEvent::Message { text, reply_to: None, files: Vec::new() })
            .expect("events serialize");
    Ok(ClientFrame::Send {
        destination,
        transaction: None,
        receipt: None,
        headers: [("content-type", "application/json")].into_iter().collect(),
        body: Bytes::from(body),
    }
    .into_frame())
}

/// What one outbox item becomes for a JSON client.
enum Translated {
    Send(JsonMessage),
    Skip,
    /// The connection ends, after this last word.
    End(Option<JsonMessage>),
}

fn translate_item(item: Option<Outgoing>) -> Translated {
    match item {
        Some(Outgoing::Frame { bytes, queued_at, .. }) => {
            let metrics = crate::metrics::metrics();
            metrics.frames_out(crate::metrics::command_of(&bytes), 1);
            if let Some(queued_at) = queued_at {
                metrics.delivery_latency.observe(crate::metrics::Stamp::now().since(queued_at));
            }
            let mut buf = BytesMut::from(&bytes[..]);
            match Decoder::default().decode(&mut buf) {
                Ok(Some(frame)) => translate(frame),
                _ => Translated::Skip,
            }
        }
        Some(Outgoing::HeartBeat(_)) => Translated::Skip,
        Some(Outgoing::Close) | None => Translated::End(None),
    }
}

/// A frame the session queued, as the original clients expect it.
fn translate(frame: Frame) -> Translated {
    let Ok(frame) = ServerFrame::try_from(frame) else { return Translated::Skip };
    match frame {
        ServerFrame::Message { subscription, body, .. } => match subscription.as_str() {
            ROOM => match serde_json::from_slice::<RoomEvent>(&body) {
                Ok(RoomEvent::Message(message)) => Translated::Send(room_message(message)),
                Ok(RoomEvent::Joined { user, .. }) => {
                    Translated::Send(JsonMessage::presence("new", user))
                }
                Ok(RoomEvent::Left { user, .. }) => {
                    Translated::Send(JsonMessage::presence("close", user))
                }
                _ => Translated::Skip,
            },
            DM => match serde_json::from_slice::<DirectMessage>(&body) {
                Ok(message) => Translated::Send(direct_message(message)),
                Err(_) => Translated::Skip,
            },
            NOTICES => match serde_json::from_slice::<Notice>(&body) {
                Ok(Notice::NoSuchUser { user }) => {
                    Translated::Send(JsonMessage::error(format!("no user named {user:?}")))
                }
                Ok(Notice::RateLimited { retry_after_ms, .. }) => Translated::Send(
                    JsonMessage::error(format!("rate limited: try again in {retry_after_ms} ms")),
                ),
                Ok(Notice::NotAccepted { reason, .. } | Notice::Denied { reason, .. }) => {
                    Translated::Send(JsonMessage::error(reason))
                }
                _ => Translated::Skip,
            },
            _ => Translated::Skip,
        },
        ServerFrame::Error { message, .. } => {
            Translated::End(Some(JsonMessage::error(message.unwrap_or_default())))
        }
        _ => Translated::Skip,
    }
}

fn room_message(message: ChatMessage) -> JsonMessage {
    JsonMessage {
        kind: "message".into(),
        sender: Some(message.sender),
        receiver: Some("all".into()),
        data: Some(message.text),
        seq: Some(message.seq),
        sent_at: Some(message.sent_at),
    }
}

fn direct_message(message: DirectMessage) -> JsonMessage {
    JsonMessage {
        kind: "message".into(),
        sender: Some(message.from),
        receiver: Some(message.to),
        data: Some(message.text),
        seq: Some(message.seq),
        sent_at: Some(message.sent_at),
    }
}

fn text(message: &JsonMessage) -> Message {
    Message::Text(Utf8Bytes::from(serde_json::to_string(message).expect("messages serialize")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, &str), &str>) {
        let result = to_frame(input, "lobby").map(|frame| {
            let destination = frame.headers.get("destination").unwrap_or_default().to_owned();
            (destination, String::from_utf8_lossy(&frame.body).into_owned())
        });
        let expected = expected
            .map(|(destination, body)| (destination.to_owned(), body.to_owned()))
            .map_err(str::to_owned);
        assert_eq!(result, expected, "{input}");
    }

    #[test]
    fn client_json_becomes_the_send_it_stands_for() {
        let room = Ok(("/app/room.lobby", r#"{"type":"message","text":"hi"}"#));
        check(r#"{"type":"message","receiver":"all","data":"hi"}"#, room);
        check(r#"{"type":"message","data":"hi"}"#, room);
        // The sender a client claims is ignored: the account sends.
        check(r#"{"type":"message","sender":"mallory","receiver":"all","data":"hi"}"#, room);
        check(
            r#"{"type":"message","receiver":"bob","data":"psst"}"#,
            Ok(("/app/dm.bob", r#"{"type":"message","text":"psst"}"#)),
        );
        check("{not json", Err("invalid JSON: key must be a string at line 1 column 2"));
        check(r#"{"type":"new"}"#, Err("unknown type \"new\": send type \"message\""));
        check(r#"{"type":"message","receiver":"all"}"#, Err("a message needs data: the text"));
        check(r#"{"type":"message","data":"  "}"#, Err("message is empty"));
        check(
            r#"{"type":"message","receiver":"Bad Name","data":"x"}"#,
            Err("invalid receiver \"Bad Name\": names use only a-z, 0-9, _ and -"),
        );
    }

    #[test]
    fn room_events_become_the_original_shapes() {
        let message = room_message(ChatMessage {
            seq: 7,
            room: "lobby".into(),
            sender: "ann".into(),
            text: "hello".into(),
            sent_at: 5,
            ..ChatMessage::default()
        });
        assert_eq!(
            serde_json::to_string(&message).unwrap(),
            r#"{"type":"message","sender":"ann","receiver":"all","data":"hello","seq":7,"sent_at":5}"#
        );
        assert_eq!(
            serde_json::to_string(&JsonMessage::presence("new", "bob".into())).unwrap(),
            r#"{"type":"new","sender":"bob","receiver":"all"}"#
        );
    }
}
