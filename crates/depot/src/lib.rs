//! The page store behind depot-sqlite.
//!
//! A *depot* keeps the pages of many SQLite databases. It knows nothing of SQLite's VFS: it stores
//! numbered, checksummed page versions per database and moves a database's *head* forward one atomic
//! commit at a time. Three promises make the rest of the system possible:
//!
//! * **Fencing.** Every database has a writer generation. Opening with a newer generation fences every
//!   older writer: its commits are rejected from then on ([`StoreError::Fenced`]).
//! * **Atomic, idempotent commits.** A commit of any size is applied whole or not at all, and retrying a
//!   commit id that was already applied returns the earlier outcome instead of failing.
//! * **Immutable versions.** The bytes of (database, page, txid) never change once committed; versions
//!   that nothing can read any more are pruned so the store stays about the size of the data.
//!
//! Backends: [`MemoryStore`] (tests) and [`FileStore`], the embedded default (one directory holding an
//! append-only log and a base file, indexed in memory; see its module docs for why), and, with the
//! `postgres` feature, `PostgresStore` (native tables in PostgreSQL, for actors that move between
//! machines).

pub mod clock;
mod deadline;
mod error;
mod file;
mod history;
mod memory;
mod name;
#[cfg(feature = "postgres")]
mod postgres;
mod store;
mod types;
mod versions;

#[cfg(feature = "test-hooks")]
pub mod fault;

pub use clock::{Clock, RealClock, VirtualClock};
pub use deadline::DeadlineStore;
pub use error::StoreError;
pub use file::{FileStore, FileStoreOptions};
pub use history::{random_commit_id, CommitInfo, Retention};
pub use memory::MemoryStore;
pub use name::validate_name;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreOptions};
pub use store::{LeaseId, PageStore, Restored, MAX_HINTS};
pub use types::{page_checksum, CommitOutcome, CommitRequest, Head, Opened, Page, PageNo, Txid, PAGE_SIZE};
