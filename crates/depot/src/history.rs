//! A database's commit log as the stores that keep history in process (memory, file) hold it: the
//! recent commits (for idempotent retries by commit id) and every commit the history window still
//! covers (for bookmarks, reads at a past point, restore and fork), and the rule that says how far
//! back the window reaches.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::store::COMMIT_LOG_KEEP;
use crate::versions::Versions;
use crate::{Head, PageNo, StoreError, Txid, PAGE_SIZE};

/// One commit of a database's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    pub txid: Txid,
    /// Wall-clock time the store applied it, in ms since the Unix epoch.
    pub time_ms: u64,
    /// Pages it wrote.
    pub pages: u32,
    /// Database size in pages after it.
    pub size_pages: u32,
}

impl CommitInfo {
    /// Bytes of page data it wrote.
    pub fn bytes(&self) -> u64 {
        self.pages as u64 * crate::PAGE_SIZE as u64
    }
}

/// How much history a store keeps: every point of the last `ms` milliseconds, and at least the
/// last `txids` commits. Both 0: none (a version goes as soon as a newer one is committed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub ms: u64,
    pub txids: u64,
}

impl Retention {
    /// Everything, however old (a store replaying its records).
    pub const KEEP_ALL: Retention = Retention { ms: u64::MAX, txids: u64::MAX };

    /// The oldest txid that reads must stay possible at, for a database at `head` whose commits
    /// are `log`, at wall-clock time `now_ms`: the newest commit at or before `now_ms - ms` (the
    /// state any point of the window shows), but never newer than `head - txids`.
    pub fn horizon(&self, head: Txid, log: &CommitLog, now_ms: u64) -> Txid {
        let by_txids = head.saturating_sub(self.txids);
        if self.ms == 0 {
            return by_txids;
        }
        let cutoff = now_ms.saturating_sub(self.ms);
        let by_time = match log.txid_at_time(cutoff) {
            Some(txid) => txid,
            // The window reaches past the oldest commit the log remembers: keep all of it.
            None => log.oldest().map_or(head, |c| c.txid.saturating_sub(1)),
        };
        by_txids.min(by_time)
    }
}

/// The commits of one database, oldest first, and their ids.
#[derive(Debug, Clone, Default)]
pub struct CommitLog {
    commits: VecDeque<CommitInfo>,
    /// commit id -> txid, for the commits still in `ids_order`.
    ids: HashMap<u128, Txid>,
    ids_order: VecDeque<u128>,
}

impl CommitLog {
    /// Records a commit and its id; ids are kept for the last [`COMMIT_LOG_KEEP`] commits.
    pub fn push(&mut self, info: CommitInfo, commit_id: u128) {
        self.push_info(info);
        self.push_id(commit_id, info.txid);
    }

    /// Records a commit (a store reloading its log).
    pub fn push_info(&mut self, info: CommitInfo) {
        self.commits.push_back(info);
    }

    /// Records the id a commit was applied with (a store reloading its log).
    pub fn push_id(&mut self, commit_id: u128, txid: Txid) {
        self.ids.insert(commit_id, txid);
        self.ids_order.push_back(commit_id);
        if self.ids_order.len() > COMMIT_LOG_KEEP {
            let old = self.ids_order.pop_front().unwrap();
            self.ids.remove(&old);
        }
    }

    /// The txid a commit id was applied as, if it is still remembered.
    pub fn applied(&self, commit_id: u128) -> Option<Txid> {
        self.ids.get(&commit_id).copied()
    }

    /// Commit ids still remembered, oldest first, with their txids.
    pub fn ids(&self) -> impl Iterator<Item = (u128, Txid)> + '_ {
        self.ids_order.iter().map(|id| (*id, self.ids[id]))
    }

    /// Forgets the commits before `horizon` except the newest of them (the state at the horizon
    /// is that commit's). A commit the log lists is one whose state is still whole: compaction
    /// drops versions up to the horizon, so a point before it must never be offered again, even by
    /// a store reopened with a longer window. (Commit ids are kept apart, for retries.)
    pub fn trim(&mut self, horizon: Txid) {
        while self.commits.get(1).is_some_and(|c| c.txid <= horizon) {
            self.commits.pop_front();
        }
    }

    pub fn oldest(&self) -> Option<&CommitInfo> {
        self.commits.front()
    }

    pub fn get(&self, txid: Txid) -> Option<&CommitInfo> {
        let first = self.commits.front()?.txid;
        let c = self.commits.get(txid.checked_sub(first)? as usize)?;
        (c.txid == txid).then_some(c)
    }

    /// The newest commit at or before `time_ms`, if the log reaches back that far.
    pub fn txid_at_time(&self, time_ms: u64) -> Option<Txid> {
        let after = self.commits.partition_point(|c| c.time_ms <= time_ms);
        (after > 0).then(|| self.commits[after - 1].txid)
    }

    /// Commits newest first: at most `limit`, older than `before` when given.
    pub fn newest_first(&self, limit: usize, before: Option<Txid>) -> Vec<CommitInfo> {
        self.commits.iter().rev().filter(|c| before.is_none_or(|b| c.txid < b)).take(limit).copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &CommitInfo> {
        self.commits.iter()
    }
}

