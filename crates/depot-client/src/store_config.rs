//! The one place that builds page stores: memory, the embedded file store, PostgreSQL, and the
//! deadline wrapper around any of them. Callers (the NAPI crate, the CLI through it, tests) say
//! which store they want; how it is opened and wrapped is decided here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use depot::{DeadlineStore, FileStore, FileStoreOptions, MemoryStore, PageStore, Retention};
#[cfg(feature = "postgres")]
use depot::{PostgresStore, PostgresStoreOptions};

use crate::Error;

/// Which page store, and where.
#[derive(Debug, Clone)]
pub enum StoreKind {
    /// In memory, gone when the last reference is dropped.
    Memory,
    /// The embedded file store in directory `path` (created if missing).
    File { path: PathBuf, options: FileStoreOptions },
    /// PostgreSQL at `url` (`postgres://user:password@host:port/dbname[?sslmode=...]`).
    #[cfg(feature = "postgres")]
    Postgres { url: String, options: PostgresStoreOptions },
}

/// A store to open: its kind, and the deadline of every store call, if any.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// A store call that does not answer in time fails with ERR_STORE_UNAVAILABLE instead of
    /// holding the database's worker.
    pub call_timeout: Option<Duration>,
    /// History to keep, on every store.
    pub retention: Retention,
}

/// An open store and how to name it without secrets (a directory, `memory`, or
/// `postgres://host:port/dbname`).
pub struct OpenedStore {
    pub store: Arc<dyn PageStore>,
    pub location: String,
}

impl StoreConfig {
    pub fn new(kind: StoreKind) -> StoreConfig {
        StoreConfig { kind, call_timeout: None, retention: Retention::default() }
    }

    /// A PostgreSQL store; a URL of another scheme is ERR_INVALID_ARGUMENT (never quoted: it
    /// carries the password).
    #[cfg(feature = "postgres")]
    pub fn postgres(url: String, options: PostgresStoreOptions) -> Result<StoreConfig, Error> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::invalid(
                "options.url must be a PostgreSQL URL: postgres://user:password@host:port/dbname[?sslmode=verify-full&sslrootcert=ca.pem]",
            ));
        }
        Ok(StoreConfig::new(StoreKind::Postgres { url, options }))
    }

    /// Opens the store (blocking: file I/O, or connecting and migrating a PostgreSQL schema).
    pub fn open(&self) -> Result<OpenedStore, Error> {
        let (store, location): (Arc<dyn PageStore>, String) = match &self.kind {
            StoreKind::Memory => (Arc::new(MemoryStore::with_retention(self.retention)), "memory".to_owned()),
            StoreKind::File { path, options } => {
                let options = FileStoreOptions {
                    history_ms: self.retention.ms.max(options.history_ms),
                    history_txids: self.retention.txids.max(options.history_txids),
                };
                (Arc::new(FileStore::open(path, options)?), path.display().to_string())
            }
            #[cfg(feature = "postgres")]
            StoreKind::Postgres { url, options } => {
                let mut options = options.clone();
                options.retention = Retention {
                    ms: self.retention.ms.max(options.retention.ms),
                    txids: self.retention.txids.max(options.retention.txids),
                };
                let store = PostgresStore::open(url, options)?;
                let location = store.describe();
                (Arc::new(store), location)
            }
        };
        let store: Arc<dyn PageStore> = match self.call_timeout {
            Some(timeout) => Arc::new(DeadlineStore::new(store, timeout)),
            None => store,
        };
        Ok(OpenedStore { store, location })
    }
}
