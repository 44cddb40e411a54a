//! Everything that outlives a connection, behind one interface: accounts and password
//! hashes, session tokens, rooms and memberships, messages with their per-room ids, direct
//! messages with their per-inbox ids, read markers and idempotency keys.
//!
//! Two implementations keep the same contract (`backend/tests/it/store/` runs one suite
//! against both): [`sqlite::SqliteStore`], embedded, the default; and
//! [`postgres::PostgresStore`], for several nodes. Nothing here delivers anything: the
//! engine publishes what a write returns.
//!
//! Ids are assigned in the storing transaction: gap-free per room and per inbox, whatever
//! the number of writers. Writes are batched under load (one commit for many posts), each
//! request in its own savepoint so that one failing request leaves the others alone.

pub mod postgres;
pub mod records;
pub mod sqlite;

use std::fmt;

use async_trait::async_trait;
use shared::api::{Account, DmSummary, Invitation, Person, RoomMembers, RoomSummary, Webhook};
use shared::chat::{ChatMessage, DirectMessage, Millis, Reaction, RoomChange};

use crate::access::Standing;

pub use records::Record;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing to create exists already.
    #[error("{0}")]
    Conflict(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(Missing),
    /// The rules of [`crate::access`] (or of registration) refuse it; nothing was written.
    #[error("{0}")]
    Forbidden(String),
    /// The store cannot take the request now (unreachable, or out of space); nothing was
    /// written. The same request may succeed later.
    #[error("the message store is unavailable")]
    Unavailable,
    /// The store holds something this version cannot use.
    #[error("{0}")]
    Corrupt(String),
    /// Anything else the database reported.
    #[error("storage error: {0}")]
    Failed(String),
}

/// What [`Store::search`] looks for.
#[derive(Debug, Clone)]
pub struct Search {
    /// Who asks.
    pub user: String,
    /// Only this room (no direct messages).
    pub room: Option<String>,
    /// Only messages by this person.
    pub from: Option<String>,
    /// Only messages sent before this time.
    pub before: Option<Millis>,
    /// Every one must match.
    pub terms: Vec<shared::search::Term>,
    /// At most this many.
    pub limit: usize,
}

/// A message [`Store::search`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Its room, for a room's message.
    pub room: Option<String>,
    /// The other person, for a direct message.
    pub peer: Option<String>,
    /// Its id in the room, or in the asking user's inbox.
    pub seq: u64,
    /// Who said it.
    pub sender: String,
    /// What it says now.
    pub text: String,
    /// When.
    pub sent_at: Millis,
    /// How well it matches, by the index's own measure: higher is better.
    pub relevance: f64,
}

/// What a [`StoreError::NotFound`] did not find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A room, by name.
    Room(String),
    /// A user, by name.
    User(String),
    /// A message of a room, by id: absent, deleted, or not something said.
    Message(u64),
    /// A file to send, by id: absent, sent already, or someone else's.
    File(String),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Room(name) => write!(f, "no room named {name:?}"),
            Missing::User(name) => write!(f, "no user named {name:?}"),
            Missing::Message(seq) => write!(f, "no message {seq} in this room"),
            Missing::File(id) => {
                write!(f, "no file {id} to send: it is someone else's, sent already, or gone")
            }
        }
    }
}

/// The outcome of storing a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted<T> {
    /// What is stored: the new message, or the one stored earlier under the same key.
    pub message: T,
    /// The idempotency key was seen before: nothing new was stored.
    pub duplicate: bool,
}

/// Where a file belongs, which says who may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePlace {
    /// Uploaded and not sent yet: its uploader alone; collected after an hour.
    Unsent,
    /// Sent with a message of this room: whoever may read the room.
    Room(String),
    /// Sent with a direct message to this person: the two of them.
    Dm(String),
    /// Its uploader's picture: every signed-in person.
    Avatar,
}

/// A place as the four columns both stores keep: `sent`, `room`, `peer`, `avatar`.
pub(crate) struct PlaceColumns<'a> {
    pub sent: bool,
    pub room: Option<&'a str>,
    pub peer: Option<&'a str>,
    pub avatar: bool,
}

