//! The embedded store: one SQLite file, the default.
//!
//! One thread owns the only writing connection. It takes every write that is waiting (up
//! to [`MAX_BATCH`]), runs each in its own savepoint of one transaction, and commits once:
//! under load one fsync covers many messages, and a request that fails rolls back only its
//! own savepoint. Nobody hears of a write before the commit. Reads use a small pool of other
//! connections on tokio's blocking threads; WAL lets them run beside the writer.
//!
//! The file is synced on every commit (`synchronous=FULL`): a RECEIPT means the message is
//! on disk, and a power cut cannot take back an id a client already holds.

mod accounts;
pub mod backup;
mod dms;
mod files;
mod queries;
mod rooms;
mod schema;
mod search;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use shared::api::{Account, DmSummary, Invitation, Person, RoomMembers, RoomSummary, Webhook};
use shared::chat::{ChatMessage, DirectMessage, Millis, RoomChange};
use tokio::sync::{Semaphore, oneshot};

use super::{
    AccountChange, Admission, DmCopies, FileBytes, FileRecord, Found, NewHook, NewLink, NewPost,
    Record, Search, Store, StoreError, Stored, TokenOwner, TokenRecord,
};
use crate::access::Standing;

/// Writes committed together at most.
const MAX_BATCH: usize = 256;
/// Reader connections kept open for reuse, and reads at once.
const READER_POOL: usize = 4;

/// What a write job hands back to run once the batch's commit is known.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write: runs in its savepoint, says how it went, and how to answer.
type Job = Box<dyn FnOnce(&Connection) -> (Done, Reply) + Send>;

/// How a job went, for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// Keep its savepoint.
    Keep,
    /// Roll its savepoint back.
    Discard,
    /// Roll back: the store is out of space.
    OutOfSpace,
}

/// Options of the embedded store.
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    /// The largest the file may grow, in bytes; writes beyond fail as if the disk were
    /// full. `None`: as large as the disk allows.
    pub max_bytes: Option<u64>,
}

/// The embedded store; a cheap handle.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: std::sync::mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    read_slots: Arc<Semaphore>,
    /// The last write failed for lack of space or an I/O error; cleared by the next
    /// write that commits.
    degraded: Arc<AtomicBool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        match error.sqlite_error_code() {
            // Out of space, or the disk failing: nothing was written, and the same write may
            // work once there is room again.
            Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => {
                StoreError::Unavailable
            }
            _ => StoreError::Failed(error.to_string()),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `confab.db` in `dir`, migrates it, and starts the writer.
    pub fn open(dir: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            StoreError::Failed(format!("cannot create {}: {error}", dir.display()))
        })?;
        let path = dir.join("confab.db");
        SqliteStore::make_file_dirs(dir)?;
        let mut writer = open_connection(&path)?;
        schema::migrate(&mut writer)?;
        if let Some(max_bytes) = options.max_bytes {
            let page_size: u64 = writer.pragma_query_value(None, "page_size", |row| row.get(0))?;
            writer.pragma_update(None, "max_page_count", (max_bytes / page_size).max(1))?;
        }
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let degraded = Arc::new(AtomicBool::new(false));
        let writer_degraded = degraded.clone();
        std::thread::Builder::new()
            .name("confab-sqlite-writer".into())
            .spawn(move || write_loop(writer, &queue, &writer_degraded))
            .map_err(|error| {
                StoreError::Failed(format!("cannot start the writer thread: {error}"))
            })?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                jobs,
                readers: Mutex::new(Vec::new()),
                read_slots: Arc::new(Semaphore::new(READER_POOL)),
                degraded,
            }),
        })
    }

    /// Runs `job` on the writer thread in its own savepoint, and answers after the commit.
    async fn write<R: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let outcome = job(connection);
            let done = match &outcome {
                Ok(_) => Done::Keep,
                Err(StoreError::Unavailable) => Done::OutOfSpace,
                Err(_) => Done::Discard,
            };
            let reply: Reply = Box::new(move |commit| {
                let _ = reply.send(commit.and(outcome));
            });
            (done, reply)
        });
        self.inner.jobs.send(job).map_err(|_| StoreError::Unavailable)?;
        result.await.map_err(|_| StoreError::Unavailable)?
    }

    /// Runs `query` on a reader connection, on a blocking thread.
    async fn read<R: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        // At most READER_POOL reads at once, each on a pooled connection: a burst waits its
        // turn instead of opening hundreds of connections on as many blocking threads.
        let permit = self
            .inner
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = lock(&inner.readers).pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => open_connection(&inner.path)?,
            };
            let result = query(&connection);
            let mut readers = lock(&inner.readers);
            if readers.len() < READER_POOL {
                readers.push(connection);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Unavailable)?
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    // WAL lets readers run beside the one writer. FULL syncs every commit: a message that
    // got a RECEIPT survives a power cut, and ids never roll back (security review L3).
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(connection)
}

