//! A session's bounded outbox: encoded frames waiting for the socket writer.
//!
//! Live delivery pushes without waiting. When a consumer falls so far behind that its outbox
//! is full (in frames or in bytes), the push fails, the outbox is marked as overflowed, and
//! the writer ends the connection with an ERROR: a slow consumer never makes the server's
//! memory grow and never slows the publisher.
//!
//! A replay is the other way round: it waits. It pushes a chunk only while the outbox is
//! at most half full, one replay of a connection at a time, so replays never overflow an
//! outbox and a client that does not read holds at most its budget, however many
//! subscriptions it asks to replay.

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
        /// For MESSAGE frames: when this node began delivering the message, as a
        /// [`crate::metrics::Stamp`] (4 bytes: every queued frame carries it, and each
        /// connection's queue is allocated in blocks of 32 frames).
        queued_at: Option<crate::metrics::Stamp>,
    },
    /// Send a heart-beat EOL whenever nothing else was sent for this long.
    HeartBeat(Duration),
    /// Send what is queued, then close the connection.
    Close,
}

impl Outgoing {
    /// A frame that needs no acknowledgement.
    pub fn frame(bytes: Bytes) -> Outgoing {
        Outgoing::Frame { bytes, ack: None, queued_at: None }
    }

    /// What the item counts against the outbox's byte budget.
    fn counted_bytes(&self) -> usize {
        match self {
            Outgoing::Frame { bytes, .. } => bytes.len(),
            Outgoing::HeartBeat(_) | Outgoing::Close => 0,
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
    /// A replay waits for room: the writer wakes it when it takes frames.
    replay_waiting: AtomicBool,
    room: Notify,
    /// One replay pushes at a time.
    replay_turn: tokio::sync::Mutex<()>,
}

/// The receiving half, owned by the connection's writer.
#[derive(Debug)]
pub struct OutboxReceiver {
    queue: mpsc::Receiver<Outgoing>,
    overflow: Arc<Overflow>,
}

impl Outbox {
    /// An outbox that holds at most `capacity` items and `byte_limit` bytes of frames.
    pub fn with_capacity(capacity: usize, byte_limit: usize) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::channel(capacity);
        let overflow = Arc::new(Overflow {
            happened: AtomicBool::new(false),
            notify: Notify::new(),
            queued_bytes: AtomicUsize::new(0),
            byte_limit,
            replay_waiting: AtomicBool::new(false),
            room: Notify::new(),
            replay_turn: tokio::sync::Mutex::new(()),
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

    /// Whether the receiving side is gone, or the connection is being cut off.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed() || self.overflow.happened.load(Ordering::Relaxed)
    }

    /// The most items the outbox holds.
    pub fn max_frames(&self) -> usize {
        self.queue.max_capacity()
    }

    /// Whether a replayed frame of about `bytes` fits in three quarters of the byte budget,
    /// so that live delivery keeps room beside a replay.
    pub fn has_room_for(&self, bytes: usize) -> bool {
        let queued = self.overflow.queued_bytes.load(Ordering::Relaxed);
        queued == 0 || queued + bytes <= self.overflow.byte_limit / 4 * 3
    }

    /// Waits for this connection's turn to replay, then until its outbox is at most half
    /// full in bytes and has `frames` free slots. Hold the guard while pushing the chunk.
    pub async fn replay_turn(&self, frames: usize) -> tokio::sync::MutexGuard<'_, ()> {
        let turn = self.overflow.replay_turn.lock().await;
        loop {
            let notified = self.overflow.room.notified();
            self.overflow.replay_waiting.store(true, Ordering::SeqCst);
            let bytes = self.overflow.queued_bytes.load(Ordering::SeqCst);
            if self.is_closed()
                || (bytes <= self.overflow.byte_limit / 2 && self.queue.capacity() >= frames)
            {
                self.overflow.replay_waiting.store(false, Ordering::SeqCst);
                return turn;
            }
            notified.await;
        }
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
            if self.overflow.replay_waiting.load(Ordering::Relaxed) {
                self.overflow.room.notify_waiters();
            }
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
    fn one_large_frame_fits_an_empty_outbox() {
        let (outbox, _receiver) = Outbox::with_capacity(100, 1000);
        assert!(outbox.push(frame(5000)));
        assert!(!outbox.push(frame(1)));
    }

    #[tokio::test]
    async fn a_replay_waits_until_the_reader_makes_room() {
        let (outbox, mut receiver) = Outbox::with_capacity(100, 1000);
        assert!(outbox.push(frame(600)));
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let _turn = outbox.replay_turn(10).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "more than half full: the replay waits");
        assert!(receiver.recv().await.is_some());
        waiting.await.unwrap();
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
