//! A test-only fault layer: wraps a store and fails chosen calls on purpose.
//!
//! Compiled only with the `test-hooks` feature, which release builds of the addon never enable.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{
    Clock, CommitInfo, CommitOutcome, CommitRequest, Head, LeaseId, Opened, Page, PageNo, PageStore,
    Restored, StoreError, Txid,
};

/// Faults that fire on the next matching calls; each counter is decremented as it fires.
#[derive(Default)]
pub struct Faults {
    /// `get_pages` fails with `Unavailable`.
    pub fail_reads: AtomicU32,
    /// `commit` fails with `Unavailable` before anything is applied.
    pub fail_commits_before: AtomicU32,
    /// `commit` is applied, then the reply is lost (`Unavailable`).
    pub lose_commit_replies: AtomicU32,
    /// `get_pages` panics (a bug in a backend).
    pub panic_reads: AtomicU32,
    /// `get_pages` answers with one byte of each page flipped (bit rot between store and client).
    pub corrupt_reads: AtomicU32,
    /// Calls (any kind) hang for `hang_ms` before going on.
    pub hang_calls: AtomicU32,
    pub hang_ms: AtomicU64,
    /// `commit` is the last thing its process does: applied (if `crash_applies`) or not, and then
    /// this store is dead: that call and every later one hang for `hang_ms` (set it past the
    /// caller's deadline) and then fail without touching the inner store, as a process that died
    /// mid-commit never answers.
    pub crash_commits: AtomicU32,
    pub crash_applies: AtomicBool,
    /// Set once a crash fault fired.
    pub dead: AtomicBool,
    /// Calls seen, for assertions.
    pub reads: AtomicU64,
    pub commits: AtomicU64,
}

fn take(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

/// A [`PageStore`] that forwards to `inner` unless a fault is armed.
pub struct FaultStore {
    inner: Arc<dyn PageStore>,
    clock: Arc<dyn Clock>,
    pub faults: Arc<Faults>,
}

impl FaultStore {
    /// Faults on the inner store's clock (hangs sleep on it).
    pub fn new(inner: Arc<dyn PageStore>) -> FaultStore {
        let clock = inner.clock();
        FaultStore::with_clock(inner, clock)
    }

    pub fn with_clock(inner: Arc<dyn PageStore>, clock: Arc<dyn Clock>) -> FaultStore {
        FaultStore { inner, clock, faults: Arc::new(Faults::default()) }
    }

    /// A read with the read faults applied: counted, maybe hung, panicking, failing or corrupted.
    fn read_call(
        &self,
        read: impl FnOnce() -> Result<Vec<Option<Page>>, StoreError>,
    ) -> Result<Vec<Option<Page>>, StoreError> {
        self.faults.reads.fetch_add(1, Ordering::SeqCst);
        self.maybe_hang()?;
        if take(&self.faults.panic_reads) {
            panic!("injected panic in a page read");
        }
        if take(&self.faults.fail_reads) {
            return Err(StoreError::Unavailable("injected read failure".into()));
        }
        let mut answer = read()?;
        if take(&self.faults.corrupt_reads) {
            for page in answer.iter_mut().flatten() {
                let mut bytes = page.data.to_vec();
                bytes[100] ^= 0x40;
                page.data = Arc::from(bytes);
            }
        }
        Ok(answer)
    }

    /// Hangs if a hang is armed; a dead store hangs for good and then fails.
    fn maybe_hang(&self) -> Result<(), StoreError> {
        self.unless_dead()?;
        if take(&self.faults.hang_calls) {
            self.clock.sleep(Duration::from_millis(self.faults.hang_ms.load(Ordering::SeqCst)));
        }
        Ok(())
    }

    /// A call that writes (commit, restore, fork) under the commit faults: a hang, a crash before
    /// or after applying, a failure before applying, a reply lost after applying.
    fn write_call<T>(&self, apply: impl Fn() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.faults.commits.fetch_add(1, Ordering::SeqCst);
        self.maybe_hang()?;
        if take(&self.faults.crash_commits) {
            if self.faults.crash_applies.load(Ordering::SeqCst) {
                let _ = apply();
            }
            self.die()?;
        }
        if take(&self.faults.fail_commits_before) {
            return Err(StoreError::Unavailable("injected commit failure".into()));
        }
        let out = apply()?;
        if take(&self.faults.lose_commit_replies) {
            return Err(StoreError::Unavailable("injected lost commit reply".into()));
        }
        Ok(out)
    }

    /// Opens and hints never hang on purpose, but a dead store answers nothing.
    fn unless_dead(&self) -> Result<(), StoreError> {
        if self.faults.dead.load(Ordering::SeqCst) {
            return self.die();
        }
        Ok(())
    }

    fn die(&self) -> Result<(), StoreError> {
        self.faults.dead.store(true, Ordering::SeqCst);
        self.clock.sleep(Duration::from_millis(self.faults.hang_ms.load(Ordering::SeqCst)));
        Err(StoreError::Unavailable("injected crash: this store's process is gone".into()))
    }
}

impl PageStore for FaultStore {
    fn history_window(&self) -> std::time::Duration {
        self.inner.history_window()
    }

    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        self.unless_dead()?;
        self.inner.open(database, generation, preload)
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        self.read_call(|| self.inner.get_pages(database, pages, at))
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        self.write_call(|| self.inner.commit(request))
    }

    fn databases(&self) -> Result<Vec<String>, StoreError> {
        self.unless_dead()?;
        self.inner.databases()
    }

    fn describe(&self) -> String {
        format!("fault({})", self.inner.describe())
    }

    fn save_hints(&self, database: &str, generation: u64, pages: &[PageNo]) -> Result<(), StoreError> {
        self.unless_dead()?;
        self.inner.save_hints(database, generation, pages)
    }

    // History calls pass through; a dead store answers none of them.
    fn history(
        &self,
        database: &str,
        limit: usize,
        before: Option<Txid>,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        self.unless_dead()?;
        self.inner.history(database, limit, before)
    }

    fn txid_at_time(&self, database: &str, time_ms: u64) -> Result<Txid, StoreError> {
        self.unless_dead()?;
        self.inner.txid_at_time(database, time_ms)
    }

    fn read_at(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
    ) -> Result<(u32, Vec<Option<Page>>), StoreError> {
        // A snapshot reader's reads: the read faults hit them as they hit the writer's.
        let mut size = 0;
        let pages = self.read_call(|| {
            let (s, pages) = self.inner.read_at(database, pages, at)?;
            size = s;
            Ok(pages)
        })?;
        Ok((size, pages))
    }

    // A restore and a fork write like a commit: the commit faults hit them too.
    fn restore(
        &self,
        database: &str,
        at: Txid,
        generation: Option<u64>,
        id: u128,
    ) -> Result<Restored, StoreError> {
        self.write_call(|| self.inner.restore(database, at, generation, id))
    }

    fn fork(&self, source: &str, target: &str, at: Option<Txid>, id: u128) -> Result<Head, StoreError> {
        self.write_call(|| self.inner.fork(source, target, at, id))
    }

    fn lease(&self, database: &str, at: Txid) -> Result<LeaseId, StoreError> {
        self.unless_dead()?;
        self.inner.lease(database, at)
    }

    fn release(&self, database: &str, lease: LeaseId) {
        self.inner.release(database, lease)
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn may_wait_on_clock(&self) -> bool {
        let f = &self.faults;
        f.dead.load(Ordering::SeqCst)
            || f.hang_calls.load(Ordering::SeqCst) > 0
            || f.crash_commits.load(Ordering::SeqCst) > 0
            || self.inner.may_wait_on_clock()
    }
}
