//! A small typed STOMP client for the tests, built on `shared`'s codec: connect with a token,
//! subscribe, send, and wait for what comes back.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use shared::stomp::{
    AckMode, ClientFrame, Decoder, Headers, HeartBeat, ServerFrame, encode_to_bytes,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::DEADLINE;

/// A connected STOMP session.
pub struct StompClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: Decoder,
    buf: BytesMut,
    /// The `session` header of CONNECTED: the node's id, a dash, the session number.
    pub session: String,
}

impl StompClient {
    /// Opens `ws_url` and CONNECTs as `login` with `token`.
    pub async fn connect(ws_url: &str, login: &str, token: &str) -> Result<StompClient> {
        let mut request = ws_url.into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("v12.stomp"));
        let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
            .await
            .context("websocket handshake timed out")??;
        StompClient::greet(ws, login, token).await
    }

    /// Like [`StompClient::connect`], over a TCP connection the caller opened (from an
    /// address of its choosing, say).
    pub async fn connect_over(
        stream: TcpStream,
        ws_url: &str,
        login: &str,
        token: &str,
    ) -> Result<StompClient> {
        let mut request = ws_url.into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("v12.stomp"));
        let handshake = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream));
        let (ws, _) = tokio::time::timeout(DEADLINE, handshake)
            .await
            .context("websocket handshake timed out")??;
        StompClient::greet(ws, login, token).await
    }

    /// CONNECT on an open WebSocket.
    async fn greet(
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        login: &str,
        token: &str,
    ) -> Result<StompClient> {
        let mut client = StompClient {
            ws,
            decoder: Decoder::default(),
            buf: BytesMut::new(),
            session: String::new(),
        };
        client
            .send_frame(ClientFrame::Connect {
                stomp_command: false,
                accept_version: Some("1.2".into()),
                host: Some("localhost".into()),
                login: Some(login.into()),
                passcode: Some(token.into()),
                heart_beat: HeartBeat::default(),
                headers: Headers::new(),
            })
            .await?;
        match client.next_frame().await? {
            ServerFrame::Connected { session, .. } => client.session = session.unwrap_or_default(),
            other => bail!("expected CONNECTED, got {other:?}"),
        }
        Ok(client)
    }

    /// The node this session is on.
    pub fn node(&self) -> &str {
        self.session.rsplit_once('-').map_or("", |(node, _)| node)
    }

    /// Sends one typed frame.
    pub async fn send_frame(&mut self, frame: ClientFrame) -> Result<()> {
        let bytes = encode_to_bytes(&frame.into_frame());
        self.ws.send(Message::text(String::from_utf8(bytes.to_vec())?)).await?;
        Ok(())
    }

    /// Subscribes with extra headers (`since`), waiting for the receipt. Returns the MESSAGE
    /// bodies that came before it (snapshot and replay).
    pub async fn subscribe(
        &mut self,
        destination: &str,
        id: &str,
        extra: &[(&str, &str)],
    ) -> Result<Vec<Bytes>> {
        let receipt = format!("sub-{id}");
        self.send_frame(ClientFrame::Subscribe {
            destination: destination.into(),
            id: id.into(),
            ack: AckMode::Auto,
            receipt: Some(receipt.clone()),
            headers: extra.iter().copied().collect(),
        })
        .await?;
        self.bodies_until_receipt(&receipt).await
    }

    /// Sends a chat message (`text/plain`) to a destination, with a receipt and an optional
    /// idempotency key; waits for the receipt and returns the MESSAGE bodies seen meanwhile.
    pub async fn say(
        &mut self,
        destination: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<Vec<Bytes>> {
        let receipt = format!("say-{}", key.unwrap_or(text));
        let mut headers: Headers = [("content-type", "text/plain")].into_iter().collect();
        if let Some(key) = key {
            headers.push("idempotency-key", key);
        }
        self.send_frame(ClientFrame::Send {
            destination: destination.into(),
            transaction: None,
            receipt: Some(receipt.clone()),
            headers,
            body: Bytes::from(text.to_owned()),
        })
        .await?;
        self.bodies_until_receipt(&receipt).await
    }

    /// Sends a JSON body without waiting.
    pub async fn send_json(&mut self, destination: &str, json: &str) -> Result<()> {
        self.send_frame(ClientFrame::Send {
            destination: destination.into(),
            transaction: None,
            receipt: None,
            headers: [("content-type", "application/json")].into_iter().collect(),
            body: Bytes::from(json.to_owned()),
        })
        .await
    }

    async fn bodies_until_receipt(&mut self, receipt: &str) -> Result<Vec<Bytes>> {
        let mut bodies = Vec::new();
        loop {
            match self.next_frame().await? {
                ServerFrame::Receipt { receipt_id, .. } if receipt_id == receipt => {
                    return Ok(bodies);
                }
                ServerFrame::Message { body, .. } => bodies.push(body),
                ServerFrame::Error { message, .. } => {
                    bail!("ERROR: {}", message.unwrap_or_default())
                }
                _ => {}
            }
        }
    }

    /// The next MESSAGE body, within the deadline.
    pub async fn next_body(&mut self) -> Result<Bytes> {
        loop {
            match self.next_frame().await? {
                ServerFrame::Message { body, .. } => return Ok(body),
                ServerFrame::Error { message, .. } => {
                    bail!("ERROR: {}", message.unwrap_or_default())
                }
                _ => {}
            }
        }
    }

    /// The next MESSAGE body within `wait`, or `None`.
    pub async fn body_within(&mut self, wait: Duration) -> Result<Option<Bytes>> {
        match tokio::time::timeout(wait, self.next_body()).await {
            Ok(body) => body.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The next frame, within the deadline.
    pub async fn next_frame(&mut self) -> Result<ServerFrame> {
        tokio::time::timeout(DEADLINE, self.next_frame_unbounded())
            .await
            .context("no frame from the server in time")?
    }

    async fn next_frame_unbounded(&mut self) -> Result<ServerFrame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(ServerFrame::try_from(frame)?);
            }
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => self.buf.extend_from_slice(text.as_bytes()),
                Some(Ok(Message::Binary(data))) => self.buf.extend_from_slice(&data),
                Some(Ok(_)) => {}
                Some(Err(error)) => bail!("connection failed: {error}"),
                None => bail!("connection closed"),
            }
        }
    }
}

/// BEGIN `transaction`.
pub fn begin(transaction: &str) -> ClientFrame {
    ClientFrame::Begin { transaction: transaction.into(), receipt: None, headers: Headers::new() }
}

/// COMMIT `transaction`.
pub fn commit(transaction: &str) -> ClientFrame {
    ClientFrame::Commit { transaction: transaction.into(), receipt: None, headers: Headers::new() }
}

/// A plain-text SEND inside `transaction`.
pub fn send_in(transaction: &str, destination: &str, text: &str) -> ClientFrame {
    ClientFrame::Send {
        destination: destination.into(),
        transaction: Some(transaction.into()),
        receipt: None,
        headers: [("content-type", "text/plain")].into_iter().collect(),
        body: Bytes::from(text.to_owned()),
    }
}
