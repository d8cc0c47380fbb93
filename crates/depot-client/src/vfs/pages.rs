//! The state behind the main database file: head, dirty buffer, page cache, commit.
//!
//! Pure Rust, no FFI: the io callbacks in `io.rs` translate SQLite's byte ranges into calls here.
//! Reads look in the dirty buffer, then the page cache, then the store (with read-ahead). Writes go to
//! the dirty buffer. A batch-atomic write ends in exactly one store commit carrying every dirty page.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use depot::{Clock, CommitRequest, Head, LeaseId, Page, PageNo, PageStore, StoreError, PAGE_SIZE};

use super::readahead::ReadAhead;
use super::shared::SharedPages;
use crate::metrics::Metrics;

const PS: u64 = PAGE_SIZE as u64;

/// Default commit size limit: room for VACUUM of a 1 GiB database (which rewrites every page).
pub const DEFAULT_MAX_COMMIT_BYTES: u64 = 2 << 30;

/// How long transient store errors are retried before a call fails.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 3, backoff: Duration::from_millis(20) }
    }
}

pub struct PageSource {
    store: Arc<dyn PageStore>,
    database: String,
    generation: u64,
    head: Head,
    /// Logical size including uncommitted writes and truncations.
    size_pages: u32,
    dirty: BTreeMap<PageNo, Arc<[u8]>>,
    /// Shared with the database's snapshot readers (see `super::shared`).
    cache: Arc<SharedPages>,
    readahead: ReadAhead,
    in_batch: bool,
    metrics: Arc<Metrics>,
    retry: RetryPolicy,
    /// The store stack's clock: retry backoff sleeps on it.
    clock: Arc<dyn Clock>,
    /// Largest commit accepted, in bytes; a larger transaction fails with ERR_TOO_LARGE.
    max_commit_bytes: u64,
    /// The store error behind the last failed callback, for the worker to report with its own code.
    failure: Option<StoreError>,
    /// Set once the writer must stop (fenced, or a commit whose outcome could not be resolved).
    poisoned: Option<StoreError>,
    commit_seed: u64,
    commit_seq: u64,
    role: Role,
    /// Reads only what the page cache holds: a miss fails the read (as an I/O error) and is noted
    /// in `missed` instead of asking the store (a read run on the caller's thread, see
    /// `crate::readers`, must never wait for the store).
    cache_only: bool,
    /// For a cache-only source: when the running read must give up (SQLite's progress handler
    /// does not run inside some long steps, such as `count(*)` walking a whole b-tree, but every
    /// page it reads comes through here).
    deadline: Option<std::time::Instant>,
    missed: bool,
}

/// What a page source reads and whether it may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The database's writer: reads at its head, commits.
    Writer,
    /// A handle on a point of the history (`OpenOptions::at`): reads at `head.txid` for good,
    /// under this lease of the store's (released when the source goes).
    At(LeaseId),
    /// A snapshot reader: reads at the point it is pinned to for each statement
    /// ([`PageSource::repin`]); the lease that keeps that point readable is its caller's.
    Reader,
}

impl Drop for PageSource {
    fn drop(&mut self) {
        if let Role::At(lease) = self.role {
            self.store.release(&self.database, lease);
        }
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.finish()
}

impl PageSource {
    pub fn new(
        store: Arc<dyn PageStore>,
        database: String,
        head: Head,
        preloaded: Vec<Page>,
        cache: Arc<SharedPages>,
        cache_pages: usize,
        metrics: Arc<Metrics>,
    ) -> PageSource {
        let mut view = cache.view(head.txid);
        for p in preloaded {
            view.insert(p.no, p.data);
        }
        drop(view);
        Metrics::set(&metrics.size_pages, head.size_pages as u64);
        Metrics::set(&metrics.head_txid, head.txid);
        PageSource::with_role(store, database, head, cache, cache_pages, metrics, Role::Writer)
    }

    /// A snapshot reader's source over `cache` (the writer's), pinned to a point per statement by
    /// [`PageSource::repin`].
    pub fn reader(
        store: Arc<dyn PageStore>,
        database: String,
        cache: Arc<SharedPages>,
        cache_pages: usize,
        metrics: Arc<Metrics>,
    ) -> PageSource {
        let head = cache.head();
        let mut source =
            PageSource::with_role(store, database, head, cache, cache_pages, metrics, Role::Reader);
        source.max_commit_bytes = 0;
        source
    }

