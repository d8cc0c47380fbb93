//! An in-process store for tests: the same semantics as the durable backends, nothing on disk.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::history::{now_ms, Applied, Timeline};
use crate::store::{check_commit, checked_page, claim_generation, with_hints, MAX_HINTS};
use crate::{
    validate_name, CommitInfo, CommitOutcome, CommitRequest, Head, LeaseId, Opened, Page, PageNo, PageStore,
    Restored, Retention, StoreError, Txid,
};

#[derive(Default)]
struct Database {
    timeline: Timeline<Page>,
    /// Pages the last session used first.
    hints: Vec<PageNo>,
}

impl Database {
    fn head(&self) -> Head {
        self.timeline.head
    }

    fn newest(&self, no: PageNo, at: Txid) -> Option<Page> {
        self.timeline.versions.newest(no, at).cloned()
    }

    /// `pages` as they were at `at`, sized `size_pages` there.
    fn read(
        &self,
        name: &str,
        pages: &[PageNo],
        at: Txid,
        size_pages: u32,
    ) -> Result<Vec<Option<Page>>, StoreError> {
        let inside = |no: PageNo| no >= 1 && no <= size_pages;
        pages
            .iter()
            .map(|&no| checked_page(name, no, self.newest(no, at).filter(|_| inside(no)), size_pages))
            .collect()
    }
}

/// A [`PageStore`] held in memory; shared by every database opened through it.
#[derive(Default)]
pub struct MemoryStore {
    databases: Mutex<HashMap<String, Database>>,
    retention: Retention,
}

fn no_database(database: &str) -> StoreError {
    StoreError::InvalidArgument(format!("database '{database}' was never opened"))
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that keeps every version readable for `history` txids behind the head.
    pub fn with_history(history: u64) -> MemoryStore {
        MemoryStore::with_retention(Retention { ms: 0, txids: history })
    }

    /// A store that keeps what `retention` asks for.
    pub fn with_retention(retention: Retention) -> MemoryStore {
        MemoryStore { retention, ..MemoryStore::default() }
    }

    /// Number of page versions stored for `database` (tests use it to check pruning).
    pub fn version_count(&self, database: &str) -> usize {
        self.databases.lock().unwrap().get(database).map_or(0, |d| d.timeline.versions.len())
    }

    /// Applies a commit of `pages` (already checked) to `db` as its next txid.
    fn apply(&self, db: &mut Database, commit_id: u128, pages: Vec<Page>, size_pages: u32) -> Txid {
        let txid = db.timeline.head.txid + 1;
        let versions = pages.into_iter().map(|p| (p.no, p));
        let commit = Applied { txid, commit_id, time_ms: now_ms(), size_pages, pages: versions };
        db.timeline.apply(commit, self.retention, drop);
        txid
    }
}

