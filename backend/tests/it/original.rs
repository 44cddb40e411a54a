//! Clients written for the original design keep working: its plain JSON WebSocket at
//! `/room`, and STOMP under the `/pub` and `/sub` prefixes Spring tutorials configure.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shared::chat::{DirectMessage, RoomEvent};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::on_every_setup;
use crate::support::{Client, PATIENCE, Setup, TestServer};

/// A client of the original design's first stage: JSON text messages, no STOMP.
struct JsonClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl JsonClient {
    /// Opens `/room` as `user` in `room`, the token in the query string.
    async fn open(server: &TestServer, user: &str, room: &str) -> JsonClient {
        let token = server.token(user).await;
        JsonClient::try_open(server, &format!("/room?token={token}&room={room}"), None)
            .await
            .expect("the upgrade is accepted")
    }

    /// Opens `path_and_query`, with an `Authorization` header if given; the error is the
    /// refused upgrade's status and JSON body.
    async fn try_open(
        server: &TestServer,
        path_and_query: &str,
        authorization: Option<&str>,
    ) -> Result<JsonClient, (u16, Value)> {
        let stream = TcpStream::connect(server.addr).await.unwrap();
        let mut request =
            format!("ws://{}{path_and_query}", server.addr).into_client_request().unwrap();
        if let Some(authorization) = authorization {
            request
                .headers_mut()
                .insert("authorization", HeaderValue::from_str(authorization).unwrap());
        }
        match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
            Ok((ws, _)) => Ok(JsonClient { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().as_deref().unwrap_or_default();
                Err((status, serde_json::from_slice(body).unwrap_or(Value::Null)))
            }
            Err(error) => panic!("unexpected handshake failure: {error}"),
        }
    }

