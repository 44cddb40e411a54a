//! The bus of several nodes, on one Redis server (redis-rs): pub/sub for events, hashes for
//! presence, expiring keys for node liveness. Nothing durable lives here.
//!
//! - Publishing: one PUBLISH per event to its channel, with this node's id, so that a node
//!   skips what it published itself (it served its own subscribers already). A numbered
//!   event or a revocation that cannot be published while Redis is away waits in a bounded
//!   queue and goes out when Redis is back; the store holds it either way.
//! - Receiving: one pub/sub connection, read by one task that forwards events in order.
//!   The node listens to a channel while it has a local subscriber there (counted). After a
//!   lost connection the task reconnects, listens again to every channel, sends what
//!   waited, and reports [`Incoming::Reconnected`] so that the engine catches up from the
//!   store.
//! - Presence: per room, a hash of users and one of `user@node`, changed by scripts; every
//!   node renews a short-lived liveness key and reaps the entries of nodes whose key
//!   expired, so a killed node's users leave within seconds.

mod keys;
mod scripts;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::{AsyncCommands, Client, RedisError};

pub use keys::{Keys, ONLINE};

use super::{Bus, BusError, BusEvent, Channel, Incoming, IncomingSender, Presence};
use crate::delivery::EncodedMessage;

/// How long a node's liveness key lives; a dead node's users leave within about this
/// plus [`BEAT_EVERY`].
const NODE_TTL: Duration = Duration::from_secs(10);
/// How often a node renews its liveness key and looks for dead nodes.
const BEAT_EVERY: Duration = Duration::from_secs(3);
/// Events kept for sending while Redis is away, at most.
const MAX_UNSENT: usize = 10_000;

/// The Redis bus; a cheap handle.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("node", &self.inner.node).finish_non_exhaustive()
    }
}

struct Inner {
    keys: Keys,
    node: String,
    connection: ConnectionManager,
    /// Channel → how many local users listen.
    listening: Mutex<HashMap<Channel, usize>>,
    /// The subscribing half of the pub/sub connection, while connected.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    subscribed: AtomicBool,
    /// Numbered events and revocations that could not be published yet.
    unsent: Mutex<VecDeque<(String, Vec<u8>)>>,
    incoming: IncomingSender,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl From<RedisError> for BusError {
    fn from(error: RedisError) -> BusError {
        // A restarted Redis answers LOADING until its data is back: unavailable, not broken.
        let loading =
            matches!(error.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading));
        if loading
            || error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
        {
            BusError::Unavailable
        } else {
            BusError::Failed(error.to_string())
        }
    }
}

/// A publication on the wire: a tag, the publishing node, then the event.
/// `J<node>\n<json>` for events, `T<node>\n<message id>\n<encoded tail>` for topics.
fn envelope(node: &str, event: &BusEvent) -> Result<Vec<u8>, BusError> {
    let mut payload = Vec::with_capacity(128);
    match event {
        BusEvent::Topic(message) => {
            payload.push(b'T');
            payload.extend_from_slice(node.as_bytes());
            payload.push(b'\n');
            payload.extend_from_slice(message.message_id().as_bytes());
            payload.push(b'\n');
            payload.extend_from_slice(message.tail());
        }
        event => {
            payload.push(b'J');
            payload.extend_from_slice(node.as_bytes());
            payload.push(b'\n');
            serde_json::to_writer(&mut payload, event)
                .map_err(|error| BusError::Failed(error.to_string()))?;
        }
    }
    Ok(payload)
}

