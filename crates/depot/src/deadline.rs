//! Deadlines for store calls: a store that hangs fails the call instead of holding a worker forever.
//!
//! Each call runs on a short-lived thread and the caller waits at most the deadline. On timeout the
//! caller gets [`StoreError::Unavailable`] (for a commit: outcome unknown, which the client resolves
//! by commit id) while the hung call finishes, or not, on its own thread. A thread per call costs
//! tens of microseconds: meant for remote stores, where a round trip costs more than that.

use std::sync::Arc;
use std::time::Duration;

use crate::{CommitOutcome, CommitRequest, Opened, Page, PageNo, PageStore, StoreError, Txid};

/// Wraps a store so that every call has a deadline.
pub struct DeadlineStore {
    inner: Arc<dyn PageStore>,
    timeout: Duration,
}

impl DeadlineStore {
    pub fn new(inner: Arc<dyn PageStore>, timeout: Duration) -> DeadlineStore {
        DeadlineStore { inner, timeout }
    }

    fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&dyn PageStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let inner = self.inner.clone();
        std::thread::Builder::new()
            .name("depot-store-call".into())
            .spawn(move || {
                let _ = tx.send(f(&*inner));
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start a store call: {e}")))?;
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(StoreError::Unavailable(format!(
                "store call {what} did not answer within {} ms",
                self.timeout.as_millis()
            ))),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(StoreError::Unavailable(format!("store call {what} failed without an answer")))
            }
        }
    }
}

impl PageStore for DeadlineStore {
    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        let (database, preload) = (database.to_string(), preload.to_vec());
        self.call("open", move |s| s.open(&database, generation, &preload))
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        let (database, pages) = (database.to_string(), pages.to_vec());
        self.call("get_pages", move |s| s.get_pages(&database, &pages, at))
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        let request = request.clone();
        self.call("commit", move |s| s.commit(&request))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn save_hints(&self, database: &str, generation: u64, pages: &[PageNo]) -> Result<(), StoreError> {
        let (database, pages) = (database.to_string(), pages.to_vec());
        self.call("save_hints", move |s| s.save_hints(&database, generation, &pages))
    }
}
