//! The counters that `db.metrics()` returns: a snapshot of the core's metrics, in camelCase.

use napi_derive::napi;

/// Counters of one database since it was opened (the `lastTxn*` fields describe the most recent
/// transaction). All values are plain numbers; they are exact up to 2^53.
#[napi(object, object_from_js = false)]
pub struct Metrics {
    /// Calls in flight right now: queued, running, or answered but not yet delivered to
    /// JavaScript (at most `maxQueue`).
    pub queue_depth: i64,
    /// Store commits made (one per write transaction).
    pub commits: i64,
    /// Round trips to the store to read pages (`get_pages` calls).
    pub get_pages_calls: i64,
    /// Pages read from the store.
    pub pages_fetched: i64,
    /// Bytes read from the store.
    pub bytes_fetched: i64,
    /// Pages written to the store.
    pub pages_committed: i64,
    /// Bytes written to the store.
    pub bytes_committed: i64,
    /// Page reads served by the page cache.
    pub cache_hits: i64,
    /// Page reads that missed the page cache.
    pub cache_misses: i64,
    /// Pages written by the open transaction and not yet committed.
    pub dirty_pages: i64,
    /// Size of the database, in pages.
    pub size_pages: i64,
    /// Statements found prepared in the worker's statement cache (keyed by SQL text, 256 kept).
    pub statement_cache_hits: i64,
    /// Statements that had to be prepared.
    pub statement_cache_misses: i64,
    /// Calls run on the worker (each may hold several SQL transactions, or none).
    pub transactions: i64,
    /// `get_pages` round trips made by the last transaction.
    pub last_txn_get_pages: i64,
    /// Store commits made by the last transaction (0 or 1).
    pub last_txn_commits: i64,
    /// Duration of the last transaction, in microseconds.
    pub last_txn_micros: i64,
    /// Transactions slower than the core's slow-transaction threshold.
    pub slow_transactions: i64,
}

/// Counters beyond i64 are not expected; clamp rather than wrap if one ever is.
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<depot_client::MetricsSnapshot> for Metrics {
    fn from(m: depot_client::MetricsSnapshot) -> Self {
        Self {
            queue_depth: count(m.queue_depth),
            commits: count(m.commits),
            get_pages_calls: count(m.get_pages_calls),
            pages_fetched: count(m.pages_fetched),
            bytes_fetched: count(m.bytes_fetched),
            pages_committed: count(m.pages_committed),
            bytes_committed: count(m.bytes_committed),
            cache_hits: count(m.cache_hits),
            cache_misses: count(m.cache_misses),
            dirty_pages: count(m.dirty_pages),
            size_pages: count(m.size_pages),
            statement_cache_hits: count(m.statement_cache_hits),
            statement_cache_misses: count(m.statement_cache_misses),
            transactions: count(m.transactions),
            last_txn_get_pages: count(m.last_txn_get_pages),
            last_txn_commits: count(m.last_txn_commits),
            last_txn_micros: count(m.last_txn_micros),
            slow_transactions: count(m.slow_transactions),
        }
    }
}

/// What `db.stats()` returns: where the calls of a database are.
#[napi(object, object_from_js = false)]
pub struct Stats {
    /// Accepted calls waiting: in the queue, behind a transaction, or answered and on their way to
    /// JavaScript.
    pub queued: i64,
    /// 1 while a call runs on the worker, else 0.
    pub running: i64,
    /// Calls answered with a result.
    pub answered: i64,
    /// Accepted calls answered with an error.
    pub failed: i64,
    /// Calls refused at once with `ERR_OVERLOADED`.
    pub rejected: i64,
    /// Answers taken on the JS thread while it waited for them (`replyWaitMicros`), without a
    /// wake-up of the event loop.
    pub answered_inline: i64,
}

impl From<depot_client::MetricsSnapshot> for Stats {
    fn from(m: depot_client::MetricsSnapshot) -> Self {
        Self {
            queued: count(m.queue_depth.saturating_sub(m.running)),
            running: count(m.running),
            answered: count(m.answered),
            failed: count(m.failed),
            rejected: count(m.rejected),
            answered_inline: 0,
        }
    }
}
