//! What keeps one client from starving the others: rate limits, back-off after failed
//! logins, the gate in front of password hashing, connection caps, and the client address
//! they are keyed by.
//!
//! Every table here is bounded in entries, and every key is built from validated parts
//! (a user name that passed its rules, an IP address), so no client can grow them by
//! sending long or many distinct values. Everything is per node: with several nodes behind a
//! balancer each enforces its own share, which bounds abuse by the number of nodes.

mod address;
mod backoff;
mod bucket;
mod gate;
mod slots;
mod window;

pub use address::{ClientAddress, TrustedProxies, address_key};
pub use backoff::FailureBackoff;
pub use bucket::{Rate, TokenBucket};
pub use gate::{GateClosed, HashGate};
pub use slots::{ConnectionSlot, ConnectionSlots, SlotRefused};
pub use window::WindowLimiter;

/// Entries a table keeps at most before it forgets the oldest.
pub const MAX_TRACKED_KEYS: usize = 100_000;

use std::time::Duration;

/// Login attempts allowed per client address in [`ATTEMPT_WINDOW`].
pub const LOGINS_PER_ADDRESS: u32 = 30;
/// Registrations allowed per client address in [`ATTEMPT_WINDOW`].
pub const REGISTRATIONS_PER_ADDRESS: u32 = 20;
/// The window of the per-address limits.
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);

/// The node's defences, shared by every request handler.
#[derive(Debug)]
pub struct Protection {
    /// Whose `X-Forwarded-For` is believed.
    pub proxies: TrustedProxies,
    /// Login attempts per client address.
    pub logins: WindowLimiter,
    /// Registrations per client address.
    pub registrations: WindowLimiter,
    /// Failed logins per user name and client address.
    pub login_failures: FailureBackoff,
    /// Password hashing, bounded.
    pub hashing: HashGate,
    /// WebSocket connections, capped.
    pub connections: ConnectionSlots,
}

impl Protection {
    /// Defences with these trusted proxies and connection caps.
    pub fn new(proxies: TrustedProxies, connections: ConnectionSlots) -> Protection {
        Protection {
            proxies,
            logins: WindowLimiter::new(ATTEMPT_WINDOW),
            registrations: WindowLimiter::new(ATTEMPT_WINDOW),
            login_failures: FailureBackoff::default(),
            hashing: HashGate::for_this_machine(),
            connections,
        }
    }
}
