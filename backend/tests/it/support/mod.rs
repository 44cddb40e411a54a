//! Test support: a real server on `127.0.0.1:0`, and a raw STOMP-over-WebSocket client
//! that sends bytes exactly as given.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use backend::Config;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use shared::stomp::{Decoder, Frame, ServerFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server running in this test's runtime, on a fresh data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), backend::ServeError>>,
    tokens: Mutex<HashMap<String, String>>,
    _data: tempfile::TempDir,
    /// The servers this one stores in, kept alive as long as it runs.
    _services: Vec<Service>,
}

/// Every test account's password.
pub const PASSWORD: &str = "correct horse battery";

/// A server process a [`TestServer`] depends on.
pub enum Service {
    Redis(RedisServer),
    Postgres(PostgresServer),
}

/// The configurations a server can run on; tests that must hold on each of them run once
/// per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// No flags: the embedded store and the in-process bus.
    Embedded,
    /// `--postgres`: one node on PostgreSQL.
    Postgres,
    /// `--postgres --redis`: a node of a cluster.
    Cluster,
}

/// Runs an async test body once per [`Setup`], as three `#[tokio::test]`s named after it.
#[macro_export]
macro_rules! on_every_setup {
    ($body:ident) => {
        mod $body {
            #[tokio::test]
            async fn embedded() {
                super::$body($crate::support::Setup::Embedded).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$body($crate::support::Setup::Postgres).await;
            }
            #[tokio::test]
            async fn cluster() {
                super::$body($crate::support::Setup::Cluster).await;
            }
        }
    };
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::launch(tempfile::tempdir().unwrap(), Mutex::default(), Vec::new(), adjust).await
    }

    /// A server on `setup`, its services started for it, with `adjust` applied.
    pub async fn start_on(setup: Setup, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut services = Vec::new();
        let (mut postgres_url, mut redis_url) = (None, None);
        if matches!(setup, Setup::Postgres | Setup::Cluster) {
            let postgres = PostgresServer::start().await;
            postgres_url = Some(postgres.url());
            services.push(Service::Postgres(postgres));
        }
        if setup == Setup::Cluster {
            let redis = RedisServer::start().await;
            redis_url = Some(redis.url());
            services.push(Service::Redis(redis));
        }
        TestServer::launch(tempfile::tempdir().unwrap(), Mutex::default(), services, |config| {
            config.postgres = postgres_url;
            config.redis = redis_url;
            adjust(config);
        })
        .await
    }

    async fn launch(
        data: tempfile::TempDir,
        tokens: Mutex<HashMap<String, String>>,
        services: Vec<Service>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        // Tests publish far faster than people: per-user rates are tested on their own.
        let mut config = Config::defaults().without_rate_limits();
        config.static_dir = std::env::temp_dir().join("confab-test-no-client");
        config.data = data.path().to_owned();
        // Tests sign many people up; invitations are tested on their own.
        config.registration = backend::config::RegistrationMode::Open;
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(backend::run(listener, config, async {
            let _ = stopped.await;
        }));
        TestServer { addr, stop: Some(stop), task, tokens, _data: data, _services: services }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Its `--data` directory (the embedded store's).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    /// Starts a shutdown and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE * 2, &mut self.task)
            .await
            .expect("server stops")
            .expect("server task does not panic")
            .expect("server returns cleanly");
    }

    /// Stops this server and starts another on the same data directory.
    pub async fn restart(mut self) -> TestServer {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
        let TestServer { tokens, _data: data, _services: services, .. } = self;
        TestServer::launch(data, tokens, services, |_| {}).await
    }

    /// A session token for `user`, registering the account on first use.
    pub async fn token(&self, user: &str) -> String {
        if let Some(token) = self.tokens.lock().unwrap().get(user) {
            return token.clone();
        }
        let credentials = serde_json::json!({ "username": user, "password": PASSWORD });
        let (status, body) = self.request("POST", "/api/register", None, Some(&credentials)).await;
        assert_eq!(status, 201, "register {user}: {body}");
        let token = body["token"].as_str().unwrap().to_owned();
        self.tokens.lock().unwrap().insert(user.to_owned(), token.clone());
        token
    }

    /// A new bot account's API token, made as `confab bot create` makes it: through a
    /// second handle on this server's store.
    pub async fn bot_token(&self, name: &str) -> String {
        let postgres = self._services.iter().find_map(|service| match service {
            Service::Postgres(postgres) => Some(postgres.url()),
            Service::Redis(_) => None,
        });
        let store: std::sync::Arc<dyn backend::store::Store> = match postgres {
            Some(url) => std::sync::Arc::new(
                backend::store::postgres::PostgresStore::connect(&url).await.unwrap(),
            ),
            None => std::sync::Arc::new(
                backend::store::sqlite::SqliteStore::open(
                    self._data.path(),
                    backend::store::sqlite::SqliteOptions::default(),
                )
                .unwrap(),
            ),
        };
        backend::bots::create_bot(store.as_ref(), name).await.unwrap()
    }

    /// A POST whose answer is not necessarily JSON: the status, the head and the body.
    pub async fn post_text(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut request =
            format!("POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        self.exchange(&request).await
    }

    /// The `login` and `passcode` header lines for `user`.
    pub async fn credentials(&self, user: &str) -> String {
        format!("login:{user}\npasscode:{}\n", self.token(user).await)
    }

    /// Creates a room as `user` (who joins it).
    pub async fn create_room(&self, user: &str, room: &str) {
        let token = self.token(user).await;
        let (status, body) = self
            .request("POST", "/api/rooms", Some(&token), Some(&serde_json::json!({ "name": room })))
            .await;
        assert_eq!(status, 201, "create room {room}: {body}");
    }

    /// One HTTP/1.1 request; returns the status and the JSON body (`null` if empty).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let body = body.map(|body| body.to_string());
        self.raw_request(method, path, token, body.as_deref(), "application/json").await
    }

    /// One HTTP/1.1 request with a body exactly as given.
    pub async fn raw_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        content_type: &str,
    ) -> (u16, serde_json::Value) {
        let (status, _, body) =
            self.request_with_headers(method, path, token, body, content_type, &[]).await;
        (status, body)
    }

    /// A GET of a page (not JSON): the status, the head, and the body as text.
    pub async fn request_page(&self, path: &str) -> (u16, String, String) {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
        self.exchange(&request).await
    }

    /// Sends one raw HTTP request; returns the status, the head and the body as text.
    async fn exchange(&self, request: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_owned(), body.to_owned())
    }

    /// One HTTP/1.1 request with a body of bytes (an upload, or none); returns the status,
    /// the head as text, and the body as bytes (chunked answers put together).
    pub async fn binary(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str(&format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ));
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        // The server may answer (and close) before taking a body it refuses.
        let _ = stream.write_all(body).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
        let head = String::from_utf8(response[..split].to_vec()).unwrap();
        let mut body = response[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head, body)
    }

    /// A JSON request as if from `client` behind a proxy (`X-Forwarded-For: client`).
    pub async fn request_from(
        &self,
        client: &str,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, String, serde_json::Value) {
        let body = body.to_string();
        let headers = [("X-Forwarded-For", client)];
        self.request_with_headers(method, path, None, Some(&body), "application/json", &headers)
            .await
    }

    /// One HTTP/1.1 request with extra header lines; returns the status, the head as text
    /// (to check headers) and the JSON body.
    pub async fn request_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, serde_json::Value) {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("Content-Length: 0\r\n\r\n");
        }
        let (status, head, body) = self.exchange(&request).await;
        assert!(
            body.is_empty() || head.to_ascii_lowercase().contains("content-type: application/json"),
            "every API answer is JSON: {head}\n{body}"
        );
        let json = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&body).unwrap()
        };
        (status, head, json)
    }
}

