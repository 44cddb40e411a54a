//! One STOMP-over-WebSocket connection, with small buffers so that thousands fit, and the
//! HTTP calls Confab needs before the first CONNECT.

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared::stomp::{
    AckMode, ClientFrame, Command, Decoder, Frame, Headers, HeartBeat, encode_to_bytes,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The writing half.
pub struct Writer(SplitSink<Ws, Message>);

/// The reading half, with its decoder.
pub struct Reader {
    stream: SplitStream<Ws>,
    decoder: Decoder,
    buf: BytesMut,
}

/// Opens a WebSocket to `url` offering STOMP 1.2, and sends nothing.
pub async fn open(url: &str) -> Result<Ws> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("v12.stomp"));
    let stream = TcpStream::connect(http_host(url)?).await?;
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
    Ok(ws)
}

/// Opens a WebSocket to `url` and completes CONNECT.
pub async fn connect(url: &str, login: &str, passcode: Option<&str>) -> Result<(Writer, Reader)> {
    connect_with(url, login, passcode, None).await
}

/// Like [`connect`]; with `receive_buffer`, the socket's kernel receive buffer is set that
/// small, to play a consumer that stops reading.
pub async fn connect_with(
    url: &str,
    login: &str,
    passcode: Option<&str>,
    receive_buffer: Option<u32>,
) -> Result<(Writer, Reader)> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("v12.stomp"));
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let host = http_host(url)?;
    // Loopback URLs are addresses already: no resolver round trip per connection.
    let address = match host.parse::<std::net::SocketAddr>() {
        Ok(address) => address,
        Err(_) => tokio::net::lookup_host(&host).await?.next().context("an address")?,
    };
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(address).await?;
    stream.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await?;
    let (sink, stream) = ws.split();
    let mut writer = Writer(sink);
    let mut reader = Reader { stream, decoder: Decoder::default(), buf: BytesMut::new() };
    writer
        .send(ClientFrame::Connect {
            stomp_command: false,
            accept_version: Some("1.2".into()),
            host: Some("/".into()),
            login: Some(login.into()),
            passcode: passcode.map(str::to_owned),
            heart_beat: HeartBeat::default(),
            headers: Headers::new(),
        })
        .await?;
    let frame = reader.next().await?;
    if frame.command != Command::Connected {
        bail!("CONNECT refused: {:?}", frame.headers.get("message"));
    }
    Ok((writer, reader))
}

impl Writer {
    /// Sends one frame as one WebSocket message.
    pub async fn send(&mut self, frame: ClientFrame) -> Result<()> {
        let bytes = encode_to_bytes(&frame.into_frame());
        let text = String::from_utf8(bytes.to_vec()).context("frames are text")?;
        self.0.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends `raw` exactly as it is, as one WebSocket message (several frames, or bad ones).
    pub async fn send_raw(&mut self, raw: &str) -> Result<()> {
        self.0.send(Message::text(raw.to_owned())).await?;
        Ok(())
    }

    /// SUBSCRIBE with a receipt.
    pub async fn subscribe(
        &mut self,
        destination: &str,
        ack: AckMode,
        receipt: &str,
    ) -> Result<()> {
        self.send(ClientFrame::Subscribe {
            destination: destination.into(),
            id: "0".into(),
            ack,
            receipt: Some(receipt.into()),
            headers: Headers::new(),
        })
        .await
    }

    /// SEND a text body.
    pub async fn publish(
        &mut self,
        destination: &str,
        body: String,
        receipt: Option<String>,
    ) -> Result<()> {
        self.send(ClientFrame::Send {
            destination: destination.into(),
            transaction: None,
            receipt,
            headers: [("content-type", "text/plain")].into_iter().collect(),
            body: Bytes::from(body),
        })
        .await
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.0.close().await;
    }
}

/// What the fast path makes of one WebSocket message.
pub enum Incoming {
    /// A MESSAGE: its body and, if present, its `ack` header.
    Message {
        /// The body.
        body: Bytes,
        /// The `ack` header.
        ack: Option<String>,
    },
    /// Any other frame, fully decoded.
    Other(Frame),
}

impl Reader {
    /// The next frame, cheaply: a WebSocket message holding exactly one MESSAGE frame is
    /// sliced without decoding its headers (the load generator must outrun the server);
    /// anything else goes through the full decoder.
    pub async fn next_fast(&mut self, want_ack: bool) -> Result<Incoming> {
        loop {
            if !self.buf.is_empty() {
                return Ok(Incoming::Other(self.next().await?));
            }
            let data = match self.stream.next().await {
                Some(Ok(Message::Text(text))) => Bytes::from(text),
                Some(Ok(Message::Binary(data))) => data,
                Some(Ok(_)) => continue,
                Some(Err(error)) => bail!("connection failed: {error}"),
                None => bail!("connection closed"),
            };
            if let Some(incoming) = slice_message(&data, want_ack) {
                return Ok(incoming);
            }
            self.buf.extend_from_slice(&data);
        }
    }

