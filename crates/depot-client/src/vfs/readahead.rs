//! Read-ahead: sequential page access, forward or backward, fetches growing batches in one store
//! call; scattered access shrinks the batch back to one page.
//!
//! A miss at or a little past where the last forward batch ended continues the forward stream (the
//! window doubles, up to [`MAX_WINDOW`]); a miss just before where the last backward batch began
//! continues a backward stream. Any other miss is a stray. A stray does not end a stream: a table
//! scan that steps onto an interior b-tree page elsewhere in the file comes back where it was, so
//! the first stray fetches, in the same round trip, the forward stream's next batch as well (the
//! scan then resumes from the cache instead of paying a round trip of its own). A second stray in a
//! row means the access is scattered: one page, and the window resets to one page.

use depot::PageNo;

/// Largest batch, in pages (4 MiB of 4 KiB pages): a cold 50 MiB scan then takes about 25 round
/// trips, while the batch stays small next to the 16 MiB page cache it lands in.
pub const MAX_WINDOW: u32 = 1024;

pub struct ReadAhead {
    /// First page after the last forward batch.
    next: PageNo,
    /// Last page before the last backward batch (0: none).
    prev: PageNo,
    window: u32,
    /// The neighbours of the last stray miss: a miss there starts a new stream.
    stray_next: PageNo,
    stray_prev: PageNo,
    /// Stray misses since the stream last continued.
    strays: u32,
    /// Largest batch for this cache: a batch the cache cannot hold would evict itself before the
    /// scan reaches its end, and the scan would fetch the same pages again and again.
    max_window: u32,
}

impl Default for ReadAhead {
    fn default() -> Self {
        ReadAhead::for_cache(usize::MAX)
    }
}

impl ReadAhead {
    /// Read-ahead into a page cache of `cache_pages`: batches up to a quarter of it (the cache
    /// keeps two generations of half its size each), and never more than [`MAX_WINDOW`].
    pub fn for_cache(cache_pages: usize) -> ReadAhead {
        let max_window = (cache_pages / 4).clamp(1, MAX_WINDOW as usize) as u32;
        ReadAhead { next: 0, prev: 0, window: 1, stray_next: 0, stray_prev: 0, strays: 0, max_window }
    }

    /// The pages to fetch for a miss on `no`: `no` first, then the pages the stream will want
    /// next that are below `size_pages` and not already held (`held`).
    pub fn plan(&mut self, no: PageNo, size_pages: u32, held: impl Fn(PageNo) -> bool) -> Vec<PageNo> {
        let forward =
            (self.next > 0 && no >= self.next && no - self.next <= self.window) || no == self.stray_next;
        let backward = !forward
            && ((self.prev > 0 && no <= self.prev && self.prev - no <= self.window)
                || (no > 0 && no == self.stray_prev));
        let mut pages = vec![no];
        if forward || backward {
            self.strays = 0;
        }
        if forward {
            self.window = (self.window * 2).min(self.max_window);
            let last = no.saturating_add(self.window - 1).min(size_pages.max(no));
            pages.extend((no + 1..=last).filter(|&p| !held(p)));
            self.next = last + 1;
        } else if backward {
            self.window = (self.window * 2).min(self.max_window);
            let first = no.saturating_sub(self.window - 1).max(1);
            pages.extend((first..no).rev().filter(|&p| !held(p)));
            self.prev = first - 1;
        } else {
            // One stray (a scan stepping onto an interior page) keeps the window and brings the
            // stream's next batch along; a second in a row means the access is scattered: back to
            // one page.
            self.strays += 1;
            if self.strays >= 2 {
                self.window = 1;
            } else if self.next > 0 && self.window > 1 && self.next <= size_pages {
                let last = self.next.saturating_add(self.window - 1).min(size_pages);
                pages.extend((self.next..=last).filter(|&p| p != no && !held(p)));
                self.next = last + 1;
            }
            self.stray_next = no + 1;
            self.stray_prev = no - 1;
        }
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_misses_grow_the_window_and_scattered_ones_shrink_it() {
        let mut r = ReadAhead::default();
        assert_eq!(r.plan(10, 10_000, |_| false), vec![10]);
        assert_eq!(r.plan(11, 10_000, |_| false), vec![11, 12]);
        assert_eq!(r.plan(13, 10_000, |_| false).len(), 4);
        assert_eq!(r.plan(17, 10_000, |_| false).len(), 8);
        assert_eq!(
            r.plan(5000, 10_000, |_| false),
            [5000].into_iter().chain(25..=32).collect::<Vec<_>>(),
            "a first stray brings the stream's next batch along"
        );
        assert_eq!(r.window, 8, "one stray keeps the window");
        assert_eq!(r.plan(9000, 10_000, |_| false), vec![9000], "a second is one page");
        assert_eq!(r.window, 1, "scattered misses reset it");
        assert_eq!(r.plan(20, 10_000, |_| false), vec![20], "a stray after a reset is one page");
    }

    #[test]
    fn a_stray_miss_does_not_end_the_stream() {
        let mut r = ReadAhead::default();
        r.plan(100, 10_000, |_| false);
        r.plan(101, 10_000, |_| false);
        for _ in 0..6 {
            let next = r.next;
            r.plan(next, 10_000, |_| false);
        }
        let big = r.window;
        let next = r.next;
        // An interior page elsewhere: fetched with the batch the scan resumes on.
        let stray = r.plan(3, 10_000, |_| false);
        assert_eq!(stray.len() as u32, 1 + big);
        assert_eq!(stray[1], next);
        // The scan resumes past that batch with the window it had.
        let resumed = r.plan(r.next, 10_000, |_| false);
        assert!(resumed.len() as u32 >= big, "{} pages after the stray, window was {big}", resumed.len());
    }

    #[test]
    fn a_batch_never_outgrows_a_quarter_of_the_cache() {
        let mut r = ReadAhead::for_cache(64);
        let mut largest = 0;
        let mut no = 1;
        while no < 1000 {
            let batch = r.plan(no, 1000, |_| false);
            largest = largest.max(batch.len());
            no += batch.len() as PageNo;
        }
        assert_eq!(largest, 16);
        assert_eq!(ReadAhead::for_cache(1).plan(5, 10, |_| false), vec![5], "a tiny cache: one page");
    }

    #[test]
    fn backward_scans_are_read_ahead_too() {
        let mut r = ReadAhead::default();
        assert_eq!(r.plan(500, 1000, |_| false), vec![500]);
        assert_eq!(r.plan(499, 1000, |_| false), vec![499, 498]);
        assert_eq!(r.plan(497, 1000, |_| false), vec![497, 496, 495, 494]);
    }

    #[test]
    fn never_plans_past_the_end_or_pages_already_held() {
        let mut r = ReadAhead::default();
        r.plan(1, 5, |_| false);
        assert_eq!(r.plan(2, 5, |p| p == 3), vec![2]);
        let mut r = ReadAhead { next: 4, window: 128, ..ReadAhead::default() };
        assert_eq!(r.plan(4, 5, |_| false), vec![4, 5]);
        let mut r = ReadAhead { prev: 3, window: 8, ..ReadAhead::default() };
        assert_eq!(r.plan(3, 100, |_| false), vec![3, 2, 1], "backward stops at page 1");
    }
}
