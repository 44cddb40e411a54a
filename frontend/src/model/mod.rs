//! The page's state, as signals, and the rules that fold server events into it.
//!
//! Components read these signals; the connection ([`crate::stomp_client`]) and the API
//! calls write them through the methods here, so each rule lives in one place: where a
//! message goes, when a pending message is confirmed, what counts as unread.

pub mod compose;
pub mod device;
pub mod notify;
pub mod roles;
pub mod search;
mod sequence;
pub mod upload;

use std::collections::HashMap;

use leptos::prelude::*;
use shared::api::{DmSummary, Person, RoomSummary, SessionToken};
use shared::chat::{
    Attachment, ChatMessage, DirectMessage, Millis, Notice, Quote, Reaction, RoomChange, RoomEvent,
};
use shared::markdown::{Block, blocks, plain_text};

pub use sequence::{Sequence, Step};

/// How long a message may wait for its receipt before it shows as failed.
pub const RECEIPT_TIMEOUT_MS: f64 = 10_000.0;
/// How long "… is typing" stays up after the last typing event.
pub const TYPING_SHOWN_MS: f64 = 4_000.0;

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

/// A panel over the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// The active room's settings and members.
    Room,
    /// The person's profile, password and sessions.
    Profile,
    /// The admin's people, invitations, rooms and figures.
    Admin,
}

/// A conversation the page can show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Conv {
    /// A room, by name.
    Room(String),
    /// Direct messages with a user.
    Dm(String),
}

impl Conv {
    /// The header text: `# room` or `@ user`.
    pub fn title(&self) -> String {
        match self {
            Conv::Room(name) => format!("# {name}"),
            Conv::Dm(peer) => format!("@ {peer}"),
        }
    }

    /// The STOMP subscription id of a room.
    pub fn subscription_id(room: &str) -> String {
        format!("room.{room}")
    }
}

/// A stored message as a conversation shows it, room message or DM alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// Its id in the room or inbox.
    pub seq: u64,
    /// Who sent it.
    pub sender: String,
    /// What was said.
    pub text: String,
    /// When the server accepted it.
    pub sent_at: Millis,
    /// The sender is a bot.
    pub bot: bool,
    /// A change to the room, not something said: shown as a line of its own.
    pub change: Option<RoomChange>,
    /// Deleted: the text is gone.
    pub deleted: bool,
    /// The message it answers.
    pub reply_to: Option<Quote>,
    /// Who it mentions.
    pub mentions: Vec<String>,
    /// Its text was edited.
    pub edited: bool,
    /// Its reactions.
    pub reactions: Vec<Reaction>,
    /// Its formatting, when it has any.
    pub rich: Option<Vec<Block>>,
    /// The files sent with it.
    pub files: Vec<Attachment>,
}

impl Said {
    /// An entry that changes another message (an edit, a reaction, a deletion): it shows
    /// as that message's new look, not as a line.
    pub fn changes_a_message(&self) -> bool {
        self.change.as_ref().is_some_and(|change| change.message().is_some())
    }
}

impl From<ChatMessage> for Said {
    fn from(message: ChatMessage) -> Said {
        Said {
            seq: message.seq,
            sender: message.sender,
            text: message.text,
            sent_at: message.sent_at,
            bot: message.bot,
            change: message.change,
            deleted: message.deleted,
            reply_to: message.reply_to,
            mentions: message.mentions,
            edited: message.edited_at.is_some(),
            reactions: message.reactions,
            rich: message.rich,
            files: message.files,
        }
    }
}

impl From<DirectMessage> for Said {
    fn from(message: DirectMessage) -> Said {
        let mentions = if message.change.is_none() {
            shared::chat::mentioned(&message.text)
        } else {
            Vec::new()
        };
        Said {
            seq: message.seq,
            sender: message.from,
            text: message.text,
            sent_at: message.sent_at,
            bot: message.bot,
            change: message.change,
            deleted: message.deleted,
            reply_to: None,
            // Direct messages are parsed for mentions on the page: the counts treat
            // them alike.
            mentions,
            edited: message.edited_at.is_some(),
            reactions: message.reactions,
            rich: message.rich,
            files: message.files,
        }
    }
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A stored message.
    Message {
        /// Its id in the room or inbox.
        seq: u64,
        /// Who sent it.
        sender: String,
        /// What was said.
        text: String,
        /// When the server accepted it.
        sent_at: Millis,
        /// Sent by this page's user.
        mine: bool,
        /// The local calendar day, for separators.
        day: i64,
        /// The first message of its day in the loaded history.
        first_of_day: bool,
        /// Follows a message of the same sender, shortly before: shown without name and
        /// avatar, as one run.
        grouped: bool,
        /// Sent by a bot (an integration), not a person: labelled so.
        bot: bool,
        /// A change to the room ("ann banned bob"), shown as a line, not a bubble.
        change: bool,
        /// Deleted: shown as "message deleted".
        deleted: bool,
        /// The message it answers, as a snippet.
        reply: Option<Quote>,
        /// It mentions the page's user.
        mentions_me: bool,
        /// Its text was edited.
        edited: bool,
        /// Its reactions.
        reactions: Vec<Reaction>,
        /// Its formatting, when it has any.
        rich: Option<Vec<Block>>,
        /// The files sent with it.
        files: Vec<Attachment>,
        /// Bumped by every edit or reaction, so that the line is drawn again.
        rev: u32,
    },
    /// Someone came or went; the connection came back.
    Notice {
        /// Unique within the page.
        id: u64,
        /// What to show.
        text: String,
    },
}

