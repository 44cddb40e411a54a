//! The PostgreSQL store: for one node that wants a database server, and for any number of
//! nodes that share it.
//!
//! Reads use a pool of connections with prepared statements. Writes go to one writer task
//! per node with its own connection: it takes every write waiting (up to [`MAX_BATCH`]),
//! runs them in one transaction and commits once, so under load one commit (one WAL flush)
//! covers many messages. Should anything in a batch fail, the batch is rolled back and each
//! write runs again in a transaction of its own, so that one bad request fails alone.
//!
//! Ids come from `UPDATE rooms SET last_seq = last_seq + 1 ... RETURNING` in the storing
//! transaction: the row lock makes concurrent writers on any number of nodes take turns, so
//! a room's ids have no gaps and no repeats. Rows are locked in one order everywhere (a
//! DM's two inboxes by name) so that writers on two nodes cannot deadlock on a pair of DMs.

mod accounts;
mod dms;
mod files;
mod rooms;
mod schema;
mod search;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use shared::api::{Account, DmSummary, Invitation, Person, RoomMembers, RoomSummary, Webhook};
use shared::chat::{ChatMessage, DirectMessage, LOBBY, Millis, Quote, Role, RoomChange};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, Row, Statement};

use super::{
    AccountChange, Admission, DmCopies, FileBytes, FilePlace, FileRecord, Found, Missing, NewHook,
    NewLink, NewPost, Posted, Record, Search, Store, StoreError, Stored, TokenOwner, TokenRecord,
    files_column, files_of, mentions_column, mentions_of, reactions_column, reactions_of,
};
use crate::access::Standing;

/// Any number: the key of the advisory lock that makes sign-ups take turns, so that only
/// one can be the first.
const SIGN_UP_LOCK: i64 = 0x7369_676e_7570;

/// Writes committed together at most.
const MAX_BATCH: usize = 256;
/// Reading connections per node.
const POOL_SIZE: usize = 8;
/// How long a request waits for a connection before the store counts as unavailable.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// The PostgreSQL store; a cheap handle.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    writes: mpsc::Sender<Request>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> StoreError {
        match error.code() {
            // Not an answer from the server: the connection is gone or never came.
            None => StoreError::Unavailable,
            Some(code)
                if *code == SqlState::ADMIN_SHUTDOWN
                    || *code == SqlState::CANNOT_CONNECT_NOW
                    || *code == SqlState::DISK_FULL
                    || *code == SqlState::TOO_MANY_CONNECTIONS =>
            {
                StoreError::Unavailable
            }
            // Code and message only: the DETAIL of a constraint error quotes row values.
            Some(code) => StoreError::Failed(match error.as_db_error() {
                Some(db) => format!("postgres {}: {}", code.code(), db.message()),
                None => format!("postgres {}", code.code()),
            }),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> StoreError {
        match error {
            deadpool_postgres::PoolError::Backend(error) => error.into(),
            _ => StoreError::Unavailable,
        }
    }
}

/// A write the writer task runs.
#[derive(Debug)]
enum Write {
    CreateUser { name: String, hash: String, now: Millis, admission: Admission },
    UpdateAccount { name: String, change: AccountChange },
    CreateLink { link: NewLink, now: Millis },
    RevokeInvitation { id: String },
    RedeemReset { code_hash: String, hash: String, now: Millis },
    ChangeRoom { room: String, actor: String, change: RoomChange, now: Millis },
    ChangeDm { actor: String, peer: String, change: RoomChange, now: Millis },
    CreateBot { name: String, now: Millis },
    CreateWebhook { hook: NewHook, now: Millis },
    DeleteWebhook { room: String, id: String },
    StoreToken { hash: String, user: String, now: Millis, expires_at: Millis, device: String },
    ExtendToken { hash: String, expires_at: Millis, now: Millis },
    RevokeToken { hash: String },
    CreateRoom { name: String, creator: String, now: Millis, private: bool },
    JoinRoom { room: String, user: String },
    LeaveRoom { room: String, user: String },
    MarkRoomRead { room: String, user: String, seq: u64 },
    Post { posts: Vec<NewPost>, now: Millis },
    MarkDmRead { user: String, peer: String, seq: u64 },
    Import { records: Vec<Record> },
}

/// What a write returns.
#[derive(Debug)]
enum Written {
    Done,
    Admin(bool),
    Tokens(Vec<String>),
    Reset(String, Vec<String>),
    Changed(Box<ChatMessage>),
    DmChanged(Box<DmCopies>),
    Deleted(bool),
    Revoked(Option<String>),
    Stored(Vec<Stored>),
}

struct Request {
    write: Write,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// The writer's hot statements, prepared once per connection.
struct Statements {
    lock_room: Statement,
    standing: Statement,
    room_key: Statement,
    post_room: Statement,
    user_exists: Statement,
    dm_key: Statement,
    post_dm: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            lock_room: client.prepare("SELECT 1 FROM rooms WHERE name = $1 FOR UPDATE").await?,
            standing: client.prepare(rooms::STANDING).await?,
            room_key: client
                .prepare(
                    "SELECT seq, text, sent_at FROM messages
                     WHERE room = $1 AND sender = $2 AND idempotency_key = $3",
                )
                .await?,
            post_room: client
                .prepare(
                    "WITH next AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE name = $1 RETURNING last_seq)
                     INSERT INTO messages (room, seq, sender, text, sent_at, idempotency_key, reply_to, mentions)
                     SELECT $1, last_seq, $2, $3, $4, $5, $6, $7 FROM next RETURNING seq",
                )
                .await?,
            user_exists: client
                .prepare("SELECT 1 FROM users WHERE name = $1 AND NOT deactivated")
                .await?,
            dm_key: client
                .prepare(
                    "SELECT owner, seq, text, sent_at FROM direct_messages
                     WHERE sender = $1 AND idempotency_key = $2 AND owner IN ($1, $3)
                       AND peer = CASE WHEN owner = $1 THEN $3 ELSE $1 END",
                )
                .await?,
            post_dm: client
                .prepare(
                    "WITH next AS (
                         INSERT INTO inboxes (owner, last_seq) VALUES ($1, 1)
                         ON CONFLICT (owner) DO UPDATE SET last_seq = inboxes.last_seq + 1
                         RETURNING last_seq)
                     INSERT INTO direct_messages (owner, seq, peer, sender, recipient, text, sent_at, idempotency_key)
                     SELECT $1, last_seq, $2, $3, $4, $5, $6, $7 FROM next RETURNING seq",
                )
                .await?,
        })
    }
}

/// Why a write failed inside a transaction.
enum Failure {
    /// The request is wrong (no such room, name taken): the store answered.
    Refused(StoreError),
    /// The database refused a statement; the transaction is broken.
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        Failure::Database(error)
    }
}

