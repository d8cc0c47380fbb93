//! The one error type every backend returns.

use std::fmt;

/// Why a store call failed. The client maps each kind to a stable JS error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A newer writer generation owns the database; this writer must stop.
    Fenced { database: String, generation: u64, current: u64 },
    /// The head is not where the caller expected it (another writer committed).
    HeadMoved { database: String, expected: u64, actual: u64 },
    /// The store cannot be reached or failed transiently; the outcome of a commit may be unknown.
    Unavailable(String),
    /// The store returned data that fails its checks (checksum, missing page below the end).
    Corrupt(String),
    /// The caller passed something the store refuses (bad database name, bad page).
    InvalidArgument(String),
    /// A commit larger than the store accepts.
    TooLarge { bytes: u64, limit: u64 },
    /// A point outside the history the store retains (or a store that keeps none).
    HistoryUnavailable(String),
}

impl StoreError {
    /// Whether retrying the same call may succeed (and a commit may or may not have been applied).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Fenced { database, generation, current } => write!(
                f,
                "database '{database}' is fenced: writer generation {generation} was superseded by generation {current}"
            ),
            StoreError::HeadMoved { database, expected, actual } => write!(
                f,
                "database '{database}' head moved: expected txid {expected}, store has {actual}"
            ),
            StoreError::Unavailable(msg) => write!(f, "page store unavailable: {msg}"),
            StoreError::Corrupt(msg) => write!(f, "page store corrupt: {msg}"),
            StoreError::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            StoreError::TooLarge { bytes, limit } => {
                write!(f, "commit of {bytes} bytes exceeds the store limit of {limit} bytes")
            }
            StoreError::HistoryUnavailable(msg) => write!(f, "history unavailable: {msg}"),
        }
    }
}

impl std::error::Error for StoreError {}
