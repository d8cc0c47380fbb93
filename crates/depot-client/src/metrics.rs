//! Counters of one database, written by its worker, read from any thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters (relaxed atomics: each value is exact, a snapshot is not one instant).
#[derive(Debug, Default)]
pub struct Metrics {
    pub queue_depth: AtomicU64,
    pub running: AtomicU64,
    pub answered: AtomicU64,
    pub failed: AtomicU64,
    pub rejected: AtomicU64,
    pub commits: AtomicU64,
    pub commit_retries: AtomicU64,
    pub get_pages_calls: AtomicU64,
    pub pages_fetched: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub pages_committed: AtomicU64,
    pub bytes_committed: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub dirty_pages: AtomicU64,
    pub size_pages: AtomicU64,
    pub unbatched_writes: AtomicU64,
    pub statement_cache_hits: AtomicU64,
    pub statement_cache_misses: AtomicU64,
    pub transactions: AtomicU64,
    pub last_txn_get_pages: AtomicU64,
    pub last_txn_commits: AtomicU64,
    pub last_txn_micros: AtomicU64,
    pub slow_transactions: AtomicU64,
}

/// A plain copy of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Calls accepted and not yet answered.
    pub queue_depth: u64,
    /// 1 while a call runs on the worker.
    pub running: u64,
    /// Calls answered with a result.
    pub answered: u64,
    /// Calls answered with an error (after being accepted).
    pub failed: u64,
    /// Calls refused at admission (ERR_OVERLOADED), never queued.
    pub rejected: u64,
    /// Store commits applied (one per write transaction).
    pub commits: u64,
    /// Commit attempts that failed transiently (each is retried with the same commit id until
    /// the retry budget runs out).
    pub commit_retries: u64,
    /// `get_pages` round trips to the store.
    pub get_pages_calls: u64,
    pub pages_fetched: u64,
    pub bytes_fetched: u64,
    pub pages_committed: u64,
    pub bytes_committed: u64,
    /// Page reads served by the VFS page cache (after SQLite's own cache missed).
    pub cache_hits: u64,
    /// Page reads that went to the store.
    pub cache_misses: u64,
    /// Pages written by the open transaction, not yet committed.
    pub dirty_pages: u64,
    /// Database size in pages.
    pub size_pages: u64,
    /// Writes that arrived outside a batch-atomic write (should stay 0).
    pub unbatched_writes: u64,
    /// Statements found prepared in the worker's statement cache.
    pub statement_cache_hits: u64,
    /// Statements that had to be prepared.
    pub statement_cache_misses: u64,
    /// Calls that ran on the worker.
    pub transactions: u64,
    /// Store round trips of the most recent call.
    pub last_txn_get_pages: u64,
    pub last_txn_commits: u64,
    /// Duration of the most recent call on the worker.
    pub last_txn_micros: u64,
    /// Calls slower than the slow-log threshold.
    pub slow_transactions: u64,
}

impl Metrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            queue_depth: self.queue_depth.load(Relaxed),
            running: self.running.load(Relaxed),
            answered: self.answered.load(Relaxed),
            failed: self.failed.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            commits: self.commits.load(Relaxed),
            commit_retries: self.commit_retries.load(Relaxed),
            get_pages_calls: self.get_pages_calls.load(Relaxed),
            pages_fetched: self.pages_fetched.load(Relaxed),
            bytes_fetched: self.bytes_fetched.load(Relaxed),
            pages_committed: self.pages_committed.load(Relaxed),
            bytes_committed: self.bytes_committed.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            dirty_pages: self.dirty_pages.load(Relaxed),
            size_pages: self.size_pages.load(Relaxed),
            unbatched_writes: self.unbatched_writes.load(Relaxed),
            statement_cache_hits: self.statement_cache_hits.load(Relaxed),
            statement_cache_misses: self.statement_cache_misses.load(Relaxed),
            transactions: self.transactions.load(Relaxed),
            last_txn_get_pages: self.last_txn_get_pages.load(Relaxed),
            last_txn_commits: self.last_txn_commits.load(Relaxed),
            last_txn_micros: self.last_txn_micros.load(Relaxed),
            slow_transactions: self.slow_transactions.load(Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }
}
