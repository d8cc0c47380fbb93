//! The depot-sqlite core: one worker thread per database, a SQLite VFS over a page store, statement
//! execution and metrics. It knows nothing of JavaScript; the NAPI crate is a thin layer on top.
//!
//! The path of one call: [`Database::call`] admits the call (at most `max_queue` in flight, see
//! `admission`) and sends its [`Command`] to the worker on an unbounded channel; the worker runs it
//! on its connection; SQLite reads pages through the depot VFS (dirty buffer, page cache, then the
//! store with read-ahead) and, at the end of each transaction, the VFS sends every dirty page in
//! one store commit; the [`Responder`] receives the [`Answer`] with the call's [`Admission`].
//! ARCHITECTURE.md at the repository root walks through the files.

mod admission;
mod blocking;
mod command;
mod connection;
mod control;
mod cursor;
mod database;
pub mod error;
mod exec;
pub mod history;
mod metrics;
mod options;
mod readers;
mod route;
mod session;
mod stmt;
mod store_config;
mod transfer;
mod value;
mod vfs;
mod worker;

pub use admission::Admission;
pub use blocking::Rows;
pub use command::{Answer, Behavior, CallOptions, Command, CursorId, Responder, TransactionId};
pub use control::CancelToken;
pub use database::{Database, CALLER_BURST, CLOSE_TIMEOUT};
#[cfg(feature = "postgres")]
pub use depot::PostgresStoreOptions;
pub use depot::{CommitInfo, FileStoreOptions, PageStore, Restored, Retention, StoreError};
pub use error::{Error, ErrorCode};
pub use exec::statement_complete;
pub use metrics::{Counters, MetricsSnapshot};
pub use options::OpenOptions;
pub use store_config::{OpenedStore, StoreConfig, StoreKind};
pub use transfer::{export_database, import_database, Exported, Imported};
pub use value::{ExecuteResult, Params, Statement, Value};
