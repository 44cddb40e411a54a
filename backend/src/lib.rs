//! The Confab server as a library: [`run`] serves STOMP over WebSocket at `/ws`, the
//! health check, and the built browser client, on one listener.
//!
//! The binary (`main.rs`) only parses the command line, binds, and calls [`run`]; tests
//! call [`run`] on a listener bound to port 0.

pub mod auth;
pub mod broker;
pub mod config;
pub mod engine;
pub mod http;
pub mod limits;
pub mod shutdown;
mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use config::Config;

use crate::broker::{Broker, Hub};
use crate::engine::{Embedded, Engine, EngineError, RedisConfig, RedisEngine};
use crate::limits::{ConnectionSlots, Protection, TrustedProxies};
use crate::shutdown::{Shutdown, ShutdownGuard};

/// Why the server could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Engine(#[from] EngineError),
    /// The listener failed.
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
}

/// What every request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The STOMP broker of this node.
    pub broker: Broker,
    /// Handed to each WebSocket session.
    pub guard: ShutdownGuard,
    /// Rate limits, connection caps, trusted proxies.
    pub protection: Arc<Protection>,
    /// Origins besides the server's own whose pages may open WebSockets.
    pub allowed_origins: Arc<[String]>,
    /// Rooms one user may create.
    pub max_rooms_per_user: u64,
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
    let engine = match &config.redis {
        None => Engine::Embedded(Embedded::open(&config.data, Hub::default())?),
        Some(url) => {
            let redis = RedisConfig {
                url: url.clone(),
                prefix: config.redis_prefix.clone(),
                history_cap: config.history_cap,
            };
            Engine::Redis(RedisEngine::connect(redis, Hub::default()).await?)
        }
    };
    let shutdown = Shutdown::default();
    let protection = Protection::new(
        TrustedProxies::new(config.trusted_proxies.clone()),
        ConnectionSlots::new(config.max_connections, config.max_connections_per_address),
    );
    let state = AppState {
        broker: Broker::new(config.broker(), engine),
        guard: shutdown.guard(),
        protection: Arc::new(protection),
        allowed_origins: config.allowed_origins.clone().into(),
        max_rooms_per_user: config.max_rooms_per_user,
    };
    let router = http::router(state, &config.static_dir);
    // Chat frames are small and latency matters: no Nagle delay on any connection.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stop)
        .await?;
    shutdown.stop(SHUTDOWN_GRACE).await;
    Ok(())
}
