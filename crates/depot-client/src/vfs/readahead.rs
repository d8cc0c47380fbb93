//! Read-ahead: sequential page access fetches growing batches in one store call.
//!
//! A miss right after the previous batch (forward) doubles the window up to the limit; any other miss
//! resets it to one page, so scattered point reads stay one page per round trip.

use depot::PageNo;

/// Largest batch, in pages (1 MiB of 4 KiB pages).
pub const MAX_WINDOW: u32 = 256;

pub struct ReadAhead {
    next_expected: PageNo,
    window: u32,
}

impl Default for ReadAhead {
    fn default() -> Self {
        ReadAhead { next_expected: 0, window: 1 }
    }
}

impl ReadAhead {
    /// The pages to fetch for a miss on `no`: `no` first, then following pages up to the window
    /// that are below `size_pages` and not already held (`held`).
    pub fn plan(&mut self, no: PageNo, size_pages: u32, held: impl Fn(PageNo) -> bool) -> Vec<PageNo> {
        self.window = if no == self.next_expected { (self.window * 2).min(MAX_WINDOW) } else { 1 };
        let last = no.saturating_add(self.window - 1).min(size_pages.max(no));
        let pages: Vec<PageNo> =
            std::iter::once(no).chain((no + 1..=last).filter(|&p| !held(p))).collect();
        self.next_expected = last + 1;
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_misses_grow_the_window_and_scattered_ones_reset_it() {
        let mut r = ReadAhead::default();
        assert_eq!(r.plan(10, 10_000, |_| false), vec![10]);
        assert_eq!(r.plan(11, 10_000, |_| false), vec![11, 12]);
        assert_eq!(r.plan(13, 10_000, |_| false).len(), 4);
        assert_eq!(r.plan(500, 10_000, |_| false), vec![500]);
    }

    #[test]
    fn never_plans_past_the_end_or_pages_already_held() {
        let mut r = ReadAhead::default();
        r.plan(1, 5, |_| false);
        assert_eq!(r.plan(2, 5, |p| p == 3), vec![2]);
        let mut r = ReadAhead { next_expected: 4, window: 128 };
        assert_eq!(r.plan(4, 5, |_| false), vec![4, 5]);
    }
}
