//! The page cache one database's writer and its snapshot readers share, and the head they read.
//!
//! Committed page versions are immutable (invariant 3), so one cache serves every thread: it holds
//! each page as of the newest commit this process knows (the published head). A reader pinned to an
//! older txid `at` may use a cached page only if that page has not changed since `at`; the cache
//! therefore remembers, for every page this database's writer committed, the txid that last
//! changed it (`modified`). A page not in that list last changed at or before the point the cache
//! started from (`valid_from`), which no reader predates.
//!
//! The writer publishes a commit's pages and its new head under one lock, so a reader that pins
//! the new head finds every page of it, and a reader still pinned to the old one never takes a
//! page of the new one. `cacheBytes` bounds this one cache: readers keep no VFS cache of their own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use depot::{Head, PageNo, Txid};

use super::cache::PageCache;

/// Entries of `modified` kept before the ones no pinned reader can need are dropped.
const PRUNE_AT: usize = 1 << 16;

pub struct SharedPages {
    inner: Mutex<Inner>,
}

struct Inner {
    cache: PageCache,
    /// The txid that last changed each page the writer committed since `valid_from`.
    modified: HashMap<PageNo, Txid>,
    /// Cached pages are valid only for readers at or after this txid.
    valid_from: Txid,
    /// The newest committed head, which new snapshots pin.
    head: Head,
    /// Txids pinned by running readers, with how many pin each.
    pins: BTreeMap<Txid, usize>,
    /// The pages the writer's session and its readers read first (SQLite's cache misses), saved
    /// as the store's hints when the writer closes so the next open preloads them.
    first_used: Vec<PageNo>,
    first_used_set: HashSet<PageNo>,
}

/// The cache as one thread sees it while it holds the lock, reading at `at`.
pub struct View<'a> {
    inner: MutexGuard<'a, Inner>,
    at: Txid,
}