/// A request the store answers with `error`, the transaction still sound.
fn refused<T>(error: StoreError) -> Result<T, Failure> {
    Err(Failure::Refused(error))
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> StoreError {
        match failure {
            Failure::Refused(error) => error,
            Failure::Database(error) => error.into(),
        }
    }
}

/// Ids are `BIGINT`: every id a client names is clamped into it.
fn clamp(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn seq(row: &Row, index: usize) -> u64 {
    u64::try_from(row.get::<_, i64>(index)).unwrap_or(0)
}

impl PostgresStore {
    /// Connects to `url` (waiting for the server if it is not up yet), migrates, and starts
    /// the writer.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|error| StoreError::Failed(format!("bad --postgres URL: {error}")))?;
        let mut client = loop {
            match connect(&config).await {
                Ok(client) => break client,
                Err(error) => {
                    tracing::warn!(%error, "waiting for postgres");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        schema::migrate(&mut client).await?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|error| StoreError::Failed(error.to_string()))?;
        let (writes, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_loop(config, Some(client), queue));
        Ok(PostgresStore { pool, writes })
    }

    async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (reply, result) = oneshot::channel();
        self.writes.send(Request { write, reply }).await.map_err(|_| StoreError::Unavailable)?;
        result.await.map_err(|_| StoreError::Unavailable)?
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query_opt(&statement, params).await?)
    }

    async fn require_room(&self, room: &str) -> Result<(), StoreError> {
        if self.room_exists(room).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound(Missing::Room(room.to_owned())))
        }
    }
}

async fn connect(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "postgres connection ended");
        }
    });
    Ok(client)
}

/// The writer task: batches of writes, one transaction each; reconnects when the
/// connection drops. Ends when every handle is gone.
async fn write_loop(
    config: tokio_postgres::Config,
    client: Option<Client>,
    mut queue: mpsc::Receiver<Request>,
) {
    let mut writer = match client {
        Some(client) => {
            Statements::prepare(&client).await.ok().map(|statements| (client, statements))
        }
        None => None,
    };
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if writer.as_ref().is_none_or(|(client, _)| client.is_closed()) {
            writer = match connect(&config).await {
                Ok(client) => match Statements::prepare(&client).await {
                    Ok(statements) => Some((client, statements)),
                    Err(_) => None,
                },
                Err(_) => None,
            };
        }
        let Some((connected, statements)) = writer.as_mut() else {
            for request in batch {
                let _ = request.reply.send(Err(StoreError::Unavailable));
            }
            continue;
        };
        match run_batch(connected, statements, &batch).await {
            Ok(results) => {
                for (request, result) in batch.into_iter().zip(results) {
                    let _ = request.reply.send(Ok(result));
                }
            }
            Err(_) if connected.is_closed() => {
                for request in batch {
                    let _ = request.reply.send(Err(StoreError::Unavailable));
                }
            }
            Err(_) => {
                // One of them failed: each alone, so that it fails by itself.
                for request in batch {
                    let result = run_alone(connected, statements, &request.write).await;
                    let _ = request.reply.send(result);
                }
            }
        }
    }
}

/// Every write of a batch in one transaction; any failure undoes all of it.
async fn run_batch(
    client: &mut Client,
    statements: &Statements,
    batch: &[Request],
) -> Result<Vec<Written>, Failure> {
    let tx = client.transaction().await?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        results.push(execute(&tx, statements, &request.write).await?);
    }
    tx.commit().await?;
    Ok(results)
}

/// One write in a transaction of its own, retried once after a deadlock.
async fn run_alone(
    client: &mut Client,
    statements: &Statements,
    write: &Write,
) -> Result<Written, StoreError> {
    for attempt in 0..2 {
        let tx = client.transaction().await?;
        match execute(&tx, statements, write).await {
            Ok(written) => {
                tx.commit().await?;
                return Ok(written);
            }
            Err(Failure::Database(error))
                if attempt == 0 && error.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                continue;
            }
            Err(failure) => return Err(failure.into()),
        }
    }
    Err(StoreError::Unavailable)
}