/// A database as a store that keeps its versions in process sees it: head, versions (`T`: the
/// page itself, or where it lies) and commit log. The memory and file stores both use it, so a
/// commit, a restore and a fork mean the same on both.
#[derive(Debug, Clone)]
pub struct Timeline<T> {
    pub head: Head,
    pub versions: Versions<T>,
    pub log: CommitLog,
    /// Points readers hold (txid -> how many), kept readable whatever the retention says.
    leases: BTreeMap<Txid, u32>,
}

impl<T> Default for Timeline<T> {
    fn default() -> Self {
        Timeline {
            head: Head { txid: 0, size_pages: 0, page_size: PAGE_SIZE as u32, generation: 0 },
            versions: Versions::default(),
            log: CommitLog::default(),
            leases: BTreeMap::new(),
        }
    }
}

/// A commit being applied to a [`Timeline`].
pub struct Applied<I> {
    pub txid: Txid,
    pub commit_id: u128,
    pub time_ms: u64,
    pub size_pages: u32,
    pub pages: I,
}

impl<T: Clone> Timeline<T> {
    /// Applies the commit right after the head; versions the retention no longer needs are
    /// handed to `dropped`.
    pub fn apply<I: ExactSizeIterator<Item = (PageNo, T)>>(
        &mut self,
        commit: Applied<I>,
        retention: Retention,
        dropped: impl FnMut(T),
    ) {
        let shrank = (commit.size_pages < self.head.size_pages).then_some(commit.size_pages);
        let count = commit.pages.len() as u32;
        self.versions.insert_commit(commit.txid, commit.pages, shrank);
        self.head.txid = commit.txid;
        self.head.size_pages = commit.size_pages;
        let info = CommitInfo {
            txid: commit.txid,
            time_ms: commit.time_ms,
            pages: count,
            size_pages: commit.size_pages,
        };
        self.log.push(info, commit.commit_id);
        self.compact(retention, commit.time_ms, dropped);
    }

    /// Drops what no read from the horizon on can see, in a bounded step (a commit never waits
    /// for a long backlog, say after an idle spell; later commits go on with it).
    pub fn compact(&mut self, retention: Retention, now_ms: u64, dropped: impl FnMut(T)) {
        let horizon = self.horizon(retention, now_ms);
        self.versions.compact(horizon, COMPACT_STEP_PAGES, dropped);
        self.log.trim(horizon);
    }

    /// The oldest txid reads must stay possible at: the retention's, or an older point a reader
    /// holds (every version from there on stays, so every point from there on stays readable).
    pub fn horizon(&self, retention: Retention, now_ms: u64) -> Txid {
        let kept = retention.horizon(self.head.txid, &self.log, now_ms);
        self.leases.first_key_value().map_or(kept, |(&leased, _)| kept.min(leased))
    }

    /// Keeps `at` readable until [`Timeline::release`]: a reader's point cannot expire under it.
    pub fn lease(&mut self, at: Txid, retention: Retention, now_ms: u64) -> Result<(), StoreError> {
        self.size_at(at, retention, now_ms)?;
        *self.leases.entry(at).or_default() += 1;
        Ok(())
    }

    /// Gives back one lease of `at`.
    pub fn release(&mut self, at: Txid) {
        if let Some(n) = self.leases.get_mut(&at) {
            *n -= 1;
            if *n == 0 {
                self.leases.remove(&at);
            }
        }
    }

    /// The size of the database at `at`, if reads there are still possible: `at` is the head, or a
    /// commit the retention covers at `now_ms`.
    pub fn size_at(&self, at: Txid, retention: Retention, now_ms: u64) -> Result<u32, StoreError> {
        if at > self.head.txid {
            return Err(StoreError::InvalidArgument(format!(
                "txid {at} is newer than the head ({})",
                self.head.txid
            )));
        }
        if at == self.head.txid {
            return Ok(self.head.size_pages);
        }
        let unavailable =
            || StoreError::HistoryUnavailable(format!("txid {at} is outside the retained history"));
        if at < self.horizon(retention, now_ms) {
            return Err(unavailable());
        }
        match at {
            0 => Ok(0),
            _ => self.log.get(at).map(|c| c.size_pages).ok_or_else(unavailable),
        }
    }

