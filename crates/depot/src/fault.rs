//! A test-only fault layer: wraps a store and fails chosen calls on purpose.
//!
//! Compiled only with the `test-hooks` feature, which release builds of the addon never enable.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::{CommitOutcome, CommitRequest, Opened, Page, PageNo, PageStore, StoreError, Txid};

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
    pub faults: Arc<Faults>,
}

impl FaultStore {
    pub fn new(inner: Arc<dyn PageStore>) -> FaultStore {
        FaultStore { inner, faults: Arc::new(Faults::default()) }
    }

    fn maybe_hang(&self) {
        if take(&self.faults.hang_calls) {
            std::thread::sleep(std::time::Duration::from_millis(self.faults.hang_ms.load(Ordering::SeqCst)));
        }
    }
}

impl PageStore for FaultStore {
    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        self.inner.open(database, generation, preload)
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        self.faults.reads.fetch_add(1, Ordering::SeqCst);
        self.maybe_hang();
        if take(&self.faults.panic_reads) {
            panic!("injected panic in get_pages");
        }
        if take(&self.faults.fail_reads) {
            return Err(StoreError::Unavailable("injected read failure".into()));
        }
        let mut answer = self.inner.get_pages(database, pages, at)?;
        if take(&self.faults.corrupt_reads) {
            for page in answer.iter_mut().flatten() {
                let mut bytes = page.data.to_vec();
                bytes[100] ^= 0x40;
                page.data = Arc::from(bytes);
            }
        }
        Ok(answer)
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        self.faults.commits.fetch_add(1, Ordering::SeqCst);
        self.maybe_hang();
        if take(&self.faults.fail_commits_before) {
            return Err(StoreError::Unavailable("injected commit failure".into()));
        }
        let out = self.inner.commit(request)?;
        if take(&self.faults.lose_commit_replies) {
            return Err(StoreError::Unavailable("injected lost commit reply".into()));
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("fault({})", self.inner.describe())
    }

    fn save_hints(&self, database: &str, generation: u64, pages: &[PageNo]) -> Result<(), StoreError> {
        self.inner.save_hints(database, generation, pages)
    }
}