    async fn send(&mut self, message: &Value) {
        self.send_text(&message.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next JSON message, within `PATIENCE`; `None` when the connection closed.
    async fn next(&mut self) -> Option<Value> {
        self.next_within(PATIENCE).await.expect("the server sent nothing in time")
    }

    async fn next_within(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        let read = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return Some(serde_json::from_str(text.as_str()).expect("JSON"));
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(wait, read).await.map_err(|_| ())
    }

    /// The next message, which must be of `kind`.
    async fn expect(&mut self, kind: &str) -> Value {
        let message = self.next().await.expect("the connection stays open");
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    /// Expects an error whose text contains `needle`.
    async fn expect_error(&mut self, needle: &str) {
        let error = self.expect("error").await;
        let data = error["data"].as_str().unwrap();
        assert!(data.contains(needle), "{data:?} should mention {needle:?}");
    }

    /// Expects nothing more for a moment.
    async fn expect_quiet(&mut self) {
        if let Ok(message) = self.next_within(Duration::from_millis(300)).await {
            panic!("expected nothing, got {message:?}");
        }
    }

    /// Sends a chat message and waits for its own echo, so the server has taken it.
    async fn say(&mut self, text: &str) -> Value {
        self.send(&json!({"type": "message", "receiver": "all", "data": text})).await;
        let echo = self.expect("message").await;
        assert_eq!(echo["data"], text, "{echo}");
        echo
    }
}

/// Waits until `user` is present in `room` for a STOMP client already in it.
async fn expect_joined(client: &mut Client, user: &str) {
    match client.expect_room_event().await {
        RoomEvent::Joined { user: joined, .. } => assert_eq!(joined, user),
        other => panic!("expected {user} to join, got {other:?}"),
    }
}

#[tokio::test]
async fn a_json_client_sees_arrivals_and_departures_as_new_and_close() {
    let server = TestServer::start().await;
    let mut ann = JsonClient::open(&server, "ann", "lobby").await;
    // Ann's own arrival is not announced to her.
    ann.expect_quiet().await;

    let mut bob = Client::connect(&server, "bob").await;
    bob.join("lobby", "r").await;
    assert_eq!(ann.expect("new").await, json!({"type": "new", "sender": "bob", "receiver": "all"}));

    let mut cid = JsonClient::open(&server, "cid", "lobby").await;
    assert_eq!(ann.expect("new").await["sender"], "cid");
    expect_joined(&mut bob, "cid").await;

    drop(bob);
    assert_eq!(
        ann.expect("close").await,
        json!({"type": "close", "sender": "bob", "receiver": "all"})
    );
    assert_eq!(cid.expect("close").await["sender"], "bob");

    cid.ws.close(None).await.unwrap();
    assert_eq!(ann.expect("close").await["sender"], "cid");
    server.stop().await;
}

async fn json_and_stomp_clients_chat_in_the_same_room(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("lobby", "r").await;
    let mut ann = JsonClient::open(&server, "ann", "lobby").await;
    expect_joined(&mut bob, "ann").await;

    // JSON to STOMP: stored, numbered, and sent by the account whatever the field says.
    ann.send(&json!({"type": "message", "sender": "mallory", "receiver": "all", "data": "hi"}))
        .await;
    let echo = ann.expect("message").await;
    assert_eq!(
        (&echo["sender"], &echo["receiver"], &echo["data"]),
        (&json!("ann"), &json!("all"), &json!("hi"))
    );
    assert_eq!(echo["seq"], 1);
    assert!(echo["sent_at"].as_i64().unwrap() > 0, "{echo}");
    match bob.expect_room_event().await {
        RoomEvent::Message(message) => {
            assert_eq!(
                (message.sender.as_str(), message.text.as_str(), message.seq),
                ("ann", "hi", 1)
            );
        }
        other => panic!("expected ann's message, got {other:?}"),
    }

    // STOMP to JSON, in the same shape with `seq` and `sent_at`.
    bob.send("SEND\ndestination:/app/room.lobby\n\nhello ann\0").await;
    let message = ann.expect("message").await;
    assert_eq!(
        (&message["sender"], &message["data"], &message["seq"]),
        (&json!("bob"), &json!("hello ann"), &json!(2))
    );
    assert_eq!(message["receiver"], "all");

    // And it is history like any other message.
    let token = server.token("bob").await;
    let (status, page) =
        server.request("GET", "/api/rooms/lobby/messages", Some(&token), None).await;
    assert_eq!(status, 200, "{page}");
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hi", "hello ann"]);
    server.stop().await;
}

on_every_setup!(json_and_stomp_clients_chat_in_the_same_room);

#[tokio::test]
async fn a_json_client_chats_in_the_room_it_chose() {
    let server = TestServer::start().await;
    server.create_room("bob", "ops").await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("ops", "ops").await;
    bob.join("lobby", "lobby").await;
    let mut ann = JsonClient::open(&server, "ann", "ops").await;
    expect_joined(&mut bob, "ann").await;
    ann.say("in ops").await;
    let (frame, body) = bob.expect_message().await;
    assert_eq!(frame.headers.get("subscription"), Some("ops"), "{body}");
    // A message in the lobby does not reach a client in ops.
    bob.send("SEND\ndestination:/app/room.lobby\n\nlobby only\0").await;
    bob.expect_message().await;
    ann.expect_quiet().await;
    server.stop().await;
}

#[tokio::test]
async fn a_json_client_sends_and_receives_direct_messages() {
    let server = TestServer::start().await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.subscribe("/user/queue/dm", "dm").await;
    let mut ann = JsonClient::open(&server, "ann", "lobby").await;

    ann.send(&json!({"type": "message", "receiver": "bob", "data": "psst"})).await;
    let echo = ann.expect("message").await;
    assert_eq!(
        (&echo["sender"], &echo["receiver"], &echo["data"]),
        (&json!("ann"), &json!("bob"), &json!("psst"))
    );
    let (_, body) = bob.expect_message().await;
    let dm: DirectMessage = serde_json::from_str(&body).unwrap();
    assert_eq!((dm.from.as_str(), dm.to.as_str(), dm.text.as_str()), ("ann", "bob", "psst"));

    bob.send("SEND\ndestination:/app/dm.ann\n\nback at you\0").await;
    let reply = ann.expect("message").await;
    assert_eq!(
        (&reply["sender"], &reply["receiver"], &reply["data"]),
        (&json!("bob"), &json!("ann"), &json!("back at you"))
    );
    assert!(reply["seq"].as_u64().unwrap() >= 1);

    // Nobody by that name: an error, and the connection stays open.
    ann.send(&json!({"type": "message", "receiver": "nobody", "data": "hello?"})).await;
    ann.expect_error("nobody").await;
    ann.say("still here").await;
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_connection_stays_open() {
    let server = TestServer::start().await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("lobby", "r").await;
    let mut ann = JsonClient::open(&server, "ann", "lobby").await;
    expect_joined(&mut bob, "ann").await;

    let long = "x".repeat(shared::chat::MAX_MESSAGE_CHARS + 1);
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "invalid JSON"),
        ("{\"type\":".into(), "invalid JSON"),
        ("[1,2]".into(), "invalid JSON"),
        (json!({"type": "hello"}).to_string(), "unknown type"),
        (json!({"type": "new"}).to_string(), "unknown type"),
        (json!({"receiver": "all", "data": "no type"}).to_string(), "invalid JSON"),
        (json!({"type": "message", "receiver": "all"}).to_string(), "needs data"),
        (json!({"type": "message", "data": 5}).to_string(), "invalid JSON"),
        (json!({"type": "message", "data": ""}).to_string(), "empty"),
        (json!({"type": "message", "data": long}).to_string(), "long"),
        (json!({"type": "message", "data": "bell\u{7}"}).to_string(), "control"),
        (
            json!({"type": "message", "receiver": "no such/user", "data": "x"}).to_string(),
            "invalid receiver",
        ),
    ];
    for (input, needle) in &cases {
        ann.send_text(input).await;
        ann.expect_error(needle).await;
    }
    ann.ws.send(Message::binary(b"{}".to_vec())).await.unwrap();
    ann.expect_error("text").await;

    // Nothing of it was stored or delivered, and the connection still works.
    let echo = ann.say("after all that").await;
    assert_eq!(echo["seq"], 1);
    match bob.expect_room_event().await {
        RoomEvent::Message(message) => assert_eq!(message.text, "after all that"),
        other => panic!("expected the one good message, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn who_may_open_the_json_endpoint() {
    let server = TestServer::start().await;
    let token = server.token("ann").await;

    // Signed out: no token, a wrong one, a malformed header.
    let refused = JsonClient::try_open(&server, "/room", None).await.err().unwrap();
    assert_eq!(refused.0, 401);
    assert!(refused.1["error"].as_str().unwrap().contains("token"), "{}", refused.1);
    let refused = JsonClient::try_open(&server, "/room?token=forged", None).await.err().unwrap();
    assert_eq!(refused.0, 401, "{}", refused.1);
    let refused = JsonClient::try_open(&server, "/room", Some(&format!("Basic {token}")))
        .await
        .err()
        .unwrap();
    assert_eq!(refused.0, 401, "{}", refused.1);

    // A room that does not exist, or cannot exist.
    let path = format!("/room?token={token}&room=nowhere");
    assert_eq!(JsonClient::try_open(&server, &path, None).await.err().unwrap().0, 404);
    let path = format!("/room?token={token}&room=bad%2Fname");
    assert_eq!(JsonClient::try_open(&server, &path, None).await.err().unwrap().0, 400);

    // A bearer header works where a client can set one; the lobby is the default room.
    let mut ann =
        JsonClient::try_open(&server, "/room", Some(&format!("Bearer {token}"))).await.unwrap();
    ann.say("by header").await;

    // A page from another site may not use a visitor's browser as a client.
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let mut request =
        format!("ws://{}/room?token={token}", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("origin", HeaderValue::from_static("https://evil.example"));
    match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }

    // Signing out ends the connection with a last error.
    let (status, _) = server.request("POST", "/api/logout", Some(&token), None).await;
    assert_eq!(status, 204);
    ann.expect("error").await;
    assert_eq!(ann.next().await, None, "the connection closes");
    server.stop().await;
}

#[tokio::test]
async fn json_clients_are_rate_limited_like_everyone() {
    let server = TestServer::start_with(|config| {
        config.send_rate = 1.0;
        config.send_burst = 5.0;
    })
    .await;
    let mut ann = JsonClient::open(&server, "ann", "lobby").await;
    for n in 0..8 {
        ann.send(&json!({"type": "message", "data": format!("flood {n}")})).await;
    }
    let (mut delivered, mut limited) = (0, 0);
    while delivered + limited < 8 {
        let message = ann.next().await.expect("the connection stays open");
        match message["type"].as_str() {
            Some("message") => delivered += 1,
            Some("error") => {
                assert!(message["data"].as_str().unwrap().contains("rate limited"), "{message}");
                limited += 1;
            }
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!((delivered, limited), (5, 3), "the burst passes, the rest is refused");
    server.stop().await;
}

#[tokio::test]
async fn the_json_endpoint_can_move() {
    let server = TestServer::start_with(|config| config.json_path = "/chat".into()).await;
    let token = server.token("ann").await;
    let moved = format!("/chat?token={token}");
    JsonClient::try_open(&server, &moved, None).await.unwrap().say("here").await;
    let old = format!("/room?token={token}");
    assert!(JsonClient::try_open(&server, &old, None).await.is_err());
    server.stop().await;
}

async fn spring_server() -> TestServer {
    TestServer::start_with(|config| {
        config.app_prefixes = vec!["/pub".into()];
        config.broker_prefixes = vec!["/sub".into()];
    })
    .await
}

#[tokio::test]
async fn pub_and_sub_work_as_app_and_topic_do() {
    let server = spring_server().await;
    let mut ann = Client::connect(&server, "ann").await;
    let snapshot = ann.subscribe("/sub/room.lobby", "r").await;
    assert!(!snapshot.is_empty(), "a room subscription under /sub starts with presence");
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("lobby", "r").await;
    expect_joined(&mut ann, "bob").await;

    ann.send("SEND\ndestination:/pub/room.lobby\nreceipt:s\n\nvia pub\0").await;
    for client in [&mut ann, &mut bob] {
        match client.expect_room_event().await {
            RoomEvent::Message(message) => assert_eq!(message.text, "via pub"),
            other => panic!("expected the message, got {other:?}"),
        }
    }
    ann.expect_receipt("s").await;
    bob.send("SEND\ndestination:/app/room.lobby\n\nvia app\0").await;
    match ann.expect_room_event().await {
        RoomEvent::Message(message) => assert_eq!(message.text, "via app"),
        other => panic!("expected the message, got {other:?}"),
    }

    // Generic destinations under the broker prefix too, both ways.
    ann.subscribe("/sub/news", "n").await;
    bob.send("SEND\ndestination:/topic/news\n\nfrom topic\0").await;
    assert_eq!(ann.expect_message().await.1, "from topic");
    bob.send("SEND\ndestination:/sub/news\n\nfrom sub\0").await;
    assert_eq!(ann.expect_message().await.1, "from sub");
    server.stop().await;
}

#[tokio::test]
async fn prefixes_are_exact_and_unknown_ones_are_refused() {
    let server = spring_server().await;
    let mut ann = Client::connect(&server, "ann").await;
    // `/publish` is not `/pub`, and `/queue` was never configured.
    ann.send("SEND\ndestination:/publish/room.lobby\n\nx\0").await;
    let error = ann.expect_error().await;
    assert!(error.contains("/publish/room.lobby"), "{error}");

    let mut ann = Client::connect(&server, "ann").await;
    ann.send("SUBSCRIBE\nid:1\ndestination:/queue/room.lobby\n\n\0").await;
    let error = ann.expect_error().await;
    assert!(error.contains("/queue/room.lobby"), "{error}");

    // Without the flags, /pub means nothing.
    let plain = TestServer::start().await;
    let mut ann = Client::connect(&plain, "ann").await;
    ann.send("SEND\ndestination:/pub/room.lobby\n\nx\0").await;
    ann.expect_error().await;
    plain.stop().await;
    server.stop().await;
}

#[test]
fn prefix_flags_are_checked() {
    use backend::Config;
    use clap::Parser;
    let parse = |args: &[&str]| {
        Config::try_parse_from(std::iter::once("confab").chain(args.iter().copied()))
    };
    let config = parse(&["--app-prefix", "/pub,/in", "--broker-prefix", "/sub"]).unwrap();
    assert_eq!(config.app_prefixes, ["/pub", "/in"]);
    assert_eq!(config.broker_prefixes, ["/sub"]);
    for bad in ["pub", "/", "/a/b", "/user", "/pub/", "/p b"] {
        assert!(parse(&["--app-prefix", bad]).is_err(), "{bad}");
    }
    for bad in ["/ws", "/api", "room", "/a/b"] {
        assert!(parse(&["--json-path", bad]).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_json_client_that_stops_reading_is_cut_off_and_the_rest_go_on() {
    let server = TestServer::start_with(|config| config.outbox_frames = 8).await;
    let token = server.token("sleepy").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let request = format!("ws://{}/room?token={token}", server.addr).into_client_request().unwrap();
    let (ws, _) =
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await.unwrap();
    let mut sleepy = JsonClient { ws };
    let mut reader = Client::connect(&server, "reader").await;
    reader.join("lobby", "r").await;
    let mut writer = Client::connect(&server, "writer").await;

    // The sleeper reads nothing while 8 MB go out; the reader keeps up.
    let text = "x".repeat(3900);
    let n_messages = 2100;
    for n in 0..n_messages {
        writer.send(&format!("SEND\ndestination:/app/room.lobby\n\n{n} {text}\0")).await;
        loop {
            if let RoomEvent::Message(message) = reader.expect_room_event().await {
                assert!(message.text.starts_with(&format!("{n} ")));
                break;
            }
        }
    }
    // Then it reads what reached it: fewer messages than were sent, then the end.
    let mut n_received = 0;
    while let Some(message) = sleepy.next().await {
        if message["type"] == "message" {
            n_received += 1;
        }
    }
    assert!(n_received < n_messages, "the sleeper was cut off ({n_received} received)");
    server.stop().await;
}

#[tokio::test]
async fn a_json_client_that_answers_no_ping_is_gone_and_so_is_its_presence() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 200).await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("lobby", "r").await;
    // Opened and then never read: tungstenite answers pings only while it is read.
    let _silent = JsonClient::open(&server, "ann", "lobby").await;
    expect_joined(&mut bob, "ann").await;
    match bob.expect_room_event().await {
        RoomEvent::Left { user, .. } => assert_eq!(user, "ann"),
        other => panic!("expected ann to leave, got {other:?}"),
    }
    // One that reads (and so answers pings) stays.
    let mut cid = JsonClient::open(&server, "cid", "lobby").await;
    expect_joined(&mut bob, "cid").await;
    let listening = tokio::spawn(async move { while cid.next().await.is_some() {} });
    assert!(
        bob.next_event_within(Duration::from_millis(1500)).await.is_none_or(|event| !matches!(
            event,
            crate::support::Event::Frame(ref frame) if String::from_utf8_lossy(&frame.body).contains("\"left\"")
        )),
        "a client that answers pings stays"
    );
    listening.abort();
    server.stop().await;
}
