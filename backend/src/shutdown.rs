//! Shutdown: the signal that starts it, and the fan-out that tells every session.

use tokio::sync::{mpsc, watch};

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Held by every live session: tells it when to stop, and keeps the server waiting for it.
#[derive(Debug, Clone)]
pub struct ShutdownGuard {
    stopping: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl ShutdownGuard {
    /// Completes when the server begins to shut down.
    pub async fn stopping(&mut self) {
        // An error means the sender is gone, which also means shutting down.
        let _ = self.stopping.wait_for(|stopping| *stopping).await;
    }
}

/// The server's side: starts the shutdown and waits for the sessions to end.
#[derive(Debug)]
pub struct Shutdown {
    stopping: watch::Sender<bool>,
    alive_tx: mpsc::Sender<()>,
    alive_rx: mpsc::Receiver<()>,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        let (alive_tx, alive_rx) = mpsc::channel(1);
        Shutdown { stopping: watch::channel(false).0, alive_tx, alive_rx }
    }
}

impl Shutdown {
    /// A guard for a new session.
    pub fn guard(&self) -> ShutdownGuard {
        ShutdownGuard { stopping: self.stopping.subscribe(), _alive: self.alive_tx.clone() }
    }

    /// Tells every session to stop, then waits until all have ended or `grace` passes.
    pub async fn stop(self, grace: std::time::Duration) {
        let Shutdown { stopping, alive_tx, mut alive_rx } = self;
        stopping.send_replace(true);
        drop(alive_tx);
        // `recv` returns `None` once the last guard is dropped.
        if tokio::time::timeout(grace, alive_rx.recv()).await.is_err() {
            tracing::warn!("some sessions did not end within {grace:?}");
        }
    }
}
