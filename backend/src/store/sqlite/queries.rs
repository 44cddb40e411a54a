//! The embedded store's queries: plain functions over a `rusqlite::Connection` (or a
//! transaction or savepoint, which derefs to one), with no threads or async here.

use rusqlite::{Connection, OptionalExtension, params};
use shared::api::{DmSummary, RoomSummary, Webhook};
use shared::chat::{
    Attachment, ChatMessage, DirectMessage, LOBBY, Millis, QUOTE_CHARS, Quote, Role, RoomChange,
    mentioned,
};

use crate::store::{
    Admission, DmCopies, FilePlace, Missing, NewHook, NewPost, PlaceColumns, Posted, Record,
    StoreError, Stored, TokenOwner, files_column, files_of, mentions_column, mentions_of,
    reactions_column, reactions_of,
};

/// SQLite stores integers as `i64`: every id a client names is clamped into it.
pub(super) fn clamp(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

// Accounts.

/// Adds a user, a member of the lobby, if `admission` lets them in; `Conflict` if the name
/// is taken. The first person is the admin.
pub(super) fn create_user(
    connection: &Connection,
    name: &str,
    password_hash: &str,
    now: Millis,
    admission: &Admission,
) -> Result<bool, StoreError> {
    let first = !super::accounts::has_people(connection)?;
    if !first && !admission.open {
        match (&admission.invite_hash, admission.invitations) {
            (Some(hash), true) => super::accounts::use_invitation(connection, hash, now)?,
            (Some(_), false) => {
                return Err(StoreError::Forbidden("this server takes no new accounts".into()));
            }
            (None, _) => {
                return Err(StoreError::Forbidden(
                    "this server signs people up by invitation: ask an admin for a link".into(),
                ));
            }
        }
    }
    let inserted = connection.execute(
        "INSERT INTO users (name, password_hash, created_at, admin) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![name, password_hash, now, first],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("the name {name:?} is taken")));
    }
    add_member(connection, LOBBY, name, Role::Member)?;
    Ok(first)
}

pub(super) fn is_bot(connection: &Connection, name: &str) -> Result<Option<bool>, StoreError> {
    Ok(connection
        .query_row("SELECT bot FROM users WHERE name = ?1", params![name], |row| row.get(0))
        .optional()?)
}

/// Adds a bot: no password, no room.
pub(super) fn create_bot(
    connection: &Connection,
    name: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let inserted = connection.execute(
        "INSERT INTO users (name, password_hash, created_at, bot) VALUES (?1, '', ?2, 1) ON CONFLICT DO NOTHING",
        params![name, now],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("the name {name:?} is taken")));
    }
    Ok(())
}

pub(super) fn password_hash(
    connection: &Connection,
    name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row("SELECT password_hash FROM users WHERE name = ?1", params![name], |row| {
            row.get(0)
        })
        .optional()?)
}

pub(super) fn user_exists(connection: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
        params![name],
        |row| row.get(0),
    )?)
}

fn active_user_exists(connection: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1 AND deactivated = 0)",
        params![name],
        |row| row.get(0),
    )?)
}

pub(super) fn store_token(
    connection: &Connection,
    token_hash: &str,
    user: &str,
    now: Millis,
    expires_at: Millis,
    device: &str,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO tokens (token_hash, user_name, created_at, expires_at, device, last_used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?3)",
        params![token_hash, user, now, expires_at, device],
    )?;
    connection.execute(
        "UPDATE users SET last_active = MAX(COALESCE(last_active, 0), ?2) WHERE name = ?1",
        params![user, now],
    )?;
    Ok(())
}

pub(super) fn token_owner(
    connection: &Connection,
    token_hash: &str,
    now: Millis,
) -> Result<Option<TokenOwner>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT t.user_name, t.expires_at, u.bot FROM tokens t JOIN users u ON u.name = t.user_name
             WHERE t.token_hash = ?1 AND t.expires_at > ?2 AND u.deactivated = 0",
            params![token_hash, now],
            |row| Ok(TokenOwner { user: row.get(0)?, expires_at: row.get(1)?, bot: row.get(2)? }),
        )
        .optional()?)
}

pub(super) fn extend_token(
    connection: &Connection,
    token_hash: &str,
    expires_at: Millis,
    now: Millis,
) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE tokens SET expires_at = MAX(expires_at, ?2), last_used_at = MAX(last_used_at, ?3)
         WHERE token_hash = ?1",
        params![token_hash, expires_at, now],
    )?;
    connection.execute(
        "UPDATE users SET last_active = MAX(COALESCE(last_active, 0), ?2)
         WHERE name = (SELECT user_name FROM tokens WHERE token_hash = ?1)",
        params![token_hash, now],
    )?;
    Ok(())
}

pub(super) fn revoke_token(
    connection: &Connection,
    token_hash: &str,
) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row(
            "DELETE FROM tokens WHERE token_hash = ?1 RETURNING user_name",
            params![token_hash],
            |row| row.get(0),
        )
        .optional()?)
}

// Rooms.

pub(super) fn create_room(
    connection: &Connection,
    name: &str,
    creator: &str,
    now: Millis,
    private: bool,
) -> Result<(), StoreError> {
    let inserted = connection.execute(
        "INSERT INTO rooms (name, created_by, created_at, private) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![name, creator, now, private],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("a room named {name:?} already exists")));
    }
    add_member(connection, name, creator, Role::Owner)
}