impl FilePlace {
    /// The columns that say this place (the inverse of [`place`]).
    pub(crate) fn columns(&self) -> PlaceColumns<'_> {
        let (sent, room, peer) = match self {
            FilePlace::Unsent => (false, None, None),
            FilePlace::Room(room) => (true, Some(room.as_str()), None),
            FilePlace::Dm(peer) => (true, None, Some(peer.as_str())),
            FilePlace::Avatar => (true, None, None),
        };
        PlaceColumns { sent, room, peer, avatar: *self == FilePlace::Avatar }
    }
}

/// A stored file's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// What readers see: id, name, type, size, an image's size.
    pub attachment: shared::chat::Attachment,
    /// Who uploaded it.
    pub owner: String,
    /// When it was uploaded.
    pub created_at: Millis,
    /// Where it belongs.
    pub place: FilePlace,
    /// A thumbnail is stored with it.
    pub thumb: bool,
}

/// Where a file belongs, from its row's columns (both stores have the same four).
pub(crate) fn place(
    sent: bool,
    room: Option<String>,
    peer: Option<String>,
    avatar: bool,
) -> FilePlace {
    match (sent, room, peer) {
        _ if avatar => FilePlace::Avatar,
        (false, _, _) => FilePlace::Unsent,
        (true, Some(room), _) => FilePlace::Room(room),
        (true, None, Some(peer)) => FilePlace::Dm(peer),
        // A sent file with no place is nobody's to read: its uploader only.
        (true, None, None) => FilePlace::Unsent,
    }
}

/// A stored file's bytes, read a piece at a time.
pub type FileBytes = futures_util::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// The files of a message being deleted, in its stored `files` column: their ids.
pub(crate) fn file_ids_of(column: Option<String>) -> Vec<String> {
    files_of(column).into_iter().map(|file| file.id).collect()
}

/// How a message's files are stored: JSON, `None` for none.
pub(crate) fn files_column(files: &[shared::chat::Attachment]) -> Option<String> {
    (!files.is_empty()).then(|| serde_json::to_string(files).expect("attachments serialize"))
}

/// The files of a stored `files` column.
pub(crate) fn files_of(column: Option<String>) -> Vec<shared::chat::Attachment> {
    column.and_then(|json| serde_json::from_str(&json).ok()).unwrap_or_default()
}

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewPost {
    /// A chat message in a room.
    Room {
        /// The room; it must exist.
        room: String,
        /// The sender's login.
        sender: String,
        /// The text, already checked.
        text: String,
        /// The idempotency key: a second post with it, from the same sender to the same
        /// room, stores nothing and returns the first.
        key: Option<String>,
        /// The sender is a bot (told to readers; not stored with the message: it is the
        /// account's).
        bot: bool,
        /// The message of the room it answers: `NotFound` unless it is something said and
        /// not deleted.
        reply_to: Option<u64>,
        /// Files the sender uploaded and has not sent: `NotFound` for any other.
        files: Vec<String>,
    },
    /// A direct message, stored in both participants' inboxes.
    Dm {
        /// The sender.
        from: String,
        /// The recipient; must exist.
        to: String,
        /// The text, already checked.
        text: String,
        /// The idempotency key, scoped to this sender and recipient.
        key: Option<String>,
        /// The sender is a bot.
        bot: bool,
        /// Files the sender uploaded and has not sent: `NotFound` for any other.
        files: Vec<String>,
    },
}

/// How a message's mentions are stored: each name between spaces (` ann bob `), so that
/// "mentions ann" is a substring test with no false match; `None` for none.
pub(crate) fn mentions_column(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| format!(" {} ", names.join(" ")))
}

