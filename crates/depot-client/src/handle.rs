//! `NativeDatabaseHandle`: the caller's side of one database.
//!
//! Every call is a message to the worker with a reply callback; nothing here waits on SQLite or the
//! store. The blocking conveniences (`exec`, `execute`, ...) wrap the same path with a one-shot channel
//! for Rust callers and tests.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{bounded, unbounded, Sender};
use depot::PageStore;

use crate::control::{CallOptions, Control};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::session::Session;
use crate::session::{Behavior, TxId};
use crate::worker::{self, BoxJob, Reply, Shared, State, Task};
use crate::{Error, ErrorCode, ExecuteResult, Params, Responder, Statement};

/// How long `close()` waits for the worker before reporting ERR_CLOSE_TIMEOUT.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of one open database.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Writer generation to claim; `None` claims the next one (fencing every earlier writer).
    pub generation: Option<u64>,
    /// Bytes of the VFS page cache (behind SQLite's own cache).
    pub cache_bytes: usize,
    /// Calls that may be in flight (accepted, not yet answered); one more is rejected with
    /// ERR_OVERLOADED.
    pub max_queue: usize,
    /// Largest transaction, in bytes of pages written; a larger one fails with ERR_TOO_LARGE and
    /// leaves the database as it was.
    pub max_commit_bytes: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            generation: None,
            cache_bytes: 16 << 20,
            max_queue: 128,
            max_commit_bytes: crate::vfs::DEFAULT_MAX_COMMIT_BYTES,
        }
    }
}

struct Inner {
    shared: Arc<Shared>,
    commands: Sender<BoxJob>,
    close: Sender<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
    max_queue: usize,
}

/// One open database. Cheap to clone; all clones share the worker.
#[derive(Clone)]
pub struct NativeDatabaseHandle {
    inner: Arc<Inner>,
}

