//! The embedded default store: one directory holding an append-only log of records and a base file,
//! with an index of every page version in memory.
//!
//! A commit is one frame appended to the current log file and one `fdatasync`: its pages' bytes
//! and the few fields that make it a commit (database, txid, generation, commit id, size), framed
//! with a CRC. Log files are preallocated with zeros, so that sync has no file size to update
//! (measured on this VM's ext4: ~250 µs a sync into preallocated space, ~450 µs when appending
//! grows the file). The SQLite file that held the store before wrote several b-tree pages of its
//! own per commit, and its readers re-read its WAL after every commit.
//!
//! Nothing is overwritten: a page version stays where its commit wrote it until a *compaction*
//! copies the live versions of every sealed log into a new base file (sorted by database and page,
//! so that a scan reads long runs) and deletes the files it replaced. Compaction runs on a
//! background thread once the sealed logs outgrow the base (and 64 MiB); commits and reads go on
//! meanwhile: the index points at the old files until the new base is synced and renamed into
//! place.
//!
//! At open the base's metadata and the logs after it are replayed through [`state::State::apply`],
//! the function every live write goes through too. Replay stops at the first frame of the last log
//! that is not whole and valid (a write torn by a crash; its commit was never acknowledged); a log
//! before the last must end with a seal record, else the store is refused as corrupt. Every page
//! version keeps its txid, so reads at an older txid (history, snapshot readers) need only the
//! index to keep the version (the history window, [`FileStoreOptions::history_txids`]).
//!
//! The directory is locked with an OS file lock (`LOCK`), so two processes cannot write the same
//! depot. Database names are keys in the log, never paths. A depot written by the SQLite-based
//! layout (`depot.sqlite3`) is imported into a base file at open (see [`legacy`]).

mod base;
mod compact;
mod legacy;
mod record;
mod recover;
mod segment;
mod state;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use record::{CommitHeader, Record};
use recover::recover;
use segment::{io_error, parse_name, Segment};
use state::{Loc, State};
use writer::Writer;

use crate::history::now_ms;
use crate::store::{check_commit, checked_page, claim_generation, with_hints, MAX_HINTS};
use crate::{
    validate_name, CommitInfo, CommitOutcome, CommitRequest, Head, LeaseId, Opened, Page, PageNo, PageStore,
    Restored, Retention, StoreError, Txid, PAGE_SIZE,
};

const LOCK_FILE: &str = "LOCK";

/// Settings of a [`FileStore`].
#[derive(Debug, Clone, Default)]
pub struct FileStoreOptions {
    /// Txids of history kept readable behind each database's head (0, the default: a superseded
    /// version is dropped by the commit that supersedes it, unless `history_ms` keeps it).
    pub history_txids: u64,
    /// Milliseconds of history kept: every point of that window stays readable, restorable and
    /// forkable (0, the default: none).
    pub history_ms: u64,
}

/// The embedded, durable [`PageStore`].
pub struct FileStore {
    inner: Arc<Inner>,
    compactor: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    dir: PathBuf,
    state: RwLock<State>,
    /// Held across a commit's append and sync: one writer at a time (lock order: writer, then
    /// state).
    writer: Mutex<Writer>,
    compacting: AtomicBool,
    /// Held for the life of the store: the OS lock that keeps other processes out.
    _lock: File,
}