    /// The next frame.
    pub async fn next(&mut self) -> Result<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(frame);
            }
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => self.buf.extend_from_slice(text.as_bytes()),
                Some(Ok(Message::Binary(data))) => self.buf.extend_from_slice(&data),
                Some(Ok(_)) => {}
                Some(Err(error)) => bail!("connection failed: {error}"),
                None => bail!("connection closed"),
            }
        }
    }

    /// Reads until the RECEIPT `receipt`.
    pub async fn receipt(&mut self, receipt: &str) -> Result<()> {
        loop {
            let frame = self.next().await?;
            match frame.command {
                Command::Receipt if frame.headers.get("receipt-id") == Some(receipt) => {
                    return Ok(());
                }
                Command::Error => bail!("ERROR: {:?}", frame.headers.get("message")),
                _ => {}
            }
        }
    }
}

/// A single MESSAGE frame without a `content-length` surprise: `MESSAGE\n`, headers, a
/// blank line, the body, one NUL at the very end (EOLs after it allowed).
fn slice_message(data: &Bytes, want_ack: bool) -> Option<Incoming> {
    if !data.starts_with(b"MESSAGE\n") && !data.starts_with(b"MESSAGE\r\n") {
        return None;
    }
    let head_end = data.windows(2).position(|window| window == b"\n\n")? + 2;
    let trimmed = data.iter().rposition(|&byte| byte != b'\n' && byte != b'\r')?;
    if data[trimmed] != 0 || data[head_end..trimmed].contains(&0) {
        return None;
    }
    let ack = if want_ack {
        let head = std::str::from_utf8(&data[..head_end]).ok()?;
        head.lines().find_map(|line| line.strip_prefix("ack:")).map(str::to_owned)
    } else {
        None
    };
    Some(Incoming::Message { body: data.slice(head_end..trimmed), ack })
}

/// The HTTP address of a `ws://host:port/...` URL.
fn http_host(url: &str) -> Result<String> {
    let rest = url.split("://").nth(1).context("a ws:// url")?;
    Ok(rest.split('/').next().unwrap_or_default().to_owned())
}

/// One HTTP/1.0 JSON request; returns the status and body.
async fn http(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<(u16, String)> {
    let host = http_host(url)?;
    let mut stream = TcpStream::connect(&host).await?;
    let auth = token.map(|token| format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").context("an HTTP answer")?;
    let status = head.split(' ').nth(1).context("a status")?.parse()?;
    Ok((status, body.to_owned()))
}

/// Registers `login` (or signs in if it exists) and returns a session token.
pub async fn token(url: &str, login: &str, password: &str) -> Result<String> {
    let credentials = serde_json::json!({ "username": login, "password": password }).to_string();
    let (status, body) = http(url, "POST", "/api/register", None, &credentials).await?;
    let (status, body) = if status == 409 {
        http(url, "POST", "/api/login", None, &credentials).await?
    } else {
        (status, body)
    };
    if !(200..300).contains(&status) {
        bail!("cannot sign in as {login}: {status} {body}");
    }
    let json: serde_json::Value = serde_json::from_str(&body)?;
    Ok(json["token"].as_str().context("a token")?.to_owned())
}

/// Creates a chat room, if it does not exist yet.
pub async fn create_room(url: &str, token: &str, room: &str) -> Result<()> {
    let body = serde_json::json!({ "name": room }).to_string();
    let (status, answer) = http(url, "POST", "/api/rooms", Some(token), &body).await?;
    if !(200..300).contains(&status) && status != 409 {
        bail!("cannot create room {room}: {status} {answer}");
    }
    Ok(())
}