impl NativeDatabaseHandle {
    /// Opens `name` and waits until its connection is ready.
    pub fn open(
        store: Arc<dyn PageStore>,
        name: &str,
        opts: OpenOptions,
    ) -> Result<NativeDatabaseHandle, Error> {
        let (tx, rx) = bounded(1);
        Self::open_with(
            store,
            name.to_string(),
            opts,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or_else(|_| Err(Error::new(ErrorCode::WorkerDead, "the worker exited during open")))
    }

    /// Starts the worker of `name`; `reply` is called from the worker thread once the connection is
    /// open, or with the error that prevented it.
    pub fn open_with(
        store: Arc<dyn PageStore>,
        name: String,
        opts: OpenOptions,
        reply: Responder<NativeDatabaseHandle>,
    ) {
        if let Err(e) = depot::validate_name(&name) {
            return reply(Err(e.into()));
        }
        let max_queue = opts.max_queue.max(1);
        // Unbounded: admission (the in-flight count against `max_queue`) bounds it.
        let (commands, command_rx) = unbounded::<BoxJob>();
        let (close, close_rx) = bounded::<()>(1);
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared::new(name.clone(), metrics.clone()));
        let inner =
            Arc::new(Inner { shared: shared.clone(), commands, close, thread: Mutex::new(None), max_queue });
        let handle = NativeDatabaseHandle { inner: inner.clone() };
        let ready: Box<dyn FnOnce(Result<(), Error>) + Send> = Box::new(move |r| reply(r.map(|()| handle)));
        let open = move || Session::open(store, &name, &opts, metrics);
        let spawned = std::thread::Builder::new()
            .name(format!("depot-db-{}", inner.shared.database))
            .stack_size(512 << 10)
            .spawn(move || worker::run(open, ready, command_rx, close_rx, shared));
        match spawned {
            Ok(t) => *inner.thread.lock().unwrap() = Some(t),
            // The closure (and the reply inside it) is gone with the failed spawn; nothing to answer.
            Err(e) => tracing::error!(error = %e, "cannot spawn a database worker thread"),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.shared.database
    }

    /// Runs `work` on the worker and answers `reply` with its result.
    ///
    /// Admission is honest: `queue_depth` counts every accepted call not yet answered (queued,
    /// running, or waiting behind a transaction), and a call that would pass `max_queue` is refused
    /// at once. Commands of an open interactive transaction are exempt, so a full queue of calls
    /// waiting behind a transaction cannot stop it from finishing.
    fn submit<T: Send + 'static>(
        &self,
        transaction: Option<TxId>,
        call: &CallOptions,
        work: impl FnOnce(&mut Session) -> Result<T, Error> + Send + 'static,
        reply: Responder<T>,
    ) -> bool {
        let shared = &self.inner.shared;
        match shared.state() {
            State::Running => {}
            State::Dead => {
                reply(Err(Error::dead(&shared.database)));
                return false;
            }
            _ => {
                reply(Err(Error::closed(&shared.database)));
                return false;
            }
        }
        let m = &shared.metrics;
        let limit = if transaction.is_some() { u64::MAX } else { self.inner.max_queue as u64 };
        if let Err(depth) =
            m.queue_depth.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| (d < limit).then_some(d + 1))
        {
            m.rejected.fetch_add(1, Ordering::Relaxed);
            let mut e = Error::new(
                ErrorCode::Overloaded,
                format!(
                    "database '{}' is overloaded: {depth} calls are in flight (limit {})",
                    shared.database, self.inner.max_queue
                ),
            );
            e.overload = Some((depth, self.inner.max_queue as u64));
            reply(Err(e));
            return false;
        }
        let job = Task {
            work: Box::new(work),
            control: Control::new(call),
            transaction,
            reply: Reply::new(reply, shared.clone()),
        };
        if let Err(e) = self.inner.commands.send(Box::new(job)) {
            e.into_inner().reject(Error::closed(&shared.database));
        }
        true
    }

    /// From now on an answered call keeps its admission slot until [`Self::release_slot`]: the
    /// NAPI layer releases it once JavaScript has the answer, so `max_queue` also bounds answers
    /// still waiting for the JS thread.
    pub fn set_caller_releases_slots(&self, on: bool) {
        self.inner.shared.caller_releases.store(on, Ordering::SeqCst);
    }

    /// The worker's "not parked" flag: true while it runs or spins for its next command, so a
    /// call made then is picked up without a thread wake-up. Callers read it to decide whether
    /// waiting briefly for an answer can pay off.
    pub fn awake_flag(&self) -> Arc<AtomicBool> {
        self.inner.shared.awake.clone()
    }

    /// Gives back the admission slot of one answered call (see [`Self::set_caller_releases_slots`]).
    pub fn release_slot(&self) {
        let _ = self
            .inner
            .shared
            .metrics
            .queue_depth
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| d.checked_sub(1));
    }

    // The non-blocking calls below return whether the call was accepted; a call refused up front
    // has had its reply answered already, on the caller's thread.

    /// Runs several `;`-separated statements without parameters.
    pub fn exec_with(&self, sql: String, reply: Responder<()>) -> bool {
        self.exec_opts(sql, None, &CallOptions::default(), reply)
    }

    /// Runs one statement; answers columns, rows, changes and last insert rowid.
    pub fn execute_with(&self, sql: String, params: Params, reply: Responder<ExecuteResult>) -> bool {
        self.execute_opts(sql, params, None, &CallOptions::default(), reply)
    }

    /// Runs statements atomically: all of them or none.
    pub fn batch_with(&self, statements: Vec<Statement>, reply: Responder<Vec<ExecuteResult>>) -> bool {
        self.batch_opts(statements, None, &CallOptions::default(), reply)
    }

    /// `exec_with`, inside transaction `tx` (if given), with cancellation and a deadline.
    pub fn exec_opts(&self, sql: String, tx: Option<TxId>, call: &CallOptions, reply: Responder<()>) -> bool {
        self.submit(tx, call, move |s| s.exec(&sql), reply)
    }

    /// `execute_with`, inside transaction `tx` (if given), with cancellation and a deadline.
    pub fn execute_opts(
        &self,
        sql: String,
        params: Params,
        tx: Option<TxId>,
        call: &CallOptions,
        reply: Responder<ExecuteResult>,
    ) -> bool {
        self.submit(tx, call, move |s| s.execute(&sql, &params), reply)
    }

    /// `batch_with`, inside transaction `tx` (if given, as a savepoint), with cancellation and a deadline.
    pub fn batch_opts(
        &self,
        statements: Vec<Statement>,
        tx: Option<TxId>,
        call: &CallOptions,
        reply: Responder<Vec<ExecuteResult>>,
    ) -> bool {
        self.submit(tx, call, move |s| s.execute_batch(&statements), reply)
    }

    /// Begins an interactive transaction pinned to the worker: until it ends, other calls wait
    /// behind it in arrival order. After `timeout` it is rolled back and its later commands fail
    /// with ERR_TIMEOUT.
    pub fn begin_with(&self, behavior: Behavior, timeout: Option<Duration>, reply: Responder<TxId>) -> bool {
        self.submit(None, &CallOptions::default(), move |s| s.begin(behavior, timeout), reply)
    }

    /// Commits (`commit = true`) or rolls back transaction `tx`.
    pub fn end_with(&self, tx: TxId, commit: bool, reply: Responder<()>) -> bool {
        self.submit(Some(tx), &CallOptions::default(), move |s| s.end(tx, commit), reply)
    }

    /// Opens a streaming cursor; answers its id and column names.
    pub fn cursor_open_with(
        &self,
        sql: String,
        params: Params,
        tx: Option<TxId>,
        call: &CallOptions,
        reply: Responder<(TxId, Vec<String>)>,
    ) -> bool {
        self.submit(tx, call, move |s| s.cursor_open(&sql, &params), reply)
    }

    /// Up to `max_rows` more rows of cursor `id`, and whether it is exhausted (then it is closed).
    pub fn cursor_next_with(
        &self,
        id: TxId,
        max_rows: usize,
        tx: Option<TxId>,
        call: &CallOptions,
        reply: Responder<(Vec<Vec<crate::Value>>, bool)>,
    ) -> bool {
        self.submit(tx, call, move |s| s.cursor_next(id, max_rows), reply)
    }

    /// Finalizes cursor `id` (breaking out of an iteration early).
    pub fn cursor_close_with(&self, id: TxId, tx: Option<TxId>, reply: Responder<()>) -> bool {
        self.submit(
            tx,
            &CallOptions::default(),
            move |s| {
                s.cursor_close(id);
                Ok(())
            },
            reply,
        )
    }

    fn wait<T: Send + 'static, A>(&self, call: impl FnOnce(Responder<T>) -> A) -> Result<T, Error> {
        let (tx, rx) = bounded(1);
        call(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        rx.recv().unwrap_or_else(|_| Err(Error::dead(self.name())))
    }

    pub fn exec(&self, sql: &str) -> Result<(), Error> {
        self.wait(|r| self.exec_with(sql.to_string(), r))
    }

    pub fn execute(&self, sql: &str, params: Params) -> Result<ExecuteResult, Error> {
        self.wait(|r| self.execute_with(sql.to_string(), params, r))
    }

    /// `execute` keeping columns and rows.
    pub fn query(&self, sql: &str, params: Params) -> Result<(Vec<String>, Vec<Vec<crate::Value>>), Error> {
        self.execute(sql, params).map(|r| (r.columns, r.rows))
    }

    /// `execute` keeping changes and last insert rowid.
    pub fn run(&self, sql: &str, params: Params) -> Result<(u64, Option<i64>), Error> {
        self.execute(sql, params).map(|r| (r.changes, r.last_insert_rowid))
    }

    pub fn execute_batch(&self, statements: Vec<Statement>) -> Result<Vec<ExecuteResult>, Error> {
        self.wait(|r| self.batch_with(statements, r))
    }

    /// Closes the database: queued calls fail with ERR_CLOSED, the connection is dropped on the
    /// worker, then this returns. Waits at most [`CLOSE_TIMEOUT`]; on timeout the worker is left to
    /// finish in the background and ERR_CLOSE_TIMEOUT is returned. Closing twice is fine.
    pub fn close(&self) -> Result<(), Error> {
        self.close_within(CLOSE_TIMEOUT)
    }

    /// Starts closing without waiting: from now on every new call fails with ERR_CLOSED, and the
    /// worker closes after the command it is running. `close()` then waits for it.
    pub fn request_close(&self) {
        self.inner.shared.begin_close();
        // Capacity 1: if a close request is already waiting, that one will do.
        let _ = self.inner.close.try_send(());
    }

    pub fn close_within(&self, timeout: Duration) -> Result<(), Error> {
        let shared = &self.inner.shared;
        self.request_close();
        if shared.wait_finished(timeout) {
            if let Some(t) = self.inner.thread.lock().unwrap().take() {
                let _ = t.join();
            }
            return Ok(());
        }
        if let Some(t) = self.inner.thread.lock().unwrap().take() {
            // Joined in the background; the worker unregisters its VFS itself once its callback ends.
            let _ = std::thread::Builder::new().name("depot-close-join".into()).spawn(move || {
                let _ = t.join();
            });
        }
        Err(Error::new(
            ErrorCode::CloseTimeout,
            format!(
                "database '{}' did not close within {} ms; it will close when its current call ends",
                shared.database,
                timeout.as_millis()
            ),
        ))
    }

    /// Whether the handle still accepts calls.
    pub fn is_open(&self) -> bool {
        self.inner.shared.state() == State::Running
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.shared.metrics.snapshot()
    }

    /// Test hook: runs `f` on the worker as a command (to block it, or to make it panic).
    #[cfg(feature = "test-hooks")]
    pub fn run_on_worker_with(&self, f: impl FnOnce() + Send + 'static, reply: Responder<()>) {
        self.submit(None, &CallOptions::default(), move |_| Ok(f()), reply);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if matches!(self.shared.state(), State::Running | State::Opening | State::Dead) {
            tracing::warn!(database = %self.shared.database, "database handle dropped without close(); closing it in the background");
            self.shared.begin_close();
            let _ = self.close.try_send(());
        }
    }
}