    /// The versions that make the database what it was at `at` (sized `size_pages` there) and
    /// differ from the head's: what a restore to `at` writes.
    pub fn changed_since(&self, at: Txid, size_pages: u32) -> Vec<(PageNo, T)> {
        (1..=size_pages)
            .filter_map(|no| {
                let then = self.versions.newest_entry(no, at)?;
                let now =
                    self.versions.newest_entry(no, self.head.txid).filter(|_| no <= self.head.size_pages);
                (now.map(|(t, _)| t) != Some(then.0)).then(|| (no, then.1.clone()))
            })
            .collect()
    }

    /// Every version visible at `at` (sized `size_pages` there): what a fork at `at` starts from.
    pub fn visible_at(&self, at: Txid, size_pages: u32) -> Vec<(PageNo, T)> {
        (1..=size_pages).filter_map(|no| Some((no, self.versions.newest(no, at)?.clone()))).collect()
    }

    /// The commits the retention covers at `now_ms`, newest first: at most `limit`, older than
    /// `before` when given.
    pub fn history(
        &self,
        limit: usize,
        before: Option<Txid>,
        retention: Retention,
        now_ms: u64,
    ) -> Vec<CommitInfo> {
        let horizon = self.horizon(retention, now_ms);
        let mut out = self.log.newest_first(limit, before);
        out.retain(|c| c.txid >= horizon);
        out
    }

    /// The newest commit at or before `time_ms`, if the retention still covers it at `now_ms`.
    pub fn txid_at_time(&self, time_ms: u64, retention: Retention, now_ms: u64) -> Result<Txid, StoreError> {
        let txid = self.log.txid_at_time(time_ms).ok_or_else(|| {
            StoreError::HistoryUnavailable(format!("no commit the history keeps is as old as {time_ms} ms"))
        })?;
        self.size_at(txid, retention, now_ms)?;
        Ok(txid)
    }

    /// The commit a txid was applied as, when a retry of it comes in again.
    pub fn applied(&self, commit_id: u128) -> Option<Txid> {
        self.log.applied(commit_id)
    }
}

/// Most superseded versions one commit's compaction step looks at: 4,096 pages, a few ms.
const COMPACT_STEP_PAGES: usize = 4096;

/// Milliseconds since the Unix epoch, by the wall clock (history is kept and found by it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random id for a write the client does not make through its commit path (a restore, a fork,
/// an import), or for a lease: it meets no writer's commit id.
pub fn random_commit_id() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u64(now_ms());
    (u128::from(h.finish()) << 64) | u128::from(COUNTER.load(std::sync::atomic::Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(times: &[u64]) -> CommitLog {
        let mut l = CommitLog::default();
        for (i, &t) in times.iter().enumerate() {
            l.push(CommitInfo { txid: i as u64 + 1, time_ms: t, pages: 1, size_pages: 1 }, i as u128);
        }
        l
    }

    #[test]
    fn the_commit_at_a_time_is_the_newest_at_or_before_it() {
        let l = log(&[100, 200, 200, 300]);
        assert_eq!(l.txid_at_time(99), None, "before the first commit the log knows");
        assert_eq!(l.txid_at_time(100), Some(1));
        assert_eq!(l.txid_at_time(250), Some(3), "two commits in one ms: the later one");
        assert_eq!(l.txid_at_time(10_000), Some(4));
    }

    #[test]
    fn the_horizon_keeps_the_window_by_time_and_by_txids() {
        let l = log(&[100, 200, 300, 400]);
        assert_eq!(Retention::default().horizon(4, &l, 1_000), 4, "no history: the head");
        assert_eq!(Retention { ms: 150, txids: 0 }.horizon(4, &l, 400), 2, "the state at t=250 is txid 2's");
        assert_eq!(Retention { ms: 150, txids: 3 }.horizon(4, &l, 400), 1, "three txids back");
        assert_eq!(
            Retention { ms: 1_000, txids: 0 }.horizon(4, &l, 400),
            0,
            "the window reaches past the log"
        );
    }

    #[test]
    fn history_lists_newest_first_and_pages_with_before() {
        let l = log(&[1, 2, 3, 4, 5]);
        let txids = |v: Vec<CommitInfo>| v.iter().map(|c| c.txid).collect::<Vec<_>>();
        assert_eq!(txids(l.newest_first(2, None)), [5, 4]);
        assert_eq!(txids(l.newest_first(10, Some(4))), [3, 2, 1]);
        assert_eq!(l.get(3).unwrap().time_ms, 3);
    }
}