pub(super) fn room_exists(connection: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM rooms WHERE name = ?1)",
        params![name],
        |row| row.get(0),
    )?)
}

pub(super) fn require_room(connection: &Connection, name: &str) -> Result<(), StoreError> {
    if room_exists(connection, name)? {
        Ok(())
    } else {
        Err(StoreError::NotFound(Missing::Room(name.to_owned())))
    }
}

pub(super) fn room_owner(
    connection: &Connection,
    room: &str,
) -> Result<Option<String>, StoreError> {
    require_room(connection, room)?;
    Ok(connection
        .query_row(
            "SELECT user_name FROM memberships WHERE room = ?1 AND role = 'owner'",
            params![room],
            |row| row.get(0),
        )
        .optional()?)
}

pub(super) fn rooms_created_by(connection: &Connection, user: &str) -> Result<u64, StoreError> {
    Ok(connection.query_row(
        "SELECT COUNT(*) FROM rooms WHERE created_by = ?1",
        params![user],
        |row| row.get(0),
    )?)
}

pub(super) fn is_member(
    connection: &Connection,
    room: &str,
    user: &str,
) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE room = ?1 AND user_name = ?2)",
        params![room, user],
        |row| row.get(0),
    )?)
}

/// Joins a room if the rules let `user` in.
pub(super) fn join_room(connection: &Connection, room: &str, user: &str) -> Result<(), StoreError> {
    let standing = super::rooms::standing(connection, room, user)?
        .ok_or_else(|| StoreError::NotFound(Missing::Room(room.to_owned())))?;
    if standing.is_member() {
        return Ok(());
    }
    standing.may_join().map_err(|denied| StoreError::Forbidden(denied.0))?;
    add_member(connection, room, user, Role::Member)
}

/// Makes `user` a member with `role`, whatever the rules say (the caller has asked them).
pub(super) fn add_member(
    connection: &Connection,
    room: &str,
    user: &str,
    role: Role,
) -> Result<(), StoreError> {
    require_room(connection, room)?;
    // A new member has read nothing that came before: start the marker at the present.
    connection.execute(
        "INSERT INTO memberships (room, user_name, last_read, role)
         SELECT ?1, ?2, last_seq, ?3 FROM rooms WHERE name = ?1
         ON CONFLICT DO NOTHING",
        params![room, user, role.as_str()],
    )?;
    Ok(())
}

pub(super) fn leave_room(
    connection: &Connection,
    room: &str,
    user: &str,
) -> Result<(), StoreError> {
    require_room(connection, room)?;
    let (role, others): (Option<String>, u64) = connection.query_row(
        "SELECT (SELECT role FROM memberships WHERE room = ?1 AND user_name = ?2),
                (SELECT COUNT(*) FROM memberships WHERE room = ?1 AND user_name <> ?2)",
        params![room, user],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if role.as_deref() == Some("owner") && others > 0 {
        return Err(StoreError::Forbidden(
            "you own this room: make another member its owner before leaving".into(),
        ));
    }
    connection.execute(
        "DELETE FROM memberships WHERE room = ?1 AND user_name = ?2",
        params![room, user],
    )?;
    Ok(())
}

pub(super) fn rooms_for(
    connection: &Connection,
    user: &str,
) -> Result<Vec<RoomSummary>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT r.name, r.last_seq,
                (SELECT COUNT(*) FROM memberships m WHERE m.room = r.name),
                mine.last_read, r.private, r.archived, r.title, r.topic, mine.role, mine.muted,
                unread.said, unread.mentions
         FROM rooms r LEFT JOIN memberships mine ON mine.room = r.name AND mine.user_name = ?1
         LEFT JOIN (SELECT x.room, COUNT(*) AS said,
                        SUM(instr(COALESCE(x.mentions, ''), ' ' || ?1 || ' ') > 0) AS mentions
                    FROM messages x JOIN memberships me ON me.room = x.room AND me.user_name = ?1
                    WHERE x.seq > me.last_read AND x.change IS NULL AND x.deleted = 0
                      AND x.sender <> ?1
                    GROUP BY x.room) unread ON unread.room = r.name
         WHERE r.private = 0 OR mine.user_name IS NOT NULL
         ORDER BY r.name",
    )?;
    let rows = statement.query_map(params![user], room_summary)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every room, private ones included, as seen by nobody in particular.
pub(super) fn all_rooms(connection: &Connection) -> Result<Vec<RoomSummary>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT r.name, r.last_seq,
                (SELECT COUNT(*) FROM memberships m WHERE m.room = r.name),
                NULL, r.private, r.archived, r.title, r.topic, NULL, 0, NULL, NULL
         FROM rooms r ORDER BY r.name",
    )?;
    let rows = statement.query_map([], room_summary)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn room_summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<RoomSummary> {
    let last_seq: u64 = row.get(1)?;
    let last_read: Option<u64> = row.get(3)?;
    let role: Option<String> = row.get(8)?;
    Ok(RoomSummary {
        name: row.get(0)?,
        members: row.get(2)?,
        joined: last_read.is_some(),
        last_seq,
        unread: row.get::<_, Option<u64>>(10)?.unwrap_or(0),
        mentions: row.get::<_, Option<u64>>(11)?.unwrap_or(0),
        private: row.get(4)?,
        archived: row.get(5)?,
        title: row.get(6)?,
        topic: row.get(7)?,
        role: role.as_deref().and_then(Role::parse),
        muted: row.get::<_, Option<bool>>(9)?.unwrap_or(false),
    })
}

