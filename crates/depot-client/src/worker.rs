//! The worker thread of one database, written as an explicit state machine.
//!
//! ```text
//!   Running --close()--> Closing --queue drained, connection dropped--> Closed
//!      \--panic--> Dead --close()--> Closed
//! ```
//! * Close travels on its own channel (capacity 1) so that a full command queue cannot delay it; the
//!   worker looks at it before every command, answers every queued command with ERR_CLOSED, drops the
//!   connection, and only then reports closed.
//! * Admission (`crate::admission`), not the channel, bounds the commands in flight: a call past
//!   `max_queue` is refused at once (ERR_OVERLOADED) rather than waiting, so callers learn about
//!   overload immediately and no thread ever blocks on the queue.
//! * An interactive transaction pins the connection: while it is open only its own commands run;
//!   every other call waits, in arrival order, until it commits, rolls back or times out.
//! * A panic is caught around each command: the database turns Dead, every waiter is answered with
//!   ERR_WORKER_DEAD, and the process and the other databases live on.
//! * Hibernation: a database with no call for its idle time (and nothing open that lives in the
//!   connection) closes its session and its thread ends; its queues wait in [`Shared`] as a
//!   [`Parked`] worker. The next call starts a thread that reopens the session with the same
//!   generation and settings (see `Session::suspend`) and then runs the call, so callers see the
//!   same ordering, admission, transactions and fencing as with a thread that never left.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};

use crate::admission::Admission;
use crate::command::{Answer, Command, Responder, TransactionId};
use crate::control::{Control, Stop};
use crate::metrics::Metrics;
use crate::session::{Resume, Session};
use crate::{Error, ErrorCode};

/// Opens a database's session: the first time (`None`) as its options say, then again after each
/// hibernation with what the last session left.
pub type Opener = Arc<dyn Fn(Option<&Resume>) -> Result<Session, Error> + Send + Sync>;

/// A hibernating database's worker, without a thread: its queues and what its next session needs.
pub struct Parked {
    commands: Receiver<Task>,
    close: Receiver<()>,
    resume: Resume,
}

/// Calls slower than this are logged with `tracing` and counted.
const SLOW_CALL: Duration = Duration::from_millis(200);

/// A wait with no deadline (crossbeam takes a duration).
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Opening = 0,
    Running = 1,
    Closing = 2,
    Closed = 3,
    Dead = 4,
}

/// State shared by the handle and its worker.
pub struct Shared {
    pub database: String,
    /// False while the worker is parked waiting for a command (a new command then pays a thread
    /// wake-up); true while it runs or spins. Callers use it to decide whether waiting briefly for
    /// the reply can pay off.
    pub awake: Arc<AtomicBool>,
    state: AtomicU8,
    finished: Mutex<bool>,
    finished_cv: Condvar,
    pub metrics: Arc<Metrics>,
    /// `BEGIN`s admitted whose task has not started yet, and whether an interactive transaction
    /// may be open (set before a `BEGIN` starts, then to what the session says after each call):
    /// a synchronous call must not queue behind a transaction that waits for JavaScript.
    pub begins_queued: std::sync::atomic::AtomicU64,
    pub in_transaction: AtomicBool,
    /// True while the database hibernates: its worker is in `parked` and no thread runs for it.
    pub hibernating: AtomicBool,
    pub parked: Mutex<Option<Parked>>,
    /// The running worker's thread, for `close()` to join. A worker that hibernates detaches its
    /// own thread (drops the handle) before it ends: a thread ended but never joined keeps its
    /// stack mapped, two memory mappings and its touched pages per hibernating database.
    pub thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Calls outside any transaction admitted for the writer and not yet answered: while there
    /// is one, a read keeps its place in the writer's queue (program order; see `crate::readers`).
    pub writer_pending: std::sync::atomic::AtomicU64,
    /// Reads the writer runs because it was idle when they came (see `crate::readers`), not yet
    /// answered: later reads need not wait for them, but they keep the writer from being idle.
    pub writer_reads: std::sync::atomic::AtomicU64,
    /// Whether the writer's connection holds something a snapshot reader cannot see (a
    /// transaction begun in SQL, a TEMP object, an attached database): reads then stay with it.
    pub reads_need_writer: AtomicBool,
    /// Why the writer stopped for good (fenced by a newer generation, or a commit whose outcome is
    /// unknown): the readers fail their calls the same way.
    poison: Mutex<Option<Error>>,
    /// Reads run on the caller's thread (see `crate::readers`). Here, not with the readers, so
    /// that a worker going to hibernate drops their connection: an idle database keeps none.
    pub caller: Mutex<CallerReads>,
    /// Wakes the parked writer to look at its wait again (a read on the caller's thread opened a
    /// connection, which the writer drops once unused: its wait needs a deadline now).
    nudge: (crossbeam_channel::Sender<()>, Receiver<()>),
}