async fn execute(
    tx: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    write: &Write,
) -> Result<Written, Failure> {
    let refused = |error| Err(Failure::Refused(error));
    match write {
        Write::CreateUser { name, hash, now, admission } => {
            // One sign-up at a time decides who is first.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SIGN_UP_LOCK]).await?;
            let first = !tx.query_one(accounts::HAS_PEOPLE, &[]).await?.get::<_, bool>(0);
            if !first && !admission.open {
                match (&admission.invite_hash, admission.invitations) {
                    (Some(code), true) => accounts::use_invitation(tx, code, *now).await?,
                    (Some(_), false) => {
                        return refused(StoreError::Forbidden(
                            "this server takes no new accounts".into(),
                        ));
                    }
                    (None, _) => {
                        return refused(StoreError::Forbidden(
                            "this server signs people up by invitation: ask an admin for a link"
                                .into(),
                        ));
                    }
                }
            }
            let inserted = tx
                .execute(
                    "INSERT INTO users (name, password_hash, created_at, admin) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[name, hash, now, &first],
                )
                .await?;
            if inserted == 0 {
                return refused(StoreError::Conflict(format!("the name {name:?} is taken")));
            }
            rooms::add_member(tx, LOBBY, name, Role::Member).await?;
            return Ok(Written::Admin(first));
        }
        Write::UpdateAccount { name, change } => {
            return Ok(Written::Tokens(accounts::update_account(tx, name, change).await?));
        }
        Write::CreateLink { link, now } => accounts::create_link(tx, link, *now).await?,
        Write::RevokeInvitation { id } => {
            let revoked = tx
                .execute("UPDATE links SET revoked = true WHERE id = $1 AND kind = 'invite'", &[id])
                .await?;
            return Ok(Written::Deleted(revoked > 0));
        }
        Write::RedeemReset { code_hash, hash, now } => {
            let (user, tokens) = accounts::redeem_reset(tx, code_hash, hash, *now).await?;
            return Ok(Written::Reset(user, tokens));
        }
        Write::ChangeRoom { room, actor, change, now } => {
            let entry = rooms::change_room(tx, statements, room, actor, change, *now).await?;
            return Ok(Written::Changed(Box::new(entry)));
        }
        Write::ChangeDm { actor, peer, change, now } => {
            let copies = dms::change_dm(tx, actor, peer, change, *now).await?;
            return Ok(Written::DmChanged(Box::new(copies)));
        }
        Write::CreateBot { name, now } => create_bot(tx, name, *now).await?,
        Write::CreateWebhook { hook, now } => {
            require_room(tx, &hook.room).await?;
            create_bot(tx, &hook.name, *now).await?;
            rooms::add_member(tx, &hook.room, &hook.name, Role::Member).await?;
            tx.execute(
                "INSERT INTO webhooks (id, room, bot_name, secret_hash, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&hook.id, &hook.room, &hook.name, &hook.secret_hash, &hook.created_by, now],
            )
            .await?;
        }
        Write::DeleteWebhook { room, id } => {
            let deleted =
                tx.execute("DELETE FROM webhooks WHERE room = $1 AND id = $2", &[room, id]).await?;
            return Ok(Written::Deleted(deleted > 0));
        }
        Write::StoreToken { hash, user, now, expires_at, device } => {
            tx.execute(
                "INSERT INTO tokens (token_hash, user_name, created_at, expires_at, device, last_used_at)
                 VALUES ($1, $2, $3, $4, $5, $3)",
                &[hash, user, now, expires_at, device],
            )
            .await?;
            tx.execute(
                "UPDATE users SET last_active = GREATEST(last_active, $2) WHERE name = $1",
                &[user, now],
            )
            .await?;
        }
        Write::ExtendToken { hash, expires_at, now } => {
            tx.execute(
                "UPDATE tokens SET expires_at = GREATEST(expires_at, $2),
                     last_used_at = GREATEST(last_used_at, $3) WHERE token_hash = $1",
                &[hash, expires_at, now],
            )
            .await?;
            tx.execute(
                "UPDATE users SET last_active = GREATEST(last_active, $2)
                 WHERE name = (SELECT user_name FROM tokens WHERE token_hash = $1)",
                &[hash, now],
            )
            .await?;
        }
        Write::RevokeToken { hash } => {
            let row = tx
                .query_opt("DELETE FROM tokens WHERE token_hash = $1 RETURNING user_name", &[hash])
                .await?;
            return Ok(Written::Revoked(row.map(|row| row.get(0))));
        }
        Write::CreateRoom { name, creator, now, private } => {
            let inserted = tx
                .execute(
                    "INSERT INTO rooms (name, created_by, created_at, private) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[name, creator, now, private],
                )
                .await?;
            if inserted == 0 {
                return refused(StoreError::Conflict(format!(
                    "a room named {name:?} already exists"
                )));
            }
            rooms::add_member(tx, name, creator, Role::Owner).await?;
        }
        Write::JoinRoom { room, user } => {
            rooms::lock_room(tx, statements, room).await?;
            rooms::join(tx, statements, room, user).await?;
        }
        Write::LeaveRoom { room, user } => {
            rooms::lock_room(tx, statements, room).await?;
            let row = tx
                .query_one(
                    "SELECT (SELECT role FROM memberships WHERE room = $1 AND user_name = $2),
                            (SELECT COUNT(*) FROM memberships WHERE room = $1 AND user_name <> $2)",
                    &[room, user],
                )
                .await?;
            let (role, others): (Option<String>, i64) = (row.get(0), row.get(1));
            if role.as_deref() == Some("owner") && others > 0 {
                return refused(StoreError::Forbidden(
                    "you own this room: make another member its owner before leaving".into(),
                ));
            }
            tx.execute("DELETE FROM memberships WHERE room = $1 AND user_name = $2", &[room, user])
                .await?;
        }
        Write::MarkRoomRead { room, user, seq } => {
            require_room(tx, room).await?;
            tx.execute(
                "UPDATE memberships SET last_read =
                     GREATEST(last_read, LEAST($3, (SELECT last_seq FROM rooms WHERE name = $1)))
                 WHERE room = $1 AND user_name = $2",
                &[room, user, &clamp(*seq)],
            )
            .await?;
        }
        Write::Post { posts, now } => {
            let mut stored = Vec::with_capacity(posts.len());
            for post in posts {
                stored.push(match post {
                    NewPost::Room { room, sender, text, key, bot, reply_to, files } => {
                        let entry = (text.as_str(), key.as_deref(), *reply_to);
                        let mut posted =
                            post_room(tx, statements, room, sender, entry, *now).await?;
                        if !posted.duplicate && !files.is_empty() {
                            let place = FilePlace::Room(room.clone());
                            let sent = files::send(tx, sender, files, place).await?;
                            tx.execute(
                                "UPDATE messages SET files = $3 WHERE room = $1 AND seq = $2",
                                &[room, &clamp(posted.message.seq), &files_column(&sent)],
                            )
                            .await?;
                            posted.message.files = sent;
                        }
                        posted.message.bot = *bot;
                        Stored::Room(posted)
                    }
                    NewPost::Dm { from, to, text, key, bot, files } => {
                        let mut posted =
                            post_dm(tx, statements, from, to, text, key.as_deref(), *now).await?;
                        if !posted.duplicate && !files.is_empty() {
                            let place = FilePlace::Dm(to.clone());
                            let sent = files::send(tx, from, files, place).await?;
                            let column = files_column(&sent);
                            let DmCopies { sender, recipient } = &mut posted.message;
                            for (owner, copy) in [(from, Some(sender)), (to, recipient.as_mut())] {
                                let Some(copy) = copy else { continue };
                                tx.execute(
                                    "UPDATE direct_messages SET files = $3 WHERE owner = $1 AND seq = $2",
                                    &[owner, &clamp(copy.seq), &column],
                                )
                                .await?;
                                copy.files = sent.clone();
                            }
                        }
                        posted.message.sender.bot = *bot;
                        if let Some(copy) = &mut posted.message.recipient {
                            copy.bot = *bot;
                        }
                        Stored::Dm(posted)
                    }
                });
            }
            return Ok(Written::Stored(stored));
        }
        Write::MarkDmRead { user, peer, seq } => {
            tx.execute(
                "INSERT INTO dm_reads (owner, peer, last_read)
                 VALUES ($1, $2, LEAST($3, (SELECT COALESCE(MAX(last_seq), 0) FROM inboxes WHERE owner = $1)))
                 ON CONFLICT (owner, peer) DO UPDATE SET last_read = GREATEST(dm_reads.last_read, excluded.last_read)",
                &[user, peer, &clamp(*seq)],
            )
            .await?;
        }
        Write::Import { records } => import(tx, records).await?,
    }
    Ok(Written::Done)
}

async fn create_bot(tx: &impl GenericClient, name: &str, now: Millis) -> Result<(), Failure> {
    let inserted = tx
        .execute(
            "INSERT INTO users (name, password_hash, created_at, bot) VALUES ($1, '', $2, true)
             ON CONFLICT DO NOTHING",
            &[&name, &now],
        )
        .await?;
    if inserted == 0 {
        return Err(Failure::Refused(StoreError::Conflict(format!("the name {name:?} is taken"))));
    }
    Ok(())
}

async fn require_room(tx: &impl GenericClient, room: &str) -> Result<(), Failure> {
    let exists = tx.query_opt("SELECT 1 FROM rooms WHERE name = $1", &[&room]).await?.is_some();
    if exists {
        Ok(())
    } else {
        Err(Failure::Refused(StoreError::NotFound(Missing::Room(room.to_owned()))))
    }
}

