//! `Database`: the caller's side of one database.
//!
//! Every call is one [`Command`] sent to the worker through [`Database::call`], with a responder
//! that receives the answer and the call's admission; nothing here waits on SQLite or the store.
//! Blocking helpers for Rust callers and tests are in `crate::blocking`.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Sender};
use depot::PageStore;

use crate::admission::Gate;
use crate::command::{Answer, CallOptions, Command, Responder};
use crate::control::Control;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::readers::{Readers, Route};
use crate::session::Session;
use crate::vfs::SharedPages;
use crate::worker::{self, Opener, Parked, Reply, Shared, State, Task};
use crate::{Admission, Error, ErrorCode, OpenOptions};

/// How much longer than its deadline a synchronous call waits for the worker's answer.
const SYNC_GRACE: Duration = Duration::from_secs(1);

/// How long `close()` waits for the worker before reporting ERR_CLOSE_TIMEOUT.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls in flight from one caller (`CallOptions::in_flight`) from which its reads no longer run
/// on its thread. With 64 point selects in flight, ~10% ran there before, under 1% since; a call
/// took 6.5 µs before and 5.8 µs since (means of 11 alternating runs, 8 of them faster: noisy).
pub const CALLER_BURST: usize = 8;

struct Inner {
    shared: Arc<Shared>,
    /// The store stack's clock: call deadlines are read on it.
    clock: Arc<dyn depot::Clock>,
    gate: Arc<Gate>,
    commands: Sender<Task>,
    close: Sender<()>,
    /// Opens the session again when a call wakes the hibernating database. It holds the store:
    /// dropped once the database closes, so that a closed database no longer keeps its store (and a
    /// file store's directory lock) alive.
    opener: Mutex<Option<Opener>>,
    idle: Option<Duration>,
    stack: usize,
    /// The snapshot readers (none for `readers: 0` and for a handle on a point of the history).
    readers: Option<Readers>,
}

/// Answers the opener exactly once: from the worker, or from `open_with` when no worker started.
type OpenReply = Box<dyn FnOnce(Result<Database, Error>) + Send>;

/// One open database. Cheap to clone; all clones share the worker.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

impl Database {
    /// Starts the worker of `name`; `reply` is called once the connection is open, or with the
    /// error that prevented it (also when no thread could be started for the worker).
    pub fn open_with(store: Arc<dyn PageStore>, name: String, opts: OpenOptions, reply: OpenReply) {
        Self::open_on_stack(store, name, opts, reply, WORKER_STACK)
    }

    fn open_on_stack(
        store: Arc<dyn PageStore>,
        name: String,
        opts: OpenOptions,
        reply: OpenReply,
        stack: usize,
    ) {
        if let Err(e) = depot::validate_name(&name) {
            return reply(Err(e.into()));
        }
        // Unbounded: admission (the gate) bounds it.
        let (commands, command_rx) = unbounded::<Task>();
        let (close, close_rx) = bounded::<()>(1);
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared::new(name.clone(), metrics.clone()));
        let gate = Gate::new(opts.max_queue as u64);
        let idle = opts.idle;
        let clock = store.clock();
        let cache_pages = (opts.cache_bytes / depot::PAGE_SIZE).max(16);
        let unopened =
            depot::Head { txid: 0, size_pages: 0, page_size: depot::PAGE_SIZE as u32, generation: 0 };
        let pages = SharedPages::new(cache_pages, unopened);
        let readers = (opts.readers > 0 && opts.at.is_none()).then(|| {
            Readers::new(
                opts.readers,
                store.clone(),
                name.clone(),
                opts.clone(),
                pages.clone(),
                shared.clone(),
            )
        });
        let opener: Opener = Arc::new(move |resume| {
            let mut opts = opts.clone();
            if let Some(r) = resume {
                // The same writer again: a newer one that took over meanwhile fences it.
                opts.generation = Some(r.generation);
            }
            Session::open(store.clone(), &name, &opts, metrics.clone(), &pages)
        });
        let inner = Arc::new(Inner {
            shared: shared.clone(),
            clock,
            gate,
            commands,
            close,
            opener: Mutex::new(Some(opener.clone())),
            idle,
            stack,
            readers,
        });
        let database = Database { inner: inner.clone() };
        // Shared with this thread so that a failed spawn, which drops the thread's closure, can
        // still answer.
        let reply: Arc<Mutex<Option<OpenReply>>> = Arc::new(Mutex::new(Some(reply)));
        let worker_reply = Arc::clone(&reply);
        let ready: Box<dyn FnOnce(Result<(), Error>) + Send> = Box::new(move |r| {
            if let Some(reply) = worker_reply.lock().unwrap_or_else(|e| e.into_inner()).take() {
                reply(r.map(|()| database));
            }
        });
        let spawned = spawn_worker(&inner.shared.database, stack, move || {
            worker::run(opener, ready, command_rx, close_rx, shared, idle)
        });
        match spawned {
            Ok(t) => inner.shared.keep_thread(t),
            Err(e) => {
                inner.shared.finish();
                if let Some(reply) = reply.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    reply(Err(Error::new(
                        ErrorCode::WorkerDead,
                        format!("cannot start a worker thread for database '{}': {e}", inner.shared.database),
                    )));
                }
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.shared.database
    }