impl FileStore {
    /// Opens (creating if needed) the depot in directory `dir`.
    pub fn open(dir: &Path, options: FileStoreOptions) -> Result<FileStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create depot directory", dir, e))?;
        let lock = File::create(dir.join(LOCK_FILE))
            .map_err(|e| io_error("cannot create the lock file in", dir, e))?;
        lock.try_lock().map_err(|_| {
            StoreError::Unavailable(format!(
                "depot directory {} is in use by another store (process or Depot)",
                dir.display()
            ))
        })?;
        let retention = Retention { ms: options.history_ms, txids: options.history_txids };
        let (state, writer) = recover(dir, retention)?;
        let inner = Inner {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            writer: Mutex::new(writer),
            compacting: AtomicBool::new(false),
            _lock: lock,
        };
        Ok(FileStore { inner: Arc::new(inner), compactor: Mutex::new(None) })
    }

    /// Number of page versions stored for `database` (tests use it to check pruning).
    pub fn version_count(&self, database: &str) -> usize {
        self.inner.state.read().unwrap().db(database).map_or(0, |d| d.timeline.versions.len())
    }

    /// Bytes of the store's files on disk (tests and reports use it).
    pub fn disk_bytes(&self) -> u64 {
        std::fs::read_dir(&self.inner.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| parse_name(&e.file_name().to_string_lossy()).is_some())
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Compacts now, on the caller's thread: afterwards the store is one base file holding the live
    /// versions and an empty log.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.join_compactor();
        while self.inner.compacting.swap(true, Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let r = self.inner.compact();
        self.inner.compacting.store(false, Ordering::SeqCst);
        r
    }

    fn join_compactor(&self) {
        if let Some(handle) = self.compactor.lock().unwrap().take() {
            let _ = handle.join();
        }
    }

    /// Starts a compaction on a background thread when the sealed logs have outgrown the base.
    fn maybe_compact(&self, due: bool) {
        if !due || self.inner.compacting.swap(true, Ordering::SeqCst) {
            return;
        }
        self.join_compactor();
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new().name("depot-compact".into()).spawn(move || {
            if let Err(e) = inner.compact() {
                tracing::warn!(error = %e, "file store compaction failed; the logs stay as they are");
            }
            inner.compacting.store(false, Ordering::SeqCst);
        });
        match spawned {
            Ok(handle) => *self.compactor.lock().unwrap() = Some(handle),
            Err(_) => self.inner.compacting.store(false, Ordering::SeqCst),
        }
    }

    /// Reads the newest versions of `pages` at `at`, and the database's size there: the head of
    /// a database this process opened when `at_head`, else any txid the history covers (under the
    /// state lock only long enough to find where the versions lie).
    fn read(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
        at_head: bool,
    ) -> Result<(u32, Vec<Option<Page>>), StoreError> {
        let mut found: Vec<Option<(Arc<Segment>, Loc)>> = Vec::with_capacity(pages.len());
        let size_pages = {
            let state = self.inner.state.read().unwrap();
            let db = state.db(database).filter(|d| d.opened || !at_head).ok_or_else(|| {
                StoreError::InvalidArgument(format!("database '{database}' was never opened"))
            })?;
            let head = db.timeline.head;
            let size_pages = if at == head.txid {
                head.size_pages
            } else if at_head {
                return Err(StoreError::HeadMoved {
                    database: database.into(),
                    expected: at,
                    actual: head.txid,
                });
            } else {
                db.timeline.size_at(at, state.retention, now_ms())?
            };
            for &no in pages {
                let inside = no >= 1 && no <= size_pages;
                match db.timeline.versions.newest(no, at).filter(|_| inside) {
                    Some(&loc) => {
                        let segment = state.segments.get(&loc.file).cloned().ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "database '{database}': page {no} lies in file {}, which is gone",
                                loc.file
                            ))
                        })?;
                        found.push(Some((segment, loc)));
                    }
                    None => {
                        checked_page(database, no, None, size_pages)?;
                        found.push(None);
                    }
                }
            }
            size_pages
        };
        Ok((size_pages, read_bytes(pages, found)?))
    }

    /// Appends `records` and applies them once they are durable (the writer lock held throughout).
    fn write(&self, w: &mut Writer, records: &[Record]) -> Result<(), StoreError> {
        let framed: Vec<(&Record, &[&[u8]])> = records.iter().map(|r| (r, &[][..])).collect();
        let offsets = w.append(&self.inner.dir, &framed)?;
        let file = w.log.number;
        let mut state = self.inner.state.write().unwrap();
        state.segments.entry(file).or_insert_with(|| w.log.clone());
        for (record, at) in records.iter().zip(offsets) {
            state.apply(file, at, record)?;
        }
        Ok(())
    }
}

