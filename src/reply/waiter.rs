//! The JS thread's short wait for answers that are about to arrive.
//!
//! Waking Node's event loop from another thread costs ~15 µs here, several times a point select's
//! own cost. So when the JS thread has nothing left to run while answers are due from awake workers,
//! one per database at most (actors awaiting their calls), it spins until the first arrives (for
//! about as long as each database's last answer took, see [`wait_for`]) and settles every answer
//! there is; the worker finds it waiting and hands its answer over without waking the loop
//! ([`super::handover`]).
//!
//! index.js calls [`wait_for_replies`] from a `setImmediate` scheduled when it makes a call: the
//! JS stack is empty by then and pending I/O has been polled, and a burst of calls made in one go
//! has been dispatched in full before anything waits. No promise ever settles inside the call
//! that made it.
//!
//! This module keeps, per Node environment, the mailboxes with answers outstanding; it sees them
//! through [`Source`], so it does not depend on the mailbox module (which depends on it).

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use napi::{sys, Env};
use napi_derive::napi;

use super::handover::Handover;
use super::wakeup::Wakeup;
use super::Source;

/// What one Node environment's JS thread keeps for its waits (JS thread only).
struct EnvWaiter {
    env: usize,
    handover: Arc<Handover>,
    /// The environment's event-loop wake-up, made with its first mailbox.
    wakeup: Option<Arc<Wakeup>>,
    /// Mailboxes of this environment with answers outstanding.
    tracked: Vec<Arc<dyn Source>>,
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
                let handover = Arc::new(Handover::default());
                envs.push(EnvWaiter { env: env as usize, handover, wakeup: None, tracked: Vec::new() });
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

/// The hand-over state of `env` (JS thread).
pub(crate) fn handover_of(env: sys::napi_env) -> Arc<Handover> {
    with_env(env, |e| Arc::clone(&e.handover))
}

/// The event-loop wake-up of `env`, made on first use (JS thread).
pub(crate) fn wakeup_of(env: sys::napi_env) -> napi::Result<Arc<Wakeup>> {
    with_env(env, |e| match &e.wakeup {
        Some(wakeup) => Ok(Arc::clone(wakeup)),
        None => {
            let wakeup = Wakeup::new(env)?;
            e.wakeup = Some(Arc::clone(&wakeup));
            Ok(wakeup)
        }
    })
}

/// A mailbox of `env` now has answers outstanding (JS thread).
pub(crate) fn track(env: sys::napi_env, source: Arc<dyn Source>) {
    with_env(env, |e| e.tracked.push(source));
}

/// A mailbox of `env` has no answers outstanding any more (JS thread). Never makes an entry (the
/// environment may be going away).
pub(crate) fn forget(env: sys::napi_env, source: *const ()) {
    let _ = ENVS.try_with(|envs| {
        if let Ok(mut envs) = envs.try_borrow_mut() {
            if let Some(e) = envs.iter_mut().find(|e| e.env == env as usize) {
                e.tracked.retain(|m| Arc::as_ptr(m) as *const () != source);
            }
        }
    });
}

/// A wait is scheduled (index.js, with the `setImmediate` that will run [`wait_for_replies`]):
/// until it runs, workers hand their answers over instead of waking the event loop, since that
/// wait drains them anyway. Must be followed by a `waitForReplies()` call on this thread.
#[napi]
pub fn arm_reply_wait(env: Env) {
    with_env(env.raw(), |e| e.handover.arm());
}

/// Waits briefly for answers due from awake workers and settles every answer that has arrived;
/// returns how many it settled. Called by index.js once the JS stack is empty (and armed when it
/// was scheduled, see [`arm_reply_wait`]).
#[napi]
pub fn wait_for_replies(env: Env) -> u32 {
    let env = env.raw();
    // A database opened with `replyWaitMicros: 0` is left to the event loop entirely.
    let (handover, tracked) = with_env(env, |e| {
        let tracked: Vec<_> = e.tracked.iter().filter(|m| !m.reply_wait().is_zero()).cloned().collect();
        (Arc::clone(&e.handover), tracked)
    });
    let waited = !tracked.is_empty()
        && (handover.any_queued() || budget(&tracked).is_some_and(|budget| handover.wait_first(budget)));
    // Workers wake the event loop again from here on; an answer handed over before this point
    // was queued before it, so the drain below sees it.
    handover.disarm();
    if !waited && !handover.any_queued() {
        return 0;
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

/// The longest a wait grows to for a database whose answers take longer than its
/// `replyWaitMicros` (a 100-row range select: ~40 µs). Longer answers (a commit's fsync) are left to
/// the event loop's wake-up: spinning through them would cost a core for little.
const ADAPTIVE_WAIT_CAP: Duration = Duration::from_micros(100);

/// How long to wait, or `None` not to: only while each database has at most one answer due
/// (actors awaiting their calls). With more in flight, a worker is ahead of the JS thread and the
/// event loop's wake-up delivers its answers in batches, where waiting would take them one by one
/// (measured: 64 in flight went from ~4 to ~8 µs a call).
fn budget(tracked: &[Arc<dyn Source>]) -> Option<Duration> {
    if tracked.iter().any(|m| m.outstanding() > 1) {
        return None;
    }
    let budget = tracked
        .iter()
        .filter(|m| m.outstanding() == 1 && m.awake())
        .map(|m| wait_for(m.reply_wait(), m.recent()))
        .max()
        .unwrap_or_default();
    (!budget.is_zero()).then_some(budget)
}

/// The wait for one database, from how long its last answer took: at least `replyWaitMicros`, a
/// quarter more than that answer plus 10 µs when longer; none when even that exceeds the larger
/// of `replyWaitMicros` and [`ADAPTIVE_WAIT_CAP`] (slow statements cost no spin). A slow answer
/// thus skips one wait, and the next fast answer brings the waits back: no state beyond the last
/// answer. (A backoff that skipped 1, 2, 4 … 64 waits after each wait that ran out, used before,
/// kept skipping long after the cause was gone: in a fresh process, after the page fetches of the
/// first calls, most waits of the next thousands of calls were skipped.)
fn wait_for(reply_wait: Duration, recent: Duration) -> Duration {
    if reply_wait.is_zero() {
        return reply_wait;
    }
    let grown = recent + recent / 4 + Duration::from_micros(10);
    if grown <= reply_wait {
        reply_wait
    } else if grown <= reply_wait.max(ADAPTIVE_WAIT_CAP) {
        grown
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_follows_the_last_answer_up_to_its_cap_and_skips_slow_ones() {
        let us = Duration::from_micros;
        assert_eq!(wait_for(us(20), us(4)), us(20), "a point select: replyWaitMicros");
        assert_eq!(wait_for(us(20), us(40)), us(60), "a range select: a quarter more, plus slack");
        assert_eq!(wait_for(us(20), us(130)), us(0), "a commit: left to the event loop");
        assert_eq!(wait_for(us(300), us(40)), us(300), "a longer replyWaitMicros stands");
        assert_eq!(wait_for(us(300), us(200)), us(300), "and covers answers up to it");
        assert_eq!(wait_for(us(300), us(280)), us(0), "but not beyond");
        assert_eq!(wait_for(us(0), us(4)), us(0), "replyWaitMicros 0: never");
    }
}
