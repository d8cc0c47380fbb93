//! Export and import: a database of the depot to and from a plain SQLite database file.
//!
//! A database's pages in the depot *are* its SQLite file image (4096-byte pages, page 1 holding
//! the header), so no SQL runs over the depot here:
//!
//! - **Export** reads the pages at one txid (`read_at`, 256 pages = 1 MiB per store call) and
//!   writes them in order. It holds a lease on that txid meanwhile (as a reader at a bookmark
//!   does), so the file holds that one committed state even while the writer goes on and the
//!   history window passes the point: an export needs no history window. The pages go to a
//!   temporary file beside the target, which is synced, checked with `PRAGMA integrity_check` and
//!   only then given its name: nobody ever sees half a file under that name, and an existing file
//!   is replaced only when asked.
//! - **Import** lets SQLite itself copy the source (`VACUUM INTO` a temporary file, then page size
//!   4096 and a rollback-journal header on the copy), so that a WAL-mode file or one with another
//!   page size comes in as well, and a file that is not a database is refused before the depot is
//!   touched. The copy's pages then go in as **one** commit: all or nothing, written with a newly
//!   claimed generation, which fences the database's current writer as a restore does. The state
//!   before stays in the history like any commit's, so within the history window a restore undoes
//!   an import with `replace`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use depot::{CommitRequest, LeaseId, Page, PageNo, PageStore, StoreError, Txid, PAGE_SIZE};
use rusqlite::{Connection, OpenFlags};

use crate::vfs::DEFAULT_MAX_COMMIT_BYTES;
use crate::{Error, ErrorCode};

/// Pages an export asks the store for per call: 1 MiB.
const EXPORT_BATCH: u32 = 256;

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// The commit whose content the file holds.
    pub txid: Txid,
    /// Size of the file in pages.
    pub size_pages: u32,
}

/// What an import committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// The commit that holds the imported content.
    pub txid: Txid,
    /// The head just before it (0 for a new database): restoring to it undoes the import.
    pub previous: Txid,
    /// Size of the imported database in pages.
    pub size_pages: u32,
    /// The generation the import claimed.
    pub generation: u64,
}

/// Writes `database` as it was at `at` (default: its newest commit) to `file`, a plain SQLite
/// database file. An existing `file` is an error unless `overwrite`.
pub fn export_database(
    store: &dyn PageStore,
    database: &str,
    file: &Path,
    at: Option<Txid>,
    overwrite: bool,
) -> Result<Exported, Error> {
    if !overwrite && file.symlink_metadata().is_ok() {
        return Err(file_exists(file));
    }
    let (txid, lease) = lease_point(store, database, at)?;
    let temp = TempFile::beside(file)?;
    let size_pages = write_image(store, database, txid, temp.path())?;
    drop(lease);
    check_integrity(temp.path())
        .map_err(|why| Error::new(ErrorCode::StoreCorrupt, format!("the export of '{database}' {why}")))?;
    temp.publish(file, overwrite)?;
    Ok(Exported { txid, size_pages })
}

/// Makes the SQLite database `file` the content of `database`, in one commit. A database that has
/// a commit already is an error unless `replace`.
pub fn import_database(
    store: &dyn PageStore,
    file: &Path,
    database: &str,
    replace: bool,
) -> Result<Imported, Error> {
    depot::validate_name(database)?;
    if !replace {
        refuse_existing(store, database)?;
    }
    let copy = TempFile::in_temp_dir()?;
    copy_as_image(file, copy.path())?;
    let pages = read_image(copy.path())?;
    drop(copy);
    let size_pages = pages.len() as u32;
    let bytes = pages.len() as u64 * PAGE_SIZE as u64;
    if bytes > DEFAULT_MAX_COMMIT_BYTES {
        return Err(StoreError::TooLarge { bytes, limit: DEFAULT_MAX_COMMIT_BYTES }.into());
    }
    // Claims the next generation: the current writer, if any, is fenced from here on.
    let head = store.open(database, None, &[])?.head;
    if head.txid > 0 && !replace {
        return Err(database_exists(database));
    }
    let request = CommitRequest {
        database: database.to_string(),
        generation: head.generation,
        expected_txid: head.txid,
        commit_id: fresh_commit_id(),
        pages,
        size_pages,
    };
    let outcome = store.commit(&request)?;
    Ok(Imported { txid: outcome.txid, previous: head.txid, size_pages, generation: head.generation })
}

