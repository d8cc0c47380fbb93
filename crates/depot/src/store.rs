//! The contract between the depot VFS and a backend.

use std::sync::Arc;

use crate::{Clock, CommitInfo, CommitOutcome, CommitRequest, Head, Opened, Page, PageNo, StoreError, Txid};

/// What the VFS needs from a page store. Implementations must be safe to call from many worker
/// threads at once; each call is synchronous (an async backend drives its own runtime).
pub trait PageStore: Send + Sync + 'static {
    /// Opens `database` for a writer.
    ///
    /// `generation`: `Some(g)` claims generation `g` (an error if a newer one exists; fences every
    /// older writer if `g` is newer); `None` claims the next generation. Returns the head (with the
    /// claimed generation) and, in the same round trip, those of the `preload` pages that exist
    /// plus the pages of the hints saved by the last session ([`PageStore::save_hints`]).
    fn open(&self, database: &str, generation: Option<u64>, preload: &[PageNo])
        -> Result<Opened, StoreError>;

    /// Reads `pages` as of `at`, which must be the current head txid (else [`StoreError::HeadMoved`]).
    /// The answer has one entry per requested page, in order; a page past the end is `None`, a page
    /// below the end that the store cannot find is [`StoreError::Corrupt`].
    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError>;

    /// Applies a commit atomically: fenced on generation, conditional on the head, idempotent by
    /// commit id.
    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError>;

    /// A short, credential-free description for logs ("memory", "file:/path").
    fn describe(&self) -> String;

    /// Remembers the pages a session of `database` used first, so that the next open preloads
    /// them (at most [`MAX_HINTS`] are kept). Best effort: ignored when `generation` is no longer
    /// the database's writer. The default keeps nothing.
    fn save_hints(&self, _database: &str, _generation: u64, _pages: &[PageNo]) -> Result<(), StoreError> {
        Ok(())
    }

    /// The clock this store stack reads time from; the client's retries and timeouts read the same
    /// one. Backends use the real clock; wrappers built for a simulation carry a virtual one.
    fn clock(&self) -> Arc<dyn Clock> {
        crate::clock::real()
    }

    /// The commits of `database` its history still covers, newest first: at most `limit`, and only
    /// those older than `before` when given. A store that keeps no history has only the head's.
    fn history(
        &self,
        database: &str,
        limit: usize,
        before: Option<Txid>,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        let _ = (database, limit, before);
        Err(no_history(self))
    }

    /// The txid of the newest commit of `database` at or before `time_ms` (ms since the Unix
    /// epoch); [`StoreError::HistoryUnavailable`] when the retained history does not reach it.
    fn txid_at_time(&self, database: &str, time_ms: u64) -> Result<Txid, StoreError> {
        let _ = (database, time_ms);
        Err(no_history(self))
    }

    /// Reads `pages` as `database` was at `at` (the head, or a point the history retains), and
    /// its size in pages there. Needs no open: a read-only reader uses it.
    fn read_at(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
    ) -> Result<(u32, Vec<Option<Page>>), StoreError> {
        let _ = (database, pages, at);
        Err(no_history(self))
    }

    /// Makes `database` what it was at `at`, as a new commit written with the claimed `generation`
    /// (as [`PageStore::open`] claims it: the current writer is fenced). Idempotent by `id`, like a
    /// commit by its commit id: a retry after an outcome that was not reported (a lost reply, a
    /// call that timed out) answers the restore already made instead of making another.
    fn restore(
        &self,
        database: &str,
        at: Txid,
        generation: Option<u64>,
        id: u128,
    ) -> Result<Restored, StoreError> {
        let _ = (database, at, generation, id);
        Err(no_history(self))
    }

    /// Creates `target` (which must not exist) as `source` was at `at` (default: its head),
    /// sharing the versions instead of copying them where the store can. Returns the new head.
    /// Idempotent by `id`: a retry finds the fork this id made (its first commit's id).
    fn fork(&self, source: &str, target: &str, at: Option<Txid>, id: u128) -> Result<Head, StoreError> {
        let _ = (source, target, at, id);
        Err(no_history(self))
    }

    /// The names of the databases the store holds, sorted.
    fn databases(&self) -> Result<Vec<String>, StoreError>;

    /// Keeps `at` of `database` readable (by [`PageStore::read_at`]) until the returned lease is
    /// released, even once the history window has passed it: what a reader holding a point takes.
    /// Fails like `read_at` when `at` is not readable now.
    fn lease(&self, database: &str, at: Txid) -> Result<LeaseId, StoreError> {
        let _ = (database, at);
        Err(no_history(self))
    }

    /// Gives a lease back. Best effort: a lease a store loses (a crashed process's, on PostgreSQL)
    /// lapses on its own.
    fn release(&self, database: &str, lease: LeaseId) {
        let _ = (database, lease);
    }

    /// How long a point stays readable after it stopped being the head, by the store's history
    /// window alone (no lease): a reader that pins the head may read it that long. Zero: the store
    /// keeps no window (a superseded version may go at the next commit).
    fn history_window(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Whether the next call may wait on [`PageStore::clock`] (only fault layers do, to simulate a
    /// hang). On a simulated clock a deadline can pass only during such a wait, so a call that
    /// cannot wait runs on the caller's thread (see [`crate::DeadlineStore`]).
    fn may_wait_on_clock(&self) -> bool {
        false
    }
}

/// A reader's lease on a point of a database ([`PageStore::lease`]).
pub type LeaseId = u128;

/// What a restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// The commit that restored the content.
    pub txid: Txid,
    /// The head just before it: restoring to it undoes the restore.
    pub previous: Txid,
    /// The generation the restore claimed.
    pub generation: u64,
}

