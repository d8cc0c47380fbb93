//! The page versions of one database and the rule that prunes them, shared by the stores that keep
//! their versions in process (memory: the pages themselves; file: where each page lies on disk), so
//! that what stays readable is the same everywhere.
//!
//! A version of (page, txid) is readable by a read at any txid from `txid` until the version that
//! supersedes it. With a history window, reads at the *horizon* (head minus the window) or later
//! must stay possible: a version superseded at or before the horizon, and a page past an end that
//! shrank at or before it, can go. Without a window the horizon is the head: only the newest
//! version of each page inside the end stays.

use std::collections::BTreeMap;

use crate::{PageNo, Txid};

#[derive(Debug, Clone)]
pub(crate) struct Versions<T> {
    /// (page, txid) -> version.
    versions: BTreeMap<(PageNo, Txid), T>,
    /// Pages written per txid, not yet compacted.
    written: BTreeMap<Txid, Vec<PageNo>>,
    /// Shrinks (txid -> new size in pages), not yet compacted.
    shrinks: BTreeMap<Txid, u32>,
}

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Versions { versions: BTreeMap::new(), written: BTreeMap::new(), shrinks: BTreeMap::new() }
    }
}

impl<T> Versions<T> {
    /// Adds the versions of the commit `txid`, which left the database `size_pages` long (`shrank`:
    /// shorter than before).
    pub fn insert_commit(
        &mut self,
        txid: Txid,
        pages: impl IntoIterator<Item = (PageNo, T)>,
        shrank: Option<u32>,
    ) {
        let mut written = Vec::new();
        for (no, v) in pages {
            self.versions.insert((no, txid), v);
            written.push(no);
        }
        self.written.insert(txid, written);
        if let Some(size) = shrank {
            self.shrinks.insert(txid, size);
        }
    }

    /// Adds one version as it was kept (a store reloading its versions); it is compacted like a
    /// version its commit wrote.
    pub fn insert_kept(&mut self, no: PageNo, txid: Txid, v: T) {
        self.versions.insert((no, txid), v);
        self.written.entry(txid).or_default().push(no);
    }

    /// Records a shrink still inside the window (a store reloading its state).
    pub fn insert_shrink(&mut self, txid: Txid, size_pages: u32) {
        self.shrinks.insert(txid, size_pages);
    }

    /// Drops what no read at `horizon` or later can see, handing each dropped version to `dropped`;
    /// stops after the commits it went through wrote `budget` pages (at least one commit), the
    /// rest waits for the next call.
    pub fn compact(&mut self, horizon: Txid, budget: usize, mut dropped: impl FnMut(T)) {
        let mut spent = 0;
        while let Some(entry) = self.written.first_entry() {
            if *entry.key() > horizon || spent >= budget {
                break;
            }
            let (t, pages) = entry.remove_entry();
            spent += pages.len().max(1);
            for no in pages {
                let older: Vec<_> = self.versions.range((no, 0)..(no, t)).map(|(k, _)| *k).collect();
                for k in older {
                    dropped(self.versions.remove(&k).unwrap());
                }
            }
            if let Some(size) = self.shrinks.remove(&t) {
                let past: Vec<_> = self
                    .versions
                    .range((size.saturating_add(1), 0)..)
                    .filter(|(k, _)| k.1 < t)
                    .map(|(k, _)| *k)
                    .collect();
                for k in past {
                    dropped(self.versions.remove(&k).unwrap());
                }
            }
        }
    }

    /// The newest version of page `no` at or before `at`.
    pub fn newest(&self, no: PageNo, at: Txid) -> Option<&T> {
        self.newest_entry(no, at).map(|(_, v)| v)
    }

    /// The newest version of page `no` at or before `at`, with the txid that wrote it.
    pub fn newest_entry(&self, no: PageNo, at: Txid) -> Option<(Txid, &T)> {
        self.versions.range((no, 0)..=(no, at)).next_back().map(|(&(_, txid), v)| (txid, v))
    }

    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Every version, by page then txid.
    pub fn iter(&self) -> impl Iterator<Item = (PageNo, Txid, &T)> {
        self.versions.iter().map(|(&(no, txid), v)| (no, txid, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (PageNo, Txid, &mut T)> {
        self.versions.iter_mut().map(|(&(no, txid), v)| (no, txid, v))
    }

    /// Shrinks not compacted yet, oldest first.
    pub fn shrinks(&self) -> impl Iterator<Item = (Txid, u32)> + '_ {
        self.shrinks.iter().map(|(&t, &s)| (t, s))
    }
}