impl Line {
    /// A key for keyed lists that changes whenever the line's look does.
    pub fn key(&self) -> String {
        match self {
            Line::Message { seq, first_of_day, grouped, deleted, rev, .. } => format!(
                "m{seq}.{rev}{}{}{}",
                if *first_of_day { "d" } else { "" },
                if *grouped { "g" } else { "" },
                if *deleted { "x" } else { "" }
            ),
            Line::Notice { id, .. } => format!("n{id}"),
        }
    }

    /// Makes a line from a stored message, for the page of `me`.
    pub fn from_said(said: Said, me: &str) -> Line {
        let Said {
            seq,
            sender,
            text,
            sent_at,
            bot,
            change,
            deleted,
            reply_to,
            mentions,
            edited,
            reactions,
            rich,
            files,
        } = said;
        Line::Message {
            seq,
            mine: sender == me,
            mentions_me: sender != me && mentions.iter().any(|name| name == me),
            sender,
            text,
            sent_at,
            day: local_day(sent_at),
            first_of_day: false,
            grouped: false,
            bot,
            change: change.is_some(),
            deleted,
            reply: reply_to,
            edited,
            reactions,
            rich,
            files,
            rev: 0,
        }
    }

    /// The message's id, if it is one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Line::Message { seq, .. } => Some(*seq),
            Line::Notice { .. } => None,
        }
    }

    /// Sets the separator and grouping marks of a message from what comes before it: the
    /// line right before, and the day of the last message before.
    fn label(&mut self, before: Option<&Line>, day_before: Option<i64>) {
        if let Line::Message { sender, sent_at, day, first_of_day, grouped, change, .. } = self {
            *first_of_day = day_before != Some(*day);
            *grouped = !*first_of_day
                && !*change
                && matches!(before, Some(Line::Message { sender: previous, sent_at: then, change: false, .. })
                    if previous == sender && *sent_at - *then < GROUP_MILLIS);
        }
    }

    fn day(&self) -> Option<i64> {
        match self {
            Line::Message { day, .. } => Some(*day),
            Line::Notice { .. } => None,
        }
    }
}

/// A message sent but not yet confirmed by a RECEIPT.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The idempotency key: a resend with it is stored once.
    pub key: String,
    /// The text.
    pub text: String,
    /// The message it answers.
    pub reply_to: Option<u64>,
    /// The files it sends, uploaded.
    pub files: Vec<Attachment>,
    /// Where it stands.
    pub state: PendingState,
}

/// Where a pending message stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PendingState {
    /// Waiting for the connection; sent when it is back.
    Queued,
    /// Sent at this time, waiting for the receipt.
    Sending(f64),
    /// No receipt came in time, or the server refused it.
    Failed,
}

/// Messages of one sender closer together than this are shown as one run.
const GROUP_MILLIS: Millis = 5 * 60 * 1000;

/// Lines per page of a conversation's live tail.
const PAGE_LINES: usize = 100;

/// A run of consecutive lines, rendered as one block. A conversation is a list of pages so
/// that a new message or an older page of history touches one small list: with one flat
/// list, paging back through 10,000 messages stalled the page for up to two seconds.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Unique within the page's conversation.
    pub id: u64,
    /// The lines, oldest first.
    pub lines: RwSignal<Vec<Line>>,
    /// Set, to the page's height in pixels, while the page is far from the reader's view
    /// and its lines are out of the document; see [`crate::components::message_list`].
    pub collapsed: RwSignal<Option<f64>>,
}

