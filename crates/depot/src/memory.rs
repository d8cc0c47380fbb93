//! An in-process store for tests: the same semantics as the durable backends, nothing on disk.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::store::{check_commit, checked_page, claim_generation, with_hints, COMMIT_LOG_KEEP, MAX_HINTS};
use crate::versions::Versions;
use crate::{
    validate_name, CommitOutcome, CommitRequest, Head, Opened, Page, PageNo, PageStore, StoreError, Txid,
    PAGE_SIZE,
};

#[derive(Default)]
struct Database {
    head: Option<Head>,
    versions: Versions<Page>,
    commits: HashMap<u128, Txid>,
    commit_order: VecDeque<u128>,
    /// Pages the last session used first.
    hints: Vec<PageNo>,
}

impl Database {
    fn head(&self) -> Head {
        self.head.unwrap_or(Head { txid: 0, size_pages: 0, page_size: PAGE_SIZE as u32, generation: 0 })
    }

    fn newest(&self, no: PageNo, at: Txid) -> Option<Page> {
        self.versions.newest(no, at).cloned()
    }
}

/// A [`PageStore`] held in memory; shared by every database opened through it.
#[derive(Default)]
pub struct MemoryStore {
    databases: Mutex<HashMap<String, Database>>,
    /// Txids of history kept readable behind the head (0: prune at once).
    history: u64,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that keeps every version readable for `history` txids behind the head.
    pub fn with_history(history: u64) -> MemoryStore {
        MemoryStore { history, ..MemoryStore::default() }
    }

    /// Reads pages as of an older `at` within the history window (tests of the window use it).
    pub fn get_pages_at(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
    ) -> Result<Vec<Option<Page>>, StoreError> {
        let dbs = self.databases.lock().unwrap();
        let db = dbs
            .get(database)
            .ok_or_else(|| StoreError::InvalidArgument(format!("no database '{database}'")))?;
        let head = db.head();
        if at > head.txid || at + self.history < head.txid {
            return Err(StoreError::InvalidArgument(format!("txid {at} is outside the history window")));
        }
        Ok(pages.iter().map(|&no| db.newest(no, at)).collect())
    }

    /// Number of page versions stored for `database` (tests use it to check pruning).
    pub fn version_count(&self, database: &str) -> usize {
        self.databases.lock().unwrap().get(database).map_or(0, |d| d.versions.len())
    }
}

impl PageStore for MemoryStore {
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
        db.head = Some(head);
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
        let db = dbs
            .get(database)
            .ok_or_else(|| StoreError::InvalidArgument(format!("database '{database}' was never opened")))?;
        let head = db.head();
        if head.txid != at {
            return Err(StoreError::HeadMoved { database: database.into(), expected: at, actual: head.txid });
        }
        pages.iter().map(|&no| checked_page(database, no, db.newest(no, at), head.size_pages)).collect()
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        let mut dbs = self.databases.lock().unwrap();
        let db = dbs.get_mut(&request.database).ok_or_else(|| {
            StoreError::InvalidArgument(format!("database '{}' was never opened", request.database))
        })?;
        if let Some(&txid) = db.commits.get(&request.commit_id) {
            return Ok(CommitOutcome { txid, replayed: true });
        }
        let mut head = db.head();
        check_commit(&head, request)?;
        let txid = head.txid + 1;
        // Versions are immutable: a new txid gets a new entry. Older ones go once nothing may read
        // them: at once without a history window, else when they fall out of it.
        let shrank = (request.size_pages < head.size_pages).then_some(request.size_pages);
        db.versions.insert_commit(txid, request.pages.iter().map(|p| (p.no, p.clone())), shrank);
        db.versions.compact(txid.saturating_sub(self.history), drop);
        head.txid = txid;
        head.size_pages = request.size_pages;
        db.head = Some(head);
        db.commits.insert(request.commit_id, txid);
        db.commit_order.push_back(request.commit_id);
        if db.commit_order.len() > COMMIT_LOG_KEEP {
            let old = db.commit_order.pop_front().unwrap();
            db.commits.remove(&old);
        }
        Ok(CommitOutcome { txid, replayed: false })
    }

    fn describe(&self) -> String {
        "memory".into()
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
}
