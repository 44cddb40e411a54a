//! Files people send and their pictures: an upload streamed to disk a piece at a time
//! (never whole in memory), checked, made ready to serve (an image's thumbnail, its
//! metadata stripped), and handed to the store; who may read a file; the collector of
//! files never sent and of the bytes of deleted ones.

pub mod image;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use shared::api::{AVATAR_PIXELS, validate_file_name};
use shared::chat::{Attachment, Millis};
use tokio::io::AsyncWriteExt;

use crate::clock::now_millis;
use crate::store::{FilePlace, FileRecord, Store, StoreError};
use image::{ImageError, Kind};

/// Why an upload was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Nothing came.
    #[error("the file is empty")]
    Empty,
    /// More than the limit.
    #[error("the file is larger than {0}: the most this server takes")]
    TooLarge(String),
    /// A name that is not a file name.
    #[error("{0}")]
    BadName(String),
    /// The uploader has this many files waiting to be sent already.
    #[error(
        "{0} files are waiting to be sent already: send them with a message, or wait (files never sent are deleted)"
    )]
    TooManyUnsent(u64),
    /// Its name says it is an image of one kind and its bytes say otherwise.
    #[error("{name:?} is not the image its name says: its bytes are {actual}")]
    Mislabelled {
        /// The name given.
        name: String,
        /// What the bytes are.
        actual: String,
    },
    /// An image that cannot be taken.
    #[error("{0}")]
    Image(ImageError),
    /// The client stopped sending.
    #[error("the upload was cut off: {0}")]
    Interrupted(String),
    /// The store could not take it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ImageError> for UploadError {
    fn from(error: ImageError) -> UploadError {
        match error {
            ImageError::Io(error) => UploadError::Store(io_failure(error)),
            other => UploadError::Image(other),
        }
    }
}

fn io_failure(error: std::io::Error) -> StoreError {
    if error.raw_os_error() == Some(28) {
        StoreError::Unavailable
    } else {
        StoreError::Failed(format!("cannot write an upload: {error}"))
    }
}

/// The node's file service; a cheap handle.
#[derive(Clone)]
pub struct Files {
    store: Arc<dyn Store>,
    max_bytes: u64,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files").field("max_bytes", &self.max_bytes).finish_non_exhaustive()
    }
}

/// Files one person may have uploaded and not sent: what a client can make the server
/// keep without anyone seeing it is bounded (a message carries at most
/// [`shared::chat::MAX_FILES_PER_MESSAGE`]).
pub const MAX_UNSENT_FILES: u64 = 2 * shared::chat::MAX_FILES_PER_MESSAGE as u64;

/// A new random file id: 128 bits as 32 hex digits.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    argon2::password_hash::rand_core::RngCore::fill_bytes(
        &mut argon2::password_hash::rand_core::OsRng,
        &mut bytes,
    );
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Removes the temporary files of an upload when it ends, whichever way.
struct Temporary(Vec<PathBuf>);

impl Drop for Temporary {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Files {
    /// Files on `store`, each at most `max_bytes`.
    pub fn new(store: Arc<dyn Store>, max_bytes: u64) -> Files {
        Files { store, max_bytes }
    }

    /// The largest upload taken.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Refuses an upload whose announced length is over the limit, before reading it.
    pub fn check_length(&self, length: Option<u64>) -> Result<(), UploadError> {
        match length {
            Some(length) if length > self.max_bytes => Err(self.too_large()),
            _ => Ok(()),
        }
    }

    fn too_large(&self) -> UploadError {
        UploadError::TooLarge(shared::api::human_size(self.max_bytes))
    }