/// One conversation's state; every field a signal, so the struct is `Copy`.
#[derive(Debug, Clone, Copy)]
pub struct ConvState {
    /// Stored messages and notices in pages, oldest first.
    pub pages: RwSignal<Vec<Page>>,
    /// Bumped whenever a line is added, for views that follow the newest.
    pub revision: RwSignal<u64>,
    /// Sent messages awaiting their receipt.
    pub pending: RwSignal<Vec<Pending>>,
    /// Who is here (rooms only).
    pub members: RwSignal<Vec<String>>,
    /// Who is typing, with when the indicator expires.
    pub typing: RwSignal<Vec<(String, f64)>>,
    /// Older history exists on the server.
    pub more: RwSignal<bool>,
    /// The first history page has been loaded.
    pub loaded: RwSignal<bool>,
    /// The highest id received: where a resume starts.
    pub last_seq: RwSignal<u64>,
    /// Messages not yet seen.
    pub unread: RwSignal<u64>,
    /// The highest id reported as read.
    pub read_seq: RwSignal<u64>,
    /// Of the unread messages, those that mention the user.
    pub mentions: RwSignal<u64>,
    /// Bumped by every change to the room in its stream (for its settings panel).
    pub changed: RwSignal<u64>,
    /// What the composer holds for this conversation, kept while others are shown.
    pub draft: RwSignal<String>,
    /// Files being uploaded or uploaded for the next message.
    pub uploads: RwSignal<Vec<upload::Upload>>,
    /// The message the next one answers.
    pub reply_to: RwSignal<Option<Quote>>,
    /// The message being edited in place.
    pub editing: RwSignal<Option<u64>>,
    /// The message to bring into view and mark, once it is loaded.
    pub focus: RwSignal<Option<u64>>,
    /// The room's members with what to call them, for mention suggestions; loaded when
    /// first needed.
    pub roster: RwSignal<Option<Vec<(String, String)>>>,
    /// A room's stream, put in id order (unused for DM conversations, whose ids come from
    /// the one inbox stream).
    sequence: StoredValue<Sequence<ChatMessage>>,
    next_page: StoredValue<u64>,
}

impl ConvState {
    fn new() -> ConvState {
        ConvState {
            pages: RwSignal::new(Vec::new()),
            revision: RwSignal::new(0),
            next_page: StoredValue::new(0),
            pending: RwSignal::new(Vec::new()),
            members: RwSignal::new(Vec::new()),
            typing: RwSignal::new(Vec::new()),
            more: RwSignal::new(false),
            loaded: RwSignal::new(false),
            last_seq: RwSignal::new(0),
            unread: RwSignal::new(0),
            read_seq: RwSignal::new(0),
            mentions: RwSignal::new(0),
            changed: RwSignal::new(0),
            draft: RwSignal::new(String::new()),
            uploads: RwSignal::new(Vec::new()),
            reply_to: RwSignal::new(None),
            editing: RwSignal::new(None),
            focus: RwSignal::new(None),
            roster: RwSignal::new(None),
            sequence: StoredValue::new(Sequence::default()),
        }
    }

    /// The id of the oldest loaded message.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.pages.with_untracked(|pages| {
            pages.iter().find_map(|page| {
                page.lines.with_untracked(|lines| lines.iter().find_map(Line::seq))
            })
        })
    }

    /// Applies an edit, a reaction or a deletion, by `actor`, to the message it is about,
    /// if that message is loaded.
    fn change_line(&self, change: &RoomChange, rich: Option<&[Block]>, actor: &str, me: &str) {
        let Some(seq) = change.message() else { return };
        for page in self.pages.get_untracked() {
            let found =
                page.lines.with_untracked(|lines| lines.iter().any(|l| l.seq() == Some(seq)));
            if found {
                page.lines.update(|lines| {
                    for line in lines.iter_mut().filter(|line| line.seq() == Some(seq)) {
                        apply_change(line, change, rich, actor, me);
                    }
                });
                return;
            }
        }
    }

    /// The loaded message with this id.
    pub fn line(&self, seq: u64) -> Option<Line> {
        self.pages.with_untracked(|pages| {
            pages.iter().find_map(|page| {
                page.lines.with_untracked(|lines| {
                    lines.iter().find(|line| line.seq() == Some(seq)).cloned()
                })
            })
        })
    }

    /// The newest loaded message of `me` that can still be edited.
    pub fn last_own(&self, me: &str) -> Option<(u64, String)> {
        self.pages.with_untracked(|pages| {
            pages.iter().rev().find_map(|page| {
                page.lines.with_untracked(|lines| {
                    lines.iter().rev().find_map(|line| match line {
                        Line::Message {
                            seq, sender, text, change: false, deleted: false, ..
                        } if sender == me => Some((*seq, text.clone())),
                        _ => None,
                    })
                })
            })
        })
    }

    /// The newest line, and the local day of the newest message.
    fn newest(&self) -> (Option<Line>, Option<i64>) {
        self.pages.with_untracked(|pages| {
            let line = pages
                .iter()
                .rev()
                .find_map(|page| page.lines.with_untracked(|lines| lines.last().cloned()));
            let day = pages.iter().rev().find_map(|page| {
                page.lines.with_untracked(|lines| lines.iter().rev().find_map(Line::day))
            });
            (line, day)
        })
    }

    fn new_page(&self, lines: Vec<Line>) -> Page {
        let id = self.next_page.get_value();
        self.next_page.set_value(id + 1);
        Page { id, lines: RwSignal::new(lines), collapsed: RwSignal::new(None) }
    }

    /// Adds a line at the end: to the last page, or to a new one when that is full.
    /// Call under the page's owner (see [`ChatState::conv`]).
    fn push_line(&self, line: Line) {
        let tail = self.pages.with_untracked(|pages| pages.last().copied());
        match tail {
            Some(page) if page.lines.with_untracked(Vec::len) < PAGE_LINES => {
                page.lines.update(|lines| lines.push(line))
            }
            _ => {
                let page = self.new_page(vec![line]);
                self.pages.update(|pages| pages.push(page));
            }
        }
        self.revision.update(|revision| *revision += 1);
    }

    /// Puts a page of older lines in front, fixing the day separator and the run where they
    /// meet.
    fn push_front(&self, mut older: Vec<Line>) {
        relabel(&mut older);
        // The first loaded message may now continue the older page's day or run.
        let first_with_message = self.pages.with_untracked(|pages| {
            pages.iter().copied().find(|page| {
                page.lines.with_untracked(|lines| lines.iter().any(|l| l.seq().is_some()))
            })
        });
        if let Some(page) = first_with_message {
            let day_before = older.iter().rev().find_map(Line::day);
            // Notifies (and re-renders the page) only if the message's look changed.
            page.lines.maybe_update(|lines| {
                let Some(position) = lines.iter().position(|line| line.seq().is_some()) else {
                    return false;
                };
                let before = match position {
                    0 => older.last().cloned(),
                    _ => lines.get(position - 1).cloned(),
                };
                let old_key = lines[position].key();
                lines[position].label(before.as_ref(), day_before);
                lines[position].key() != old_key
            });
        }
        let page = self.new_page(older);
        self.pages.update(|pages| pages.insert(0, page));
        self.revision.update(|revision| *revision += 1);
    }
}

