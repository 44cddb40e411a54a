//! Files of the embedded store: each one's bytes in `files/<id>` beside `confab.db` (its
//! thumbnail in `files/<id>.thumb`), its row in the database. A row is written after its
//! bytes are in place and deleted before they go: a reader never finds a row without
//! bytes. Deleted rows queue their ids (`files_gone`, by trigger) for
//! [`SqliteStore::collect_files`], which removes the bytes after the deleting commit.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use rusqlite::{Connection, OptionalExtension, params};
use shared::chat::{Attachment, Millis};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::SqliteStore;
use super::queries::image_size;
use crate::store::records::FILE_PART_BYTES;
use crate::store::{FileBytes, FileRecord, Missing, PlaceColumns, Record, StoreError, place};

/// How much of a file one read takes.
const PIECE: usize = 64 * 1024;

/// Uploads older than this in `files/incoming` were abandoned by a process that stopped.
const STALE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Deletes the rows of `ids`; their bytes go at the next collection.
pub(super) fn delete(connection: &Connection, ids: &[String]) -> Result<(), StoreError> {
    let mut statement = connection.prepare_cached("DELETE FROM files WHERE id = ?1")?;
    for id in ids {
        statement.execute(params![id])?;
    }
    Ok(())
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> StoreError {
    if error.raw_os_error() == Some(28) {
        // ENOSPC: the same upload may fit later.
        return StoreError::Unavailable;
    }
    StoreError::Failed(format!("cannot {what} {}: {error}", path.display()))
}

fn insert(connection: &Connection, file: &FileRecord) -> Result<(), StoreError> {
    let PlaceColumns { sent, room, peer, avatar } = file.place.columns();
    if avatar {
        replace_avatar(connection, &file.owner, Some(&file.attachment.id))?;
    }
    let Attachment { id, name, mime, size, image } = &file.attachment;
    connection.execute(
        "INSERT INTO files (id, owner, name, mime, size, width, height, thumb, created_at, sent, room, peer, avatar)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            id,
            file.owner,
            name,
            mime,
            size,
            image.map(|(width, _)| width),
            image.map(|(_, height)| height),
            file.thumb,
            file.created_at,
            sent,
            room,
            peer,
            avatar
        ],
    )?;
    Ok(())
}

/// Makes `new` (or nothing) `user`'s picture, deleting the one before; which that was.
/// `NotFound` for no such user.
fn replace_avatar(
    connection: &Connection,
    user: &str,
    new: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let old: Option<String> = connection
        .query_row("SELECT avatar FROM users WHERE name = ?1", params![user], |row| row.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(Missing::User(user.to_owned())))?;
    delete(connection, old.as_slice())?;
    connection.execute("UPDATE users SET avatar = ?2 WHERE name = ?1", params![user, new])?;
    Ok(old)
}

fn record(connection: &Connection, id: &str) -> Result<Option<FileRecord>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT owner, name, mime, size, width, height, thumb, created_at, sent, room, peer, avatar
         FROM files WHERE id = ?1",
    )?;
    Ok(statement
        .query_row(params![id], |row| {
            let (sent, room, peer, avatar): (bool, Option<String>, Option<String>, bool) =
                (row.get(8)?, row.get(9)?, row.get(10)?, row.get(11)?);
            Ok(FileRecord {
                attachment: Attachment {
                    id: id.to_owned(),
                    name: row.get(1)?,
                    mime: row.get(2)?,
                    size: row.get(3)?,
                    image: image_size(row.get(4)?, row.get(5)?),
                },
                owner: row.get(0)?,
                created_at: row.get(7)?,
                place: place(sent, room, peer, avatar),
                thumb: row.get(6)?,
            })
        })
        .optional()?)
}

/// Reads until `buffer` is full or the file ends; how much was read.
fn read_full(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}