/// Stores a room message: `entry` is its text, idempotency key and the message it answers.
async fn post_room(
    tx: &impl GenericClient,
    statements: &Statements,
    room: &str,
    sender: &str,
    entry: (&str, Option<&str>, Option<u64>),
    now: Millis,
) -> Result<Posted<ChatMessage>, Failure> {
    let (text, key, reply_to) = entry;
    let message = |seq: u64, text: String, sent_at: Millis| ChatMessage {
        seq,
        room: room.to_owned(),
        sender: sender.to_owned(),
        text,
        sent_at,
        ..ChatMessage::default()
    };
    if let Some(key) = key {
        let earlier = tx.query_opt(&statements.room_key, &[&room, &sender, &key]).await?;
        if let Some(row) = earlier {
            let message = message(seq(&row, 0), row.get(1), row.get(2));
            return Ok(Posted { message, duplicate: true });
        }
    }
    rooms::check_post(tx, statements, room, sender).await?;
    let quote = match reply_to {
        Some(answered) => match rooms::quote(tx, room, answered).await? {
            Some(quote) => Some(quote),
            None => return Err(Failure::Refused(StoreError::NotFound(Missing::Message(answered)))),
        },
        None => None,
    };
    let mentions = rooms::mentions_in(tx, room, text).await?;
    let row = tx
        .query_opt(
            &statements.post_room,
            &[&room, &sender, &text, &now, &key, &reply_to.map(clamp), &mentions_column(&mentions)],
        )
        .await?;
    let Some(row) = row else {
        return Err(Failure::Refused(StoreError::NotFound(Missing::Room(room.to_owned()))));
    };
    let mut stored = message(seq(&row, 0), text.to_owned(), now);
    stored.reply_to = quote;
    stored.mentions = mentions;
    Ok(Posted { message: stored, duplicate: false })
}

async fn post_dm(
    tx: &impl GenericClient,
    statements: &Statements,
    from: &str,
    to: &str,
    text: &str,
    key: Option<&str>,
    now: Millis,
) -> Result<Posted<DmCopies>, Failure> {
    if tx.query_opt(&statements.user_exists, &[&to]).await?.is_none() {
        return Err(Failure::Refused(StoreError::NotFound(Missing::User(to.to_owned()))));
    }
    let message = |seq: u64, text: String, sent_at: Millis| DirectMessage {
        seq,
        from: from.to_owned(),
        to: to.to_owned(),
        text,
        sent_at,
        ..DirectMessage::default()
    };
    if let Some(key) = key {
        let rows = tx.query(&statements.dm_key, &[&from, &key, &to]).await?;
        let (mut sender, mut recipient) = (None, None);
        for row in rows {
            let owner: String = row.get(0);
            let copy = message(seq(&row, 1), row.get(2), row.get(3));
            if owner == from { sender = Some(copy) } else { recipient = Some(copy) }
        }
        if let Some(sender) = sender {
            return Ok(Posted { message: DmCopies { sender, recipient }, duplicate: true });
        }
    }
    // Both inboxes are locked in name order, on every node: two DMs crossing between the
    // same two people cannot deadlock.
    let mut owners = if from == to { vec![from] } else { vec![from, to] };
    owners.sort_unstable();
    let (mut sender, mut recipient) = (None, None);
    for owner in owners {
        let peer = if owner == from { to } else { from };
        let row = tx
            .query_one(&statements.post_dm, &[&owner, &peer, &from, &to, &text, &now, &key])
            .await?;
        let copy = message(seq(&row, 0), text.to_owned(), now);
        if owner == from { sender = Some(copy) } else { recipient = Some(copy) }
    }
    let sender = sender.ok_or_else(|| {
        Failure::Refused(StoreError::Failed("the sender's copy was not stored".into()))
    })?;
    if let Some(copy) = &recipient {
        dms::pair(tx, (from, sender.seq), (to, copy.seq)).await?;
    }
    Ok(Posted { message: DmCopies { sender, recipient }, duplicate: false })
}

async fn import(tx: &impl GenericClient, records: &[Record]) -> Result<(), Failure> {
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
                tx.execute(
                    "INSERT INTO users (name, password_hash, created_at, bot, admin, deactivated, display_name, avatar)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[name, password_hash, created_at, bot, admin, deactivated, display_name, avatar],
                )
                .await?;
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
                tx.execute(
                    "INSERT INTO rooms (name, created_by, created_at, last_seq, private, archived, title, topic)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (name) DO UPDATE SET created_by = excluded.created_by,
                         created_at = excluded.created_at, last_seq = excluded.last_seq,
                         private = excluded.private, archived = excluded.archived,
                         title = excluded.title, topic = excluded.topic",
                    &[
                        name,
                        created_by,
                        created_at,
                        &clamp(*last_seq),
                        private,
                        archived,
                        title,
                        topic,
                    ],
                )
                .await?;
            }
            Record::Member { room, user, last_read, role, muted } => {
                tx.execute(
                    "INSERT INTO memberships (room, user_name, last_read, role, muted) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (room, user_name) DO UPDATE SET last_read = excluded.last_read,
                         role = excluded.role, muted = excluded.muted",
                    &[room, user, &clamp(*last_read), &role.as_str(), muted],
                )
                .await?;
            }
            Record::Ban { room, user, by, at } => {
                tx.execute(
                    "INSERT INTO bans (room, user_name, banned_by, banned_at) VALUES ($1, $2, $3, $4)",
                    &[room, user, by, at],
                )
                .await?;
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
                tx.execute(
                    "INSERT INTO messages (room, seq, sender, text, sent_at, idempotency_key, change, deleted,
                         target, reply_to, mentions, edited_at, reactions, files)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    &[
                        room,
                        &clamp(*seq),
                        sender,
                        text,
                        sent_at,
                        key,
                        &change,
                        deleted,
                        &target,
                        &reply_to.map(clamp),
                        &mentions_column(mentions),
                        edited_at,
                        &reactions_column(reactions),
                        &files_column(files),
                    ],
                )
                .await?;
            }
            Record::Inbox { owner, last_seq } => {
                tx.execute(
                    "INSERT INTO inboxes (owner, last_seq) VALUES ($1, $2)",
                    &[owner, &clamp(*last_seq)],
                )
                .await?;
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
                tx.execute(
                    "INSERT INTO direct_messages (owner, seq, peer, sender, recipient, text, sent_at, idempotency_key,
                         change, deleted, edited_at, reactions, target, pair_seq, files)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    &[
                        owner,
                        &clamp(*seq),
                        peer,
                        sender,
                        recipient,
                        text,
                        sent_at,
                        key,
                        &change,
                        deleted,
                        edited_at,
                        &reactions_column(reactions),
                        &target,
                        &pair_seq.map(clamp),
                        &files_column(files),
                    ],
                )
                .await?;
            }
            Record::DmRead { owner, peer, last_read } => {
                tx.execute(
                    "INSERT INTO dm_reads (owner, peer, last_read) VALUES ($1, $2, $3)",
                    &[owner, peer, &clamp(*last_read)],
                )
                .await?;
            }
            Record::Webhook { id, room, name, secret_hash, created_by, created_at } => {
                tx.execute(
                    "INSERT INTO webhooks (id, room, bot_name, secret_hash, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[id, room, name, secret_hash, created_by, created_at],
                )
                .await?;
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
                let max_uses = i32::try_from(*max_uses).unwrap_or(i32::MAX);
                let uses = i32::try_from(*uses).unwrap_or(i32::MAX);
                tx.execute(
                    "INSERT INTO links (code_hash, id, kind, user_name, created_by, created_at,
                         expires_at, max_uses, uses, revoked)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        code_hash, id, link, user, created_by, created_at, expires_at, &max_uses,
                        &uses, revoked,
                    ],
                )
                .await?;
            }
            Record::File { .. } | Record::FilePart { .. } => files::import(tx, record).await?,
        }
    }
    Ok(())
}

