//! What `db.metrics()` and `db.stats()` return. The fields of `metrics()` are the core's list
//! (`depot_client::for_each_metric!`), each with its doc comment, in camelCase; nothing here
//! names a counter twice.

use depot_client::MetricsSnapshot;
use napi_derive::napi;

/// Counters beyond i64 are not expected; clamp rather than wrap if one ever is.
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

macro_rules! js_metrics {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// Counters of one database since it was opened. All values are plain numbers, exact up
        /// to 2^53.
        #[napi(object, object_from_js = false)]
        pub struct Metrics {
            /// Calls in flight right now: queued, running, or answered but not yet delivered to
            /// JavaScript (at most `maxQueue`, plus calls of an open transaction).
            pub queue_depth: i64,
            $( $(#[$doc])* pub $name: i64, )*
        }

        impl From<MetricsSnapshot> for Metrics {
            fn from(m: MetricsSnapshot) -> Self {
                Self { queue_depth: count(m.queue_depth), $( $name: count(m.counters.$name), )* }
            }
        }
    };
}

depot_client::for_each_metric!(js_metrics);

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
    /// Whether the database hibernates now (idle for `idleMs`: no thread, no connection; the next
    /// call wakes it).
    pub hibernating: bool,
    /// Calls answered by a snapshot reader (reads that did not wait for the writer).
    pub reader_calls: i64,
    /// Reads answered on the JS thread from the page cache, where the parked writer would have
    /// been woken (see `OpenDatabaseOptions::readers`).
    pub caller_reads: i64,
    /// Snapshot reader threads running now.
    pub readers: i64,
}

impl Stats {
    pub(crate) fn new(m: MetricsSnapshot, answered_inline: u64) -> Self {
        let c = m.counters;
        Self {
            queued: count(m.queue_depth.saturating_sub(c.running)),
            running: count(c.running),
            answered: count(c.answered),
            failed: count(c.failed),
            rejected: count(c.rejected),
            answered_inline: count(answered_inline),
            hibernating: c.hibernating != 0,
            reader_calls: count(c.reader_calls),
            caller_reads: count(c.caller_reads),
            readers: count(c.readers),
        }
    }
}