/// Reads the bytes of each found version; versions that lie back to back in one file are read
/// with one `pread`.
fn read_bytes(
    pages: &[PageNo],
    found: Vec<Option<(Arc<Segment>, Loc)>>,
) -> Result<Vec<Option<Page>>, StoreError> {
    let mut order: Vec<usize> = (0..found.len()).filter(|&i| found[i].is_some()).collect();
    let key = |i: usize| found[i].as_ref().map(|(s, l)| (s.number, l.offset)).unwrap();
    order.sort_by_key(|&i| key(i));
    let mut out: Vec<Option<Page>> = vec![None; found.len()];
    let mut start = 0;
    let mut buf = Vec::new();
    while start < order.len() {
        let (segment, first) = found[order[start]].as_ref().unwrap();
        let mut end = start + 1;
        while end < order.len()
            && key(order[end]) == (segment.number, first.offset + ((end - start) * PAGE_SIZE) as u64)
        {
            end += 1;
        }
        buf.resize((end - start) * PAGE_SIZE, 0);
        segment.read_exact_at(&mut buf, first.offset)?;
        for (k, &i) in order[start..end].iter().enumerate() {
            let (_, loc) = found[i].as_ref().unwrap();
            let data: Arc<[u8]> = Arc::from(&buf[k * PAGE_SIZE..(k + 1) * PAGE_SIZE]);
            out[i] = Some(Page { no: pages[i], data, checksum: loc.checksum });
        }
        start = end;
    }
    Ok(out)
}

impl Drop for FileStore {
    fn drop(&mut self) {
        self.join_compactor();
    }
}

