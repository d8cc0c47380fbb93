//! # depot-sqlite (the NAPI crate)
//!
//! The thin JavaScript face of `depot-client`. Everything interesting (the worker thread, the depot
//! VFS, statement execution) happens in the core; this crate only marshals values between
//! JavaScript and Rust and turns the worker's replies into settled promises.
//!
//! Why promises are settled from the worker's reply instead of from a libuv thread-pool task: the
//! JS thread must never wait on SQLite or on the store, and a pool task that blocks on a reply would
//! tie up one of libuv's four threads per in-flight call. A reply callback that settles a deferred
//! costs nothing while the call is queued, so a thousand un-awaited calls cost a thousand small
//! closures, not a thousand blocked threads.
//!
//! Modules, one concern each:
//! - [`depot`]: the `Depot` class, owner of one page store and of the databases opened on it.
//! - [`database`]: the `NativeDatabaseHandle` class, one per open database.
//! - [`history`]: a depot's history calls (commit log, commit at a time, restore, fork).
//! - [`transfer`]: a depot's export to and import from plain SQLite database files.
//! - [`options`]: the options of `Depot.open` and `openDatabase`, declared and validated once.
//! - [`call`]: per-call options (`CancelToken`, deadline, transaction).
//! - [`thread`]: blocking work (store open, close) off the JS thread.
//! - [`logging`]: the core's `tracing` events to stderr, filtered by `DEPOT_SQLITE_LOG`.
//! - [`value`]: JavaScript values and parameters to and from the core's `Value`.
//! - [`result`]: the objects that the promises resolve with.
//! - [`error`]: errors with a stable `code`, as JavaScript sees them.
//! - [`metrics`]: the counters of `db.metrics()`.
//! - [`promise`]: a promise settled from any thread (one-off calls: open, close).
//! - [`reply`]: answers on their way to the JS thread: one threadsafe function per database, many
//!   promises per wake-up, and the JS thread's short wait for answers about to arrive.

#![deny(clippy::all)]

mod call;
mod database;
mod depot;
mod error;
mod history;
mod logging;
mod metrics;
mod options;
mod promise;
mod reply;
mod result;
mod sync;
mod thread;
mod transfer;
mod value;

pub use call::CancelToken;
pub use database::NativeDatabaseHandle;
pub use depot::Depot;
pub use history::NativeHistoryEntry;
pub use metrics::{Metrics, Stats};
pub use options::{DepotOptions, OpenDatabaseOptions};
pub use reply::waiter::{arm_reply_wait, wait_for_replies};
pub use result::{set_array_maker, CursorChunk, CursorInfo, Packed};

/// Whether `sql` ends with a complete SQL statement (SQLite's `sqlite3_complete`: a `;` outside
/// strings, comments and trigger bodies). The CLI shell reads lines until it is.
#[napi_derive::napi]
pub fn is_complete_sql(sql: String) -> bool {
    depot_client::statement_complete(&sql)
}
