//! The embedded store's schema, migrations and queries: plain functions over a
//! `rusqlite::Connection`, with no threads or async here.
//!
//! Every write that touches more than one row runs in one transaction, so a crash leaves
//! the file either before or after it, never between.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use shared::api::{DmSummary, RoomSummary};
use shared::chat::{ChatMessage, DirectMessage, LOBBY, Millis};

use super::{EngineError, Posted};

/// The migrations, in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, rooms, history, direct messages.
    "CREATE TABLE users (
        name TEXT PRIMARY KEY COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users(name),
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE rooms (
        name TEXT PRIMARY KEY,
        created_by TEXT,
        created_at INTEGER NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE memberships (
        room TEXT NOT NULL REFERENCES rooms(name),
        user_name TEXT NOT NULL,
        last_read INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (room, user_name)
    ) WITHOUT ROWID;
    CREATE INDEX memberships_by_user ON memberships(user_name);
    CREATE TABLE messages (
        room TEXT NOT NULL,
        seq INTEGER NOT NULL,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        idempotency_key TEXT,
        PRIMARY KEY (room, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX messages_once ON messages(room, sender, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE inboxes (
        owner TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE direct_messages (
        owner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        peer TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        idempotency_key TEXT,
        PRIMARY KEY (owner, seq)
    ) WITHOUT ROWID;
    CREATE INDEX direct_messages_by_peer ON direct_messages(owner, peer, seq);
    CREATE UNIQUE INDEX direct_messages_once ON direct_messages(owner, sender, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE dm_reads (
        owner TEXT NOT NULL,
        peer TEXT NOT NULL,
        last_read INTEGER NOT NULL,
        PRIMARY KEY (owner, peer)
    ) WITHOUT ROWID;",
    // 2: a DM's idempotency key is scoped to its conversation (security review M7): the
    // same key sent to two people is two messages.
    "DROP INDEX direct_messages_once;
    CREATE UNIQUE INDEX direct_messages_once
        ON direct_messages(owner, sender, peer, idempotency_key)
        WHERE idempotency_key IS NOT NULL;",
];

/// Opens (creating if needed) the store at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection, EngineError> {
    let mut connection = Connection::open(path)?;
    configure(&connection)?;
    migrate(&mut connection)?;
    Ok(connection)
}

/// Opens another connection to an existing store, for reading.
pub fn open_reader(path: &Path) -> Result<Connection, EngineError> {
    let connection = Connection::open(path)?;
    configure(&connection)?;
    Ok(connection)
}

fn configure(connection: &Connection) -> Result<(), EngineError> {
    // WAL lets readers run beside the one writer; NORMAL syncs at checkpoints, which WAL
    // makes safe against corruption (a power cut may lose the last moments, never the file).
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn migrate(connection: &mut Connection) -> Result<(), EngineError> {
    let done: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if done > MIGRATIONS.len() {
        return Err(EngineError::Corrupt(format!(
            "the store has schema version {done}, newer than this confab ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = connection.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        if index == 0 {
            tx.execute(
                "INSERT INTO rooms (name, created_by, created_at) VALUES (?1, NULL, 0)",
                params![LOBBY],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

// Accounts.

/// Adds a user, a member of the lobby; `Conflict` if the name is taken.
pub fn create_user(
    connection: &mut Connection,
    name: &str,
    password_hash: &str,
    now: Millis,
) -> Result<(), EngineError> {
    let tx = connection.transaction()?;
    let inserted = tx.execute(
        "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![name, password_hash, now],
    )?;
    if inserted == 0 {
        return Err(EngineError::Conflict(format!("the name {name:?} is taken")));
    }
    join_room_in(&tx, LOBBY, name)?;
    tx.commit()?;
    Ok(())
}

/// The stored password hash of a user.
pub fn password_hash(connection: &Connection, name: &str) -> Result<Option<String>, EngineError> {
    Ok(connection
        .query_row("SELECT password_hash FROM users WHERE name = ?1", params![name], |row| {
            row.get(0)
        })
        .optional()?)
}

/// Whether a user exists.
pub fn user_exists(connection: &Connection, name: &str) -> Result<bool, EngineError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
        params![name],
        |row| row.get(0),
    )?)
}

/// Records a session token (its hash) for a user.
pub fn store_token(
    connection: &Connection,
    token_hash: &str,
    name: &str,
    now: Millis,
) -> Result<(), EngineError> {
    connection.execute(
        "INSERT INTO tokens (token_hash, user_name, created_at) VALUES (?1, ?2, ?3)",
        params![token_hash, name, now],
    )?;
    Ok(())
}

/// The user a token belongs to.
pub fn token_user(
    connection: &Connection,
    token_hash: &str,
) -> Result<Option<String>, EngineError> {
    Ok(connection
        .query_row(
            "SELECT user_name FROM tokens WHERE token_hash = ?1",
            params![token_hash],
            |row| row.get(0),
        )
        .optional()?)
}

/// Deletes a token.
pub fn revoke_token(connection: &Connection, token_hash: &str) -> Result<(), EngineError> {
    connection.execute("DELETE FROM tokens WHERE token_hash = ?1", params![token_hash])?;
    Ok(())
}

// Rooms.

/// Creates a room and makes its creator a member; `Conflict` if it exists.
pub fn create_room(
    connection: &mut Connection,
    name: &str,
    creator: &str,
    now: Millis,
) -> Result<(), EngineError> {
    let tx = connection.transaction()?;
    let inserted = tx.execute(
        "INSERT INTO rooms (name, created_by, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![name, creator, now],
    )?;
    if inserted == 0 {
        return Err(EngineError::Conflict(format!("a room named {name:?} already exists")));
    }
    join_room_in(&tx, name, creator)?;
    tx.commit()?;
    Ok(())
}

/// How many rooms `user` has created.
pub fn rooms_created_by(connection: &Connection, user: &str) -> Result<u64, EngineError> {
    Ok(connection.query_row(
        "SELECT COUNT(*) FROM rooms WHERE created_by = ?1",
        params![user],
        |row| row.get(0),
    )?)
}

/// Whether a room exists.
pub fn room_exists(connection: &Connection, name: &str) -> Result<bool, EngineError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM rooms WHERE name = ?1)",
        params![name],
        |row| row.get(0),
    )?)
}

fn require_room(connection: &Connection, name: &str) -> Result<(), EngineError> {
    if room_exists(connection, name)? {
        Ok(())
    } else {
        Err(EngineError::NotFound(format!("no room named {name:?}")))
    }
}

fn join_room_in(tx: &Transaction<'_>, room: &str, user: &str) -> Result<(), EngineError> {
    // A new member has read nothing that came before: start the marker at the present.
    tx.execute(
        "INSERT INTO memberships (room, user_name, last_read)
         SELECT ?1, ?2, last_seq FROM rooms WHERE name = ?1
         ON CONFLICT DO NOTHING",
        params![room, user],
    )?;
    Ok(())
}

/// Whether `user` is a member of `room`.
pub fn is_member(connection: &Connection, room: &str, user: &str) -> Result<bool, EngineError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE room = ?1 AND user_name = ?2)",
        params![room, user],
        |row| row.get(0),
    )?)
}