pub(super) fn mark_room_read(
    connection: &Connection,
    room: &str,
    user: &str,
    seq: u64,
) -> Result<(), StoreError> {
    require_room(connection, room)?;
    connection.execute(
        "UPDATE memberships SET last_read = MAX(last_read, MIN(?3, (SELECT last_seq FROM rooms WHERE name = ?1)))
         WHERE room = ?1 AND user_name = ?2",
        params![room, user, clamp(seq)],
    )?;
    Ok(())
}

pub(super) fn room_last_seq(connection: &Connection, room: &str) -> Result<u64, StoreError> {
    connection
        .query_row("SELECT last_seq FROM rooms WHERE name = ?1", params![room], |row| row.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(Missing::Room(room.to_owned())))
}

pub(super) fn room_after(
    connection: &Connection,
    room: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<ChatMessage>, StoreError> {
    require_room(connection, room)?;
    let mut statement = connection.prepare_cached(&format!(
        "{MESSAGE_COLUMNS} WHERE m.room = ?1 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3"
    ))?;
    let rows = statement
        .query_map(params![room, clamp(after), limit as i64], |row| room_message(room, row))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn room_before(
    connection: &Connection,
    room: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<ChatMessage>, StoreError> {
    require_room(connection, room)?;
    let mut statement = connection.prepare_cached(&format!(
        "{MESSAGE_COLUMNS} WHERE m.room = ?1 AND m.seq < ?2 AND m.target IS NULL ORDER BY m.seq DESC LIMIT ?3"
    ))?;
    let before = before.map_or(i64::MAX, clamp);
    let rows =
        statement.query_map(params![room, before, limit as i64], |row| room_message(room, row))?;
    let mut messages: Vec<ChatMessage> = rows.collect::<Result<_, _>>()?;
    messages.reverse();
    Ok(messages)
}

/// A room's messages as readers get them: in their current state, with the snippet of
/// the message each answers.
const MESSAGE_COLUMNS: &str = "SELECT m.seq, m.sender, m.text, m.sent_at, COALESCE(u.bot, 0),
        m.change, m.deleted, m.reply_to, q.sender, substr(q.text, 1, 140), q.deleted,
        m.mentions, m.edited_at, m.reactions, m.files
    FROM messages m LEFT JOIN users u ON u.name = m.sender
    LEFT JOIN messages q ON q.room = m.room AND q.seq = m.reply_to";

fn room_message(room: &str, row: &rusqlite::Row<'_>) -> rusqlite::Result<ChatMessage> {
    let change: Option<String> = row.get(5)?;
    let reply_to: Option<u64> = row.get(7)?;
    Ok(ChatMessage {
        seq: row.get(0)?,
        room: room.to_owned(),
        sender: row.get(1)?,
        text: row.get(2)?,
        sent_at: row.get(3)?,
        bot: row.get(4)?,
        change: change.and_then(|json| serde_json::from_str(&json).ok()),
        deleted: row.get(6)?,
        reply_to: match reply_to {
            Some(seq) => Some(Quote {
                seq,
                sender: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
                text: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
                deleted: row.get::<_, Option<bool>>(10)?.unwrap_or(true),
            }),
            None => None,
        },
        mentions: mentions_of(row.get(11)?),
        edited_at: row.get(12)?,
        reactions: reactions_of(row.get(13)?),
        rich: None,
        files: files_of(row.get(14)?),
    })
}

/// The message `seq` of a room as a reply quotes it, if it is something said and not
/// deleted.
pub(super) fn quote(
    connection: &Connection,
    room: &str,
    seq: u64,
) -> Result<Option<Quote>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT sender, substr(text, 1, ?3) FROM messages
             WHERE room = ?1 AND seq = ?2 AND change IS NULL AND deleted = 0",
            params![room, clamp(seq), QUOTE_CHARS as i64],
            |row| Ok(Quote { seq, sender: row.get(0)?, text: row.get(1)?, deleted: false }),
        )
        .optional()?)
}

/// The members of `room` among the names `text` mentions.
pub(super) fn mentions_in(
    connection: &Connection,
    room: &str,
    text: &str,
) -> Result<Vec<String>, StoreError> {
    let names = mentioned(text);
    if names.is_empty() {
        // Most messages name nobody: no statement at all.
        return Ok(names);
    }
    let mut statement = connection.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE room = ?1 AND user_name = ?2)",
    )?;
    let mut found = Vec::new();
    for name in names {
        if statement.query_row(params![room, name], |row| row.get::<_, bool>(0))? {
            found.push(name);
        }
    }
    Ok(found)
}

// Posting.

