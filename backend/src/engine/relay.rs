//! The node's numbered streams: every room and inbox with a subscriber here is delivered to
//! its local subscribers in id order, each id once.
//!
//! Stored events reach a stream from two sides: this node's own writes (handed over right
//! after the commit) and other nodes' (through the bus). Either may come out of order or
//! not at all. The stream remembers the last id it delivered; a later id is held until the
//! ones before it arrive, or, after [`GAP_WAIT`], are read from the store, which has every
//! id below any id published (ids are assigned in commit order). After a lost bus
//! connection every stream catches up from the store the same way.
//!
//! Opening a stream listens on the bus *before* reading the store's last id: what commits
//! afterwards arrives live, what committed before is covered by the replays that start from
//! that id.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use shared::chat::{ChatMessage, DirectMessage};

use crate::bus::{Bus, Channel};
use crate::delivery::{Hub, HubKey, Position, chat_message, dm_message};
use crate::store::{Store, StoreError};

/// How long a stream waits for a missing id before reading it from the store.
const GAP_WAIT: Duration = Duration::from_millis(50);
/// Ids read from the store at a time to close a gap.
const FILL_CHUNK: usize = 500;
/// Events held behind a gap at most; beyond, the store serves them.
const MAX_HELD: usize = 10_000;

/// Why a stream reads from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Ids are held behind a gap: read the missing ones if they do not come in time.
    Gap,
    /// The bus was away: read whatever is newer, now.
    CatchUp,
}

/// A stored event of a numbered stream.
#[derive(Debug, Clone)]
pub enum Numbered {
    /// A room message.
    Room(ChatMessage),
    /// One inbox's copy of a direct message.
    Dm {
        /// Whose inbox.
        owner: String,
        /// The copy.
        message: DirectMessage,
    },
}

impl Numbered {
    fn seq(&self) -> u64 {
        match self {
            Numbered::Room(message) => message.seq,
            Numbered::Dm { message, .. } => message.seq,
        }
    }
}

/// The node's streams; shared by the engine and its tasks.
#[derive(Debug)]
pub struct Relay {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    hub: Hub,
    streams: Mutex<HashMap<Channel, Stream>>,
    /// Held while a stream opens, so that a second opener waits for the first.
    opening: tokio::sync::Mutex<()>,
    this: Weak<Relay>,
}

#[derive(Debug, Default)]
struct Stream {
    /// Local users: subscriptions to a room, sessions of a user.
    users: usize,
    /// The last id delivered here; `None` while the stream opens.
    delivered: Option<u64>,
    /// Ids that came ahead of a gap.
    held: BTreeMap<u64, Numbered>,
    /// A task is reading the store to close a gap.
    filling: bool,
    /// The first held id after a gap the last fill could not close.
    unfilled: Option<u64>,
}

