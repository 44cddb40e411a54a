//! What the node counts, for Prometheus: `/metrics` on `--metrics-listen`, its own address so
//! that it is never public by accident.
//!
//! One set of metrics per process ([`metrics`]), so that every layer counts without handles
//! threaded through it. Labelled series are created once at start-up and kept as plain
//! handles: counting on the hot path (a MESSAGE written to a socket) is an atomic add, never
//! a map lookup. Counters only go up; tests compare before and after.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labelled<M> = Family<[(&'static str, &'static str); 1], M>;

/// The STOMP commands a client sends.
const CLIENT_COMMANDS: [&str; 11] = [
    "CONNECT",
    "STOMP",
    "SEND",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "ACK",
    "NACK",
    "BEGIN",
    "COMMIT",
    "ABORT",
    "DISCONNECT",
];

/// What the server sends: its commands, and heart-beats (a bare EOL).
const SERVER_COMMANDS: [&str; 5] = ["CONNECTED", "MESSAGE", "RECEIPT", "ERROR", "HEARTBEAT"];

/// The limits whose refusals are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Chat messages and DMs per user.
    Send,
    /// Typing notices per user.
    Typing,
    /// SUBSCRIBE and UNSUBSCRIBE per user.
    Subscribe,
    /// SENDs to generic topics per user.
    Topic,
    /// Logins and registrations per address, and the failed-login back-off.
    SignIn,
    /// WebSockets per node or per address.
    Connections,
}

impl Limit {
    const ALL: [Limit; 6] = [
        Limit::Send,
        Limit::Typing,
        Limit::Subscribe,
        Limit::Topic,
        Limit::SignIn,
        Limit::Connections,
    ];

    fn label(self) -> &'static str {
        match self {
            Limit::Send => "send",
            Limit::Typing => "typing",
            Limit::Subscribe => "subscribe",
            Limit::Topic => "topic",
            Limit::SignIn => "sign_in",
            Limit::Connections => "connections",
        }
    }
}