/// Applies an edit (whose new text's formatting is `new_rich`), a reaction or a deletion
/// to a message's line. Each says what is true after it, so applying one twice changes
/// nothing more.
pub fn apply_change(
    line: &mut Line,
    change: &RoomChange,
    new_rich: Option<&[Block]>,
    actor: &str,
    me: &str,
) {
    let Line::Message {
        text, rich, deleted, edited, reactions, rev, mentions_me, mine, files, ..
    } = line
    else {
        return;
    };
    match change {
        RoomChange::Edited { text: new, .. } => {
            if !*deleted {
                *mentions_me = !*mine && shared::chat::mentioned(new).iter().any(|n| n == me);
                *text = new.clone();
                *rich = new_rich.map(<[Block]>::to_vec);
                *edited = true;
            }
        }
        RoomChange::Reacted { emoji, on, .. } => {
            if !*deleted {
                shared::chat::react(reactions, actor, emoji, *on);
            }
        }
        RoomChange::Deleted { .. } => {
            text.clear();
            *rich = None;
            reactions.clear();
            files.clear();
            *deleted = true;
            *mentions_me = false;
        }
        _ => return,
    }
    *rev += 1;
}

/// The local calendar day of a server time.
pub fn local_day(millis: Millis) -> i64 {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    let offset_ms = date.get_timezone_offset() * 60_000.0;
    ((millis as f64 - offset_ms) / 86_400_000.0).floor() as i64
}

/// Labels a run of lines that starts a conversation's loaded history.
fn relabel(lines: &mut [Line]) {
    let mut day_before = None;
    for index in 0..lines.len() {
        let (earlier, rest) = lines.split_at_mut(index);
        let line = &mut rest[0];
        line.label(earlier.last(), day_before);
        day_before = line.day().or(day_before);
    }
}

/// A stream whose ids after `after` are missing and must be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// A room's messages.
    Room {
        /// The room.
        room: String,
        /// The last id the page has.
        after: u64,
    },
    /// The user's DM inbox.
    Inbox {
        /// The last inbox id the page has.
        after: u64,
    },
}

/// Everything the page shows; a cheap `Copy` handle.
#[derive(Debug, Clone, Copy)]
pub struct ChatState {
    /// Who is signed in, and the token.
    pub session: StoredValue<SessionToken>,
    /// The connection.
    pub status: RwSignal<Status>,
    /// Every room on the server, `joined` marking the user's.
    pub rooms: RwSignal<Vec<RoomSummary>>,
    /// People the user has direct messages with, most recent first.
    pub dm_peers: RwSignal<Vec<String>>,
    /// What is on screen.
    pub active: RwSignal<Conv>,
    /// The last error to show, until dismissed.
    pub error: RwSignal<Option<String>>,
    /// The highest inbox id received: where the DM resume starts.
    pub inbox_seq: RwSignal<u64>,
    /// Bumped when the room list may be out of date: a room was announced, or the
    /// connection came back after missing announcements.
    pub rooms_stale: RwSignal<u64>,
    /// Streams with ids missing, to fetch over HTTP; the chat page takes them.
    pub gaps: RwSignal<Vec<Gap>>,
    /// Rooms whose stream said the user was removed; the chat page checks the room list.
    pub removals: RwSignal<Vec<String>>,
    /// Rooms someone added the user to; the chat page subscribes to them.
    pub added: RwSignal<Vec<String>>,
    /// Display names by user name.
    pub people: RwSignal<HashMap<String, String>>,
    /// Pictures (file ids) by user name, for those who have one.
    pub avatars: RwSignal<HashMap<String, String>>,
    /// The largest file the server takes, in bytes.
    pub max_upload: RwSignal<u64>,
    /// The user is a server admin.
    pub admin: RwSignal<bool>,
    /// The panel open over the chat, if any.
    pub panel: RwSignal<Option<Panel>>,
    /// Messages that may deserve a browser notification; the chat page takes them.
    pub alerts: RwSignal<Vec<notify::Alert>>,
    /// The DM inbox's stream, put in id order.
    inbox: StoredValue<Sequence<DirectMessage>>,
    conversations: StoredValue<HashMap<Conv, ConvState>>,
    next_id: StoredValue<u64>,
    /// The page's reactive owner. Conversations are created on first use, often inside a
    /// view's closure; their signals must belong to the page, not to that closure, or they
    /// would be disposed when it re-runs.
    owner: StoredValue<Option<Owner>>,
}