impl Relay {
    /// A relay delivering to `hub`.
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, hub: Hub) -> Arc<Relay> {
        Arc::new_cyclic(|this| Relay {
            store,
            bus,
            hub,
            streams: Mutex::default(),
            opening: tokio::sync::Mutex::new(()),
            this: this.clone(),
        })
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<Channel, Stream>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a local user of a room's or user's stream, opening it on first use. Returns
    /// the last id delivered here: where a new subscription's replay ends at the latest.
    pub async fn open(&self, channel: &Channel) -> Result<u64, StoreError> {
        if let Some(delivered) = self.join(channel) {
            return Ok(delivered);
        }
        let _opening = self.opening.lock().await;
        if let Some(delivered) = self.join(channel) {
            return Ok(delivered);
        }
        self.streams().insert(channel.clone(), Stream { users: 1, ..Stream::default() });
        // Listen first: whatever commits after the read below then arrives live.
        if let Err(error) = self.bus.listen(channel).await {
            tracing::warn!(%error, ?channel, "not listening yet; the stream catches up later");
        }
        let last = match channel {
            Channel::Room(room) => self.store.room_last_seq(room).await,
            Channel::User(user) => self.store.inbox_last_seq(user).await,
            Channel::Topic(_) | Channel::Control => Ok(0),
        };
        let last = match last {
            Ok(last) => last,
            Err(error) => {
                self.streams().remove(channel);
                self.bus.unlisten(channel);
                return Err(error);
            }
        };
        let mut streams = self.streams();
        let stream = streams.get_mut(channel).expect("inserted above, removed only by close");
        stream.delivered = Some(last);
        stream.held = stream.held.split_off(&(last + 1));
        self.drain(channel, stream);
        Ok(last)
    }

    /// One more user of an open stream; `None` if it is not open yet.
    fn join(&self, channel: &Channel) -> Option<u64> {
        let mut streams = self.streams();
        let stream = streams.get_mut(channel)?;
        let delivered = stream.delivered?;
        stream.users += 1;
        Some(delivered)
    }

    /// Counts a local user less; the stream closes with its last.
    pub fn close(&self, channel: &Channel) {
        let mut streams = self.streams();
        let Some(stream) = streams.get_mut(channel) else { return };
        stream.users -= 1;
        if stream.users == 0 {
            streams.remove(channel);
            drop(streams);
            self.bus.unlisten(channel);
        }
    }

    /// A stored event, from this node's write or from the bus.
    pub fn offer(&self, channel: &Channel, event: Numbered) {
        let mut streams = self.streams();
        let Some(stream) = streams.get_mut(channel) else { return };
        let seq = event.seq();
        if stream.delivered.is_some_and(|delivered| seq <= delivered) {
            return;
        }
        if stream.held.len() < MAX_HELD {
            stream.held.insert(seq, event);
        }
        self.drain(channel, stream);
    }

    /// Whether a replaying subscription has caught up with the stream; if so, it is handed
    /// to live delivery, atomically with respect to the stream's deliveries.
    pub fn go_live(&self, channel: &Channel, position: &Position) -> bool {
        let streams = self.streams();
        let delivered = streams.get(channel).and_then(|stream| stream.delivered).unwrap_or(0);
        if position.cursor() >= delivered {
            position.go_live();
            true
        } else {
            false
        }
    }

    /// After a lost bus connection: every stream reads what it missed from the store.
    pub fn catch_up(&self) {
        let channels: Vec<Channel> = self.streams().keys().cloned().collect();
        for channel in channels {
            let mut streams = self.streams();
            if let Some(stream) = streams.get_mut(&channel) {
                self.start_fill(&channel, stream, Fill::CatchUp);
            }
        }
    }

    /// Delivers the held events that follow the last one delivered; starts a fill when a
    /// gap remains.
    fn drain(&self, channel: &Channel, stream: &mut Stream) {
        if self.release(stream) {
            self.start_fill(channel, stream, Fill::Gap);
        }
    }

    /// Delivers the held events that follow the last one delivered; `true` if events are
    /// still held behind a gap.
    fn release(&self, stream: &mut Stream) -> bool {
        let Some(mut delivered) = stream.delivered else { return false };
        while let Some(entry) = stream.held.first_entry() {
            let seq = *entry.key();
            if seq <= delivered {
                entry.remove();
                continue;
            }
            if seq != delivered + 1 {
                break;
            }
            self.deliver(&entry.remove());
            delivered = seq;
        }
        stream.delivered = Some(delivered);
        !stream.held.is_empty()
    }

    fn deliver(&self, event: &Numbered) {
        match event {
            Numbered::Room(message) => {
                let key = HubKey::Room(message.room.clone());
                self.hub.deliver_numbered(&key, &chat_message(message), message.seq);
                if let Some(user) = message.change.as_ref().and_then(|change| change.removes()) {
                    // Kicked or banned: the line above was the last thing they hear.
                    let removed = self.hub.remove_user(&key, user);
                    if !removed.is_empty() {
                        self.leave_presence(&message.room, user, removed.len());
                    }
                }
            }
            Numbered::Dm { owner, message } => {
                let key = HubKey::Inbox(owner.clone());
                self.hub.deliver_numbered(&key, &dm_message(owner, message), message.seq);
            }
        }
    }

    /// Takes `count` subscriptions of `user` out of a room's presence; the room hears
    /// `left` if that was the last.
    fn leave_presence(&self, room: &str, user: &str, count: usize) {
        let (bus, hub) = (self.bus.clone(), self.hub.clone());
        let (room, user) = (room.to_owned(), user.to_owned());
        tokio::spawn(async move {
            for _ in 0..count {
                match bus.leave(&room, &user).await {
                    Ok(true) => {
                        let at = crate::clock::now_millis();
                        let left = crate::delivery::room_event_message(
                            &room,
                            &shared::chat::RoomEvent::Left { user: user.clone(), at },
                        );
                        hub.deliver(&HubKey::Room(room.clone()), &left);
                        let channel = Channel::Room(room.clone());
                        let _ =
                            bus.publish(&channel, &crate::bus::BusEvent::Left { user, at }).await;
                        return;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, room, "presence not updated after a removal");
                        return;
                    }
                }
            }
        });
    }

    fn start_fill(&self, channel: &Channel, stream: &mut Stream, why: Fill) {
        if stream.filling || stream.delivered.is_none() {
            return;
        }
        let Some(relay) = self.this.upgrade() else { return };
        stream.filling = true;
        let channel = channel.clone();
        tokio::spawn(async move {
            if why == Fill::Gap {
                tokio::time::sleep(GAP_WAIT).await;
                // Mostly the missing ids come meanwhile (another node published a moment
                // later): then there is nothing to read.
                let mut streams = relay.streams();
                let Some(stream) = streams.get_mut(&channel) else { return };
                let waiting = stream.held.keys().next().copied();
                if waiting.is_none_or(|first| stream.delivered.is_some_and(|d| first == d + 1)) {
                    stream.filling = false;
                    return;
                }
            }
            relay.fill(&channel).await;
        });
    }

    /// Reads the ids a stream is missing from the store, until nothing is held behind a
    /// gap and the store has nothing newer.
    async fn fill(&self, channel: &Channel) {
        let mut failures = 0u32;
        loop {
            let Some(after) = self.streams().get(channel).and_then(|stream| stream.delivered)
            else {
                return;
            };
            let read = match channel {
                Channel::Room(room) => {
                    self.store.room_after(room, after, FILL_CHUNK).await.map(|messages| {
                        messages.into_iter().map(Numbered::Room).collect::<Vec<_>>()
                    })
                }
                Channel::User(user) => {
                    self.store.inbox_after(user, after, FILL_CHUNK).await.map(|messages| {
                        messages
                            .into_iter()
                            .map(|message| Numbered::Dm { owner: user.clone(), message })
                            .collect()
                    })
                }
                Channel::Topic(_) | Channel::Control => Ok(Vec::new()),
            };
            let events = match read {
                Ok(events) => events,
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, ?channel, "cannot read missed messages; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(10))))
                        .await;
                    continue;
                }
            };
            let complete = events.len() < FILL_CHUNK;
            let mut streams = self.streams();
            let Some(stream) = streams.get_mut(channel) else { return };
            for event in events {
                stream.held.entry(event.seq()).or_insert(event);
            }
            let gap = self.release(stream);
            if !complete {
                continue;
            }
            stream.filling = false;
            if gap
                && let (Some(delivered), Some(&first)) =
                    (stream.delivered, stream.held.keys().next())
            {
                // Held ids arrived after the read, or the store lacks some: look once more
                // after a pause; ids the store does not have are given up on then.
                if self.gap_seen_twice(stream, first) {
                    tracing::warn!(
                        ?channel,
                        from = delivered + 1,
                        to = first - 1,
                        "ids missing from the store"
                    );
                    stream.delivered = Some(first - 1);
                    self.drain(channel, stream);
                } else {
                    self.start_fill(channel, stream, Fill::Gap);
                }
            }
            return;
        }
    }

    /// Whether a fill already found the store without the ids before `first`.
    fn gap_seen_twice(&self, stream: &mut Stream, first: u64) -> bool {
        let seen = stream.unfilled == Some(first);
        stream.unfilled = Some(first);
        seen
    }
}

