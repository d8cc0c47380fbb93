//! The embedded default store: one directory, one SQLite file in WAL mode.
//!
//! Why SQLite (through rusqlite) rather than redb or a log of our own: the addon already compiles
//! SQLite, so the store costs no new dependency and no second storage engine to trust; WAL mode gives
//! atomic multi-row transactions with one fsync per commit (`synchronous=FULL`), readers that never
//! block the writer, and snapshot reads, which `get_pages` needs so that a page pruned by a concurrent
//! commit is never reported missing. Its file format is stable and inspectable with the `sqlite3` shell.
//!
//! The directory is locked with an OS file lock (`LOCK`), so two processes cannot write the same depot.
//! Database names are keys in a table, never paths: nothing outside the directory is ever opened.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use crate::store::{
    check_commit, checked_page, claim_generation, decode_hints, encode_hints, opened_id, with_hints,
    COMMIT_LOG_KEEP,
};
use crate::{
    validate_name, CommitOutcome, CommitRequest, Head, Opened, Page, PageNo, PageStore, StoreError, Txid,
    PAGE_SIZE,
};

const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
const STORE_FILE: &str = "depot.sqlite3";
const LOCK_FILE: &str = "LOCK";

/// SQL deleting the pages that the shrinks `s` matching `$which` cut off: past the new end, and
/// written before the shrink (a page written after it is the database growing again). A macro so
/// that the commit path gets a constant string, not a fresh one per commit.
macro_rules! compact_shrinks {
    ($which:literal) => {
        concat!(
            "DELETE FROM page_data WHERE EXISTS (SELECT 1 FROM shrinks s WHERE ",
            $which,
            " AND s.db = page_data.key >> 32 AND (page_data.key & 4294967295) > s.size_pages
              AND page_data.txid < s.txid)"
        )
    };
}

/// Settings of a [`FileStore`].
#[derive(Debug, Clone)]
pub struct FileStoreOptions {
    /// Read connections (WAL readers run beside the one writer).
    pub readers: usize,
    /// Txids of history kept readable behind each database's head (0, the default: a superseded
    /// version is pruned by the commit that supersedes it). The history features build on it.
    pub history_txids: u64,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions { readers: 2, history_txids: 0 }
    }
}

/// The embedded, durable [`PageStore`].
pub struct FileStore {
    dir: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    /// database name -> row id; filled at open.
    ids: Mutex<HashMap<String, i64>>,
    history: u64,
    /// Held for the life of the store: the OS lock that keeps other processes out.
    _lock: File,
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl FileStore {
    /// Opens (creating if needed) the depot in directory `dir`.
    pub fn open(dir: &Path, options: FileStoreOptions) -> Result<FileStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create depot directory {}: {e}", dir.display()))
        })?;
        let lock = File::create(dir.join(LOCK_FILE)).map_err(|e| {
            StoreError::Unavailable(format!("cannot create lock file in {}: {e}", dir.display()))
        })?;
        lock.try_lock().map_err(|_| {
            StoreError::Unavailable(format!(
                "depot directory {} is in use by another store (process or Depot)",
                dir.display()
            ))
        })?;
        let path = dir.join(STORE_FILE);
        let writer = Connection::open(&path).map_err(unavailable)?;
        writer
            .execute_batch(
                "PRAGMA page_size = 8192;
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 5000;",
            )
            .map_err(unavailable)?;
        migrate(&writer)?;
        if options.history_txids == 0 {
            // Opened before with a window: nothing reads those versions any more, nor the pages
            // that shrinks still inside that window cut off.
            writer
                .execute_batch(&format!(
                    "BEGIN IMMEDIATE; DELETE FROM page_history; {}; DELETE FROM shrinks; COMMIT;",
                    compact_shrinks!("1")
                ))
                .map_err(unavailable)?;
        }
        let mut readers = Vec::new();
        for _ in 0..options.readers.max(1) {
            let r = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(unavailable)?;
            // Reads straight from a memory map: page runs are copied once (into the page) instead
            // of twice (a read(2) into SQLite's cache, then into the page).
            r.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA mmap_size = 2147418112;")
                .map_err(unavailable)?;
            readers.push(Mutex::new(r));
        }
        Ok(FileStore {
            dir: dir.to_path_buf(),
            writer: Mutex::new(writer),
            readers,
            ids: Mutex::new(HashMap::new()),
            history: options.history_txids,
            _lock: lock,
        })
    }

    /// Number of page versions stored for `database` (tests use it to check pruning).
    pub fn version_count(&self, database: &str) -> usize {
        let w = self.writer.lock().unwrap();
        w.query_row(
            "WITH d AS (SELECT id FROM databases WHERE name = ?1)
             SELECT (SELECT count(*) FROM page_data, d WHERE key BETWEEN d.id << 32 AND (d.id << 32) | 0xFFFFFFFF)
                  + (SELECT count(*) FROM page_history, d WHERE db = d.id)",
            [database],
            |r| r.get::<_, i64>(0),
        )
        .map_or(0, |n| n as usize)
    }

    /// Bytes used on disk by the store file and its WAL (tests and reports use it).
    pub fn disk_bytes(&self) -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(self.dir.join(format!("{STORE_FILE}{s}"))).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Runs a WAL checkpoint that truncates the WAL file.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let w = self.writer.lock().unwrap();
        w.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(unavailable)
    }

    fn id_of(&self, database: &str) -> Result<i64, StoreError> {
        opened_id(&self.ids, database)
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        for r in &self.readers {
            if let Ok(mut c) = r.try_lock() {
                return f(&mut c);
            }
        }
        f(&mut self.readers[0].lock().unwrap())
    }
}