/// Leases the point to export: `at`, or the newest commit (found again when a commit passes it
/// before the lease holds).
fn lease_point<'a>(
    store: &'a dyn PageStore,
    database: &'a str,
    at: Option<Txid>,
) -> Result<(Txid, Lease<'a>), Error> {
    if let Some(at) = at {
        return Ok((at, Lease::take(store, database, at)?));
    }
    let mut tries = 0;
    loop {
        let head = store.history(database, 1, None)?.first().map(|c| c.txid);
        let head =
            head.ok_or_else(|| Error::invalid(format!("database '{database}' has no commit to export")))?;
        match Lease::take(store, database, head) {
            Ok(lease) => return Ok((head, lease)),
            Err(StoreError::HistoryUnavailable(_)) if tries < 3 => tries += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A lease on a point of a database, given back when dropped.
struct Lease<'a> {
    store: &'a dyn PageStore,
    database: &'a str,
    id: LeaseId,
}

impl<'a> Lease<'a> {
    fn take(store: &'a dyn PageStore, database: &'a str, at: Txid) -> Result<Lease<'a>, StoreError> {
        Ok(Lease { store, database, id: store.lease(database, at)? })
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.store.release(self.database, self.id);
    }
}

/// Fails when `database` has a commit, as far as the store can tell without claiming anything
/// (the open's head decides again later).
fn refuse_existing(store: &dyn PageStore, database: &str) -> Result<(), Error> {
    match store.history(database, 1, None) {
        Ok(commits) if !commits.is_empty() => Err(database_exists(database)),
        // Unknown to the store (the name is valid), or a store that cannot list commits.
        Ok(_) | Err(StoreError::InvalidArgument(_)) | Err(StoreError::HistoryUnavailable(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn database_exists(database: &str) -> Error {
    Error::invalid(format!("database '{database}' exists already (import with replace to overwrite it)"))
}

fn file_exists(file: &Path) -> Error {
    Error::invalid(format!("{} exists already (export with overwrite to replace it)", file.display()))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => ErrorCode::InvalidArgument,
        _ => ErrorCode::Sqlite("SQLITE_IOERR"),
    };
    Error::new(code, format!("{what} {}: {e}", path.display()))
}

/// Writes the pages of `database` at `txid` to `path` in order and syncs it; answers the size.
fn write_image(store: &dyn PageStore, database: &str, txid: Txid, path: &Path) -> Result<u32, Error> {
    let (size_pages, _) = store.read_at(database, &[], txid)?;
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error("cannot create", path, e))?;
    let mut out = BufWriter::with_capacity(EXPORT_BATCH as usize * PAGE_SIZE, file);
    let write_error = |e| io_error("cannot write", path, e);
    let mut first: PageNo = 1;
    while first <= size_pages {
        let numbers: Vec<PageNo> = (first..=size_pages.min(first + EXPORT_BATCH - 1)).collect();
        let (size_then, pages) = store.read_at(database, &numbers, txid)?;
        if size_then != size_pages {
            return Err(corrupt(database, format!("its size at txid {txid} changed during the export")));
        }
        for (&no, page) in numbers.iter().zip(pages) {
            match page {
                Some(page) if page.no == no && page.verify() => {
                    out.write_all(&page.data).map_err(write_error)?
                }
                Some(_) => return Err(corrupt(database, format!("page {no} does not match its checksum"))),
                None => return Err(corrupt(database, format!("page {no} is missing below the end"))),
            }
        }
        first += EXPORT_BATCH;
    }
    let file = out.into_inner().map_err(|e| write_error(e.into_error()))?;
    file.sync_all().map_err(|e| io_error("cannot sync", path, e))?;
    Ok(size_pages)
}

fn corrupt(database: &str, why: String) -> Error {
    Error::new(ErrorCode::StoreCorrupt, format!("database '{database}': {why}"))
}

/// `Err(why)` unless SQLite opens `path` and finds it intact.
fn check_integrity(path: &Path) -> Result<(), String> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| format!("does not open as a SQLite database: {e}"))?;
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(|e| format!("cannot be checked: {e}"))?;
    let report: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| format!("cannot be checked: {e}"))?;
    match report.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(format!("fails PRAGMA integrity_check: {}", report.join("; "))),
    }
}