/// The publishing node and the event of a publication, if it is one.
fn open_envelope(payload: &[u8]) -> Option<(&str, BusEvent)> {
    let (&tag, rest) = payload.split_first()?;
    let newline = rest.iter().position(|&byte| byte == b'\n')?;
    let node = std::str::from_utf8(&rest[..newline]).ok()?;
    let body = &rest[newline + 1..];
    let event = match tag {
        b'J' => serde_json::from_slice(body).ok()?,
        b'T' => {
            let newline = body.iter().position(|&byte| byte == b'\n')?;
            let message_id = std::str::from_utf8(&body[..newline]).ok()?;
            let tail = bytes::Bytes::copy_from_slice(&body[newline + 1..]);
            BusEvent::Topic(EncodedMessage::from_tail(message_id, tail))
        }
        _ => return None,
    };
    Some((node, event))
}

impl RedisBus {
    /// Connects (waiting for Redis if it is not up yet), and starts the pub/sub reader and
    /// the liveness task. What other nodes publish goes to `incoming`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        node: &str,
        incoming: IncomingSender,
    ) -> Result<RedisBus, BusError> {
        let client = Client::open(url).map_err(|error| BusError::Failed(error.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_secs(1));
        let connection = loop {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(connection) => break connection,
                Err(error) => {
                    tracing::warn!(%error, url, "waiting for redis");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut listening = HashMap::new();
        listening.insert(Channel::Control, 1);
        let bus = RedisBus {
            inner: Arc::new(Inner {
                keys: Keys::new(prefix),
                node: node.to_owned(),
                connection,
                listening: Mutex::new(listening),
                sink: tokio::sync::Mutex::new(None),
                subscribed: AtomicBool::new(false),
                unsent: Mutex::default(),
                incoming,
            }),
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(read_loop(Arc::downgrade(&bus.inner), client, ready_tx));
        tokio::spawn(liveness(Arc::downgrade(&bus.inner)));
        // Serve only once the pub/sub connection is up.
        let _ = ready_rx.await;
        Ok(bus)
    }

    fn connection(&self) -> ConnectionManager {
        self.inner.connection.clone()
    }
}

impl Inner {
    /// Keeps a publication for when Redis is back, if it matters then.
    fn keep_unsent(&self, channel: String, payload: Vec<u8>) {
        let mut unsent = lock(&self.unsent);
        if unsent.len() >= MAX_UNSENT {
            unsent.pop_front();
            tracing::warn!("too many events waiting for redis: the oldest is dropped");
        }
        unsent.push_back((channel, payload));
    }

    /// Sends what waited; stops at the first failure.
    async fn send_unsent(&self) {
        let mut connection = self.connection.clone();
        loop {
            let Some((channel, payload)) = lock(&self.unsent).pop_front() else { return };
            let sent: Result<i64, RedisError> = connection.publish(&channel, &payload).await;
            if sent.is_err() {
                lock(&self.unsent).push_front((channel, payload));
                return;
            }
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, channel: &Channel, event: &BusEvent) -> Result<(), BusError> {
        let name = self.inner.keys.channel(channel);
        let payload = envelope(&self.inner.node, event)?;
        let sent: Result<i64, RedisError> = self.connection().publish(&name, &payload).await;
        match sent {
            Ok(_) => Ok(()),
            Err(error) => {
                crate::metrics::metrics().bus_errors.inc();
                if matches!(
                    event,
                    BusEvent::Message(_) | BusEvent::Dm { .. } | BusEvent::Revoked { .. }
                ) {
                    self.inner.keep_unsent(name, payload);
                }
                Err(error.into())
            }
        }
    }

    async fn listen(&self, channel: &Channel) -> Result<(), BusError> {
        let first = {
            let mut listening = lock(&self.inner.listening);
            let count = listening.entry(channel.clone()).or_default();
            *count += 1;
            *count == 1
        };
        if first {
            // While disconnected the read loop subscribes every listened channel when it
            // comes back, and the engine catches up from the store.
            let mut sink = self.inner.sink.lock().await;
            if let Some(sink) = sink.as_mut()
                && let Err(error) = sink.subscribe(self.inner.keys.channel(channel)).await
            {
                crate::metrics::metrics().bus_errors.inc();
                tracing::warn!(%error, ?channel, "cannot subscribe now; will when redis is back");
            }
        }
        Ok(())
    }

    fn unlisten(&self, channel: &Channel) {
        let last = {
            let mut listening = lock(&self.inner.listening);
            match listening.get_mut(channel) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    listening.remove(channel);
                    true
                }
                None => false,
            }
        };
        if last {
            let inner = self.inner.clone();
            let name = self.inner.keys.channel(channel);
            let channel = channel.clone();
            tokio::spawn(async move {
                let mut sink = inner.sink.lock().await;
                // Listened to again meanwhile: stay subscribed.
                if lock(&inner.listening).contains_key(&channel) {
                    return;
                }
                if let Some(sink) = sink.as_mut() {
                    let _ = sink.unsubscribe(name).await;
                }
            });
        }
    }

    async fn enter(&self, room: &str, user: &str) -> Result<Presence, BusError> {
        let keys = &self.inner.keys;
        let mut reply: Vec<String> = scripts::ENTER
            .key(keys.presence_users(room))
            .key(keys.presence_nodes(room))
            .key(keys.presence_rooms())
            .arg(user)
            .arg(&self.inner.node)
            .arg(room)
            .invoke_async(&mut self.connection())
            .await?;
        if reply.is_empty() {
            return Err(BusError::Failed("presence script answered nothing".into()));
        }
        let total: i64 = reply.remove(0).parse().unwrap_or(0);
        reply.sort();
        Ok(Presence { users: reply, first: total == 1 })
    }

    async fn leave(&self, room: &str, user: &str) -> Result<bool, BusError> {
        let keys = &self.inner.keys;
        let total: i64 = scripts::LEAVE
            .key(keys.presence_users(room))
            .key(keys.presence_nodes(room))
            .arg(user)
            .arg(&self.inner.node)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(total == 0)
    }

    async fn session_opened(&self, user: &str) -> Result<(), BusError> {
        self.enter(ONLINE, user).await.map(drop)
    }

    fn session_closed(&self, user: &str) {
        let bus = self.clone();
        let user = user.to_owned();
        tokio::spawn(async move {
            if let Err(error) = bus.leave(ONLINE, &user).await {
                crate::metrics::metrics().bus_errors.inc();
                tracing::warn!(%error, user, "online count not updated; the node's go when it stops");
            }
        });
    }

    async fn is_online(&self, user: &str) -> Result<bool, BusError> {
        Ok(self.connection().hexists(self.inner.keys.presence_users(ONLINE), user).await?)
    }

    fn ready(&self) -> bool {
        self.inner.subscribed.load(Ordering::Relaxed)
    }
}

/// The node's pub/sub reader: (re)connects, (re)subscribes, then forwards what other nodes
/// publish, in order, until the connection drops. Ends when the bus is dropped.
async fn read_loop(inner: Weak<Inner>, client: Client, ready: tokio::sync::oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(bus) = inner.upgrade() else { return };
        let pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                crate::metrics::metrics().bus_errors.inc();
                tracing::warn!(%error, "redis pub/sub unavailable, retrying");
                drop(bus);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        {
            // Under the sink's lock, so that no listen() slips between the list and the sink.
            let mut slot = bus.sink.lock().await;
            let names: Vec<String> =
                lock(&bus.listening).keys().map(|channel| bus.keys.channel(channel)).collect();
            if let Err(error) = sink.subscribe(names).await {
                crate::metrics::metrics().bus_errors.inc();
                tracing::warn!(%error, "cannot resubscribe, retrying");
                drop(slot);
                drop(bus);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
            *slot = Some(sink);
        }
        delay = Duration::from_millis(100);
        bus.subscribed.store(true, Ordering::Relaxed);
        match ready.take() {
            Some(ready) => {
                let _ = ready.send(());
            }
            None => {
                crate::metrics::metrics().bus_reconnects.inc();
                tracing::info!("redis pub/sub is back; catching up");
                bus.send_unsent().await;
                let _ = bus.incoming.send(Incoming::Reconnected);
            }
        }
        let (keys, node, incoming) = (bus.keys.clone(), bus.node.clone(), bus.incoming.clone());
        // Hold no strong handle while waiting for messages: dropping the bus ends the loop
        // at the next message or disconnect.
        let weak = Arc::downgrade(&bus);
        drop(bus);
        while let Some(message) = stream.next().await {
            let Some(channel) = keys.parse_channel(message.get_channel_name()) else { continue };
            match open_envelope(message.get_payload_bytes()) {
                Some((from, _)) if from == node => {}
                Some((_, event)) => {
                    if incoming.send(Incoming::Event(channel, event)).is_err() {
                        return;
                    }
                }
                None => tracing::debug!(?channel, "ignoring an unreadable publication"),
            }
        }
        let Some(bus) = weak.upgrade() else { return };
        tracing::warn!("lost the redis pub/sub connection");
        bus.subscribed.store(false, Ordering::Relaxed);
        *bus.sink.lock().await = None;
    }
}

/// Renews this node's liveness key and reaps nodes whose key has expired: their users
/// leave the rooms they were in only through that node.
async fn liveness(inner: Weak<Inner>) {
    let mut beat = tokio::time::interval(BEAT_EVERY);
    loop {
        beat.tick().await;
        let Some(bus) = inner.upgrade() else { return };
        let mut connection = bus.connection.clone();
        let keys = &bus.keys;
        let alive: Result<(), RedisError> = redis::pipe()
            .set_ex(keys.node(&bus.node), 1, NODE_TTL.as_secs())
            .ignore()
            .sadd(keys.nodes(), &bus.node)
            .ignore()
            .query_async(&mut connection)
            .await;
        if alive.is_err() {
            continue;
        }
        let nodes: HashSet<String> = connection.smembers(keys.nodes()).await.unwrap_or_default();
        for other in nodes.into_iter().filter(|other| *other != bus.node) {
            let exists: bool = connection.exists(keys.node(&other)).await.unwrap_or(true);
            if exists {
                continue;
            }
            let gone: Result<Vec<String>, RedisError> = scripts::REAP_NODE
                .arg(keys.prefix())
                .arg(&other)
                .invoke_async(&mut connection)
                .await;
            let gone = match gone {
                Ok(gone) => gone,
                Err(error) => {
                    tracing::warn!(%error, node = other, "could not reap a dead node");
                    continue;
                }
            };
            tracing::info!(node = other, users = gone.len() / 2, "reaped a dead node's presence");
            let at = crate::clock::now_millis();
            for pair in gone.chunks_exact(2) {
                let (room, user) = (&pair[0], &pair[1]);
                if room.as_str() == ONLINE {
                    continue;
                }
                let channel = Channel::Room(room.clone());
                let event = BusEvent::Left { user: user.clone(), at };
                // The other nodes hear it on the bus; this node's subscribers from here.
                let _ = RedisBus { inner: bus.clone() }.publish(&channel, &event).await;
                let _ = bus.incoming.send(Incoming::Event(channel, event));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_name_their_node() {
        let event = BusEvent::Typing { user: "ann".into() };
        let payload = envelope("n1", &event).unwrap();
        let (node, opened) = open_envelope(&payload).unwrap();
        assert_eq!(node, "n1");
        assert!(matches!(opened, BusEvent::Typing { user } if user == "ann"));
        let message =
            EncodedMessage::new("/topic/a", "n1-7", &shared::stomp::Headers::new(), b"\0bin");
        let payload = envelope("n1", &BusEvent::Topic(message.clone())).unwrap();
        let Some((_, BusEvent::Topic(opened))) = open_envelope(&payload) else {
            panic!("a topic publication");
        };
        assert_eq!((opened.message_id(), opened.tail()), (message.message_id(), message.tail()));
        assert!(open_envelope(b"Xn1\n{}").is_none());
    }
}
