//! The command line and environment of the `confab` binary.
//!
//! Every default is written once, in [`defaults`], and used by both the command line and
//! [`Config::defaults`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ipnet::IpNet;
use shared::stomp::Limits;

use crate::limits::Rate;
use crate::stomp::{BrokerConfig, SendRates};

mod file;

pub use file::{ConfigError, Loaded, load, mask_password};

/// The default of every option.
pub mod defaults {
    /// `--listen`.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `--data`.
    pub const DATA: &str = "data";
    /// `--static`.
    pub const STATIC_DIR: &str = "dist";
    /// `--heartbeat-ms`.
    pub const HEARTBEAT_MS: u32 = 10_000;
    /// `--connect-timeout-ms`.
    pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
    /// `--outbox-frames`.
    pub const OUTBOX_FRAMES: usize = 1024;
    /// `--outbox-bytes`.
    pub const OUTBOX_BYTES: usize = 1 << 20;
    /// `--max-frame-bytes`.
    pub const MAX_FRAME_BYTES: usize = 64 * 1024;
    /// `--redis-prefix`.
    pub const REDIS_PREFIX: &str = "confab:";
    /// `--session-days`.
    pub const SESSION_DAYS: u32 = 30;
    /// `--max-connections`.
    pub const MAX_CONNECTIONS: usize = 50_000;
    /// `--max-connections-per-address`.
    pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 1_000;
    /// `--send-rate`: chat messages and DMs per second per user, sustained.
    pub const SEND_RATE: f64 = 5.0;
    /// `--send-burst`.
    pub const SEND_BURST: f64 = 30.0;
    /// `--subscribe-rate`: SUBSCRIBE and UNSUBSCRIBE frames per second per user.
    pub const SUBSCRIBE_RATE: f64 = 10.0;
    /// `--subscribe-burst`: enough for a page that subscribes to all its rooms at once.
    pub const SUBSCRIBE_BURST: f64 = 300.0;
    /// `--topic-rate`: SENDs to generic topics per second per user.
    pub const TOPIC_RATE: f64 = 100.0;
    /// `--topic-burst`.
    pub const TOPIC_BURST: f64 = 1_000.0;
    /// `--max-rooms-per-user`.
    pub const MAX_ROOMS_PER_USER: u64 = 100;
    /// `--max-upload-mb`.
    pub const MAX_UPLOAD_MB: u64 = 25;
    /// `--unsent-files-minutes`.
    pub const UNSENT_FILES_MINUTES: u64 = 60;
    /// `--json-path`.
    pub const JSON_PATH: &str = "/room";
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the connection's id and user as fields.
    Json,
}

/// Who may create an account (`--registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistrationMode {
    /// Only through an invitation link an admin made.
    Invite,
    /// Anyone who can reach the server.
    Open,
    /// Nobody, invitations included.
    Closed,
}

impl From<RegistrationMode> for shared::api::Registration {
    fn from(mode: RegistrationMode) -> shared::api::Registration {
        match mode {
            RegistrationMode::Invite => shared::api::Registration::Invite,
            RegistrationMode::Open => shared::api::Registration::Open,
            RegistrationMode::Closed => shared::api::Registration::Closed,
        }
    }
}