    fn with_role(
        store: Arc<dyn PageStore>,
        database: String,
        head: Head,
        cache: Arc<SharedPages>,
        cache_pages: usize,
        metrics: Arc<Metrics>,
        role: Role,
    ) -> PageSource {
        PageSource {
            clock: store.clock(),
            store,
            database,
            generation: head.generation,
            head,
            size_pages: head.size_pages,
            dirty: BTreeMap::new(),
            cache,
            readahead: ReadAhead::for_cache(cache_pages),
            in_batch: false,
            metrics,
            retry: RetryPolicy::default(),
            max_commit_bytes: DEFAULT_MAX_COMMIT_BYTES,
            failure: None,
            poisoned: None,
            commit_seed: random_seed(),
            commit_seq: 0,
            role,
            cache_only: false,
            deadline: None,
            missed: false,
        }
    }

    /// Points a snapshot reader at `head` for its next statement. SQLite notices the move by the
    /// change counter it reads at the start of each read transaction (see [`PageSource::read`]).
    /// A cache-only source gives the statement up at `deadline` (see `deadline`).
    pub fn repin(&mut self, head: Head, deadline: Option<std::time::Instant>) {
        debug_assert_eq!(self.role, Role::Reader);
        self.head = head;
        self.size_pages = head.size_pages;
        self.failure = None;
        self.deadline = deadline;
        self.missed = false;
    }

    /// Makes this reader's source read from the page cache only (see `cache_only`).
    pub fn set_cache_only(&mut self) {
        debug_assert_eq!(self.role, Role::Reader);
        self.cache_only = true;
    }

    /// Whether a read could not be served here since the last look (a page not cached, or the
    /// deadline passed), and forgets it.
    pub fn take_missed(&mut self) -> bool {
        std::mem::take(&mut self.missed)
    }

    /// Saves the pages this session used first as the store's hints for the next open (best
    /// effort: a failure only costs the next open its preload).
    pub fn save_hints(&mut self) {
        if self.role != Role::Writer || self.poisoned.is_some() {
            return;
        }
        let first_used = self.cache.first_used();
        if first_used.is_empty() {
            return;
        }
        if let Err(e) = self.store.save_hints(&self.database, self.generation, &first_used) {
            tracing::debug!(database = %self.database, error = %e, "could not save preload hints");
        }
    }

    /// Makes this a reader at its head's txid, which `lease` keeps readable: reads go to that
    /// point of the history, not to the writer's head (which moves on without it).
    pub fn pin(&mut self, lease: LeaseId) {
        self.role = Role::At(lease);
    }

    /// The writer generation this source commits with.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether this reads at a point (a handle on the history, or a snapshot reader).
    pub fn is_pinned(&self) -> bool {
        self.role != Role::Writer
    }

    /// Drops the cached pages this source shares (see [`SharedPages::forget`]).
    pub fn forget_cache(&self) {
        self.cache.forget();
    }

    /// Sets the commit size limit (see [`DEFAULT_MAX_COMMIT_BYTES`]).
    pub fn set_max_commit_bytes(&mut self, limit: u64) {
        self.max_commit_bytes = limit;
    }

    pub fn file_size(&self) -> u64 {
        self.size_pages as u64 * PS
    }

    /// The store error that made the last callback fail, taken once.
    pub fn take_failure(&mut self) -> Option<StoreError> {
        self.failure.take()
    }

    pub fn poisoned(&self) -> Option<&StoreError> {
        self.poisoned.as_ref()
    }

    fn fail<T>(&mut self, e: StoreError) -> Result<T, ()> {
        if matches!(e, StoreError::Fenced { .. } | StoreError::HeadMoved { .. }) {
            self.poisoned = Some(e.clone());
        }
        self.failure = Some(e);
        Err(())
    }

    fn check_poison(&mut self) -> Result<(), ()> {
        match &self.poisoned {
            Some(e) => {
                self.failure = Some(e.clone());
                Err(())
            }
            None => Ok(()),
        }
    }