/// Stores every post in order, on `connection` (a transaction the caller commits).
pub(super) fn post(
    connection: &Connection,
    posts: &[NewPost],
    now: Millis,
) -> Result<Vec<Stored>, StoreError> {
    posts
        .iter()
        .map(|post| match post {
            NewPost::Room { room, sender, text, key, bot, reply_to, files } => {
                let entry = Entry { text, key: key.as_deref(), reply_to: *reply_to, change: None };
                post_room(connection, room, sender, entry, files, now).map(|mut posted| {
                    posted.message.bot = *bot;
                    Stored::Room(posted)
                })
            }
            NewPost::Dm { from, to, text, key, bot, files } => {
                let dm = Dm { from, to, text, key: key.as_deref(), files };
                post_dm(connection, dm, now).map(|mut posted| {
                    posted.message.sender.bot = *bot;
                    if let Some(copy) = &mut posted.message.recipient {
                        copy.bot = *bot;
                    }
                    Stored::Dm(posted)
                })
            }
        })
        .collect()
}

fn post_room(
    connection: &Connection,
    room: &str,
    sender: &str,
    entry: Entry<'_>,
    files: &[String],
    now: Millis,
) -> Result<Posted<ChatMessage>, StoreError> {
    if let Some(key) = entry.key {
        let earlier = connection
            .query_row(
                &format!(
                    "{MESSAGE_COLUMNS} WHERE m.room = ?1 AND m.sender = ?2 AND m.idempotency_key = ?3"
                ),
                params![room, sender, key],
                |row| room_message(room, row),
            )
            .optional()?;
        if let Some(message) = earlier {
            return Ok(Posted { message, duplicate: true });
        }
    }
    // A member's post, the common case, needs one lookup: a member is never banned (a ban
    // ends the membership in its transaction, and nobody banned joins or is added).
    let mut statement = connection.prepare_cached(
        "SELECT m.muted, r.archived, r.private FROM memberships m JOIN rooms r ON r.name = m.room
         WHERE m.room = ?1 AND m.user_name = ?2",
    )?;
    let member = statement
        .query_row(params![room, sender], |row| {
            Ok(crate::access::Standing {
                muted: row.get(0)?,
                archived: row.get(1)?,
                private: row.get(2)?,
                role: Some(Role::Member),
                ..crate::access::Standing::default()
            })
        })
        .optional()?;
    let member = match member {
        Some(member) => member,
        None => {
            let standing = super::rooms::standing(connection, room, sender)?
                .ok_or_else(|| StoreError::NotFound(Missing::Room(room.to_owned())))?;
            // Saying something in a public room joins it, as subscribing does.
            standing.may_join().map_err(|denied| StoreError::Forbidden(denied.0))?;
            add_member(connection, room, sender, Role::Member)?;
            crate::access::Standing { role: Some(Role::Member), ..standing }
        }
    };
    member.may_post().map_err(|denied| StoreError::Forbidden(denied.0))?;
    let files = send_files(connection, sender, files, FilePlace::Room(room.to_owned()))?;
    let mut message = append(connection, room, sender, entry, now)?;
    if !files.is_empty() {
        connection.execute(
            "UPDATE messages SET files = ?3 WHERE room = ?1 AND seq = ?2",
            params![room, clamp(message.seq), files_column(&files)],
        )?;
        message.files = files;
    }
    Ok(Posted { message, duplicate: false })
}

/// Sends `sender`'s unsent files to `place`: `NotFound` for any other file.
fn send_files(
    connection: &Connection,
    sender: &str,
    ids: &[String],
    place: FilePlace,
) -> Result<Vec<Attachment>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let PlaceColumns { room, peer, .. } = place.columns();
    let mut statement = connection.prepare_cached(
        "UPDATE files SET sent = 1, room = ?3, peer = ?4
         WHERE id = ?1 AND owner = ?2 AND sent = 0 AND avatar = 0
         RETURNING name, mime, size, width, height",
    )?;
    ids.iter()
        .map(|id| {
            statement
                .query_row(params![id, sender, room, peer], |row| {
                    Ok(Attachment {
                        id: id.clone(),
                        name: row.get(0)?,
                        mime: row.get(1)?,
                        size: row.get(2)?,
                        image: image_size(row.get(3)?, row.get(4)?),
                    })
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound(Missing::File(id.clone())))
        })
        .collect()
}

/// An image's size from its two columns.
pub(super) fn image_size(width: Option<u32>, height: Option<u32>) -> Option<(u32, u32)> {
    width.zip(height)
}

/// A direct message to store.
struct Dm<'a> {
    from: &'a str,
    to: &'a str,
    text: &'a str,
    key: Option<&'a str>,
    files: &'a [String],
}

/// What [`append`] adds to a room's stream besides its sender and time.
pub(super) struct Entry<'a> {
    /// The text (for a change, the line that describes it).
    pub text: &'a str,
    /// The idempotency key.
    pub key: Option<&'a str>,
    /// The message it answers.
    pub reply_to: Option<u64>,
    /// The change it records.
    pub change: Option<&'a RoomChange>,
}

