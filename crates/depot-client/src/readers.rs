//! Snapshot readers: threads that answer a database's read-only calls while its writer is busy.
//!
//! A read queued behind the writer waits for whatever the writer runs, an interactive transaction
//! held open by JavaScript included. A reader is another thread with its own read-only connection
//! over the same page store, pinned for each call to the newest committed head (a txid) and
//! reading the page versions of that point only: never a page of an uncommitted or later
//! transaction (invariant 9), and never waiting for the writer.
//!
//! * **Routing** is decided at admission (`Database::call`, [`Readers::route`]): a call may leave
//!   the writer's queue only when it is outside any transaction, every statement passes
//!   [`crate::route::reader_may_run`], no call of the handle is still queued for or running on the
//!   writer, and the writer's connection holds nothing a reader cannot see (a transaction begun in
//!   SQL, a TEMP object, an attached database). So program order holds: a read issued after a
//!   write, awaited or not, runs after that write committed, on the writer or on a reader that
//!   pins a head at least that new. Such a read then runs on the writer if the writer is idle (no
//!   call, no transaction; `OpenOptions::reads_on_idle_writer`): the writer is awake, spinning a
//!   moment after each call, and the JS thread may wait for its answer, where a reader costs a
//!   thread wake-up and an event-loop wake-up (measured: an awaited point select took ~100 µs on a
//!   reader, ~7 µs on the idle writer). Otherwise, the writer being busy, it goes to a reader. A
//!   read on the idle writer is not a write: later reads do not wait for it.
//! * **On the caller's thread**: a read that would wake a parked thread runs on the calling
//!   thread instead, on a connection of its own pinned like a reader's, when every page it needs
//!   is in the page cache and it ends within [`CALLER_BUDGET`] ([`Readers::run_on_caller`]). That
//!   is a read routed to the idle writer while the writer is parked (no call for longer than its
//!   spin), or a read routed to a reader (readers block between calls). Either would pay a thread
//!   wake-up and an event-loop wake-up. It never asks the store anything: a miss, the budget, a
//!   lease the pin would need, or another caller read running stops it with nothing answered, and
//!   it goes where it was routed. A read that comes within the writer's spin of the previous
//!   caller read is part of a busy stream and goes where it was routed too (the writer then stays
//!   awake for the rest; readers run such streams in parallel with the JS thread). Measured
//!   (`npm run bench:readers`, an awaited point select every 1 ms and every 10 ms, four runs):
//!   p50 0.61-0.66 and 0.64-0.84 of the same reads sent to the parked writer. While the writer is
//!   busy (a 1 s interactive transaction, a 1 s analytic query; point reads every 20 ms), two
//!   runs each: p99 0.31-0.48 ms on the caller against 1.1-3.9 ms on a reader.
//! * **Threads** start on demand, up to `readers`, when calls wait and no reader is idle, and end
//!   after [`READER_IDLE`] without a call: an idle database keeps none.
//! * **Pins and leases**: the pinned head stays readable for the call's duration. The store keeps
//!   the versions of a leased point even with history off; the pool leases each point once,
//!   shares the lease between the calls pinned there, and gives it back once a newer point is
//!   leased and nobody is left on the old one (so a steady stream of reads costs one lease per
//!   commit, not one per read).
//! * **Cursors**: a read-only `CursorOpen` goes to a reader like any read, and that reader then
//!   holds the cursor's snapshot, and only serves that cursor, until it is exhausted, closed, or
//!   older than [`SNAPSHOT_MAX_AGE`]: rows fetched across awaits all come from one committed point.
//!   While every reader holds a cursor, new reads keep their place on the writer instead.
//! * **Busy readers**: when every reader is running a call and the writer is idle, a read goes to
//!   the writer, which answers it at once (a cursor too, which then sees no snapshot of its own).
//! * **Age bound**: a call on a reader runs for at most [`SNAPSHOT_MAX_AGE`] (less if its own
//!   timeout says so), then fails with ERR_TIMEOUT; a cursor's snapshot is dropped at that age and
//!   its next fetch fails ERR_TIMEOUT: a forgotten snapshot cannot hold storage forever.
//! * **Fencing and close**: once the writer learns that a newer generation took over, every reader
//!   call fails the same way; `close()` stops the readers after their running call, and answers
//!   their queued calls ERR_CLOSED.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use depot::{LeaseId, PageStore, StoreError, Txid};