/// Schema migrations, in order; migration `i` brings the store to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: heads, page versions, the commit log.
    "CREATE TABLE IF NOT EXISTS databases(
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         generation INTEGER NOT NULL,
         head_txid INTEGER NOT NULL,
         size_pages INTEGER NOT NULL,
         page_size INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS pages(
         db INTEGER NOT NULL,
         page INTEGER NOT NULL,
         txid INTEGER NOT NULL,
         checksum INTEGER NOT NULL,
         data BLOB NOT NULL,
         PRIMARY KEY(db, page, txid));
     CREATE TABLE IF NOT EXISTS commits(
         db INTEGER NOT NULL,
         commit_id BLOB NOT NULL,
         txid INTEGER NOT NULL,
         page_count INTEGER NOT NULL,
         committed_at_ms INTEGER NOT NULL,
         PRIMARY KEY(db, commit_id)) WITHOUT ROWID;",
    // 2: shrinks per txid, compacted once they leave the history window.
    "CREATE TABLE IF NOT EXISTS shrinks(
         db INTEGER NOT NULL,
         txid INTEGER NOT NULL,
         size_pages INTEGER NOT NULL,
         PRIMARY KEY(db, txid)) WITHOUT ROWID;",
    // 3: fewer index writes per commit. The commit log is trimmed by a scan every 256 commits
    // instead of through an index; pages are found by txid through an index only when a history
    // window is on (created at open then).
    "DROP INDEX IF EXISTS commits_by_txid;
     DROP INDEX IF EXISTS pages_by_txid;",
    // 4: the pages a database's last session used first, preloaded by the next open.
    "CREATE TABLE IF NOT EXISTS hints(db INTEGER PRIMARY KEY, pages BLOB NOT NULL);",
    // 5: the newest version of each page keyed by rowid (`db << 32 | page`): a commit overwrites
    // it in place (one b-tree cell, no index), a run of pages is one rowid range. Superseded
    // versions kept for a history window move to page_history, with the txid that superseded them.
    "CREATE TABLE page_data(
         key INTEGER PRIMARY KEY,
         txid INTEGER NOT NULL,
         checksum INTEGER NOT NULL,
         data BLOB NOT NULL);
     CREATE TABLE page_history(
         db INTEGER NOT NULL,
         page INTEGER NOT NULL,
         txid INTEGER NOT NULL,
         until INTEGER NOT NULL,
         checksum INTEGER NOT NULL,
         data BLOB NOT NULL,
         PRIMARY KEY(db, page, txid));
     CREATE INDEX page_history_by_until ON page_history(db, until);
     INSERT INTO page_data(key, txid, checksum, data)
         SELECT (db << 32) | page, max(txid), checksum, data FROM pages GROUP BY db, page;
     INSERT INTO page_history(db, page, txid, until, checksum, data)
         SELECT p.db, p.page, p.txid,
                (SELECT min(q.txid) FROM pages q WHERE q.db = p.db AND q.page = p.page AND q.txid > p.txid),
                p.checksum, p.data
         FROM pages p
         WHERE p.txid < (SELECT max(q.txid) FROM pages q WHERE q.db = p.db AND q.page = p.page);
     DROP TABLE pages;",
];

/// The rowid of page `no` of database `id` in page_data.
fn key(id: i64, no: PageNo) -> i64 {
    (id << 32) | no as i64
}

fn migrate(c: &Connection) -> Result<(), StoreError> {
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(unavailable)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "depot schema version {version} is newer than this build understands ({SCHEMA_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // Each step is one transaction with its version bump: a crash leaves a whole version.
        c.execute_batch(&format!("BEGIN IMMEDIATE; {sql} PRAGMA user_version = {}; COMMIT;", i + 1))
            .map_err(unavailable)?;
    }
    Ok(())
}

