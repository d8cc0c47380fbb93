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

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use napi::{sys, Env};
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

/// What one Node environment's JS thread keeps for its waits (JS thread only).
struct EnvWaiter {
    env: usize,
    waiter: Arc<Waiter>,
    /// Mailboxes of this environment with answers outstanding.
    tracked: Vec<Arc<Inner>>,
    /// (waits still to skip, current backoff).
    backoff: (u32, u32),
}

thread_local! {
    /// Per environment: usually one per thread, but an embedder (Electron) may run several on one.
    static ENVS: RefCell<Vec<EnvWaiter>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `env`'s entry, made (with a cleanup hook that removes it) on first use.
fn with_env<T>(env: sys::napi_env, f: impl FnOnce(&mut EnvWaiter) -> T) -> T {
    ENVS.with(|envs| {
        let mut envs = envs.borrow_mut();
        let i = match envs.iter().position(|e| e.env == env as usize) {
            Some(i) => i,
            None => {
                // SAFETY: on the JS thread of `env`; the hook gets the env pointer back as its arg.
                unsafe { sys::napi_add_env_cleanup_hook(env, Some(env_gone), env as *mut c_void) };
                let waiter = Arc::new(Waiter::default());
                envs.push(EnvWaiter { env: env as usize, waiter, tracked: Vec::new(), backoff: (0, 0) });
                envs.len() - 1
            }
        };
        f(&mut envs[i])
    })
}

unsafe extern "C" fn env_gone(arg: *mut c_void) {
    let _ = ENVS.try_with(|envs| {
        if let Ok(mut envs) = envs.try_borrow_mut() {
            envs.retain(|e| e.env != arg as usize);
        }
    });
}

/// The waiter of `env` (JS thread).
pub(crate) fn of_env(env: sys::napi_env) -> Arc<Waiter> {
    with_env(env, |e| Arc::clone(&e.waiter))
}

/// A mailbox of `env` now has answers outstanding (JS thread).
pub(crate) fn track(env: sys::napi_env, mailbox: &Arc<Inner>) {
    with_env(env, |e| e.tracked.push(Arc::clone(mailbox)));
}

/// A mailbox of `env` has no answers outstanding any more (JS thread). Never makes an entry (the
/// environment may be going away).
pub(crate) fn forget(env: sys::napi_env, mailbox: &Inner) {
    let _ = ENVS.try_with(|envs| {
        if let Ok(mut envs) = envs.try_borrow_mut() {
            if let Some(e) = envs.iter_mut().find(|e| e.env == env as usize) {
                e.tracked.retain(|m| !std::ptr::eq(Arc::as_ptr(m), mailbox));
            }
        }
    });
}

/// Waits briefly for answers due from awake workers and settles every answer that has arrived;
/// returns how many it settled. Called by index.js once the JS stack is empty; never needed for
/// correctness (the event loop delivers every answer anyway).
#[napi]
pub fn wait_for_replies(env: Env) -> u32 {
    let env = env.raw();
    // A database opened with `replyWaitMicros: 0` is left to the event loop entirely.
    let (waiter, tracked, backoff) = with_env(env, |e| {
        let tracked: Vec<_> = e.tracked.iter().filter(|m| m.may_wait()).cloned().collect();
        (Arc::clone(&e.waiter), tracked, e.backoff)
    });
    if tracked.is_empty() {
        return 0;
    }
    let ready = waiter.queued.load(Ordering::SeqCst) > 0;
    if !ready {
        let (waited, backoff) = wait(&waiter, &tracked, backoff);
        with_env(env, |e| e.backoff = backoff);
        if !waited {
            return 0;
        }
    }
    let mut settled = 0;
    for mailbox in &tracked {
        // SAFETY: on the JS thread, and `env` is the mailboxes' own (tracked per environment).
        let n = unsafe { mailbox.drain(env) };
        mailbox.count_inline(n);
        settled += n;
    }
    settled as u32
}

/// Spins until an answer is queued or the budget runs out; returns whether one came, and the
/// backoff to keep.
fn wait(waiter: &Waiter, tracked: &[Arc<Inner>], (skip, backoff): (u32, u32)) -> (bool, (u32, u32)) {
    if skip > 0 {
        return (false, (skip - 1, backoff));
    }
    let no_wait = (false, (skip, backoff));
    // Only while each database has at most one answer due (actors awaiting their calls): with more
    // in flight, a worker is ahead of the JS thread and the event loop's wake-up delivers its
    // answers in batches, where waiting would take them one by one (measured: 64 in flight went
    // from ~4 to ~8 µs a call).
    if tracked.iter().any(|m| m.outstanding_calls() > 1) {
        return no_wait;
    }
    let budget = tracked
        .iter()
        .filter(|m| m.outstanding_calls() == 1 && m.awake.load(Ordering::SeqCst))
        .map(|m| m.reply_wait)
        .max()
        .unwrap_or_default();
    if budget.is_zero() {
        return no_wait;
    }
    // Until the first answer: waiting for all of them measured slower (on 2 cores the spinning
    // JS thread takes a core from the workers it waits for).
    waiter.state.store(WAITING, Ordering::SeqCst);
    let until = Instant::now() + budget;
    while waiter.queued.load(Ordering::SeqCst) == 0 && Instant::now() < until {
        for _ in 0..16 {
            std::hint::spin_loop();
        }
    }
    // From now on workers wake the event loop. A worker that handed an answer over has queued it
    // already; a hand-over without an answer queued is a late one from a previous wait (its
    // answer was drained then), not a reason to count this wait as answered.
    waiter.state.store(IDLE, Ordering::SeqCst);
    if waiter.queued.load(Ordering::SeqCst) == 0 {
        let backoff = (backoff * 2).clamp(1, MAX_SKIP);
        return (false, (backoff, backoff));
    }
    (true, (0, 0))
}
