//! The Confab server as a library: [`run`] serves STOMP over WebSocket at `/ws`, the
//! health check, and the built browser client, on one listener.
//!
//! The binary (`main.rs`) only parses the command line, binds, and calls [`run`]; tests
//! call [`run`] on a listener bound to port 0.

pub mod broker;
pub mod config;
pub mod http;
pub mod shutdown;
mod ws;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

pub use config::Config;

use crate::broker::Broker;
use crate::shutdown::{Shutdown, ShutdownGuard};

/// What every request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The STOMP broker of this node.
    pub broker: Broker,
    /// Handed to each WebSocket session.
    pub guard: ShutdownGuard,
}

/// How long sessions get to say goodbye once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves until `stop` completes, then closes every session with an ERROR and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shutdown = Shutdown::default();
    let state = AppState { broker: Broker::new(config.broker()), guard: shutdown.guard() };
    let router = http::router(state, &config.static_dir);
    axum::serve(listener, router).with_graceful_shutdown(stop).await?;
    shutdown.stop(SHUTDOWN_GRACE).await;
    Ok(())
}