impl PageStore for FileStore {
    fn history_window(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.inner.state.read().unwrap().retention.ms)
    }

    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        validate_name(database)?;
        {
            let mut w = self.inner.writer.lock().unwrap();
            let (existing, id, current) = {
                let state = self.inner.state.read().unwrap();
                match state.db(database) {
                    Some(db) => (true, db.id, db.timeline.head.generation),
                    None => (false, state.next_id(), 0),
                }
            };
            let claimed = claim_generation(database, current, generation)?;
            let mut records = Vec::new();
            if !existing {
                records.push(Record::Database { id, name: database.to_string() });
            }
            // Claiming the generation it holds (a hibernated writer waking up) changes nothing
            // durable: no frame, no sync.
            if !existing || claimed != current {
                records.push(Record::Generation { id, generation: claimed });
                self.write(&mut w, &records)?;
            }
            let mut state = self.inner.state.write().unwrap();
            state.db_mut(database).unwrap().opened = true;
        }
        let (head, wanted) = {
            let state = self.inner.state.read().unwrap();
            let db = state.db(database).unwrap();
            (db.timeline.head, with_hints(preload, &db.hints))
        };
        let wanted: Vec<PageNo> = wanted.into_iter().filter(|&no| no >= 1 && no <= head.size_pages).collect();
        let pages = match self.read(database, &wanted, head.txid, true) {
            // Another handle committed since: the preload is only a hint, and this writer is fenced.
            Err(StoreError::HeadMoved { .. }) => Vec::new(),
            other => other?.1.into_iter().flatten().collect(),
        };
        Ok(Opened { head, pages })
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        self.read(database, pages, at, true).map(|(_, pages)| pages)
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        let (txid, due) = {
            let mut w = self.inner.writer.lock().unwrap();
            let (id, txid) = {
                let state = self.inner.state.read().unwrap();
                let db = state.db(&request.database).filter(|d| d.opened).ok_or_else(|| {
                    StoreError::InvalidArgument(format!("database '{}' was never opened", request.database))
                })?;
                if let Some(txid) = db.timeline.applied(request.commit_id) {
                    return Ok(CommitOutcome { txid, replayed: true });
                }
                check_commit(&db.timeline.head, request)?;
                (db.id, db.timeline.head.txid + 1)
            };
            let record = Record::Commit(CommitHeader {
                id,
                txid,
                generation: request.generation,
                commit_id: request.commit_id,
                size_pages: request.size_pages,
                time_ms: now_ms(),
                pages: request.pages.iter().map(|p| (p.no, p.checksum)).collect(),
            });
            let data: Vec<&[u8]> = request.pages.iter().map(|p| &p.data[..]).collect();
            let at = w.append(&self.inner.dir, &[(&record, &data)])?[0];
            let file = w.log.number;
            let mut state = self.inner.state.write().unwrap();
            state.segments.entry(file).or_insert_with(|| w.log.clone());
            state.apply(file, at, &record)?;
            (txid, w.compaction_due())
        };
        self.maybe_compact(due);
        Ok(CommitOutcome { txid, replayed: false })
    }

    fn describe(&self) -> String {
        format!("file:{}", self.inner.dir.display())
    }

    fn databases(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> =
            self.inner.state.read().unwrap().dbs.values().map(|d| d.name.clone()).collect();
        names.sort();
        Ok(names)
    }

    fn history(
        &self,
        database: &str,
        limit: usize,
        before: Option<Txid>,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        let state = self.inner.state.read().unwrap();
        let t = &state.db(database).ok_or_else(|| no_database(database))?.timeline;
        Ok(t.history(limit, before, state.retention, now_ms()))
    }

    fn txid_at_time(&self, database: &str, time_ms: u64) -> Result<Txid, StoreError> {
        let state = self.inner.state.read().unwrap();
        let t = &state.db(database).ok_or_else(|| no_database(database))?.timeline;
        t.txid_at_time(time_ms, state.retention, now_ms())
    }

    fn read_at(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
    ) -> Result<(u32, Vec<Option<Page>>), StoreError> {
        self.read(database, pages, at, false)
    }

    fn restore(
        &self,
        database: &str,
        at: Txid,
        generation: Option<u64>,
        commit_id: u128,
    ) -> Result<Restored, StoreError> {
        let mut w = self.inner.writer.lock().unwrap();
        let (id, head, claimed) = {
            let state = self.inner.state.read().unwrap();
            let db = state.db(database).ok_or_else(|| no_database(database))?;
            if let Some(txid) = db.timeline.applied(commit_id) {
                return Ok(Restored { txid, previous: txid - 1, generation: db.timeline.head.generation });
            }
            db.timeline.size_at(at, state.retention, now_ms())?;
            let head = db.timeline.head;
            (db.id, head, claim_generation(database, head.generation, generation)?)
        };
        let txid = head.txid + 1;
        let restore = Record::Restore { id, at, txid, commit_id, time_ms: now_ms() };
        self.write(&mut w, &[Record::Generation { id, generation: claimed }, restore])?;
        Ok(Restored { txid, previous: head.txid, generation: claimed })
    }

    fn fork(
        &self,
        source: &str,
        target: &str,
        at: Option<Txid>,
        commit_id: u128,
    ) -> Result<Head, StoreError> {
        validate_name(target)?;
        let mut w = self.inner.writer.lock().unwrap();
        let (id, source_id, at) = {
            let state = self.inner.state.read().unwrap();
            if let Some(existing) = state.db(target) {
                if existing.timeline.applied(commit_id) == Some(1) {
                    return Ok(existing.timeline.head);
                }
                return Err(StoreError::InvalidArgument(format!("database '{target}' exists already")));
            }
            let src = state.db(source).ok_or_else(|| no_database(source))?;
            let at = at.unwrap_or(src.timeline.head.txid);
            src.timeline.size_at(at, state.retention, now_ms())?;
            (state.next_id(), src.id, at)
        };
        let fork = Record::Fork { id, source: source_id, at, commit_id, time_ms: now_ms() };
        self.write(&mut w, &[Record::Database { id, name: target.to_string() }, fork])?;
        Ok(self.inner.state.read().unwrap().dbs[&id].timeline.head)
    }

    fn lease(&self, database: &str, at: Txid) -> Result<LeaseId, StoreError> {
        // Leases live in memory only: after a restart no reader of this process holds a point.
        let mut state = self.inner.state.write().unwrap();
        let retention = state.retention;
        let db = state.db_mut(database).ok_or_else(|| no_database(database))?;
        db.timeline.lease(at, retention, now_ms())?;
        Ok(LeaseId::from(at))
    }

    fn release(&self, database: &str, lease: LeaseId) {
        if let Some(db) = self.inner.state.write().unwrap().db_mut(database) {
            db.timeline.release(lease as Txid);
        }
    }

    fn save_hints(&self, database: &str, generation: u64, pages: &[PageNo]) -> Result<(), StoreError> {
        let mut w = self.inner.writer.lock().unwrap();
        let id = {
            let state = self.inner.state.read().unwrap();
            match state.db(database) {
                // Written only while `generation` is still the database's writer.
                Some(db) if db.timeline.head.generation == generation => db.id,
                _ => return Ok(()),
            }
        };
        let record = Record::Hints { id, pages: pages.iter().copied().take(MAX_HINTS).collect() };
        // Synced like every frame: a frame that does not read back is then always the last one
        // written (a torn write), never one with acknowledged frames after it.
        self.write(&mut w, &[record])
    }
}

fn no_database(database: &str) -> StoreError {
    StoreError::InvalidArgument(format!("no database '{database}'"))
}