/// The writer thread: batches of jobs, one commit each. Ends when every handle is gone.
fn write_loop(
    mut connection: Connection,
    queue: &std::sync::mpsc::Receiver<Job>,
    degraded: &AtomicBool,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (replies, commit, out_of_space) = run_batch(&mut connection, batch);
        let full = out_of_space || matches!(commit, Err(StoreError::Unavailable));
        degraded.store(full, Ordering::Relaxed);
        for reply in replies {
            reply(copy_outcome(&commit));
        }
    }
}

/// Runs each job in its savepoint of one transaction and commits. Jobs that cannot run
/// are dropped, which their callers hear as the store being unavailable.
fn run_batch(
    connection: &mut Connection,
    batch: Vec<Job>,
) -> (Vec<Reply>, Result<(), StoreError>, bool) {
    let mut tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            let error = StoreError::from(error);
            let out_of_space = matches!(error, StoreError::Unavailable);
            return (Vec::new(), Err(error), out_of_space);
        }
    };
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = match tx.savepoint() {
            Ok(savepoint) => savepoint,
            Err(error) => {
                tracing::error!(%error, "cannot open a savepoint");
                continue;
            }
        };
        let (done, reply) = job(&savepoint);
        replies.push(reply);
        match done {
            Done::Keep => {
                if let Err(error) = savepoint.commit() {
                    let error = StoreError::from(error);
                    tracing::error!(%error, "cannot release a savepoint");
                    // The search index writes its words when a savepoint is released: out
                    // of space there, SQLite rolls the whole transaction back. Nothing of
                    // this batch is kept, as below.
                    if matches!(error, StoreError::Unavailable) || tx.is_autocommit() {
                        drop(tx);
                        return (replies, Err(StoreError::Unavailable), true);
                    }
                }
            }
            // Dropping a savepoint rolls it back.
            Done::Discard => drop(savepoint),
            Done::OutOfSpace => {
                // SQLite may have rolled the whole transaction back already: nothing of
                // this batch is kept, and its callers hear that the store is unavailable.
                // The jobs not run yet are dropped, which their callers hear the same way.
                drop(savepoint);
                drop(tx);
                return (replies, Err(StoreError::Unavailable), true);
            }
        }
    }
    let commit = tx.commit().map_err(StoreError::from);
    (replies, commit, false)
}

