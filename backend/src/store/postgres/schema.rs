//! The PostgreSQL schema and its migrations. `confab_schema` records how many have run;
//! nodes that start together take an advisory lock, so each migration runs once.

use tokio_postgres::Client;

use crate::store::StoreError;

/// Any number: the key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x636f_6e66_6162;

/// The migrations, in order.
const MIGRATIONS: &[&str] = &[
    // 1: the embedded store's schema at its migration 3, in PostgreSQL's types.
    "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users(name),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX tokens_by_user ON tokens(user_name);
    CREATE TABLE rooms (
        name TEXT PRIMARY KEY,
        created_by TEXT,
        created_at BIGINT NOT NULL,
        last_seq BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX rooms_by_creator ON rooms(created_by);
    CREATE TABLE memberships (
        room TEXT NOT NULL REFERENCES rooms(name),
        user_name TEXT NOT NULL,
        last_read BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (room, user_name)
    );
    CREATE INDEX memberships_by_user ON memberships(user_name);
    CREATE TABLE messages (
        room TEXT NOT NULL,
        seq BIGINT NOT NULL,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        sent_at BIGINT NOT NULL,
        idempotency_key TEXT,
        PRIMARY KEY (room, seq)
    );
    CREATE UNIQUE INDEX messages_once ON messages(room, sender, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE inboxes (
        owner TEXT PRIMARY KEY,
        last_seq BIGINT NOT NULL
    );
    CREATE TABLE direct_messages (
        owner TEXT NOT NULL,
        seq BIGINT NOT NULL,
        peer TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        sent_at BIGINT NOT NULL,
        idempotency_key TEXT,
        PRIMARY KEY (owner, seq)
    );
    CREATE INDEX direct_messages_by_peer ON direct_messages(owner, peer, seq);
    CREATE UNIQUE INDEX direct_messages_once
        ON direct_messages(owner, sender, peer, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE dm_reads (
        owner TEXT NOT NULL,
        peer TEXT NOT NULL,
        last_read BIGINT NOT NULL,
        PRIMARY KEY (owner, peer)
    );
    INSERT INTO rooms (name, created_by, created_at) VALUES ('lobby', NULL, 0);",
    // 2: bots and incoming webhooks (the embedded store's migration 4).
    "ALTER TABLE users ADD COLUMN bot BOOLEAN NOT NULL DEFAULT false;
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        room TEXT NOT NULL REFERENCES rooms(name),
        bot_name TEXT NOT NULL REFERENCES users(name),
        secret_hash TEXT NOT NULL UNIQUE,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX webhooks_by_room ON webhooks(room, created_at);",
    // 3: admins, deactivation, display names, sessions' devices, links, private and
    // archived rooms, roles, bans, mutes, changes in the stream (the embedded store's 5).
    "ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT false;
    ALTER TABLE users ADD COLUMN deactivated BOOLEAN NOT NULL DEFAULT false;
    ALTER TABLE users ADD COLUMN display_name TEXT;
    ALTER TABLE users ADD COLUMN last_active BIGINT;
    UPDATE users SET last_active = (SELECT MAX(t.created_at) FROM tokens t WHERE t.user_name = users.name);
    UPDATE users SET admin = true WHERE name =
        (SELECT name FROM users WHERE NOT bot ORDER BY created_at, name LIMIT 1);
    ALTER TABLE tokens ADD COLUMN device TEXT NOT NULL DEFAULT '';
    ALTER TABLE tokens ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
    UPDATE tokens SET last_used_at = created_at;
    CREATE TABLE links (
        code_hash TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        user_name TEXT,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        max_uses INTEGER NOT NULL,
        uses INTEGER NOT NULL DEFAULT 0,
        revoked BOOLEAN NOT NULL DEFAULT false
    );
    ALTER TABLE rooms ADD COLUMN private BOOLEAN NOT NULL DEFAULT false;
    ALTER TABLE rooms ADD COLUMN archived BOOLEAN NOT NULL DEFAULT false;
    ALTER TABLE rooms ADD COLUMN title TEXT NOT NULL DEFAULT '';
    ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';
    ALTER TABLE memberships ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
    ALTER TABLE memberships ADD COLUMN muted BOOLEAN NOT NULL DEFAULT false;
    UPDATE memberships m SET role = 'owner' FROM rooms r
        WHERE r.name = m.room AND r.created_by = m.user_name;
    CREATE TABLE bans (
        room TEXT NOT NULL REFERENCES rooms(name),
        user_name TEXT NOT NULL,
        banned_by TEXT NOT NULL,
        banned_at BIGINT NOT NULL,
        PRIMARY KEY (room, user_name)
    );
    ALTER TABLE messages ADD COLUMN change TEXT;
    ALTER TABLE messages ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT false;",
    // 4: replies, mentions, edits and reactions; a change entry about a message names it
    // in `target`, and each copy of a direct message knows the other's id (as in the
    // embedded store's migration 6).
    "ALTER TABLE messages ADD COLUMN reply_to BIGINT;
    ALTER TABLE messages ADD COLUMN mentions TEXT;
    ALTER TABLE messages ADD COLUMN edited_at BIGINT;
    ALTER TABLE messages ADD COLUMN reactions TEXT;
    ALTER TABLE messages ADD COLUMN target BIGINT;
    UPDATE messages SET target = (change::jsonb ->> 'seq')::bigint
        WHERE change::jsonb ->> 'type' = 'deleted';
    CREATE INDEX messages_by_target ON messages(room, target) WHERE target IS NOT NULL;
    ALTER TABLE direct_messages ADD COLUMN change TEXT;
    ALTER TABLE direct_messages ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT false;
    ALTER TABLE direct_messages ADD COLUMN edited_at BIGINT;
    ALTER TABLE direct_messages ADD COLUMN reactions TEXT;
    ALTER TABLE direct_messages ADD COLUMN target BIGINT;
    ALTER TABLE direct_messages ADD COLUMN pair_seq BIGINT;
    UPDATE direct_messages d SET pair_seq = o.seq FROM direct_messages o
        WHERE d.owner <> d.peer AND o.owner = d.peer AND o.peer = d.owner
          AND o.sender = d.sender AND o.sent_at = d.sent_at AND o.text = d.text;
    CREATE INDEX direct_messages_by_target ON direct_messages(owner, target) WHERE target IS NOT NULL;",
    // 5: full-text search: each message's words, kept by PostgreSQL itself (a generated
    // column, so an edit or a deletion changes them in its own transaction), under a GIN
    // index. The `simple` configuration: no language's stemming or stop words, as the
    // embedded store's FTS5. Change entries and deleted messages have none. The sender
    // (`@name`) and the room (`#name`) are lexemes too, which no word of a text can be:
    // `from:` and `in:` are then conditions of the index. A BRIN index of the time
    // (messages are stored in the order they are said) lets a search read only the
    // matches of a recent span.
    "ALTER TABLE messages ADD COLUMN words tsvector GENERATED ALWAYS AS
        (CASE WHEN change IS NULL AND NOT deleted THEN to_tsvector('simple', text)
            || array_to_tsvector(ARRAY['@' || sender, '#' || room]) END) STORED;
    CREATE INDEX messages_words ON messages USING GIN (words);
    CREATE INDEX messages_by_time ON messages USING BRIN (sent_at);
    ALTER TABLE direct_messages ADD COLUMN words tsvector GENERATED ALWAYS AS
        (CASE WHEN change IS NULL AND NOT deleted THEN to_tsvector('simple', text)
            || array_to_tsvector(ARRAY['@' || sender]) END) STORED;
    CREATE INDEX direct_messages_words ON direct_messages USING GIN (words);",
    // 6: files, in the database itself (as the embedded store's migration 8, with the
    // bytes in `file_parts`, pieces of at most 256 KiB): every node serves every file
    // with nothing else shared, and a backup of the database is a backup of the files.
    // A row going (its message deleted, never sent, an avatar replaced) takes its bytes
    // with it in the same transaction.
    "CREATE TABLE files (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        mime TEXT NOT NULL,
        size BIGINT NOT NULL,
        width INTEGER,
        height INTEGER,
        thumb BOOLEAN NOT NULL DEFAULT false,
        created_at BIGINT NOT NULL,
        sent BOOLEAN NOT NULL DEFAULT false,
        room TEXT,
        peer TEXT,
        avatar BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX files_unsent ON files(created_at) WHERE NOT sent;
    CREATE TABLE file_parts (
        id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        thumb BOOLEAN NOT NULL,
        part INTEGER NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (id, thumb, part)
    );
    ALTER TABLE file_parts ALTER COLUMN data SET STORAGE EXTERNAL;
    ALTER TABLE messages ADD COLUMN files TEXT;
    ALTER TABLE direct_messages ADD COLUMN files TEXT;
    ALTER TABLE users ADD COLUMN avatar TEXT;",
];

/// Brings the schema up to date.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS confab_schema (version INTEGER NOT NULL)").await?;
    let done: Option<i32> =
        tx.query_opt("SELECT version FROM confab_schema", &[]).await?.map(|row| row.get(0));
    let done = usize::try_from(done.unwrap_or(0)).unwrap_or(0);
    if done > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {done}, newer than this confab ({})",
            MIGRATIONS.len()
        )));
    }
    for migration in &MIGRATIONS[done..] {
        tx.batch_execute(migration).await?;
    }
    let version = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    tx.execute("DELETE FROM confab_schema", &[]).await?;
    tx.execute("INSERT INTO confab_schema (version) VALUES ($1)", &[&version]).await?;
    tx.commit().await?;
    Ok(())
}