use crate::command::{Answer, Command, CursorId};
use crate::control::{Control, Stop};
use crate::metrics::Metrics;
use crate::session::Session;
use crate::vfs::SharedPages;
use crate::worker::{Shared, State, Task};
use crate::{Error, ErrorCode, OpenOptions};

/// How long a reader thread waits for a call before it ends.
pub const READER_IDLE: Duration = Duration::from_secs(2);

/// The longest a call may hold a snapshot on a reader by default (see the module docs and
/// `OpenOptions::snapshot_max_age`).
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(300);

/// The longest a read runs on the caller's thread before it is stopped and sent to the writer
/// (checked every few thousand SQLite steps and at every page it reads, so a read may overrun it
/// by that much).
pub const CALLER_BUDGET: Duration = Duration::from_micros(200);

/// Stack of a reader thread: the same as the writer's (SQLite's deepest paths are the same).
const READER_STACK: usize = 512 << 10;

/// Tries to lease a head that a commit made unreadable between pinning it and leasing it. With
/// history off, the store drops a superseded version at the commit that supersedes it, a moment
/// before the writer publishes the new head; a pin that falls in that moment tries the next head.
const LEASE_TRIES: u32 = 1000;

/// Ids of the cursors readers hold: above any id a writer's session hands out, so one number
/// names one cursor of the handle, and exact as a JavaScript number.
const READER_CURSOR_BASE: u64 = 1 << 52;

/// Where a call outside any transaction runs (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// In the writer's queue, in program order: later reads wait for it.
    Writer,
    /// On the writer, because it was idle: later reads need not wait for it.
    IdleWriter,
    /// On a snapshot reader.
    Reader,
}

enum Msg {
    Call(Task),
    Stop,
}

/// The readers of one database.
pub(crate) struct Readers {
    pool: Arc<Pool>,
}

struct Pool {
    max: usize,
    database: String,
    /// Dropped at close, so that a closed database no longer keeps its store alive.
    store: Mutex<Option<Arc<dyn PageStore>>>,
    opts: OpenOptions,
    metrics: Arc<Metrics>,
    pages: Arc<SharedPages>,
    shared: Arc<Shared>,
    calls: Sender<Msg>,
    inbox: Receiver<Msg>,
    threads: Mutex<Threads>,
    ended: Condvar,
    /// Store leases by point: the lease and how many calls are pinned there.
    leases: Mutex<BTreeMap<Txid, (LeaseId, usize)>>,
    /// Whether pins need store leases: not when the store's history window alone keeps a pinned
    /// head readable for longer than a call may hold it.
    lease_pins: bool,
    /// The cursors held by readers, by the id handed out for them.
    cursors: Mutex<HashMap<CursorId, Held>>,
    next_cursor: AtomicU64,
    /// The clock of the budget of reads on the caller's thread.
    real_clock: Arc<dyn depot::Clock>,
}

/// Where the calls of a reader's cursor go.
enum Held {
    /// To the thread holding it.
    On(Sender<Msg>),
    /// Nowhere: its snapshot grew older than [`SNAPSHOT_MAX_AGE`] and was dropped.
    Expired,
}

/// A cursor a reader thread holds, with its snapshot.
struct Hold {
    /// The id handed out, and the id in the thread's session.
    id: CursorId,
    local: CursorId,
    at: Txid,
    calls: Receiver<Msg>,
    until: Instant,
}

#[derive(Default)]
struct Threads {
    running: usize,
    /// Running threads waiting for a call (or about to).
    idle: usize,
    /// Running threads holding a cursor.
    held: usize,
    closing: bool,
}

impl Readers {
    pub fn new(
        max: usize,
        store: Arc<dyn PageStore>,
        database: String,
        opts: OpenOptions,
        pages: Arc<SharedPages>,
        shared: Arc<Shared>,
    ) -> Readers {
        let (calls, inbox) = unbounded();
        let lease_pins = store.history_window() < opts.snapshot_max_age;
        Readers {
            pool: Arc::new(Pool {
                max,
                database,
                store: Mutex::new(Some(store)),
                opts,
                metrics: shared.metrics.clone(),
                pages,
                shared,
                calls,
                inbox,
                threads: Mutex::new(Threads::default()),
                ended: Condvar::new(),
                leases: Mutex::new(BTreeMap::new()),
                lease_pins,
                cursors: Mutex::new(HashMap::new()),
                next_cursor: AtomicU64::new(READER_CURSOR_BASE),
                real_clock: Arc::new(depot::RealClock),
            }),
        }
    }

