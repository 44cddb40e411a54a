//! STOMP on top of the engine: each connection's [`Session`] (the protocol state machine),
//! what destinations mean ([`routes`]), how refusals are told, per-user send rates, and
//! the [`Broker`] handle every session shares.
//!
//! Nothing here knows about axum or sockets. A [`Session`] takes decoded frames in and puts
//! encoded frames into its [`Outbox`](crate::delivery::Outbox); `ws/` moves bytes between
//! the socket and those two.

mod rates;
mod refusal;
mod routes;
mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shared::stomp::Limits;

use crate::delivery::{AckLedger, OutboxReceiver, SessionId};
use crate::engine::Engine;
pub use rates::{Charge, SendRates};
pub use routes::check_idempotency_key;
pub use session::{Flow, Negotiated, Session};

use rates::{RateBook, SharedRates};

/// Tunables of the broker; the CLI fills them from its options.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The heart-beat interval the server offers and asks for, in ms; 0 disables.
    pub heart_beat_ms: u32,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
    /// Frames an outbox holds before its consumer counts as too slow.
    pub outbox_frames: usize,
    /// Bytes of frames an outbox holds before its consumer counts as too slow.
    pub outbox_bytes: usize,
    /// Deliveries a session may leave unacknowledged.
    pub max_unacked: usize,
    /// Decoder limits for client frames.
    pub limits: Limits,
    /// Subscriptions per session.
    pub max_subscriptions: usize,
    /// Open transactions per session.
    pub max_transactions: usize,
    /// Frames held by one transaction.
    pub max_transaction_frames: usize,
    /// Bytes held by all of a session's open transactions together.
    pub max_transaction_bytes: usize,
    /// Per-user send rates.
    pub rates: SendRates,
    /// Destination prefixes that mean what `/app` or `/topic` means (`/pub`, `/sub`, as
    /// Spring tutorials configure them), each with the prefix it stands for.
    pub prefix_aliases: Vec<(String, &'static str)>,
    /// Generic `/topic/<name>` destinations are served (`--generic-topics on`).
    pub generic_topics: bool,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        use crate::config::defaults;
        BrokerConfig {
            heart_beat_ms: defaults::HEARTBEAT_MS,
            connect_timeout: Duration::from_millis(defaults::CONNECT_TIMEOUT_MS),
            outbox_frames: defaults::OUTBOX_FRAMES,
            outbox_bytes: defaults::OUTBOX_BYTES,
            max_unacked: 4096,
            limits: Limits::default(),
            max_subscriptions: 256,
            max_transactions: 16,
            max_transaction_frames: 1024,
            max_transaction_bytes: 1 << 20,
            rates: SendRates::default(),
            prefix_aliases: Vec::new(),
            generic_topics: true,
        }
    }
}

/// A cheap handle on the broker shared by every session of this node.
#[derive(Debug, Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: BrokerConfig,
    engine: Engine,
    next_session: AtomicU64,
    live_sessions: AtomicU64,
    rates: RateBook,
}

impl Broker {
    /// A broker with no sessions, storing through `engine`.
    pub fn new(config: BrokerConfig, engine: Engine) -> Broker {
        Broker {
            inner: Arc::new(Inner {
                config,
                engine,
                next_session: AtomicU64::new(1),
                live_sessions: AtomicU64::new(0),
                rates: RateBook::default(),
            }),
        }
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// The node's chat service.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The rate buckets of `user`, shared by the user's sessions on this node.
    fn rates_of(&self, user: &str) -> SharedRates {
        self.inner.rates.for_user(user, &self.inner.config.rates)
    }

    /// Takes one from `user`'s bucket for `charge`, the same buckets their STOMP sessions
    /// on this node draw from: how long to wait when it is empty.
    pub fn charge(&self, user: &str, charge: Charge) -> Result<(), Duration> {
        let rates = self.inner.rates.for_request(user, &self.inner.config.rates);
        rates::lock(&rates).take(charge)
    }

    /// A new session with its outbox receiver and ack ledger, for the connection's writer.
    pub fn open_session(&self) -> (Session, OutboxReceiver, AckLedger) {
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        self.inner.live_sessions.fetch_add(1, Ordering::Relaxed);
        Session::new(self.clone(), id)
    }

    /// Counts a session as ended (its `Drop` calls this).
    fn session_ended(&self) {
        self.inner.live_sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// How many WebSocket sessions this node serves now.
    pub fn live_sessions(&self) -> u64 {
        self.inner.live_sessions.load(Ordering::Relaxed)
    }

    /// `destination` with an aliased prefix replaced by the one it stands for:
    /// `/pub/room.lobby` is `/app/room.lobby` when `/pub` is an app prefix.
    pub fn canonical<'a>(&self, destination: &'a str) -> std::borrow::Cow<'a, str> {
        for (alias, canonical) in &self.inner.config.prefix_aliases {
            if let Some(rest) = destination.strip_prefix(alias.as_str())
                && rest.starts_with('/')
            {
                return format!("{canonical}{rest}").into();
            }
        }
        destination.into()
    }

    /// The session id as shown in CONNECTED.
    fn session_name(&self, id: SessionId) -> String {
        format!("{}-{id}", crate::clock::node_id())
    }
}