    /// Submits one call: the one entry point of every command. `responder` is answered exactly
    /// once, with the call's [`Admission`] (see `crate::admission`), from the worker, or at once
    /// when the call is refused (closed, dead, or `max_queue` calls in flight). Commands of an open
    /// interactive transaction are exempt from the limit, so a full queue of calls waiting behind
    /// a transaction cannot stop it from finishing. Returns whether the call was accepted.
    pub fn call(&self, command: Command, options: &CallOptions, responder: Responder) -> bool {
        let shared = &self.inner.shared;
        match shared.state() {
            State::Running => {}
            State::Dead => {
                responder(Err(Error::dead(&shared.database)), Admission::none());
                return false;
            }
            _ => {
                responder(Err(Error::closed(&shared.database)), Admission::none());
                return false;
            }
        }
        let transaction = command.transaction(options);
        let admission = match self.inner.gate.admit(transaction.is_some()) {
            Ok(admission) => admission,
            Err(full) => {
                Metrics::add(&shared.metrics.rejected, 1);
                let mut e = Error::new(
                    ErrorCode::Overloaded,
                    format!(
                        "database '{}' is overloaded: {} calls are in flight (limit {})",
                        shared.database, full.depth, full.limit
                    ),
                );
                e.overload = Some((full.depth, full.limit));
                responder(Err(e), Admission::none());
                return false;
            }
        };
        let route = match (&self.inner.readers, transaction) {
            (Some(readers), None) => readers.route(&command),
            _ => Route::Writer,
        };
        // A read that would wake a parked thread (the idle writer, or a reader) runs here when it
        // can (see `crate::readers`).
        let wakes_a_thread = match route {
            Route::IdleWriter => !shared.awake.load(std::sync::atomic::Ordering::SeqCst),
            Route::Reader => true,
            Route::Writer => false,
        };
        // Not in a burst of calls (`CALLER_BURST` or more in flight from the same caller): the
        // caller's thread is the bottleneck then (answers to settle, calls to make), and the read
        // costs it less on another thread. (A few in flight, such as a long query, do not count.)
        if wakes_a_thread && options.cancel.is_none() && options.in_flight < CALLER_BURST {
            let readers = self.inner.readers.as_ref().expect("routed by the readers");
            if let Some(answer) = readers.run_on_caller(&command) {
                Reply::new(responder, admission, shared.clone()).send(answer);
                return true;
            }
        }
        if route == Route::Reader {
            let readers = self.inner.readers.as_ref().expect("routed to a reader");
            // A snapshot is held at most `snapshot_max_age` (see `crate::readers`).
            let max_age = readers.max_age();
            let timeout = Some(options.timeout.map_or(max_age, |t| t.min(max_age)));
            readers.submit(Task {
                command,
                control: Control::new(options.cancel.clone(), timeout, &self.inner.clock),
                transaction,
                reply: Reply::new(responder, admission, shared.clone()),
            });
            return true;
        }
        let reply = match (&command, transaction) {
            // A BEGIN is not waited for: reads go on seeing the last commit while it is open.
            (Command::Begin { .. }, _) => Reply::new(responder, admission, shared.clone()),
            (_, None) if route == Route::IdleWriter => {
                Reply::idle_writer_read(responder, admission, shared.clone())
            }
            (Command::End { .. }, _) | (_, None) => Reply::pending(responder, admission, shared.clone()),
            _ => Reply::new(responder, admission, shared.clone()),
        };
        if matches!(command, Command::Begin { .. }) {
            shared.begins_queued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let task = Task {
            command,
            control: Control::new(options.cancel.clone(), options.timeout, &self.inner.clock),
            transaction,
            reply,
        };
        if let Err(e) = self.inner.commands.send(task) {
            e.into_inner().reject(Error::closed(&shared.database));
        }
        // Pairs with the fence in `worker::park`: either the parking worker sees this call, or
        // this sees it hibernating and starts it again.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        if shared.hibernating.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some(parked) = shared.unpark() {
                self.inner.wake(parked);
            }
        }
        true
    }

    /// Whether a call made now outside any transaction could wait behind an interactive
    /// transaction (open, or its `BEGIN` queued). Such a transaction ends only when its caller
    /// sends more, so a caller that blocks until this call is answered would wait for good.
    pub fn would_deadlock(&self) -> bool {
        let shared = &self.inner.shared;
        // Queued first: a BEGIN sets `in_transaction` before it leaves the queued count.
        shared.begins_queued.load(std::sync::atomic::Ordering::SeqCst) > 0
            || shared.in_transaction.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Runs `command` and blocks the calling thread until it is answered, at most `limit` (the
    /// call's own deadline is `limit` too, so the worker stops it then). A call outside a
    /// transaction that could wait behind an interactive transaction fails at once with
    /// ERR_WOULD_DEADLOCK instead (see [`Database::would_deadlock`]). For callers that must not
    /// return before the answer, such as a synchronous JavaScript API.
    pub fn call_sync(
        &self,
        command: Command,
        options: &CallOptions,
        limit: Duration,
    ) -> Result<Answer, Error> {
        let running = self.inner.shared.state() == State::Running;
        let on_reader = self.inner.readers.as_ref().is_some_and(|r| r.route(&command) == Route::Reader);
        if options.transaction.is_none() && running && !on_reader && self.would_deadlock() {
            return Err(Error::new(
                ErrorCode::WouldDeadlock,
                format!(
                    "database '{}' has an interactive transaction open or starting: a synchronous call \
                     outside it would wait for it, and it waits for this thread",
                    self.name()
                ),
            ));
        }
        let deadline = options.timeout.map_or(limit, |t| t.min(limit));
        let options = CallOptions { timeout: Some(deadline), ..options.clone() };
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.call(
            command,
            &options,
            Box::new(move |r, _admission| {
                let _ = tx.send(r);
            }),
        );
        // The worker answers ERR_TIMEOUT at the deadline; a worker stuck in a store call past it
        // (with no store deadline) is not waited for much longer.
        match rx.recv_timeout(deadline + SYNC_GRACE) {
            Ok(answer) => answer,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "database '{}' did not answer a synchronous call in {} ms",
                    self.name(),
                    limit.as_millis()
                ),
            )),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(Error::dead(self.name())),
        }
    }

    /// The worker's "not parked" flag: true while it runs or spins for its next command, so a
    /// call made then is picked up without a thread wake-up. Callers read it to decide whether
    /// waiting briefly for an answer can pay off.
    pub fn awake_flag(&self) -> Arc<AtomicBool> {
        self.inner.shared.awake.clone()
    }

    /// Whether a connection for reads on the caller's thread is open (see `crate::readers`).
    #[cfg(feature = "test-hooks")]
    pub fn has_caller_session(&self) -> bool {
        self.inner.shared.caller.lock().unwrap().session.is_some()
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
        if let Some(readers) = &self.inner.readers {
            readers.request_close();
        }
        // No wake-up can come any more; the worker keeps its own opener until it exits.
        self.inner.opener.lock().unwrap().take();
        // Capacity 1: if a close request is already waiting, that one will do.
        let _ = self.inner.close.try_send(());
    }

    pub fn close_within(&self, timeout: Duration) -> Result<(), Error> {
        let shared = &self.inner.shared;
        let deadline = std::time::Instant::now() + timeout;
        self.request_close();
        if let Some(parked) = shared.unpark() {
            // Hibernating: there is no thread to close, only the queue.
            shared.close_parked(parked);
        }
        // No read runs on a caller's thread once closing began (they need a running database).
        shared.drop_caller_session();
        let readers_closed = self.inner.readers.as_ref().is_none_or(|r| r.close(deadline));
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if readers_closed && shared.wait_finished(left) {
            if let Some(t) = self.inner.shared.thread.lock().unwrap().take() {
                let _ = t.join();
            }
            // The worker dropped its session; the readers' pool still shares the page cache.
            if let Some(readers) = &self.inner.readers {
                readers.forget_pages();
            }
            return Ok(());
        }
        if let Some(t) = self.inner.shared.thread.lock().unwrap().take() {
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

    /// Admission's count of calls in flight and the worker's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            queue_depth: self.inner.gate.in_flight(),
            counters: self.inner.shared.metrics.counters(),
        }
    }
}