impl PageStore for MemoryStore {
    fn history_window(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.retention.ms)
    }

    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        validate_name(database)?;
        let mut dbs = self.databases.lock().unwrap();
        let db = dbs.entry(database.to_string()).or_default();
        let mut head = db.head();
        head.generation = claim_generation(database, head.generation, generation)?;
        db.timeline.head = head;
        let mut pages = Vec::new();
        for &no in with_hints(preload, &db.hints).iter().filter(|&&no| no >= 1 && no <= head.size_pages) {
            if let Some(p) = checked_page(database, no, db.newest(no, head.txid), head.size_pages)? {
                pages.push(p);
            }
        }
        Ok(Opened { head, pages })
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        let dbs = self.databases.lock().unwrap();
        let db = dbs.get(database).ok_or_else(|| no_database(database))?;
        let head = db.head();
        if head.txid != at {
            return Err(StoreError::HeadMoved { database: database.into(), expected: at, actual: head.txid });
        }
        db.read(database, pages, at, head.size_pages)
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        let mut dbs = self.databases.lock().unwrap();
        let db = dbs.get_mut(&request.database).ok_or_else(|| no_database(&request.database))?;
        if let Some(txid) = db.timeline.applied(request.commit_id) {
            return Ok(CommitOutcome { txid, replayed: true });
        }
        check_commit(&db.head(), request)?;
        // Versions are immutable: a new txid gets a new entry. Older ones go once nothing may read
        // them: at once without history, else when they fall out of the retained window.
        let txid = self.apply(db, request.commit_id, request.pages.clone(), request.size_pages);
        Ok(CommitOutcome { txid, replayed: false })
    }

    fn describe(&self) -> String {
        "memory".into()
    }

    fn databases(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self.databases.lock().unwrap().keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    fn save_hints(&self, database: &str, generation: u64, pages: &[PageNo]) -> Result<(), StoreError> {
        let mut dbs = self.databases.lock().unwrap();
        if let Some(db) = dbs.get_mut(database) {
            if db.head().generation == generation {
                db.hints = pages.iter().copied().take(MAX_HINTS).collect();
            }
        }
        Ok(())
    }

    fn history(
        &self,
        database: &str,
        limit: usize,
        before: Option<Txid>,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        let dbs = self.databases.lock().unwrap();
        let db = dbs.get(database).ok_or_else(|| no_database(database))?;
        Ok(db.timeline.history(limit, before, self.retention, now_ms()))
    }

    fn txid_at_time(&self, database: &str, time_ms: u64) -> Result<Txid, StoreError> {
        let dbs = self.databases.lock().unwrap();
        let db = dbs.get(database).ok_or_else(|| no_database(database))?;
        db.timeline.txid_at_time(time_ms, self.retention, now_ms())
    }

    fn read_at(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
    ) -> Result<(u32, Vec<Option<Page>>), StoreError> {
        let dbs = self.databases.lock().unwrap();
        let db = dbs.get(database).ok_or_else(|| no_database(database))?;
        let size = db.timeline.size_at(at, self.retention, now_ms())?;
        Ok((size, db.read(database, pages, at, size)?))
    }

    fn restore(
        &self,
        database: &str,
        at: Txid,
        generation: Option<u64>,
        id: u128,
    ) -> Result<Restored, StoreError> {
        let mut dbs = self.databases.lock().unwrap();
        let db = dbs.get_mut(database).ok_or_else(|| no_database(database))?;
        if let Some(txid) = db.timeline.applied(id) {
            return Ok(Restored { txid, previous: txid - 1, generation: db.head().generation });
        }
        let size = db.timeline.size_at(at, self.retention, now_ms())?;
        let generation = claim_generation(database, db.head().generation, generation)?;
        db.timeline.head.generation = generation;
        let previous = db.head().txid;
        let pages = db.timeline.changed_since(at, size);
        let txid = self.apply(db, id, pages.into_iter().map(|(_, p)| p).collect(), size);
        Ok(Restored { txid, previous, generation })
    }

    fn lease(&self, database: &str, at: Txid) -> Result<LeaseId, StoreError> {
        let mut dbs = self.databases.lock().unwrap();
        let db = dbs.get_mut(database).ok_or_else(|| no_database(database))?;
        db.timeline.lease(at, self.retention, now_ms())?;
        Ok(LeaseId::from(at))
    }

    fn release(&self, database: &str, lease: LeaseId) {
        if let Some(db) = self.databases.lock().unwrap().get_mut(database) {
            db.timeline.release(lease as Txid);
        }
    }

    fn fork(&self, source: &str, target: &str, at: Option<Txid>, id: u128) -> Result<Head, StoreError> {
        validate_name(target)?;
        let mut dbs = self.databases.lock().unwrap();
        if let Some(existing) = dbs.get(target) {
            if existing.timeline.applied(id) == Some(1) {
                return Ok(existing.head());
            }
            return Err(StoreError::InvalidArgument(format!("database '{target}' exists already")));
        }
        let src = dbs.get(source).ok_or_else(|| no_database(source))?;
        let at = at.unwrap_or(src.head().txid);
        let size = src.timeline.size_at(at, self.retention, now_ms())?;
        let pages: Vec<Page> = src.timeline.visible_at(at, size).into_iter().map(|(_, p)| p).collect();
        let mut fork = Database::default();
        self.apply(&mut fork, id, pages, size);
        let head = fork.head();
        dbs.insert(target.to_string(), fork);
        Ok(head)
    }
}
