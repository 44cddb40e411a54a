//! The chat service of one node: what STOMP sessions and HTTP handlers ask for, done with
//! the [`Store`] (everything durable) and the [`Bus`] (everything live, between nodes), and
//! delivered to this node's subscribers through the [`Hub`].
//!
//! Every write follows one path: store it (ids are assigned in the storing transaction),
//! hand the stored event to this node's [`relay::Relay`], and publish it to the other
//! nodes. Each node's relay delivers every room and inbox in id order, once, reading from
//! the store whatever did not arrive. A subscription replays from the store in its own task
//! ([`replay`]) and then joins live delivery with nothing missed or doubled in between.
//!
//! Layers, one way: `ws | http → stomp → engine → {store, bus} → delivery → shared`.

mod relay;
mod replay;
mod rooms;
mod search;
mod tokens;

pub use search::SearchRequest;

use std::sync::Arc;
use std::time::Duration;

use shared::api::{DmPage, DmSummary, RoomPage, RoomSummary};
use shared::chat::{ChatMessage, DirectoryEvent, Millis, Notice, ROOMS, RoomEvent};
use shared::stomp::Headers;
use tokio::sync::mpsc;

use crate::bus::{Bus, BusError, BusEvent, Channel, Incoming};
use crate::clock::now_millis;
use crate::delivery::{
    EncodedMessage, FrameCache, Hub, HubKey, Outbox, SessionId, Subscriber, next_message_id,
    notice_message, room_event_message,
};
use crate::metrics::{AuthFailure, metrics};
pub use crate::store::Missing;
use crate::store::{
    AccountChange, Admission, DmCopies, NewPost, Posted, Store, StoreError, Stored,
};
use relay::{Numbered, Relay};
use tokens::{Known, Tokens};

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The thing to create exists already.
    #[error("{0}")]
    Conflict(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(Missing),
    /// The rules do not allow it; the text says why.
    #[error("{0}")]
    Forbidden(String),
    /// The request itself is wrong; the text says how.
    #[error("{0}")]
    Invalid(String),
    /// The store cannot take the request now; nothing was stored.
    #[error("the message store is unavailable")]
    Unavailable,
    /// Anything else: logged where it is reported, never shown in detail.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> EngineError {
        match error {
            StoreError::Conflict(message) => EngineError::Conflict(message),
            StoreError::NotFound(missing) => EngineError::NotFound(missing),
            StoreError::Forbidden(reason) => EngineError::Forbidden(reason),
            StoreError::Unavailable => EngineError::Unavailable,
            other => EngineError::Internal(other.to_string()),
        }
    }
}

/// What a subscription receives before live messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The latest messages, at most this many.
    Latest(usize),
    /// Every message after this id, then live ones. At most [`MAX_REPLAY`] are replayed:
    /// the newest ones, so a client sees the jump in ids and pages the rest over HTTP.
    Since(u64),
}

/// The most messages one subscription replays.
pub const MAX_REPLAY: u64 = 5_000;

/// Tunables of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// How long a session token works after its last use.
    pub session_lifetime: Duration,
}

/// A node's chat service; a cheap handle.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    hub: Hub,
    relay: Arc<Relay>,
    tokens: Tokens,
    config: EngineConfig,
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's name.
    pub name: String,
    /// A bot account.
    pub bot: bool,
}

/// A session of a signed-in user, as the engine counts it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The node-local session id.
    pub id: SessionId,
    /// The user.
    pub login: String,
    /// The hash of the token it signed in with.
    pub token_hash: String,
}