/// Copies the SQLite database `source` to `target` as the depot keeps databases: 4096-byte pages,
/// rollback journal (not WAL), checked intact.
fn copy_as_image(source: &Path, target: &Path) -> Result<(), Error> {
    let not_a_database = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            Error::invalid(format!("{} is not a SQLite database", source.display()))
        }
        Some(rusqlite::ErrorCode::CannotOpen) => {
            Error::invalid(format!("cannot open {}: {e}", source.display()))
        }
        _ => with_context(Error::from(e), &format!("cannot read {}", source.display())),
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(source, flags).map_err(not_a_database)?;
    // Reading the schema is where SQLite finds out whether the file is a database at all.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())).map_err(not_a_database)?;
    let target_name =
        target.to_str().ok_or_else(|| Error::invalid("the temporary directory's path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [target_name]).map_err(not_a_database)?;
    drop(conn);

    let copy = Connection::open_with_flags(
        target,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let journal: String = copy.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    let page_size: i64 = copy.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    if page_size != PAGE_SIZE as i64 {
        copy.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}; VACUUM;"))?;
    }
    let page_size: i64 = copy.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    drop(copy);
    if journal != "delete" || page_size != PAGE_SIZE as i64 {
        return Err(Error::invalid(format!(
            "{} could not be converted to the depot's layout (journal mode {journal}, page size {page_size})",
            source.display()
        )));
    }
    check_integrity(target).map_err(|why| Error::invalid(format!("{} {why}", source.display())))
}

fn with_context(mut error: Error, context: &str) -> Error {
    error.message = format!("{context}: {}", error.message);
    error
}

/// The pages of the database file at `path`, checking that its header is what the depot keeps.
fn read_image(path: &Path) -> Result<Vec<Page>, Error> {
    let mut file = File::open(path).map_err(|e| io_error("cannot open", path, e))?;
    let len = file.metadata().map_err(|e| io_error("cannot read", path, e))?.len();
    if len % PAGE_SIZE as u64 != 0 || len / PAGE_SIZE as u64 > u32::MAX as u64 {
        return Err(Error::invalid(format!("the converted copy has {len} bytes, not whole 4096-byte pages")));
    }
    let count = (len / PAGE_SIZE as u64) as u32;
    let mut pages = Vec::with_capacity(count as usize);
    for no in 1..=count {
        let mut data = vec![0u8; PAGE_SIZE];
        file.read_exact(&mut data).map_err(|e| io_error("cannot read", path, e))?;
        if no == 1 && !is_rollback_header(&data) {
            return Err(Error::invalid(
                "the converted copy's header is not a 4096-byte-page rollback database",
            ));
        }
        pages.push(Page::new(no, Arc::from(data)));
    }
    Ok(pages)
}

/// SQLite's header with 4096-byte pages and the legacy (rollback journal) file format versions.
fn is_rollback_header(page: &[u8]) -> bool {
    page.starts_with(b"SQLite format 3\0") && page[16..18] == [0x10, 0x00] && page[18] == 1 && page[19] == 1
}

/// A commit id that no writer's meets: two independently keyed random halves.
fn fresh_commit_id() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// A temporary file (and the journal files SQLite may leave beside it), removed when dropped
/// unless it was published under its final name.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A fresh name in the directory of `file`, so that publishing it is a rename.
    fn beside(file: &Path) -> Result<TempFile, Error> {
        let name = file
            .file_name()
            .ok_or_else(|| Error::invalid(format!("{} does not name a file", file.display())))?;
        let mut temp = name.to_os_string();
        temp.push(format!(".{}.tmp", unique_suffix()));
        Ok(TempFile { path: file.with_file_name(temp) })
    }

    /// A fresh name in the system's temporary directory.
    fn in_temp_dir() -> Result<TempFile, Error> {
        let path = std::env::temp_dir().join(format!("depot-sqlite-import-{}.db", unique_suffix()));
        Ok(TempFile { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the file the name `file`: replacing what is there only with `overwrite` (a link, which
    /// never replaces, where the file system has them), then makes the rename durable.
    fn publish(self, file: &Path, overwrite: bool) -> Result<(), Error> {
        if overwrite {
            std::fs::rename(&self.path, file).map_err(|e| io_error("cannot rename to", file, e))?;
        } else {
            match std::fs::hard_link(&self.path, file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(file_exists(file)),
                // No hard links on this file system: check, then rename (not atomic against a
                // file created in between).
                Err(_) if file.symlink_metadata().is_ok() => return Err(file_exists(file)),
                Err(_) => {
                    std::fs::rename(&self.path, file).map_err(|e| io_error("cannot rename to", file, e))?
                }
            }
        }
        sync_parent(file)
        // Dropping `self` removes the temporary name if the link left it behind.
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `pid-sequence`: unique among this process's temporary files and those of others.
fn unique_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Makes a new name in the directory of `file` survive a crash.
fn sync_parent(file: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error("cannot sync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}
