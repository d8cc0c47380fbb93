//! Values that cross the store boundary.

use std::sync::Arc;

/// Every page is 4096 bytes; the client pins SQLite's page size to match.
pub const PAGE_SIZE: usize = 4096;

/// A page number, 1-based as in SQLite.
pub type PageNo = u32;

/// A transaction id: the head of a database after a commit. 0 is the empty database.
pub type Txid = u64;

/// Where a database stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Txid of the newest commit (0 before the first).
    pub txid: Txid,
    /// Database size in pages at that txid.
    pub size_pages: u32,
    /// Always [`PAGE_SIZE`]; kept so a store written with another size is refused, not misread.
    pub page_size: u32,
    /// The writer generation that owns the database.
    pub generation: u64,
}

/// One page version as stored: its bytes and the checksum computed by the writer.
///
/// The checksum travels end to end: the client computes it before a commit and verifies it on every
/// read, so corruption anywhere in between (store, disk, network) is caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub no: PageNo,
    pub data: Arc<[u8]>,
    pub checksum: u32,
}

impl Page {
    /// A page with its checksum computed from `data`.
    pub fn new(no: PageNo, data: Arc<[u8]>) -> Page {
        let checksum = page_checksum(no, &data);
        Page { no, data, checksum }
    }

    /// Whether the bytes still match the checksum.
    pub fn verify(&self) -> bool {
        self.data.len() == PAGE_SIZE && page_checksum(self.no, &self.data) == self.checksum
    }
}

/// CRC-32 of the page number followed by the bytes, so a page answered for the wrong number fails too.
pub fn page_checksum(no: PageNo, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&no.to_le_bytes());
    h.update(data);
    h.finalize()
}

/// What an open returns: the head, and the pages asked for in `preload` that exist.
#[derive(Debug, Clone)]
pub struct Opened {
    pub head: Head,
    pub pages: Vec<Page>,
}

/// One atomic commit.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub database: String,
    /// Writer generation; must equal the database's current generation.
    pub generation: u64,
    /// The head txid this commit builds on; must equal the current head.
    pub expected_txid: Txid,
    /// Unique per commit attempt series; a retry with the same id returns the first outcome.
    pub commit_id: u128,
    /// Pages written by the transaction, each at most once.
    pub pages: Vec<Page>,
    /// Database size in pages after the commit (may shrink: pages past it are dropped).
    pub size_pages: u32,
}

/// The result of an applied commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    /// The new head txid.
    pub txid: Txid,
    /// True when this call found the commit id already applied and returned the earlier result.
    pub replayed: bool,
}
