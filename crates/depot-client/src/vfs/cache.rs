//! The VFS page cache: bounded, approximately LRU, O(1) per operation.
//!
//! Two generations: hits and inserts go to `young`; when `young` reaches half the capacity it becomes
//! `old` and the previous `old` is dropped. A page read at least once per half-capacity of other
//! traffic stays cached; that is close enough to LRU for a second-level cache behind SQLite's own.

use std::collections::HashMap;
use std::sync::Arc;

use depot::PageNo;

pub struct PageCache {
    young: HashMap<PageNo, Arc<[u8]>>,
    old: HashMap<PageNo, Arc<[u8]>>,
    half: usize,
}

impl PageCache {
    /// A cache of at most `capacity_pages` pages (at least 2).
    pub fn new(capacity_pages: usize) -> PageCache {
        PageCache { young: HashMap::new(), old: HashMap::new(), half: (capacity_pages / 2).max(1) }
    }

    pub fn get(&mut self, no: PageNo) -> Option<Arc<[u8]>> {
        if let Some(p) = self.young.get(&no) {
            return Some(p.clone());
        }
        let p = self.old.remove(&no)?;
        self.insert(no, p.clone());
        Some(p)
    }

    pub fn contains(&self, no: PageNo) -> bool {
        self.young.contains_key(&no) || self.old.contains_key(&no)
    }

    pub fn insert(&mut self, no: PageNo, data: Arc<[u8]>) {
        self.old.remove(&no);
        self.young.insert(no, data);
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
    }

    /// Drops every page and gives their memory back.
    pub fn clear(&mut self) {
        self.young = HashMap::new();
        self.old = HashMap::new();
    }

    /// Drops every page past `size_pages` (after a shrink, so a regrow never sees stale bytes).
    pub fn truncate(&mut self, size_pages: u32) {
        self.young.retain(|&no, _| no <= size_pages);
        self.old.retain(|&no, _| no <= size_pages);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(b: u8) -> Arc<[u8]> {
        Arc::from(vec![b; 4])
    }

    #[test]
    fn stays_bounded_and_keeps_recently_used_pages() {
        let mut c = PageCache::new(8);
        for i in 0..100 {
            c.insert(i, page(i as u8));
            assert!(c.len() <= 8, "{} pages cached", c.len());
            assert!(c.get(0).is_some(), "page 0, read after every insert, stays (at {i})");
        }
        assert!(c.len() <= 8);
        assert!(c.get(0).is_some(), "a page read all along stays");
        assert!(c.get(1).is_none(), "an old page was evicted");
    }

    #[test]
    fn truncate_drops_pages_past_the_end() {
        let mut c = PageCache::new(100);
        for i in 1..=10 {
            c.insert(i, page(1));
        }
        c.truncate(4);
        assert!(c.contains(4) && !c.contains(5));
    }
}