/// A file read a piece at a time.
pub(crate) fn stream_file(file: tokio::fs::File) -> FileBytes {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = bytes::BytesMut::with_capacity(PIECE);
        match file.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buffer.freeze()), Some(file))),
            Err(error) => Some((Err(error), None)),
        }
    })
    .boxed()
}

impl SqliteStore {
    fn files_dir(&self) -> PathBuf {
        self.inner.path.with_file_name("files")
    }

    fn blob_path(&self, id: &str, thumb: bool) -> PathBuf {
        self.files_dir().join(if thumb { format!("{id}.thumb") } else { id.to_owned() })
    }

    pub(super) fn incoming_dir(&self) -> PathBuf {
        self.files_dir().join("incoming")
    }

    pub(super) async fn add(
        &self,
        file: FileRecord,
        content: PathBuf,
        thumb: Option<PathBuf>,
    ) -> Result<(), StoreError> {
        // Ids are checked by whoever made them; a path is never built from anything else.
        if !shared::api::is_file_id(&file.attachment.id) {
            return Err(StoreError::Failed("not a file id".into()));
        }
        let id = file.attachment.id.clone();
        let mut placed = Vec::new();
        for (from, is_thumb) in [(Some(content), false), (thumb, true)] {
            let Some(from) = from else { continue };
            let to = self.blob_path(&id, is_thumb);
            if let Err(error) = tokio::fs::rename(&from, &to).await {
                let _ = tokio::fs::remove_file(&from).await;
                self.remove_blobs(&placed).await;
                return Err(io_error("store the file as", &to, error));
            }
            placed.push(to);
        }
        let written = self.write(move |connection| insert(connection, &file)).await;
        if written.is_err() {
            self.remove_blobs(&placed).await;
        }
        written
    }