/// The names of a stored mentions column.
pub(crate) fn mentions_of(column: Option<String>) -> Vec<String> {
    column.map(|names| names.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
}

/// How a message's reactions are stored: JSON, `None` for none.
pub(crate) fn reactions_column(reactions: &[Reaction]) -> Option<String> {
    (!reactions.is_empty()).then(|| serde_json::to_string(reactions).expect("reactions serialize"))
}

/// The reactions of a stored reactions column (none if it cannot be read).
pub(crate) fn reactions_of(column: Option<String>) -> Vec<Reaction> {
    column.and_then(|json| serde_json::from_str(&json).ok()).unwrap_or_default()
}

/// A message's reactions column after `actor` gives (`on`) or takes back `emoji`: at most
/// [`shared::chat::MAX_REACTIONS`] different emoji on a message (`Forbidden` past them).
pub(crate) fn reacted(
    column: Option<String>,
    actor: &str,
    emoji: &str,
    on: bool,
) -> Result<Option<String>, StoreError> {
    let mut reactions = reactions_of(column);
    let new = on && !reactions.iter().any(|reaction| reaction.emoji == emoji);
    if new && reactions.len() >= shared::chat::MAX_REACTIONS {
        return Err(StoreError::Forbidden(format!(
            "a message has at most {} different reactions",
            shared::chat::MAX_REACTIONS
        )));
    }
    shared::chat::react(&mut reactions, actor, emoji, on);
    Ok(reactions_column(&reactions))
}

/// The same change, about the message numbered `seq` (each inbox numbers its own copy).
pub(crate) fn with_seq(change: &RoomChange, seq: u64) -> RoomChange {
    match change {
        RoomChange::Edited { text, .. } => RoomChange::Edited { seq, text: text.clone() },
        RoomChange::Deleted { .. } => RoomChange::Deleted { seq },
        RoomChange::Reacted { emoji, on, .. } => {
            RoomChange::Reacted { seq, emoji: emoji.clone(), on: *on }
        }
        other => other.clone(),
    }
}

/// Both inboxes' copies of a direct message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmCopies {
    /// The sender's copy, with the sender's inbox id.
    pub sender: DirectMessage,
    /// The recipient's copy; `None` for a note to oneself, which is stored once.
    pub recipient: Option<DirectMessage>,
}

/// What [`Store::post`] stored, one per [`NewPost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A room message.
    Room(Posted<ChatMessage>),
    /// A direct message.
    Dm(Posted<DmCopies>),
}

/// A session token's owner and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The user.
    pub user: String,
    /// When the token stops working, unless used again.
    pub expires_at: Millis,
    /// The user is a bot.
    pub bot: bool,
}

/// A bot's tokens never expire: they end when revoked.
pub const NEVER: Millis = Millis::MAX;

/// A new incoming webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHook {
    /// Its public id.
    pub id: String,
    /// The room it posts into; it must exist.
    pub room: String,
    /// The bot it posts as: a new account, made a member of the room.
    pub name: String,
    /// The SHA-256 of its secret.
    pub secret_hash: String,
    /// Who made it.
    pub created_by: String,
}

/// What lets a new account in ([`Store::create_user`]). The first person on a server with
/// no accounts always gets in, and becomes its admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Anyone may sign up (`--registration open`).
    pub open: bool,
    /// The SHA-256 of an invitation code; used up by one account if valid.
    pub invite_hash: Option<String>,
    /// Invitations work (not `--registration closed`).
    pub invitations: bool,
}

impl Admission {
    /// Anyone gets in.
    pub const OPEN: Admission = Admission { open: true, invite_hash: None, invitations: true };
}

/// A change to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    /// Make or unmake a server admin. The last admin is never unmade.
    Admin(bool),
    /// Deactivate (every token revoked; messages stay) or reactivate.
    Active(bool),
    /// Set or remove the display name.
    DisplayName(Option<String>),
    /// A new password hash; every token but `keep` is revoked.
    Password {
        /// The argon2 hash.
        hash: String,
        /// The token (by hash) of the session that made the change, which goes on.
        keep: Option<String>,
    },
}

/// One session token of a user, as [`Store::sessions`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's hash.
    pub hash: String,
    /// Its `User-Agent`, shortened.
    pub device: String,
    /// When it was made.
    pub created_at: Millis,
    /// Its latest use, to the hour.
    pub last_used_at: Millis,
}

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Makes accounts, up to its number of uses.
    Invite,
    /// Sets one account's password, once.
    Reset,
}