impl ChatState {
    /// State for a signed-in user, showing `active`.
    pub fn new(session: SessionToken, active: Conv) -> ChatState {
        ChatState {
            session: StoredValue::new(session),
            status: RwSignal::new(Status::Connecting),
            rooms: RwSignal::new(Vec::new()),
            dm_peers: RwSignal::new(Vec::new()),
            active: RwSignal::new(active),
            error: RwSignal::new(None),
            inbox_seq: RwSignal::new(0),
            rooms_stale: RwSignal::new(0),
            gaps: RwSignal::new(Vec::new()),
            removals: RwSignal::new(Vec::new()),
            added: RwSignal::new(Vec::new()),
            people: RwSignal::new(HashMap::new()),
            avatars: RwSignal::new(HashMap::new()),
            max_upload: RwSignal::new(0),
            admin: RwSignal::new(false),
            panel: RwSignal::new(None),
            alerts: RwSignal::new(Vec::new()),
            inbox: StoredValue::new(Sequence::default()),
            conversations: StoredValue::new(HashMap::new()),
            next_id: StoredValue::new(0),
            owner: StoredValue::new(Owner::current()),
        }
    }

    /// The signed-in user.
    pub fn me(&self) -> String {
        self.session.with_value(|session| session.username.clone())
    }

    /// What to call someone: their display name if they have one, else their user name.
    pub fn display(&self, name: &str) -> String {
        self.people.with(|people| people.get(name).cloned()).unwrap_or_else(|| name.to_owned())
    }

    /// Takes in everyone's display names.
    pub fn set_people(&self, people: Vec<Person>) {
        let avatars = people
            .iter()
            .filter_map(|person| Some((person.name.clone(), person.avatar.clone()?)))
            .collect();
        self.avatars.set(avatars);
        let names = people
            .into_iter()
            .filter_map(|person| person.display_name.map(|display| (person.name, display)))
            .collect();
        self.people.set(names);
    }

    /// Someone's picture (a file id), if they have one.
    pub fn avatar(&self, name: &str) -> Option<String> {
        self.avatars.with(|avatars| avatars.get(name).cloned())
    }

    /// Notes the user's own new picture (or its removal).
    pub fn set_my_avatar(&self, avatar: Option<String>) {
        let me = self.me();
        self.avatars.update(|avatars| match avatar {
            Some(id) => {
                avatars.insert(me, id);
            }
            None => {
                avatars.remove(&me);
            }
        });
    }

    /// A room's summary from the room list.
    pub fn room(&self, name: &str) -> Option<RoomSummary> {
        self.rooms.with(|rooms| rooms.iter().find(|room| room.name == name).cloned())
    }

    /// The session token.
    pub fn token(&self) -> String {
        self.session.with_value(|session| session.token.clone())
    }

    /// A conversation's state, created empty on first use.
    pub fn conv(&self, conv: &Conv) -> ConvState {
        if let Some(state) = self.conversations.with_value(|all| all.get(conv).copied()) {
            return state;
        }
        let state = self.with_owner(ConvState::new);
        self.conversations.update_value(|all| {
            all.insert(conv.clone(), state);
        });
        state
    }

    /// Runs `make` under the page's owner, so that signals it creates live with the page.
    fn with_owner<T>(&self, make: impl FnOnce() -> T) -> T {
        match self.owner.get_value() {
            Some(owner) => owner.with(make),
            None => make(),
        }
    }

    /// Every conversation with its state.
    pub fn conversations(&self) -> Vec<(Conv, ConvState)> {
        self.conversations
            .with_value(|all| all.iter().map(|(conv, state)| (conv.clone(), *state)).collect())
    }

    /// The rooms the user has joined.
    pub fn joined_rooms(&self) -> Vec<String> {
        self.rooms.with_untracked(|rooms| {
            rooms.iter().filter(|room| room.joined).map(|room| room.name.clone()).collect()
        })
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        id
    }

