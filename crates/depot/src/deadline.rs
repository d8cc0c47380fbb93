//! Deadlines for store calls: a store that hangs fails the call instead of holding a worker forever.
//!
//! Each call runs on a thread of a small pool and the caller waits at most the deadline. On timeout
//! the caller gets [`StoreError::Unavailable`] (for a commit: outcome unknown, which the client
//! resolves by commit id) while the hung call finishes, or not, on its own thread; the pool starts
//! another thread for the next call meanwhile. Reusing threads matters: a new thread per call cost
//! a clone, a stack mapping and its unmapping each time (a fifth of the chaos harness's CPU).
//! The wait reads time through the store stack's [`Clock`]; on a simulated clock, a call that
//! cannot wait on it runs on the caller's thread.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{run_as_task, Clock, Done};
use crate::{
    CommitInfo, CommitOutcome, CommitRequest, Head, LeaseId, Opened, Page, PageNo, PageStore, Restored,
    StoreError, Txid,
};

/// Idle pool threads kept for the next calls; more than that exit once their call is done.
const MAX_IDLE: usize = 16;
/// An idle pool thread exits after this long without a call (real time: it only frees a thread).
const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// Threads that run store calls, one pool per process; an idle one waits on its own channel.
struct Pool {
    idle: Mutex<Vec<Sender<Job>>>,
}

static POOL: Pool = Pool { idle: Mutex::new(Vec::new()) };

impl Pool {
    fn run(&'static self, mut job: Job) -> std::io::Result<()> {
        loop {
            let Some(idle) = self.idle.lock().unwrap().pop() else { break };
            match idle.send(job) {
                Ok(()) => return Ok(()),
                // That thread exited after its idle time: try the next one.
                Err(returned) => job = returned.0,
            }
        }
        let (tx, rx) = channel();
        tx.send(job).expect("a new channel takes a job");
        std::thread::Builder::new().name("depot-store-call".into()).spawn(move || self.serve(tx, rx))?;
        Ok(())
    }

    fn serve(&self, tx: Sender<Job>, rx: Receiver<Job>) {
        while let Ok(job) = rx.recv_timeout(IDLE_EXIT) {
            job();
            let mut idle = self.idle.lock().unwrap();
            if idle.len() >= MAX_IDLE {
                return;
            }
            idle.push(tx.clone());
        }
    }
}

/// Wraps a store so that every call has a deadline.
pub struct DeadlineStore {
    inner: Arc<dyn PageStore>,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl DeadlineStore {
    /// Deadlines on the inner store's clock.
    pub fn new(inner: Arc<dyn PageStore>, timeout: Duration) -> DeadlineStore {
        let clock = inner.clock();
        DeadlineStore::with_clock(inner, timeout, clock)
    }

    pub fn with_clock(inner: Arc<dyn PageStore>, timeout: Duration, clock: Arc<dyn Clock>) -> DeadlineStore {
        DeadlineStore { inner, timeout, clock }
    }

    fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&dyn PageStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.clock.is_simulated() && !self.inner.may_wait_on_clock() {
            // Simulated time passes only while something waits on the clock: a call that does not
            // cannot miss its deadline, so the hand-over to another thread would buy nothing.
            return f(&*self.inner);
        }
        let answer = Arc::new((Done::default(), Mutex::new(None)));
        let deadline = self.clock.now() + self.timeout;
        let (inner, clock, slot) = (self.inner.clone(), self.clock.clone(), answer.clone());
        self.clock.task_started();
        let started = POOL.run(Box::new(move || {
            // A panicking store (a bug) must still end the task, or a virtual clock would wait on
            // it forever; the caller sees "failed without an answer".
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_as_task(|| f(&*inner))));
            *slot.1.lock().unwrap() = result.ok();
            slot.0.set();
            clock.task_finished();
        }));
        if let Err(e) = started {
            self.clock.task_finished();
            return Err(StoreError::Unavailable(format!("cannot start a store call: {e}")));
        }
        if !self.clock.wait_done(&answer.0, deadline) {
            return Err(StoreError::Unavailable(format!(
                "store call {what} did not answer within {} ms",
                self.timeout.as_millis()
            )));
        }
        let result = answer.1.lock().unwrap().take();
        result.unwrap_or_else(|| {
            Err(StoreError::Unavailable(format!("store call {what} failed without an answer")))
        })
    }
}

impl PageStore for DeadlineStore {
    fn history_window(&self) -> std::time::Duration {
        self.inner.history_window()
    }

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

    fn databases(&self) -> Result<Vec<String>, StoreError> {
        self.call("databases", |s| s.databases())
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn may_wait_on_clock(&self) -> bool {
        self.inner.may_wait_on_clock()
    }

    fn save_hints(&self, database: &str, generation: u64, pages: &[PageNo]) -> Result<(), StoreError> {
        let (database, pages) = (database.to_string(), pages.to_vec());
        self.call("save_hints", move |s| s.save_hints(&database, generation, &pages))
    }

    fn history(
        &self,
        database: &str,
        limit: usize,
        before: Option<Txid>,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        let database = database.to_string();
        self.call("history", move |s| s.history(&database, limit, before))
    }

    fn txid_at_time(&self, database: &str, time_ms: u64) -> Result<Txid, StoreError> {
        let database = database.to_string();
        self.call("txid_at_time", move |s| s.txid_at_time(&database, time_ms))
    }

    fn read_at(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
    ) -> Result<(u32, Vec<Option<Page>>), StoreError> {
        let (database, pages) = (database.to_string(), pages.to_vec());
        self.call("read_at", move |s| s.read_at(&database, &pages, at))
    }

    fn restore(
        &self,
        database: &str,
        at: Txid,
        generation: Option<u64>,
        id: u128,
    ) -> Result<Restored, StoreError> {
        let database = database.to_string();
        self.call("restore", move |s| s.restore(&database, at, generation, id))
    }

    fn fork(&self, source: &str, target: &str, at: Option<Txid>, id: u128) -> Result<Head, StoreError> {
        let (source, target) = (source.to_string(), target.to_string());
        self.call("fork", move |s| s.fork(&source, &target, at, id))
    }

    fn lease(&self, database: &str, at: Txid) -> Result<LeaseId, StoreError> {
        let database = database.to_string();
        self.call("lease", move |s| s.lease(&database, at))
    }

    fn release(&self, database: &str, lease: LeaseId) {
        // Best effort and bounded like every call; a release that times out lapses on its own.
        let database = database.to_string();
        let _ = self.call("release", move |s| {
            s.release(&database, lease);
            Ok(())
        });
    }
}
