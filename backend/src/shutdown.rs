//! Shutdown: the signal that starts it, and the fan-out that tells every session.

use std::sync::{Arc, Mutex, PoisonError};

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
#[derive(Debug)]
pub struct ShutdownGuard {
    stopping: watch::Receiver<bool>,
    _alive: Option<mpsc::Sender<()>>,
}

impl ShutdownGuard {
    /// Completes when the server begins to shut down.
    pub async fn stopping(&mut self) {
        // An error means the sender is gone, which also means shutting down.
        let _ = self.stopping.wait_for(|stopping| *stopping).await;
    }
}

/// Makes guards for new sessions; a cheap handle, in every request's state. It keeps
/// nothing waiting itself: a request that never ends holds a handle, not a guard.
#[derive(Debug, Clone)]
pub struct Guards {
    inner: Arc<GuardsInner>,
}

#[derive(Debug)]
struct GuardsInner {
    stopping: watch::Receiver<bool>,
    /// Taken when shutdown begins: sessions that start afterwards are not waited for.
    alive: Mutex<Option<mpsc::Sender<()>>>,
}

impl Guards {
    /// A guard for a new session.
    pub fn guard(&self) -> ShutdownGuard {
        let alive = self.inner.alive.lock().unwrap_or_else(PoisonError::into_inner).clone();
        ShutdownGuard { stopping: self.inner.stopping.clone(), _alive: alive }
    }
}

/// The server's side: starts the shutdown and waits for the sessions to end.
#[derive(Debug)]
pub struct Shutdown {
    stopping: watch::Sender<bool>,
    guards: Guards,
    alive_rx: mpsc::Receiver<()>,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        let (alive_tx, alive_rx) = mpsc::channel(1);
        let (stopping, stopping_rx) = watch::channel(false);
        let guards = Guards {
            inner: Arc::new(GuardsInner {
                stopping: stopping_rx,
                alive: Mutex::new(Some(alive_tx)),
            }),
        };
        Shutdown { stopping, guards, alive_rx }
    }
}

impl Shutdown {
    /// The handle that makes guards.
    pub fn guards(&self) -> Guards {
        self.guards.clone()
    }

    /// Tells every session to stop.
    pub fn begin(&self) {
        self.stopping.send_replace(true);
        self.guards.inner.alive.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    /// Waits until every session's guard is gone, or `grace` passes.
    pub async fn wait(mut self, grace: std::time::Duration) {
        self.begin();
        // `recv` returns `None` once the last guard is dropped.
        if tokio::time::timeout(grace, self.alive_rx.recv()).await.is_err() {
            tracing::warn!("some sessions did not end within {grace:?}");
        }
    }
}
