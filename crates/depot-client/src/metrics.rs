//! Counters of one database, written by its worker, read from any thread.
//!
//! The list of counters is written once, in [`for_each_metric!`]: it makes the live atomics
//! ([`Metrics`]), their plain copy ([`Counters`]) and, in the NAPI crate, the object that
//! `db.metrics()` returns. A counter added here reaches JavaScript with its doc comment; the
//! README's list is checked against it by a test.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Calls `$callback!` with every counter of a database, each with its doc comment, in the order
/// `db.metrics()` shows them (after `queueDepth`, which admission owns).
#[macro_export]
macro_rules! for_each_metric {
    ($callback:ident) => {
        $callback! {
            /// 1 while a call runs on the worker, else 0.
            running,
            /// Accepted calls answered with a result.
            answered,
            /// Accepted calls answered with an error.
            failed,
            /// Calls refused at admission (`ERR_OVERLOADED`), never queued.
            rejected,
            /// Store commits applied (one per write transaction).
            commits,
            /// Commit attempts that failed transiently and were retried with the same commit id.
            commit_retries,
            /// Round trips to the store to read pages (`get_pages` calls).
            get_pages_calls,
            /// Pages read from the store.
            pages_fetched,
            /// Bytes read from the store.
            bytes_fetched,
            /// Pages written to the store.
            pages_committed,
            /// Bytes written to the store.
            bytes_committed,
            /// Page reads served by the VFS page cache (after SQLite's own cache missed).
            cache_hits,
            /// Page reads that missed the VFS page cache and went to the store.
            cache_misses,
            /// Pages written by the open transaction and not yet committed.
            dirty_pages,
            /// Size of the database, in pages.
            size_pages,
            /// Writes that arrived outside a batch-atomic write (stays 0).
            unbatched_writes,
            /// Statements found prepared in the worker's statement cache.
            statement_cache_hits,
            /// Statements that had to be prepared.
            statement_cache_misses,
            /// Calls run on the worker.
            calls,
            /// Store round trips (`get_pages`) of the most recent call.
            last_call_get_pages,
            /// Store commits of the most recent call.
            last_call_commits,
            /// Duration of the most recent call on the worker, in microseconds.
            last_call_micros,
            /// Calls slower than the slow-call threshold (200 ms); each is also logged.
            slow_calls,
        }
    };
}

macro_rules! define_metrics {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// Live counters (relaxed atomics: each value is exact, a snapshot is not one instant).
        #[derive(Debug, Default)]
        pub struct Metrics {
            $( $(#[$doc])* pub $name: AtomicU64, )*
        }

        /// A plain copy of [`Metrics`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Metrics {
            pub fn counters(&self) -> Counters {
                Counters { $( $name: self.$name.load(Relaxed), )* }
            }
        }
    };
}

for_each_metric!(define_metrics);

/// What `Database::metrics` answers: admission's count of calls in flight, and the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Calls admitted and not yet released (at most `max_queue`, plus calls of an open transaction).
    pub queue_depth: u64,
    pub counters: Counters,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }
}