    /// The longest a call may hold its snapshot on a reader.
    pub fn max_age(&self) -> Duration {
        self.pool.opts.snapshot_max_age
    }

    /// Where `command`, called outside any transaction, goes now (see the module docs for the
    /// rule).
    pub fn route(&self, command: &Command) -> Route {
        let pool = &self.pool;
        let shared = &pool.shared;
        if let Command::CursorNext { cursor, .. } | Command::CursorClose { cursor } = command {
            let held = pool.cursors.lock().unwrap().contains_key(cursor);
            return if held { Route::Reader } else { Route::Writer };
        }
        let readable = match command {
            Command::Execute { sql, .. } | Command::CursorOpen { sql, .. } => {
                crate::route::reader_may_run(sql)
            }
            Command::Batch { statements } => {
                !statements.is_empty() && statements.iter().all(|s| crate::route::reader_may_run(&s.sql))
            }
            _ => false,
        };
        // A hibernating writer wakes with its pages preloaded in one round trip; a reader would
        // start cold. So a read that finds the database asleep wakes the writer instead.
        if !readable
            || shared.writer_pending.load(Ordering::SeqCst) != 0
            || shared.reads_need_writer.load(Ordering::SeqCst)
            || shared.hibernating.load(Ordering::SeqCst)
        {
            return Route::Writer;
        }
        let writer_idle = shared.writer_reads.load(Ordering::SeqCst) == 0
            && shared.begins_queued.load(Ordering::SeqCst) == 0
            && !shared.in_transaction.load(Ordering::SeqCst);
        // An idle writer is awake (it spins a moment after each call) and its answers can be
        // waited for on the JS thread: a read there costs no thread wake-up and no pin. A cursor
        // still goes to a reader, which holds one snapshot for it across awaits.
        let cursor = matches!(command, Command::CursorOpen { .. });
        if writer_idle && !cursor && pool.opts.reads_on_idle_writer {
            return Route::IdleWriter;
        }
        let threads = pool.threads.lock().unwrap();
        if threads.held >= pool.max {
            // Every reader holds a cursor: the read keeps its place on the writer.
            return Route::Writer;
        }
        // Every reader busy (a long query, a held cursor) while the writer is idle: the writer
        // answers at once, where a reader would answer only after the call it runs.
        // (An idle thread is free only for calls beyond those already queued.)
        let readers_busy = threads.running >= pool.max && pool.inbox.len() >= threads.idle;
        if readers_busy && writer_idle {
            Route::IdleWriter
        } else {
            Route::Reader
        }
    }

