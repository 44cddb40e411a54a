//! Files in PostgreSQL: a row in `files` and the bytes in `file_parts`, pieces of at most
//! [`PART`] bytes, so that neither an upload nor a download ever holds a whole file. The
//! parts go with their row (`ON DELETE CASCADE`), in the deleting transaction.

use futures_util::StreamExt;
use shared::chat::{Attachment, Millis};
use tokio::io::AsyncReadExt;
use tokio_postgres::GenericClient;

use super::{Failure, PostgresStore};
use crate::store::{
    FileBytes, FilePlace, FileRecord, Missing, PlaceColumns, Record, StoreError, place,
};

/// The largest piece of a file in one row: as in an export, so that pieces move as they are.
const PART: usize = crate::store::records::FILE_PART_BYTES;

/// Sends `sender`'s unsent files to `place`: `NotFound` for any other file.
pub(super) async fn send(
    tx: &impl GenericClient,
    sender: &str,
    ids: &[String],
    place: FilePlace,
) -> Result<Vec<Attachment>, Failure> {
    let PlaceColumns { room, peer, .. } = place.columns();
    let statement = tx
        .prepare(
            "UPDATE files SET sent = true, room = $3, peer = $4
             WHERE id = $1 AND owner = $2 AND NOT sent AND NOT avatar
             RETURNING name, mime, size, width, height",
        )
        .await?;
    let mut sent = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(row) = tx.query_opt(&statement, &[id, &sender, &room, &peer]).await? else {
            return Err(Failure::Refused(StoreError::NotFound(Missing::File(id.clone()))));
        };
        sent.push(Attachment {
            id: id.clone(),
            name: row.get(0),
            mime: row.get(1),
            size: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
            image: image_size(row.get(3), row.get(4)),
        });
    }
    Ok(sent)
}

fn image_size(width: Option<i32>, height: Option<i32>) -> Option<(u32, u32)> {
    let width = u32::try_from(width?).ok()?;
    let height = u32::try_from(height?).ok()?;
    Some((width, height))
}

/// Deletes the files of `ids`, bytes and all.
pub(super) async fn delete(tx: &impl GenericClient, ids: &[String]) -> Result<(), Failure> {
    if !ids.is_empty() {
        tx.execute("DELETE FROM files WHERE id = ANY($1)", &[&ids]).await?;
    }
    Ok(())
}

/// Copies a file into `file_parts`, a piece at a time.
async fn copy_in(
    tx: &impl GenericClient,
    id: &str,
    thumb: bool,
    path: &std::path::Path,
) -> Result<(), StoreError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|error| StoreError::Failed(format!("cannot read an upload: {error}")))?;
    let statement = tx
        .prepare("INSERT INTO file_parts (id, thumb, part, data) VALUES ($1, $2, $3, $4)")
        .await?;
    let mut buffer = Vec::with_capacity(PART);
    for part in 0_i32.. {
        buffer.clear();
        (&mut file)
            .take(PART as u64)
            .read_to_end(&mut buffer)
            .await
            .map_err(|error| StoreError::Failed(format!("cannot read an upload: {error}")))?;
        if buffer.is_empty() && part > 0 {
            break;
        }
        tx.execute(&statement, &[&id, &thumb, &part, &buffer.as_slice()]).await?;
        if buffer.len() < PART {
            break;
        }
    }
    Ok(())
}

/// The export's query of file rows, and how a row becomes a record.
pub(super) const EXPORT_FILES: (&str, fn(&tokio_postgres::Row) -> Record) = (
    "SELECT id, owner, name, mime, size, width, height, thumb, created_at, sent, room, peer, avatar
     FROM files ORDER BY id",
    |row| Record::File {
        attachment: Attachment {
            id: row.get(0),
            name: row.get(2),
            mime: row.get(3),
            size: u64::try_from(row.get::<_, i64>(4)).unwrap_or(0),
            image: image_size(row.get(5), row.get(6)),
        },
        owner: row.get(1),
        thumb: row.get(7),
        created_at: row.get(8),
        sent: row.get(9),
        room: row.get(10),
        peer: row.get(11),
        avatar: row.get(12),
    },
);

/// The export's query of files' bytes, in order, and how a piece becomes a record.
pub(super) const EXPORT_PARTS: (&str, fn(&tokio_postgres::Row) -> Record) =
    ("SELECT id, thumb, part, data FROM file_parts ORDER BY id, thumb, part", |row| {
        use base64::Engine as _;
        Record::FilePart {
            id: row.get(0),
            thumb: row.get(1),
            part: u32::try_from(row.get::<_, i32>(2)).unwrap_or(0),
            data: base64::engine::general_purpose::STANDARD.encode(row.get::<_, &[u8]>(3)),
        }
    });