impl LinkKind {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Invite => "invite",
            LinkKind::Reset => "reset",
        }
    }
}

/// A new invitation or reset link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// What it does.
    pub kind: LinkKind,
    /// Its public id.
    pub id: String,
    /// The SHA-256 of its secret code.
    pub code_hash: String,
    /// A reset link's account.
    pub user: Option<String>,
    /// The admin who made it.
    pub created_by: String,
    /// When it stops working.
    pub expires_at: Millis,
    /// How many times it works.
    pub max_uses: u32,
}

/// The durable state of a Confab deployment.
///
/// Every method is one transaction: it happens entirely or not at all. Methods that name a
/// room or user that does not exist return [`StoreError::NotFound`] unless said otherwise.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    // Accounts and tokens.

    /// Adds a user with an argon2 hash, a member of the lobby, if `admission` lets them in
    /// (`Forbidden` if not; an invitation it names is used up in the same transaction);
    /// `Conflict` if the name is taken. Returns whether the user is the admin: the first
    /// person on the server.
    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        now: Millis,
        admission: &Admission,
    ) -> Result<bool, StoreError>;

    /// Whether any person (not a bot) has an account.
    async fn has_people(&self) -> Result<bool, StoreError>;

    /// One account.
    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError>;

    /// Every account, by name, with its latest activity.
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// Every active account, by name, for showing names.
    async fn people(&self) -> Result<Vec<Person>, StoreError>;

    /// Changes an account; returns the hashes of the tokens it revoked, whose sessions the
    /// caller ends. `Forbidden` for unmaking the last admin.
    async fn update_account(
        &self,
        name: &str,
        change: AccountChange,
    ) -> Result<Vec<String>, StoreError>;

    /// `user`'s tokens that have not expired at `now`, the latest used first.
    async fn sessions(&self, user: &str, now: Millis) -> Result<Vec<TokenRecord>, StoreError>;

    /// Stores an invitation or reset link.
    async fn create_link(&self, link: NewLink, now: Millis) -> Result<(), StoreError>;

    /// Every invitation, the newest first, without its code.
    async fn invitations(&self) -> Result<Vec<Invitation>, StoreError>;

    /// Revokes an invitation; whether it existed.
    async fn revoke_invitation(&self, id: &str) -> Result<bool, StoreError>;

    /// Uses a reset link: sets its account's password and revokes every token of it, in
    /// one transaction. Returns the account and the revoked tokens' hashes; `Forbidden` if
    /// the link is unknown, used, expired, or its account deactivated.
    async fn redeem_reset(
        &self,
        code_hash: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<(String, Vec<String>), StoreError>;

    /// Messages (room and direct, each once) stored since `since`.
    async fn messages_since(&self, since: Millis) -> Result<u64, StoreError>;

    /// A user's password hash, if the user exists.
    async fn password_hash(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Whether a user exists.
    async fn user_exists(&self, name: &str) -> Result<bool, StoreError>;

    /// Whether `name` is a bot (`None` if there is no such user).
    async fn is_bot(&self, name: &str) -> Result<Option<bool>, StoreError>;

    /// Adds a bot account: no password (it signs in only with tokens that never expire),
    /// a member of no room; `Conflict` if the name is taken.
    async fn create_bot(&self, name: &str, now: Millis) -> Result<(), StoreError>;

    /// Records a session token (by its hash) for a user, working until `expires_at`, made
    /// by `device`.
    async fn store_token(
        &self,
        token_hash: &str,
        user: &str,
        now: Millis,
        expires_at: Millis,
        device: &str,
    ) -> Result<(), StoreError>;

    /// The owner of a token that has not expired at `now`, if the account is active.
    async fn token_owner(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<TokenOwner>, StoreError>;

    /// Moves a token's expiry to `expires_at` (never earlier), used at `now`.
    async fn extend_token(
        &self,
        token_hash: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// Deletes a token; returns its owner, if it existed.
    async fn revoke_token(&self, token_hash: &str) -> Result<Option<String>, StoreError>;

    // Rooms.

    /// Creates a room, public or private, its creator its owner; `Conflict` if it exists.
    async fn create_room(
        &self,
        name: &str,
        creator: &str,
        now: Millis,
        private: bool,
    ) -> Result<(), StoreError>;

    /// `user`'s standing in `room` (`None` if there is no such room).
    async fn standing(&self, room: &str, user: &str) -> Result<Option<Standing>, StoreError>;

    /// A room's members with their roles, and who is banned from it.
    async fn members(&self, room: &str) -> Result<RoomMembers, StoreError>;

    /// Makes a change to a room if the rules of [`crate::access`] let `actor` make it, and
    /// appends it to the room's stream, in one transaction. Returns the stream's new entry.
    async fn change_room(
        &self,
        room: &str,
        actor: &str,
        change: RoomChange,
        now: Millis,
    ) -> Result<ChatMessage, StoreError>;

    /// Makes an edit, a deletion or a reaction (`seq` numbered in `actor`'s inbox) to a
    /// message of the conversation between `actor` and `peer`, if
    /// [`crate::access::may_change_dm`] allows it: both copies change, and the change is
    /// appended to both inboxes, in one transaction. Returns the two entries.
    async fn change_dm(
        &self,
        actor: &str,
        peer: &str,
        change: RoomChange,
        now: Millis,
    ) -> Result<DmCopies, StoreError>;

    /// Every room, private ones included, with member counts, by name.
    async fn all_rooms(&self) -> Result<Vec<RoomSummary>, StoreError>;

    /// Whether a room exists.
    async fn room_exists(&self, name: &str) -> Result<bool, StoreError>;

    /// Who owns a room (`None` for the lobby, which nobody owns).
    async fn room_owner(&self, room: &str) -> Result<Option<String>, StoreError>;

    /// How many rooms `user` has created.
    async fn rooms_created_by(&self, user: &str) -> Result<u64, StoreError>;

    /// Whether `user` is a member of `room`.
    async fn is_member(&self, room: &str, user: &str) -> Result<bool, StoreError>;

    /// Makes `user` a member of `room` (no-op if already one); its read marker starts at
    /// the room's last id. `Forbidden` if the rules of [`crate::access`] keep them out.
    async fn join_room(&self, room: &str, user: &str) -> Result<(), StoreError>;

    /// Ends `user`'s membership of `room`; `Forbidden` for its owner while others remain.
    async fn leave_room(&self, room: &str, user: &str) -> Result<(), StoreError>;

    /// Every public room and every room `user` is in, with member counts and `user`'s
    /// unread counts and role, by name.
    async fn rooms_for(&self, user: &str) -> Result<Vec<RoomSummary>, StoreError>;

    /// Moves `user`'s read marker in `room` forward to `seq` (never backward, never past
    /// the room's last id).
    async fn mark_room_read(&self, room: &str, user: &str, seq: u64) -> Result<(), StoreError>;

    /// The id of a room's latest message (0 if none).
    async fn room_last_seq(&self, room: &str) -> Result<u64, StoreError>;

    /// A room's messages with `after < seq`, oldest first, at most `limit`.
    async fn room_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError>;

    /// A room's newest `limit` entries with `seq < before` (all if `None`), oldest first:
    /// messages in their current state and changes to the room, but not the edits,
    /// reactions and deletions already folded into the messages they changed. (History
    /// pages are for reading; [`Store::room_after`] gives every entry, to catch up.)
    async fn room_before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError>;

    // Messages.

    /// Stores messages, all or none: one transaction for the lot (a STOMP COMMIT), each
    /// with its room's or inboxes' next ids. A room message needs the sender's standing to
    /// allow posting ([`crate::access`]): a non-member of a public room joins it first;
    /// anyone else is `Forbidden`. A direct message to a deactivated account is `NotFound`. A message whose idempotency key was seen is
    /// not stored again; the first one is returned, marked as a duplicate.
    ///
    /// Calls commit in the order their futures are first polled: a connection may have
    /// several posts in flight and still have them stored in the order it sent them.
    async fn post(&self, posts: Vec<NewPost>, now: Millis) -> Result<Vec<Stored>, StoreError>;

    // Direct messages.

    /// The id of the latest message in `user`'s inbox (0 if none).
    async fn inbox_last_seq(&self, user: &str) -> Result<u64, StoreError>;

    /// `user`'s inbox messages with `after < seq`, oldest first, at most `limit`.
    async fn inbox_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DirectMessage>, StoreError>;

    /// The newest `limit` messages between `user` and `peer` before `before`, oldest first,
    /// in their current state (the entries that changed them left out, as in
    /// [`Store::room_before`]).
    async fn conversation_before(
        &self,
        user: &str,
        peer: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DirectMessage>, StoreError>;

    /// `user`'s conversations, the most recent first.
    async fn dm_summaries(&self, user: &str) -> Result<Vec<DmSummary>, StoreError>;

    /// Moves `user`'s read marker for the conversation with `peer` forward to `seq`.
    async fn mark_dm_read(&self, user: &str, peer: &str, seq: u64) -> Result<(), StoreError>;

    // Search.

    /// The newest `search.limit` messages matching every term that `search.user` may
    /// find: in the rooms they are a member of and their own inbox, or only in
    /// `search.room` (which the caller has checked they may read). Deleted messages and
    /// change entries are never found. Newest first, each with the index's relevance.
    async fn search(&self, search: Search) -> Result<Vec<Found>, StoreError>;

    // Files.

    /// A directory for uploads while they arrive, on the file system of the store's own
    /// files when it keeps them on disk (so that [`Store::add_file`] can rename them).
    fn upload_dir(&self) -> std::path::PathBuf;

    /// Stores a file uploaded to `content` (and its thumbnail), both taken (moved or
    /// deleted). An avatar replaces its owner's picture in the same transaction (the old
    /// one is deleted); the owner must exist.
    async fn add_file(
        &self,
        file: FileRecord,
        content: std::path::PathBuf,
        thumb: Option<std::path::PathBuf>,
    ) -> Result<(), StoreError>;

    /// How many files `owner` uploaded and has not sent.
    async fn unsent_files(&self, owner: &str) -> Result<u64, StoreError>;

    /// A file's description, if it exists.
    async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError>;

    /// A file's bytes (or its thumbnail's), if stored.
    async fn file_bytes(&self, id: &str, thumb: bool) -> Result<Option<FileBytes>, StoreError>;

    /// Takes `user`'s picture away; whether they had one.
    async fn remove_avatar(&self, user: &str) -> Result<bool, StoreError>;

    /// Deletes files never sent that were uploaded before `unsent_before`, and the bytes of
    /// every file deleted since the last call (with its message); how many files went.
    async fn collect_files(&self, unsent_before: Millis) -> Result<u64, StoreError>;

    // Incoming webhooks.

    /// Makes the webhook's bot (`Conflict` if the name is taken), a member of its room, and
    /// the webhook, in one transaction.
    async fn create_webhook(&self, hook: NewHook, now: Millis) -> Result<(), StoreError>;

    /// A room's webhooks, oldest first, without their secrets.
    async fn webhooks(&self, room: &str) -> Result<Vec<Webhook>, StoreError>;

    /// Deletes a room's webhook; whether it existed. Its bot and messages stay.
    async fn delete_webhook(&self, room: &str, id: &str) -> Result<bool, StoreError>;

    /// The webhook whose secret has this hash.
    async fn webhook(&self, secret_hash: &str) -> Result<Option<Webhook>, StoreError>;

    // Operations.

    /// `Ok` while the store can take writes now.
    async fn ready(&self) -> Result<(), StoreError>;

    /// Every record, in an order [`Store::import`] accepts, as one consistent snapshot:
    /// handed to `sink` in batches.
    async fn export(
        &self,
        sink: &mut (dyn FnMut(Vec<Record>) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError>;

    /// Adds records exported from a store (into an empty one): ids, hashes and markers
    /// are kept as they were.
    async fn import(&self, records: Vec<Record>) -> Result<(), StoreError>;
}