    /// Takes in the room list from the API: unread counts, and where to resume rooms that
    /// have no history loaded yet.
    pub fn set_rooms(&self, rooms: Vec<RoomSummary>) {
        for room in rooms.iter().filter(|room| room.joined) {
            let conv = Conv::Room(room.name.clone());
            let state = self.conv(&conv);
            if state.last_seq.get_untracked() == 0 {
                let step = state.sequence.try_update_value(|s| s.advance_to(room.last_seq));
                self.apply_room_step(&room.name, step.unwrap_or_default());
                state.unread.set(room.unread);
                state.mentions.set(room.mentions);
            }
        }
        self.rooms.set(rooms);
    }

    /// Takes in the conversation list from the API.
    pub fn set_dms(&self, dms: Vec<DmSummary>) {
        let newest = dms.iter().map(|dm| dm.last_seq).max().unwrap_or(0);
        let step = self.inbox.try_update_value(|inbox| inbox.advance_to(newest));
        self.apply_inbox_step(step.unwrap_or_default());
        for dm in &dms {
            self.conv(&Conv::Dm(dm.peer.clone())).unread.set(dm.unread);
        }
        self.dm_peers.set(dms.into_iter().map(|dm| dm.peer).collect());
    }

    /// Puts a page of older history in front of what is loaded.
    pub fn prepend(&self, conv: &Conv, messages: Vec<Said>, more: bool) {
        let me = self.me();
        let state = self.conv(conv);
        let oldest = state.oldest_seq();
        // History holds each message as it is now: the entries that changed messages are
        // already folded in, and show no line of their own.
        let newest = messages.iter().map(|said| said.seq).max().unwrap_or(0);
        let older: Vec<Line> = messages
            .into_iter()
            .filter(|said| oldest.is_none_or(|oldest| said.seq < oldest))
            .filter(|said| !said.changes_a_message())
            .map(|said| Line::from_said(said, &me))
            .collect();
        if !older.is_empty() {
            self.with_owner(|| state.push_front(older));
        }
        if newest > state.last_seq.get_untracked() {
            state.last_seq.set(newest);
        }
        if let Conv::Room(room) = conv {
            // The page is the room's history up to its newest message: the stream resumes
            // after it. (A DM page is one conversation, not the whole inbox stream.)
            let step = state.sequence.try_update_value(|sequence| sequence.advance_to(newest));
            self.apply_room_step(room, step.unwrap_or_default());
        }
        state.more.set(more);
        state.loaded.set(true);
    }

    /// Applies what a room's sequence released, and asks for a fetch if it found a gap.
    fn apply_room_step(&self, room: &str, step: Step<ChatMessage>) {
        let conv = Conv::Room(room.to_owned());
        let state = self.conv(&conv);
        let me = self.me();
        for (_, message) in step.apply {
            match &message.change {
                Some(change) if change.message().is_some() => {
                    state.change_line(change, message.rich.as_deref(), &message.sender, &me);
                    if message.seq > state.last_seq.get_untracked() {
                        state.last_seq.set(message.seq);
                    }
                    continue;
                }
                Some(change) => self.room_changed(room, change),
                None => {}
            }
            self.append(&conv, Said::from(message));
        }
        // The resume point is the sequence's, which may be ahead of any line shown (a room
        // list's last id, before its history is loaded).
        let last = state.sequence.with_value(Sequence::last);
        if last > state.last_seq.get_untracked() {
            state.last_seq.set(last);
        }
        if let Some(after) = step.fetch_after {
            self.gaps.update(|gaps| gaps.push(Gap::Room { room: room.to_owned(), after }));
        }
    }

    /// Applies what the inbox's sequence released, and asks for a fetch if it found a gap.
    fn apply_inbox_step(&self, step: Step<DirectMessage>) {
        let me = self.me();
        for (_, message) in step.apply {
            let peer = message.peer(&me).to_owned();
            if let Some(change) = message.change.as_ref().filter(|c| c.message().is_some()) {
                // An edit or a reaction changes a line; the conversation keeps its place.
                self.conv(&Conv::Dm(peer)).change_line(
                    change,
                    message.rich.as_deref(),
                    &message.from,
                    &me,
                );
                continue;
            }
            self.dm_peers.update(|peers| {
                peers.retain(|known| *known != peer);
                peers.insert(0, peer.clone());
            });
            self.append(&Conv::Dm(peer), Said::from(message));
        }
        let last = self.inbox.with_value(Sequence::last);
        if last > self.inbox_seq.get_untracked() {
            self.inbox_seq.set(last);
        }
        if let Some(after) = step.fetch_after {
            self.gaps.update(|gaps| gaps.push(Gap::Inbox { after }));
        }
    }

    /// Messages of a room fetched to fill a gap, oldest first.
    pub fn room_fetched(&self, room: &str, messages: Vec<ChatMessage>, more: bool) {
        let state = self.conv(&Conv::Room(room.to_owned()));
        let events = messages.into_iter().map(|message| (message.seq, message)).collect();
        let step = state.sequence.try_update_value(|sequence| sequence.fetched(events, more));
        self.apply_room_step(room, step.unwrap_or_default());
    }

