//! An in-process store for tests: the same semantics as the durable backends, nothing on disk.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use crate::store::{check_commit, checked_page, claim_generation, COMMIT_LOG_KEEP};
use crate::{
    validate_name, CommitOutcome, CommitRequest, Head, Opened, Page, PageNo, PageStore, StoreError,
    Txid, PAGE_SIZE,
};

#[derive(Default)]
struct Database {
    head: Option<Head>,
    /// (page, txid) -> version. Only the newest version of each page is kept (no snapshot readers yet).
    versions: BTreeMap<(PageNo, Txid), Page>,
    commits: HashMap<u128, Txid>,
    commit_order: VecDeque<u128>,
}

impl Database {
    fn head(&self) -> Head {
        self.head.unwrap_or(Head { txid: 0, size_pages: 0, page_size: PAGE_SIZE as u32, generation: 0 })
    }

    fn newest(&self, no: PageNo, at: Txid) -> Option<Page> {
        self.versions.range((no, 0)..=(no, at)).next_back().map(|(_, p)| p.clone())
    }
}

/// A [`PageStore`] held in memory; shared by every database opened through it.
#[derive(Default)]
pub struct MemoryStore {
    databases: Mutex<HashMap<String, Database>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of page versions stored for `database` (tests use it to check pruning).
    pub fn version_count(&self, database: &str) -> usize {
        self.databases.lock().unwrap().get(database).map_or(0, |d| d.versions.len())
    }
}

impl PageStore for MemoryStore {
    fn open(&self, database: &str, generation: Option<u64>, preload: &[PageNo])
        -> Result<Opened, StoreError> {
        validate_name(database)?;
        let mut dbs = self.databases.lock().unwrap();
        let db = dbs.entry(database.to_string()).or_default();
        let mut head = db.head();
        head.generation = claim_generation(database, head.generation, generation)?;
        db.head = Some(head);
        let mut pages = Vec::new();
        for &no in preload.iter().filter(|&&no| no >= 1 && no <= head.size_pages) {
            if let Some(p) = checked_page(database, no, db.newest(no, head.txid), head.size_pages)? {
                pages.push(p);
            }
        }
        Ok(Opened { head, pages })
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid)
        -> Result<Vec<Option<Page>>, StoreError> {
        let dbs = self.databases.lock().unwrap();
        let db = dbs.get(database).ok_or_else(|| {
            StoreError::InvalidArgument(format!("database '{database}' was never opened"))
        })?;
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
        for page in &request.pages {
            // Versions are immutable: a new txid gets a new entry; older ones of the page go, since
            // nothing may read them any more.
            let older: Vec<_> = db.versions.range((page.no, 0)..(page.no, txid)).map(|(k, _)| *k).collect();
            for k in older {
                db.versions.remove(&k);
            }
            db.versions.insert((page.no, txid), page.clone());
        }
        if request.size_pages < head.size_pages {
            let dropped: Vec<_> =
                db.versions.range((request.size_pages + 1, 0)..).map(|(k, _)| *k).collect();
            for k in dropped {
                db.versions.remove(&k);
            }
        }
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
}
