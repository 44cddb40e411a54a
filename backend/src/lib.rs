//! The Confab server as a library: [`run`] serves STOMP over WebSocket at `/ws`, the
//! health check, and the built browser client, on one listener.
//!
//! The binary (`main.rs`) only parses the command line, binds, and calls [`run`]; tests
//! call [`run`] on a listener bound to port 0.

pub mod auth;

/// The rules of room access, shared with the page.
pub use shared::access;
pub mod bots;
pub mod bus;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod files;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod shutdown;
pub mod stomp;
pub mod store;
pub mod tls;
pub mod transfer;
mod ws;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use config::Config;

use crate::bus::local::LocalBus;
use crate::bus::redis::RedisBus;
use crate::bus::{Bus, BusError};
use crate::engine::{Engine, EngineConfig};
use crate::limits::{ConnectionSlots, Protection, TrustedProxies};
use crate::shutdown::{Guards, Shutdown};
use crate::stomp::Broker;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::{Store, StoreError};

/// Why the server could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The bus could not be reached.
    #[error("cannot reach the bus: {0}")]
    Bus(#[from] BusError),
    /// The listener failed.
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
    /// The certificate or key cannot be used.
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
}

/// What every request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The node's chat service.
    pub engine: Engine,
    /// The STOMP broker of this node.
    pub broker: Broker,
    /// Makes the shutdown guard of each WebSocket session.
    pub guards: Guards,
    /// Rate limits, connection caps, trusted proxies.
    pub protection: Arc<Protection>,
    /// Origins besides the server's own whose pages may open WebSockets.
    pub allowed_origins: Arc<[String]>,
    /// Rooms one user may create.
    pub max_rooms_per_user: u64,
    /// Who may create an account.
    pub registration: shared::api::Registration,
    /// Uploads, avatars.
    pub files: files::Files,
}

/// Opens the store the configuration names: PostgreSQL with `--postgres`, else the
/// embedded file under `--data`.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &config.postgres {
        Some(url) => Arc::new(PostgresStore::connect(url).await?),
        None => {
            let options = SqliteOptions {
                max_bytes: config.store_max_mb.map(|mb| mb.saturating_mul(1 << 20)),
            };
            Arc::new(SqliteStore::open(&config.data, options)?)
        }
    })
}

/// How long sessions get to say goodbye once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Opens the store, serves until `stop` completes, then closes every session with an ERROR
/// and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // The metrics (and the epoch of their time stamps) exist before any connection.
    let _ = metrics::metrics();
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::Certificate::load(cert, key)?),
        _ => None,
    };
    let store = open_store(&config).await?;
    let (incoming, received) = mpsc::unbounded_channel();
    let bus: Arc<dyn Bus> = match &config.redis {
        Some(url) => Arc::new(
            RedisBus::connect(url, &config.redis_prefix, clock::node_id(), incoming).await?,
        ),
        None => Arc::new(LocalBus::default()),
    };
    let engine_config = EngineConfig { session_lifetime: config.session_lifetime() };
    tokio::spawn(files::collect(
        store.clone(),
        Duration::from_secs(config.unsent_files_minutes.saturating_mul(60)),
    ));
    let uploads = files::Files::new(store.clone(), config.max_upload_mb.saturating_mul(1_000_000));
    let engine = Engine::new(store, bus, received, engine_config);
    let shutdown = Shutdown::default();
    let protection = Protection::new(
        TrustedProxies::new(config.trusted_proxies.clone()),
        ConnectionSlots::new(config.max_connections, config.max_connections_per_address),
    );
    let state = AppState {
        broker: Broker::new(config.broker(), engine.clone()),
        engine,
        guards: shutdown.guards(),
        protection: Arc::new(protection),
        allowed_origins: config.allowed_origins.clone().into(),
        max_rooms_per_user: config.max_rooms_per_user,
        registration: config.registration.into(),
        files: uploads,
    };
    let router = http::router(state, &config.static_dir, &config.json_path);
    if let Some(address) = config.metrics_listen {
        let listener = TcpListener::bind(address).await?;
        tracing::info!(address = %listener.local_addr()?, "metrics at /metrics");
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, http::metrics_router()).await {
                tracing::warn!(%error, "the metrics listener failed");
            }
        });
    }
    // When `stop` completes, the server stops accepting, sessions are told at once, and
    // HTTP requests still running get SHUTDOWN_GRACE to finish: a request whose body never
    // comes cannot hold the shutdown (security review L12).
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stopping.send(true);
    });
    let graceful = {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let server: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        None => {
            // Chat frames are small and latency matters: no Nagle delay on any connection.
            let listener = listener.tap_io(|stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            });
            Box::pin(axum::serve(listener, app).with_graceful_shutdown(graceful).into_future())
        }
        Some(certificate) => {
            let https_port = listener.local_addr()?.port();
            let listener = tls::TlsListener::new(listener, certificate.acceptor()?)?;
            #[cfg(unix)]
            tokio::spawn(tls::reload_on_hangup(certificate));
            if let Some(address) = config.redirect_http {
                let plain = TcpListener::bind(address).await?;
                tokio::spawn(async move {
                    let _ = axum::serve(plain, tls::redirect_router(https_port)).await;
                });
            }
            // `tap_io` only so that axum hands the peer's address to the handlers.
            let listener = listener.tap_io(|_| {});
            Box::pin(axum::serve(listener, app).with_graceful_shutdown(graceful).into_future())
        }
    };
    tokio::pin!(server);
    let mut stopped = stopped;
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::from),
        _ = stopped.wait_for(|stop| *stop) => {}
    }
    shutdown.begin();
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("requests still running after {SHUTDOWN_GRACE:?} were cut off"),
    }
    shutdown.wait(SHUTDOWN_GRACE).await;
    Ok(())
}
