//! `confab export FILE` and `confab import FILE`: every user (with the password hash),
//! room, membership, message, direct message and read marker, as JSON lines
//! ([`Record`]s). The export is one consistent snapshot, taken while the server runs; the
//! import fills an empty store, ids unchanged. Together they move a team from the embedded
//! store to PostgreSQL, and they are the backup format that works for both.

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::Path;

use crate::store::{Record, Store, StoreError};

/// Records written or read between two progress lines, and per import transaction.
const BATCH: usize = 1000;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line is not a record.
    #[error("line {line}: {error}")]
    Format {
        /// Its number, from 1.
        line: usize,
        /// What is wrong with it.
        error: serde_json::Error,
    },
    /// The store to import into holds something already.
    #[error("the store is not empty: import into a new one (a fresh --data directory or database)")]
    NotEmpty,
}

/// Writes every record of `store` to `path` (`-` for standard output). Returns how many.
pub async fn export(store: &dyn Store, path: &Path) -> Result<usize, TransferError> {
    let out: Box<dyn Write + Send> = if path == Path::new("-") {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::fs::File::create(path)?)
    };
    let mut out = BufWriter::new(out);
    let mut progress = Progress::new("exported");
    let mut failure = None;
    store
        .export(&mut |records| {
            for record in &records {
                let written = serde_json::to_writer(&mut out, record)
                    .map_err(std::io::Error::other)
                    .and_then(|()| out.write_all(b"\n"));
                if let Err(error) = written {
                    failure = Some(error);
                    return Err(StoreError::Failed("the export file cannot be written".into()));
                }
            }
            progress.add(records.len());
            Ok(())
        })
        .await
        .map_err(|error| match failure.take() {
            Some(io) => TransferError::Io(io),
            None => TransferError::Store(error),
        })?;
    out.flush()?;
    Ok(progress.done())
}

/// Reads records from `path` (`-` for standard input) into `store`, which must be empty.
/// Returns how many.
pub async fn import(store: &dyn Store, path: &Path) -> Result<usize, TransferError> {
    if !is_empty(store).await? {
        return Err(TransferError::NotEmpty);
    }
    let input: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(path)?))
    };
    let mut progress = Progress::new("imported");
    let mut batch = Vec::with_capacity(BATCH);
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .map_err(|error| TransferError::Format { line: index + 1, error })?;
        batch.push(record);
        if batch.len() == BATCH {
            progress.add(batch.len());
            store.import(std::mem::take(&mut batch)).await?;
        }
    }
    progress.add(batch.len());
    store.import(batch).await?;
    Ok(progress.done())
}

/// A new store holds the lobby and nothing else.
async fn is_empty(store: &dyn Store) -> Result<bool, StoreError> {
    let rooms = store.rooms_for("").await?;
    Ok(rooms
        .iter()
        .all(|room| room.name == shared::chat::LOBBY && room.members == 0 && room.last_seq == 0))
}

/// A count on one line of a terminal, or nothing when standard error is not one.
struct Progress {
    verb: &'static str,
    count: usize,
    shown: bool,
}

impl Progress {
    fn new(verb: &'static str) -> Progress {
        Progress { verb, count: 0, shown: std::io::stderr().is_terminal() }
    }

    fn add(&mut self, n: usize) {
        self.count += n;
        if self.shown {
            eprint!("\r{} {} records", self.verb, self.count);
        }
    }

    fn done(self) -> usize {
        if self.shown {
            eprintln!();
        }
        self.count
    }
}