    /// Inbox messages fetched to fill a gap, oldest first.
    pub fn inbox_fetched(&self, messages: Vec<DirectMessage>, more: bool) {
        let events = messages.into_iter().map(|message| (message.seq, message)).collect();
        let step = self.inbox.try_update_value(|inbox| inbox.fetched(events, more));
        self.apply_inbox_step(step.unwrap_or_default());
    }

    /// A gap fetch failed; the gap is asked for again.
    pub fn gap_fetch_failed(&self, gap: &Gap) {
        match gap {
            Gap::Room { room, .. } => {
                let state = self.conv(&Conv::Room(room.clone()));
                let step = state.sequence.try_update_value(Sequence::fetch_failed);
                self.apply_room_step(room, step.unwrap_or_default());
            }
            Gap::Inbox { .. } => {
                let step = self.inbox.try_update_value(Sequence::fetch_failed);
                self.apply_inbox_step(step.unwrap_or_default());
            }
        }
    }

    /// Adds a stored message at the end, unless it is already there (a history page may
    /// have brought it first). Returns whether it was new.
    fn append(&self, conv: &Conv, said: Said) -> bool {
        let state = self.conv(conv);
        // Messages come here in id order (their stream's sequence sees to that); anything at
        // or below the highest id shown is a copy.
        if said.seq <= state.last_seq.get_untracked() {
            return false;
        }
        let me = self.me();
        let (seq, sender, text) = (said.seq, said.sender.clone(), said.text.clone());
        let mine = sender == me;
        if mine {
            // Our own message came back: its pending copy is done.
            state.pending.update(|pending| {
                if let Some(index) =
                    pending.iter().position(|p| p.text == text && p.state != PendingState::Queued)
                {
                    pending.remove(index);
                }
            });
        }
        let said_something = said.change.is_none();
        // What a notification says: the text without its marks.
        let text = plain_text(&blocks(&text, said.rich.as_deref()));
        let mut line = Line::from_said(said, &me);
        let mentions_me = matches!(line, Line::Message { mentions_me: true, .. });
        let (before, day_before) = state.newest();
        line.label(before.as_ref(), day_before);
        self.with_owner(|| state.push_line(line));
        state.last_seq.set(seq.max(state.last_seq.get_untracked()));
        state.typing.update(|typing| typing.retain(|(user, _)| *user != sender));
        if !mine && said_something {
            if self.active.get_untracked() != *conv {
                state.unread.update(|unread| *unread += 1);
                if mentions_me {
                    state.mentions.update(|mentions| *mentions += 1);
                }
            }
            let alert = notify::Alert { conv: conv.clone(), seq, sender, text, mentions_me };
            self.alerts.update(|alerts| alerts.push(alert));
        }
        true
    }

    fn notice(&self, conv: &Conv, text: String) {
        let id = self.next_id();
        let state = self.conv(conv);
        self.with_owner(|| state.push_line(Line::Notice { id, text }));
    }

    /// Folds one event of a room into the state.
    pub fn apply_room(&self, room: &str, event: RoomEvent) {
        let conv = Conv::Room(room.to_owned());
        let state = self.conv(&conv);
        match event {
            RoomEvent::Message(message) => {
                let step = state.sequence.try_update_value(|s| s.offer(message.seq, message));
                self.apply_room_step(room, step.unwrap_or_default());
            }
            RoomEvent::Joined { user, .. } => {
                state.members.update(|members| {
                    if let Err(position) = members.binary_search(&user) {
                        members.insert(position, user.clone());
                    }
                });
                self.notice(&conv, format!("{user} joined"));
            }
            RoomEvent::Left { user, .. } => {
                state.members.update(|members| members.retain(|member| *member != user));
                state.typing.update(|typing| typing.retain(|(name, _)| *name != user));
                self.notice(&conv, format!("{user} left"));
            }
            RoomEvent::Presence { users } => state.members.set(users),
            RoomEvent::Typing { user } => {
                if user != self.me() {
                    let until = js_sys::Date::now() + TYPING_SHOWN_MS;
                    state.typing.update(|typing| {
                        typing.retain(|(name, _)| *name != user);
                        typing.push((user, until));
                    });
                }
            }
        }
    }

    /// What a change in a room's stream means for the page: a deleted message loses its
    /// text; anyone removed stops seeing the room (after the room list says so: a replayed
    /// old removal of someone who came back changes nothing); everything else is in the
    /// room list and the member list, which are loaded again.
    fn room_changed(&self, room: &str, change: &RoomChange) {
        let state = self.conv(&Conv::Room(room.to_owned()));
        if change.removes() == Some(self.me().as_str()) {
            self.removals.update(|removals| removals.push(room.to_owned()));
        }
        state.changed.update(|changed| *changed += 1);
        self.rooms_changed();
    }