/// Adds an exported file's row, or a piece of its bytes.
pub(super) async fn import(tx: &impl GenericClient, record: &Record) -> Result<(), Failure> {
    use base64::Engine as _;
    match record {
        Record::File { attachment, owner, created_at, thumb, sent, room, peer, avatar } => {
            let Attachment { id, name, mime, size, image } = attachment;
            tx.execute(
                "INSERT INTO files (id, owner, name, mime, size, width, height, thumb, created_at,
                     sent, room, peer, avatar)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[
                    id,
                    owner,
                    name,
                    mime,
                    &i64::try_from(*size).unwrap_or(i64::MAX),
                    &image.and_then(|(width, _)| i32::try_from(width).ok()),
                    &image.and_then(|(_, height)| i32::try_from(height).ok()),
                    thumb,
                    created_at,
                    sent,
                    room,
                    peer,
                    avatar,
                ],
            )
            .await?;
        }
        Record::FilePart { id, thumb, part, data } => {
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(data).map_err(|error| {
                    Failure::Refused(StoreError::Corrupt(format!("file {id}: {error}")))
                })?;
            tx.execute(
                "INSERT INTO file_parts (id, thumb, part, data) VALUES ($1, $2, $3, $4)",
                &[id, thumb, &i32::try_from(*part).unwrap_or(i32::MAX), &bytes],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Makes `new` (or nothing) `user`'s picture, deleting the one before; which that was.
/// `NotFound` for no such user.
async fn replace_avatar(
    tx: &impl GenericClient,
    user: &str,
    new: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let old: Option<String> = tx
        .query_opt("SELECT avatar FROM users WHERE name = $1 FOR UPDATE", &[&user])
        .await?
        .ok_or_else(|| StoreError::NotFound(Missing::User(user.to_owned())))?
        .get(0);
    if let Some(old) = &old {
        tx.execute("DELETE FROM files WHERE id = $1", &[old]).await?;
    }
    tx.execute("UPDATE users SET avatar = $2 WHERE name = $1", &[&user, &new]).await?;
    Ok(old)
}

impl PostgresStore {
    pub(super) async fn add(
        &self,
        file: FileRecord,
        content: std::path::PathBuf,
        thumb: Option<std::path::PathBuf>,
    ) -> Result<(), StoreError> {
        let outcome = self.insert(&file, &content, thumb.as_deref()).await;
        for path in std::iter::once(&content).chain(thumb.as_ref()) {
            let _ = tokio::fs::remove_file(path).await;
        }
        outcome
    }

    async fn insert(
        &self,
        file: &FileRecord,
        content: &std::path::Path,
        thumb: Option<&std::path::Path>,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let PlaceColumns { sent, room, peer, avatar } = file.place.columns();
        let Attachment { id, name, mime, size, image } = &file.attachment;
        tx.execute(
            "INSERT INTO files (id, owner, name, mime, size, width, height, thumb, created_at, sent, room, peer, avatar)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                id,
                &file.owner,
                name,
                mime,
                &i64::try_from(*size).unwrap_or(i64::MAX),
                &image.and_then(|(width, _)| i32::try_from(width).ok()),
                &image.and_then(|(_, height)| i32::try_from(height).ok()),
                &file.thumb,
                &file.created_at,
                &sent,
                &room,
                &peer,
                &avatar,
            ],
        )
        .await?;
        copy_in(&*tx, id, false, content).await?;
        if let Some(thumb) = thumb {
            copy_in(&*tx, id, true, thumb).await?;
        }
        if avatar {
            replace_avatar(&*tx, &file.owner, Some(id)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn record(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let row = self
            .query_opt(
                "SELECT owner, name, mime, size, width, height, thumb, created_at, sent, room, peer, avatar
                 FROM files WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(row.map(|row| FileRecord {
            attachment: Attachment {
                id: id.to_owned(),
                name: row.get(1),
                mime: row.get(2),
                size: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
                image: image_size(row.get(4), row.get(5)),
            },
            owner: row.get(0),
            created_at: row.get(7),
            place: place(row.get(8), row.get(9), row.get(10), row.get(11)),
            thumb: row.get(6),
        }))
    }

    pub(super) async fn bytes(
        &self,
        id: &str,
        thumb: bool,
    ) -> Result<Option<FileBytes>, StoreError> {
        const READ: &str = "SELECT data FROM file_parts WHERE id = $1 AND thumb = $2 AND part = $3";
        let first = self.query_opt(READ, &[&id, &thumb, &0_i32]).await?;
        let Some(first) = first else { return Ok(None) };
        let first: Vec<u8> = first.get(0);
        let more = first.len() == PART;
        let (pool, id) = (self.pool.clone(), id.to_owned());
        let rest = futures_util::stream::unfold(more.then_some(1_i32), move |part| {
            let (pool, id) = (pool.clone(), id.clone());
            async move {
                let part = part?;
                let read = async {
                    let client = pool.get().await.map_err(std::io::Error::other)?;
                    let statement =
                        client.prepare_cached(READ).await.map_err(std::io::Error::other)?;
                    client
                        .query_opt(&statement, &[&id, &thumb, &part])
                        .await
                        .map_err(std::io::Error::other)
                };
                match read.await {
                    Ok(Some(row)) => {
                        let data: Vec<u8> = row.get(0);
                        let next = (data.len() == PART).then_some(part + 1);
                        Some((Ok(bytes::Bytes::from(data)), next))
                    }
                    Ok(None) => None,
                    Err(error) => Some((Err(error), None)),
                }
            }
        });
        let first = futures_util::stream::once(async move { Ok(bytes::Bytes::from(first)) });
        Ok(Some(first.chain(rest).boxed()))
    }

    pub(super) async fn unset_avatar(&self, user: &str) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let old = replace_avatar(&*tx, user, None).await?;
        tx.commit().await?;
        Ok(old.is_some())
    }

    pub(super) async fn collect(&self, unsent_before: Millis) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute("DELETE FROM files WHERE NOT sent AND created_at < $1", &[&unsent_before])
            .await?)
    }
}