/// What came off the socket.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    HeartBeat,
    Closed,
}

/// A raw client: bytes in, decoded frames out.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: Decoder,
    buf: BytesMut,
    pub protocol: Option<String>,
}

impl Client {
    /// Opens a WebSocket offering all three STOMP subprotocols.
    pub async fn open(server: &TestServer) -> Client {
        Client::open_offering(server, Some("v10.stomp, v11.stomp, v12.stomp")).await.unwrap()
    }

    /// Opens a WebSocket offering `protocols` (a `Sec-WebSocket-Protocol` value).
    pub async fn open_offering(
        server: &TestServer,
        protocols: Option<&str>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let socket = TcpSocket::new_v4().unwrap();
        let stream = socket.connect(server.addr).await.unwrap();
        Client::handshake(server, protocols, stream).await
    }

    /// Opens a WebSocket with extra request headers (`Origin`, `X-Forwarded-For`); the
    /// error is the refused upgrade, if it was refused.
    pub async fn open_with_headers(
        server: &TestServer,
        headers: &[(&str, &str)],
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let stream = TcpStream::connect(server.addr).await.unwrap();
        let mut request = server.url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("v12.stomp"));
        for (name, value) in headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap();
            request.headers_mut().insert(name, HeaderValue::from_str(value).unwrap());
        }
        let (ws, response) =
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|value| value.to_str().unwrap().to_owned());
        Ok(Client { ws, decoder: Decoder::default(), buf: BytesMut::new(), protocol })
    }

    /// Opens a WebSocket whose kernel receive buffer is tiny, to play a slow reader.
    pub async fn open_small_buffer(server: &TestServer) -> Client {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.addr).await.unwrap();
        Client::handshake(server, Some("v12.stomp"), stream).await.unwrap()
    }

    async fn handshake(
        server: &TestServer,
        protocols: Option<&str>,
        stream: TcpStream,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut request = server.url().into_client_request().unwrap();
        if let Some(protocols) = protocols {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_str(protocols).unwrap());
        }
        let (ws, response) =
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|value| value.to_str().unwrap().to_owned());
        Ok(Client { ws, decoder: Decoder::default(), buf: BytesMut::new(), protocol })
    }

    /// Opens a socket and completes CONNECT as `login`, registering the account if needed.
    pub async fn connect(server: &TestServer, login: &str) -> Client {
        let token = server.token(login).await;
        let mut client = Client::open(server).await;
        client
            .send(&format!(
                "CONNECT\naccept-version:1.2\nhost:localhost\nlogin:{login}\npasscode:{token}\n\n\0"
            ))
            .await;
        let frame = client.recv().await;
        assert_eq!(frame.command.as_str(), "CONNECTED", "{frame:?}");
        client
    }

    /// Sends one WebSocket text message holding exactly `raw`.
    pub async fn send(&mut self, raw: &str) {
        self.ws.send(Message::text(raw)).await.unwrap();
    }

    /// Sends one WebSocket binary message holding exactly `raw`.
    pub async fn send_bytes(&mut self, raw: &[u8]) {
        self.ws.send(Message::binary(raw.to_vec())).await.unwrap();
    }

    /// The next frame, heart-beat or close, if one comes within `wait`.
    pub async fn next_event_within(&mut self, wait: Duration) -> Option<Event> {
        tokio::time::timeout(wait, self.next_event_unbounded()).await.ok()
    }

    /// The next frame, heart-beat or close, within `PATIENCE`.
    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(PATIENCE, self.next_event_unbounded())
            .await
            .expect("the server sent nothing in time")
    }

    async fn next_event_unbounded(&mut self) -> Event {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("server frames decode") {
                return Event::Frame(frame);
            }
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "\n" && self.buf.is_empty() => {
                    return Event::HeartBeat;
                }
                Some(Ok(Message::Text(text))) => self.buf.extend_from_slice(text.as_bytes()),
                Some(Ok(Message::Binary(data))) => self.buf.extend_from_slice(&data),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Event::Closed,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame, skipping heart-beats; panics if the connection closes.
    pub async fn recv(&mut self) -> Frame {
        loop {
            match self.next_event().await {
                Event::Frame(frame) => return frame,
                Event::HeartBeat => {}
                Event::Closed => panic!("connection closed while a frame was expected"),
            }
        }
    }

    /// The next frame, typed.
    pub async fn recv_server(&mut self) -> ServerFrame {
        ServerFrame::try_from(self.recv().await).expect("a valid server frame")
    }

    /// Expects an ERROR frame and returns its `message` header.
    pub async fn expect_error(&mut self) -> String {
        let frame = self.recv().await;
        assert_eq!(frame.command.as_str(), "ERROR", "expected ERROR, got {frame:?}");
        frame.headers.get("message").expect("ERROR carries a message header").to_owned()
    }

    /// Expects the server to close the connection, with nothing but heart-beats before.
    pub async fn expect_closed(&mut self) {
        loop {
            match self.next_event().await {
                Event::Closed => return,
                Event::HeartBeat => {}
                Event::Frame(frame) => panic!("expected the connection to close, got {frame:?}"),
            }
        }
    }

    /// Expects ERROR with exactly this `message`, then the close.
    pub async fn expect_error_and_close(&mut self, message: &str) {
        assert_eq!(self.expect_error().await, message);
        self.expect_closed().await;
    }

    /// Expects a RECEIPT for `receipt`.
    pub async fn expect_receipt(&mut self, receipt: &str) {
        let frame = self.recv().await;
        assert_eq!(frame.command.as_str(), "RECEIPT", "expected RECEIPT, got {frame:?}");
        assert_eq!(frame.headers.get("receipt-id"), Some(receipt));
    }

    /// Subscribes and waits for the receipt, so that later publications reach it. Returns
    /// the frames that came first (a room's presence snapshot).
    pub async fn subscribe(&mut self, destination: &str, id: &str) -> Vec<Frame> {
        let receipt = format!("sub-{id}");
        self.send(&format!(
            "SUBSCRIBE\nid:{id}\ndestination:{destination}\nreceipt:{receipt}\n\n\0"
        ))
        .await;
        let mut before = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame.command.as_str() == "RECEIPT"
                && frame.headers.get("receipt-id") == Some(&receipt)
            {
                return before;
            }
            before.push(frame);
        }
    }

    /// Joins a room and returns the members its presence snapshot lists. Any replayed
    /// history is discarded.
    pub async fn join(&mut self, room: &str, id: &str) -> Vec<String> {
        self.join_with_history(room, id, "").await.0
    }

    /// Joins a room with extra SUBSCRIBE headers (`since:5\n`); returns the presence
    /// snapshot's members and the replayed messages.
    pub async fn join_with_history(
        &mut self,
        room: &str,
        id: &str,
        extra_headers: &str,
    ) -> (Vec<String>, Vec<shared::chat::ChatMessage>) {
        let receipt = format!("sub-{id}");
        self.send(&format!(
            "SUBSCRIBE\nid:{id}\ndestination:/topic/room.{room}\n{extra_headers}receipt:{receipt}\n\n\0"
        ))
        .await;
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame.command.as_str() == "RECEIPT"
                && frame.headers.get("receipt-id") == Some(&receipt)
            {
                break;
            }
            assert_eq!(frame.command.as_str(), "MESSAGE", "{frame:?}");
            frames.push(frame);
        }
        assert!(!frames.is_empty(), "a room subscription starts with a presence snapshot");
        let events: Vec<shared::chat::RoomEvent> = frames
            .iter()
            .map(|frame| serde_json::from_slice(&frame.body).expect("room events are JSON"))
            .collect();
        let shared::chat::RoomEvent::Presence { users } = &events[0] else {
            panic!("expected a presence snapshot first, got {:?}", events[0]);
        };
        let history = events[1..]
            .iter()
            .map(|event| match event {
                shared::chat::RoomEvent::Message(message) => message.clone(),
                other => panic!("expected replayed messages after the snapshot, got {other:?}"),
            })
            .collect();
        (users.clone(), history)
    }

    /// Expects a MESSAGE and returns its body as text.
    pub async fn expect_message(&mut self) -> (Frame, String) {
        let frame = self.recv().await;
        assert_eq!(frame.command.as_str(), "MESSAGE", "expected MESSAGE, got {frame:?}");
        let body = String::from_utf8(frame.body.to_vec()).unwrap();
        (frame, body)
    }

    /// Expects a room event on a room subscription.
    pub async fn expect_room_event(&mut self) -> shared::chat::RoomEvent {
        let (frame, body) = self.expect_message().await;
        assert_eq!(frame.headers.get("content-type"), Some("application/json"));
        serde_json::from_str(&body).expect("room events are JSON")
    }

    /// Asks for a receipt and returns every frame that arrived before it.
    pub async fn drain_until_receipt(&mut self, receipt: &str) -> Vec<Frame> {
        // A SUBSCRIBE-free way to ask for a receipt: BEGIN and ABORT a throwaway transaction.
        self.send(&format!("BEGIN\ntransaction:drain-{receipt}\n\n\0")).await;
        self.send(&format!("ABORT\ntransaction:drain-{receipt}\nreceipt:{receipt}\n\n\0")).await;
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame.command.as_str() == "RECEIPT"
                && frame.headers.get("receipt-id") == Some(receipt)
            {
                return frames;
            }
            frames.push(frame);
        }
    }
}