/// A room's messages as readers get them: in their current state, with the snippet of
/// the message each answers.
const MESSAGE_COLUMNS: &str = "SELECT m.seq, m.sender, m.text, m.sent_at, COALESCE(u.bot, false),
        m.change, m.deleted, m.reply_to, q.sender, left(q.text, 140), q.deleted,
        m.mentions, m.edited_at, m.reactions, m.files
    FROM messages m LEFT JOIN users u ON u.name = m.sender
    LEFT JOIN messages q ON q.room = m.room AND q.seq = m.reply_to";

fn room_message(room: &str, row: &Row) -> ChatMessage {
    let change: Option<String> = row.get(5);
    let reply_to: Option<i64> = row.get(7);
    ChatMessage {
        seq: seq(row, 0),
        room: room.to_owned(),
        sender: row.get(1),
        text: row.get(2),
        sent_at: row.get(3),
        bot: row.get(4),
        change: change.and_then(|json| serde_json::from_str(&json).ok()),
        deleted: row.get(6),
        reply_to: reply_to.map(|answered| Quote {
            seq: u64::try_from(answered).unwrap_or(0),
            sender: row.get::<_, Option<String>>(8).unwrap_or_default(),
            text: row.get::<_, Option<String>>(9).unwrap_or_default(),
            deleted: row.get::<_, Option<bool>>(10).unwrap_or(true),
        }),
        mentions: mentions_of(row.get(11)),
        edited_at: row.get(12),
        reactions: reactions_of(row.get(13)),
        rich: None,
        files: files_of(row.get(14)),
    }
}

/// An inbox's entries as readers get them: each message in its current state.
const DM_COLUMNS: &str = "SELECT d.seq, d.sender, d.recipient, d.text, d.sent_at,
        COALESCE(u.bot, false), d.change, d.deleted, d.edited_at, d.reactions, d.files
    FROM direct_messages d LEFT JOIN users u ON u.name = d.sender";

fn direct_message(row: &Row) -> DirectMessage {
    let change: Option<String> = row.get(6);
    DirectMessage {
        seq: seq(row, 0),
        from: row.get(1),
        to: row.get(2),
        text: row.get(3),
        sent_at: row.get(4),
        bot: row.get(5),
        change: change.and_then(|json| serde_json::from_str(&json).ok()),
        deleted: row.get(7),
        edited_at: row.get(8),
        reactions: reactions_of(row.get(9)),
        rich: None,
        files: files_of(row.get(10)),
    }
}

fn webhook_row(row: &Row) -> Webhook {
    Webhook {
        id: row.get(0),
        room: row.get(1),
        name: row.get(2),
        created_by: row.get(3),
        created_at: row.get(4),
        path: None,
    }
}

fn room_summary(row: &Row) -> RoomSummary {
    let last_seq = seq(row, 1);
    let last_read: Option<i64> = row.get(3);
    let last_read = last_read.map(|read| u64::try_from(read).unwrap_or(0));
    let role: Option<String> = row.get(8);
    RoomSummary {
        name: row.get(0),
        members: seq(row, 2),
        joined: last_read.is_some(),
        last_seq,
        unread: row.get::<_, Option<i64>>(10).map_or(0, |count| u64::try_from(count).unwrap_or(0)),
        mentions: row
            .get::<_, Option<i64>>(11)
            .map_or(0, |count| u64::try_from(count).unwrap_or(0)),
        private: row.get(4),
        archived: row.get(5),
        title: row.get(6),
        topic: row.get(7),
        role: role.as_deref().and_then(Role::parse),
        muted: row.get::<_, Option<bool>>(9).unwrap_or(false),
    }
}

fn unexpected<T>(written: Written) -> Result<T, StoreError> {
    Err(StoreError::Failed(format!("unexpected answer from the writer: {written:?}")))
}