#[cfg(test)]
mod tests {
    use shared::stomp::{AckMode, Decoder, ServerFrame};

    use super::*;
    use crate::bus::local::LocalBus;
    use crate::delivery::{AckLedger, Outbox, Outgoing, Subscriber};
    use crate::store::sqlite::{SqliteOptions, SqliteStore};
    use crate::store::{NewPost, Stored};

    fn seqs_in(receiver: &mut crate::delivery::OutboxReceiver) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(Outgoing::Frame { bytes, .. }) = receiver.try_recv() {
            let mut buf = bytes::BytesMut::from(&bytes[..]);
            let frame = Decoder::default().decode(&mut buf).unwrap().unwrap();
            if let ServerFrame::Message { headers, .. } = ServerFrame::try_from(frame).unwrap() {
                seqs.push(headers.get("seq").unwrap().parse().unwrap());
            }
        }
        seqs
    }

    #[tokio::test]
    async fn an_id_that_comes_early_waits_and_the_missing_ones_come_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
        let hub = Hub::default();
        let relay = Relay::new(store.clone(), Arc::new(LocalBus::default()), hub.clone());
        let channel = Channel::Room("lobby".into());
        assert_eq!(relay.open(&channel).await.unwrap(), 0);
        let (outbox, mut receiver) = Outbox::with_capacity(64, 1 << 20);
        let position = Position::live();
        hub.subscribe(
            HubKey::Room("lobby".into()),
            Subscriber {
                session: 1,
                login: "ann".into(),
                subscription: "s".into(),
                ack: AckMode::Auto,
                outbox,
                acks: AckLedger::new(64),
                position: position.clone(),
            },
        );
        // Three messages stored, as other nodes would; only the third reaches this node.
        let mut stored = Vec::new();
        for n in 0..3 {
            let post = NewPost::Room {
                room: "lobby".into(),
                sender: "bob".into(),
                text: format!("m{n}"),
                key: None,
                bot: false,
                reply_to: None,
                files: Vec::new(),
            };
            let Some(Stored::Room(posted)) = store.post(vec![post], 1).await.unwrap().pop() else {
                panic!("a room message");
            };
            stored.push(posted.message);
        }
        relay.offer(&channel, Numbered::Room(stored[2].clone()));
        assert!(seqs_in(&mut receiver).is_empty(), "3 waits for 1 and 2");
        tokio::time::sleep(GAP_WAIT * 4).await;
        assert_eq!(seqs_in(&mut receiver), [1, 2, 3], "read from the store, in order");
        // Late copies are not delivered again.
        relay.offer(&channel, Numbered::Room(stored[1].clone()));
        assert!(seqs_in(&mut receiver).is_empty());
        assert_eq!(position.cursor(), 3);
    }
}