    /// Runs a read that would wake a parked thread (the idle writer, or a reader) on the calling
    /// thread instead, from the page cache only (see the module docs). `None`: not run, nothing
    /// answered; the caller routes the call as before. Runs nothing but `Execute` and `Batch`,
    /// routed as reads already.
    pub fn run_on_caller(&self, command: &Command) -> Option<Result<Answer, Error>> {
        let pool = &self.pool;
        let shared = &pool.shared;
        // A cursor stays on a reader, which holds its snapshot across calls: nothing to try here
        // (nor a connection to open, or a pin to take, for it).
        let statement = matches!(command, Command::Execute { .. } | Command::Batch { .. });
        if !statement || !pool.opts.reads_on_caller || pool.lease_pins {
            return None;
        }
        let mut slot = shared.caller.try_lock().ok()?;
        let started = Instant::now();
        if slot.ended.is_some_and(|t| started.saturating_duration_since(t) < crate::worker::SPIN) {
            return None;
        }
        if shared.state() != State::Running || shared.poison().is_some() {
            return None;
        }
        if shared.hibernating.load(Ordering::SeqCst) {
            // Routed just before the writer went to hibernate: it wakes for this read instead, and
            // no connection is left open here for a database that keeps none.
            slot.session = None;
            return None;
        }
        let mut pinned = None;
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Option<Result<Answer, Error>> {
            if slot.session.is_none() {
                let store = pool.store().ok()?;
                slot.session = Some(
                    Session::open_reader(
                        store,
                        &pool.database,
                        &pool.opts,
                        pool.metrics.clone(),
                        &pool.pages,
                        true,
                    )
                    .ok()?,
                );
                // The parked writer drops this connection once unused; its wait needs a deadline.
                shared.nudge();
            }
            let session = slot.session.as_mut().expect("opened above");
            let head = pool.pages.pin();
            pinned = Some(head.txid);
            // The budget is the caller's time: the real clock even under a simulated one. Checked at
            // every page read and, for steps that read none, by the progress handler.
            session.repin(head, Some(started + CALLER_BUDGET));
            let control = Control::new(None, Some(CALLER_BUDGET), &pool.real_clock);
            session.set_running(Some(control.clone()));
            let result = session.run_read(command);
            session.set_running(None);
            let missed = session.take_missed();
            result.filter(|_| !missed && control.stopped() == Stop::None)
        }));
        if let Some(at) = pinned {
            pool.pages.unpin(at);
        }
        slot.ended = Some(Instant::now());
        let panicked = slot.session.as_ref().is_some_and(|s| s.ctx.panicked.load(Ordering::SeqCst));
        match outcome {
            Ok(Some(result)) if !panicked => {
                Metrics::add(&pool.metrics.calls, 1);
                Metrics::add(&pool.metrics.caller_reads, 1);
                crate::worker::note_slow_read(&pool.metrics, &pool.database, started.elapsed());
                Some(result)
            }
            Ok(_) if !panicked => None,
            _ => {
                // Its connection is dropped; the writer runs the read (and panics there, if it must).
                tracing::error!(database = %pool.database, "a read on the caller's thread panicked");
                slot.session = None;
                None
            }
        }
    }

    /// Queues a call for the readers, starting a thread if every running one is busy.
    pub fn submit(&self, task: Task) {
        let pool = &self.pool;
        let task = match pool.to_holder(task) {
            Some(task) => task,
            None => return,
        };
        if let Err(e) = pool.calls.send(Msg::Call(task)) {
            if let Msg::Call(task) = e.into_inner() {
                task.reject(Error::closed(&pool.database));
            }
            return;
        }
        let mut threads = pool.threads.lock().unwrap();
        if threads.closing || threads.running >= pool.max || pool.inbox.len() <= threads.idle {
            return;
        }
        threads.running += 1;
        Metrics::set(&pool.metrics.readers, threads.running as u64);
        let for_thread = pool.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("depot-rd-{}", pool.database))
            .stack_size(READER_STACK)
            .spawn(move || for_thread.serve());
        if let Err(e) = spawned {
            threads.running -= 1;
            Metrics::set(&pool.metrics.readers, threads.running as u64);
            if threads.running == 0 {
                // Nobody will take the queued calls: they fail rather than wait for good.
                let error = Error::new(
                    ErrorCode::WorkerDead,
                    format!("cannot start a reader thread for database '{}': {e}", pool.database),
                );
                while let Ok(Msg::Call(task)) = pool.inbox.try_recv() {
                    task.reject(error.clone());
                }
            }
        }
    }

    /// Stops the readers: queued calls fail ERR_CLOSED, running ones finish first. Waits until
    /// `deadline` for every reader thread to end (and drop its connection); false if one is
    /// still running then.
    pub fn close(&self, deadline: Instant) -> bool {
        self.request_close();
        let pool = &self.pool;
        let mut threads = pool.threads.lock().unwrap();
        while threads.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            threads = pool.ended.wait_timeout(threads, left).unwrap().0;
        }
        drop(threads);
        pool.release_all();
        pool.store.lock().unwrap().take();
        true
    }

    /// Drops the page cache the readers share with the writer. For a closed database: its handle
    /// (and so this pool) may live on until JavaScript's garbage collector frees it, and the cache
    /// with it, up to `cacheBytes` per database.
    pub fn forget_pages(&self) {
        self.pool.pages.forget();
    }

    /// How many pages the shared cache holds.
    #[cfg(test)]
    pub fn cached_pages(&self) -> usize {
        self.pool.pages.cached_pages()
    }

    /// Starts stopping the readers without waiting (see [`Readers::close`]).
    pub fn request_close(&self) {
        let pool = &self.pool;
        let mut threads = pool.threads.lock().unwrap();
        if !threads.closing {
            threads.closing = true;
            for _ in 0..threads.running {
                let _ = pool.calls.send(Msg::Stop);
            }
            for held in pool.cursors.lock().unwrap().values() {
                if let Held::On(holder) = held {
                    let _ = holder.send(Msg::Stop);
                }
            }
            while let Ok(msg) = pool.inbox.try_recv() {
                match msg {
                    Msg::Call(task) => task.reject(Error::closed(&pool.database)),
                    // Put back for the thread it was meant for.
                    Msg::Stop => {
                        let _ = pool.calls.send(Msg::Stop);
                        break;
                    }
                }
            }
        }
    }
}

