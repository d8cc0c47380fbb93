//! What the store knows in memory: every database's head, hints and commit log, and where each
//! readable page version lies on disk. It is rebuilt at open by replaying the base and the logs
//! after it through [`State::apply`], the same function a live write goes through once its record
//! is durable, so what a restart rebuilds is what the running store held. Retention is applied
//! with each record's own time, so a replay drops exactly what the live store dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::record::{commit_data_offset, Record};
use super::segment::Segment;
use crate::history::{Applied, CommitInfo, Timeline};
use crate::{PageNo, Retention, StoreError, PAGE_SIZE};

/// Where a page version's bytes lie: file, offset, and the checksum its writer computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub file: u32,
    pub offset: u64,
    pub checksum: u32,
}

#[derive(Debug)]
pub struct Db {
    pub id: u32,
    pub name: String,
    pub timeline: Timeline<Loc>,
    pub hints: Vec<PageNo>,
    /// Opened by this process (reads and commits of a database never opened are refused).
    pub opened: bool,
}

impl Db {
    fn new(id: u32, name: String) -> Db {
        Db { id, name, timeline: Timeline::default(), hints: Vec::new(), opened: false }
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub ids: HashMap<String, u32>,
    pub dbs: HashMap<u32, Db>,
    /// Every file whose bytes a version may point at, by number.
    pub segments: BTreeMap<u32, Arc<Segment>>,
    pub retention: Retention,
}

impl State {
    pub fn new(retention: Retention) -> State {
        State { retention, ..State::default() }
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

    fn db_by_id(&mut self, id: u32) -> Result<&mut Db, StoreError> {
        self.dbs
            .get_mut(&id)
            .ok_or_else(|| StoreError::Corrupt(format!("a record names database id {id}, which has no name")))
    }

    /// Applies `record`, found (or just made durable) at `offset` of file `file`.
    pub fn apply(&mut self, file: u32, offset: u64, record: &Record) -> Result<(), StoreError> {
        let retention = self.retention;
        match record {
            Record::Database { id, name } => {
                self.ids.insert(name.clone(), *id);
                self.dbs.entry(*id).or_insert_with(|| Db::new(*id, name.clone()));
            }
            Record::Generation { id, generation } => {
                self.db_by_id(*id)?.timeline.head.generation = *generation
            }
            Record::Hints { id, pages } => self.db_by_id(*id)?.hints = pages.clone(),
            Record::Seal { .. } => {}
            Record::Commit(c) => {
                let segments = &self.segments;
                let db = self.dbs.get_mut(&c.id).ok_or_else(|| {
                    StoreError::Corrupt(format!("a commit names database id {}, which has no name", c.id))
                })?;
                if db.timeline.applied(c.commit_id).is_some() {
                    // Written again after a write whose outcome was unknown: the first one counts.
                    return Ok(());
                }
                check_next(db, c.txid)?;
                let n = c.pages.len();
                let locs = c.pages.iter().enumerate().map(|(i, &(no, checksum))| {
                    (no, Loc { file, offset: offset + commit_data_offset(n, i), checksum })
                });
                let commit = Applied {
                    txid: c.txid,
                    commit_id: c.commit_id,
                    time_ms: c.time_ms,
                    size_pages: c.size_pages,
                    pages: locs,
                };
                db.timeline.apply(commit, retention, |loc| dropped(segments, loc));
            }
            Record::Restore { id, at, txid, commit_id, time_ms } => {
                let segments = &self.segments;
                let db = self
                    .dbs
                    .get_mut(id)
                    .ok_or_else(|| StoreError::Corrupt(format!("a restore names database id {id}")))?;
                if db.timeline.applied(*commit_id).is_some() {
                    return Ok(());
                }
                check_next(db, *txid)?;
                // The point was checked when the record was written; a lease released since, or a
                // shorter window on reopening, must not make the record unreadable.
                let size = db.timeline.size_at(*at, Retention::KEEP_ALL, *time_ms)?;
                let pages = db.timeline.changed_since(*at, size);
                let commit = Applied {
                    txid: *txid,
                    commit_id: *commit_id,
                    time_ms: *time_ms,
                    size_pages: size,
                    pages: pages.into_iter(),
                };
                db.timeline.apply(commit, retention, |loc| dropped(segments, loc));
            }
            Record::Fork { id, source, at, commit_id, time_ms } => {
                let src = self
                    .dbs
                    .get(source)
                    .ok_or_else(|| StoreError::Corrupt(format!("a fork names database id {source}")))?;
                let size = src.timeline.size_at(*at, Retention::KEEP_ALL, *time_ms)?;
                let pages = src.timeline.visible_at(*at, size);
                let segments = &self.segments;
                let db = self
                    .dbs
                    .get_mut(id)
                    .ok_or_else(|| StoreError::Corrupt(format!("a fork names database id {id}")))?;
                check_next(db, 1)?;
                let commit = Applied {
                    txid: 1,
                    commit_id: *commit_id,
                    time_ms: *time_ms,
                    size_pages: size,
                    pages: pages.into_iter(),
                };
                db.timeline.apply(commit, retention, |loc| dropped(segments, loc));
            }
            Record::Head { id, txid, size_pages, generation } => {
                let head = &mut self.db_by_id(*id)?.timeline.head;
                head.txid = *txid;
                head.size_pages = *size_pages;
                head.generation = *generation;
            }
            Record::Logged { id, txid, time_ms, pages, size_pages } => {
                let info =
                    CommitInfo { txid: *txid, time_ms: *time_ms, pages: *pages, size_pages: *size_pages };
                self.db_by_id(*id)?.timeline.log.push_info(info);
            }
            Record::CommitMeta { id, txid, commit_id, .. } => {
                self.db_by_id(*id)?.timeline.log.push_id(*commit_id, *txid)
            }
            Record::Shrink { id, txid, size_pages } => {
                self.db_by_id(*id)?.timeline.versions.insert_shrink(*txid, *size_pages)
            }
            Record::Version { id, no, txid, checksum, offset } => {
                let loc = Loc { file, offset: *offset, checksum: *checksum };
                self.db_by_id(*id)?.timeline.versions.insert_kept(*no, *txid, loc)
            }
        }
        Ok(())
    }

    /// After loading: drops what the retention no longer covers at `now_ms` (it may also be less
    /// than the files were written with).
    pub fn compact_all(&mut self, now_ms: u64) {
        let segments = &self.segments;
        for db in self.dbs.values_mut() {
            let t = &mut db.timeline;
            let horizon = t.horizon(self.retention, now_ms);
            t.versions.compact(horizon, usize::MAX, |loc| dropped(segments, loc));
            t.log.trim(horizon);
        }
    }
}

/// A commit must be the next txid of its database.
fn check_next(db: &Db, txid: u64) -> Result<(), StoreError> {
    if txid == db.timeline.head.txid + 1 {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "database '{}': the log holds txid {txid} after txid {}",
        db.name, db.timeline.head.txid
    )))
}

/// A version the index let go of: its bytes are dead space in their file.
fn dropped(segments: &BTreeMap<u32, Arc<Segment>>, loc: Loc) {
    if let Some(s) = segments.get(&loc.file) {
        s.add_dead(PAGE_SIZE as u64);
    }
}
