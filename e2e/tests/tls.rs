//! HTTPS and WSS served by Confab itself, checked by clients that verify the certificate;
//! SIGHUP swaps the certificate without dropping a connection; plain HTTP redirects.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use bytes::{Bytes, BytesMut};
use e2e::{Confab, free_port};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{Value, json};
use shared::stomp::{
    AckMode, ClientFrame, Decoder, Headers, HeartBeat, ServerFrame, encode_to_bytes,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A certificate authority of the test's own, and a server certificate it signed for
/// `localhost` and 127.0.0.1, written where `--tls-cert` and `--tls-key` point.
fn issue(name: &str, cert_file: &Path, key_file: &Path) -> Result<CertificateDer<'static>> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?
        .signed_by(&key, &ca)?;
    std::fs::write(cert_file, server.pem())?;
    std::fs::write(key_file, key.serialize_pem())?;
    Ok(ca.der().clone())
}

/// A TLS connection that trusts only `ca`.
async fn connect(addr: SocketAddr, ca: &CertificateDer<'static>) -> Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    let config = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost")?;
    Ok(TlsConnector::from(Arc::new(config)).connect(name, tcp).await?)
}

/// An HTTPS request; the status and JSON body.
async fn https(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let mut tls = connect(addr, ca).await?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // The server may close without TLS's close_notify; what came before counts.
    let _ = tls.read_to_end(&mut response).await;
    let response = String::from_utf8(response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP body")?;
    let status = head.split(' ').nth(1).context("no status")?.parse()?;
    Ok((status, if body.is_empty() { Value::Null } else { serde_json::from_str(body)? }))
}

/// A STOMP session over WSS.
struct Wss {
    ws: WebSocketStream<TlsStream<TcpStream>>,
    decoder: Decoder,
    buf: BytesMut,
}

impl Wss {
    async fn open(addr: SocketAddr, ca: &CertificateDer<'static>, token: &str) -> Result<Wss> {
        let tls = connect(addr, ca).await?;
        let mut request = "wss://localhost/ws".into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("v12.stomp"));
        let (ws, _) = tokio_tungstenite::client_async(request, tls).await?;
        let mut wss = Wss { ws, decoder: Decoder::default(), buf: BytesMut::new() };
        wss.send(ClientFrame::Connect {
            stomp_command: false,
            accept_version: Some("1.2".into()),
            host: Some("localhost".into()),
            login: Some("ann".into()),
            passcode: Some(token.into()),
            heart_beat: HeartBeat::default(),
            headers: Headers::new(),
        })
        .await?;
        match wss.next().await? {
            ServerFrame::Connected { .. } => {}
            other => bail!("expected CONNECTED, got {other:?}"),
        }
        wss.send(ClientFrame::Subscribe {
            destination: "/topic/room.lobby".into(),
            id: "lobby".into(),
            ack: AckMode::Auto,
            receipt: None,
            headers: Headers::new(),
        })
        .await?;
        Ok(wss)
    }

    async fn send(&mut self, frame: ClientFrame) -> Result<()> {
        let bytes = encode_to_bytes(&frame.into_frame());
        self.ws.send(Message::text(String::from_utf8(bytes.to_vec())?)).await?;
        Ok(())
    }

    async fn next(&mut self) -> Result<ServerFrame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(ServerFrame::try_from(frame)?);
            }
            match self.ws.next().await.context("closed")?? {
                Message::Text(text) => self.buf.extend_from_slice(text.as_bytes()),
                Message::Binary(data) => self.buf.extend_from_slice(&data),
                _ => {}
            }
        }
    }

    /// Says `text` in the lobby and waits for it to come back.
    async fn round_trip(&mut self, text: &str) -> Result<()> {
        self.send(ClientFrame::Send {
            destination: "/app/room.lobby".into(),
            transaction: None,
            receipt: Some(text.into()),
            headers: [("content-type", "text/plain")].into_iter().collect(),
            body: Bytes::from(text.to_owned()),
        })
        .await?;
        let (mut receipted, mut heard) = (false, false);
        while !(receipted && heard) {
            match tokio::time::timeout(e2e::DEADLINE, self.next()).await?? {
                ServerFrame::Receipt { receipt_id, .. } if receipt_id == text => receipted = true,
                ServerFrame::Message { body, .. }
                    if String::from_utf8_lossy(&body).contains(text) =>
                {
                    heard = true;
                }
                ServerFrame::Error { message, .. } => bail!("ERROR {message:?}"),
                _ => {}
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn https_and_wss_serve_and_a_reloaded_certificate_drops_nobody() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first_ca = issue("first CA", &cert, &key)?;
    let redirect = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (cert_arg, key_arg) = (cert.to_string_lossy(), key.to_string_lossy());
    let redirect_arg = redirect.to_string();
    let flags = ["--tls-cert", &cert_arg, "--tls-key", &key_arg, "--redirect-http", &redirect_arg];
    let server = Confab::start_logged(&flags, "warn").await?;
    let addr = server.addr;

    let (status, health) = https(addr, &first_ca, "GET", "/healthz", None).await?;
    ensure!(status == 200 && health["status"] == "ok", "{status} {health}");
    let credentials = json!({"username": "ann", "password": e2e::PASSWORD});
    let (status, account) =
        https(addr, &first_ca, "POST", "/api/register", Some(&credentials)).await?;
    ensure!(status == 201 || status == 200, "{status} {account}");
    let token = account["token"].as_str().context("token")?.to_owned();
    let mut wss = Wss::open(addr, &first_ca, &token).await?;
    wss.round_trip("over wss").await?;

    // A new certificate from another authority, and SIGHUP.
    let second_ca = issue("second CA", &cert, &key)?;
    server.signal("HUP").await?;
    e2e::eventually("the new certificate", || async {
        Ok(https(addr, &second_ca, "GET", "/healthz", None).await.ok())
    })
    .await?;
    ensure!(connect(addr, &first_ca).await.is_err(), "the old certificate is gone");
    // The session opened before the reload carries on.
    wss.round_trip("still here after the reload").await?;

    // A broken file is not taken: the certificate in use stays.
    std::fs::write(&cert, "not a certificate")?;
    server.signal("HUP").await?;
    e2e::eventually("the server to report the refused reload", || async {
        let log = std::fs::read_to_string(server.log_file()).unwrap_or_default();
        Ok(log.contains("TLS certificate not reloaded").then_some(()))
    })
    .await?;
    let (status, _) = https(addr, &second_ca, "GET", "/healthz", None).await?;
    ensure!(status == 200);
    wss.round_trip("and after a failed reload").await?;

    // Plain HTTP on the redirect port goes to HTTPS, path and query kept.
    let mut plain = TcpStream::connect(redirect).await?;
    plain.write_all(b"GET /some/room?x=1 HTTP/1.0\r\nHost: 127.0.0.1:80\r\n\r\n").await?;
    let mut response = String::new();
    plain.read_to_string(&mut response).await?;
    ensure!(response.starts_with("HTTP/1.0 308"), "{response}");
    let location = format!("location: https://127.0.0.1:{}/some/room?x=1", addr.port());
    ensure!(response.to_lowercase().contains(&location), "{response}");
    Ok(())
}

#[tokio::test]
async fn tls_options_are_checked_before_serving() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cert = dir.path().join("cert.pem").to_string_lossy().into_owned();
    let binary = e2e::confab_binary()?;
    // A certificate without its key.
    let output = tokio::process::Command::new(&binary).args(["--tls-cert", &cert]).output().await?;
    ensure!(!output.status.success());
    ensure!(String::from_utf8_lossy(&output.stderr).contains("--tls-key"));
    // Files that are not there.
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let args =
        ["--data", &data, "--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &cert];
    let output = tokio::process::Command::new(&binary).args(args).output().await?;
    ensure!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    ensure!(said.contains("cannot read") && said.contains("cert.pem"), "{said}");
    Ok(())
}