/// How long the connection of the reads on the caller's thread stays open unused (the same as a
/// reader thread's idle time).
const CALLER_IDLE: Duration = crate::readers::READER_IDLE;

/// The connection of the reads run on the caller's thread, and when the last one ended.
#[derive(Default)]
pub struct CallerReads {
    pub session: Option<Session>,
    pub ended: Option<Instant>,
}

impl Shared {
    pub fn new(database: String, metrics: Arc<Metrics>) -> Shared {
        Shared {
            database,
            awake: Arc::new(AtomicBool::new(true)),
            state: AtomicU8::new(State::Opening as u8),
            finished: Mutex::new(false),
            finished_cv: Condvar::new(),
            metrics,
            begins_queued: std::sync::atomic::AtomicU64::new(0),
            in_transaction: AtomicBool::new(false),
            hibernating: AtomicBool::new(false),
            parked: Mutex::new(None),
            thread: Mutex::new(None),
            writer_pending: std::sync::atomic::AtomicU64::new(0),
            writer_reads: std::sync::atomic::AtomicU64::new(0),
            reads_need_writer: AtomicBool::new(false),
            poison: Mutex::new(None),
            caller: Mutex::new(CallerReads::default()),
            nudge: crossbeam_channel::bounded(1),
        }
    }

    /// Drops the connection of the reads run on the caller's thread (hibernating or closed).
    pub fn drop_caller_session(&self) {
        let session = self.caller.lock().unwrap().session.take();
        drop(session);
    }

    /// Has the writer look at its wait again (see `nudge`); one wake-up at most is pending.
    pub fn nudge(&self) {
        let _ = self.nudge.0.try_send(());
    }

    /// Drops the connection of the reads run on the caller's thread once it went unused for
    /// [`CALLER_IDLE`], as a reader thread ends: an idle database keeps none.
    fn drop_unused_caller_session(&self) {
        let mut caller = self.caller.lock().unwrap();
        if caller.ended.is_none_or(|t| t.elapsed() >= CALLER_IDLE) {
            let session = caller.session.take();
            drop(caller);
            drop(session);
        }
    }

    /// How long the idle writer waits for a call before it looks again: until `idle` passed since
    /// its last call (`idle_since`) and since the last read on the caller's thread, which counts
    /// as a call (zero: hibernation is due; `None`: never), and no longer than until the
    /// caller's connection, if open, has gone unused for [`CALLER_IDLE`].
    fn idle_wait(&self, idle: Option<Duration>, idle_since: Instant) -> Option<Duration> {
        let caller = self.caller.lock().unwrap();
        let last_call = caller.ended.map_or(idle_since, |t| t.max(idle_since));
        let hibernate = idle.map(|idle| idle.saturating_sub(last_call.elapsed()));
        let drop_caller = caller
            .session
            .as_ref()
            .map(|_| CALLER_IDLE.saturating_sub(caller.ended.map_or(CALLER_IDLE, |t| t.elapsed())));
        match (hibernate, drop_caller) {
            (Some(h), Some(d)) => Some(h.min(d)),
            (h, d) => h.or(d),
        }
    }

    /// Why the writer stopped for good, if it did.
    pub fn poison(&self) -> Option<Error> {
        self.poison.lock().unwrap().clone()
    }