    /// Folds one direct message into the state.
    pub fn apply_dm(&self, message: DirectMessage) {
        let step = self.inbox.try_update_value(|inbox| inbox.offer(message.seq, message));
        self.apply_inbox_step(step.unwrap_or_default());
    }

    /// Shows a notice meant for this user.
    pub fn apply_notice(&self, notice: Notice) {
        match notice {
            Notice::UserOffline { user } => {
                self.notice(
                    &Conv::Dm(user.clone()),
                    format!("{user} is offline and will see this when back"),
                );
            }
            Notice::NotAccepted { receipt, reason } => {
                self.fail_pending(receipt.as_deref());
                self.error.set(Some(format!("A message was not sent: {reason}")));
            }
            Notice::Added { room, by } => {
                self.added.update(|added| added.push(room.clone()));
                let conv = Conv::Room(room.clone());
                self.notice(&conv, format!("{} added you to this room", self.display(&by)));
            }
            Notice::Denied { receipt, reason } => {
                self.fail_pending(receipt.as_deref());
                self.error.set(Some(format!("Not allowed: {reason}")));
            }
            Notice::RateLimited { receipt, retry_after_ms } => {
                self.fail_pending(receipt.as_deref());
                let seconds = retry_after_ms.div_ceil(1000);
                self.error.set(Some(format!(
                    "You are sending faster than the server allows: wait {seconds} s, then retry"
                )));
            }
            Notice::NoSuchUser { user } => {
                let state = self.conv(&Conv::Dm(user.clone()));
                state.pending.update(|pending| {
                    pending.iter_mut().for_each(|p| p.state = PendingState::Failed)
                });
                self.error.set(Some(format!("There is no user named {user}")));
            }
        }
    }

    /// Marks the pending message a refused SEND's receipt names as failed.
    fn fail_pending(&self, receipt: Option<&str>) {
        let key = receipt.and_then(|receipt| receipt.strip_prefix("send:")).unwrap_or_default();
        for (_, state) in self.conversations() {
            state.pending.update(|pending| {
                pending
                    .iter_mut()
                    .filter(|p| p.key == key)
                    .for_each(|p| p.state = PendingState::Failed);
            });
        }
    }

    /// Queues a new message, answering `reply_to` if set; the connection sends it.
    pub fn queue(
        &self,
        conv: &Conv,
        text: String,
        reply_to: Option<u64>,
        files: Vec<Attachment>,
    ) -> Pending {
        let pending =
            Pending { key: new_key(), text, reply_to, files, state: PendingState::Queued };
        self.conv(conv).pending.update(|all| all.push(pending.clone()));
        pending
    }

    /// Notes that a pending message went out.
    pub fn mark_sent(&self, conv: &Conv, key: &str) {
        let now = js_sys::Date::now();
        self.conv(conv).pending.update(|all| {
            if let Some(pending) = all.iter_mut().find(|p| p.key == key) {
                pending.state = PendingState::Sending(now);
            }
        });
    }

    /// A RECEIPT came for the message with this key: it is stored.
    pub fn confirm(&self, key: &str) {
        for (_, state) in self.conversations() {
            state.pending.update(|all| all.retain(|p| p.key != key));
        }
    }

    /// Marks messages that waited too long for their receipt as failed, and clears stale
    /// typing indicators.
    pub fn expire(&self, now: f64) {
        for (_, state) in self.conversations() {
            let overdue = state.pending.with_untracked(|all| {
                all.iter().any(|p| matches!(p.state, PendingState::Sending(at) if now - at > RECEIPT_TIMEOUT_MS))
            });
            if overdue {
                state.pending.update(|all| {
                    for pending in all.iter_mut() {
                        if matches!(pending.state, PendingState::Sending(at) if now - at > RECEIPT_TIMEOUT_MS) {
                            pending.state = PendingState::Failed;
                        }
                    }
                });
            }
            if state.typing.with_untracked(|typing| typing.iter().any(|(_, until)| *until < now)) {
                state.typing.update(|typing| typing.retain(|(_, until)| *until >= now));
            }
        }
    }

    /// Every message waiting for the connection, or sent on a connection that is gone.
    pub fn unconfirmed(&self) -> Vec<(Conv, Pending)> {
        let mut all = Vec::new();
        for (conv, state) in self.conversations() {
            state.pending.update(|pending| {
                for item in pending.iter_mut().filter(|p| p.state != PendingState::Failed) {
                    item.state = PendingState::Queued;
                    all.push((conv.clone(), item.clone()));
                }
            });
        }
        all
    }

    /// Notes that the connection came back after a drop.
    pub fn reconnected(&self) {
        let conv = self.active.get_untracked();
        self.notice(&conv, "Reconnected".to_owned());
        self.rooms_changed();
    }

    /// Marks the room list out of date; the chat page reloads it.
    pub fn rooms_changed(&self) {
        self.rooms_stale.update(|stale| *stale += 1);
    }
}

/// A fresh idempotency key.
fn new_key() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(crypto) = window().crypto() {
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