/// Makes `user` a member of `room` (no-op if already one).
pub fn join_room(connection: &mut Connection, room: &str, user: &str) -> Result<(), EngineError> {
    let tx = connection.transaction()?;
    require_room(&tx, room)?;
    join_room_in(&tx, room, user)?;
    tx.commit()?;
    Ok(())
}

/// Ends `user`'s membership of `room`.
pub fn leave_room(connection: &Connection, room: &str, user: &str) -> Result<(), EngineError> {
    require_room(connection, room)?;
    connection.execute(
        "DELETE FROM memberships WHERE room = ?1 AND user_name = ?2",
        params![room, user],
    )?;
    Ok(())
}

/// Every room, with member counts and `user`'s unread counts.
pub fn rooms_for(connection: &Connection, user: &str) -> Result<Vec<RoomSummary>, EngineError> {
    let mut statement = connection.prepare_cached(
        "SELECT r.name, r.last_seq,
                (SELECT COUNT(*) FROM memberships m WHERE m.room = r.name),
                mine.last_read
         FROM rooms r LEFT JOIN memberships mine ON mine.room = r.name AND mine.user_name = ?1
         ORDER BY r.name",
    )?;
    let rows = statement.query_map(params![user], |row| {
        let last_seq: u64 = row.get(1)?;
        let last_read: Option<u64> = row.get(3)?;
        Ok(RoomSummary {
            name: row.get(0)?,
            members: row.get(2)?,
            joined: last_read.is_some(),
            last_seq,
            unread: last_read.map_or(0, |read| last_seq.saturating_sub(read)),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Moves `user`'s read marker in `room` forward to `seq` (never backward).
pub fn mark_room_read(
    connection: &Connection,
    room: &str,
    user: &str,
    seq: u64,
) -> Result<(), EngineError> {
    connection.execute(
        "UPDATE memberships SET last_read = MAX(last_read, MIN(?3, (SELECT last_seq FROM rooms WHERE name = ?1)))
         WHERE room = ?1 AND user_name = ?2",
        params![room, user, seq],
    )?;
    Ok(())
}

// Room messages.

/// Stores a room message with the next id, or finds the one stored earlier under the same
/// idempotency key. The room must exist.
pub fn post_room(
    connection: &mut Connection,
    room: &str,
    sender: &str,
    text: &str,
    key: Option<&str>,
    now: Millis,
) -> Result<Posted<ChatMessage>, EngineError> {
    let tx = connection.transaction()?;
    if let Some(key) = key {
        let earlier = tx
            .query_row(
                "SELECT seq, text, sent_at FROM messages WHERE room = ?1 AND sender = ?2 AND idempotency_key = ?3",
                params![room, sender, key],
                |row| {
                    Ok(ChatMessage {
                        seq: row.get(0)?,
                        room: room.to_owned(),
                        sender: sender.to_owned(),
                        text: row.get(1)?,
                        sent_at: row.get(2)?,
                    })
                },
            )
            .optional()?;
        if let Some(message) = earlier {
            return Ok(Posted { message, duplicate: true });
        }
    }
    let seq: u64 = tx
        .query_row(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE name = ?1 RETURNING last_seq",
            params![room],
            |row| row.get(0),
        )
        .optional()?
        .ok_or_else(|| EngineError::NotFound(format!("no room named {room:?}")))?;
    tx.execute(
        "INSERT INTO messages (room, seq, sender, text, sent_at, idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![room, seq, sender, text, now, key],
    )?;
    tx.commit()?;
    let message = ChatMessage {
        seq,
        room: room.to_owned(),
        sender: sender.to_owned(),
        text: text.to_owned(),
        sent_at: now,
    };
    Ok(Posted { message, duplicate: false })
}

/// Room messages with `after < seq`, oldest first, at most `limit`.
pub fn room_after(
    connection: &Connection,
    room: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<ChatMessage>, EngineError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, sender, text, sent_at FROM messages WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows =
        statement.query_map(params![room, after, limit as i64], |row| room_message(room, row))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest `limit` room messages before `before` (all if `None`), oldest first.
pub fn room_before(
    connection: &Connection,
    room: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<ChatMessage>, EngineError> {
    require_room(connection, room)?;
    let mut statement = connection.prepare_cached(
        "SELECT seq, sender, text, sent_at FROM messages WHERE room = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    )?;
    let before = before.map_or(i64::MAX, |seq| seq.min(i64::MAX as u64) as i64);
    let rows =
        statement.query_map(params![room, before, limit as i64], |row| room_message(room, row))?;
    let mut messages: Vec<ChatMessage> = rows.collect::<Result<_, _>>()?;
    messages.reverse();
    Ok(messages)
}

fn room_message(room: &str, row: &rusqlite::Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        seq: row.get(0)?,
        room: room.to_owned(),
        sender: row.get(1)?,
        text: row.get(2)?,
        sent_at: row.get(3)?,
    })
}

// Direct messages: each participant's inbox holds its own copy, numbered in that inbox.

/// Stores a direct message in the sender's and the recipient's inboxes (once for a note
/// to oneself). Returns both copies, the sender's first.
pub fn post_dm(
    connection: &mut Connection,
    from: &str,
    to: &str,
    text: &str,
    key: Option<&str>,
    now: Millis,
) -> Result<Posted<Vec<DirectMessage>>, EngineError> {
    let tx = connection.transaction()?;
    if let Some(key) = key {
        let mut statement = tx.prepare_cached(
            "SELECT owner, seq, sent_at, text FROM direct_messages WHERE sender = ?1 AND idempotency_key = ?2
             AND owner IN (?1, ?3) AND peer = CASE owner WHEN ?1 THEN ?3 ELSE ?1 END ORDER BY owner = ?1 DESC",
        )?;
        let copies = statement
            .query_map(params![from, key, to], |row| {
                Ok(DirectMessage {
                    seq: row.get(1)?,
                    from: from.to_owned(),
                    to: to.to_owned(),
                    text: row.get(3)?,
                    sent_at: row.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if !copies.is_empty() {
            return Ok(Posted { message: copies, duplicate: true });
        }
    }
    let owners: &[&str] = if from == to { &[from] } else { &[from, to] };
    let mut copies = Vec::with_capacity(owners.len());
    for owner in owners {
        let seq: u64 = tx.query_row(
            "INSERT INTO inboxes (owner, last_seq) VALUES (?1, 1)
             ON CONFLICT (owner) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
            params![owner],
            |row| row.get(0),
        )?;
        let peer = if *owner == from { to } else { from };
        tx.execute(
            "INSERT INTO direct_messages (owner, seq, peer, sender, recipient, text, sent_at, idempotency_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![owner, seq, peer, from, to, text, now, key],
        )?;
        copies.push(DirectMessage {
            seq,
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            sent_at: now,
        });
    }
    tx.commit()?;
    Ok(Posted { message: copies, duplicate: false })
}

/// Inbox messages of `owner` with `after < seq`, oldest first, at most `limit`.
pub fn inbox_after(
    connection: &Connection,
    owner: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<DirectMessage>, EngineError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, sender, recipient, text, sent_at FROM direct_messages WHERE owner = ?1 AND seq > ?2
         ORDER BY seq LIMIT ?3",
    )?;
    let rows = statement.query_map(params![owner, after, limit as i64], direct_message)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest `limit` messages between `owner` and `peer` before `before`, oldest first.
pub fn conversation_before(
    connection: &Connection,
    owner: &str,
    peer: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<DirectMessage>, EngineError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, sender, recipient, text, sent_at FROM direct_messages WHERE owner = ?1 AND peer = ?2 AND seq < ?3
         ORDER BY seq DESC LIMIT ?4",
    )?;
    let before = before.map_or(i64::MAX, |seq| seq.min(i64::MAX as u64) as i64);
    let rows = statement.query_map(params![owner, peer, before, limit as i64], direct_message)?;
    let mut messages: Vec<DirectMessage> = rows.collect::<Result<_, _>>()?;
    messages.reverse();
    Ok(messages)
}

/// The latest inbox id of `owner` (0 if the inbox is empty).
pub fn inbox_last_seq(connection: &Connection, owner: &str) -> Result<u64, EngineError> {
    Ok(connection
        .query_row("SELECT last_seq FROM inboxes WHERE owner = ?1", params![owner], |row| {
            row.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

/// The latest id of a room (0 if it has no messages).
pub fn room_last_seq(connection: &Connection, room: &str) -> Result<u64, EngineError> {
    Ok(connection
        .query_row("SELECT last_seq FROM rooms WHERE name = ?1", params![room], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

fn direct_message(row: &rusqlite::Row<'_>) -> rusqlite::Result<DirectMessage> {
    Ok(DirectMessage {
        seq: row.get(0)?,
        from: row.get(1)?,
        to: row.get(2)?,
        text: row.get(3)?,
        sent_at: row.get(4)?,
    })
}

/// `owner`'s conversations, most recent first.
pub fn dm_summaries(connection: &Connection, owner: &str) -> Result<Vec<DmSummary>, EngineError> {
    let mut statement = connection.prepare_cached(
        "SELECT d.peer, MAX(d.seq),
                SUM(d.sender = d.peer AND d.seq > COALESCE(r.last_read, 0))
         FROM direct_messages d LEFT JOIN dm_reads r ON r.owner = d.owner AND r.peer = d.peer
         WHERE d.owner = ?1 GROUP BY d.peer ORDER BY MAX(d.seq) DESC",
    )?;
    let rows = statement.query_map(params![owner], |row| {
        Ok(DmSummary { peer: row.get(0)?, last_seq: row.get(1)?, unread: row.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Moves `owner`'s read marker for the conversation with `peer` forward to `seq`.
pub fn mark_dm_read(
    connection: &Connection,
    owner: &str,
    peer: &str,
    seq: u64,
) -> Result<(), EngineError> {
    connection.execute(
        "INSERT INTO dm_reads (owner, peer, last_read) VALUES (?1, ?2, ?3)
         ON CONFLICT (owner, peer) DO UPDATE SET last_read = MAX(last_read, excluded.last_read)",
        params![owner, peer, seq],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let connection = open(&dir.path().join("confab.db")).unwrap();
        (dir, connection)
    }

    #[test]
    fn migrations_are_idempotent_and_create_the_lobby() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confab.db");
        drop(open(&path).unwrap());
        let connection = open(&path).unwrap();
        assert!(room_exists(&connection, LOBBY).unwrap());
        let version: usize =
            connection.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    #[test]
    fn one_dm_key_sent_to_two_people_is_two_messages() {
        let (_dir, mut connection) = store();
        assert!(!post_dm(&mut connection, "ann", "bob", "hi", Some("1"), 1).unwrap().duplicate);
        assert!(!post_dm(&mut connection, "ann", "carl", "hi", Some("1"), 2).unwrap().duplicate);
        assert!(post_dm(&mut connection, "ann", "carl", "hi", Some("1"), 3).unwrap().duplicate);
        assert_eq!(inbox_after(&connection, "carl", 0, 10).unwrap().len(), 1);
        assert_eq!(inbox_after(&connection, "ann", 0, 10).unwrap().len(), 2);
    }

    #[test]
    fn room_ids_increase_without_gaps_and_keys_deduplicate() {
        let (_dir, mut connection) = store();
        let first = post_room(&mut connection, LOBBY, "ann", "one", Some("k1"), 1).unwrap();
        let second = post_room(&mut connection, LOBBY, "ann", "two", None, 2).unwrap();
        let again =
            post_room(&mut connection, LOBBY, "ann", "one (resent)", Some("k1"), 3).unwrap();
        let other_sender =
            post_room(&mut connection, LOBBY, "bob", "three", Some("k1"), 4).unwrap();
        assert_eq!((first.message.seq, second.message.seq, other_sender.message.seq), (1, 2, 3));
        assert!(again.duplicate);
        assert_eq!((again.message.seq, again.message.text.as_str()), (1, "one"));
        let texts: Vec<String> =
            room_after(&connection, LOBBY, 0, 10).unwrap().into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        let page = room_before(&connection, LOBBY, Some(3), 1).unwrap();
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn a_failed_post_leaves_nothing_behind() {
        let (_dir, mut connection) = store();
        assert!(matches!(
            post_room(&mut connection, "nowhere", "ann", "x", None, 1),
            Err(EngineError::NotFound(_))
        ));
        let count: u64 =
            connection.query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0)).unwrap();
        assert_eq!(count, 0);
    }

    #[test]
    fn direct_messages_land_in_both_inboxes() {
        let (_dir, mut connection) = store();
        post_dm(&mut connection, "ann", "bob", "hi bob", Some("a"), 1).unwrap();
        post_dm(&mut connection, "bob", "ann", "hi ann", None, 2).unwrap();
        let copies = post_dm(&mut connection, "ann", "bob", "hi bob", Some("a"), 3).unwrap();
        assert!(copies.duplicate);
        assert_eq!(copies.message.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 1]);
        assert_eq!(inbox_after(&connection, "bob", 0, 10).unwrap().len(), 2);
        let summaries = dm_summaries(&connection, "ann").unwrap();
        assert_eq!(summaries, [DmSummary { peer: "bob".into(), last_seq: 2, unread: 1 }]);
        mark_dm_read(&connection, "ann", "bob", 2).unwrap();
        assert_eq!(dm_summaries(&connection, "ann").unwrap()[0].unread, 0);
    }

    #[test]
    fn unread_counts_follow_the_read_marker() {
        let (_dir, mut connection) = store();
        create_room(&mut connection, "dev", "ann", 0).unwrap();
        assert!(matches!(
            create_room(&mut connection, "dev", "bob", 0),
            Err(EngineError::Conflict(_))
        ));
        for n in 0..3 {
            post_room(&mut connection, "dev", "bob", &format!("m{n}"), None, n).unwrap();
        }
        let dev = |connection: &Connection| {
            rooms_for(connection, "ann")
                .unwrap()
                .into_iter()
                .find(|room| room.name == "dev")
                .unwrap()
        };
        assert_eq!((dev(&connection).unread, dev(&connection).members), (3, 1));
        mark_room_read(&connection, "dev", "ann", 2).unwrap();
        mark_room_read(&connection, "dev", "ann", 1).unwrap();
        assert_eq!(dev(&connection).unread, 1);
        join_room(&mut connection, "dev", "bob").unwrap();
        assert_eq!(dev(&connection).members, 2);
    }
}