/// The commit's outcome, once per reply (`StoreError` is not `Clone`).
fn copy_outcome(outcome: &Result<(), StoreError>) -> Result<(), StoreError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(StoreError::Unavailable) => Err(StoreError::Unavailable),
        Err(error) => Err(StoreError::Failed(error.to_string())),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        now: Millis,
        admission: &Admission,
    ) -> Result<bool, StoreError> {
        let (name, hash, admission) =
            (name.to_owned(), password_hash.to_owned(), admission.clone());
        self.write(move |connection| {
            queries::create_user(connection, &name, &hash, now, &admission)
        })
        .await
    }

    async fn has_people(&self) -> Result<bool, StoreError> {
        self.read(accounts::has_people).await
    }

    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let name = name.to_owned();
        self.read(move |connection| accounts::account(connection, &name)).await
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(accounts::accounts).await
    }

    async fn people(&self) -> Result<Vec<Person>, StoreError> {
        self.read(accounts::people).await
    }

    async fn update_account(
        &self,
        name: &str,
        change: AccountChange,
    ) -> Result<Vec<String>, StoreError> {
        let name = name.to_owned();
        self.write(move |connection| accounts::update_account(connection, &name, &change)).await
    }

    async fn sessions(&self, user: &str, now: Millis) -> Result<Vec<TokenRecord>, StoreError> {
        let user = user.to_owned();
        self.read(move |connection| accounts::sessions(connection, &user, now)).await
    }

    async fn create_link(&self, link: NewLink, now: Millis) -> Result<(), StoreError> {
        self.write(move |connection| accounts::create_link(connection, &link, now)).await
    }

    async fn invitations(&self) -> Result<Vec<Invitation>, StoreError> {
        self.read(accounts::invitations).await
    }

    async fn revoke_invitation(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |connection| accounts::revoke_invitation(connection, &id)).await
    }

    async fn redeem_reset(
        &self,
        code_hash: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<(String, Vec<String>), StoreError> {
        let (code, hash) = (code_hash.to_owned(), password_hash.to_owned());
        self.write(move |connection| accounts::redeem_reset(connection, &code, &hash, now)).await
    }

    async fn messages_since(&self, since: Millis) -> Result<u64, StoreError> {
        self.read(move |connection| accounts::messages_since(connection, since)).await
    }

    async fn standing(&self, room: &str, user: &str) -> Result<Option<Standing>, StoreError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.read(move |connection| rooms::standing(connection, &room, &user)).await
    }

    async fn members(&self, room: &str) -> Result<RoomMembers, StoreError> {
        let room = room.to_owned();
        self.read(move |connection| rooms::members(connection, &room)).await
    }

    async fn change_room(
        &self,
        room: &str,
        actor: &str,
        change: RoomChange,
        now: Millis,
    ) -> Result<ChatMessage, StoreError> {
        let (room, actor) = (room.to_owned(), actor.to_owned());
        self.write(move |connection| rooms::change_room(connection, &room, &actor, &change, now))
            .await
    }

    async fn all_rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        self.read(queries::all_rooms).await
    }

    async fn change_dm(
        &self,
        actor: &str,
        peer: &str,
        change: RoomChange,
        now: Millis,
    ) -> Result<DmCopies, StoreError> {
        let (actor, peer) = (actor.to_owned(), peer.to_owned());
        self.write(move |connection| dms::change_dm(connection, &actor, &peer, &change, now)).await
    }

    async fn password_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.read(move |connection| queries::password_hash(connection, &name)).await
    }

    async fn user_exists(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.read(move |connection| queries::user_exists(connection, &name)).await
    }

    async fn room_owner(&self, room: &str) -> Result<Option<String>, StoreError> {
        let room = room.to_owned();
        self.read(move |connection| queries::room_owner(connection, &room)).await
    }

    async fn is_bot(&self, name: &str) -> Result<Option<bool>, StoreError> {
        let name = name.to_owned();
        self.read(move |connection| queries::is_bot(connection, &name)).await
    }

    async fn create_bot(&self, name: &str, now: Millis) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |connection| queries::create_bot(connection, &name, now)).await
    }

    async fn create_webhook(&self, hook: NewHook, now: Millis) -> Result<(), StoreError> {
        self.write(move |connection| queries::create_webhook(connection, &hook, now)).await
    }

    fn upload_dir(&self) -> PathBuf {
        self.incoming_dir()
    }

    async fn add_file(
        &self,
        file: FileRecord,
        content: PathBuf,
        thumb: Option<PathBuf>,
    ) -> Result<(), StoreError> {
        self.add(file, content, thumb).await
    }

    async fn unsent_files(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        self.read(move |connection| {
            Ok(connection.query_row(
                "SELECT COUNT(*) FROM files WHERE owner = ?1 AND sent = 0",
                rusqlite::params![owner],
                |row| row.get(0),
            )?)
        })
        .await
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
        let room = room.to_owned();
        self.read(move |connection| queries::webhooks(connection, &room)).await
    }

    async fn delete_webhook(&self, room: &str, id: &str) -> Result<bool, StoreError> {
        let (room, id) = (room.to_owned(), id.to_owned());
        self.write(move |connection| queries::delete_webhook(connection, &room, &id)).await
    }

    async fn webhook(&self, secret_hash: &str) -> Result<Option<Webhook>, StoreError> {
        let hash = secret_hash.to_owned();
        self.read(move |connection| queries::webhook(connection, &hash)).await
    }

    async fn store_token(
        &self,
        token_hash: &str,
        user: &str,
        now: Millis,
        expires_at: Millis,
        device: &str,
    ) -> Result<(), StoreError> {
        let (hash, user, device) = (token_hash.to_owned(), user.to_owned(), device.to_owned());
        self.write(move |connection| {
            queries::store_token(connection, &hash, &user, now, expires_at, &device)
        })
        .await
    }

    async fn token_owner(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<TokenOwner>, StoreError> {
        let hash = token_hash.to_owned();
        self.read(move |connection| queries::token_owner(connection, &hash, now)).await
    }

    async fn extend_token(
        &self,
        token_hash: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<(), StoreError> {
        let hash = token_hash.to_owned();
        self.write(move |connection| queries::extend_token(connection, &hash, expires_at, now))
            .await
    }

    async fn revoke_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let hash = token_hash.to_owned();
        self.write(move |connection| queries::revoke_token(connection, &hash)).await
    }

    async fn create_room(
        &self,
        name: &str,
        creator: &str,
        now: Millis,
        private: bool,
    ) -> Result<(), StoreError> {
        let (name, creator) = (name.to_owned(), creator.to_owned());
        self.write(move |connection| {
            queries::create_room(connection, &name, &creator, now, private)
        })
        .await
    }

    async fn room_exists(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.read(move |connection| queries::room_exists(connection, &name)).await
    }

    async fn rooms_created_by(&self, user: &str) -> Result<u64, StoreError> {
        let user = user.to_owned();
        self.read(move |connection| queries::rooms_created_by(connection, &user)).await
    }

    async fn is_member(&self, room: &str, user: &str) -> Result<bool, StoreError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.read(move |connection| queries::is_member(connection, &room, &user)).await
    }

    async fn join_room(&self, room: &str, user: &str) -> Result<(), StoreError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.write(move |connection| queries::join_room(connection, &room, &user)).await
    }

    async fn leave_room(&self, room: &str, user: &str) -> Result<(), StoreError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.write(move |connection| queries::leave_room(connection, &room, &user)).await
    }

    async fn rooms_for(&self, user: &str) -> Result<Vec<RoomSummary>, StoreError> {
        let user = user.to_owned();
        self.read(move |connection| queries::rooms_for(connection, &user)).await
    }

    async fn mark_room_read(&self, room: &str, user: &str, seq: u64) -> Result<(), StoreError> {
        let (room, user) = (room.to_owned(), user.to_owned());
        self.write(move |connection| queries::mark_room_read(connection, &room, &user, seq)).await
    }

    async fn room_last_seq(&self, room: &str) -> Result<u64, StoreError> {
        let room = room.to_owned();
        self.read(move |connection| queries::room_last_seq(connection, &room)).await
    }

    async fn room_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let room = room.to_owned();
        self.read(move |connection| queries::room_after(connection, &room, after, limit)).await
    }

    async fn room_before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let room = room.to_owned();
        self.read(move |connection| queries::room_before(connection, &room, before, limit)).await
    }

    async fn post(&self, posts: Vec<NewPost>, now: Millis) -> Result<Vec<Stored>, StoreError> {
        self.write(move |connection| queries::post(connection, &posts, now)).await
    }

    async fn inbox_last_seq(&self, user: &str) -> Result<u64, StoreError> {
        let user = user.to_owned();
        self.read(move |connection| queries::inbox_last_seq(connection, &user)).await
    }

    async fn inbox_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DirectMessage>, StoreError> {
        let user = user.to_owned();
        self.read(move |connection| queries::inbox_after(connection, &user, after, limit)).await
    }

    async fn conversation_before(
        &self,
        user: &str,
        peer: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DirectMessage>, StoreError> {
        let (user, peer) = (user.to_owned(), peer.to_owned());
        self.read(move |connection| {
            queries::conversation_before(connection, &user, &peer, before, limit)
        })
        .await
    }

    async fn search(&self, search: Search) -> Result<Vec<Found>, StoreError> {
        self.read(move |connection| search::search(connection, &search)).await
    }

    async fn dm_summaries(&self, user: &str) -> Result<Vec<DmSummary>, StoreError> {
        let user = user.to_owned();
        self.read(move |connection| queries::dm_summaries(connection, &user)).await
    }

    async fn mark_dm_read(&self, user: &str, peer: &str, seq: u64) -> Result<(), StoreError> {
        let (user, peer) = (user.to_owned(), peer.to_owned());
        self.write(move |connection| queries::mark_dm_read(connection, &user, &peer, seq)).await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        if !self.inner.degraded.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The last write failed for space: try one that needs room for a message or two,
        // and keep nothing of it. Success clears the flag.
        self.write(|connection| {
            connection.execute_batch(
                "INSERT INTO space_probe (filler) VALUES (zeroblob(16384));
                 DELETE FROM space_probe;",
            )?;
            Ok(())
        })
        .await
    }

    async fn export(
        &self,
        sink: &mut (dyn FnMut(Vec<Record>) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        // One read transaction: the snapshot of one moment, while writers go on.
        let mut connection = open_connection(&self.inner.path)?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Deferred)?;
        queries::export(&tx, sink)?;
        self.export_files(&tx, sink)
    }

    async fn import(&self, records: Vec<Record>) -> Result<(), StoreError> {
        self.import_parts(&records).await?;
        self.write(move |connection| queries::import(connection, &records)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_commit_is_synced() {
        // Security review L3: a RECEIPT means the message survives a power cut.
        let dir = tempfile::tempdir().unwrap();
        let connection = open_connection(&dir.path().join("confab.db")).unwrap();
        let synchronous: i64 =
            connection.pragma_query_value(None, "synchronous", |row| row.get(0)).unwrap();
        assert_eq!(synchronous, 2, "FULL");
    }

    #[tokio::test]
    async fn a_full_store_is_unavailable_and_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions { max_bytes: Some(1 << 20) };
        let store = SqliteStore::open(dir.path(), options).unwrap();
        store.create_user("ann", "hash", 1, &Admission::OPEN).await.unwrap();
        let text = "z".repeat(3_900);
        let mut outcome = Ok(Vec::new());
        for _ in 0..1_000 {
            let post = NewPost::Room {
                room: shared::chat::LOBBY.into(),
                sender: "ann".into(),
                text: text.clone(),
                key: None,
                bot: false,
                reply_to: None,
                files: Vec::new(),
            };
            outcome = store.post(vec![post], 1).await;
            if outcome.is_err() {
                break;
            }
        }
        assert!(matches!(outcome, Err(StoreError::Unavailable)), "{outcome:?}");
        assert!(matches!(store.ready().await, Err(StoreError::Unavailable)));
    }
}
