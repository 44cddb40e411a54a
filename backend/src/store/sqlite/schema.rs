//! The embedded store's schema and its migrations; `PRAGMA user_version` records how many
//! have run.

use rusqlite::{Connection, params};
use shared::chat::LOBBY;

use crate::store::StoreError;

/// The migrations, in order.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 3: tokens expire (security review M10); those issued before live 30 days more.
    "ALTER TABLE tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
    UPDATE tokens SET expires_at = CAST(unixepoch('subsec') * 1000 AS INTEGER) + 30 * 86400000;
    CREATE INDEX tokens_by_user ON tokens(user_name);
    CREATE INDEX rooms_by_creator ON rooms(created_by);
    CREATE TABLE space_probe (filler BLOB);",
    // 4: bots and incoming webhooks.
    "ALTER TABLE users ADD COLUMN bot INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        room TEXT NOT NULL REFERENCES rooms(name),
        bot_name TEXT NOT NULL REFERENCES users(name),
        secret_hash TEXT NOT NULL UNIQUE,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX webhooks_by_room ON webhooks(room, created_at);",
    // 5: admins, deactivation, display names; sessions' devices; invitation and reset
    // links; private and archived rooms, roles, bans and mutes; changes in the stream. The
    // oldest person becomes the admin of a server that had none.
    "ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN deactivated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN display_name TEXT;
    ALTER TABLE users ADD COLUMN last_active INTEGER;
    UPDATE users SET last_active = (SELECT MAX(t.created_at) FROM tokens t WHERE t.user_name = users.name);
    UPDATE users SET admin = 1 WHERE name =
        (SELECT name FROM users WHERE bot = 0 ORDER BY created_at, name LIMIT 1);
    ALTER TABLE tokens ADD COLUMN device TEXT NOT NULL DEFAULT '';
    ALTER TABLE tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
    UPDATE tokens SET last_used_at = created_at;
    CREATE TABLE links (
        code_hash TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        user_name TEXT,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        max_uses INTEGER NOT NULL,
        uses INTEGER NOT NULL DEFAULT 0,
        revoked INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    ALTER TABLE rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN title TEXT NOT NULL DEFAULT '';
    ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';
    ALTER TABLE memberships ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
    ALTER TABLE memberships ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;
    UPDATE memberships SET role = 'owner'
        WHERE user_name = (SELECT created_by FROM rooms WHERE rooms.name = memberships.room);
    CREATE TABLE bans (
        room TEXT NOT NULL REFERENCES rooms(name),
        user_name TEXT NOT NULL,
        banned_by TEXT NOT NULL,
        banned_at INTEGER NOT NULL,
        PRIMARY KEY (room, user_name)
    ) WITHOUT ROWID;
    ALTER TABLE messages ADD COLUMN change TEXT;
    ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;",
    // 6: replies, mentions, edits and reactions. A change entry about a message (an edit,
    // a reaction, a deletion) names it in `target`, so that deleting a message finds the
    // edits that carry its old text. Each copy of a direct message knows the other's id
    // (`pair_seq`), so that a change reaches both inboxes.
    "ALTER TABLE messages ADD COLUMN reply_to INTEGER;
    ALTER TABLE messages ADD COLUMN mentions TEXT;
    ALTER TABLE messages ADD COLUMN edited_at INTEGER;
    ALTER TABLE messages ADD COLUMN reactions TEXT;
    ALTER TABLE messages ADD COLUMN target INTEGER;
    UPDATE messages SET target = json_extract(change, '$.seq')
        WHERE json_extract(change, '$.type') = 'deleted';
    CREATE INDEX messages_by_target ON messages(room, target) WHERE target IS NOT NULL;
    ALTER TABLE direct_messages ADD COLUMN change TEXT;
    ALTER TABLE direct_messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE direct_messages ADD COLUMN edited_at INTEGER;
    ALTER TABLE direct_messages ADD COLUMN reactions TEXT;
    ALTER TABLE direct_messages ADD COLUMN target INTEGER;
    ALTER TABLE direct_messages ADD COLUMN pair_seq INTEGER;
    CREATE INDEX pairing ON direct_messages(owner, peer, sent_at);
    UPDATE direct_messages SET pair_seq = (SELECT o.seq FROM direct_messages o
        WHERE o.owner = direct_messages.peer AND o.peer = direct_messages.owner
          AND o.sent_at = direct_messages.sent_at AND o.sender = direct_messages.sender
          AND o.text = direct_messages.text ORDER BY o.seq LIMIT 1)
        WHERE owner <> peer;
    DROP INDEX pairing;
    CREATE INDEX direct_messages_by_target ON direct_messages(owner, target) WHERE target IS NOT NULL;",
    // 7: full-text search. `search_docs` numbers every searchable message (a room's, or a
    // copy in an inbox) in the order it was said; `search` is its FTS5 index of words.
    // Triggers keep both in step with the messages, in the same transaction: an edit
    // replaces the words, a deletion removes them. Change entries are not searchable.
    "CREATE TABLE search_docs (
        id INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        owner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        sent_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX search_docs_by_message ON search_docs(room, owner, seq);
    CREATE INDEX search_docs_by_time ON search_docs(sent_at);
    CREATE VIRTUAL TABLE search USING fts5(body, content='', contentless_delete=1,
        tokenize='unicode61 remove_diacritics 2');
    CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
    WHEN NEW.change IS NULL AND NEW.deleted = 0 BEGIN
        INSERT INTO search_docs (room, owner, seq, sent_at) VALUES (NEW.room, '', NEW.seq, NEW.sent_at);
        INSERT INTO search (rowid, body)
            VALUES (last_insert_rowid(), NEW.text);
    END;
    CREATE TRIGGER messages_search_update AFTER UPDATE OF text, deleted ON messages
    WHEN NEW.change IS NULL BEGIN
        DELETE FROM search WHERE rowid =
            (SELECT id FROM search_docs WHERE room = OLD.room AND owner = '' AND seq = OLD.seq);
        INSERT INTO search (rowid, body)
            SELECT id, NEW.text FROM search_docs
            WHERE room = NEW.room AND owner = '' AND seq = NEW.seq AND NEW.deleted = 0;
        DELETE FROM search_docs
            WHERE room = OLD.room AND owner = '' AND seq = OLD.seq AND NEW.deleted <> 0;
    END;
    CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
        DELETE FROM search WHERE rowid =
            (SELECT id FROM search_docs WHERE room = OLD.room AND owner = '' AND seq = OLD.seq);
        DELETE FROM search_docs WHERE room = OLD.room AND owner = '' AND seq = OLD.seq;
    END;
    CREATE TRIGGER direct_messages_search_insert AFTER INSERT ON direct_messages
    WHEN NEW.change IS NULL AND NEW.deleted = 0 BEGIN
        INSERT INTO search_docs (room, owner, seq, sent_at) VALUES ('', NEW.owner, NEW.seq, NEW.sent_at);
        INSERT INTO search (rowid, body)
            VALUES (last_insert_rowid(), NEW.text);
    END;
    CREATE TRIGGER direct_messages_search_update AFTER UPDATE OF text, deleted ON direct_messages
    WHEN NEW.change IS NULL BEGIN
        DELETE FROM search WHERE rowid =
            (SELECT id FROM search_docs WHERE room = '' AND owner = OLD.owner AND seq = OLD.seq);
        INSERT INTO search (rowid, body)
            SELECT id, NEW.text FROM search_docs
            WHERE room = '' AND owner = NEW.owner AND seq = NEW.seq AND NEW.deleted = 0;
        DELETE FROM search_docs
            WHERE room = '' AND owner = OLD.owner AND seq = OLD.seq AND NEW.deleted <> 0;
    END;
    CREATE TRIGGER direct_messages_search_delete AFTER DELETE ON direct_messages BEGIN
        DELETE FROM search WHERE rowid =
            (SELECT id FROM search_docs WHERE room = '' AND owner = OLD.owner AND seq = OLD.seq);
        DELETE FROM search_docs WHERE room = '' AND owner = OLD.owner AND seq = OLD.seq;
    END;
    INSERT INTO search_docs (room, owner, seq, sent_at)
        SELECT room, owner, seq, sent_at FROM (
            SELECT room, '' AS owner, seq, sent_at FROM messages WHERE change IS NULL AND deleted = 0
            UNION ALL
            SELECT '', owner, seq, sent_at FROM direct_messages WHERE change IS NULL AND deleted = 0)
        ORDER BY sent_at;
    INSERT INTO search (rowid, body)
        SELECT d.id, m.text
        FROM search_docs d JOIN messages m ON m.room = d.room AND m.seq = d.seq WHERE d.owner = '';
    INSERT INTO search (rowid, body)
        SELECT d.id, m.text
        FROM search_docs d JOIN direct_messages m ON m.owner = d.owner AND m.seq = d.seq
        WHERE d.room = '';",
    // 8: files. A file's bytes live on disk beside the store (`files/`); its row says who
    // may read it: its uploader until it is sent, then the readers of the room (`room`)
    // or the two people of the conversation (`owner` and `peer`), or every signed-in
    // person for a picture (`avatar`). A message lists its files in `files` (JSON). When a
    // row goes (its message deleted, never sent, an avatar replaced), the trigger queues
    // its id in `files_gone`, whose bytes the collector removes after the commit.
    "CREATE TABLE files (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        mime TEXT NOT NULL,
        size INTEGER NOT NULL,
        width INTEGER,
        height INTEGER,
        thumb INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        sent INTEGER NOT NULL DEFAULT 0,
        room TEXT,
        peer TEXT,
        avatar INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX files_unsent ON files(created_at) WHERE sent = 0;
    CREATE TABLE files_gone (id TEXT NOT NULL);
    CREATE TRIGGER files_delete AFTER DELETE ON files BEGIN
        INSERT INTO files_gone (id) VALUES (OLD.id);
    END;
    ALTER TABLE messages ADD COLUMN files TEXT;
    ALTER TABLE direct_messages ADD COLUMN files TEXT;
    ALTER TABLE users ADD COLUMN avatar TEXT;",
];

/// Brings the schema of `connection` up to date.
pub(super) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let done: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if done > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
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
