//! The JS thread's short wait for answers that are about to arrive.
//!
//! Waking Node's event loop from another thread costs ~15 µs here, several times a point select's
//! own cost. So when the JS thread has nothing left to run while answers are due from awake workers,
//! one per database at most (actors awaiting their calls), it spins until the first arrives (at most
//! the databases' `replyWaitMicros`) and settles every answer there is; the worker finds it waiting
//! and hands its answer over without waking the loop.
//!
//! index.js calls [`wait_for_replies`] from a `setImmediate` scheduled when it makes a call: the
//! JS stack is empty by then and pending I/O has been polled, and a burst of calls made in one go
//! has been dispatched in full before anything waits. No promise ever settles inside the call
//! that made it. A wait that runs out makes the next ones skip (1, 2, 4 ... 64 times), so slow
//! statements stop costing the event loop its spin.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use napi::Env;
use napi_derive::napi;

use crate::mailbox::Inner;

/// Nobody waits: a worker wakes the event loop for its answer.
const IDLE: u8 = 0;
/// The JS thread waits in [`wait_for_replies`].
const WAITING: u8 = 1;
/// A worker queued an answer for the waiting JS thread and did not wake the loop.
const HANDED: u8 = 2;

/// Longest backoff, in waits skipped.
const MAX_SKIP: u32 = 64;

/// One JS thread's waiter, shared by the mailboxes made on that thread and their workers.
#[derive(Default)]
pub(crate) struct Waiter {
    state: AtomicU8,
    /// Answers queued in this thread's mailboxes and not yet drained.
    pub queued: AtomicUsize,
}

impl Waiter {
    /// Worker side, after queuing an answer into an empty queue: hands it to a waiting JS thread.
    /// False when nobody waits (the caller then wakes the event loop).
    pub fn hand_over(&self) -> bool {
        self.state.compare_exchange(WAITING, HANDED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }
}

thread_local! {
    static WAITER: Arc<Waiter> = Arc::new(Waiter::default());
    /// Mailboxes of this thread with answers outstanding.
    static TRACKED: RefCell<Vec<Arc<Inner>>> = const { RefCell::new(Vec::new()) };
    /// (waits still to skip, current backoff).
    static BACKOFF: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// The calling (JS) thread's waiter.
pub(crate) fn of_this_thread() -> Arc<Waiter> {
    WAITER.with(Arc::clone)
}

/// A mailbox now has answers outstanding (JS thread).
pub(crate) fn track(mailbox: &Arc<Inner>) {
    TRACKED.with(|t| t.borrow_mut().push(Arc::clone(mailbox)));
}

/// A mailbox has no answers outstanding any more (JS thread).
pub(crate) fn forget(mailbox: &Inner) {
    TRACKED.with(|t| t.borrow_mut().retain(|m| !std::ptr::eq(Arc::as_ptr(m), mailbox)));
}

/// Waits briefly for answers due from awake workers and settles every answer that has arrived;
/// returns how many it settled. Called by index.js once the JS stack is empty; never needed for
/// correctness (the event loop delivers every answer anyway).
#[napi]
pub fn wait_for_replies(env: Env) -> u32 {
    // A database opened with `replyWaitMicros: 0` is left to the event loop entirely.
    let tracked: Vec<_> =
        TRACKED.with(|t| t.borrow().iter().filter(|m| !m.reply_wait.is_zero()).cloned().collect());
    if tracked.is_empty() {
        return 0;
    }
    let waiter = of_this_thread();
    let ready = waiter.queued.load(Ordering::SeqCst) > 0;
    if !ready && !wait(&waiter, &tracked) {
        return 0;
    }
    let mut settled = 0;
    for mailbox in &tracked {
        // SAFETY: on the JS thread, whose env this is (mailboxes are tracked per thread).
        let n = unsafe { mailbox.drain(env.raw()) };
        mailbox.count_inline(n);
        settled += n;
    }
    settled as u32
}

/// Spins until an answer is queued (true) or the budget runs out (false, and backs off).
fn wait(waiter: &Waiter, tracked: &[Arc<Inner>]) -> bool {
    let (skip, backoff) = BACKOFF.get();
    if skip > 0 {
        BACKOFF.set((skip - 1, backoff));
        return false;
    }
    // Only while each database has at most one answer due (actors awaiting their calls): with more
    // in flight, a worker is ahead of the JS thread and the event loop's wake-up delivers its
    // answers in batches, where waiting would take them one by one (measured: 64 in flight went
    // from ~4 to ~8 µs a call).
    if tracked.iter().any(|m| m.outstanding_calls() > 1) {
        return false;
    }
    let budget = tracked
        .iter()
        .filter(|m| m.outstanding_calls() == 1 && m.awake.load(Ordering::SeqCst))
        .map(|m| m.reply_wait)
        .max()
        .unwrap_or_default();
    if budget.is_zero() {
        return false;
    }
    // Until the first answer: waiting for all of them measured slower (on 2 cores the spinning
    // JS thread takes a core from the workers it waits for).
    waiter.state.store(WAITING, Ordering::SeqCst);
    let until = Instant::now() + budget;
    loop {
        for _ in 0..16 {
            std::hint::spin_loop();
        }
        if waiter.queued.load(Ordering::SeqCst) > 0 {
            break;
        }
        if Instant::now() >= until {
            // Too late: from now on workers wake the event loop. If one handed an answer over
            // meanwhile, the exchange fails and the answer is ours to settle.
            if waiter.state.compare_exchange(WAITING, IDLE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                let backoff = (backoff * 2).clamp(1, MAX_SKIP);
                BACKOFF.set((backoff, backoff));
                return false;
            }
            break;
        }
    }
    // Back to IDLE before draining: an answer queued after this wakes the event loop as usual.
    waiter.state.store(IDLE, Ordering::SeqCst);
    BACKOFF.set((0, 0));
    true
}