/// A feature switched on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// What `confab` does, besides serving.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve (what `confab` with no command does).
    Serve,
    /// Write every user, room, membership, message, direct message and read marker of the
    /// store (`--data` or `--postgres`) to FILE as JSON lines: a consistent snapshot, even
    /// while a server runs on the store. `-` writes to standard output.
    Export {
        /// Where to write.
        file: PathBuf,
    },
    /// Read a file made by `confab export` into an empty store (`--data` or
    /// `--postgres`), with every id, password hash and read marker as it was. `-` reads
    /// standard input.
    Import {
        /// What to read.
        file: PathBuf,
    },
    /// Copy the embedded store under `--data` to FILE: one consistent, checked SQLite file,
    /// taken while the server runs. (For PostgreSQL, use `pg_dump` or `confab export`.)
    Backup {
        /// Where to write; an earlier backup there is replaced only once the new one is
        /// complete.
        file: PathBuf,
    },
    /// Replace the embedded store under `--data` with a file made by `confab backup`. Stop
    /// the server first.
    Restore {
        /// The backup to restore.
        file: PathBuf,
    },
    /// Bots: `confab bot create NAME` prints the new bot's API token.
    Bot {
        /// What to do.
        #[command(subcommand)]
        action: BotAction,
    },
    /// Incoming webhooks: `confab webhook create ROOM NAME` prints the secret URL path.
    Webhook {
        /// What to do.
        #[command(subcommand)]
        action: WebhookAction,
    },
    /// Server admins: `confab admin promote NAME` makes NAME an admin, `confab admin demote
    /// NAME` unmakes one (never the last). A running server sees the change at once.
    Admin {
        /// What to do.
        #[command(subcommand)]
        action: AdminAction,
    },
    /// The configuration: `confab config check` validates it (file, environment, flags)
    /// and prints the settings in effect, with where each came from.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

/// `confab bot ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum BotAction {
    /// Create a bot account and print its API token (it never expires). The bot joins rooms
    /// with `POST /api/rooms/{room}/join` and posts with `POST /api/rooms/{room}/messages`.
    Create {
        /// The bot's name: a new account name.
        name: String,
    },
    /// Print a new API token for an existing bot (the old ones keep working until revoked).
    Token {
        /// The bot.
        name: String,
    },
}

/// `confab webhook ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum WebhookAction {
    /// Create an incoming webhook of ROOM posting as the new bot NAME; print its secret URL
    /// path. (A room's owner can do the same in the API.)
    Create {
        /// The room it posts into.
        room: String,
        /// The bot it posts as.
        name: String,
    },
}

/// `confab admin ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AdminAction {
    /// Make an account a server admin.
    Promote {
        /// The account.
        name: String,
    },
    /// Make an admin an ordinary account again.
    Demote {
        /// The account.
        name: String,
    },
}

/// `confab config ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ConfigAction {
    /// Validate, then print every setting in effect as TOML (passwords masked).
    Check,
}

/// Confab: a real-time chat server speaking STOMP 1.2 over WebSocket.
#[derive(Debug, Clone, Parser)]
#[command(name = "confab", version, about)]
pub struct Config {
    /// What to do; serving if none.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// A TOML file of settings, each under its option's name (`listen = "0.0.0.0:8080"`);
    /// environment variables and flags override it.
    #[arg(long, env = "CONFAB_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "CONFAB_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// Directory for the server's state.
    #[arg(long, env = "CONFAB_DATA", default_value = defaults::DATA)]
    pub data: PathBuf,

    /// Directory of the built browser client (trunk's `dist/`).
    #[arg(long = "static", env = "CONFAB_STATIC", default_value = defaults::STATIC_DIR)]
    pub static_dir: PathBuf,

    /// Heart-beat interval offered to STOMP clients, in milliseconds (0 disables).
    #[arg(long, env = "CONFAB_HEARTBEAT_MS", default_value_t = defaults::HEARTBEAT_MS)]
    pub heartbeat_ms: u32,

    /// How long a new WebSocket may take to send CONNECT, in milliseconds, whatever else it
    /// sends meanwhile.
    #[arg(long, env = "CONFAB_CONNECT_TIMEOUT_MS", default_value_t = defaults::CONNECT_TIMEOUT_MS)]
    pub connect_timeout_ms: u64,

    /// Frames queued for a connection before it counts as a slow consumer and is closed.
    #[arg(long, env = "CONFAB_OUTBOX_FRAMES", default_value_t = defaults::OUTBOX_FRAMES)]
    pub outbox_frames: usize,

    /// Bytes of frames queued for a connection before it counts as a slow consumer.
    #[arg(long, env = "CONFAB_OUTBOX_BYTES", default_value_t = defaults::OUTBOX_BYTES)]
    pub outbox_bytes: usize,