    /// Fills `buf` from `offset`. Returns `Ok(false)` when the range reaches past the end (the rest
    /// is zero-filled, as SQLite expects of a short read).
    pub fn read(&mut self, buf: &mut [u8], offset: u64) -> Result<bool, ()> {
        self.check_poison()?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let no = (pos / PS) as PageNo + 1;
            if no > self.size_pages {
                buf[done..].fill(0);
                return Ok(false);
            }
            let within = (pos % PS) as usize;
            let n = (PAGE_SIZE - within).min(buf.len() - done);
            let page = self.page(no)?;
            buf[done..done + n].copy_from_slice(&page[within..within + n]);
            done += n;
        }
        if self.role == Role::Reader && offset < 96 {
            self.stamp_change_counter(buf, offset)?;
        }
        Ok(true)
    }

    /// A snapshot reader's connection keeps its page cache from one read transaction to the next
    /// as long as the file change counter (header bytes 24..28) reads the same. The writer, in
    /// exclusive locking mode, bumps that counter once per session, not per commit; so a reader
    /// sees, in its place, the low 32 bits of the txid it is pinned to (and the same in the
    /// "version-valid-for" copy at 92..96 when the two agreed), which changes with every commit.
    fn stamp_change_counter(&mut self, buf: &mut [u8], offset: u64) -> Result<(), ()> {
        let page1 = self.page(1)?;
        let stamp = (self.head.txid as u32).to_be_bytes();
        let fields: &[usize] = if page1[24..28] == page1[92..96] { &[24, 92] } else { &[24] };
        for &at in fields {
            for (i, byte) in stamp.iter().enumerate() {
                let pos = (at + i) as u64;
                if pos >= offset && pos < offset + buf.len() as u64 {
                    buf[(pos - offset) as usize] = *byte;
                }
            }
        }
        Ok(())
    }