    /// What the session says after a call, for the readers to follow.
    fn follow(&self, session: &Session) {
        self.reads_need_writer.store(session.reads_need_writer(), Ordering::SeqCst);
        if let Err(e) = session.check_poison() {
            self.poison.lock().unwrap().get_or_insert(e);
        }
    }

    pub fn state(&self) -> State {
        match self.state.load(Ordering::SeqCst) {
            0 => State::Opening,
            1 => State::Running,
            2 => State::Closing,
            3 => State::Closed,
            _ => State::Dead,
        }
    }

    fn set(&self, s: State) {
        self.state.store(s as u8, Ordering::SeqCst);
    }

    /// Running (or Opening) -> Closing; Dead stays Dead until the worker exits.
    pub fn begin_close(&self) {
        for from in [State::Running, State::Opening] {
            if self
                .state
                .compare_exchange(from as u8, State::Closing as u8, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Closed for good: the worker exited (or never started).
    pub(crate) fn finish(&self) {
        self.set(State::Closed);
        *self.finished.lock().unwrap() = true;
        self.finished_cv.notify_all();
    }

    /// Records the thread just started for the worker; if that worker has hibernated already (the
    /// handle came too late for it to detach), detaches it here.
    pub fn keep_thread(&self, thread: std::thread::JoinHandle<()>) {
        let parked = self.parked.lock().unwrap();
        if parked.is_some() {
            drop(thread);
        } else {
            *self.thread.lock().unwrap() = Some(thread);
        }
    }

    /// Takes the parked worker of a hibernating database, if it is one: the caller starts it again
    /// or closes it.
    pub fn unpark(&self) -> Option<Parked> {
        let mut slot = self.parked.lock().unwrap();
        let parked = slot.take();
        if parked.is_some() {
            self.hibernating.store(false, Ordering::SeqCst);
            Metrics::set(&self.metrics.hibernating, 0);
        }
        parked
    }

    /// Answers the calls that woke a parked worker with `error` and parks it again (no thread
    /// could be started for it).
    pub fn repark(&self, parked: Parked, error: Error) {
        while let Ok(job) = parked.commands.try_recv() {
            job.reject(error.clone());
        }
        if let Some(parked) = park(parked, self) {
            // A call came meanwhile: it fails the same way rather than waiting for a thread.
            self.repark(parked, error);
        }
    }

    /// Closes a database whose worker is parked: its queued calls fail with ERR_CLOSED.
    pub fn close_parked(&self, parked: Parked) {
        self.set(State::Closing);
        while let Ok(job) = parked.commands.try_recv() {
            job.reject(Error::closed(&self.database));
        }
        self.finish();
    }

    /// Waits until the worker has exited, at most `timeout`.
    pub fn wait_finished(&self, timeout: Duration) -> bool {
        let guard = self.finished.lock().unwrap();
        let (guard, _) = self.finished_cv.wait_timeout_while(guard, timeout, |done| !*done).unwrap();
        *guard
    }
}

/// A reply that answers even if dropped unanswered: with ERR_WORKER_DEAD while unwinding from a
/// panic, ERR_CLOSED otherwise (a command left in a queue that is being torn down). The call's
/// admission travels with the answer to the responder.
pub struct Reply {
    responder: Option<Responder>,
    admission: Option<Admission>,
    shared: Arc<Shared>,
    /// The count of `Shared` this reply is in until answered.
    counted: Counted,
}

/// Which count of [`Shared`] a reply is in until it is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counted {
    None,
    /// `writer_pending`: a call outside any transaction in the writer's queue.
    Pending,
    /// `writer_reads`: a read the writer runs because it was idle.
    Read,
}

impl Counted {
    fn count(self, shared: &Shared) -> Option<&std::sync::atomic::AtomicU64> {
        match self {
            Counted::None => None,
            Counted::Pending => Some(&shared.writer_pending),
            Counted::Read => Some(&shared.writer_reads),
        }
    }
}

impl Reply {
    pub fn new(responder: Responder, admission: Admission, shared: Arc<Shared>) -> Reply {
        Reply::counted(responder, admission, shared, Counted::None)
    }

    /// A reply to a call outside any transaction queued for the writer: counted in
    /// `Shared::writer_pending` until it is answered.
    pub fn pending(responder: Responder, admission: Admission, shared: Arc<Shared>) -> Reply {
        Reply::counted(responder, admission, shared, Counted::Pending)
    }

    /// A reply to a read sent to the writer because it was idle: counted in
    /// `Shared::writer_reads` until it is answered.
    pub fn idle_writer_read(responder: Responder, admission: Admission, shared: Arc<Shared>) -> Reply {
        Reply::counted(responder, admission, shared, Counted::Read)
    }

    fn counted(responder: Responder, admission: Admission, shared: Arc<Shared>, counted: Counted) -> Reply {
        if let Some(count) = counted.count(&shared) {
            count.fetch_add(1, Ordering::SeqCst);
        }
        Reply { responder: Some(responder), admission: Some(admission), shared, counted }
    }

    pub fn send(mut self, r: Result<Answer, Error>) {
        self.answer(r);
    }

    fn answer(&mut self, r: Result<Answer, Error>) {
        if let (Some(responder), Some(admission)) = (self.responder.take(), self.admission.take()) {
            // Before the answer: a read the caller issues once it has it may go to a reader (or
            // find the writer idle).
            if let Some(count) = std::mem::replace(&mut self.counted, Counted::None).count(&self.shared) {
                count.fetch_sub(1, Ordering::SeqCst);
            }
            let m = &self.shared.metrics;
            Metrics::add(if r.is_ok() { &m.answered } else { &m.failed }, 1);
            responder(r, admission);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        let e = if std::thread::panicking() {
            Error::dead(&self.shared.database)
        } else {
            Error::closed(&self.shared.database)
        };
        self.answer(Err(e));
    }
}

/// One accepted call on its way through the worker: the command, its control, the transaction
/// it must run in, and its reply.
pub struct Task {
    pub command: Command,
    pub control: Arc<Control>,
    pub transaction: Option<TransactionId>,
    pub reply: Reply,
}

impl Task {
    /// A `BEGIN` leaves the queued count once its task starts (or is dropped); a transaction may
    /// be open from before that moment (the order matters to `Database::would_deadlock`).
    fn leave_queue(&self, starts: bool) {
        if matches!(self.command, Command::Begin { .. }) {
            let shared = &self.reply.shared;
            if starts {
                shared.in_transaction.store(true, Ordering::SeqCst);
            }
            shared.begins_queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn run(self, session: &mut Session, call: CallStart) {
        self.leave_queue(true);
        let Task { command, control, reply, .. } = self;
        // Cancelled or expired while queued: never runs.
        let stop = control.check();
        if stop != Stop::None {
            let error = Control::error(stop, &reply.shared.database);
            reply.shared.in_transaction.store(session.open_transaction().is_some(), Ordering::SeqCst);
            reply.shared.follow(session);
            call.finish(&reply.shared);
            return reply.send(Err(error));
        }
        let result = match session.check_poison() {
            Err(e) => {
                // A stopped writer still ends its transaction when asked (rolled back: the store is
                // not asked anything), or the calls queued behind it would wait for good.
                if let Command::End { transaction, .. } = command {
                    let _ = session.run(Command::End { transaction, commit: false });
                }
                Err(e)
            }
            // The progress handler's mutex is taken only for a call it could stop.
            Ok(()) if !control.can_stop() => session.run(command),
            Ok(()) => {
                session.set_running(Some(control.clone()));
                let r = session.run(command);
                session.set_running(None);
                r
            }
        };
        let result = match (result, control.stopped()) {
            _ if session.ctx.panicked.load(Ordering::SeqCst) => Err(Error::dead(&reply.shared.database)),
            (Err(e), stop) if stop != Stop::None && e.code == ErrorCode::Sqlite("SQLITE_INTERRUPT") => {
                Err(Control::error(stop, &reply.shared.database))
            }
            (r, _) => r,
        };
        // Whether a transaction is open, and counted, and not running any more, once the caller
        // can see the answer (a caller that saw its transaction end must not find it open).
        reply.shared.in_transaction.store(session.open_transaction().is_some(), Ordering::SeqCst);
        reply.shared.follow(session);
        call.finish(&reply.shared);
        reply.send(result);
    }

    pub fn reject(self, error: Error) {
        self.leave_queue(false);
        self.reply.send(Err(error));
    }
}

/// The thread body. `ready` is answered once the connection is open (or failed to open). `idle`:
/// hibernate after that long without a call.
pub fn run(
    opener: Opener,
    ready: Box<dyn FnOnce(Result<(), Error>) + Send>,
    commands: Receiver<Task>,
    close: Receiver<()>,
    shared: Arc<Shared>,
    idle: Option<Duration>,
) {
    let session = match catch_unwind(AssertUnwindSafe(|| opener(None))) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            shared.finish();
            ready(Err(e));
            return;
        }
        Err(_) => {
            shared.finish();
            ready(Err(Error::dead(&shared.database)));
            return;
        }
    };
    // Opening -> Running, unless close() already came (it then finds Closing).
    let _ = shared.state.compare_exchange(
        State::Opening as u8,
        State::Running as u8,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    ready(Ok(()));
    let hibernated = serve(session, commands, close, &shared, idle);
    resume_while_called(&opener, hibernated, &shared, idle);
}

/// The body of a thread started for a hibernating database that got a call.
pub fn wake(opener: Opener, parked: Parked, shared: Arc<Shared>, idle: Option<Duration>) {
    Metrics::add(&shared.metrics.wakes, 1);
    let hibernated = reopen_and_serve(&opener, parked, &shared, idle);
    resume_while_called(&opener, hibernated, &shared, idle);
}

/// Parks a worker that went idle; if calls came (or a close) while it was putting its session
/// away, serves them on this thread instead.
fn resume_while_called(
    opener: &Opener,
    mut hibernated: Option<Parked>,
    shared: &Shared,
    idle: Option<Duration>,
) {
    while let Some(parked) = hibernated.and_then(|p| park(p, shared)) {
        hibernated = reopen_and_serve(opener, parked, shared, idle);
    }
}

/// Leaves the worker in `shared` and the thread free to end. Returns it instead when a call or a
/// close arrived meanwhile: a call is served on this thread; a close is done here (`None`).
///
/// A caller sends its call, then (after a fence) reads `hibernating`; this sets `hibernating`,
/// then (after a fence) looks at the queue. So either this sees the call, or the caller sees the
/// flag and starts the worker again (`Database::call`).
fn park(parked: Parked, shared: &Shared) -> Option<Parked> {
    let mut slot = shared.parked.lock().unwrap();
    shared.hibernating.store(true, Ordering::SeqCst);
    std::sync::atomic::fence(Ordering::SeqCst);
    if !parked.close.is_empty() || shared.state() != State::Running {
        shared.hibernating.store(false, Ordering::SeqCst);
        drop(slot);
        shared.close_parked(parked);
        return None;
    }
    if !parked.commands.is_empty() {
        shared.hibernating.store(false, Ordering::SeqCst);
        return Some(parked);
    }
    shared.awake.store(false, Ordering::SeqCst);
    Metrics::set(&shared.metrics.hibernating, 1);
    Metrics::add(&shared.metrics.hibernations, 1);
    *slot = Some(parked);
    // This thread ends now: detached, its stack goes with it (under the slot's lock, so a wake
    // cannot record its new thread before this drops the old handle).
    shared.thread.lock().unwrap().take();
    drop(slot);
    shared.drop_caller_session();
    None
}

/// Opens the session of a hibernated database again and serves its calls. When it cannot be
/// opened (the store is unreachable, or a newer writer fenced this one), the calls waiting get
/// that error and the worker parks again: the next call tries again.
fn reopen_and_serve(
    opener: &Opener,
    parked: Parked,
    shared: &Shared,
    idle: Option<Duration>,
) -> Option<Parked> {
    shared.awake.store(true, Ordering::SeqCst);
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let mut session = opener(Some(&parked.resume))?;
        session.resume(&parked.resume)?;
        Ok(session)
    }));
    match opened {
        Ok(Ok(session)) => serve(session, parked.commands, parked.close, shared, idle),
        failed => {
            let error = match failed {
                Ok(Err(e)) => e,
                _ => Error::dead(&shared.database),
            };
            while let Ok(job) = parked.commands.try_recv() {
                job.reject(error.clone());
            }
            Some(parked)
        }
    }
}

/// Runs calls until the database closes (`None`) or goes idle for `idle` and hibernates (its
/// parked worker, not yet left in `shared`).
fn serve(
    mut session: Session,
    commands: Receiver<Task>,
    close: Receiver<()>,
    shared: &Shared,
    idle: Option<Duration>,
) -> Option<Parked> {
    // Calls that arrived while an interactive transaction held the connection, in arrival order.
    let mut waiting: VecDeque<Task> = VecDeque::new();
    // When the writer's last call ended: the idle timeout counts from there (or from a later read
    // on the caller's thread).
    let mut idle_since = Instant::now();
    loop {
        if close.try_recv().is_ok() {
            break;
        }
        let job = match (session.open_transaction(), waiting.is_empty()) {
            (None, false) => waiting.pop_front().unwrap(),
            (open_tx, _) => {
                // On a simulated clock nothing moves time while the worker waits, so the deadline
                // is checked when the next call arrives instead (below); on the real clock the
                // wait ends at the deadline.
                let deadline = open_tx.and_then(|(_, d)| d).filter(|_| !session.clock().is_simulated());
                let timeout = match (deadline, open_tx, idle) {
                    (Some(d), _, _) => Some(d.saturating_duration_since(session.clock().now())),
                    (None, None, _) if shared.state() == State::Running => shared.idle_wait(idle, idle_since),
                    _ => None,
                };
                let received = match spin_for_next(&commands, &close) {
                    Some(job) => Some(job),
                    None => {
                        shared.awake.store(false, Ordering::SeqCst);
                        let job = select! {
                        recv(close) -> _ => break,
                        recv(commands) -> job => match job {
                            Ok(job) => Some(job),
                            Err(_) => break,
                        },
                        recv(shared.nudge.1) -> _ => {
                            shared.awake.store(true, Ordering::SeqCst);
                            continue;
                        },
                        default(timeout.unwrap_or(FOREVER)) => None,
                        };
                        shared.awake.store(true, Ordering::SeqCst);
                        job
                    }
                };
                match received {
                    Some(job) => {
                        idle_since = Instant::now();
                        job
                    }
                    None if session.open_transaction().is_some() => {
                        session.expire_transaction();
                        shared.in_transaction.store(false, Ordering::SeqCst);
                        idle_since = Instant::now();
                        continue;
                    }
                    None => {
                        shared.drop_unused_caller_session();
                        // Not due yet when reads ran on the caller's thread meanwhile.
                        if shared.idle_wait(idle, idle_since).is_some_and(|left| left.is_zero()) {
                            if session.can_hibernate() {
                                let resume = session.suspend();
                                return Some(Parked { commands, close, resume });
                            }
                            // Something lives in the connection (a TEMP table): stays awake for
                            // another idle period.
                            idle_since = Instant::now();
                        }
                        continue;
                    }
                }
            }
        };
        if transaction_expired(&session) {
            // The deadline passed before this call arrived: the transaction ends first, and this
            // call queues behind the calls that waited for it.
            session.expire_transaction();
            shared.in_transaction.store(false, Ordering::SeqCst);
            waiting.push_back(job);
            continue;
        }
        if shared.state() == State::Dead {
            job.reject(Error::dead(&shared.database));
            continue;
        }
        match (session.open_transaction(), job.transaction) {
            // Not part of the open transaction: waits until it ends (no interleaving).
            (Some(_), None) => {
                waiting.push_back(job);
                continue;
            }
            (Some((open, _)), Some(t)) if t != open => {
                job.reject(session.transaction_gone(t));
                continue;
            }
            (None, Some(t)) => {
                job.reject(session.transaction_gone(t));
                continue;
            }
            _ => {}
        }
        run_one(job, &mut session, shared);
        idle_since = Instant::now();
    }
    if shared.state() != State::Dead {
        shared.set(State::Closing);
    }
    for job in waiting.drain(..) {
        job.reject(Error::closed(&shared.database));
    }
    while let Ok(job) = commands.try_recv() {
        job.reject(Error::closed(&shared.database));
    }
    session.close();
    drop(session);
    shared.finish();
    None
}

/// How long an idle worker keeps looking for the next command before it parks. An awaited call
/// usually sends the next one within tens of microseconds; catching it without a park and a futex
/// wake-up roughly halves the latency of one-call-at-a-time code, for a few microseconds of CPU
/// after each call.
pub(crate) const SPIN: Duration = Duration::from_micros(50);

/// The first part of [`SPIN`] busy-waits; the rest yields the core between looks, so that busy
/// workers and the JS thread they wait for get it when cores are short.
const PURE_SPIN: Duration = Duration::from_micros(5);

/// The next command if one arrives within [`SPIN`] (or a close request is pending: then `None`).
fn spin_for_next(commands: &Receiver<Task>, close: &Receiver<()>) -> Option<Task> {
    let start = Instant::now();
    let until = start + SPIN;
    loop {
        if let Ok(job) = commands.try_recv() {
            return Some(job);
        }
        let now = Instant::now();
        if !close.is_empty() || now >= until {
            return None;
        }
        if now - start < PURE_SPIN {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
}

/// Whether the open interactive transaction is past its deadline on the session's clock.
fn transaction_expired(session: &Session) -> bool {
    match session.open_transaction() {
        Some((_, Some(deadline))) => session.clock().now() >= deadline,
        _ => false,
    }
}

fn run_one(job: Task, session: &mut Session, shared: &Shared) {
    let outcome = catch_unwind(AssertUnwindSafe(|| job.run(session, CallStart::new(&shared.metrics))));
    if outcome.is_err() || session.ctx.panicked.load(Ordering::SeqCst) {
        // A panic unwound past `CallStart::finish`: the call still counts, and runs no more.
        if outcome.is_err() {
            Metrics::add(&shared.metrics.calls, 1);
        }
        shared.metrics.running.store(0, Ordering::SeqCst);
        tracing::error!(database = %shared.database, "worker panicked; the database is now dead");
        shared.set(State::Dead);
    }
}

/// The counters at the start of a call, to record what the call did when it answers.
struct CallStart {
    started: Instant,
    get_pages: u64,
    commits: u64,
}

impl CallStart {
    fn new(m: &Metrics) -> CallStart {
        m.running.store(1, Ordering::SeqCst);
        CallStart {
            started: Instant::now(),
            get_pages: m.get_pages_calls.load(Ordering::Relaxed),
            commits: m.commits.load(Ordering::Relaxed),
        }
    }

    /// Records the call (`calls`, `lastCall*`, a slow call) before its answer is sent, so that a
    /// caller reading the metrics after the answer sees the call counted.
    fn finish(self, shared: &Shared) {
        let m = &shared.metrics;
        let elapsed = self.started.elapsed();
        let reads = m.get_pages_calls.load(Ordering::Relaxed) - self.get_pages;
        let commits = m.commits.load(Ordering::Relaxed) - self.commits;
        Metrics::add(&m.calls, 1);
        Metrics::set(&m.last_call_get_pages, reads);
        Metrics::set(&m.last_call_commits, commits);
        Metrics::set(&m.last_call_micros, elapsed.as_micros() as u64);
        m.running.store(0, Ordering::SeqCst);
        if elapsed >= SLOW_CALL {
            Metrics::add(&m.slow_calls, 1);
            tracing::warn!(database = %shared.database, micros = elapsed.as_micros() as u64, get_pages = reads, commits, "slow call");
        }
    }
}

/// Counts and logs a reader's call slower than `SLOW_CALL`. Page fetches are not attributed:
/// the counters are shared by every thread of the database.
pub(crate) fn note_slow_read(m: &Metrics, database: &str, elapsed: Duration) {
    if elapsed >= SLOW_CALL {
        Metrics::add(&m.slow_calls, 1);
        tracing::warn!(database = %database, micros = elapsed.as_micros() as u64, reader = true, "slow call");
    }
}
