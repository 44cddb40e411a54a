//! The page's state, as signals, and the rules that fold server events into it.
//!
//! Components read these signals; only [`ChatState::apply`] and the connection write them.

use leptos::prelude::*;
use shared::chat::{ChatMessage, Millis, RoomEvent};

/// The state of the connection to the server, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Opening the socket and the STOMP session.
    Connecting,
    /// Connected and subscribed.
    Online,
    /// Disconnected; the next attempt is due in `retry_in_secs`.
    Offline {
        /// Why the last connection ended.
        reason: String,
        /// Seconds until the next attempt.
        retry_in_secs: u32,
    },
}

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A chat message.
    Message {
        /// A key for the list, unique within the page.
        key: u64,
        /// The message as the server stamped it.
        message: ChatMessage,
        /// Sent by this page's user.
        mine: bool,
    },
    /// A notice: someone came or went, the connection came back.
    Notice {
        /// A key for the list, unique within the page.
        key: u64,
        /// What to show.
        text: String,
        /// When it happened.
        at: Millis,
    },
}

impl Entry {
    /// The entry's key for keyed lists.
    pub fn key(&self) -> u64 {
        match self {
            Entry::Message { key, .. } | Entry::Notice { key, .. } => *key,
        }
    }
}

/// Everything the page shows, as cheap `Copy` handles on signals.
#[derive(Debug, Clone, Copy)]
pub struct ChatState {
    /// The signed-in user.
    pub me: RwSignal<String>,
    /// The current room.
    pub room: RwSignal<String>,
    /// The connection.
    pub status: RwSignal<Status>,
    /// The conversation, oldest first.
    pub entries: RwSignal<Vec<Entry>>,
    /// Who is in the room, sorted.
    pub members: RwSignal<Vec<String>>,
    /// The last error the server reported, shown until dismissed.
    pub error: RwSignal<Option<String>>,
    next_key: RwSignal<u64>,
}

impl ChatState {
    /// Empty state for `me` in `room`.
    pub fn new(me: String, room: String) -> ChatState {
        ChatState {
            me: RwSignal::new(me),
            room: RwSignal::new(room),
            status: RwSignal::new(Status::Connecting),
            entries: RwSignal::new(Vec::new()),
            members: RwSignal::new(Vec::new()),
            error: RwSignal::new(None),
            next_key: RwSignal::new(0),
        }
    }

    fn key(&self) -> u64 {
        let key = self.next_key.get_untracked();
        self.next_key.set(key + 1);
        key
    }

    fn notice(&self, text: String, at: Millis) {
        let key = self.key();
        self.entries.update(|entries| entries.push(Entry::Notice { key, text, at }));
    }

    /// Folds one event of the current room into the state.
    pub fn apply(&self, event: RoomEvent) {
        match event {
            RoomEvent::Message(message) => {
                let key = self.key();
                let mine = message.sender == self.me.get_untracked();
                self.entries.update(|entries| entries.push(Entry::Message { key, message, mine }));
            }
            RoomEvent::Joined { user, at } => {
                self.members.update(|members| {
                    if let Err(position) = members.binary_search(&user) {
                        members.insert(position, user.clone());
                    }
                });
                self.notice(format!("{user} joined"), at);
            }
            RoomEvent::Left { user, at } => {
                self.members.update(|members| members.retain(|member| *member != user));
                self.notice(format!("{user} left"), at);
            }
            RoomEvent::Presence { users } => self.members.set(users),
        }
    }

    /// Notes that the connection came back after a drop.
    pub fn reconnected(&self) {
        self.notice("Reconnected".to_owned(), js_sys::Date::now() as Millis);
    }
}