    /// Largest STOMP frame accepted from a client, in bytes.
    #[arg(long, env = "CONFAB_MAX_FRAME_BYTES", default_value_t = defaults::MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Keep everything durable in PostgreSQL (`postgres://user@host:port/db`) instead of
    /// the embedded SQLite file.
    #[arg(long, env = "CONFAB_POSTGRES")]
    pub postgres: Option<String>,

    /// Share live events (messages as they are sent, presence, typing) with the other
    /// nodes through Redis (`redis://host:port/`). Needs `--postgres`: the nodes share it.
    #[arg(long, env = "CONFAB_REDIS", requires = "postgres")]
    pub redis: Option<String>,

    /// Prefix of every Redis key and channel Confab uses.
    #[arg(long, env = "CONFAB_REDIS_PREFIX", default_value = defaults::REDIS_PREFIX)]
    pub redis_prefix: String,

    /// Days a sign-in lasts after its last use; then the token stops working.
    #[arg(long, env = "CONFAB_SESSION_DAYS", default_value_t = defaults::SESSION_DAYS)]
    pub session_days: u32,

    /// The most the embedded store's file may grow to, in megabytes; beyond it, messages
    /// are refused (`not_accepted`) and `/readyz` answers 503, as on a full disk.
    #[arg(long, env = "CONFAB_STORE_MAX_MB")]
    pub store_max_mb: Option<u64>,

