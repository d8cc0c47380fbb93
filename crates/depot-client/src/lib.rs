//! The depot-sqlite core: one worker thread per database, a SQLite VFS over a page store, statement
//! execution and metrics. It knows nothing of JavaScript; the NAPI crate is a thin layer on top.
//!
//! The path of one call: [`NativeDatabaseHandle`] sends a command with a reply callback on a bounded
//! queue; the worker runs it on its connection; SQLite reads pages through the depot VFS (dirty buffer,
//! page cache, then the store with read-ahead) and, at the end of each transaction, the VFS sends every
//! dirty page in one store commit; the reply callback carries the result back.

#[cfg(feature = "test-hooks")]
pub mod chaos;
mod connection;
mod control;
mod cursor;
pub mod error;
mod exec;
mod handle;
mod metrics;
mod session;
mod stmt;
mod value;
mod vfs;
mod worker;

pub use control::{CallOptions, CancelToken};
pub use depot::{FileStore, FileStoreOptions, MemoryStore, PageStore, StoreError};
pub use error::{Error, ErrorCode};
pub use handle::{NativeDatabaseHandle, OpenOptions, CLOSE_TIMEOUT};
pub use metrics::MetricsSnapshot;
pub use session::{Behavior, TxId};
pub use value::{ExecuteResult, Params, Statement, Value};

/// A reply callback: called exactly once, from the worker thread, or at once on the caller's thread
/// when a call is rejected up front (ERR_OVERLOADED, ERR_CLOSED, ERR_WORKER_DEAD).
pub type Responder<T> = Box<dyn FnOnce(Result<T, Error>) + Send + 'static>;
