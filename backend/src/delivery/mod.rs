//! The lowest layer of the server: getting encoded frames to this node's subscribers.
//!
//! - [`message`]: a MESSAGE encoded once, per-subscription frames built from it.
//! - [`hub`]: who on this node is subscribed to what, and the fan-out loop.
//! - [`outbox`]: each connection's bounded queue, and the overflow signal.
//! - [`acks`]: deliveries awaiting ACK.
//!
//! Nothing here knows about the store, the bus or STOMP sessions: it imports only `shared`
//! and the clock.

pub mod acks;
pub mod hub;
pub mod message;
pub mod outbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use shared::stomp::AckMode;

pub use acks::{AckLedger, TooManyUnacked};
pub use hub::{Hub, HubKey};
pub use message::{
    EncodedMessage, FrameCache, RESERVED_HEADERS, chat_message, dm_message, next_message_id,
    notice_message, room_event_message,
};
pub use outbox::{AckRef, Outbox, OutboxReceiver, Outgoing, OverflowSignal};

/// Identifies a connection within this node.
pub type SessionId = u64;

/// One subscription of one session.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The session that owns it.
    pub session: SessionId,
    /// The session's user.
    pub login: Arc<str>,
    /// Its `id` header.
    pub subscription: Arc<str>,
    /// Its `ack` mode.
    pub ack: AckMode,
    /// Where its MESSAGE frames go.
    pub outbox: Outbox,
    /// The session's deliveries awaiting ACK, which a replay waits on.
    pub acks: AckLedger,
    /// Where it stands in a numbered stream (a room, an inbox).
    pub position: Arc<Position>,
}

/// A subscription's place in its stream. Live delivery and its replay meet here: numbered
/// messages at or below `cursor` have been queued already; until `live` is set a replay is
/// still catching up from the store, and live delivery leaves the subscription alone.
#[derive(Debug, Default)]
pub struct Position {
    cursor: AtomicU64,
    live: AtomicBool,
    /// Unnumbered events (presence, typing) may go out: the presence snapshot has.
    greeted: AtomicBool,
    /// The subscription has ended: a replay still running stops.
    ended: AtomicBool,
}

impl Position {
    /// A subscription that takes everything as it comes (a topic, a notice queue).
    pub fn live() -> Arc<Position> {
        let position = Position::default();
        position.live.store(true, Ordering::Relaxed);
        position.greeted.store(true, Ordering::Relaxed);
        Arc::new(position)
    }

    /// A subscription that will replay from the store after `cursor` before going live.
    pub fn replaying_after(cursor: u64) -> Arc<Position> {
        let position = Position::default();
        position.cursor.store(cursor, Ordering::Relaxed);
        Arc::new(position)
    }

    /// The highest id queued.
    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }

    /// Notes that messages up to `seq` are queued.
    pub fn advance(&self, seq: u64) {
        self.cursor.fetch_max(seq, Ordering::AcqRel);
    }

    /// Whether live delivery serves this subscription.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Hands the subscription to live delivery.
    pub fn go_live(&self) {
        self.live.store(true, Ordering::Release);
    }

    /// Whether unnumbered events may go out.
    pub fn is_greeted(&self) -> bool {
        self.greeted.load(Ordering::Acquire)
    }

    /// Lets unnumbered events go out.
    pub fn greet(&self) {
        self.greeted.store(true, Ordering::Release);
    }

    /// Whether the subscription has ended.
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Ends the subscription.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
    }
}

impl Subscriber {
    /// What a delivery needs for this subscription's ack mode.
    pub fn ack_kind(&self) -> AckKind {
        match self.ack {
            AckMode::Auto => AckKind::None,
            AckMode::Client => AckKind::Cumulative,
            AckMode::ClientIndividual => AckKind::Individual,
        }
    }
}

/// What an ACK of a delivery settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// `ack:auto`: nothing to settle.
    None,
    /// `ack:client`: an ACK settles this delivery and every earlier one of its subscription.
    Cumulative,
    /// `ack:client-individual`: an ACK settles this delivery alone.
    Individual,
}