/// Why someone was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// A wrong user name or password at `/api/login`.
    Password,
    /// An unknown, expired or revoked token (HTTP, CONNECT, `/room`).
    Token,
}

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    /// STOMP WebSocket connections open now.
    pub stomp_connections: Gauge,
    /// Plain JSON WebSocket connections (`/room`) open now.
    pub json_connections: Gauge,
    /// Subscriptions open now.
    pub subscriptions: Gauge,
    frames_in: Vec<(&'static str, Counter)>,
    frames_out: Vec<(&'static str, Counter)>,
    /// MESSAGE frames queued for subscribers.
    pub deliveries: Counter,
    /// Outboxes that overflowed; each closes its connection as a slow consumer.
    pub slow_consumers: Counter,
    limited: Vec<(Limit, Counter)>,
    auth_password: Counter,
    auth_token: Counter,
    /// Room messages stored.
    pub stored_room: Counter,
    /// Direct messages stored.
    pub stored_dm: Counter,
    /// How long the store took to write (and commit) a batch.
    pub store_write: Latency,
    /// From the moment this node encoded a MESSAGE to its write into a subscriber's socket.
    pub delivery_latency: Latency,
    /// Bus commands that failed.
    pub bus_errors: Counter,
    /// Times the bus's subscription connection was re-established.
    pub bus_reconnects: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Bucket bounds in microseconds: 100 µs doubling up to about 6.5 s, then +Inf.
const BOUNDS_MICROS: [u64; 17] = {
    let mut bounds = [100; 17];
    let mut i = 1;
    while i < bounds.len() {
        bounds[i] = bounds[i - 1] * 2;
        i += 1;
    }
    bounds
};

/// A latency histogram without a lock: an observation is two relaxed atomic adds (the bucket
/// and the sum; the count is the buckets' total). prometheus-client's own histogram takes a
/// mutex per observation, which the delivery path (hundreds of thousands a second) feels.
#[derive(Debug, Clone, Default)]
pub struct Latency(Arc<LatencyInner>);

#[derive(Debug, Default)]
struct LatencyInner {
    /// Per bucket, not cumulative; the last is +Inf.
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

fn micros_of(took: Duration) -> u64 {
    took.as_secs().saturating_mul(1_000_000).saturating_add(u64::from(took.subsec_micros()))
}

/// The first bound 100·2^i at or above `micros`: i = ⌈log2 ⌈micros/100⌉⌉ (or +Inf).
fn bucket_of(micros: u64) -> usize {
    let hundreds = micros.div_ceil(100);
    if hundreds <= 1 {
        0
    } else {
        (64 - (hundreds - 1).leading_zeros() as usize).min(BOUNDS_MICROS.len())
    }
}

/// A moment, in 4 bytes: microseconds since the process's first stamp, wrapping every 71
/// minutes, never zero (so that `Option<Stamp>` is 4 bytes too). Good for measuring spans
/// shorter than that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(std::num::NonZeroU32);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

impl Stamp {
    /// Now.
    pub fn now() -> Stamp {
        Stamp::at(Instant::now())
    }

    /// `instant`, which must not be before the first stamp.
    pub fn at(instant: Instant) -> Stamp {
        let micros = instant.saturating_duration_since(*EPOCH).as_micros() as u32;
        Stamp(std::num::NonZeroU32::MIN | micros)
    }

    /// How long after `earlier` this is.
    pub fn since(self, earlier: Stamp) -> Duration {
        Duration::from_micros(u64::from(self.0.get().wrapping_sub(earlier.0.get())))
    }
}

impl Latency {
    /// Adds one observation: two relaxed atomic adds.
    pub fn observe(&self, took: Duration) {
        let micros = micros_of(took);
        self.0.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.0.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> =
            self.0.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).collect();
        let bounds = BOUNDS_MICROS.iter().map(|micros| *micros as f64 / 1e6).chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts.iter().copied()).collect();
        let sum = self.0.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn by_label<L: Copy>(
    family: &Labelled<Counter>,
    key: &'static str,
    values: impl IntoIterator<Item = (L, &'static str)>,
) -> Vec<(L, Counter)> {
    values
        .into_iter()
        .map(|(id, value)| (id, family.get_or_create(&[(key, value)]).clone()))
        .collect()
}

impl Metrics {
    fn new() -> Metrics {
        // The stamps' epoch: before any instant a write loop measures from.
        LazyLock::force(&EPOCH);
        let mut registry = Registry::with_prefix("confab");
        let connections = Labelled::<Gauge>::default();
        registry.register("connections", "WebSocket connections open now", connections.clone());
        let stomp_connections = connections.get_or_create(&[("endpoint", "stomp")]).clone();
        let json_connections = connections.get_or_create(&[("endpoint", "json")]).clone();
        let subscriptions = Gauge::default();
        registry.register("subscriptions", "Subscriptions open now", subscriptions.clone());
        let frames_in_family = Labelled::<Counter>::default();
        registry.register(
            "frames_received",
            "Frames received, by command",
            frames_in_family.clone(),
        );
        let frames_out_family = Labelled::<Counter>::default();
        registry.register("frames_sent", "Frames sent, by command", frames_out_family.clone());
        let frames_in = by_label(&frames_in_family, "command", CLIENT_COMMANDS.map(|c| (c, c)));
        let frames_out = by_label(&frames_out_family, "command", SERVER_COMMANDS.map(|c| (c, c)));
        let deliveries = Counter::default();
        registry.register(
            "deliveries",
            "MESSAGE frames queued for subscribers",
            deliveries.clone(),
        );
        let slow_consumers = Counter::default();
        registry.register(
            "slow_consumer_disconnects",
            "Connections closed because their outbox overflowed",
            slow_consumers.clone(),
        );
        let limited_family = Labelled::<Counter>::default();
        registry.register(
            "rate_limited",
            "Frames and requests refused by a limit",
            limited_family.clone(),
        );
        let limited = by_label(&limited_family, "limit", Limit::ALL.map(|l| (l, l.label())));
        let auth = Labelled::<Counter>::default();
        registry.register("auth_failures", "Sign-ins and tokens refused", auth.clone());
        let auth_password = auth.get_or_create(&[("kind", "password")]).clone();
        let auth_token = auth.get_or_create(&[("kind", "token")]).clone();
        let stored = Labelled::<Counter>::default();
        registry.register("messages_stored", "Chat messages stored, by kind", stored.clone());
        let stored_room = stored.get_or_create(&[("kind", "room")]).clone();
        let stored_dm = stored.get_or_create(&[("kind", "dm")]).clone();
        let store_write = Latency::default();
        registry.register(
            "store_write_seconds",
            "Time to store (and commit) a batch of writes",
            store_write.clone(),
        );
        let delivery_latency = Latency::default();
        registry.register(
            "delivery_seconds",
            "From a MESSAGE encoded on this node to its write into a subscriber's socket",
            delivery_latency.clone(),
        );
        let bus_errors = Counter::default();
        registry.register("bus_errors", "Bus commands that failed", bus_errors.clone());
        let bus_reconnects = Counter::default();
        registry.register(
            "bus_reconnects",
            "Bus subscription connections re-established",
            bus_reconnects.clone(),
        );
        Metrics {
            registry,
            stomp_connections,
            json_connections,
            subscriptions,
            frames_in,
            frames_out,
            deliveries,
            slow_consumers,
            limited,
            auth_password,
            auth_token,
            stored_room,
            stored_dm,
            store_write,
            delivery_latency,
            bus_errors,
            bus_reconnects,
        }
    }

    /// Counts a frame received.
    pub fn frame_in(&self, command: &str) {
        if let Some((_, counter)) = self.frames_in.iter().find(|(name, _)| *name == command) {
            counter.inc();
        }
    }

    /// Counts `n` frames sent with the same command.
    pub fn frames_out(&self, command: &str, n: u64) {
        if let Some((_, counter)) = self.frames_out.iter().find(|(name, _)| *name == command) {
            counter.inc_by(n);
        }
    }

    /// Counts a refusal by a limit.
    pub fn limited(&self, limit: Limit) {
        if let Some((_, counter)) = self.limited.iter().find(|(id, _)| *id == limit) {
            counter.inc();
        }
    }

    /// Counts someone not let in.
    pub fn auth_failed(&self, failure: AuthFailure) {
        match failure {
            AuthFailure::Password => self.auth_password.inc(),
            AuthFailure::Token => self.auth_token.inc(),
        };
    }

    /// Records how long a store write took.
    pub fn store_write_took(&self, took: Duration) {
        self.store_write.observe(took);
    }

    /// The metrics in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Counts one open connection in a gauge for as long as it lives.
#[derive(Debug)]
pub struct Open(Gauge);

impl Open {
    /// Counts one more in `gauge`.
    pub fn new(gauge: &Gauge) -> Open {
        gauge.inc();
        Open(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// The command of an encoded STOMP frame (`HEARTBEAT` for a bare EOL).
pub fn command_of(frame: &[u8]) -> &str {
    let end = frame.iter().position(|byte| *byte == b'\n').unwrap_or(frame.len());
    match std::str::from_utf8(&frame[..end]) {
        Ok("") => "HEARTBEAT",
        Ok(command) => command.trim_end_matches('\r'),
        Err(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_there_from_the_start() {
        let text = metrics().render();
        for line in [
            "# TYPE confab_connections gauge",
            "confab_connections{endpoint=\"stomp\"}",
            "confab_frames_received_total{command=\"SEND\"}",
            "confab_frames_sent_total{command=\"MESSAGE\"}",
            "confab_rate_limited_total{limit=\"send\"}",
            "confab_auth_failures_total{kind=\"token\"}",
            "confab_messages_stored_total{kind=\"dm\"}",
            "confab_store_write_seconds_bucket{le=",
            "confab_delivery_seconds_count",
            "confab_slow_consumer_disconnects_total",
            "confab_bus_reconnects_total",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn stamps_measure_short_spans_across_their_wrap() {
        let start = Stamp::now();
        let later = Instant::now() + Duration::from_millis(1500);
        let span = Stamp::at(later).since(start).as_micros();
        assert!((1_499_999..=1_500_100).contains(&span), "{span}");
        let a = Stamp(std::num::NonZeroU32::new(u32::MAX - 10).unwrap());
        let b = Stamp(std::num::NonZeroU32::new(90).unwrap());
        assert_eq!(b.since(a), Duration::from_micros(101));
        assert_eq!(size_of::<Option<Stamp>>(), 4);
        assert_eq!(size_of::<crate::delivery::Outgoing>(), 80);
    }

    #[test]
    fn the_bucket_rule_matches_the_bounds() {
        for micros in (0..20_000_000).step_by(37).chain([100, 200, 201, 6_553_600, 6_553_601]) {
            let expected = BOUNDS_MICROS.partition_point(|bound| *bound < micros);
            assert_eq!(bucket_of(micros), expected, "{micros}");
        }
    }

    #[test]
    fn latencies_fall_in_their_buckets() {
        let latency = Latency::default();
        for took in [50, 100, 150, 60_000_000, 3_000] {
            latency.observe(Duration::from_micros(took));
        }
        let mut registry = Registry::default();
        registry.register("t", "test", latency);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "t_bucket{le=\"0.0001\"} 2\n",
            "t_bucket{le=\"0.0002\"} 3\n",
            "t_bucket{le=\"0.0016\"} 3\n",
            "t_bucket{le=\"0.0032\"} 4\n",
            "t_bucket{le=\"0.0064\"} 4\n",
            "t_bucket{le=\"+Inf\"} 5\n",
            "t_count 5\n",
            "t_sum 60.0033\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    /// The dashboard in `deploy/` graphs only metrics that exist.
    #[test]
    fn the_grafana_dashboard_uses_real_metrics() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../deploy/grafana-dashboard.json")).unwrap();
        let text = metrics().render();
        let mut checked = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let names = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|word| word.starts_with("confab_"));
                for name in names {
                    assert!(text.contains(&format!("\n{name}")), "{name} in {expr}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 12, "{checked}");
    }

    #[test]
    fn commands_are_read_from_encoded_frames() {
        assert_eq!(command_of(b"MESSAGE\nsubscription:0\n\n{}\0"), "MESSAGE");
        assert_eq!(command_of(b"RECEIPT\r\nreceipt-id:1\r\n\r\n\0"), "RECEIPT");
        assert_eq!(command_of(b"\n"), "HEARTBEAT");
        assert_eq!(command_of(b"\xff\n"), "");
    }
}