impl Engine {
    /// An engine on `store` and `bus`; `incoming` is what the bus receives from other nodes.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        mut incoming: mpsc::UnboundedReceiver<Incoming>,
        config: EngineConfig,
    ) -> Engine {
        let hub = Hub::default();
        let relay = Relay::new(store.clone(), bus.clone(), hub.clone());
        let engine = Engine {
            inner: Arc::new(Inner { store, bus, hub, relay, tokens: Tokens::default(), config }),
        };
        let weak = Arc::downgrade(&engine.inner);
        tokio::spawn(async move {
            while let Some(incoming) = incoming.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                Engine { inner }.receive(incoming);
            }
        });
        engine
    }

    /// The store, for what needs no delivery.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// What another node published.
    fn receive(&self, incoming: Incoming) {
        let hub = &self.inner.hub;
        match incoming {
            Incoming::Reconnected => self.inner.relay.catch_up(),
            Incoming::Event(channel, event) => match (channel, event) {
                (channel @ Channel::Room(_), BusEvent::Message(message)) => {
                    self.inner.relay.offer(&channel, Numbered::Room(message));
                }
                (channel @ Channel::User(_), BusEvent::Dm { owner, message }) => {
                    self.inner.relay.offer(&channel, Numbered::Dm { owner, message });
                }
                (Channel::Room(room), BusEvent::Joined { user, at }) => {
                    let event =
                        room_event_message(&room, &RoomEvent::Joined { user: user.clone(), at });
                    hub.deliver_to_others(&HubKey::Room(room), &event, &user);
                }
                (Channel::Room(room), BusEvent::Left { user, at }) => {
                    let event = room_event_message(&room, &RoomEvent::Left { user, at });
                    hub.deliver(&HubKey::Room(room), &event);
                }
                (Channel::Room(room), BusEvent::Typing { user }) => {
                    let event = room_event_message(&room, &RoomEvent::Typing { user });
                    hub.deliver(&HubKey::Room(room), &event);
                }
                (Channel::User(user), BusEvent::Notice(notice)) => {
                    hub.deliver(&HubKey::Notices(user), &notice_message(&notice));
                }
                (Channel::Topic(topic), BusEvent::Topic(message)) => {
                    hub.deliver(&HubKey::Topic(topic), &message);
                }
                (Channel::Control, BusEvent::Revoked { token_hash }) => {
                    self.inner.tokens.revoked(&token_hash);
                }
                (channel, _) => {
                    tracing::debug!(?channel, "ignoring an event on the wrong channel");
                }
            },
        }
    }

    /// Publishes to the other nodes. The event is in the store or is ephemeral: a failure
    /// is logged (the bus sends stored events when it is back), never an error.
    async fn publish(&self, channel: &Channel, event: &BusEvent) {
        match self.inner.bus.publish(channel, event).await {
            Ok(()) => {}
            Err(BusError::Unavailable) => {
                tracing::debug!(?channel, "the bus is away: published when it is back");
            }
            Err(error) => tracing::warn!(%error, ?channel, "not published"),
        }
    }

    // Accounts and tokens.

    /// Adds a user with an argon2 hash if `admission` lets them in; `Conflict` if the name
    /// is taken. Returns whether they are the admin (the first person on the server).
    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        admission: &Admission,
    ) -> Result<bool, EngineError> {
        Ok(self.inner.store.create_user(name, password_hash, now_millis(), admission).await?)
    }

    /// Issues a session token (by its hash) for a user, made by `device`.
    pub async fn store_token(
        &self,
        token_hash: &str,
        user: &str,
        device: &str,
    ) -> Result<(), EngineError> {
        let now = now_millis();
        let expires_at = now.saturating_add(self.lifetime_millis());
        Ok(self.inner.store.store_token(token_hash, user, now, expires_at, device).await?)
    }

    /// Changes an account; the sessions the change revokes end on every node.
    pub async fn update_account(
        &self,
        name: &str,
        change: AccountChange,
    ) -> Result<(), EngineError> {
        let revoked = self.inner.store.update_account(name, change).await?;
        self.end_sessions(&revoked).await;
        Ok(())
    }

    /// Uses a password-reset link; every session of its account ends. Returns the account.
    pub async fn redeem_reset(
        &self,
        code_hash: &str,
        password_hash: &str,
    ) -> Result<String, EngineError> {
        let (user, revoked) =
            self.inner.store.redeem_reset(code_hash, password_hash, now_millis()).await?;
        self.end_sessions(&revoked).await;
        Ok(user)
    }

    fn lifetime_millis(&self) -> Millis {
        Millis::try_from(self.inner.config.session_lifetime.as_millis()).unwrap_or(Millis::MAX)
    }

    /// The user a token belongs to, if it has not expired. Using a token extends it (at
    /// most once a day, to save writes).
    pub async fn token_user(&self, token_hash: &str) -> Result<Option<String>, EngineError> {
        Ok(self.token_identity(token_hash).await?.map(|identity| identity.name))
    }

    /// Who a token belongs to, bot or person, if it has not expired; as
    /// [`Engine::token_user`].
    pub async fn token_identity(&self, token_hash: &str) -> Result<Option<Identity>, EngineError> {
        let now = now_millis();
        let known = match self.inner.tokens.cached(token_hash) {
            Some(known) => known,
            None => {
                let owner = self.inner.store.token_owner(token_hash, now).await?;
                let known = Known {
                    expires_at: owner.as_ref().map_or(0, |owner| owner.expires_at),
                    bot: owner.as_ref().is_some_and(|owner| owner.bot),
                    owner: owner.map(|owner| owner.user),
                };
                self.inner.tokens.remember(token_hash, known.clone());
                known
            }
        };
        let Some(owner) = known.owner.clone().filter(|_| known.expires_at > now) else {
            metrics().auth_failed(AuthFailure::Token);
            return Ok(None);
        };
        let renewed = now.saturating_add(self.lifetime_millis());
        // A bot's token never expires: nothing to extend. The last use is kept to the hour.
        const HOUR: Millis = 3_600_000;
        if renewed - known.expires_at > HOUR {
            self.inner.store.extend_token(token_hash, renewed, now).await?;
            self.inner.tokens.remember(token_hash, Known { expires_at: renewed, ..known.clone() });
        }
        Ok(Some(Identity { name: owner, bot: known.bot }))
    }

    /// Revokes a token: its sessions end within a second, on every node.
    pub async fn revoke_token(&self, token_hash: &str) -> Result<(), EngineError> {
        self.inner.store.revoke_token(token_hash).await?;
        self.inner.tokens.revoked(token_hash);
        let event = BusEvent::Revoked { token_hash: token_hash.to_owned() };
        self.publish(&Channel::Control, &event).await;
        Ok(())
    }

    /// Counts a session of `session.login` as open, with `outbox` to end it by if its token
    /// is revoked. Opens the user's stream (direct messages, notices) on this node.
    pub async fn session_opened(
        &self,
        session: &SessionInfo,
        outbox: Outbox,
    ) -> Result<(), EngineError> {
        self.inner.relay.open(&Channel::User(session.login.clone())).await?;
        if let Err(error) = self.inner.bus.session_opened(&session.login).await {
            tracing::warn!(%error, "online status not recorded");
        }
        self.inner.tokens.opened(&session.token_hash, session.id, outbox);
        Ok(())
    }

    /// Counts a session as closed.
    pub fn session_closed(&self, session: &SessionInfo) {
        self.inner.tokens.closed(&session.token_hash, session.id);
        self.inner.bus.session_closed(&session.login);
        self.inner.relay.close(&Channel::User(session.login.clone()));
    }

    /// Whether `user` has an open session on any node.
    pub async fn is_online(&self, user: &str) -> Result<bool, EngineError> {
        self.inner.bus.is_online(user).await.or(Ok(false))
    }

    /// Whether the node can take messages now (`GET /readyz`): its store can. A node whose
    /// bus is away still stores, and serves its own subscribers; the others catch up when
    /// the bus is back.
    pub async fn ready(&self) -> bool {
        self.inner.store.ready().await.is_ok()
    }

    /// Whether the bus is connected (always, on one node).
    pub fn bus_connected(&self) -> bool {
        self.inner.bus.ready()
    }

    // Rooms.

    /// Creates a room, its creator its owner, and announces it on `/topic/rooms` unless it
    /// is private.
    pub async fn create_room(
        &self,
        name: &str,
        creator: &str,
        private: bool,
    ) -> Result<(), EngineError> {
        self.inner.store.create_room(name, creator, now_millis(), private).await?;
        if private {
            return Ok(());
        }
        let event = DirectoryEvent::Created { room: name.to_owned(), by: creator.to_owned() };
        let body = serde_json::to_vec(&event).expect("directory events serialize");
        let headers: Headers = [("content-type", "application/json")].into_iter().collect();
        self.publish_topic(ROOMS, &headers, &body).await;
        Ok(())
    }

    /// A page of a room's history before `before`, oldest first.
    pub async fn room_page(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        let mut messages = self.inner.store.room_before(room, before, limit + 1).await?;
        let more = messages.len() > limit;
        if more {
            messages.remove(0);
        }
        Ok(RoomPage { messages, more })
    }

    /// A page of a room's history after `after`; `more` if newer messages follow.
    pub async fn room_page_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        let mut messages = self.inner.store.room_after(room, after, limit + 1).await?;
        let more = messages.len() > limit;
        messages.truncate(limit);
        Ok(RoomPage { messages, more })
    }

    /// A page of a room's history with `around` in its middle (half the page up to it,
    /// the rest after it; more of one side near the other's end), to show a message far
    /// back with its context; `more` if older messages come before the page.
    pub async fn room_page_around(
        &self,
        room: &str,
        around: u64,
        limit: usize,
    ) -> Result<RoomPage, EngineError> {
        let store = &self.inner.store;
        let mut older = store.room_before(room, Some(around.saturating_add(1)), limit + 1).await?;
        // Only what a reader sees: the entries that changed messages are folded into them.
        let mut newer = store.room_after(room, around, limit).await?;
        newer.retain(|entry| entry.change.as_ref().is_none_or(|change| change.message().is_none()));
        let older_take = older.len().min(limit.div_ceil(2).max(limit - newer.len().min(limit)));
        let more = older.len() > older_take;
        let mut messages = older.split_off(older.len() - older_take);
        messages.extend(newer.into_iter().take(limit - older_take));
        Ok(RoomPage { messages, more })
    }

    /// A page of the conversation between `user` and `peer` before `before`.
    pub async fn dm_page(
        &self,
        user: &str,
        peer: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<DmPage, EngineError> {
        let mut messages =
            self.inner.store.conversation_before(user, peer, before, limit + 1).await?;
        let more = messages.len() > limit;
        if more {
            messages.remove(0);
        }
        Ok(DmPage { messages, more })
    }

    /// A page of `user`'s whole inbox after inbox id `after`.
    pub async fn inbox_page_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<DmPage, EngineError> {
        let mut messages = self.inner.store.inbox_after(user, after, limit + 1).await?;
        let more = messages.len() > limit;
        messages.truncate(limit);
        Ok(DmPage { messages, more })
    }

    /// Every room, with member counts and `user`'s unread counts.
    pub async fn rooms_for(&self, user: &str) -> Result<Vec<RoomSummary>, EngineError> {
        Ok(self.inner.store.rooms_for(user).await?)
    }

    /// `user`'s conversations.
    pub async fn dm_summaries(&self, user: &str) -> Result<Vec<DmSummary>, EngineError> {
        Ok(self.inner.store.dm_summaries(user).await?)
    }

    // Posting.

    /// Stores a room message, then delivers it, on every node, in id order.
    pub async fn post_room(
        &self,
        room: &str,
        sender: &Identity,
        text: &str,
        key: Option<&str>,
        reply_to: Option<u64>,
        files: Vec<String>,
    ) -> Result<Posted<ChatMessage>, EngineError> {
        let post = NewPost::Room {
            room: room.to_owned(),
            sender: sender.name.clone(),
            text: text.to_owned(),
            key: key.map(str::to_owned),
            bot: sender.bot,
            reply_to,
            files,
        };
        match self.post(vec![post]).await?.pop() {
            Some(Stored::Room(posted)) => Ok(posted),
            other => Err(EngineError::Internal(format!("the store answered {other:?}"))),
        }
    }

    /// Stores a direct message in both inboxes, then delivers each copy to its owner's
    /// sessions. `NotFound` if the recipient does not exist. Returns the copies.
    pub async fn post_dm(
        &self,
        from: &Identity,
        to: &str,
        text: &str,
        key: Option<&str>,
        files: Vec<String>,
    ) -> Result<Posted<DmCopies>, EngineError> {
        let post = NewPost::Dm {
            from: from.name.clone(),
            to: to.to_owned(),
            text: text.to_owned(),
            key: key.map(str::to_owned),
            bot: from.bot,
            files,
        };
        match self.post(vec![post]).await?.pop() {
            Some(Stored::Dm(posted)) => Ok(posted),
            other => Err(EngineError::Internal(format!("the store answered {other:?}"))),
        }
    }

    /// Stores every post or none (a STOMP COMMIT), then delivers what is new.
    pub async fn post(&self, posts: Vec<NewPost>) -> Result<Vec<Stored>, EngineError> {
        let stored = self.store_post(posts, now_millis()).await?;
        let publications = self.offer_stored(&stored);
        self.publish_all(publications).await;
        Ok(stored)
    }

    /// Several posts at once, each stored on its own (one failing does not take the others
    /// with it), in the order given: one connection's burst of SENDs shares the store's
    /// commits instead of waiting for one commit each. Delivers what is new, in order.
    pub async fn post_each(
        &self,
        posts: Vec<Vec<NewPost>>,
    ) -> Vec<Result<Vec<Stored>, EngineError>> {
        let now = now_millis();
        // `join_all` polls its futures in order, so the store is handed them in order, and
        // the store commits in the order it is handed writes.
        let results = futures_util::future::join_all(
            posts.into_iter().map(|post| self.store_post(post, now)),
        )
        .await;
        let mut publications = Vec::new();
        let answers = results
            .into_iter()
            .map(|result| {
                let stored = result?;
                publications.extend(self.offer_stored(&stored));
                Ok(stored)
            })
            .collect();
        self.publish_all(publications).await;
        answers
    }

    /// Stores, timing the store.
    async fn store_post(
        &self,
        posts: Vec<NewPost>,
        now: Millis,
    ) -> Result<Vec<Stored>, StoreError> {
        let started = std::time::Instant::now();
        let stored = self.inner.store.post(posts, now).await;
        metrics().store_write_took(started.elapsed());
        stored
    }

    /// Hands newly stored messages to this node's streams; returns what to publish on the
    /// bus for the other nodes.
    fn offer_stored(&self, stored: &[Stored]) -> Vec<(Channel, BusEvent)> {
        let mut publications = Vec::new();
        for item in stored {
            match item {
                Stored::Room(Posted { message, duplicate: false }) => {
                    metrics().stored_room.inc();
                    let channel = Channel::Room(message.room.clone());
                    self.inner.relay.offer(&channel, Numbered::Room(message.clone()));
                    publications.push((channel, BusEvent::Message(message.clone())));
                }
                Stored::Dm(Posted { message: copies, duplicate: false }) => {
                    metrics().stored_dm.inc();
                    let mut owned = vec![(copies.sender.from.clone(), copies.sender.clone())];
                    if let Some(copy) = &copies.recipient {
                        owned.push((copy.to.clone(), copy.clone()));
                    }
                    for (owner, message) in owned {
                        let channel = Channel::User(owner.clone());
                        let numbered =
                            Numbered::Dm { owner: owner.clone(), message: message.clone() };
                        self.inner.relay.offer(&channel, numbered);
                        publications.push((channel, BusEvent::Dm { owner, message }));
                    }
                }
                Stored::Room(_) | Stored::Dm(_) => {}
            }
        }
        publications
    }

    /// Publishes on the bus, all at once: the bus sends them in this order, and a
    /// connection waits for one round trip, not one per message.
    async fn publish_all(&self, publications: Vec<(Channel, BusEvent)>) {
        futures_util::future::join_all(
            publications.iter().map(|(channel, event)| self.publish(channel, event)),
        )
        .await;
    }

    // Live events.

    /// Tells a room, on every node, that `user` is typing.
    pub async fn typing(&self, room: &str, user: &str) {
        let event = room_event_message(room, &RoomEvent::Typing { user: user.to_owned() });
        self.inner.hub.deliver(&HubKey::Room(room.to_owned()), &event);
        let event = BusEvent::Typing { user: user.to_owned() };
        self.publish(&Channel::Room(room.to_owned()), &event).await;
    }

    /// Sends a notice to every session of `user`, on every node.
    pub async fn notify(&self, user: &str, notice: &Notice) {
        self.inner.hub.deliver(&HubKey::Notices(user.to_owned()), &notice_message(notice));
        let event = BusEvent::Notice(notice.clone());
        self.publish(&Channel::User(user.to_owned()), &event).await;
    }

    /// Delivers a message to every subscriber of a generic topic (`/topic/<name>`), on
    /// every node.
    pub async fn publish_topic(&self, destination: &str, headers: &Headers, body: &[u8]) {
        let topic = destination.strip_prefix("/topic/").unwrap_or(destination).to_owned();
        let message = EncodedMessage::new(destination, &next_message_id(), headers, body);
        self.inner.hub.deliver(&HubKey::Topic(topic.clone()), &message);
        self.publish(&Channel::Topic(topic), &BusEvent::Topic(message)).await;
    }

    // Subscriptions.

    /// Subscribes to a room: presence snapshot, replay, then live messages, with nothing
    /// missed or doubled in between. Joins the room if `user` was not a member. The
    /// RECEIPT, if asked for, follows the replay.
    pub async fn attach_room(
        &self,
        room: &str,
        user: &str,
        subscriber: Subscriber,
        replay: Replay,
        receipt: Option<String>,
    ) -> Result<(), EngineError> {
        self.inner.store.join_room(room, user).await?;
        let channel = Channel::Room(room.to_owned());
        let delivered = self.inner.relay.open(&channel).await?;
        let key = HubKey::Room(room.to_owned());
        self.inner.hub.subscribe(key.clone(), subscriber.clone());
        let presence = match self.inner.bus.enter(room, user).await {
            Ok(presence) => presence,
            Err(error) => {
                tracing::warn!(%error, room, "presence unknown while the bus is away");
                crate::bus::Presence { users: vec![user.to_owned()], first: false }
            }
        };
        let snapshot = room_event_message(room, &RoomEvent::Presence { users: presence.users });
        subscriber.outbox.push(
            FrameCache::new(&snapshot).outgoing(&subscriber.subscription, subscriber.ack_kind()),
        );
        subscriber.position.greet();
        if presence.first {
            let at = now_millis();
            let joined = room_event_message(room, &RoomEvent::Joined { user: user.to_owned(), at });
            self.inner.hub.deliver_to_others(&key, &joined, user);
            self.publish(&channel, &BusEvent::Joined { user: user.to_owned(), at }).await;
        }
        self.start_replay(channel, subscriber, replay, delivered, receipt);
        Ok(())
    }

    /// Subscribes to `user`'s direct messages: replay, then live ones. The session has
    /// opened the user's stream.
    pub async fn attach_inbox(
        &self,
        user: &str,
        subscriber: Subscriber,
        replay: Replay,
        receipt: Option<String>,
    ) -> Result<(), EngineError> {
        let channel = Channel::User(user.to_owned());
        let delivered = self.inner.relay.open(&channel).await?;
        self.inner.relay.close(&channel);
        self.inner.hub.subscribe(HubKey::Inbox(user.to_owned()), subscriber.clone());
        subscriber.position.greet();
        self.start_replay(channel, subscriber, replay, delivered, receipt);
        Ok(())
    }

    fn start_replay(
        &self,
        channel: Channel,
        subscriber: Subscriber,
        replay: Replay,
        delivered: u64,
        receipt: Option<String>,
    ) {
        let start = match replay {
            Replay::Latest(count) => delivered.saturating_sub(count as u64),
            Replay::Since(since) => since.max(delivered.saturating_sub(MAX_REPLAY)),
        };
        subscriber.position.advance(start);
        let (store, relay) = (self.inner.store.clone(), self.inner.relay.clone());
        tokio::spawn(replay::replay(store, relay, channel, subscriber, receipt));
    }

    /// Ends a room subscription; the room hears `left` if it was the user's last anywhere.
    pub fn detach_room(&self, room: &str, user: &str, session: SessionId, subscription: &str) {
        let key = HubKey::Room(room.to_owned());
        let Some(subscriber) = self.inner.hub.unsubscribe(&key, session, subscription) else {
            return;
        };
        subscriber.position.end();
        let channel = Channel::Room(room.to_owned());
        self.inner.relay.close(&channel);
        let engine = self.clone();
        let (room, user) = (room.to_owned(), user.to_owned());
        tokio::spawn(async move {
            match engine.inner.bus.leave(&room, &user).await {
                Ok(true) => {
                    let at = now_millis();
                    let left =
                        room_event_message(&room, &RoomEvent::Left { user: user.clone(), at });
                    engine.inner.hub.deliver(&HubKey::Room(room.clone()), &left);
                    engine.publish(&channel, &BusEvent::Left { user, at }).await;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, room, user, "presence not updated; the node's entries go when it stops");
                }
            }
        });
    }

    /// Subscribes to what needs no replay: a generic topic, or the user's notices.
    pub async fn attach_key(&self, key: HubKey, subscriber: Subscriber) -> Result<(), EngineError> {
        if let HubKey::Topic(topic) = &key {
            // Listening never fails for long: a bus that is away is listened to when back.
            let _ = self.inner.bus.listen(&Channel::Topic(topic.clone())).await;
        }
        subscriber.position.go_live();
        subscriber.position.greet();
        self.inner.hub.subscribe(key, subscriber);
        Ok(())
    }

    /// Ends a subscription made with [`Engine::attach_key`] or [`Engine::attach_inbox`].
    pub fn detach_key(&self, key: &HubKey, session: SessionId, subscription: &str) {
        let Some(subscriber) = self.inner.hub.unsubscribe(key, session, subscription) else {
            return;
        };
        subscriber.position.end();
        if let HubKey::Topic(topic) = key {
            self.inner.bus.unlisten(&Channel::Topic(topic.clone()));
        }
    }
}
