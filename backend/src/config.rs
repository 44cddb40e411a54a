//! The command line and environment of the `confab` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use shared::stomp::Limits;

use crate::broker::BrokerConfig;

/// Confab: a real-time chat server speaking STOMP 1.2 over WebSocket.
#[derive(Debug, Clone, Parser)]
#[command(name = "confab", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CONFAB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the server's state.
    #[arg(long, env = "CONFAB_DATA", default_value = "data")]
    pub data: PathBuf,

    /// Directory of the built browser client (trunk's `dist/`).
    #[arg(long = "static", env = "CONFAB_STATIC", default_value = "dist")]
    pub static_dir: PathBuf,

    /// Heart-beat interval offered to STOMP clients, in milliseconds (0 disables).
    #[arg(long, env = "CONFAB_HEARTBEAT_MS", default_value_t = 10_000)]
    pub heartbeat_ms: u32,

    /// Frames queued for a connection before it counts as a slow consumer and is closed.
    #[arg(long, env = "CONFAB_OUTBOX_FRAMES", default_value_t = 1024)]
    pub outbox_frames: usize,

    /// Bytes of frames queued for a connection before it counts as a slow consumer.
    #[arg(long, env = "CONFAB_OUTBOX_BYTES", default_value_t = 1 << 20)]
    pub outbox_bytes: usize,

    /// Largest STOMP frame accepted from a client, in bytes.
    #[arg(long, env = "CONFAB_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Run on a shared Redis (`redis://host:port`) instead of the embedded store, so that
    /// several nodes serve the same users, rooms and history.
    #[arg(long, env = "CONFAB_REDIS")]
    pub redis: Option<String>,

    /// Prefix of every Redis key and channel Confab uses.
    #[arg(long, env = "CONFAB_REDIS_PREFIX", default_value = "confab:")]
    pub redis_prefix: String,

    /// Messages kept per room (and per user's DM inbox) in Redis.
    #[arg(long, env = "CONFAB_HISTORY_CAP", default_value_t = 100_000)]
    pub history_cap: usize,
}

impl Config {
    /// The defaults, as if `confab` ran with no options and no environment.
    pub fn defaults() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("data"),
            static_dir: PathBuf::from("dist"),
            heartbeat_ms: 10_000,
            outbox_frames: 1024,
            outbox_bytes: 1 << 20,
            max_frame_bytes: 64 * 1024,
            redis: None,
            redis_prefix: "confab:".to_owned(),
            history_cap: 100_000,
        }
    }

    /// The broker's share of the configuration.
    pub fn broker(&self) -> BrokerConfig {
        BrokerConfig {
            heart_beat_ms: self.heartbeat_ms,
            connect_timeout: Duration::from_secs(10),
            outbox_frames: self.outbox_frames.max(1),
            outbox_bytes: self.outbox_bytes,
            limits: Limits { max_frame_bytes: self.max_frame_bytes, ..Limits::default() },
            ..BrokerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_command_line() {
        let parsed = Config::try_parse_from(["confab"]).unwrap();
        let defaults = Config::defaults();
        assert_eq!(format!("{parsed:?}"), format!("{defaults:?}"));
    }
}