    async fn remove_blobs(&self, paths: &[PathBuf]) {
        for path in paths {
            if let Err(error) = tokio::fs::remove_file(path).await
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(%error, path = %path.display(), "cannot remove a file's bytes");
            }
        }
    }

    pub(super) async fn record(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |connection| record(connection, &id)).await
    }

    pub(super) async fn bytes(
        &self,
        id: &str,
        thumb: bool,
    ) -> Result<Option<FileBytes>, StoreError> {
        if !shared::api::is_file_id(id) {
            return Ok(None);
        }
        let path = self.blob_path(id, thumb);
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Some(stream_file(file))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("read", &path, error)),
        }
    }

    pub(super) async fn unset_avatar(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_owned();
        self.write(move |connection| Ok(replace_avatar(connection, &user, None)?.is_some())).await
    }

    pub(super) async fn collect(&self, unsent_before: Millis) -> Result<u64, StoreError> {
        self.write(move |connection| {
            connection.execute(
                "DELETE FROM files WHERE sent = 0 AND created_at < ?1",
                params![unsent_before],
            )?;
            Ok(())
        })
        .await?;
        let gone: Vec<String> = self
            .read(|connection| {
                let mut statement = connection.prepare("SELECT DISTINCT id FROM files_gone")?;
                let ids = statement.query_map([], |row| row.get(0))?;
                Ok(ids.collect::<Result<_, _>>()?)
            })
            .await?;
        for id in gone.iter().filter(|id| shared::api::is_file_id(id)) {
            self.remove_blobs(&[self.blob_path(id, false), self.blob_path(id, true)]).await;
        }
        let count = gone.len() as u64;
        if !gone.is_empty() {
            self.write(move |connection| {
                let mut statement =
                    connection.prepare_cached("DELETE FROM files_gone WHERE id = ?1")?;
                for id in &gone {
                    statement.execute(params![id])?;
                }
                Ok(())
            })
            .await?;
        }
        self.remove_stale_uploads().await;
        Ok(count)
    }

    /// Uploads a stopped process left half-written.
    async fn remove_stale_uploads(&self) {
        let Ok(mut entries) = tokio::fs::read_dir(self.incoming_dir()).await else { return };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let stale = entry
                .metadata()
                .await
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > STALE_UPLOAD);
            if stale {
                self.remove_blobs(&[entry.path()]).await;
            }
        }
    }

    /// Every file as export records: its row, then its bytes in pieces (a file whose bytes
    /// are gone, deleted since the snapshot began, is left out).
    pub(super) fn export_files(
        &self,
        connection: &Connection,
        sink: &mut (dyn FnMut(Vec<Record>) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        use base64::Engine as _;
        let mut statement = connection.prepare(
            "SELECT id, owner, name, mime, size, width, height, thumb, created_at, sent, room, peer, avatar
             FROM files ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Record::File {
                attachment: Attachment {
                    id: row.get(0)?,
                    name: row.get(2)?,
                    mime: row.get(3)?,
                    size: row.get(4)?,
                    image: image_size(row.get(5)?, row.get(6)?),
                },
                owner: row.get(1)?,
                thumb: row.get(7)?,
                created_at: row.get(8)?,
                sent: row.get(9)?,
                room: row.get(10)?,
                peer: row.get(11)?,
                avatar: row.get(12)?,
            })
        })?;
        let mut files: Vec<Record> = rows.collect::<Result<_, _>>()?;
        files.retain(|file| match file {
            Record::File { attachment, .. } => self.blob_path(&attachment.id, false).exists(),
            _ => false,
        });
        // Every row, then every file's pieces (its own, then its thumbnail's), as
        // PostgreSQL's export orders them.
        let pieces: Vec<(String, bool)> = files
            .iter()
            .filter_map(|file| match file {
                Record::File { attachment, thumb, .. } => Some((attachment.id.clone(), *thumb)),
                _ => None,
            })
            .collect();
        sink(files)?;
        for (id, has_thumb) in pieces {
            let Ok(content) = std::fs::File::open(self.blob_path(&id, false)) else { continue };
            let thumb =
                if has_thumb { std::fs::File::open(self.blob_path(&id, true)).ok() } else { None };
            for (is_thumb, mut bytes) in [(false, Some(content)), (true, thumb)]
                .into_iter()
                .filter_map(|(is_thumb, file)| Some((is_thumb, file?)))
            {
                let mut buffer = vec![0u8; FILE_PART_BYTES];
                for part in 0_u32.. {
                    let read = read_full(&mut bytes, &mut buffer)
                        .map_err(|error| io_error("read", &self.blob_path(&id, is_thumb), error))?;
                    if read == 0 && part > 0 {
                        break;
                    }
                    let data = base64::engine::general_purpose::STANDARD.encode(&buffer[..read]);
                    sink(vec![Record::FilePart { id: id.clone(), thumb: is_thumb, part, data }])?;
                    if read < FILE_PART_BYTES {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the bytes of imported files; their rows come with the other records.
    pub(super) async fn import_parts(&self, records: &[Record]) -> Result<(), StoreError> {
        use base64::Engine as _;
        for record in records {
            let Record::FilePart { id, thumb, part, data } = record else { continue };
            if !shared::api::is_file_id(id) {
                return Err(StoreError::Corrupt(format!("{id:?} is not a file id")));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|error| StoreError::Corrupt(format!("file {id}: {error}")))?;
            let path = self.blob_path(id, *thumb);
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(*part > 0)
                .truncate(*part == 0)
                .open(&path)
                .await
                .map_err(|error| io_error("write", &path, error))?;
            file.write_all(&bytes).await.map_err(|error| io_error("write", &path, error))?;
            file.sync_all().await.map_err(|error| io_error("write", &path, error))?;
        }
        Ok(())
    }

    /// Makes the directories files live in.
    pub(super) fn make_file_dirs(dir: &Path) -> Result<(), StoreError> {
        let incoming = dir.join("files").join("incoming");
        std::fs::create_dir_all(&incoming).map_err(|error| io_error("create", &incoming, error))
    }
}
