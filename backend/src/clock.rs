//! The server's clock and this process's identity.

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use shared::chat::Millis;

/// The server clock in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

/// This process's id, random per start: in session and message ids, and on the bus.
static NODE_ID: LazyLock<String> =
    LazyLock::new(|| format!("{:08x}", RandomState::new().hash_one(std::process::id()) as u32));

/// A prefix unique to this process.
pub fn node_id() -> &'static str {
    &NODE_ID
}