/// Appends an entry to a room's stream with the room's next id: a message's reply and
/// mentions are resolved in the same transaction.
pub(super) fn append(
    connection: &Connection,
    room: &str,
    sender: &str,
    entry: Entry<'_>,
    now: Millis,
) -> Result<ChatMessage, StoreError> {
    let Entry { text, key, reply_to, change } = entry;
    let quote = match reply_to {
        Some(seq) => {
            Some(quote(connection, room, seq)?.ok_or(StoreError::NotFound(Missing::Message(seq)))?)
        }
        None => None,
    };
    let mentions = if change.is_none() { mentions_in(connection, room, text)? } else { Vec::new() };
    let seq: u64 = connection
        .query_row(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE name = ?1 RETURNING last_seq",
            params![room],
            |row| row.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(Missing::Room(room.to_owned())))?;
    let json = change.map(|change| serde_json::to_string(change).expect("changes serialize"));
    let target = change.and_then(RoomChange::message).map(clamp);
    let mut statement = connection.prepare_cached(
        "INSERT INTO messages (room, seq, sender, text, sent_at, idempotency_key, change, target, reply_to, mentions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    statement.execute(params![
        room,
        seq,
        sender,
        text,
        now,
        key,
        json,
        target,
        reply_to.map(clamp),
        mentions_column(&mentions)
    ])?;
    Ok(ChatMessage {
        seq,
        room: room.to_owned(),
        sender: sender.to_owned(),
        text: text.to_owned(),
        sent_at: now,
        change: change.cloned(),
        reply_to: quote,
        mentions,
        ..ChatMessage::default()
    })
}

/// Each participant's inbox holds its own copy, numbered in that inbox.
fn post_dm(
    connection: &Connection,
    dm: Dm<'_>,
    now: Millis,
) -> Result<Posted<DmCopies>, StoreError> {
    let Dm { from, to, text, key, files } = dm;
    if !active_user_exists(connection, to)? {
        return Err(StoreError::NotFound(Missing::User(to.to_owned())));
    }
    if let Some(key) = key {
        let mut statement = connection.prepare_cached(
            "SELECT owner, seq, sent_at, text, files FROM direct_messages WHERE sender = ?1 AND idempotency_key = ?2
             AND owner IN (?1, ?3) AND peer = CASE owner WHEN ?1 THEN ?3 ELSE ?1 END",
        )?;
        let mut copies = statement.query_map(params![from, key, to], |row| {
            let owner: String = row.get(0)?;
            let message = DirectMessage {
                seq: row.get(1)?,
                from: from.to_owned(),
                to: to.to_owned(),
                text: row.get(3)?,
                sent_at: row.get(2)?,
                files: files_of(row.get(4)?),
                ..DirectMessage::default()
            };
            Ok((owner, message))
        })?;
        let (mut sender, mut recipient) = (None, None);
        for copy in copies.by_ref() {
            let (owner, message) = copy?;
            if owner == from {
                sender = Some(message);
            } else {
                recipient = Some(message);
            }
        }
        if let Some(sender) = sender {
            return Ok(Posted { message: DmCopies { sender, recipient }, duplicate: true });
        }
    }
    let files = send_files(connection, from, files, FilePlace::Dm(to.to_owned()))?;
    let column = files_column(&files);
    let copy_for = |owner: &str, peer: &str| -> Result<DirectMessage, StoreError> {
        let seq = next_inbox_seq(connection, owner)?;
        connection.execute(
            "INSERT INTO direct_messages (owner, seq, peer, sender, recipient, text, sent_at, idempotency_key, files)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![owner, seq, peer, from, to, text, now, key, column],
        )?;
        Ok(DirectMessage {
            seq,
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            sent_at: now,
            files: files.clone(),
            ..DirectMessage::default()
        })
    };
    let sender = copy_for(from, to)?;
    let recipient = if from == to { None } else { Some(copy_for(to, from)?) };
    if let Some(copy) = &recipient {
        pair(connection, (from, sender.seq), (to, copy.seq))?;
    }
    Ok(Posted { message: DmCopies { sender, recipient }, duplicate: false })
}

/// The next id of `owner`'s inbox, taken.
pub(super) fn next_inbox_seq(connection: &Connection, owner: &str) -> Result<u64, StoreError> {
    Ok(connection.query_row(
        "INSERT INTO inboxes (owner, last_seq) VALUES (?1, 1)
         ON CONFLICT (owner) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
        params![owner],
        |row| row.get(0),
    )?)
}

/// Records that two inboxes' entries are copies of one another.
pub(super) fn pair(
    connection: &Connection,
    (owner, seq): (&str, u64),
    (other, other_seq): (&str, u64),
) -> Result<(), StoreError> {
    let mut statement = connection
        .prepare_cached("UPDATE direct_messages SET pair_seq = ?3 WHERE owner = ?1 AND seq = ?2")?;
    statement.execute(params![owner, clamp(seq), clamp(other_seq)])?;
    statement.execute(params![other, clamp(other_seq), clamp(seq)])?;
    Ok(())
}

// Direct messages.