    /// Proxies (CIDRs, comma-separated or repeated) whose `X-Forwarded-For` names the
    /// client, e.g. `127.0.0.1/32` for a balancer on the same machine.
    #[arg(long = "trusted-proxy", env = "CONFAB_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// Origins (`https://chat.example.com`) whose pages may open WebSockets here, besides
    /// the server's own; comma-separated or repeated.
    #[arg(long = "allowed-origin", env = "CONFAB_ALLOWED_ORIGIN", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// WebSocket connections this node holds at most (0: no cap); more get 503.
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// WebSocket connections from one client address at most (0: no cap); more get 429.
    #[arg(
        long,
        env = "CONFAB_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = defaults::MAX_CONNECTIONS_PER_ADDRESS
    )]
    pub max_connections_per_address: usize,

    /// Chat messages and direct messages one user may send per second, sustained (0: no
    /// limit).
    #[arg(long, env = "CONFAB_SEND_RATE", default_value_t = defaults::SEND_RATE)]
    pub send_rate: f64,

    /// Chat messages one user may send in a burst above `--send-rate`.
    #[arg(long, env = "CONFAB_SEND_BURST", default_value_t = defaults::SEND_BURST)]
    pub send_burst: f64,

    /// SUBSCRIBE and UNSUBSCRIBE frames per second per user, sustained (0: no limit).
    #[arg(long, env = "CONFAB_SUBSCRIBE_RATE", default_value_t = defaults::SUBSCRIBE_RATE)]
    pub subscribe_rate: f64,

    /// SUBSCRIBE and UNSUBSCRIBE frames in a burst above `--subscribe-rate`.
    #[arg(long, env = "CONFAB_SUBSCRIBE_BURST", default_value_t = defaults::SUBSCRIBE_BURST)]
    pub subscribe_burst: f64,

    /// SENDs to generic `/topic/...` destinations per second per user (0: no limit).
    #[arg(long, env = "CONFAB_TOPIC_RATE", default_value_t = defaults::TOPIC_RATE)]
    pub topic_rate: f64,

    /// Generic topic SENDs in a burst above `--topic-rate`.
    #[arg(long, env = "CONFAB_TOPIC_BURST", default_value_t = defaults::TOPIC_BURST)]
    pub topic_burst: f64,

    /// Serve HTTPS and WSS with this certificate chain (PEM); SIGHUP reloads it (and the
    /// key) without dropping connections.
    #[arg(long, env = "CONFAB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, env = "CONFAB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Also listen for plain HTTP here and redirect every request to HTTPS (needs
    /// `--tls-cert`).
    #[arg(long, env = "CONFAB_REDIRECT_HTTP", requires = "tls_cert")]
    pub redirect_http: Option<SocketAddr>,

    /// How log lines look: `text` for people, `json` (one object a line) for log shippers.
    #[arg(long, env = "CONFAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve Prometheus metrics at `/metrics` on this address (its own listener, so that
    /// it is not public by accident); off unless given.
    #[arg(long, env = "CONFAB_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Where the plain JSON WebSocket of the original design listens (`/room`).
    #[arg(long, env = "CONFAB_JSON_PATH", default_value = defaults::JSON_PATH, value_parser = path)]
    pub json_path: String,

    /// Destination prefixes for application input, besides `/app` (which the page uses):
    /// `--app-prefix /pub` makes `/pub/room.lobby` mean `/app/room.lobby`, as Spring
    /// tutorials' `setApplicationDestinationPrefixes("/pub")` does. Comma-separated or
    /// repeated.
    #[arg(long = "app-prefix", env = "CONFAB_APP_PREFIX", value_delimiter = ',', value_parser = prefix)]
    pub app_prefixes: Vec<String>,

    /// Destination prefixes for subscriptions and generic topics, besides `/topic`:
    /// `--broker-prefix /sub` makes `/sub/room.lobby` mean `/topic/room.lobby`, as
    /// `enableSimpleBroker("/sub")` does.
    #[arg(long = "broker-prefix", env = "CONFAB_BROKER_PREFIX", value_delimiter = ',', value_parser = prefix)]
    pub broker_prefixes: Vec<String>,

    /// Rooms one user may create.
    #[arg(long, env = "CONFAB_MAX_ROOMS_PER_USER", default_value_t = defaults::MAX_ROOMS_PER_USER)]
    pub max_rooms_per_user: u64,

    /// The largest file one upload may be, in megabytes (10^6 bytes).
    #[arg(long, env = "CONFAB_MAX_UPLOAD_MB", default_value_t = defaults::MAX_UPLOAD_MB)]
    pub max_upload_mb: u64,

    /// Files uploaded and not sent with a message are deleted after this many minutes.
    #[arg(
        long,
        env = "CONFAB_UNSENT_FILES_MINUTES",
        default_value_t = defaults::UNSENT_FILES_MINUTES
    )]
    pub unsent_files_minutes: u64,

    /// Who may create an account: `invite` (through links an admin makes), `open`
    /// (anyone who reaches the server) or `closed`. The first account of a new server is
    /// always made, and is its admin.
    #[arg(long, env = "CONFAB_REGISTRATION", value_enum, default_value = "invite")]
    pub registration: RegistrationMode,

    /// Serve generic `/topic/<name>` destinations (plain pub/sub for any signed-in user)
    /// besides rooms: `on` or `off`.
    #[arg(long, env = "CONFAB_GENERIC_TOPICS", value_enum, default_value = "on")]
    pub generic_topics: Switch,
}

/// A destination prefix: `/` and a name, no trailing `/`, not `/user` (users' queues).
fn prefix(text: &str) -> Result<String, String> {
    let name = text.strip_prefix('/').ok_or("a prefix starts with /")?;
    if name.is_empty()
        || name.contains('/')
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("a prefix is / and a name of letters, digits, - and _ (like /pub)".into());
    }
    if name == "user" {
        return Err("/user is for users' own queues".into());
    }
    Ok(text.to_owned())
}

/// A path of its own for the JSON endpoint: not one the server uses for anything else.
fn path(text: &str) -> Result<String, String> {
    prefix(text)?;
    if ["/ws", "/api", "/healthz", "/readyz", "/index.html"].contains(&text) {
        return Err(format!("{text} is taken by the server"));
    }
    Ok(text.to_owned())
}