impl SharedPages {
    pub fn new(capacity_pages: usize, head: Head) -> Arc<SharedPages> {
        Arc::new(SharedPages {
            inner: Mutex::new(Inner {
                cache: PageCache::new(capacity_pages),
                modified: HashMap::new(),
                valid_from: head.txid,
                head,
                pins: BTreeMap::new(),
                first_used: Vec::new(),
                first_used_set: HashSet::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cache as of `at`, locked until the view is dropped.
    pub fn view(&self, at: Txid) -> View<'_> {
        View { inner: self.lock(), at }
    }

    /// The newest committed head.
    pub fn head(&self) -> Head {
        self.lock().head
    }

    /// A writer session opened at `head` (the first one, or one after hibernation). If the head is
    /// not the one published (a restore or import committed by another writer meanwhile), nothing
    /// cached is known to be valid for older points: the cache starts again from `head`.
    pub fn opened(&self, head: Head) {
        let mut inner = self.lock();
        if inner.head.txid != head.txid {
            inner.cache.truncate(0);
            inner.modified.clear();
            inner.valid_from = head.txid;
        }
        inner.head = head;
        // A new session: its own first reads make the next hints.
        inner.first_used.clear();
        inner.first_used_set.clear();
    }

    /// The pages read first since the writer's session opened, oldest first.
    pub fn first_used(&self) -> Vec<PageNo> {
        self.lock().first_used.clone()
    }

    /// Drops every cached page (the database hibernates or closed: it keeps no cache).
    pub fn forget(&self) {
        self.lock().cache.clear();
    }

    /// How many pages are cached.
    #[cfg(test)]
    pub fn cached_pages(&self) -> usize {
        self.lock().cache.len()
    }

    /// Publishes a commit: its pages become the cached versions and `head` the newest point.
    /// `shrunk`: the commit made the database smaller, so pages past the end leave the cache.
    pub fn committed(&self, pages: impl IntoIterator<Item = (PageNo, Arc<[u8]>)>, head: Head, shrunk: bool) {
        let mut inner = self.lock();
        if shrunk {
            inner.cache.truncate(head.size_pages);
        }
        for (no, data) in pages {
            inner.modified.insert(no, head.txid);
            inner.cache.insert(no, data);
        }
        if shrunk {
            // A page past the new end that grows back is a new page: a reader at an older point
            // must not take the regrown page for the one it had.
            for no in head.size_pages + 1..=inner.head.size_pages {
                inner.modified.insert(no, head.txid);
            }
        }
        inner.head = head;
        if inner.modified.len() > PRUNE_AT {
            // Entries no reader can need (every pinned point is past them) say nothing.
            let floor = inner.pins.keys().next().copied().unwrap_or(head.txid);
            inner.modified.retain(|_, t| *t > floor);
        }
    }

    /// Pins the newest head for a snapshot read; [`SharedPages::unpin`] gives it back.
    pub fn pin(&self) -> Head {
        let mut inner = self.lock();
        let head = inner.head;
        *inner.pins.entry(head.txid).or_default() += 1;
        head
    }

    pub fn unpin(&self, at: Txid) {
        let mut inner = self.lock();
        if let Some(n) = inner.pins.get_mut(&at) {
            *n -= 1;
            if *n == 0 {
                inner.pins.remove(&at);
            }
        }
    }
}

impl View<'_> {
    /// Whether the cached version of `no` is the one at this view's point.
    fn valid(&self, no: PageNo) -> bool {
        self.at >= self.inner.valid_from && self.inner.modified.get(&no).is_none_or(|&t| t <= self.at)
    }

    /// Notes a read of `no` for the hints (see `Inner::first_used`).
    pub fn note_used(&mut self, no: PageNo) {
        let inner = &mut *self.inner;
        if inner.first_used.len() < depot::MAX_HINTS && inner.first_used_set.insert(no) {
            inner.first_used.push(no);
        }
    }

    pub fn get(&mut self, no: PageNo) -> Option<Arc<[u8]>> {
        if !self.valid(no) {
            return None;
        }
        self.inner.cache.get(no)
    }

    pub fn contains(&self, no: PageNo) -> bool {
        self.valid(no) && self.inner.cache.contains(no)
    }

    /// Caches a page read from the store at this view's point, if that is also its newest version.
    pub fn insert(&mut self, no: PageNo, data: Arc<[u8]>) {
        if self.valid(no) && no <= self.inner.head.size_pages {
            self.inner.cache.insert(no, data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(txid: Txid, size_pages: u32) -> Head {
        Head { txid, size_pages, page_size: depot::PAGE_SIZE as u32, generation: 1 }
    }

    fn page(b: u8) -> Arc<[u8]> {
        Arc::from(vec![b; 8])
    }

    #[test]
    fn a_reader_at_an_older_point_never_takes_a_newer_version() {
        let shared = SharedPages::new(64, head(10, 3));
        shared.view(10).insert(1, page(1));
        shared.view(10).insert(2, page(2));
        shared.committed([(2, page(22))], head(11, 3), false);
        let mut old = shared.view(10);
        assert_eq!(old.get(1).as_deref(), Some(&[1u8; 8][..]), "page 1 did not change: shared");
        assert!(old.get(2).is_none(), "page 2 changed after 10: the old reader must go to the store");
        drop(old);
        assert_eq!(shared.view(11).get(2).as_deref(), Some(&[22u8; 8][..]));
    }

    #[test]
    fn a_page_read_at_an_old_point_never_replaces_the_newest_version() {
        let shared = SharedPages::new(64, head(10, 3));
        shared.committed([(3, page(33))], head(11, 3), false);
        // A reader at 10 fetched page 3 from the store: not the newest version, so not cached.
        shared.view(10).insert(3, page(3));
        assert_eq!(shared.view(11).get(3).as_deref(), Some(&[33u8; 8][..]));
    }

    #[test]
    fn a_shrink_and_regrow_is_a_new_version_for_older_readers() {
        let shared = SharedPages::new(64, head(10, 4));
        shared.view(10).insert(4, page(4));
        shared.committed(std::iter::empty(), head(11, 2), true);
        shared.committed([(4, page(44))], head(12, 4), false);
        assert!(shared.view(10).get(4).is_none());
        assert_eq!(shared.view(12).get(4).as_deref(), Some(&[44u8; 8][..]));
    }

    #[test]
    fn a_writer_reopened_at_another_head_invalidates_older_points() {
        let shared = SharedPages::new(64, head(10, 2));
        shared.view(10).insert(1, page(1));
        shared.opened(head(20, 2));
        assert!(shared.view(10).get(1).is_none());
        assert!(shared.view(20).get(1).is_none(), "the cache started again");
    }

    #[test]
    fn pins_count_and_pruning_keeps_what_a_pinned_reader_needs() {
        let shared = SharedPages::new(64, head(1, 1));
        let pinned = shared.pin();
        assert_eq!(pinned.txid, 1);
        for t in 2..(PRUNE_AT as u64 + 10) {
            shared.committed([((t % 1000) as PageNo + 1, page(0))], head(t, 1000), false);
        }
        assert!(shared.view(1).get(5).is_none(), "page 5 changed after the pinned point");
        shared.unpin(1);
        assert!(shared.lock().pins.is_empty());
    }
}