pub(super) fn inbox_last_seq(connection: &Connection, owner: &str) -> Result<u64, StoreError> {
    Ok(connection
        .query_row("SELECT last_seq FROM inboxes WHERE owner = ?1", params![owner], |row| {
            row.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

pub(super) fn inbox_after(
    connection: &Connection,
    owner: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<DirectMessage>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "{DM_COLUMNS} WHERE d.owner = ?1 AND d.seq > ?2 ORDER BY d.seq LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![owner, clamp(after), limit as i64], direct_message)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn conversation_before(
    connection: &Connection,
    owner: &str,
    peer: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<DirectMessage>, StoreError> {
    let mut statement = connection.prepare_cached(
        &format!(
            "{DM_COLUMNS} WHERE d.owner = ?1 AND d.peer = ?2 AND d.seq < ?3 AND d.target IS NULL ORDER BY d.seq DESC LIMIT ?4"
        ),
    )?;
    let before = before.map_or(i64::MAX, clamp);
    let rows = statement.query_map(params![owner, peer, before, limit as i64], direct_message)?;
    let mut messages: Vec<DirectMessage> = rows.collect::<Result<_, _>>()?;
    messages.reverse();
    Ok(messages)
}

/// An inbox's entries as readers get them: each message in its current state.
const DM_COLUMNS: &str = "SELECT d.seq, d.sender, d.recipient, d.text, d.sent_at,
        COALESCE(u.bot, 0), d.change, d.deleted, d.edited_at, d.reactions, d.files
    FROM direct_messages d LEFT JOIN users u ON u.name = d.sender";

pub(super) fn direct_message(row: &rusqlite::Row<'_>) -> rusqlite::Result<DirectMessage> {
    let change: Option<String> = row.get(6)?;
    Ok(DirectMessage {
        seq: row.get(0)?,
        from: row.get(1)?,
        to: row.get(2)?,
        text: row.get(3)?,
        sent_at: row.get(4)?,
        bot: row.get(5)?,
        change: change.and_then(|json| serde_json::from_str(&json).ok()),
        deleted: row.get(7)?,
        edited_at: row.get(8)?,
        reactions: reactions_of(row.get(9)?),
        rich: None,
        files: files_of(row.get(10)?),
    })
}

pub(super) fn dm_summaries(
    connection: &Connection,
    owner: &str,
) -> Result<Vec<DmSummary>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT d.peer, MAX(d.seq),
                SUM(d.sender = d.peer AND d.change IS NULL AND d.deleted = 0
                    AND d.seq > COALESCE(r.last_read, 0))
         FROM direct_messages d LEFT JOIN dm_reads r ON r.owner = d.owner AND r.peer = d.peer
         WHERE d.owner = ?1 GROUP BY d.peer ORDER BY MAX(d.seq) DESC",
    )?;
    let rows = statement.query_map(params![owner], |row| {
        Ok(DmSummary { peer: row.get(0)?, last_seq: row.get(1)?, unread: row.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn mark_dm_read(
    connection: &Connection,
    owner: &str,
    peer: &str,
    seq: u64,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO dm_reads (owner, peer, last_read) VALUES (?1, ?2, MIN(?3, (SELECT COALESCE(MAX(last_seq), 0) FROM inboxes WHERE owner = ?1)))
         ON CONFLICT (owner, peer) DO UPDATE SET last_read = MAX(last_read, excluded.last_read)",
        params![owner, peer, clamp(seq)],
    )?;
    Ok(())
}

// Export and import.

/// Turns a row of an export query into its record.
type ToRecord = fn(&rusqlite::Row<'_>) -> rusqlite::Result<Record>;

/// Every table's rows, as records, a batch at a time.
pub(super) fn export(
    connection: &Connection,
    sink: &mut dyn FnMut(Vec<Record>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    const BATCH: usize = 1000;
    let tables: [(&str, ToRecord); 10] = [
        (
            "SELECT name, password_hash, created_at, bot, admin, deactivated, display_name, avatar
             FROM users ORDER BY name",
            |row| {
                Ok(Record::User {
                    name: row.get(0)?,
                    password_hash: row.get(1)?,
                    created_at: row.get(2)?,
                    bot: row.get(3)?,
                    admin: row.get(4)?,
                    deactivated: row.get(5)?,
                    display_name: row.get(6)?,
                    avatar: row.get(7)?,
                })
            },
        ),
        (
            "SELECT name, created_by, created_at, last_seq, private, archived, title, topic
             FROM rooms ORDER BY name",
            |row| {
                Ok(Record::Room {
                    name: row.get(0)?,
                    created_by: row.get(1)?,
                    created_at: row.get(2)?,
                    last_seq: row.get(3)?,
                    private: row.get(4)?,
                    archived: row.get(5)?,
                    title: row.get(6)?,
                    topic: row.get(7)?,
                })
            },
        ),
        (
            "SELECT room, user_name, last_read, role, muted FROM memberships ORDER BY room, user_name",
            |row| {
                let role: String = row.get(3)?;
                Ok(Record::Member {
                    room: row.get(0)?,
                    user: row.get(1)?,
                    last_read: row.get(2)?,
                    role: Role::parse(&role).unwrap_or(Role::Member),
                    muted: row.get(4)?,
                })
            },
        ),
        (
            "SELECT room, user_name, banned_by, banned_at FROM bans ORDER BY room, user_name",
            |row| {
                Ok(Record::Ban {
                    room: row.get(0)?,
                    user: row.get(1)?,
                    by: row.get(2)?,
                    at: row.get(3)?,
                })
            },
        ),
        (
            "SELECT room, seq, sender, text, sent_at, idempotency_key, change, deleted,
                    reply_to, mentions, edited_at, reactions, files
             FROM messages ORDER BY room, seq",
            |row| {
                let change: Option<String> = row.get(6)?;
                Ok(Record::Message {
                    room: row.get(0)?,
                    seq: row.get(1)?,
                    sender: row.get(2)?,
                    text: row.get(3)?,
                    sent_at: row.get(4)?,
                    key: row.get(5)?,
                    change: change.and_then(|json| serde_json::from_str(&json).ok()),
                    deleted: row.get(7)?,
                    reply_to: row.get(8)?,
                    mentions: mentions_of(row.get(9)?),
                    edited_at: row.get(10)?,
                    reactions: reactions_of(row.get(11)?),
                    files: files_of(row.get(12)?),
                })
            },
        ),
        ("SELECT owner, last_seq FROM inboxes ORDER BY owner", |row| {
            Ok(Record::Inbox { owner: row.get(0)?, last_seq: row.get(1)? })
        }),
        (
            "SELECT owner, seq, peer, sender, recipient, text, sent_at, idempotency_key,
                    change, deleted, edited_at, reactions, pair_seq, files
             FROM direct_messages ORDER BY owner, seq",
            |row| {
                let change: Option<String> = row.get(8)?;
                Ok(Record::Dm {
                    owner: row.get(0)?,
                    seq: row.get(1)?,
                    peer: row.get(2)?,
                    sender: row.get(3)?,
                    recipient: row.get(4)?,
                    text: row.get(5)?,
                    sent_at: row.get(6)?,
                    key: row.get(7)?,
                    change: change.and_then(|json| serde_json::from_str(&json).ok()),
                    deleted: row.get(9)?,
                    edited_at: row.get(10)?,
                    reactions: reactions_of(row.get(11)?),
                    pair_seq: row.get(12)?,
                    files: files_of(row.get(13)?),
                })
            },
        ),
        ("SELECT owner, peer, last_read FROM dm_reads ORDER BY owner, peer", |row| {
            Ok(Record::DmRead { owner: row.get(0)?, peer: row.get(1)?, last_read: row.get(2)? })
        }),
        (
            "SELECT id, room, bot_name, secret_hash, created_by, created_at FROM webhooks ORDER BY id",
            |row| {
                Ok(Record::Webhook {
                    id: row.get(0)?,
                    room: row.get(1)?,
                    name: row.get(2)?,
                    secret_hash: row.get(3)?,
                    created_by: row.get(4)?,
                    created_at: row.get(5)?,
                })
            },
        ),
        (
            "SELECT code_hash, id, kind, user_name, created_by, created_at, expires_at, max_uses,
                    uses, revoked FROM links ORDER BY id",
            |row| {
                Ok(Record::Link {
                    code_hash: row.get(0)?,
                    id: row.get(1)?,
                    link: row.get(2)?,
                    user: row.get(3)?,
                    created_by: row.get(4)?,
                    created_at: row.get(5)?,
                    expires_at: row.get(6)?,
                    max_uses: row.get(7)?,
                    uses: row.get(8)?,
                    revoked: row.get(9)?,
                })
            },
        ),
    ];
    for (query, to_record) in tables {
        let mut statement = connection.prepare(query)?;
        let mut rows = statement.query([])?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = rows.next()? {
            batch.push(to_record(row)?);
            if batch.len() == BATCH {
                sink(std::mem::take(&mut batch))?;
            }
        }
        if !batch.is_empty() {
            sink(batch)?;
        }
    }
    Ok(())
}

/// Adds exported records as they are; the lobby, made by the first migration, is updated
/// rather than added again.
pub(super) fn import(connection: &Connection, records: &[Record]) -> Result<(), StoreError> {
    for record in records {
        match record {
            Record::User {
                name,
                password_hash,
                created_at,
                bot,
                admin,
                deactivated,
                display_name,
                avatar,
            } => {
                connection.execute(
                    "INSERT INTO users (name, password_hash, created_at, bot, admin, deactivated, display_name, avatar)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        name,
                        password_hash,
                        created_at,
                        bot,
                        admin,
                        deactivated,
                        display_name,
                        avatar
                    ],
                )?;
            }
            Record::Room {
                name,
                created_by,
                created_at,
                last_seq,
                private,
                archived,
                title,
                topic,
            } => {
                connection.execute(
                    "INSERT INTO rooms (name, created_by, created_at, last_seq, private, archived, title, topic)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (name) DO UPDATE SET created_by = excluded.created_by,
                         created_at = excluded.created_at, last_seq = excluded.last_seq,
                         private = excluded.private, archived = excluded.archived,
                         title = excluded.title, topic = excluded.topic",
                    params![
                        name,
                        created_by,
                        created_at,
                        clamp(*last_seq),
                        private,
                        archived,
                        title,
                        topic
                    ],
                )?;
            }
            Record::Member { room, user, last_read, role, muted } => {
                connection.execute(
                    "INSERT INTO memberships (room, user_name, last_read, role, muted) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (room, user_name) DO UPDATE SET last_read = excluded.last_read,
                         role = excluded.role, muted = excluded.muted",
                    params![room, user, clamp(*last_read), role.as_str(), muted],
                )?;
            }
            Record::Ban { room, user, by, at } => {
                connection.execute(
                    "INSERT INTO bans (room, user_name, banned_by, banned_at) VALUES (?1, ?2, ?3, ?4)",
                    params![room, user, by, at],
                )?;
            }
            Record::Message {
                room,
                seq,
                sender,
                text,
                sent_at,
                key,
                change,
                deleted,
                reply_to,
                mentions,
                edited_at,
                reactions,
                files,
            } => {
                let target = change.as_ref().and_then(RoomChange::message).map(clamp);
                let change = change
                    .as_ref()
                    .map(|change| serde_json::to_string(change).expect("changes serialize"));
                connection.execute(
                    "INSERT INTO messages (room, seq, sender, text, sent_at, idempotency_key, change, deleted,
                         target, reply_to, mentions, edited_at, reactions, files)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    params![
                        room,
                        clamp(*seq),
                        sender,
                        text,
                        sent_at,
                        key,
                        change,
                        deleted,
                        target,
                        reply_to.map(clamp),
                        mentions_column(mentions),
                        edited_at,
                        reactions_column(reactions),
                        files_column(files)
                    ],
                )?;
            }
            Record::Inbox { owner, last_seq } => {
                connection.execute(
                    "INSERT INTO inboxes (owner, last_seq) VALUES (?1, ?2)",
                    params![owner, clamp(*last_seq)],
                )?;
            }
            Record::Dm {
                owner,
                seq,
                peer,
                sender,
                recipient,
                text,
                sent_at,
                key,
                change,
                deleted,
                edited_at,
                reactions,
                pair_seq,
                files,
            } => {
                let target = change.as_ref().and_then(RoomChange::message).map(clamp);
                let change = change
                    .as_ref()
                    .map(|change| serde_json::to_string(change).expect("changes serialize"));
                connection.execute(
                    "INSERT INTO direct_messages (owner, seq, peer, sender, recipient, text, sent_at, idempotency_key,
                         change, deleted, edited_at, reactions, target, pair_seq, files)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                    params![
                        owner,
                        clamp(*seq),
                        peer,
                        sender,
                        recipient,
                        text,
                        sent_at,
                        key,
                        change,
                        deleted,
                        edited_at,
                        reactions_column(reactions),
                        target,
                        pair_seq.map(clamp),
                        files_column(files)
                    ],
                )?;
            }
            Record::DmRead { owner, peer, last_read } => {
                connection.execute(
                    "INSERT INTO dm_reads (owner, peer, last_read) VALUES (?1, ?2, ?3)",
                    params![owner, peer, clamp(*last_read)],
                )?;
            }
            Record::Webhook { id, room, name, secret_hash, created_by, created_at } => {
                connection.execute(
                    "INSERT INTO webhooks (id, room, bot_name, secret_hash, created_by, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, room, name, secret_hash, created_by, created_at],
                )?;
            }
            Record::Link {
                code_hash,
                id,
                link,
                user,
                created_by,
                created_at,
                expires_at,
                max_uses,
                uses,
                revoked,
            } => {
                connection.execute(
                    "INSERT INTO links (code_hash, id, kind, user_name, created_by, created_at,
                         expires_at, max_uses, uses, revoked)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        code_hash, id, link, user, created_by, created_at, expires_at, max_uses,
                        uses, revoked
                    ],
                )?;
            }
            Record::File { attachment, owner, created_at, thumb, sent, room, peer, avatar } => {
                let Attachment { id, name, mime, size, image } = attachment;
                connection.execute(
                    "INSERT INTO files (id, owner, name, mime, size, width, height, thumb, created_at,
                         sent, room, peer, avatar)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        id,
                        owner,
                        name,
                        mime,
                        size,
                        image.map(|(width, _)| width),
                        image.map(|(_, height)| height),
                        thumb,
                        created_at,
                        sent,
                        room,
                        peer,
                        avatar
                    ],
                )?;
            }
            // Bytes: written to disk by the store before the rows (`SqliteStore::import`).
            Record::FilePart { .. } => {}
        }
    }
    Ok(())
}

// Incoming webhooks.

pub(super) fn create_webhook(
    connection: &Connection,
    hook: &NewHook,
    now: Millis,
) -> Result<(), StoreError> {
    require_room(connection, &hook.room)?;
    create_bot(connection, &hook.name, now)?;
    add_member(connection, &hook.room, &hook.name, Role::Member)?;
    connection.execute(
        "INSERT INTO webhooks (id, room, bot_name, secret_hash, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![hook.id, hook.room, hook.name, hook.secret_hash, hook.created_by, now],
    )?;
    Ok(())
}

fn webhook_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: row.get(0)?,
        room: row.get(1)?,
        name: row.get(2)?,
        created_by: row.get(3)?,
        created_at: row.get(4)?,
        path: None,
    })
}

pub(super) fn webhooks(connection: &Connection, room: &str) -> Result<Vec<Webhook>, StoreError> {
    require_room(connection, room)?;
    let mut statement = connection.prepare_cached(
        "SELECT id, room, bot_name, created_by, created_at FROM webhooks WHERE room = ?1
         ORDER BY created_at, id",
    )?;
    let rows = statement.query_map(params![room], webhook_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn delete_webhook(
    connection: &Connection,
    room: &str,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(connection.execute("DELETE FROM webhooks WHERE room = ?1 AND id = ?2", params![room, id])?
        > 0)
}

pub(super) fn webhook(
    connection: &Connection,
    secret_hash: &str,
) -> Result<Option<Webhook>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT id, room, bot_name, created_by, created_at FROM webhooks WHERE secret_hash = ?1",
            params![secret_hash],
            webhook_row,
        )
        .optional()?)
}