fn no_history<S: PageStore + ?Sized>(store: &S) -> StoreError {
    StoreError::HistoryUnavailable(format!("the {} store keeps no history", store.describe()))
}

/// Most pages a hint list keeps: 1 MiB of 4 KiB pages preloaded at open.
pub const MAX_HINTS: usize = 256;

/// `preload` followed by the hinted pages it does not hold yet, in order.
pub(crate) fn with_hints(preload: &[PageNo], hints: &[PageNo]) -> Vec<PageNo> {
    let mut all = preload.to_vec();
    for &no in hints.iter().take(MAX_HINTS) {
        if !all.contains(&no) {
            all.push(no);
        }
    }
    all
}

/// Hint lists were stored as little-endian u32s (the SQLite-based file store).
pub(crate) fn decode_hints(bytes: &[u8]) -> Vec<PageNo> {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// How many recent commit ids each database remembers for idempotent retries.
pub(crate) const COMMIT_LOG_KEEP: usize = 1024;

/// The checks every backend makes before applying a commit, against the head it holds under its lock
/// (or inside its transaction). Keeping them in one place keeps the backends' semantics identical.
pub(crate) fn check_commit(head: &crate::Head, request: &CommitRequest) -> Result<(), StoreError> {
    if request.generation != head.generation {
        return Err(StoreError::Fenced {
            database: request.database.clone(),
            generation: request.generation,
            current: head.generation,
        });
    }
    if request.expected_txid != head.txid {
        return Err(StoreError::HeadMoved {
            database: request.database.clone(),
            expected: request.expected_txid,
            actual: head.txid,
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(request.pages.len());
    for page in &request.pages {
        if page.no == 0 || page.no > request.size_pages {
            return Err(StoreError::InvalidArgument(format!(
                "page {} is outside the database of {} pages",
                page.no, request.size_pages
            )));
        }
        if !seen.insert(page.no) {
            return Err(StoreError::InvalidArgument(format!("page {} appears twice", page.no)));
        }
        if !page.verify() {
            return Err(StoreError::InvalidArgument(format!("page {} does not match its checksum", page.no)));
        }
    }
    Ok(())
}

/// The generation an open claims, or why it may not.
pub(crate) fn claim_generation(database: &str, current: u64, wanted: Option<u64>) -> Result<u64, StoreError> {
    match wanted {
        None => Ok(current + 1),
        Some(g) if g >= current && g > 0 => Ok(g),
        Some(0) => Err(StoreError::InvalidArgument("generation must be at least 1".into())),
        Some(g) => Err(StoreError::Fenced { database: database.to_string(), generation: g, current }),
    }
}

/// Checks a store's answer for one page at read time: a page below the end must exist. Checksums
/// are verified once, end to end, by the client that reads the page (not here as well: a CRC of
/// every page twice per read).
pub(crate) fn checked_page(
    database: &str,
    no: PageNo,
    page: Option<Page>,
    size_pages: u32,
) -> Result<Option<Page>, StoreError> {
    match page {
        None if no <= size_pages => Err(StoreError::Corrupt(format!(
            "database '{database}': page {no} is missing below the end ({size_pages} pages)"
        ))),
        None => Ok(None),
        Some(_) if no > size_pages => Ok(None),
        Some(p) => Ok(Some(p)),
    }
}
