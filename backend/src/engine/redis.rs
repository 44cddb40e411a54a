//! The Redis engine: any number of nodes share users, rooms, history, direct messages,
//! presence and fan-out through one Redis server.
//!
//! - Storage: hashes and sets for accounts and rooms; one stream per room and per user
//!   inbox, with entry ids `<seq>-0`, capped at `history_cap` entries.
//! - Fan-out: a message is published once, by the Lua script that stores it, on the
//!   room's (or user's) channel; each node subscribes to a channel only while it has a
//!   local subscriber there, encodes what arrives once, and hands it to its [`Hub`].
//! - Exactness: one dispatch task per node reads the pub/sub connection in order and also
//!   runs every subscription's replay-and-register, so replay and live delivery never
//!   interleave. Per channel, the node remembers the last id it delivered; after a lost
//!   pub/sub connection it resubscribes and catches up from the streams.
//! - Presence: per room, a hash of users and a hash of `user@node` counts; each node renews
//!   a short-lived liveness key, and every node reaps the entries of nodes whose key
//!   expired, publishing `left` for their users.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::streams::{StreamId, StreamRangeReply};
use redis::{AsyncCommands, Client, RedisError};
use shared::api::{DmPage, DmSummary, RoomPage, RoomSummary};
use shared::chat::{ChatMessage, Destination, DirectMessage, LOBBY, Notice, RoomEvent};
use shared::stomp::Headers;
use tokio::sync::{mpsc, oneshot};

use super::redis_scripts as lua;
use super::{EngineError, MAX_REPLAY, Posted, Replay};
use crate::broker::{
    EncodedMessage, FrameCache, Hub, Outgoing, SessionId, Subscriber, chat_message_json,
    dm_message_json, inbox_key, next_message_id, node_prefix, notice_message, notices_key,
    now_millis, room_event_json,
};

/// How a node reaches Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prepended to every key and channel, so several deployments can share a server.
    pub prefix: String,
    /// Messages kept per room stream and per inbox (approximately: trimming is lazy).
    pub history_cap: usize,
}

/// How long a node's liveness key lives; a dead node's users leave within about this
/// plus [`REAP_EVERY`].
const NODE_TTL: Duration = Duration::from_secs(10);
/// How often a node renews its liveness key.
const BEAT_EVERY: Duration = Duration::from_secs(3);
/// How often a node looks for dead nodes to reap.
const REAP_EVERY: Duration = Duration::from_secs(3);

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The Redis engine; a cheap handle.
#[derive(Clone)]
pub struct RedisEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEngine").field("node", &self.inner.node).finish_non_exhaustive()
    }
}

struct Inner {
    prefix: String,
    history_cap: usize,
    node: String,
    connection: ConnectionManager,
    hub: Hub,
    /// Channel → local references. Held across SUBSCRIBE so that nobody registers on a
    /// channel before the node receives it.
    channels: tokio::sync::Mutex<HashMap<String, usize>>,
    /// Channel → the last stored id delivered on this node.
    delivered: Mutex<HashMap<String, u64>>,
    sink: Mutex<Option<PubSubSink>>,
    subscribed: AtomicBool,
    jobs: mpsc::UnboundedSender<Job>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl From<RedisError> for EngineError {
    fn from(error: RedisError) -> EngineError {
        // A restarted Redis answers LOADING until its data is back: unavailable, not broken.
        let loading =
            matches!(error.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading));
        if loading
            || error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
        {
            EngineError::Unavailable
        } else {
            EngineError::Redis(error.to_string())
        }
    }
}