impl Pool {
    /// The body of one reader thread.
    fn serve(self: Arc<Pool>) {
        let mut session: Option<Session> = None;
        loop {
            self.threads.lock().unwrap().idle += 1;
            let msg = self.inbox.recv_timeout(READER_IDLE);
            let mut threads = self.threads.lock().unwrap();
            threads.idle -= 1;
            match msg {
                Ok(Msg::Call(task)) if threads.closing => {
                    drop(threads);
                    task.reject(Error::closed(&self.database));
                }
                Ok(Msg::Call(task)) => {
                    drop(threads);
                    let hold = self.run(task, &mut session, None);
                    if let Some(hold) = hold {
                        if self.hold(hold, &mut session) {
                            continue;
                        }
                        self.end_thread(&mut session);
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) if !self.inbox.is_empty() => {}
                Ok(Msg::Stop) | Err(_) => {
                    drop(threads);
                    self.end_thread(&mut session);
                    return;
                }
            }
        }
    }

    /// Ends this reader thread.
    fn end_thread(&self, session: &mut Option<Session>) {
        let mut threads = self.threads.lock().unwrap();
        // Under the lock: `close()` sees the thread gone only once its connection is.
        drop(session.take());
        threads.running -= 1;
        Metrics::set(&self.metrics.readers, threads.running as u64);
        let last = threads.running == 0;
        drop(threads);
        self.ended.notify_all();
        if last {
            self.release_unused();
        }
    }

    /// Sends a call of a held cursor to the thread holding it; answers it at once when that
    /// cursor's snapshot expired. Any other call is given back.
    fn to_holder(&self, task: Task) -> Option<Task> {
        let (Command::CursorNext { cursor, .. } | Command::CursorClose { cursor }) = &task.command else {
            return Some(task);
        };
        let cursor = *cursor;
        let mut cursors = self.cursors.lock().unwrap();
        match cursors.get(&cursor) {
            None => Some(task),
            Some(Held::On(holder)) => {
                // Sent under the lock: `end_hold` removes the entry under it, then drains.
                if let Err(e) = holder.send(Msg::Call(task)) {
                    if let Msg::Call(task) = e.into_inner() {
                        task.reject(Error::closed(&self.database));
                    }
                }
                None
            }
            Some(Held::Expired) => {
                cursors.remove(&cursor);
                drop(cursors);
                if matches!(task.command, Command::CursorClose { .. }) {
                    task.reply.send(Ok(Answer::Done));
                } else {
                    task.reject(self.expired(cursor));
                }
                None
            }
        }
    }

    /// Serves the calls of a held cursor until it ends. False when the thread is to stop.
    fn hold(&self, hold: Hold, session: &mut Option<Session>) -> bool {
        loop {
            let left = hold.until.saturating_duration_since(Instant::now());
            let msg = hold.calls.recv_timeout(left);
            match msg {
                Ok(Msg::Call(task)) => {
                    self.run(task, session, Some(&hold));
                    if !session.as_ref().is_some_and(|s| s.has_cursor(hold.local)) {
                        self.end_hold(&hold, session, false);
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!(
                        database = %self.database,
                        cursor = hold.id.0,
                        "a cursor's snapshot reached the age bound and was dropped"
                    );
                    self.end_hold(&hold, session, true);
                    return true;
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.end_hold(&hold, session, false);
                    return false;
                }
            }
        }
    }

    /// Finalizes a held cursor, answers the calls still on its way and gives its snapshot back.
    fn end_hold(&self, hold: &Hold, session: &mut Option<Session>, expired: bool) {
        if let Some(session) = session.as_mut() {
            session.close_cursor(hold.local);
        }
        let mut cursors = self.cursors.lock().unwrap();
        if expired {
            cursors.insert(hold.id, Held::Expired);
        } else {
            cursors.remove(&hold.id);
        }
        drop(cursors);
        while let Ok(msg) = hold.calls.try_recv() {
            if let Msg::Call(task) = msg {
                match task.command {
                    Command::CursorClose { .. } => task.reply.send(Ok(Answer::Done)),
                    _ if expired => task.reject(self.expired(hold.id)),
                    _ => {
                        task.reject(Error::new(ErrorCode::Closed, format!("cursor {} is closed", hold.id.0)))
                    }
                }
            }
        }
        self.threads.lock().unwrap().held -= 1;
        self.unpin(hold.at);
    }

    /// Runs one call on this thread's session (opened on its first call, again after a panic):
    /// pinned to the newest head, or, for a call of the cursor `held`, at that cursor's point.
    /// Returns the cursor the call opened, which this thread then holds.
    fn run(&self, task: Task, session: &mut Option<Session>, held: Option<&Hold>) -> Option<Hold> {
        let Task { mut command, control, reply, .. } = task;
        let stop = control.check();
        if stop != Stop::None {
            reply.send(Err(Control::error(stop, &self.database)));
            return None;
        }
        if let Some(e) = self.shared.poison() {
            reply.send(Err(e));
            return None;
        }
        if self.shared.state() == State::Dead {
            reply.send(Err(Error::dead(&self.database)));
            return None;
        }
        if let (Some(hold), Command::CursorNext { cursor, .. } | Command::CursorClose { cursor }) =
            (held, &mut command)
        {
            *cursor = hold.local;
        }
        let started = Instant::now();
        let mut opened = None;
        // The point pinned for this call until it is given back (or handed to a held cursor):
        // outside the closure, so that a panic gives it back too.
        let mut pinned_at = None;
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<crate::Answer, Error> {
            if session.is_none() {
                *session = Some(self.open()?);
            }
            let session = session.as_mut().expect("opened above");
            let pinned = match held {
                Some(_) => None,
                None => {
                    let at = self.pin()?;
                    pinned_at = Some(at.txid);
                    session.repin(at, None);
                    Some(at.txid)
                }
            };
            let mut result = if control.can_stop() {
                session.set_running(Some(control.clone()));
                let r = session.run(command);
                session.set_running(None);
                r
            } else {
                session.run(command)
            };
            match (&mut result, pinned) {
                (Ok(Answer::Cursor { id, .. }), Some(at)) => {
                    let global = CursorId(self.next_cursor.fetch_add(1, Ordering::SeqCst));
                    opened = Some((*id, global, at));
                    *id = global;
                }
                (_, Some(at)) => {
                    pinned_at = None;
                    self.unpin(at);
                }
                (_, None) => {}
            }
            match (result, control.stopped()) {
                (Err(e), stop) if stop != Stop::None && e.code == ErrorCode::Sqlite("SQLITE_INTERRUPT") => {
                    Err(Control::error(stop, &self.database))
                }
                (r, _) => r,
            }
        }));
        Metrics::add(&self.metrics.calls, 1);
        Metrics::add(&self.metrics.reader_calls, 1);
        crate::worker::note_slow_read(&self.metrics, &self.database, started.elapsed());
        match outcome {
            // A panic on a reader (caught here, or at the VFS boundary) costs its session and
            // this call, which fails as a panic on the writer would; the database goes on.
            Ok(result) if !session.as_ref().is_some_and(|s| s.ctx.panicked.load(Ordering::SeqCst)) => {
                let hold = opened.map(|(local, id, at)| self.start_hold(local, id, at));
                reply.send(result);
                hold
            }
            _ => {
                tracing::error!(database = %self.database, "reader panicked; its session is dropped");
                session.take();
                if let Some(at) = pinned_at {
                    self.unpin(at);
                }
                reply.send(Err(Error::dead(&self.database)));
                None
            }
        }
    }

