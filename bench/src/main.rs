//! `loadgen`: a STOMP-over-WebSocket load generator for Confab and other STOMP brokers.
//!
//! Scenarios:
//! - `fanout`: subscribers spread over rooms, publishers at a target rate (or closed loop);
//!   reports deliveries/s, latency percentiles, lost/doubled/reordered counts, ERRORs.
//! - `connect-storm`: many clients CONNECT and SUBSCRIBE at once; reports connections/s.
//! - `idle`: many subscribed connections doing nothing; reports the server's memory per
//!   connection.
//! - `soak`: a fan-out run (usually minutes long) with connections churning beside it and
//!   one hostile client per finding of the security review; adds the server's memory and
//!   open files over time.
//!
//! Every run is bounded: a hard `--deadline` stops it whatever happens. Only loopback
//! targets are accepted. The result is one JSON line on stdout.

mod conn;
mod payload;
mod scenario;
mod server;
mod soak;
mod stats;

use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Publishers fan out to subscribers in rooms.
    Fanout,
    /// Clients connect and subscribe as fast as they can.
    ConnectStorm,
    /// Subscribed connections sit idle; the server's memory is measured.
    Idle,
    /// A fan-out with churn and hostile clients beside it, sampled over time.
    Soak,
}

/// Where messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Plain pub/sub: `/topic/bench.<room>` (any STOMP broker).
    Topic,
    /// Confab chat rooms: SEND to `/app/room.bench-<room>`, stored and stamped.
    Chat,
}

/// The acknowledgement mode of the subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ack {
    /// No ACK frames.
    Auto,
    /// Cumulative ACKs, one per 16 messages.
    Client,
    /// One ACK per message.
    ClientIndividual,
}

/// Command-line options.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", about = "STOMP over WebSocket load generator")]
pub struct Options {
    /// WebSocket URL of a server; repeat it to spread connections over several nodes.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: Vec<String>,
    /// What to measure.
    #[arg(long, value_enum, default_value = "fanout")]
    pub scenario: Scenario,
    /// Plain topics or Confab chat rooms.
    #[arg(long, value_enum, default_value = "topic")]
    pub mode: Mode,
    /// Subscribing connections (fan-out), or all connections (storm, idle).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Rooms the subscribers are spread over.
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// Publishing connections; publisher `p` sends to room `p % rooms`.
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// Messages per second over all publishers; 0 for a closed loop (each publisher waits
    /// for the RECEIPT of its last message).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,
    /// Subscription ack mode.
    #[arg(long, value_enum, default_value = "auto")]
    pub ack: Ack,
    /// STOMP login.
    #[arg(long, default_value = "bench")]
    pub login: String,
    /// STOMP passcode (for Confab, a session token).
    #[arg(long)]
    pub passcode: Option<String>,
    /// For Confab: register the login (or sign in) over HTTP with this password to get a
    /// token, and create the rooms.
    #[arg(long)]
    pub password: Option<String>,
    /// Extra subscribers that never read (fan-out): the server should disconnect them.
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Hard limit on the whole run, in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub deadline: f64,
    /// Server process ids whose RSS and CPU to report (repeatable).
    #[arg(long)]
    pub server_pid: Vec<u32>,
    /// Connections opened at once during setup and in the connect storm.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Worker threads of the load generator (give it as many cores as it is pinned to).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// A label copied into the result.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Soak: connections that connect, subscribe, publish and drop, over and over.
    #[arg(long, default_value_t = 0)]
    pub churn: usize,
    /// Other processes to account for, as `name:pid` (a process and its descendants): their
    /// CPU in the measured window is reported beside the server's (PostgreSQL, Redis).
    #[arg(long)]
    pub watch: Vec<String>,
    /// Soak: one hostile client per finding of the security review, as user `hostile`.
    #[arg(long)]
    pub hostile: bool,
    /// Soak: seconds between samples of the server's memory and open files.
    #[arg(long, default_value_t = 10.0)]
    pub sample_secs: f64,
}

impl Options {
    fn check(&self) -> Result<()> {
        for url in &self.url {
            let host = url
                .split("://")
                .nth(1)
                .unwrap_or_default()
                .split(['/', ':'])
                .next()
                .unwrap_or_default();
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                bail!("loadgen only targets loopback addresses, not {url}");
            }
        }
        if self.rooms == 0 || self.url.is_empty() {
            bail!("need at least one room and one url");
        }
        Ok(())
    }

    fn seconds(value: f64) -> Duration {
        Duration::from_secs_f64(value.max(0.0))
    }
}

fn main() -> Result<()> {
    let options = Options::parse();
    options.check()?;
    // One core, one thread: the current-thread scheduler skips work stealing entirely.
    let runtime = if options.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()?
    };
    let deadline = Options::seconds(options.deadline);
    let result = runtime.block_on(async {
        match tokio::time::timeout(deadline, scenario::run(options.clone())).await {
            Ok(result) => result,
            Err(_) => bail!("the run passed its {deadline:?} deadline"),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    println!("{}", serde_json::to_string(&result?)?);
    Ok(())
}
