//! What the store knows in memory: every database's head, hints and recent commits, and where each
//! readable page version lies on disk. It is rebuilt at open by replaying the base and the logs
//! after it through [`State::apply`], the same function a live write goes through once its record
//! is durable, so what a restart rebuilds is what the running store held.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use super::record::{commit_data_offset, Record};
use super::segment::Segment;
use crate::store::COMMIT_LOG_KEEP;
use crate::versions::Versions;
use crate::{Head, PageNo, StoreError, Txid, PAGE_SIZE};

/// Where a page version's bytes lie: file, offset, and the checksum its writer computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub file: u32,
    pub offset: u64,
    pub checksum: u32,
}

/// A commit remembered for idempotent retries (and, later, for history).
#[derive(Debug, Clone, Copy)]
pub struct CommitMeta {
    pub txid: Txid,
    pub commit_id: u128,
    pub time_ms: u64,
    pub size_pages: u32,
}

#[derive(Debug)]
pub struct Db {
    pub id: u32,
    pub name: String,
    pub head: Head,
    pub hints: Vec<PageNo>,
    pub versions: Versions<Loc>,
    pub commits: VecDeque<CommitMeta>,
    pub commit_ids: HashMap<u128, Txid>,
    /// Opened by this process (reads and commits of a database never opened are refused).
    pub opened: bool,
}

impl Db {
    fn new(id: u32, name: String) -> Db {
        Db {
            id,
            name,
            head: Head { txid: 0, size_pages: 0, page_size: PAGE_SIZE as u32, generation: 0 },
            hints: Vec::new(),
            versions: Versions::default(),
            commits: VecDeque::new(),
            commit_ids: HashMap::new(),
            opened: false,
        }
    }

    /// The size of the database at `at`, if the history window (`history` txids behind the head)
    /// covers it and the commit log still knows it.
    pub fn size_at(&self, at: Txid, history: u64) -> Option<u32> {
        if at > self.head.txid || at.saturating_add(history) < self.head.txid {
            return None;
        }
        if at == self.head.txid {
            return Some(self.head.size_pages);
        }
        if at == 0 {
            return Some(0);
        }
        let first = self.commits.front()?.txid;
        let meta = self.commits.get(at.checked_sub(first)? as usize)?;
        (meta.txid == at).then_some(meta.size_pages)
    }

    fn remember(&mut self, meta: CommitMeta, keep: usize) {
        self.commit_ids.insert(meta.commit_id, meta.txid);
        self.commits.push_back(meta);
        while self.commits.len() > keep {
            let old = self.commits.pop_front().unwrap();
            self.commit_ids.remove(&old.commit_id);
        }
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub ids: HashMap<String, u32>,
    pub dbs: HashMap<u32, Db>,
    /// Every file whose bytes a version may point at, by number.
    pub segments: BTreeMap<u32, Arc<Segment>>,
    /// Txids of history kept behind each head.
    pub history: u64,
}

impl State {
    pub fn new(history: u64) -> State {
        State { history, ..State::default() }
    }

    pub fn db(&self, name: &str) -> Option<&Db> {
        self.ids.get(name).and_then(|id| self.dbs.get(id))
    }

    pub fn db_mut(&mut self, name: &str) -> Option<&mut Db> {
        self.ids.get(name).and_then(|id| self.dbs.get_mut(id))
    }

    pub fn next_id(&self) -> u32 {
        self.dbs.keys().max().map_or(1, |m| m + 1)
    }

    fn commit_log_keep(&self) -> usize {
        COMMIT_LOG_KEEP.max(self.history.saturating_add(1).min(usize::MAX as u64) as usize)
    }

    fn db_by_id(&mut self, id: u32) -> Result<&mut Db, StoreError> {
        self.dbs
            .get_mut(&id)
            .ok_or_else(|| StoreError::Corrupt(format!("a record names database id {id}, which has no name")))
    }

    /// Applies `record`, found (or just made durable) at `offset` of file `file`.
    pub fn apply(&mut self, file: u32, offset: u64, record: &Record) -> Result<(), StoreError> {
        let keep = self.commit_log_keep();
        let history = self.history;
        match record {
            Record::Database { id, name } => {
                self.ids.insert(name.clone(), *id);
                self.dbs.entry(*id).or_insert_with(|| Db::new(*id, name.clone()));
            }
            Record::Generation { id, generation } => self.db_by_id(*id)?.head.generation = *generation,
            Record::Hints { id, pages } => self.db_by_id(*id)?.hints = pages.clone(),
            Record::Seal { .. } => {}
            Record::Commit(c) => {
                let segments = &self.segments;
                let db = self.dbs.get_mut(&c.id).ok_or_else(|| {
                    StoreError::Corrupt(format!("a commit names database id {}, which has no name", c.id))
                })?;
                if db.commit_ids.contains_key(&c.commit_id) {
                    // Written again after a write whose outcome was unknown: the first one counts.
                    return Ok(());
                }
                if c.txid != db.head.txid + 1 {
                    return Err(StoreError::Corrupt(format!(
                        "database '{}': the log holds txid {} after txid {}",
                        db.name, c.txid, db.head.txid
                    )));
                }
                let n = c.pages.len();
                let shrank = (c.size_pages < db.head.size_pages).then_some(c.size_pages);
                let locs = c.pages.iter().enumerate().map(|(i, &(no, checksum))| {
                    (no, Loc { file, offset: offset + commit_data_offset(n, i), checksum })
                });
                db.versions.insert_commit(c.txid, locs, shrank);
                db.versions.compact(c.txid.saturating_sub(history), |loc| dropped(segments, loc));
                db.head.txid = c.txid;
                db.head.size_pages = c.size_pages;
                let meta = CommitMeta {
                    txid: c.txid,
                    commit_id: c.commit_id,
                    time_ms: c.time_ms,
                    size_pages: c.size_pages,
                };
                db.remember(meta, keep);
            }
            Record::Head { id, txid, size_pages, generation } => {
                let db = self.db_by_id(*id)?;
                db.head.txid = *txid;
                db.head.size_pages = *size_pages;
                db.head.generation = *generation;
            }
            Record::CommitMeta { id, txid, commit_id, time_ms, size_pages } => {
                let meta = CommitMeta {
                    txid: *txid,
                    commit_id: *commit_id,
                    time_ms: *time_ms,
                    size_pages: *size_pages,
                };
                self.db_by_id(*id)?.remember(meta, keep);
            }
            Record::Shrink { id, txid, size_pages } => {
                self.db_by_id(*id)?.versions.insert_shrink(*txid, *size_pages)
            }
            Record::Version { id, no, txid, checksum, offset } => self.db_by_id(*id)?.versions.insert_kept(
                *no,
                *txid,
                Loc { file, offset: *offset, checksum: *checksum },
            ),
        }
        Ok(())
    }

    /// After loading: drops what the current history window no longer covers (it may be smaller
    /// than the one the files were written with).
    pub fn compact_all(&mut self) {
        let segments = &self.segments;
        for db in self.dbs.values_mut() {
            db.versions.compact(db.head.txid.saturating_sub(self.history), |loc| dropped(segments, loc));
        }
    }
}

/// A version the index let go of: its bytes are dead space in their file.
fn dropped(segments: &BTreeMap<u32, Arc<Segment>>, loc: Loc) {
    if let Some(s) = segments.get(&loc.file) {
        s.add_dead(PAGE_SIZE as u64);
    }
}