    fn expired(&self, cursor: CursorId) -> Error {
        Error::new(
            ErrorCode::Timeout,
            format!(
                "cursor {} of database '{}' held its snapshot longer than {} ms; it was closed",
                cursor.0,
                self.database,
                self.opts.snapshot_max_age.as_millis()
            ),
        )
    }

    /// Registers a cursor this thread opened: its later calls come to this thread only.
    fn start_hold(&self, local: CursorId, id: CursorId, at: Txid) -> Hold {
        let (holder, calls) = unbounded();
        // Registered before the answer leaves: the first fetch can follow it at once. Under the
        // threads lock, as `request_close` stops holders: a hold begun after close stops at once.
        let mut threads = self.threads.lock().unwrap();
        threads.held += 1;
        if threads.closing {
            let _ = holder.send(Msg::Stop);
        }
        self.cursors.lock().unwrap().insert(id, Held::On(holder));
        drop(threads);
        Hold { id, local, at, calls, until: Instant::now() + self.opts.snapshot_max_age }
    }

    fn store(&self) -> Result<Arc<dyn PageStore>, Error> {
        self.store.lock().unwrap().clone().ok_or_else(|| Error::closed(&self.database))
    }

    fn open(&self) -> Result<Session, Error> {
        Session::open_reader(
            self.store()?,
            &self.database,
            &self.opts,
            self.metrics.clone(),
            &self.pages,
            false,
        )
    }

