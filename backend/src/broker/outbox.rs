//! A session's bounded outbox: encoded frames waiting for the socket writer.
//!
//! The broker pushes without waiting. When a consumer falls so far behind that its
//! outbox is full, the push fails, the outbox is marked as overflowed, and the writer ends the
//! connection with an ERROR: a slow consumer never makes the server's memory grow and never
//! slows the publisher.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

/// What the writer of a connection is asked to do.
#[derive(Debug)]
pub enum Outgoing {
    /// Send one encoded STOMP frame as one WebSocket message.
    Frame {
        /// The frame, as on the wire.
        bytes: Bytes,
        /// For MESSAGE frames of client-acknowledged subscriptions: what an ACK will name.
        ack: Option<AckRef>,
    },
    /// Send several frames in order, each as its own WebSocket message: a subscription's
    /// replay. One item in the outbox, however long, so a replay never overflows it.
    Batch(Vec<Outgoing>),
    /// Send a heart-beat EOL whenever nothing else was sent for this long.
    HeartBeat(Duration),
    /// Send what is queued, then close the connection.
    Close,
}

impl Outgoing {
    /// A frame that needs no acknowledgement.
    pub fn frame(bytes: Bytes) -> Outgoing {
        Outgoing::Frame { bytes, ack: None }
    }
}

/// Identifies one delivery that the client must ACK or NACK.
#[derive(Debug, Clone)]
pub struct AckRef {
    /// The MESSAGE's `ack` header.
    pub ack_id: Arc<str>,
    /// The subscription it was delivered on.
    pub subscription: Arc<str>,
    /// Whether an ACK also covers earlier deliveries (`ack:client`).
    pub cumulative: bool,
}

/// The sending half, cloned into every subscription of the session.
#[derive(Debug, Clone)]
pub struct Outbox {
    queue: mpsc::Sender<Outgoing>,
    overflow: Arc<Overflow>,
}

#[derive(Debug, Default)]
struct Overflow {
    happened: AtomicBool,
    notify: Notify,
}

/// The receiving half, owned by the connection's writer.
#[derive(Debug)]
pub struct OutboxReceiver {
    queue: mpsc::Receiver<Outgoing>,
    overflow: Arc<Overflow>,
}

impl Outbox {
    /// An outbox that holds at most `capacity` items.
    pub fn with_capacity(capacity: usize) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::channel(capacity);
        let overflow = Arc::new(Overflow::default());
        (
            Outbox { queue: sender, overflow: overflow.clone() },
            OutboxReceiver { queue: receiver, overflow },
        )
    }

    /// Queues `item` without waiting. Returns `false` when it was not queued: the outbox
    /// overflowed (the connection is being closed as a slow consumer) or is already closed.
    pub fn push(&self, item: Outgoing) -> bool {
        match self.queue.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflow.happened.swap(true, Ordering::Relaxed) {
                    self.overflow.notify.notify_one();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether the receiving side is gone.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

impl OutboxReceiver {
    /// The next item; `None` once every [`Outbox`] is dropped.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        self.queue.recv().await
    }

    /// An item that is already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        self.queue.try_recv().ok()
    }

    /// A handle that tells when a push has failed because the outbox was full.
    pub fn overflow_signal(&self) -> OverflowSignal {
        OverflowSignal(self.overflow.clone())
    }
}

/// Tells the writer that its consumer fell too far behind.
#[derive(Debug)]
pub struct OverflowSignal(Arc<Overflow>);

impl OverflowSignal {
    /// Whether a push has failed because the outbox was full.
    pub fn happened(&self) -> bool {
        self.0.happened.load(Ordering::Relaxed)
    }

    /// Completes once a push has failed because the outbox was full.
    pub async fn wait(&self) {
        if !self.0.happened.load(Ordering::Relaxed) {
            self.0.notify.notified().await;
        }
    }
}