fn read_head(tx: &Connection, id: i64) -> Result<Head, StoreError> {
    tx.prepare_cached("SELECT generation, head_txid, size_pages, page_size FROM databases WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| {
                Ok(Head {
                    generation: r.get::<_, i64>(0)? as u64,
                    txid: r.get::<_, i64>(1)? as u64,
                    size_pages: r.get(2)?,
                    page_size: r.get(3)?,
                })
            })
        })
        .map_err(unavailable)
}

/// The newest version of each of `pages` that exists below the end (page_data holds only the
/// newest: reads are at the head). Runs of consecutive page numbers (read-ahead asks for them) are
/// read with one rowid range each.
fn read_pages(
    c: &Connection,
    id: i64,
    pages: &[PageNo],
    size_pages: u32,
) -> Result<HashMap<PageNo, Page>, StoreError> {
    let mut wanted: Vec<PageNo> = pages.iter().copied().filter(|&no| no >= 1 && no <= size_pages).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = HashMap::with_capacity(wanted.len());
    let mut range = c
        .prepare_cached("SELECT key, checksum, data FROM page_data WHERE key BETWEEN ?1 AND ?2")
        .map_err(unavailable)?;
    let mut start = 0;
    while start < wanted.len() {
        let mut end = start;
        while end + 1 < wanted.len() && wanted[end + 1] == wanted[end] + 1 {
            end += 1;
        }
        let mut rows =
            range.query(params![key(id, wanted[start]), key(id, wanted[end])]).map_err(unavailable)?;
        while let Some(r) = rows.next().map_err(unavailable)? {
            let no = (r.get::<_, i64>(0).map_err(unavailable)? & 0xFFFF_FFFF) as PageNo;
            let checksum: u32 = r.get(1).map_err(unavailable)?;
            let data = r.get_ref(2).and_then(|v| Ok(v.as_blob()?)).map_err(unavailable)?;
            found.insert(no, Page { no, data: Arc::from(data), checksum });
        }
        start = end + 1;
    }
    Ok(found)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl PageStore for FileStore {
    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        validate_name(database)?;
        let mut w = self.writer.lock().unwrap();
        let tx = w.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM databases WHERE name = ?1", [database], |r| r.get(0))
            .optional()
            .map_err(unavailable)?;
        let id = match existing {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO databases(name, generation, head_txid, size_pages, page_size)
                     VALUES (?1, 0, 0, 0, ?2)",
                    params![database, PAGE_SIZE as i64],
                )
                .map_err(unavailable)?;
                tx.last_insert_rowid()
            }
        };
        let mut head = read_head(&tx, id)?;
        if head.page_size as usize != PAGE_SIZE {
            return Err(StoreError::Corrupt(format!(
                "database '{database}' has page size {}, expected {PAGE_SIZE}",
                head.page_size
            )));
        }
        head.generation = claim_generation(database, head.generation, generation)?;
        tx.execute("UPDATE databases SET generation = ?1 WHERE id = ?2", params![head.generation as i64, id])
            .map_err(unavailable)?;
        let hints: Vec<u8> = tx
            .query_row("SELECT pages FROM hints WHERE db = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(unavailable)?
            .unwrap_or_default();
        let wanted = with_hints(preload, &decode_hints(&hints));
        let found = read_pages(&tx, id, &wanted, head.size_pages)?;
        let mut pages = Vec::new();
        for &no in wanted.iter().filter(|&&no| no >= 1 && no <= head.size_pages) {
            if let Some(p) = checked_page(database, no, found.get(&no).cloned(), head.size_pages)? {
                pages.push(p);
            }
        }
        tx.commit().map_err(unavailable)?;
        self.ids.lock().unwrap().insert(database.to_string(), id);
        Ok(Opened { head, pages })
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        let id = self.id_of(database)?;
        self.with_reader(|c| {
            // One read transaction: the head check and the page reads see the same snapshot, so a
            // version pruned by a concurrent commit cannot look missing.
            let tx = c.transaction_with_behavior(TransactionBehavior::Deferred).map_err(unavailable)?;
            let head = read_head(&tx, id)?;
            if head.txid != at {
                return Err(StoreError::HeadMoved {
                    database: database.into(),
                    expected: at,
                    actual: head.txid,
                });
            }
            let found = read_pages(&tx, id, pages, head.size_pages)?;
            let out = pages
                .iter()
                .map(|&no| checked_page(database, no, found.get(&no).cloned(), head.size_pages))
                .collect::<Result<Vec<_>, _>>()?;
            tx.finish().map_err(unavailable)?;
            Ok(out)
        })
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        let id = self.id_of(&request.database)?;
        let mut w = self.writer.lock().unwrap();
        let tx = w.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
        let commit_id = request.commit_id.to_be_bytes();
        let applied: Option<i64> = tx
            .prepare_cached("SELECT txid FROM commits WHERE db = ?1 AND commit_id = ?2")
            .and_then(|mut s| s.query_row(params![id, &commit_id[..]], |r| r.get(0)).optional())
            .map_err(unavailable)?;
        if let Some(txid) = applied {
            return Ok(CommitOutcome { txid: txid as Txid, replayed: true });
        }
        let head = read_head(&tx, id)?;
        check_commit(&head, request)?;
        let txid = head.txid + 1;
        apply_commit(&tx, id, txid, request, head.size_pages, self.history)?;
        tx.commit().map_err(unavailable)?;
        Ok(CommitOutcome { txid, replayed: false })
    }

    fn describe(&self) -> String {
        format!("file:{}", self.dir.display())
    }

    fn save_hints(&self, database: &str, generation: u64, pages: &[PageNo]) -> Result<(), StoreError> {
        let id = self.id_of(database)?;
        let w = self.writer.lock().unwrap();
        // One statement, written only while `generation` is still the database's writer.
        w.execute(
            "INSERT INTO hints(db, pages) SELECT ?1, ?2 WHERE (SELECT generation FROM databases WHERE id = ?1) = ?3
             ON CONFLICT(db) DO UPDATE SET pages = excluded.pages",
            params![id, encode_hints(pages), generation as i64],
        )
        .map_err(unavailable)?;
        Ok(())
    }
}

