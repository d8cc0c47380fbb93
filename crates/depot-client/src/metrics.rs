//! Counters of one database, written by its worker, read from any thread.
//!
//! The list of counters is written once, in [`for_each_metric!`]: it makes the live atomics
//! ([`Metrics`]), their plain copy ([`Counters`]) and, in the NAPI crate, the object that
//! `db.metrics()` returns. A counter added here reaches JavaScript with its doc comment; the
//! README's list is checked against it by a test.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Calls `$callback!` with every counter of a database, each with its doc comment, in the order
/// `db.metrics()` shows them (after `queueDepth`, which admission owns). The docs are written as
/// `#[doc = "..."]` so that they reach napi's type generator as plain strings.
#[macro_export]
macro_rules! for_each_metric {
    ($callback:ident) => {
        $callback! {
            #[doc = "1 while a call runs on the worker, else 0."]
            running,
            #[doc = "Accepted calls answered with a result."]
            answered,
            #[doc = "Accepted calls answered with an error."]
            failed,
            #[doc = "Calls refused at admission (`ERR_OVERLOADED`), never queued."]
            rejected,
            #[doc = "Store commits applied (one per write transaction)."]
            commits,
            #[doc = "Commit attempts that failed transiently and were retried with the same commit id."]
            commit_retries,
            #[doc = "Round trips to the store to read pages (`get_pages` calls)."]
            get_pages_calls,
            #[doc = "Pages read from the store."]
            pages_fetched,
            #[doc = "Bytes read from the store."]
            bytes_fetched,
            #[doc = "Pages written to the store."]
            pages_committed,
            #[doc = "Bytes written to the store."]
            bytes_committed,
            #[doc = "Page reads served by the VFS page cache (after SQLite's own cache missed)."]
            cache_hits,
            #[doc = "Page reads that missed the VFS page cache and went to the store."]
            cache_misses,
            #[doc = "Pages written by the open transaction and not yet committed."]
            dirty_pages,
            #[doc = "Size of the database, in pages."]
            size_pages,
            #[doc = "Txid of the newest commit this handle knows (its head): the point `bookmark()` names."]
            head_txid,
            #[doc = "Writes that arrived outside a batch-atomic write (stays 0)."]
            unbatched_writes,
            #[doc = "Statements found prepared in the worker's statement cache."]
            statement_cache_hits,
            #[doc = "Statements that had to be prepared."]
            statement_cache_misses,
            #[doc = "Calls run on the worker."]
            calls,
            #[doc = "Store round trips (`get_pages`) of the most recent call."]
            last_call_get_pages,
            #[doc = "Store commits of the most recent call."]
            last_call_commits,
            #[doc = "Duration of the most recent call on the worker, in microseconds."]
            last_call_micros,
            #[doc = "Calls slower than the slow-call threshold (200 ms); each is also logged."]
            slow_calls,
            #[doc = "1 while the database hibernates (idle for `idleMs`: no thread, no connection), else 0."]
            hibernating,
            #[doc = "Times the database went into hibernation."]
            hibernations,
            #[doc = "Times a call woke the hibernating database (reopening its session)."]
            wakes,
            #[doc = "Calls answered by a snapshot reader (reads that did not wait for the writer)."]
            reader_calls,
            #[doc = "Reads answered on the caller's thread from the page cache, where the parked writer would have been woken."]
            caller_reads,
            #[doc = "Snapshot reader threads running now (they start on demand and end when idle)."]
            readers,
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