/// Stack of a worker thread: SQLite's deepest paths (deep expression trees, nested triggers) stay
/// well inside it, and 10,000 idle databases cost 5 GiB of address space, not of memory.
const WORKER_STACK: usize = 512 << 10;

/// Starts a thread named after the database (`depot-db-<name>`).
fn spawn_worker(
    database: &str,
    stack: usize,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("depot-db-{database}")).stack_size(stack).spawn(body)
}

impl Inner {
    /// Starts a thread for the hibernating database's worker, which reopens its session and runs
    /// the calls that woke it. If no thread can start, those calls fail and it stays parked.
    fn wake(&self, parked: Parked) {
        let Some(opener) = self.opener.lock().unwrap().clone() else {
            // Closing already: the calls that woke it fail as closed.
            return self.shared.close_parked(parked);
        };
        let (shared, idle) = (self.shared.clone(), self.idle);
        let slot: Arc<Mutex<Option<Parked>>> = Arc::new(Mutex::new(Some(parked)));
        let for_thread = slot.clone();
        let spawned = spawn_worker(&self.shared.database, self.stack, move || {
            if let Some(parked) = for_thread.lock().unwrap().take() {
                worker::wake(opener, parked, shared, idle);
            }
        });
        match spawned {
            // The thread that hibernated has ended (or is ending): this one replaces it.
            Ok(t) => self.shared.keep_thread(t),
            Err(e) => {
                if let Some(parked) = slot.lock().unwrap().take() {
                    let error = Error::new(
                        ErrorCode::WorkerDead,
                        format!("cannot start a worker thread for database '{}': {e}", self.shared.database),
                    );
                    self.shared.repark(parked, error);
                }
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(readers) = &self.readers {
            readers.request_close();
        }
        if let Some(parked) = self.shared.unpark() {
            self.shared.close_parked(parked);
            return;
        }
        if matches!(self.shared.state(), State::Running | State::Opening | State::Dead) {
            tracing::warn!(database = %self.shared.database, "database handle dropped without close(); closing it in the background");
            self.shared.begin_close();
            let _ = self.close.try_send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_drops_the_page_cache_the_readers_share_though_the_handle_lives_on() {
        let (tx, rx) = bounded(1);
        let opts = OpenOptions { readers: 1, ..OpenOptions::default() };
        Database::open_on_stack(
            Arc::new(depot::MemoryStore::new()),
            "cached".into(),
            opts,
            Box::new(move |r| tx.send(r).unwrap()),
            1 << 20,
        );
        let db = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        db.exec(
            "CREATE TABLE t(v); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50) \
             INSERT INTO t SELECT randomblob(3000) FROM c",
        )
        .unwrap();
        let readers = db.inner.readers.as_ref().expect("readers: 1");
        assert!(readers.cached_pages() > 50, "the commit's pages are cached: {}", readers.cached_pages());
        db.close().unwrap();
        assert_eq!(readers.cached_pages(), 0, "a closed database keeps no page cache");
    }

    #[test]
    fn open_answers_when_no_worker_thread_can_start() {
        let (tx, rx) = bounded(1);
        // A stack no machine can map: the spawn fails and drops the thread's closure.
        Database::open_on_stack(
            Arc::new(depot::MemoryStore::new()),
            "unstartable".into(),
            OpenOptions::default(),
            Box::new(move |r| tx.send(r.map(|_| ())).unwrap()),
            1 << 46,
        );
        let answer = rx.recv_timeout(Duration::from_secs(5)).expect("the open must be answered");
        let error = answer.unwrap_err();
        assert_eq!(error.code, ErrorCode::WorkerDead);
        assert!(error.message.contains("cannot start a worker thread"), "{}", error.message);
    }
}