impl RedisEngine {
    /// Connects (waiting for Redis if it is not up yet), makes sure the lobby exists, and
    /// starts the dispatch, liveness and reaper tasks.
    pub async fn connect(config: RedisConfig, hub: Hub) -> Result<RedisEngine, EngineError> {
        let client = Client::open(config.url.as_str())
            .map_err(|error| EngineError::Redis(error.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_secs(1));
        let connection = loop {
            match ConnectionManager::new_with_config(client.clone(), manager_config.clone()).await {
                Ok(connection) => break connection,
                Err(error) => {
                    tracing::warn!(%error, url = %config.url, "waiting for redis");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let (jobs, queue) = mpsc::unbounded_channel();
        let engine = RedisEngine {
            inner: Arc::new(Inner {
                prefix: config.prefix,
                history_cap: config.history_cap.max(1),
                node: node_prefix().to_owned(),
                connection,
                hub,
                channels: tokio::sync::Mutex::default(),
                delivered: Mutex::default(),
                sink: Mutex::new(None),
                subscribed: AtomicBool::new(false),
                jobs,
            }),
        };
        let lobby = engine.key(&format!("room:{LOBBY}"));
        let mut connection = engine.connection();
        // Redis may still be loading its data after a restart: wait for it.
        loop {
            let created: Result<(), RedisError> = redis::pipe()
                .hset_nx(&lobby, "created_at", 0)
                .ignore()
                .sadd(engine.key("rooms"), LOBBY)
                .ignore()
                .query_async(&mut connection)
                .await;
            match created.map_err(EngineError::from) {
                Ok(()) => break,
                Err(EngineError::Unavailable) => {
                    tracing::warn!(url = %config.url, "waiting for redis to finish loading");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error),
            }
        }
        tokio::spawn(dispatch(Arc::downgrade(&engine.inner), client, queue));
        tokio::spawn(liveness(Arc::downgrade(&engine.inner)));
        Ok(engine)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    fn connection(&self) -> ConnectionManager {
        self.inner.connection.clone()
    }

    fn room_channel(&self, room: &str) -> String {
        self.key(&format!("room:{room}"))
    }

    fn user_channel(&self, user: &str) -> String {
        self.key(&format!("user:{user}"))
    }

    /// The channel a hub key lives on.
    fn channel_of(&self, key: &str) -> String {
        if let Some(room) = key.strip_prefix("/topic/room.") {
            self.room_channel(room)
        } else if let Some(topic) = key.strip_prefix("/topic/") {
            self.key(&format!("topic:{topic}"))
        } else if let Some(rest) = key.strip_prefix("/user/") {
            self.user_channel(rest.split('/').next().unwrap_or_default())
        } else {
            self.key(key)
        }
    }

    pub(super) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub(super) async fn ready(&self) -> bool {
        let mut connection = self.connection();
        let ping: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
        ping.is_ok() && self.inner.subscribed.load(Ordering::Relaxed)
    }

    // Channels.

    /// Makes sure this node receives `channel`, counting one more local user of it.
    async fn acquire(&self, channel: &str) -> Result<(), EngineError> {
        let mut channels = self.inner.channels.lock().await;
        let count = channels.entry(channel.to_owned()).or_default();
        if *count == 0 {
            let sink = lock(&self.inner.sink).clone();
            let Some(mut sink) = sink else {
                channels.remove(channel);
                return Err(EngineError::Unavailable);
            };
            if let Err(error) = sink.subscribe(channel).await {
                channels.remove(channel);
                return Err(error.into());
            }
        }
        *channels.entry(channel.to_owned()).or_default() += 1;
        Ok(())
    }

    /// Counts one local user of `channel` less; unsubscribes when none is left.
    fn release(&self, channel: String) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut channels = inner.channels.lock().await;
            let Some(count) = channels.get_mut(&channel) else { return };
            *count -= 1;
            if *count == 0 {
                channels.remove(&channel);
                lock(&inner.delivered).remove(&channel);
                let sink = lock(&inner.sink).clone();
                if let Some(mut sink) = sink {
                    let _ = sink.unsubscribe(&channel).await;
                }
            }
        });
    }

    /// Runs `job` on the dispatch task, between two pub/sub messages.
    async fn on_dispatch<R: Send + 'static>(
        &self,
        job: impl Future<Output = Result<R, EngineError>> + Send + 'static,
    ) -> Result<R, EngineError> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let _ = reply.send(job.await);
            })
        });
        self.inner.jobs.send(job).map_err(|_| EngineError::Unavailable)?;
        result.await.map_err(|_| EngineError::Unavailable)?
    }

    // Accounts.

    pub(super) async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<(), EngineError> {
        let created: i64 = lua::CREATE_USER
            .key(self.key(&format!("user:{name}")))
            .key(self.key(&format!("room:{LOBBY}:members")))
            .key(self.key(&format!("room:{LOBBY}:reads")))
            .key(self.key(&format!("room:{LOBBY}:seq")))
            .arg(name)
            .arg(password_hash)
            .arg(now_millis())
            .invoke_async(&mut self.connection())
            .await?;
        if created == 0 {
            return Err(EngineError::Conflict(format!("the name {name:?} is taken")));
        }
        Ok(())
    }

    pub(super) async fn password_hash(&self, name: &str) -> Result<Option<String>, EngineError> {
        Ok(self.connection().hget(self.key(&format!("user:{name}")), "hash").await?)
    }

    pub(super) async fn user_exists(&self, name: &str) -> Result<bool, EngineError> {
        Ok(self.connection().exists(self.key(&format!("user:{name}"))).await?)
    }

    pub(super) async fn store_token(
        &self,
        token_hash: &str,
        name: &str,
    ) -> Result<(), EngineError> {
        let _: () = self.connection().set(self.key(&format!("token:{token_hash}")), name).await?;
        Ok(())
    }

    pub(super) async fn token_user(&self, token_hash: &str) -> Result<Option<String>, EngineError> {
        Ok(self.connection().get(self.key(&format!("token:{token_hash}"))).await?)
    }

    pub(super) async fn revoke_token(&self, token_hash: &str) -> Result<(), EngineError> {
        let _: () = self.connection().del(self.key(&format!("token:{token_hash}"))).await?;
        Ok(())
    }

    // Rooms.

    pub(super) async fn create_room(&self, name: &str, creator: &str) -> Result<(), EngineError> {
        let created: i64 = lua::CREATE_ROOM
            .key(self.key(&format!("room:{name}")))
            .key(self.key("rooms"))
            .key(self.key(&format!("room:{name}:members")))
            .key(self.key(&format!("room:{name}:reads")))
            .arg(name)
            .arg(creator)
            .arg(now_millis())
            .invoke_async(&mut self.connection())
            .await?;
        if created == 0 {
            return Err(EngineError::Conflict(format!("a room named {name:?} already exists")));
        }
        let _: u64 = self.connection().incr(self.key(&format!("user:{creator}:rooms")), 1).await?;
        Ok(())
    }

    pub(super) async fn rooms_created_by(&self, user: &str) -> Result<u64, EngineError> {
        let created: Option<u64> =
            self.connection().get(self.key(&format!("user:{user}:rooms"))).await?;
        Ok(created.unwrap_or(0))
    }

    pub(super) async fn room_exists(&self, name: &str) -> Result<bool, EngineError> {
        Ok(self.connection().exists(self.key(&format!("room:{name}"))).await?)
    }

    async fn require_room(&self, name: &str) -> Result<(), EngineError> {
        if self.room_exists(name).await? {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!("no room named {name:?}")))
        }
    }

    pub(super) async fn is_member(&self, room: &str, user: &str) -> Result<bool, EngineError> {
        Ok(self.connection().sismember(self.key(&format!("room:{room}:members")), user).await?)
    }

    pub(super) async fn join_room(&self, room: &str, user: &str) -> Result<(), EngineError> {
        let joined: i64 = lua::JOIN_ROOM
            .key(self.key(&format!("room:{room}")))
            .key(self.key(&format!("room:{room}:members")))
            .key(self.key(&format!("room:{room}:reads")))
            .key(self.key(&format!("room:{room}:seq")))
            .arg(user)
            .invoke_async(&mut self.connection())
            .await?;
        if joined == 0 {
            return Err(EngineError::NotFound(format!("no room named {room:?}")));
        }
        Ok(())
    }

    pub(super) async fn leave_room(&self, room: &str, user: &str) -> Result<(), EngineError> {
        self.require_room(room).await?;
        let _: () = redis::pipe()
            .srem(self.key(&format!("room:{room}:members")), user)
            .ignore()
            .hdel(self.key(&format!("room:{room}:reads")), user)
            .ignore()
            .query_async(&mut self.connection())
            .await?;
        Ok(())
    }

    pub(super) async fn rooms_for(&self, user: &str) -> Result<Vec<RoomSummary>, EngineError> {
        let mut connection = self.connection();
        let mut names: Vec<String> = connection.smembers(self.key("rooms")).await?;
        names.sort();
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.scard(self.key(&format!("room:{name}:members")))
                .get(self.key(&format!("room:{name}:seq")))
                .hget(self.key(&format!("room:{name}:reads")), user);
        }
        let values: Vec<redis::Value> = pipe.query_async(&mut connection).await?;
        let mut rooms = Vec::with_capacity(names.len());
        for (name, chunk) in names.into_iter().zip(values.chunks(3)) {
            let members: u64 = redis::from_redis_value_ref(&chunk[0]).unwrap_or(0);
            let last_seq: Option<u64> = redis::from_redis_value_ref(&chunk[1]).unwrap_or(None);
            let read: Option<u64> = redis::from_redis_value_ref(&chunk[2]).unwrap_or(None);
            let last_seq = last_seq.unwrap_or(0);
            rooms.push(RoomSummary {
                name,
                members,
                joined: read.is_some(),
                last_seq,
                unread: read.map_or(0, |read| last_seq.saturating_sub(read)),
            });
        }
        Ok(rooms)
    }

    pub(super) async fn mark_room_read(
        &self,
        room: &str,
        user: &str,
        seq: u64,
    ) -> Result<(), EngineError> {
        let _: i64 = lua::MARK_READ
            .key(self.key(&format!("room:{room}:reads")))
            .key(self.key(&format!("room:{room}:seq")))
            .arg(user)
            .arg(seq)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(())
    }

    pub(super) async fn room_page(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        self.require_room(room).await?;
        let end = before.map_or_else(|| "+".to_owned(), |seq| format!("({seq}-0"));
        let reply: StreamRangeReply = self
            .connection()
            .xrevrange_count(self.key(&format!("room:{room}:log")), end, "-", limit + 1)
            .await?;
        let mut messages: Vec<ChatMessage> =
            reply.ids.iter().filter_map(|entry| room_entry(room, entry)).collect();
        let more = messages.len() > limit;
        messages.truncate(limit);
        messages.reverse();
        Ok(RoomPage { messages, more })
    }

    pub(super) async fn room_page_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        self.require_room(room).await?;
        let reply: StreamRangeReply = self
            .connection()
            .xrange_count(
                self.key(&format!("room:{room}:log")),
                format!("({after}-0"),
                "+",
                limit + 1,
            )
            .await?;
        let mut messages: Vec<ChatMessage> =
            reply.ids.iter().filter_map(|entry| room_entry(room, entry)).collect();
        let more = messages.len() > limit;
        messages.truncate(limit);
        Ok(RoomPage { messages, more })
    }

    pub(super) async fn inbox_page_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<DmPage, EngineError> {
        let reply: StreamRangeReply = self
            .connection()
            .xrange_count(
                self.key(&format!("inbox:{user}:log")),
                format!("({after}-0"),
                "+",
                limit + 1,
            )
            .await?;
        let mut messages: Vec<DirectMessage> = reply.ids.iter().filter_map(dm_entry).collect();
        let more = messages.len() > limit;
        messages.truncate(limit);
        Ok(DmPage { messages, more })
    }

    // Direct messages.

    pub(super) async fn dm_summaries(&self, user: &str) -> Result<Vec<DmSummary>, EngineError> {
        let mut connection = self.connection();
        let reply: StreamRangeReply = connection
            .xrevrange_count(self.key(&format!("inbox:{user}:log")), "+", "-", 5000)
            .await?;
        let reads: HashMap<String, u64> =
            connection.hgetall(self.key(&format!("inbox:{user}:reads"))).await?;
        let mut order: Vec<String> = Vec::new();
        let mut summaries: HashMap<String, DmSummary> = HashMap::new();
        for message in reply.ids.iter().filter_map(dm_entry) {
            let peer = message.peer(user).to_owned();
            let read = reads.get(&peer).copied().unwrap_or(0);
            let summary = summaries.entry(peer.clone()).or_insert_with(|| {
                order.push(peer.clone());
                DmSummary { peer: peer.clone(), last_seq: message.seq, unread: 0 }
            });
            if message.from == peer && message.seq > read {
                summary.unread += 1;
            }
        }
        Ok(order.into_iter().filter_map(|peer| summaries.remove(&peer)).collect())
    }

    pub(super) async fn dm_page(
        &self,
        user: &str,
        peer: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<DmPage, EngineError> {
        let mut connection = self.connection();
        let log = self.key(&format!("inbox:{user}:log"));
        let mut end = before.map_or_else(|| "+".to_owned(), |seq| format!("({seq}-0"));
        let mut messages = Vec::new();
        // Scan back through the inbox in chunks, keeping this conversation's messages.
        for _ in 0..(self.inner.history_cap / 500 + 1) {
            let reply: StreamRangeReply = connection.xrevrange_count(&log, &end, "-", 500).await?;
            let Some(last) = reply.ids.last() else { break };
            end = format!("({}", last.id);
            messages.extend(reply.ids.iter().filter_map(dm_entry).filter(|m| m.peer(user) == peer));
            if messages.len() > limit {
                break;
            }
        }
        let more = messages.len() > limit;
        messages.truncate(limit);
        messages.reverse();
        Ok(DmPage { messages, more })
    }

    pub(super) async fn mark_dm_read(
        &self,
        user: &str,
        peer: &str,
        seq: u64,
    ) -> Result<(), EngineError> {
        let key = self.key(&format!("inbox:{user}:reads"));
        let mut connection = self.connection();
        let current: Option<u64> = connection.hget(&key, peer).await?;
        if current.is_none_or(|current| seq > current) {
            let _: () = connection.hset(&key, peer, seq).await?;
        }
        Ok(())
    }

    // Live traffic.

    pub(super) async fn post_room(
        &self,
        room: &str,
        sender: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<Posted<ChatMessage>, EngineError> {
        let sent_at = now_millis();
        let mut message = ChatMessage {
            seq: 0,
            room: room.to_owned(),
            sender: sender.to_owned(),
            text: text.to_owned(),
            sent_at,
        };
        let template = serde_json::to_string(&RoomEvent::Message(message.clone()))
            .expect("messages serialize");
        let (seq, duplicate): (i64, i64) = lua::POST_ROOM
            .key(self.key(&format!("room:{room}")))
            .key(self.key(&format!("room:{room}:seq")))
            .key(self.key(&format!("room:{room}:log")))
            .key(self.key(&format!("idem:{room}:{sender}:{}", key.unwrap_or_default())))
            .arg(sender)
            .arg(text)
            .arg(sent_at)
            .arg(key.unwrap_or_default())
            .arg(self.inner.history_cap)
            .arg(self.room_channel(room))
            .arg(template)
            .invoke_async(&mut self.connection())
            .await?;
        if seq < 0 {
            return Err(EngineError::NotFound(format!("no room named {room:?}")));
        }
        message.seq = seq as u64;
        if duplicate == 1 {
            // The earlier message, as it was stored (unless trimmed from history since).
            let id = format!("{seq}-0");
            let reply: StreamRangeReply =
                self.connection().xrange(self.key(&format!("room:{room}:log")), &id, &id).await?;
            if let Some(stored) = reply.ids.first().and_then(|entry| room_entry(room, entry)) {
                message = stored;
            }
        }
        Ok(Posted { message, duplicate: duplicate == 1 })
    }

    pub(super) async fn post_dm(
        &self,
        from: &str,
        to: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<Posted<DirectMessage>, EngineError> {
        let sent_at = now_millis();
        let mut message = DirectMessage {
            seq: 0,
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            sent_at,
        };
        let template = serde_json::to_string(&message).expect("messages serialize");
        let (mine, _theirs, duplicate): (i64, i64, i64) = lua::POST_DM
            .key(self.key(&format!("user:{to}")))
            .key(self.key(&format!("inbox:{from}:seq")))
            .key(self.key(&format!("inbox:{from}:log")))
            .key(self.key(&format!("inbox:{to}:seq")))
            .key(self.key(&format!("inbox:{to}:log")))
            .key(self.key(&format!("idem-dm:{from}:{to}:{}", key.unwrap_or_default())))
            .arg(from)
            .arg(to)
            .arg(text)
            .arg(sent_at)
            .arg(key.unwrap_or_default())
            .arg(self.inner.history_cap)
            .arg(self.user_channel(from))
            .arg(self.user_channel(to))
            .arg(template)
            .invoke_async(&mut self.connection())
            .await?;
        if mine < 0 {
            return Err(EngineError::NotFound(format!("no user named {to:?}")));
        }
        message.seq = mine as u64;
        Ok(Posted { message, duplicate: duplicate == 1 })
    }

    pub(super) async fn attach_room(
        &self,
        room: &str,
        user: &str,
        subscriber: Subscriber,
        replay: Replay,
    ) -> Result<(), EngineError> {
        self.join_room(room, user).await?;
        let channel = self.room_channel(room);
        self.acquire(&channel).await?;
        let engine = self.clone();
        let (room, user) = (room.to_owned(), user.to_owned());
        let result = self
            .on_dispatch(async move {
                let joined =
                    room_event_json(&RoomEvent::Joined { user: user.clone(), at: now_millis() });
                let mut users: Vec<String> = lua::PRESENCE_JOIN
                    .key(engine.key(&format!("p:{room}:nodes")))
                    .key(engine.key(&format!("p:{room}:users")))
                    .key(engine.key("p:rooms"))
                    .arg(&user)
                    .arg(&engine.inner.node)
                    .arg(&room)
                    .arg(engine.room_channel(&room))
                    .arg(joined)
                    .invoke_async(&mut engine.connection())
                    .await?;
                users.sort();
                let (last_seq, entries) =
                    engine.replay_range(&format!("room:{room}"), replay).await?;
                let key = Destination::room(&room);
                let snapshot =
                    crate::broker::room_event_message(&key, &RoomEvent::Presence { users });
                let mut frames = vec![
                    FrameCache::new(&snapshot)
                        .outgoing(&subscriber.subscription, subscriber.ack_kind()),
                ];
                let history = entries.iter().filter_map(|entry| room_entry(&room, entry));
                frames.extend(history.map(|message| {
                    FrameCache::new(&crate::broker::chat_message(&message))
                        .outgoing(&subscriber.subscription, subscriber.ack_kind())
                }));
                let mut subscriber = subscriber;
                subscriber.replayed_up_to = last_seq;
                subscriber.outbox.push(Outgoing::Batch(frames));
                // The channel's watermark stays where live delivery left it: `last_seq` may
                // count messages still unread in this node's pub/sub stream, which the
                // room's other subscribers have yet to get (security review H1). The new
                // subscriber skips them by its own `replayed_up_to`.
                engine.inner.hub.subscribe(&key, subscriber);
                Ok(())
            })
            .await;
        if result.is_err() {
            self.release(channel);
        }
        result
    }

    /// The current last id of a log and the entries a replay covers, read atomically.
    async fn replay_range(
        &self,
        log: &str,
        replay: Replay,
    ) -> Result<(u64, Vec<StreamId>), EngineError> {
        let seq_key = self.key(&format!("{log}:seq"));
        let log_key = self.key(&format!("{log}:log"));
        let mut pipe = redis::pipe();
        pipe.atomic().get(&seq_key);
        match replay {
            Replay::Latest(count) => pipe.xrevrange_count(&log_key, "+", "-", count),
            Replay::Since(since) => {
                pipe.xrange_count(&log_key, format!("({since}-0"), "+", MAX_REPLAY + 1)
            }
        };
        let (last_seq, reply): (Option<u64>, StreamRangeReply) =
            pipe.query_async(&mut self.connection()).await?;
        let last_seq = last_seq.unwrap_or(0);
        let mut entries = reply.ids;
        match replay {
            Replay::Latest(_) => entries.reverse(),
            Replay::Since(_) if entries.len() > MAX_REPLAY => {
                // Too many to replay: the newest ones, the client pages the rest.
                let reply: StreamRangeReply =
                    self.connection().xrevrange_count(&log_key, "+", "-", MAX_REPLAY).await?;
                entries = reply.ids;
                entries.reverse();
            }
            Replay::Since(_) => {}
        }
        Ok((last_seq, entries))
    }

    pub(super) fn detach_room(
        &self,
        room: &str,
        user: &str,
        session: SessionId,
        subscription: &str,
    ) {
        if !self.inner.hub.unsubscribe(&Destination::room(room), session, subscription) {
            return;
        }
        self.release(self.room_channel(room));
        let engine = self.clone();
        let (room, user) = (room.to_owned(), user.to_owned());
        tokio::spawn(async move {
            let left = room_event_json(&RoomEvent::Left { user: user.clone(), at: now_millis() });
            let result: Result<i64, RedisError> = lua::PRESENCE_LEAVE
                .key(engine.key(&format!("p:{room}:nodes")))
                .key(engine.key(&format!("p:{room}:users")))
                .arg(&user)
                .arg(&engine.inner.node)
                .arg(engine.room_channel(&room))
                .arg(left)
                .invoke_async(&mut engine.connection())
                .await;
            if let Err(error) = result {
                tracing::warn!(%error, room, user, "presence not updated; the node's entries go when it stops");
            }
        });
    }

    pub(super) async fn attach_inbox(
        &self,
        user: &str,
        subscriber: Subscriber,
        replay: Replay,
    ) -> Result<(), EngineError> {
        let channel = self.user_channel(user);
        self.acquire(&channel).await?;
        let engine = self.clone();
        let user = user.to_owned();
        let result = self
            .on_dispatch(async move {
                let (last_seq, entries) =
                    engine.replay_range(&format!("inbox:{user}"), replay).await?;
                let frames = entries
                    .iter()
                    .filter_map(dm_entry)
                    .map(|message| {
                        FrameCache::new(&crate::broker::dm_message(&user, &message))
                            .outgoing(&subscriber.subscription, subscriber.ack_kind())
                    })
                    .collect();
                let mut subscriber = subscriber;
                subscriber.replayed_up_to = last_seq;
                subscriber.outbox.push(Outgoing::Batch(frames));
                // As for rooms: the channel's watermark is live delivery's alone.
                engine.inner.hub.subscribe(&inbox_key(&user), subscriber);
                Ok(())
            })
            .await;
        if result.is_err() {
            self.release(channel);
        }
        result
    }

    pub(super) async fn attach_key(
        &self,
        key: &str,
        subscriber: Subscriber,
    ) -> Result<(), EngineError> {
        self.acquire(&self.channel_of(key)).await?;
        self.inner.hub.subscribe(key, subscriber);
        Ok(())
    }

    pub(super) fn detach_key(&self, key: &str, session: SessionId, subscription: &str) {
        if self.inner.hub.unsubscribe(key, session, subscription) {
            self.release(self.channel_of(key));
        }
    }

    pub(super) async fn publish_topic(
        &self,
        destination: &str,
        headers: &Headers,
        body: &[u8],
    ) -> Result<(), EngineError> {
        let message_id = next_message_id();
        let message = EncodedMessage::new(destination, &message_id, headers, body);
        let mut payload = format!("T{message_id}\n").into_bytes();
        payload.extend_from_slice(message.tail());
        let _: i64 = self.connection().publish(self.channel_of(destination), payload).await?;
        Ok(())
    }

    pub(super) async fn typing(&self, room: &str, user: &str) -> Result<(), EngineError> {
        let body = room_event_json(&RoomEvent::Typing { user: user.to_owned() });
        let _: i64 =
            self.connection().publish(self.room_channel(room), format!("E\n{body}")).await?;
        Ok(())
    }

    pub(super) async fn notify(&self, user: &str, notice: &Notice) -> Result<(), EngineError> {
        let body = serde_json::to_string(notice).expect("notices serialize");
        let _: i64 =
            self.connection().publish(self.user_channel(user), format!("N\n{body}")).await?;
        Ok(())
    }

    pub(super) async fn session_opened(&self, user: &str) -> Result<(), EngineError> {
        let _: Vec<String> = lua::PRESENCE_JOIN
            .key(self.key("p:@online:nodes"))
            .key(self.key("p:@online:users"))
            .key(self.key("p:rooms"))
            .arg(user)
            .arg(&self.inner.node)
            .arg("@online")
            .arg("")
            .arg("")
            .invoke_async(&mut self.connection())
            .await?;
        Ok(())
    }

    pub(super) fn session_closed(&self, user: &str) {
        let engine = self.clone();
        let user = user.to_owned();
        tokio::spawn(async move {
            let result: Result<i64, RedisError> = lua::PRESENCE_LEAVE
                .key(engine.key("p:@online:nodes"))
                .key(engine.key("p:@online:users"))
                .arg(&user)
                .arg(&engine.inner.node)
                .arg("")
                .arg("")
                .invoke_async(&mut engine.connection())
                .await;
            if let Err(error) = result {
                tracing::warn!(%error, user, "online count not updated");
            }
        });
    }

    pub(super) async fn is_online(&self, user: &str) -> Result<bool, EngineError> {
        Ok(self.connection().hexists(self.key("p:@online:users"), user).await?)
    }

    /// Hands one pub/sub message to the local subscribers.
    fn dispatch_message(&self, channel: &str, payload: &[u8]) {
        let Some(name) = channel.strip_prefix(self.inner.prefix.as_str()) else { return };
        let Some((&kind, rest)) = payload.split_first() else { return };
        let Some(newline) = rest.iter().position(|&byte| byte == b'\n') else { return };
        let (head, body) = (&rest[..newline], &rest[newline + 1..]);
        let head = std::str::from_utf8(head).unwrap_or_default();
        let hub = &self.inner.hub;
        match (kind, name.split_once(':')) {
            (b'M', Some(("room", room))) => {
                let Ok(seq) = head.parse() else { return };
                if self.fresh(channel, seq) {
                    hub.deliver(
                        &Destination::room(room),
                        &chat_message_json(room, seq, body),
                        Some(seq),
                    );
                }
            }
            (b'E', Some(("room", room))) => {
                let key = Destination::room(room);
                hub.deliver(&key, &crate::broker::room_event_raw(&key, body), None);
            }
            (b'J', Some(("room", room))) => {
                let key = Destination::room(room);
                hub.deliver_to_others(&key, &crate::broker::room_event_raw(&key, body), head);
            }
            (b'D', Some(("user", user))) => {
                let Ok(seq) = head.parse() else { return };
                if self.fresh(channel, seq) {
                    hub.deliver(&inbox_key(user), &dm_message_json(user, seq, body), Some(seq));
                }
            }
            (b'N', Some(("user", user))) => {
                if let Ok(notice) = serde_json::from_slice::<Notice>(body) {
                    hub.deliver(&notices_key(user), &notice_message(&notice), None);
                }
            }
            (b'T', Some(("topic", topic))) => {
                let message = EncodedMessage::from_tail(head, bytes::Bytes::copy_from_slice(body));
                hub.deliver(&format!("/topic/{topic}"), &message, None);
            }
            _ => tracing::debug!(channel, "ignoring an unknown pub/sub message"),
        }
    }

    /// Whether a stored message with `seq` has not been delivered on this node yet; notes it.
    fn fresh(&self, channel: &str, seq: u64) -> bool {
        let mut delivered = lock(&self.inner.delivered);
        let last = delivered.entry(channel.to_owned()).or_default();
        if seq <= *last {
            return false;
        }
        *last = seq;
        true
    }

    /// After a lost pub/sub connection: delivers what the streams hold beyond what this
    /// node delivered, for every channel it receives.
    async fn catch_up(&self) -> Result<(), EngineError> {
        let channels: Vec<String> = self.inner.channels.lock().await.keys().cloned().collect();
        for channel in channels {
            let Some(name) = channel.strip_prefix(self.inner.prefix.as_str()) else { continue };
            let last = lock(&self.inner.delivered).get(&channel).copied().unwrap_or(0);
            let log = match name.split_once(':') {
                Some(("room", room)) => format!("room:{room}"),
                Some(("user", user)) => format!("inbox:{user}"),
                _ => continue,
            };
            let (_, entries) = self.replay_range(&log, Replay::Since(last)).await?;
            for entry in &entries {
                let Some(seq) = entry_seq(entry) else { continue };
                if !self.fresh(&channel, seq) {
                    continue;
                }
                match name.split_once(':') {
                    Some(("room", room)) => {
                        if let Some(message) = room_entry(room, entry) {
                            self.inner.hub.deliver(
                                &Destination::room(room),
                                &crate::broker::chat_message(&message),
                                Some(seq),
                            );
                        }
                    }
                    Some(("user", user)) => {
                        if let Some(message) = dm_entry(entry) {
                            self.inner.hub.deliver(
                                &inbox_key(user),
                                &crate::broker::dm_message(user, &message),
                                Some(seq),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn entry_seq(entry: &StreamId) -> Option<u64> {
    entry.id.split('-').next()?.parse().ok()
}

fn room_entry(room: &str, entry: &StreamId) -> Option<ChatMessage> {
    Some(ChatMessage {
        seq: entry_seq(entry)?,
        room: room.to_owned(),
        sender: entry.get("s")?,
        text: entry.get("t")?,
        sent_at: entry.get("at")?,
    })
}

fn dm_entry(entry: &StreamId) -> Option<DirectMessage> {
    Some(DirectMessage {
        seq: entry_seq(entry)?,
        from: entry.get("f")?,
        to: entry.get("r")?,
        text: entry.get("t")?,
        sent_at: entry.get("at")?,
    })
}

/// The node's pub/sub loop: (re)connects, (re)subscribes, catches up, then dispatches
/// messages and runs subscription jobs in order until the connection drops.
async fn dispatch(
    inner: std::sync::Weak<Inner>,
    client: Client,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let mut first = true;
    loop {
        let Some(engine) = inner.upgrade().map(|inner| RedisEngine { inner }) else { return };
        let pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                tracing::warn!(%error, "redis pub/sub unavailable, retrying");
                drop(engine);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        {
            let channels = engine.inner.channels.lock().await;
            let names: Vec<&String> = channels.keys().collect();
            if !names.is_empty() && sink.subscribe(names).await.is_err() {
                continue;
            }
            *lock(&engine.inner.sink) = Some(sink);
        }
        if !first {
            tracing::info!("redis pub/sub is back; catching up");
            if let Err(error) = engine.catch_up().await {
                tracing::warn!(%error, "catch-up failed; retrying");
                *lock(&engine.inner.sink) = None;
                continue;
            }
        }
        first = false;
        engine.inner.subscribed.store(true, Ordering::Relaxed);
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => engine.dispatch_message(message.get_channel_name(), message.get_payload_bytes()),
                    None => break,
                },
                job = jobs.recv() => match job {
                    Some(job) => job().await,
                    None => return,
                },
            }
        }
        tracing::warn!("lost the redis pub/sub connection");
        engine.inner.subscribed.store(false, Ordering::Relaxed);
        *lock(&engine.inner.sink) = None;
    }
}

/// Renews this node's liveness key and reaps nodes whose key has expired.
async fn liveness(inner: std::sync::Weak<Inner>) {
    let mut beat = tokio::time::interval(BEAT_EVERY.min(REAP_EVERY));
    loop {
        beat.tick().await;
        let Some(engine) = inner.upgrade().map(|inner| RedisEngine { inner }) else { return };
        let mut connection = engine.connection();
        let node = engine.inner.node.clone();
        let alive: Result<(), RedisError> = redis::pipe()
            .set_ex(engine.key(&format!("node:{node}")), 1, NODE_TTL.as_secs())
            .ignore()
            .sadd(engine.key("nodes"), &node)
            .ignore()
            .query_async(&mut connection)
            .await;
        if alive.is_err() {
            continue;
        }
        let nodes: HashSet<String> =
            connection.smembers(engine.key("nodes")).await.unwrap_or_default();
        for other in nodes.into_iter().filter(|other| *other != node) {
            let exists: bool =
                connection.exists(engine.key(&format!("node:{other}"))).await.unwrap_or(true);
            if !exists {
                let reaped: Result<i64, RedisError> = lua::REAP_NODE
                    .arg(&engine.inner.prefix)
                    .arg(&other)
                    .arg(now_millis())
                    .invoke_async(&mut connection)
                    .await;
                match reaped {
                    Ok(count) => tracing::info!(
                        node = other,
                        entries = count,
                        "reaped a dead node's presence"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, node = other, "could not reap a dead node")
                    }
                }
            }
        }
    }
}
