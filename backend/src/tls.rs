//! HTTPS and WSS served directly (`--tls-cert`, `--tls-key`), with rustls.
//!
//! The certificate sits behind a resolver that SIGHUP reloads: new handshakes use the new
//! certificate, open connections keep theirs and are never dropped. Handshakes run in
//! their own tasks, each with a deadline, so a client that stalls mid-handshake delays
//! nobody; only finished handshakes reach the HTTP server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::response::IntoResponse;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ServerConfig, crypto};
use tokio_rustls::server::TlsStream;

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// The certificate and key files, and what was last loaded from them.
#[derive(Debug)]
pub struct Certificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Loads the PEM certificate chain and private key.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Certificate>, TlsError> {
        let current = RwLock::new(Arc::new(certified_key(cert_path, key_path)?));
        Ok(Arc::new(Certificate {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current,
        }))
    }

    /// Reads the files again; on any error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(certified_key(&self.cert_path, &self.key_path)?);
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// A TLS acceptor that always presents the current certificate.
    pub fn acceptor(self: &Arc<Certificate>) -> Result<TlsAcceptor, TlsError> {
        let provider = Arc::new(crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError(error.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

fn certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(Iterator::collect)
        .map_err(|error| TlsError(format!("cannot read {}: {error}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(TlsError(format!("no certificate in {}", cert_path.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|error| TlsError(format!("cannot read {}: {error}", key_path.display())))?;
    let signing = crypto::ring::sign::any_supported_type(&key)
        .map_err(|error| TlsError(format!("unusable key in {}: {error}", key_path.display())))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|error| {
        TlsError(format!(
            "{} and {} do not belong together: {error}",
            cert_path.display(),
            key_path.display()
        ))
    })?;
    Ok(certified)
}

/// Reloads `certificate` on every SIGHUP, as `systemctl reload` and certbot's deploy hooks
/// expect; a broken file is reported and the certificate in use stays.
#[cfg(unix)]
pub async fn reload_on_hangup(certificate: Arc<Certificate>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP: the certificate will not reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match certificate.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(error) => {
                tracing::warn!(%error, "TLS certificate not reloaded; keeping the old one")
            }
        }
    }
}

/// How long a client has to finish its handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// Finished TLS connections, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Accepts on `tcp` and runs each handshake in its own task.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (finished, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, mostly: wait instead of spinning.
                        tracing::warn!(%error, "cannot accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, handed) = (acceptor.clone(), finished.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if finished.is_closed() {
                    return;
                }
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task is gone (it never returns while this listener lives).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Answers every plain-HTTP request with a permanent redirect to the same path on
/// `https_port`.
pub fn redirect_router(https_port: u16) -> axum::Router {
    axum::Router::new().fallback(move |request: axum::extract::Request| async move {
        let host = request
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or("localhost");
        let name = strip_port(host);
        let authority =
            if https_port == 443 { name.to_owned() } else { format!("{name}:{https_port}") };
        let path = request.uri().path_and_query().map_or("/", |path| path.as_str());
        let location = format!("https://{authority}{path}");
        match axum::http::HeaderValue::from_str(&location) {
            Ok(location) => (
                axum::http::StatusCode::PERMANENT_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
                .into_response(),
            Err(_) => crate::http::HttpError::bad_request("bad Host header").into_response(),
        }
    })
}

/// `host:port` → `host`, `[::1]:port` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(name, _)| &host[..=name.len()]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("chat.example.com:80"), "chat.example.com");
        assert_eq!(strip_port("chat.example.com"), "chat.example.com");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn missing_or_mismatched_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = Certificate::load(&missing, &missing).unwrap_err();
        assert!(error.to_string().contains("cannot read"), "{error}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = Certificate::load(&empty, &empty).unwrap_err();
        assert!(error.to_string().contains("no certificate"), "{error}");
    }
}