    /// Streams `body` to a temporary file under the store's upload directory, at most the
    /// limit; the path and the size.
    async fn receive<E: std::fmt::Display>(
        &self,
        body: impl Stream<Item = Result<Bytes, E>>,
        temporary: &mut Temporary,
    ) -> Result<(PathBuf, u64), UploadError> {
        let dir = self.store.upload_dir();
        tokio::fs::create_dir_all(&dir).await.map_err(io_failure)?;
        let path = dir.join(format!("{}.part", new_id()));
        temporary.0.push(path.clone());
        let mut file = tokio::fs::File::create(&path).await.map_err(io_failure)?;
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|error| UploadError::Interrupted(error.to_string()))?;
            size += piece.len() as u64;
            if size > self.max_bytes {
                return Err(self.too_large());
            }
            file.write_all(&piece).await.map_err(io_failure)?;
        }
        file.flush().await.map_err(io_failure)?;
        if size == 0 {
            return Err(UploadError::Empty);
        }
        Ok((path, size))
    }

    /// Takes an upload by `owner` named `name`: stored, not sent yet.
    pub async fn upload<E: std::fmt::Display>(
        &self,
        owner: &str,
        name: &str,
        body: impl Stream<Item = Result<Bytes, E>>,
    ) -> Result<Attachment, UploadError> {
        validate_file_name(name).map_err(UploadError::BadName)?;
        let unsent = self.store.unsent_files(owner).await?;
        if unsent >= MAX_UNSENT_FILES {
            return Err(UploadError::TooManyUnsent(unsent));
        }
        let mut temporary = Temporary(Vec::new());
        let (path, size) = self.receive(body, &mut temporary).await?;
        let id = new_id();
        let thumb = path.with_extension("thumb");
        temporary.0.push(thumb.clone());
        let name_owned = name.to_owned();
        let (path_for_work, thumb_for_work) = (path.clone(), thumb.clone());
        let (attachment, has_thumb) = tokio::task::spawn_blocking(move || {
            prepare(&path_for_work, &thumb_for_work, &name_owned, size)
        })
        .await
        .map_err(|error| UploadError::Store(StoreError::Failed(error.to_string())))??;
        let attachment = Attachment { id, name: name.to_owned(), ..attachment };
        let record = FileRecord {
            attachment: attachment.clone(),
            owner: owner.to_owned(),
            created_at: now_millis(),
            place: FilePlace::Unsent,
            thumb: has_thumb,
        };
        self.store.add_file(record, path, has_thumb.then_some(thumb)).await?;
        Ok(attachment)
    }

    /// Makes `owner`'s picture from an uploaded image: cropped to a square and resized.
    pub async fn set_avatar<E: std::fmt::Display>(
        &self,
        owner: &str,
        body: impl Stream<Item = Result<Bytes, E>>,
    ) -> Result<Attachment, UploadError> {
        let mut temporary = Temporary(Vec::new());
        let (path, _) = self.receive(body, &mut temporary).await?;
        let out = path.with_extension("avatar");
        temporary.0.push(out.clone());
        let (source, target) = (path.clone(), out.clone());
        let format =
            tokio::task::spawn_blocking(move || image::avatar(&source, AVATAR_PIXELS, &target))
                .await
                .map_err(|error| UploadError::Store(StoreError::Failed(error.to_string())))??;
        let size = tokio::fs::metadata(&out).await.map_err(io_failure)?.len();
        let extension = format.extensions_str().first().copied().unwrap_or("img");
        let attachment = Attachment {
            id: new_id(),
            name: format!("{owner}.{extension}"),
            mime: image::mime(format).to_owned(),
            size,
            image: Some((AVATAR_PIXELS, AVATAR_PIXELS)),
        };
        let record = FileRecord {
            attachment: attachment.clone(),
            owner: owner.to_owned(),
            created_at: now_millis(),
            place: FilePlace::Avatar,
            thumb: false,
        };
        self.store.add_file(record, out, None).await?;
        Ok(attachment)
    }
}

/// What an upload is, and its thumbnail made when it is an image (blocking).
fn prepare(
    path: &Path,
    thumb: &Path,
    name: &str,
    size: u64,
) -> Result<(Attachment, bool), UploadError> {
    let kind = image::sniff(path).map_err(io_failure)?;
    match (kind, image::claimed_format(name)) {
        (Kind::Raster(format), _) => {
            let prepared = image::prepare(path, format, thumb)?;
            let size = std::fs::metadata(path).map_err(io_failure)?.len();
            let attachment = Attachment {
                mime: image::mime(prepared.format).to_owned(),
                size,
                image: Some((prepared.width, prepared.height)),
                ..Attachment::default()
            };
            Ok((attachment, true))
        }
        (Kind::Other(actual), Some(_)) => {
            Err(UploadError::Mislabelled { name: name.to_owned(), actual: actual.to_owned() })
        }
        (Kind::Other(mime), None) => {
            Ok((Attachment { mime: mime.to_owned(), size, ..Attachment::default() }, false))
        }
    }
}

/// How often the collector runs at most: a quarter of the time unsent files are kept,
/// between a second and a minute.
fn collect_every(unsent_after: Duration) -> Duration {
    (unsent_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Deletes, every minute (or sooner, for a short `unsent_after`), the files never sent
/// that are older than `unsent_after`, and the bytes of deleted ones. Runs until the
/// process ends.
pub async fn collect(store: Arc<dyn Store>, unsent_after: Duration) {
    let mut every = tokio::time::interval(collect_every(unsent_after));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let age = Millis::try_from(unsent_after.as_millis()).unwrap_or(Millis::MAX);
        match store.collect_files(now_millis().saturating_sub(age)).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "files collected"),
            Err(error) => tracing::warn!(%error, "cannot collect files"),
        }
    }
}
