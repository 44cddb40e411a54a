//! `confab backup FILE`: a consistent copy of the embedded store, taken while a server runs
//! on it.
//!
//! SQLite's online backup API copies the file page by page. It copies every page in one
//! step, inside one read transaction: under WAL a reader never blocks the server's writer
//! and sees one commit's state, so the copy is whole and consistent however busy the server
//! is (copying in small steps would start over after each of the server's commits, and
//! under steady load never finish). The copy is written beside FILE and renamed into place,
//! so FILE is either the previous backup or a complete new one, never a torn file.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// Pages of the database file.
    pub pages: u64,
    /// Bytes of the copy.
    pub bytes: u64,
    /// Chat messages in the copy.
    pub messages: u64,
}

/// Copies `confab.db` in `data_dir` to `destination`, checks the copy, and returns what it
/// holds. The source must exist: a backup never creates an empty store.
pub fn backup(data_dir: &Path, destination: &Path) -> Result<BackupSummary, StoreError> {
    let source_path = data_dir.join("confab.db");
    let source = Connection::open_with_flags(
        &source_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| {
        StoreError::Failed(format!("cannot open {}: {error}", source_path.display()))
    })?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    let partial = partial_path(destination);
    let _ = std::fs::remove_file(&partial);
    let copied = copy(&source, &partial);
    let summary = match copied {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    std::fs::rename(&partial, destination).map_err(|error| {
        let _ = std::fs::remove_file(&partial);
        StoreError::Failed(format!("cannot write {}: {error}", destination.display()))
    })?;
    Ok(summary)
}

fn copy(source: &Connection, partial: &Path) -> Result<BackupSummary, StoreError> {
    let mut copy = Connection::open(partial).map_err(|error| {
        StoreError::Failed(format!("cannot create {}: {error}", partial.display()))
    })?;
    {
        let backup = rusqlite::backup::Backup::new(source, &mut copy)?;
        step_to_the_end(&backup)?;
    }
    // One self-contained file: no WAL beside it to copy or lose.
    copy.pragma_update(None, "journal_mode", "DELETE")?;
    let summary = check(&copy)?;
    copy.close().map_err(|(_, error)| StoreError::from(error))?;
    Ok(summary)
}

/// Replaces `confab.db` in `data_dir` with the backup `source` (after checking it), through
/// SQLite: the store's own WAL is written consistently, so no stale `-wal` file beside it can
/// be replayed over the restored pages. Run it with the server stopped.
pub fn restore(source: &Path, data_dir: &Path) -> Result<BackupSummary, StoreError> {
    let backup =
        Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|error| {
            StoreError::Failed(format!("cannot open {}: {error}", source.display()))
        })?;
    let summary = check(&backup).map_err(|error| {
        StoreError::Failed(format!("{} is not a Confab backup: {error}", source.display()))
    })?;
    std::fs::create_dir_all(data_dir).map_err(|error| {
        StoreError::Failed(format!("cannot create {}: {error}", data_dir.display()))
    })?;
    let mut store = Connection::open(data_dir.join("confab.db"))?;
    store.busy_timeout(std::time::Duration::from_secs(10))?;
    store.pragma_update(None, "journal_mode", "WAL")?;
    {
        let copy = rusqlite::backup::Backup::new(&backup, &mut store)?;
        step_to_the_end(&copy)?;
    }
    store.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    Ok(summary)
}

fn step_to_the_end(backup: &rusqlite::backup::Backup<'_, '_>) -> Result<(), StoreError> {
    // -1: every page in one step, one read transaction (see the module's comment).
    loop {
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => return Ok(()),
            // The server holds a lock for a moment (a checkpoint): try again.
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// Checks a copy page by page and counts what it holds.
fn check(copy: &Connection) -> Result<BackupSummary, StoreError> {
    let check: String = copy.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(StoreError::Failed(format!("the copy does not check out: {check}")));
    }
    let pages: u64 = copy.pragma_query_value(None, "page_count", |row| row.get(0))?;
    let page_size: u64 = copy.pragma_query_value(None, "page_size", |row| row.get(0))?;
    let messages: u64 = copy.query_row("SELECT count(*) FROM messages", [], |row| row.get(0))?;
    Ok(BackupSummary { pages, bytes: pages * page_size, messages })
}

/// `FILE.partial`, beside FILE (so the final rename stays on one file system).
fn partial_path(destination: &Path) -> PathBuf {
    let mut name = destination.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    destination.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore};

    #[test]
    fn a_missing_store_is_an_error_not_an_empty_backup() {
        let dir = tempfile::tempdir().unwrap();
        let error = backup(dir.path(), &dir.path().join("copy.db")).unwrap_err();
        assert!(error.to_string().contains("cannot open"), "{error}");
        assert!(!dir.path().join("confab.db").exists());
        assert!(!dir.path().join("copy.db").exists());
    }

    #[test]
    fn an_unwritable_destination_is_an_error_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
        let destination = dir.path().join("no-such-dir").join("copy.db");
        let error = backup(dir.path(), &destination).unwrap_err();
        assert!(error.to_string().contains("cannot create"), "{error}");
        assert!(!destination.exists());
    }

    #[test]
    fn the_copy_is_a_store_the_server_opens() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
        let copy_dir = tempfile::tempdir().unwrap();
        let destination = copy_dir.path().join("confab.db");
        // An earlier backup is replaced whole.
        std::fs::write(&destination, b"an older backup").unwrap();
        let summary = backup(dir.path(), &destination).unwrap();
        assert_eq!(summary.messages, 0);
        assert!(summary.bytes > 0);
        assert!(!partial_path(&destination).exists());
        drop(SqliteStore::open(copy_dir.path(), SqliteOptions::default()).unwrap());
    }

    #[test]
    fn restoring_something_else_is_refused_and_the_store_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
        let not_a_backup = dir.path().join("notes.txt");
        std::fs::write(&not_a_backup, "not a database at all, just some words").unwrap();
        let error = restore(&not_a_backup, dir.path()).unwrap_err();
        assert!(error.to_string().contains("is not a Confab backup"), "{error}");
        let other = tempfile::tempdir().unwrap();
        let empty_sqlite = other.path().join("other.db");
        Connection::open(&empty_sqlite).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        let error = restore(&empty_sqlite, dir.path()).unwrap_err();
        assert!(error.to_string().contains("is not a Confab backup"), "{error}");
        // The store is still the store: whole, with its tables.
        let store = Connection::open(dir.path().join("confab.db")).unwrap();
        let summary = check(&store).unwrap();
        assert_eq!(summary.messages, 0);
    }
}