/// Polls `check` until it gives a value, or fails after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "the condition did not come true in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `redis-server` on a free port with its own directory; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` (from `$REDIS_SERVER` or `PATH`) and waits until it answers.
    pub async fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = tokio::process::Command::new(&binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start {binary} ({error}): install it with `cargo xtask setup`")
            });
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await {
                let mut reply = [0u8; 7];
                if stream.write_all(b"PING\r\n").await.is_ok()
                    && stream.read_exact(&mut reply).await.is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    break;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        RedisServer { port, _child: child, _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// A PostgreSQL server of its own, on a free port in a temporary directory; stopped when
/// dropped. PostgreSQL refuses to run as root, so it runs as the `postgres` user that
/// Debian's package creates (`setpriv` execs it, so the child is the server itself).
pub struct PostgresServer {
    pub port: u16,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

/// Where Debian puts PostgreSQL's programs (`$POSTGRES_BIN` overrides).
pub fn postgres_bin() -> std::path::PathBuf {
    std::env::var_os("POSTGRES_BIN").map_or_else(
        || std::path::PathBuf::from("/usr/lib/postgresql/15/bin"),
        std::path::PathBuf::from,
    )
}

/// A command that runs `program` of PostgreSQL's as the `postgres` user.
fn as_postgres(program: &str) -> std::process::Command {
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--reuid=postgres", "--regid=postgres", "--clear-groups", "--"])
        .arg(postgres_bin().join(program));
    command
}

impl PostgresServer {
    /// `initdb` into a fresh directory and start `postgres`; waits until it answers.
    pub async fn start() -> PostgresServer {
        let bin = postgres_bin();
        assert!(
            bin.join("initdb").exists(),
            "{} has no initdb: install PostgreSQL with `cargo xtask setup`",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status()
            .expect("chown the postgres directory");
        assert!(status.success());
        let output = as_postgres("initdb")
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(output.status.success(), "initdb: {}", String::from_utf8_lossy(&output.stderr));
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = PostgresServer::spawn(port, &dir);
        let server = PostgresServer { port, child, dir };
        server.wait().await;
        server
    }

    fn spawn(port: u16, dir: &tempfile::TempDir) -> tokio::process::Child {
        let mut command = as_postgres("postgres");
        command
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            // Tests need no durability across a crash of the machine.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        tokio::process::Command::from(command).kill_on_drop(true).spawn().expect("start postgres")
    }

    async fn wait(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE * 2;
        while tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "postgres did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `postgres://...` for the server.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as a crash would (immediate shutdown, no checkpoint) and starts it
    /// again on the same data and port; it recovers from its write-ahead log.
    pub async fn restart(&mut self) {
        self.quit();
        let _ = self.child.wait().await;
        self.child = PostgresServer::spawn(self.port, &self.dir);
        self.wait().await;
    }

    /// SIGQUIT: PostgreSQL's immediate shutdown, which takes its backends down with it.
    fn quit(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-QUIT", &pid.to_string()]).status();
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.quit();
    }
}

/// The body of a chunked HTTP answer.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line]).unwrap().trim(), 16)
            .expect("a hexadecimal chunk size");
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[line + 2..line + 2 + size]);
        raw = &raw[line + 2 + size + 2..];
    }
}