/// Writes one commit inside the caller's transaction: new versions in; versions that no read within
/// the history window can see any more out.
fn apply_commit(
    tx: &Transaction,
    id: i64,
    txid: Txid,
    request: &CommitRequest,
    old_size: u32,
    history: u64,
) -> Result<(), StoreError> {
    if history > 0 {
        // The version being superseded stays readable for the window, marked with this txid.
        let mut keep = tx
            .prepare_cached(
                "INSERT INTO page_history(db, page, txid, until, checksum, data)
                 SELECT ?1, ?2, txid, ?3, checksum, data FROM page_data WHERE key = ?4",
            )
            .map_err(unavailable)?;
        for page in &request.pages {
            keep.execute(params![id, page.no, txid as i64, key(id, page.no)]).map_err(unavailable)?;
        }
    }
    // Same-size blobs: SQLite overwrites the cell in place.
    let mut write = tx
        .prepare_cached(
            "INSERT INTO page_data(key, txid, checksum, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(key) DO UPDATE SET txid = excluded.txid, checksum = excluded.checksum, data = excluded.data",
        )
        .map_err(unavailable)?;
    for page in &request.pages {
        write
            .execute(params![key(id, page.no), txid as i64, page.checksum, &page.data[..]])
            .map_err(unavailable)?;
    }
    if history == 0 {
        // Nothing reads a page past the end: it goes in the commit that shrinks the database.
        if request.size_pages < old_size {
            tx.execute(
                "DELETE FROM page_data WHERE key BETWEEN ?1 AND ?2",
                params![key(id, request.size_pages) + 1, key(id, u32::MAX)],
            )
            .map_err(unavailable)?;
        }
    } else if request.size_pages < old_size {
        tx.execute(
            "INSERT INTO shrinks(db, txid, size_pages) VALUES (?1, ?2, ?3)",
            params![id, txid as i64, request.size_pages],
        )
        .map_err(unavailable)?;
    }
    // With a window, reads at txids from the horizon on must stay possible: a version superseded
    // at or before it, and pages cut off by a shrink made at or before it, are gone.
    if history > 0 && txid > history {
        let horizon = (txid - history) as i64;
        tx.prepare_cached("DELETE FROM page_history WHERE db = ?1 AND until <= ?2")
            .and_then(|mut s| s.execute(params![id, horizon]))
            .map_err(unavailable)?;
        // `<=`, not `=`: a window made smaller between opens moves the horizon past shrinks.
        tx.prepare_cached(compact_shrinks!("s.db = ?1 AND s.txid <= ?2"))
            .and_then(|mut s| s.execute(params![id, horizon]))
            .map_err(unavailable)?;
        tx.prepare_cached("DELETE FROM shrinks WHERE db = ?1 AND txid <= ?2")
            .and_then(|mut s| s.execute(params![id, horizon]))
            .map_err(unavailable)?;
    }
    tx.execute(
        "UPDATE databases SET head_txid = ?1, size_pages = ?2 WHERE id = ?3",
        params![txid as i64, request.size_pages, id],
    )
    .map_err(unavailable)?;
    tx.prepare_cached(
        "INSERT INTO commits(db, commit_id, txid, page_count, committed_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            &request.commit_id.to_be_bytes()[..],
            txid as i64,
            request.pages.len() as i64,
            now_ms()
        ])
    })
    .map_err(unavailable)?;
    if txid.is_multiple_of(256) {
        tx.execute(
            "DELETE FROM commits WHERE db = ?1 AND txid <= ?2",
            params![id, txid as i64 - COMMIT_LOG_KEEP as i64],
        )
        .map_err(unavailable)?;
    }
    Ok(())
}