    /// Pins the newest head and makes sure the store keeps it readable while pinned.
    fn pin(&self) -> Result<depot::Head, Error> {
        let mut tries = 0;
        loop {
            let head = self.pages.pin();
            match self.lease(head.txid) {
                Ok(()) => return Ok(head),
                Err(e) => {
                    self.pages.unpin(head.txid);
                    tries += 1;
                    // A commit (with history off) made the head unreadable between pin and lease:
                    // the next head is readable.
                    if !matches!(e, StoreError::HistoryUnavailable(_)) || tries >= LEASE_TRIES {
                        return Err(e.into());
                    }
                    std::thread::yield_now();
                }
            }
        }
    }

    fn unpin(&self, at: Txid) {
        self.pages.unpin(at);
        if !self.lease_pins {
            return;
        }
        let mut leases = self.leases.lock().unwrap();
        if let Some((_, n)) = leases.get_mut(&at) {
            *n -= 1;
        }
        let newest = leases.keys().next_back().copied();
        drop(leases);
        if newest != Some(at) {
            self.release_unused_before(newest.unwrap_or(Txid::MAX));
        }
    }

    /// Takes (or shares) the store's lease on `at`.
    fn lease(&self, at: Txid) -> Result<(), StoreError> {
        if !self.lease_pins {
            return Ok(());
        }
        let mut leases = self.leases.lock().unwrap();
        if let Some((_, n)) = leases.get_mut(&at) {
            *n += 1;
            return Ok(());
        }
        let store = self.store().map_err(|e| StoreError::Unavailable(e.message))?;
        let id = store.lease(&self.database, at)?;
        leases.insert(at, (id, 1));
        drop(leases);
        self.release_unused_before(at);
        Ok(())
    }

    /// Gives back the leases older than `newest` that no call is pinned to.
    fn release_unused_before(&self, newest: Txid) {
        let mut leases = self.leases.lock().unwrap();
        let unused: Vec<Txid> =
            leases.range(..newest).filter(|(_, (_, n))| *n == 0).map(|(t, _)| *t).collect();
        let ids: Vec<LeaseId> = unused.iter().filter_map(|t| leases.remove(t)).map(|(id, _)| id).collect();
        drop(leases);
        if let Ok(store) = self.store() {
            for id in ids {
                store.release(&self.database, id);
            }
        }
    }

    /// Gives back every lease no call is pinned to (the last reader thread ended).
    fn release_unused(&self) {
        self.release_unused_before(Txid::MAX);
    }

    fn release_all(&self) {
        let ids: Vec<LeaseId> =
            std::mem::take(&mut *self.leases.lock().unwrap()).into_values().map(|(id, _)| id).collect();
        if let Ok(store) = self.store() {
            for id in ids {
                store.release(&self.database, id);
            }
        }
    }
}
