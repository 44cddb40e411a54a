//! The embedded engine: one SQLite file for storage, this node's [`Hub`] for fan-out.
//!
//! One thread owns the only writing connection and runs write jobs one after another.
//! Storing a message and delivering it happen in the same job, so deliveries follow id
//! order, and a subscription's replay and registration (also one job) cannot interleave
//! with a post: that is what makes resume exact. Reads use a small pool of other
//! connections on tokio's blocking threads; WAL lets them run beside the writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;
use shared::api::{DmPage, DmSummary, RoomPage, RoomSummary};
use shared::chat::{ChatMessage, Destination, DirectMessage, Notice, RoomEvent};
use shared::stomp::Headers;
use tokio::sync::oneshot;

use super::{EngineError, MAX_REPLAY, Posted, Replay, sqlite};
use crate::broker::{
    EncodedMessage, FrameCache, Hub, Outgoing, SessionId, Subscriber, chat_message, dm_message,
    inbox_key, next_message_id, now_millis, room_event_message,
};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Reader connections kept open for reuse.
const READER_POOL: usize = 4;

/// The embedded engine; a cheap handle.
#[derive(Debug, Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: std::sync::mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    read_slots: Arc<tokio::sync::Semaphore>,
    /// Token hash → user: CONNECT checks a token without touching the disk.
    tokens: Mutex<HashMap<String, String>>,
    hub: Hub,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("path", &self.path).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Embedded {
    /// Opens (creating if needed) `confab.db` in `dir`, migrates it, and starts the writer.
    pub fn open(dir: &Path, hub: Hub) -> Result<Embedded, EngineError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            EngineError::Corrupt(format!("cannot create {}: {error}", dir.display()))
        })?;
        let path = dir.join("confab.db");
        let mut writer = sqlite::open(&path)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("confab-sqlite-writer".into())
            .spawn(move || {
                // Ends when every handle, and so every sender, is gone.
                while let Ok(job) = queue.recv() {
                    job(&mut writer);
                }
            })
            .map_err(|error| {
                EngineError::Corrupt(format!("cannot start the writer thread: {error}"))
            })?;
        Ok(Embedded {
            inner: Arc::new(Inner {
                path,
                jobs,
                readers: Mutex::new(Vec::new()),
                read_slots: Arc::new(tokio::sync::Semaphore::new(READER_POOL)),
                tokens: Mutex::default(),
                hub,
            }),
        })
    }

    /// This node's hub.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Runs `job` on the writer thread, after every job queued before it.
    async fn write<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, EngineError> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let _ = reply.send(job(connection));
        });
        self.inner.jobs.send(job).map_err(|_| EngineError::Unavailable)?;
        result.await.map_err(|_| EngineError::Unavailable)?
    }

    /// Runs `query` on a reader connection, on a blocking thread.
    async fn read<R: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, EngineError> {
        // At most READER_POOL reads at once, each on a pooled connection: a burst (a connect
        // storm with a token not yet cached) waits its turn instead of opening hundreds of
        // connections on as many blocking threads.
        let permit = self
            .inner
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| EngineError::Unavailable)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = lock(&inner.readers).pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => sqlite::open_reader(&inner.path)?,
            };
            let result = query(&connection);
            let mut readers = lock(&inner.readers);
            if readers.len() < READER_POOL {
                readers.push(connection);
            }
            result
        })
        .await
        .map_err(|_| EngineError::Unavailable)?
    }

    pub(super) async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<(), EngineError> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.write(move |connection| sqlite::create_user(connection, &name, &hash, now_millis()))
            .await
    }

    pub(super) async fn password_hash(&self, name: &str) -> Result<Option<String>, EngineError> {
        let name = name.to_owned();
        self.read(move |connection| sqlite::password_hash(connection, &name)).await
    }

    pub(super) async fn user_exists(&self, name: &str) -> Result<bool, EngineError> {
        let name = name.to_owned();
        self.read(move |connection| sqlite::user_exists(connection, &name)).await
    }

    pub(super) async fn store_token(
        &self,
        token_hash: &str,
        name: &str,
    ) -> Result<(), EngineError> {
        let (hash, user) = (token_hash.to_owned(), name.to_owned());
        self.write(move |connection| sqlite::store_token(connection, &hash, &user, now_millis()))
            .await?;
        lock(&self.inner.tokens).insert(token_hash.to_owned(), name.to_owned());
        Ok(())
    }

    pub(super) async fn token_user(&self, token_hash: &str) -> Result<Option<String>, EngineError> {
        if let Some(user) = lock(&self.inner.tokens).get(token_hash) {
            return Ok(Some(user.clone()));
        }
        let hash = token_hash.to_owned();
        let user = self.read(move |connection| sqlite::token_user(connection, &hash)).await?;
        if let Some(user) = &user {
            lock(&self.inner.tokens).insert(token_hash.to_owned(), user.clone());
        }
        Ok(user)
    }

    pub(super) async fn revoke_token(&self, token_hash: &str) -> Result<(), EngineError> {
        lock(&self.inner.tokens).remove(token_hash);
        let hash = token_hash.to_owned();
        self.write(move |connection| sqlite::revoke_token(connection, &hash)).await
    }

    pub(super) async fn ready(&self) -> bool {
        self.write(|_| Ok(())).await.is_ok()
    }

    pub(super) async fn attach_key(
        &self,
        key: &str,
        subscriber: Subscriber,
    ) -> Result<(), EngineError> {
        self.inner.hub.subscribe(key, subscriber);
        Ok(())
    }

    pub(super) fn detach_key(&self, key: &str, session: SessionId, subscription: &str) {
        self.inner.hub.unsubscribe(key, session, subscription);
    }

    pub(super) async fn publish_topic(
        &self,
        destination: &str,
        headers: &Headers,
        body: &[u8],
    ) -> Result<(), EngineError> {
        let message = EncodedMessage::new(destination, &next_message_id(), headers, body);
        self.inner.hub.deliver(destination, &message, None);
        Ok(())
    }

    pub(super) async fn typing(&self, room: &str, user: &str) -> Result<(), EngineError> {
        let key = Destination::room(room);
        let message = room_event_message(&key, &RoomEvent::Typing { user: user.to_owned() });
        self.inner.hub.deliver(&key, &message, None);
        Ok(())
    }

    pub(super) async fn notify(&self, user: &str, notice: &Notice) -> Result<(), EngineError> {
        self.inner.hub.notify(user, notice);
        Ok(())
    }

    pub(super) async fn session_opened(&self, user: &str) -> Result<(), EngineError> {
        self.inner.hub.session_opened(user);
        Ok(())
    }

    pub(super) fn session_closed(&self, user: &str) {
        self.inner.hub.session_closed(user);
    }

    pub(super) async fn is_online(&self, user: &str) -> Result<bool, EngineError> {
        Ok(self.inner.hub.is_online(user))
    }

    pub(super) async fn create_room(&self, name: &str, creator: &str) -> Result<(), EngineError> {
        let (name, creator) = (name.to_owned(), creator.to_owned());
        self.write(move |connection| sqlite::create_room(connection, &name, &creator, now_millis()))
            .await
    }

    pub(super) async fn rooms_created_by(&self, user: &str) -> Result<u64, EngineError> {
        let user = user.to_owned();
        self.read(move |connection| sqlite::rooms_created_by(connection, &user)).await
    }

    pub(super) async fn room_exists(&self, name: &str) -> Result<bool, EngineError> {
        let name = name.to_owned();
        self.read(move |connection| sqlite::room_exists(connection, &name)).await
    }

    pub(super) async fn is_member(&self, room: &str, user: &str) -> Result<bool, EngineError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.read(move |connection| sqlite::is_member(connection, &room, &user)).await
    }

    pub(super) async fn join_room(&self, room: &str, user: &str) -> Result<(), EngineError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.write(move |connection| sqlite::join_room(connection, &room, &user)).await
    }

    pub(super) async fn leave_room(&self, room: &str, user: &str) -> Result<(), EngineError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.write(move |connection| sqlite::leave_room(connection, &room, &user)).await
    }

    pub(super) async fn rooms_for(&self, user: &str) -> Result<Vec<RoomSummary>, EngineError> {
        let user = user.to_owned();
        self.read(move |connection| sqlite::rooms_for(connection, &user)).await
    }

    pub(super) async fn mark_room_read(
        &self,
        room: &str,
        user: &str,
        seq: u64,
    ) -> Result<(), EngineError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.write(move |connection| sqlite::mark_room_read(connection, &room, &user, seq)).await
    }

    pub(super) async fn room_page(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        let room = room.to_owned();
        self.read(move |connection| {
            let mut messages = sqlite::room_before(connection, &room, before, limit + 1)?;
            let more = messages.len() > limit;
            if more {
                messages.remove(0);
            }
            Ok(RoomPage { messages, more })
        })
        .await
    }

    pub(super) async fn room_page_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        let room = room.to_owned();
        self.read(move |connection| {
            if !sqlite::room_exists(connection, &room)? {
                return Err(EngineError::NotFound(format!("no room named {room:?}")));
            }
            let mut messages = sqlite::room_after(connection, &room, after, limit + 1)?;
            let more = messages.len() > limit;
            messages.truncate(limit);
            Ok(RoomPage { messages, more })
        })
        .await
    }

    pub(super) async fn inbox_page_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<DmPage, EngineError> {
        let user = user.to_owned();
        self.read(move |connection| {
            let mut messages = sqlite::inbox_after(connection, &user, after, limit + 1)?;
            let more = messages.len() > limit;
            messages.truncate(limit);
            Ok(DmPage { messages, more })
        })
        .await
    }

    pub(super) async fn dm_summaries(&self, user: &str) -> Result<Vec<DmSummary>, EngineError> {
        let user = user.to_owned();
        self.read(move |connection| sqlite::dm_summaries(connection, &user)).await
    }

    pub(super) async fn dm_page(
        &self,
        user: &str,
        peer: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<DmPage, EngineError> {
        let (user, peer) = (user.to_owned(), peer.to_owned());
        self.read(move |connection| {
            let mut messages =
                sqlite::conversation_before(connection, &user, &peer, before, limit + 1)?;
            let more = messages.len() > limit;
            if more {
                messages.remove(0);
            }
            Ok(DmPage { messages, more })
        })
        .await
    }

    pub(super) async fn mark_dm_read(
        &self,
        user: &str,
        peer: &str,
        seq: u64,
    ) -> Result<(), EngineError> {
        let (user, peer) = (user.to_owned(), peer.to_owned());
        self.write(move |connection| sqlite::mark_dm_read(connection, &user, &peer, seq)).await
    }

    pub(super) async fn post_room(
        &self,
        room: &str,
        sender: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<Posted<ChatMessage>, EngineError> {
        let (room, sender, text, key) =
            (room.to_owned(), sender.to_owned(), text.to_owned(), key.map(str::to_owned));
        let hub = self.inner.hub.clone();
        self.write(move |connection| {
            let posted =
                sqlite::post_room(connection, &room, &sender, &text, key.as_deref(), now_millis())?;
            if !posted.duplicate {
                let message = &posted.message;
                hub.deliver(&Destination::room(&room), &chat_message(message), Some(message.seq));
            }
            Ok(posted)
        })
        .await
    }

    pub(super) async fn post_dm(
        &self,
        from: &str,
        to: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<Posted<DirectMessage>, EngineError> {
        let (from, to, text, key) =
            (from.to_owned(), to.to_owned(), text.to_owned(), key.map(str::to_owned));
        let hub = self.inner.hub.clone();
        self.write(move |connection| {
            if !sqlite::user_exists(connection, &to)? {
                return Err(EngineError::NotFound(format!("no user named {to:?}")));
            }
            let posted =
                sqlite::post_dm(connection, &from, &to, &text, key.as_deref(), now_millis())?;
            let owners = [from.as_str(), to.as_str()];
            if !posted.duplicate {
                for (owner, copy) in owners.iter().zip(&posted.message) {
                    hub.deliver(&inbox_key(owner), &dm_message(owner, copy), Some(copy.seq));
                }
            }
            let mine = posted.message.into_iter().next().ok_or(EngineError::Unavailable)?;
            Ok(Posted { message: mine, duplicate: posted.duplicate })
        })
        .await
    }

    pub(super) async fn attach_room(
        &self,
        room: &str,
        user: &str,
        subscriber: Subscriber,
        replay: Replay,
    ) -> Result<(), EngineError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        let hub = self.inner.hub.clone();
        self.write(move |connection| {
            sqlite::join_room(connection, &room, &user)?;
            let last_seq = sqlite::room_last_seq(connection, &room)?;
            let history = match replay {
                Replay::Latest(count) => sqlite::room_before(connection, &room, None, count)?,
                Replay::Since(since) => {
                    let from = since.max(last_seq.saturating_sub(MAX_REPLAY as u64));
                    sqlite::room_after(connection, &room, from, MAX_REPLAY)?
                }
            };
            let mut subscriber = subscriber;
            subscriber.replayed_up_to = last_seq;
            let frames = encode_history(&subscriber, history.iter().map(chat_message));
            let joined = RoomEvent::Joined { user: user.clone(), at: now_millis() };
            hub.attach_room(&room, &user, subscriber, frames, &joined);
            Ok(())
        })
        .await
    }

    pub(super) fn detach_room(
        &self,
        room: &str,
        user: &str,
        session: SessionId,
        subscription: &str,
    ) {
        let left = || RoomEvent::Left { user: user.to_owned(), at: now_millis() };
        self.inner.hub.detach_room(room, user, session, subscription, left);
    }

    pub(super) async fn attach_inbox(
        &self,
        user: &str,
        subscriber: Subscriber,
        replay: Replay,
    ) -> Result<(), EngineError> {
        let user = user.to_owned();
        let hub = self.inner.hub.clone();
        self.write(move |connection| {
            let last_seq = sqlite::inbox_last_seq(connection, &user)?;
            let from = match replay {
                Replay::Latest(count) => last_seq.saturating_sub(count as u64),
                Replay::Since(since) => since.max(last_seq.saturating_sub(MAX_REPLAY as u64)),
            };
            let history = sqlite::inbox_after(connection, &user, from, MAX_REPLAY)?;
            let mut subscriber = subscriber;
            subscriber.replayed_up_to = last_seq;
            let frames = encode_history(
                &subscriber,
                history.iter().map(|message| dm_message(&user, message)),
            );
            subscriber.outbox.push(Outgoing::Batch(frames));
            hub.subscribe(&inbox_key(&user), subscriber);
            Ok(())
        })
        .await
    }
}

/// The frames of a replay, for one subscriber.
fn encode_history(
    subscriber: &Subscriber,
    messages: impl Iterator<Item = EncodedMessage>,
) -> Vec<Outgoing> {
    messages
        .map(|message| {
            FrameCache::new(&message).outgoing(&subscriber.subscription, subscriber.ack_kind())
        })
        .collect()
}