impl Config {
    /// The defaults, as if `confab` ran with no options and no environment.
    pub fn defaults() -> Config {
        Config {
            command: None,
            config: None,
            listen: defaults::LISTEN.parse().expect("the default address parses"),
            data: PathBuf::from(defaults::DATA),
            static_dir: PathBuf::from(defaults::STATIC_DIR),
            heartbeat_ms: defaults::HEARTBEAT_MS,
            connect_timeout_ms: defaults::CONNECT_TIMEOUT_MS,
            outbox_frames: defaults::OUTBOX_FRAMES,
            outbox_bytes: defaults::OUTBOX_BYTES,
            max_frame_bytes: defaults::MAX_FRAME_BYTES,
            postgres: None,
            redis: None,
            redis_prefix: defaults::REDIS_PREFIX.to_owned(),
            session_days: defaults::SESSION_DAYS,
            store_max_mb: None,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            max_connections: defaults::MAX_CONNECTIONS,
            max_connections_per_address: defaults::MAX_CONNECTIONS_PER_ADDRESS,
            send_rate: defaults::SEND_RATE,
            send_burst: defaults::SEND_BURST,
            subscribe_rate: defaults::SUBSCRIBE_RATE,
            subscribe_burst: defaults::SUBSCRIBE_BURST,
            topic_rate: defaults::TOPIC_RATE,
            topic_burst: defaults::TOPIC_BURST,
            max_rooms_per_user: defaults::MAX_ROOMS_PER_USER,
            max_upload_mb: defaults::MAX_UPLOAD_MB,
            unsent_files_minutes: defaults::UNSENT_FILES_MINUTES,
            registration: RegistrationMode::Invite,
            generic_topics: Switch::On,
            tls_cert: None,
            tls_key: None,
            redirect_http: None,
            log_format: LogFormat::Text,
            metrics_listen: None,
            json_path: defaults::JSON_PATH.to_owned(),
            app_prefixes: Vec::new(),
            broker_prefixes: Vec::new(),
        }
    }

    /// Settings that parse one by one but do not go together. clap checks them between
    /// flags; this checks them whatever their source (a file's values are defaults to clap).
    pub fn check(&self) -> Result<(), ConfigError> {
        let conflict = |message: &str| Err(ConfigError::Conflict(message.to_owned()));
        if self.redis.is_some() && self.postgres.is_none() {
            return conflict("--redis needs --postgres: the nodes must share a store");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return conflict("--tls-cert and --tls-key go together");
        }
        if self.redirect_http.is_some() && self.tls_cert.is_none() {
            return conflict("--redirect-http needs --tls-cert");
        }
        Ok(())
    }

    /// No per-user rate limits: for load tests, which publish from few accounts.
    pub fn without_rate_limits(mut self) -> Config {
        self.send_rate = 0.0;
        self.subscribe_rate = 0.0;
        self.topic_rate = 0.0;
        self
    }

    /// How long a session token works after its last use.
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_days) * 86_400)
    }

    /// The broker's share of the configuration.
    pub fn broker(&self) -> BrokerConfig {
        BrokerConfig {
            heart_beat_ms: self.heartbeat_ms,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            outbox_frames: self.outbox_frames.max(1),
            outbox_bytes: self.outbox_bytes,
            limits: Limits { max_frame_bytes: self.max_frame_bytes, ..Limits::default() },
            rates: SendRates {
                messages: Rate::new(self.send_rate, self.send_burst),
                subscriptions: Rate::new(self.subscribe_rate, self.subscribe_burst),
                topics: Rate::new(self.topic_rate, self.topic_burst),
                ..SendRates::default()
            },
            prefix_aliases: self
                .app_prefixes
                .iter()
                .map(|prefix| (prefix.clone(), "/app"))
                .chain(self.broker_prefixes.iter().map(|prefix| (prefix.clone(), "/topic")))
                .filter(|(prefix, canonical)| prefix != canonical)
                .collect(),
            generic_topics: self.generic_topics == Switch::On,
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

    #[test]
    fn redis_alone_is_refused_with_what_to_add() {
        let error = Config::try_parse_from(["confab", "--redis", "redis://127.0.0.1:6379/"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--postgres"), "{error}");
    }
}