fn expect_done(written: Written) -> Result<(), StoreError> {
    match written {
        Written::Done => Ok(()),
        other => Err(StoreError::Failed(format!("unexpected answer from the writer: {other:?}"))),
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        now: Millis,
        admission: &Admission,
    ) -> Result<bool, StoreError> {
        let write = Write::CreateUser {
            name: name.into(),
            hash: password_hash.into(),
            now,
            admission: admission.clone(),
        };
        match self.write(write).await? {
            Written::Admin(admin) => Ok(admin),
            other => unexpected(other),
        }
    }

    async fn has_people(&self) -> Result<bool, StoreError> {
        let rows = self.query(accounts::HAS_PEOPLE, &[]).await?;
        Ok(rows.first().is_some_and(|row| row.get(0)))
    }

    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!("{} WHERE u.name = $1", accounts::ACCOUNT);
        Ok(self.query_opt(&sql, &[&name]).await?.as_ref().map(accounts::account_row))
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let sql = format!("{} ORDER BY u.name", accounts::ACCOUNT);
        Ok(self.query(&sql, &[]).await?.iter().map(accounts::account_row).collect())
    }

    async fn people(&self) -> Result<Vec<Person>, StoreError> {
        let rows = self
            .query(
                "SELECT name, display_name, bot, avatar FROM users WHERE NOT deactivated ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows.iter().map(accounts::person_row).collect())
    }

    async fn update_account(
        &self,
        name: &str,
        change: AccountChange,
    ) -> Result<Vec<String>, StoreError> {
        match self.write(Write::UpdateAccount { name: name.into(), change }).await? {
            Written::Tokens(tokens) => Ok(tokens),
            other => unexpected(other),
        }
    }

    async fn sessions(&self, user: &str, now: Millis) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT token_hash, device, created_at, last_used_at FROM tokens
                 WHERE user_name = $1 AND expires_at > $2 ORDER BY last_used_at DESC, created_at DESC",
                &[&user, &now],
            )
            .await?;
        Ok(rows.iter().map(accounts::token_row).collect())
    }

    async fn create_link(&self, link: NewLink, now: Millis) -> Result<(), StoreError> {
        expect_done(self.write(Write::CreateLink { link, now }).await?)
    }

    async fn invitations(&self) -> Result<Vec<Invitation>, StoreError> {
        let rows = self
            .query(
                "SELECT id, created_by, created_at, expires_at, max_uses, uses, revoked FROM links
                 WHERE kind = 'invite' ORDER BY created_at DESC, id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(accounts::invitation_row).collect())
    }

    async fn revoke_invitation(&self, id: &str) -> Result<bool, StoreError> {
        match self.write(Write::RevokeInvitation { id: id.into() }).await? {
            Written::Deleted(revoked) => Ok(revoked),
            other => unexpected(other),
        }
    }

    async fn redeem_reset(
        &self,
        code_hash: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<(String, Vec<String>), StoreError> {
        let write =
            Write::RedeemReset { code_hash: code_hash.into(), hash: password_hash.into(), now };
        match self.write(write).await? {
            Written::Reset(user, tokens) => Ok((user, tokens)),
            other => unexpected(other),
        }
    }

    async fn messages_since(&self, since: Millis) -> Result<u64, StoreError> {
        let rows = self
            .query(
                "SELECT (SELECT COUNT(*) FROM messages WHERE sent_at > $1 AND change IS NULL)
                      + (SELECT COUNT(*) FROM direct_messages WHERE sent_at > $1 AND sender = owner)",
                &[&since],
            )
            .await?;
        Ok(rows.first().map_or(0, |row| seq(row, 0)))
    }

    async fn standing(&self, room: &str, user: &str) -> Result<Option<Standing>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(rooms::STANDING).await?;
        Ok(rooms::standing(&**client, &statement, room, user).await?)
    }

    async fn members(&self, room: &str) -> Result<RoomMembers, StoreError> {
        self.require_room(room).await?;
        let client = self.pool.get().await?;
        Ok(rooms::members(&**client, room).await?)
    }

    async fn change_room(
        &self,
        room: &str,
        actor: &str,
        change: RoomChange,
        now: Millis,
    ) -> Result<ChatMessage, StoreError> {
        let write = Write::ChangeRoom { room: room.into(), actor: actor.into(), change, now };
        match self.write(write).await? {
            Written::Changed(entry) => Ok(*entry),
            other => unexpected(other),
        }
    }

    async fn change_dm(
        &self,
        actor: &str,
        peer: &str,
        change: RoomChange,
        now: Millis,
    ) -> Result<DmCopies, StoreError> {
        let write = Write::ChangeDm { actor: actor.into(), peer: peer.into(), change, now };
        match self.write(write).await? {
            Written::DmChanged(copies) => Ok(*copies),
            other => unexpected(other),
        }
    }

    async fn all_rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        let rows = self
            .query(
                "SELECT r.name, r.last_seq,
                        (SELECT COUNT(*) FROM memberships m WHERE m.room = r.name),
                        NULL::BIGINT, r.private, r.archived, r.title, r.topic, NULL::TEXT, false
                 FROM rooms r ORDER BY r.name",
                &[],
            )
            .await?;
        Ok(rows.iter().map(room_summary).collect())
    }

    async fn password_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row =
            self.query_opt("SELECT password_hash FROM users WHERE name = $1", &[&name]).await?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn user_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.query_opt("SELECT 1 FROM users WHERE name = $1", &[&name]).await?.is_some())
    }

    async fn store_token(
        &self,
        token_hash: &str,
        user: &str,
        now: Millis,
        expires_at: Millis,
        device: &str,
    ) -> Result<(), StoreError> {
        let write = Write::StoreToken {
            hash: token_hash.into(),
            user: user.into(),
            now,
            expires_at,
            device: device.into(),
        };
        expect_done(self.write(write).await?)
    }

    async fn token_owner(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<TokenOwner>, StoreError> {
        let row = self
            .query_opt(
                "SELECT t.user_name, t.expires_at, u.bot FROM tokens t JOIN users u ON u.name = t.user_name
                 WHERE t.token_hash = $1 AND t.expires_at > $2 AND NOT u.deactivated",
                &[&token_hash, &now],
            )
            .await?;
        Ok(row.map(|row| TokenOwner { user: row.get(0), expires_at: row.get(1), bot: row.get(2) }))
    }

    async fn extend_token(
        &self,
        token_hash: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<(), StoreError> {
        let write = Write::ExtendToken { hash: token_hash.into(), expires_at, now };
        expect_done(self.write(write).await?)
    }

    async fn revoke_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        match self.write(Write::RevokeToken { hash: token_hash.into() }).await? {
            Written::Revoked(owner) => Ok(owner),
            other => {
                Err(StoreError::Failed(format!("unexpected answer from the writer: {other:?}")))
            }
        }
    }

    async fn create_room(
        &self,
        name: &str,
        creator: &str,
        now: Millis,
        private: bool,
    ) -> Result<(), StoreError> {
        let write = Write::CreateRoom { name: name.into(), creator: creator.into(), now, private };
        expect_done(self.write(write).await?)
    }

    async fn room_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.query_opt("SELECT 1 FROM rooms WHERE name = $1", &[&name]).await?.is_some())
    }

    async fn rooms_created_by(&self, user: &str) -> Result<u64, StoreError> {
        let rows = self.query("SELECT COUNT(*) FROM rooms WHERE created_by = $1", &[&user]).await?;
        Ok(rows.first().map_or(0, |row| seq(row, 0)))
    }

    async fn is_member(&self, room: &str, user: &str) -> Result<bool, StoreError> {
        let row = self
            .query_opt(
                "SELECT 1 FROM memberships WHERE room = $1 AND user_name = $2",
                &[&room, &user],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn join_room(&self, room: &str, user: &str) -> Result<(), StoreError> {
        expect_done(self.write(Write::JoinRoom { room: room.into(), user: user.into() }).await?)
    }

    async fn leave_room(&self, room: &str, user: &str) -> Result<(), StoreError> {
        expect_done(self.write(Write::LeaveRoom { room: room.into(), user: user.into() }).await?)
    }

    async fn rooms_for(&self, user: &str) -> Result<Vec<RoomSummary>, StoreError> {
        let rows = self
            .query(
                "SELECT r.name, r.last_seq,
                        (SELECT COUNT(*) FROM memberships m WHERE m.room = r.name),
                        mine.last_read, r.private, r.archived, r.title, r.topic, mine.role, mine.muted,
                        unread.said, unread.mentions
                 FROM rooms r LEFT JOIN memberships mine ON mine.room = r.name AND mine.user_name = $1
                 LEFT JOIN (SELECT x.room, COUNT(*) AS said,
                                COUNT(*) FILTER (WHERE position(' ' || $1 || ' ' IN COALESCE(x.mentions, '')) > 0) AS mentions
                            FROM messages x JOIN memberships me ON me.room = x.room AND me.user_name = $1
                            WHERE x.seq > me.last_read AND x.change IS NULL AND NOT x.deleted
                              AND x.sender <> $1
                            GROUP BY x.room) unread ON unread.room = r.name
                 WHERE NOT r.private OR mine.user_name IS NOT NULL
                 ORDER BY r.name",
                &[&user],
            )
            .await?;
        Ok(rows.iter().map(room_summary).collect())
    }

    async fn mark_room_read(&self, room: &str, user: &str, seq: u64) -> Result<(), StoreError> {
        let write = Write::MarkRoomRead { room: room.into(), user: user.into(), seq };
        expect_done(self.write(write).await?)
    }

    async fn room_last_seq(&self, room: &str) -> Result<u64, StoreError> {
        let row = self.query_opt("SELECT last_seq FROM rooms WHERE name = $1", &[&room]).await?;
        row.map(|row| seq(&row, 0))
            .ok_or_else(|| StoreError::NotFound(Missing::Room(room.to_owned())))
    }

    async fn room_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.require_room(room).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                &format!(
                    "{MESSAGE_COLUMNS} WHERE m.room = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3"
                ),
                &[&room, &clamp(after), &limit],
            )
            .await?;
        Ok(rows.iter().map(|row| room_message(room, row)).collect())
    }

    async fn room_before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.require_room(room).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let before = before.map_or(i64::MAX, clamp);
        let rows = self
            .query(
                &format!("{MESSAGE_COLUMNS} WHERE m.room = $1 AND m.seq < $2 AND m.target IS NULL ORDER BY m.seq DESC LIMIT $3"),
                &[&room, &before, &limit],
            )
            .await?;
        Ok(rows.iter().rev().map(|row| room_message(room, row)).collect())
    }

    async fn post(&self, posts: Vec<NewPost>, now: Millis) -> Result<Vec<Stored>, StoreError> {
        match self.write(Write::Post { posts, now }).await? {
            Written::Stored(stored) => Ok(stored),
            other => {
                Err(StoreError::Failed(format!("unexpected answer from the writer: {other:?}")))
            }
        }
    }

    async fn inbox_last_seq(&self, user: &str) -> Result<u64, StoreError> {
        let row = self.query_opt("SELECT last_seq FROM inboxes WHERE owner = $1", &[&user]).await?;
        Ok(row.map_or(0, |row| seq(&row, 0)))
    }

    async fn inbox_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DirectMessage>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                &format!("{DM_COLUMNS} WHERE d.owner = $1 AND d.seq > $2 ORDER BY d.seq LIMIT $3"),
                &[&user, &clamp(after), &limit],
            )
            .await?;
        Ok(rows.iter().map(direct_message).collect())
    }

    async fn conversation_before(
        &self,
        user: &str,
        peer: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DirectMessage>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let before = before.map_or(i64::MAX, clamp);
        let rows = self
            .query(
                &format!(
                    "{DM_COLUMNS} WHERE d.owner = $1 AND d.peer = $2 AND d.seq < $3 AND d.target IS NULL
                     ORDER BY d.seq DESC LIMIT $4"
                ),
                &[&user, &peer, &before, &limit],
            )
            .await?;
        Ok(rows.iter().rev().map(direct_message).collect())
    }

    async fn search(&self, search: Search) -> Result<Vec<Found>, StoreError> {
        search::search(self, search).await
    }

    async fn dm_summaries(&self, user: &str) -> Result<Vec<DmSummary>, StoreError> {
        let rows = self
            .query(
                "SELECT d.peer, MAX(d.seq),
                        SUM(CASE WHEN d.sender = d.peer AND d.change IS NULL AND NOT d.deleted
                                 AND d.seq > COALESCE(r.last_read, 0) THEN 1 ELSE 0 END)
                 FROM direct_messages d LEFT JOIN dm_reads r ON r.owner = d.owner AND r.peer = d.peer
                 WHERE d.owner = $1 GROUP BY d.peer ORDER BY MAX(d.seq) DESC",
                &[&user],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| DmSummary { peer: row.get(0), last_seq: seq(row, 1), unread: seq(row, 2) })
            .collect())
    }

    async fn mark_dm_read(&self, user: &str, peer: &str, seq: u64) -> Result<(), StoreError> {
        let write = Write::MarkDmRead { user: user.into(), peer: peer.into(), seq };
        expect_done(self.write(write).await?)
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.query("SELECT 1", &[]).await.map(drop)
    }

    async fn room_owner(&self, room: &str) -> Result<Option<String>, StoreError> {
        self.require_room(room).await?;
        let row = self
            .query_opt(
                "SELECT user_name FROM memberships WHERE room = $1 AND role = 'owner'",
                &[&room],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn is_bot(&self, name: &str) -> Result<Option<bool>, StoreError> {
        let row = self.query_opt("SELECT bot FROM users WHERE name = $1", &[&name]).await?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn create_bot(&self, name: &str, now: Millis) -> Result<(), StoreError> {
        expect_done(self.write(Write::CreateBot { name: name.into(), now }).await?)
    }

    async fn create_webhook(&self, hook: NewHook, now: Millis) -> Result<(), StoreError> {
        expect_done(self.write(Write::CreateWebhook { hook, now }).await?)
    }

    fn upload_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join("confab-uploads")
    }

    async fn add_file(
        &self,
        file: FileRecord,
        content: std::path::PathBuf,
        thumb: Option<std::path::PathBuf>,
    ) -> Result<(), StoreError> {
        self.add(file, content, thumb).await
    }

    async fn unsent_files(&self, owner: &str) -> Result<u64, StoreError> {
        let row = self
            .query_opt("SELECT COUNT(*) FROM files WHERE owner = $1 AND NOT sent", &[&owner])
            .await?;
        Ok(row.map_or(0, |row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
    }

    async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        self.record(id).await
    }

    async fn file_bytes(&self, id: &str, thumb: bool) -> Result<Option<FileBytes>, StoreError> {
        self.bytes(id, thumb).await
    }

    async fn remove_avatar(&self, user: &str) -> Result<bool, StoreError> {
        self.unset_avatar(user).await
    }

    async fn collect_files(&self, unsent_before: Millis) -> Result<u64, StoreError> {
        self.collect(unsent_before).await
    }

    async fn webhooks(&self, room: &str) -> Result<Vec<Webhook>, StoreError> {
        self.require_room(room).await?;
        let rows = self
            .query(
                "SELECT id, room, bot_name, created_by, created_at FROM webhooks WHERE room = $1
                 ORDER BY created_at, id",
                &[&room],
            )
            .await?;
        Ok(rows.iter().map(webhook_row).collect())
    }

    async fn delete_webhook(&self, room: &str, id: &str) -> Result<bool, StoreError> {
        match self.write(Write::DeleteWebhook { room: room.into(), id: id.into() }).await? {
            Written::Deleted(deleted) => Ok(deleted),
            other => {
                Err(StoreError::Failed(format!("unexpected answer from the writer: {other:?}")))
            }
        }
    }

    async fn webhook(&self, secret_hash: &str) -> Result<Option<Webhook>, StoreError> {
        let row = self
            .query_opt(
                "SELECT id, room, bot_name, created_by, created_at FROM webhooks WHERE secret_hash = $1",
                &[&secret_hash],
            )
            .await?;
        Ok(row.as_ref().map(webhook_row))
    }

    async fn export(
        &self,
        sink: &mut (dyn FnMut(Vec<Record>) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        const BATCH: i32 = 1000;
        let mut client = self.pool.get().await?;
        // One snapshot for the whole export, while writers go on.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let tables: [(&str, fn(&Row) -> Record); 12] = [
            (
                "SELECT name, password_hash, created_at, bot, admin, deactivated, display_name, avatar
                 FROM users ORDER BY name",
                |row| Record::User {
                    name: row.get(0),
                    password_hash: row.get(1),
                    created_at: row.get(2),
                    bot: row.get(3),
                    admin: row.get(4),
                    deactivated: row.get(5),
                    display_name: row.get(6),
                    avatar: row.get(7),
                },
            ),
            (
                "SELECT name, created_by, created_at, last_seq, private, archived, title, topic
                 FROM rooms ORDER BY name",
                |row| Record::Room {
                    name: row.get(0),
                    created_by: row.get(1),
                    created_at: row.get(2),
                    last_seq: seq(row, 3),
                    private: row.get(4),
                    archived: row.get(5),
                    title: row.get(6),
                    topic: row.get(7),
                },
            ),
            (
                "SELECT room, user_name, last_read, role, muted FROM memberships ORDER BY room, user_name",
                |row| {
                    let role: String = row.get(3);
                    Record::Member {
                        room: row.get(0),
                        user: row.get(1),
                        last_read: seq(row, 2),
                        role: Role::parse(&role).unwrap_or(Role::Member),
                        muted: row.get(4),
                    }
                },
            ),
            (
                "SELECT room, user_name, banned_by, banned_at FROM bans ORDER BY room, user_name",
                |row| Record::Ban {
                    room: row.get(0),
                    user: row.get(1),
                    by: row.get(2),
                    at: row.get(3),
                },
            ),
            (
                "SELECT room, seq, sender, text, sent_at, idempotency_key, change, deleted,
                        reply_to, mentions, edited_at, reactions, files
                 FROM messages ORDER BY room, seq",
                |row| {
                    let change: Option<String> = row.get(6);
                    let reply_to: Option<i64> = row.get(8);
                    Record::Message {
                        room: row.get(0),
                        seq: seq(row, 1),
                        sender: row.get(2),
                        text: row.get(3),
                        sent_at: row.get(4),
                        key: row.get(5),
                        change: change.and_then(|json| serde_json::from_str(&json).ok()),
                        deleted: row.get(7),
                        reply_to: reply_to.and_then(|seq| u64::try_from(seq).ok()),
                        mentions: mentions_of(row.get(9)),
                        edited_at: row.get(10),
                        reactions: reactions_of(row.get(11)),
                        files: files_of(row.get(12)),
                    }
                },
            ),
            ("SELECT owner, last_seq FROM inboxes ORDER BY owner", |row| Record::Inbox {
                owner: row.get(0),
                last_seq: seq(row, 1),
            }),
            (
                "SELECT owner, seq, peer, sender, recipient, text, sent_at, idempotency_key,
                        change, deleted, edited_at, reactions, pair_seq, files
                 FROM direct_messages ORDER BY owner, seq",
                |row| {
                    let change: Option<String> = row.get(8);
                    let pair_seq: Option<i64> = row.get(12);
                    Record::Dm {
                        owner: row.get(0),
                        seq: seq(row, 1),
                        peer: row.get(2),
                        sender: row.get(3),
                        recipient: row.get(4),
                        text: row.get(5),
                        sent_at: row.get(6),
                        key: row.get(7),
                        change: change.and_then(|json| serde_json::from_str(&json).ok()),
                        deleted: row.get(9),
                        edited_at: row.get(10),
                        reactions: reactions_of(row.get(11)),
                        pair_seq: pair_seq.and_then(|seq| u64::try_from(seq).ok()),
                        files: files_of(row.get(13)),
                    }
                },
            ),
            ("SELECT owner, peer, last_read FROM dm_reads ORDER BY owner, peer", |row| {
                Record::DmRead { owner: row.get(0), peer: row.get(1), last_read: seq(row, 2) }
            }),
            (
                "SELECT id, room, bot_name, secret_hash, created_by, created_at FROM webhooks ORDER BY id",
                |row| Record::Webhook {
                    id: row.get(0),
                    room: row.get(1),
                    name: row.get(2),
                    secret_hash: row.get(3),
                    created_by: row.get(4),
                    created_at: row.get(5),
                },
            ),
            (
                "SELECT code_hash, id, kind, user_name, created_by, created_at, expires_at,
                        max_uses, uses, revoked FROM links ORDER BY id",
                |row| Record::Link {
                    code_hash: row.get(0),
                    id: row.get(1),
                    link: row.get(2),
                    user: row.get(3),
                    created_by: row.get(4),
                    created_at: row.get(5),
                    expires_at: row.get(6),
                    max_uses: u32::try_from(row.get::<_, i32>(7)).unwrap_or(0),
                    uses: u32::try_from(row.get::<_, i32>(8)).unwrap_or(0),
                    revoked: row.get(9),
                },
            ),
            files::EXPORT_FILES,
            files::EXPORT_PARTS,
        ];
        for (query, to_record) in tables {
            let statement = tx.prepare(query).await?;
            let portal = tx.bind(&statement, &[]).await?;
            // A file's piece is 256 KiB: a few at a time.
            let batch = if query == files::EXPORT_PARTS.0 { 4 } else { BATCH };
            loop {
                let rows = tx.query_portal(&portal, batch).await?;
                if rows.is_empty() {
                    break;
                }
                sink(rows.iter().map(to_record).collect())?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn import(&self, records: Vec<Record>) -> Result<(), StoreError> {
        expect_done(self.write(Write::Import { records }).await?)
    }
}