    fn page(&mut self, no: PageNo) -> Result<Arc<[u8]>, ()> {
        if let Some(p) = self.dirty.get(&no) {
            return Ok(p.clone());
        }
        if self.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            self.missed = true;
            return self.fail(StoreError::Unavailable("the read ran past its time here".into()));
        }
        let mut view = self.cache.view(self.head.txid);
        view.note_used(no);
        if let Some(p) = view.get(no) {
            Metrics::add(&self.metrics.cache_hits, 1);
            return Ok(p);
        }
        drop(view);
        Metrics::add(&self.metrics.cache_misses, 1);
        self.fetch(no)
    }

    /// One store round trip for `no` and the read-ahead pages planned with it.
    fn fetch(&mut self, no: PageNo) -> Result<Arc<[u8]>, ()> {
        // Only committed pages come from the store; pages past the committed size but below the
        // logical size were truncated-then-regrown in this transaction and must read as zeros.
        if no > self.head.size_pages {
            return Ok(Arc::from(vec![0u8; PAGE_SIZE]));
        }
        if self.cache_only {
            self.missed = true;
            return self.fail(StoreError::Unavailable(format!("page {no} is not cached")));
        }
        let view = self.cache.view(self.head.txid);
        let dirty = &self.dirty;
        let wanted =
            self.readahead.plan(no, self.head.size_pages, |p| view.contains(p) || dirty.contains_key(&p));
        drop(view);
        let answer = self.with_retry(|s| match s.role {
            Role::Writer => s.store.get_pages(&s.database, &wanted, s.head.txid),
            _ => s.store.read_at(&s.database, &wanted, s.head.txid).map(|(_, pages)| pages),
        });
        let pages = match answer {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        Metrics::add(&self.metrics.get_pages_calls, 1);
        if pages.len() != wanted.len() {
            return self.fail(StoreError::Corrupt(format!(
                "store answered {} pages for {} asked",
                pages.len(),
                wanted.len()
            )));
        }
        let mut first = None;
        let mut fetched = Vec::with_capacity(wanted.len());
        for (&asked, got) in wanted.iter().zip(pages) {
            let page = match got {
                Some(p) if p.no == asked && p.verify() => p,
                Some(_) => {
                    return self.fail(StoreError::Corrupt(format!(
                        "database '{}': page {asked} fails its checksum",
                        self.database
                    )))
                }
                None => {
                    return self.fail(StoreError::Corrupt(format!(
                        "database '{}': page {asked} is missing below the end ({} pages)",
                        self.database, self.head.size_pages
                    )))
                }
            };
            Metrics::add(&self.metrics.pages_fetched, 1);
            Metrics::add(&self.metrics.bytes_fetched, PS);
            if asked == no {
                first = Some(page.data.clone());
            }
            fetched.push((asked, page.data));
        }
        let mut view = self.cache.view(self.head.txid);
        for (asked, data) in fetched {
            view.insert(asked, data);
        }
        Ok(first.expect("the missed page is always planned first"))
    }

    pub fn write(&mut self, buf: &[u8], offset: u64) -> Result<(), ()> {
        self.check_poison()?;
        if !self.in_batch {
            // SQLite writes outside a batch only if the batch-atomic path is not in effect; the pages
            // still commit together at the next sync, but it is counted so tests can pin it at 0.
            Metrics::add(&self.metrics.unbatched_writes, 1);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let no = (pos / PS) as PageNo + 1;
            let within = (pos % PS) as usize;
            let n = (PAGE_SIZE - within).min(buf.len() - done);
            let data: Arc<[u8]> = if n == PAGE_SIZE {
                Arc::from(&buf[done..done + n])
            } else {
                let mut page =
                    if no <= self.size_pages { self.page(no)?.to_vec() } else { vec![0u8; PAGE_SIZE] };
                page[within..within + n].copy_from_slice(&buf[done..done + n]);
                Arc::from(page)
            };
            self.dirty.insert(no, data);
            self.size_pages = self.size_pages.max(no);
            done += n;
        }
        Metrics::set(&self.metrics.dirty_pages, self.dirty.len() as u64);
        Ok(())
    }

    pub fn truncate(&mut self, size: u64) -> Result<(), ()> {
        self.check_poison()?;
        let pages = size.div_ceil(PS) as u32;
        self.dirty.retain(|&no, _| no <= pages);
        self.size_pages = pages;
        Ok(())
    }

    pub fn begin_batch(&mut self) {
        self.in_batch = true;
    }

    /// Ends a batch-atomic write: one store commit of every dirty page.
    pub fn commit_batch(&mut self) -> Result<(), ()> {
        self.in_batch = false;
        self.commit()
    }

    /// Abandons the batch: the store never saw it, so dropping the dirty pages restores the old state.
    pub fn rollback_batch(&mut self) {
        self.in_batch = false;
        self.discard();
    }

    fn discard(&mut self) {
        self.dirty.clear();
        self.size_pages = self.head.size_pages;
        Metrics::set(&self.metrics.dirty_pages, 0);
    }

    /// xSync outside a batch: the commit point of the (unexpected) non-batch path.
    pub fn sync(&mut self) -> Result<(), ()> {
        if self.in_batch || (self.dirty.is_empty() && self.size_pages == self.head.size_pages) {
            return Ok(());
        }
        self.commit()
    }

    fn commit(&mut self) -> Result<(), ()> {
        if let Err(()) = self.check_poison() {
            self.discard();
            return Err(());
        }
        if self.dirty.is_empty() && self.size_pages == self.head.size_pages {
            return Ok(());
        }
        let size = self.committed_size();
        self.dirty.retain(|&no, _| no <= size);
        // A file that grows past pages nobody wrote has zero-filled holes there. SQLite relies on
        // it: a page allocated and freed again in one transaction becomes a free-list leaf that it
        // never writes ("don't write" optimisation) but may read later. The store holds no holes
        // (a missing page is corruption), so the commit carries them as zero pages.
        for no in self.head.size_pages + 1..=size {
            self.dirty.entry(no).or_insert_with(|| Arc::from(vec![0u8; PAGE_SIZE]));
        }
        let pages: Vec<Page> = self.dirty.iter().map(|(&no, data)| Page::new(no, data.clone())).collect();
        self.commit_seq += 1;
        let request = CommitRequest {
            database: self.database.clone(),
            generation: self.generation,
            expected_txid: self.head.txid,
            commit_id: ((self.commit_seed as u128) << 64) | self.commit_seq as u128,
            pages,
            size_pages: size,
        };
        let bytes = request.pages.len() as u64 * PS;
        if bytes > self.max_commit_bytes {
            self.discard();
            return self.fail(StoreError::TooLarge { bytes, limit: self.max_commit_bytes });
        }
        let outcome = self.with_retry(|s| {
            let r = s.store.commit(&request);
            if r.is_err() {
                Metrics::add(&s.metrics.commit_retries, 1);
            }
            r
        });
        match outcome {
            Ok(out) => {
                // Cached pages past the new end would be stale if the database regrows.
                let shrunk = size < self.head.size_pages;
                self.head.txid = out.txid;
                self.head.size_pages = size;
                self.size_pages = size;
                // Coherent with the commit: what this writer committed is what it and the readers
                // that pin the new head will read (published together with the head).
                self.cache.committed(std::mem::take(&mut self.dirty), self.head, shrunk);
                Metrics::add(&self.metrics.commits, 1);
                Metrics::add(&self.metrics.pages_committed, request.pages.len() as u64);
                Metrics::add(&self.metrics.bytes_committed, bytes);
                Metrics::set(&self.metrics.dirty_pages, 0);
                Metrics::set(&self.metrics.size_pages, size as u64);
                Metrics::set(&self.metrics.head_txid, out.txid);
                Ok(())
            }
            Err(e) => {
                self.discard();
                let e = if e.is_transient() { self.resolve_unknown(&request, e) } else { e };
                self.fail(e)
            }
        }
    }

    /// The size this commit leaves. SQLite shrinks the file (VACUUM, auto-vacuum) only after the
    /// batch, in a separate xTruncate; the new size is already in page 1's header, so the shrink is
    /// taken from there and becomes part of the same atomic commit.
    fn committed_size(&self) -> u32 {
        let Some(p1) = self.dirty.get(&1) else { return self.size_pages };
        let field = |at: usize| u32::from_be_bytes(p1[at..at + 4].try_into().unwrap());
        let in_header = field(28);
        // The in-header size is valid only when the change counter matches "version-valid-for".
        if field(24) == field(92) && in_header > 0 && in_header < self.size_pages {
            in_header
        } else {
            self.size_pages
        }
    }

    /// A commit failed transiently and retries ran out: its outcome is unknown. Ask the store where
    /// the head is. Unmoved: not applied, and never will be (the next commit expects the same head),
    /// so the handle stays usable. Moved: re-sending the same commit id tells whether it was ours;
    /// either way SQLite already rolled back, so the handle is poisoned and must be reopened.
    fn resolve_unknown(&mut self, request: &CommitRequest, error: StoreError) -> StoreError {
        let unknown = |why: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!(
                "outcome of a commit of database '{}' is unknown ({why}); reopen the database",
                self.database
            ))
        };
        let resolved = match self.store.get_pages(&self.database, &[], self.head.txid) {
            // The head did not move: the commit was not applied, and never will be (the next
            // commit expects the same head). The handle stays usable.
            Ok(_) => return error,
            // The head moved: re-sending the same commit id says whether it was ours.
            Err(StoreError::HeadMoved { .. }) => match self.store.commit(request) {
                Ok(out) if out.replayed => StoreError::Unavailable(format!(
                    "a commit of database '{}' was applied although its reply was lost; reopen the database to see it",
                    self.database
                )),
                Ok(_) => unknown(&"the store applied a commit twice"),
                Err(e @ (StoreError::HeadMoved { .. } | StoreError::Fenced { .. })) => StoreError::Fenced {
                    database: self.database.clone(),
                    generation: self.generation,
                    current: match e {
                        StoreError::Fenced { current, .. } => current,
                        _ => self.generation,
                    },
                },
                Err(other) => unknown(&other),
            },
            Err(other) => unknown(&other),
        };
        // SQLite already rolled the transaction back; whatever the store holds, this handle's view
        // may differ from it, so it stops here.
        self.poisoned = Some(resolved.clone());
        resolved
    }

    fn with_retry<T>(
        &mut self,
        mut call: impl FnMut(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = self.clock.now();
        let deadline = started + self.retry.backoff * self.retry.attempts * 4;
        let mut attempt = 1;
        loop {
            match call(self) {
                Err(e)
                    if e.is_transient() && attempt < self.retry.attempts && self.clock.now() < deadline =>
                {
                    // The store's message names no credentials (the stores keep them out).
                    tracing::warn!(
                        database = %self.database,
                        attempt,
                        elapsed_ms = (self.clock.now() - started).as_millis() as u64,
                        error = %e,
                        "store call failed transiently; retrying"
                    );
                    self.clock.sleep(self.retry.backoff * attempt);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}
