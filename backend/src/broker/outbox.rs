//! A session's bounded outbox: encoded frames waiting for the socket writer.
//!
//! The broker pushes without waiting. When a consumer falls so far behind that its
//! outbox is full (in frames or in bytes), the push fails, the outbox is marked as overflowed, and the writer ends the
//! connection with an ERROR: a slow consumer never makes the server's memory grow and never
//! slows the publisher.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

    /// What the item counts against the outbox's byte budget.
    fn counted_bytes(&self) -> usize {
        match self {
            Outgoing::Frame { bytes, .. } => bytes.len(),
            Outgoing::Batch(_) | Outgoing::HeartBeat(_) | Outgoing::Close => 0,
        }
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

#[derive(Debug)]
struct Overflow {
    happened: AtomicBool,
    notify: Notify,
    /// Bytes of frames queued and not yet taken by the writer.
    queued_bytes: AtomicUsize,
    byte_limit: usize,
}

/// The receiving half, owned by the connection's writer.
#[derive(Debug)]
pub struct OutboxReceiver {
    queue: mpsc::Receiver<Outgoing>,
    overflow: Arc<Overflow>,
}

impl Outbox {
    /// An outbox that holds at most `capacity` items and `byte_limit` bytes of frames
    /// (a replay batch is not counted: it is bounded by the replay limit).
    pub fn with_capacity(capacity: usize, byte_limit: usize) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::channel(capacity);
        let overflow = Arc::new(Overflow {
            happened: AtomicBool::new(false),
            notify: Notify::new(),
            queued_bytes: AtomicUsize::new(0),
            byte_limit,
        });
        (
            Outbox { queue: sender, overflow: overflow.clone() },
            OutboxReceiver { queue: receiver, overflow },
        )
    }

    /// Queues `item` without waiting. Returns `false` when it was not queued: the outbox
    /// overflowed (the connection is being closed as a slow consumer) or is already closed.
    pub fn push(&self, item: Outgoing) -> bool {
        let size = item.counted_bytes();
        let before = self.overflow.queued_bytes.fetch_add(size, Ordering::Relaxed);
        // One frame larger than the whole budget still passes into an empty outbox.
        if before > 0 && before + size > self.overflow.byte_limit {
            self.overflow.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.overflowed();
            return false;
        }
        match self.queue.try_send(item) {
            Ok(()) => true,
            Err(error) => {
                self.overflow.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                if matches!(error, mpsc::error::TrySendError::Full(_)) {
                    self.overflowed();
                }
                false
            }
        }
    }

    fn overflowed(&self) {
        if !self.overflow.happened.swap(true, Ordering::Relaxed) {
            self.overflow.notify.notify_one();
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
        let item = self.queue.recv().await;
        self.taken(item.as_ref());
        item
    }

    /// An item that is already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let item = self.queue.try_recv().ok();
        self.taken(item.as_ref());
        item
    }

    fn taken(&self, item: Option<&Outgoing>) {
        if let Some(item) = item {
            self.overflow.queued_bytes.fetch_sub(item.counted_bytes(), Ordering::Relaxed);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(size: usize) -> Outgoing {
        Outgoing::frame(Bytes::from(vec![b'x'; size]))
    }

    #[test]
    fn the_byte_budget_bounds_a_consumer_that_does_not_read() {
        let (outbox, mut receiver) = Outbox::with_capacity(100, 1000);
        let signal = receiver.overflow_signal();
        assert!(outbox.push(frame(600)));
        assert!(outbox.push(frame(400)));
        assert!(!signal.happened());
        assert!(!outbox.push(frame(1)), "over the byte budget");
        assert!(signal.happened());
        // Taking a frame gives its bytes back.
        assert!(receiver.try_recv().is_some());
        assert!(outbox.push(frame(500)));
    }

    #[test]
    fn one_large_frame_fits_an_empty_outbox_and_replays_are_not_counted() {
        let (outbox, _receiver) = Outbox::with_capacity(100, 1000);
        assert!(outbox.push(Outgoing::Batch(vec![frame(5000)])));
        assert!(outbox.push(frame(5000)));
        assert!(!outbox.push(frame(1)));
    }

    #[test]
    fn the_frame_count_bounds_too() {
        let (outbox, receiver) = Outbox::with_capacity(2, usize::MAX);
        assert!(outbox.push(frame(1)));
        assert!(outbox.push(frame(1)));
        assert!(!outbox.push(frame(1)));
        assert!(receiver.overflow_signal().happened());
    }
}
