//! Answers on their way from the databases' worker threads to the JS thread.
//!
//! Four parts, dependencies pointing one way (`mailbox` -> `waiter` -> `wakeup`, `handover`):
//!
//! - [`handover`]: the per-JS-thread state that lets a worker hand an answer to a JS thread that is
//!   waiting for it, instead of waking the event loop (`IDLE` -> `WAITING` -> `HANDED` -> `IDLE`),
//!   and the count of answers queued. Plain atomics; unit-tested on its own.
//! - [`wakeup`]: one threadsafe function per Node environment, shared by its databases, and the
//!   list of mailboxes with answers the JS thread has not been woken for yet.
//! - [`waiter`]: per Node environment, the mailboxes with answers outstanding, its wake-up, and
//!   `waitForReplies()`, which index.js calls from a `setImmediate` to wait briefly for them.
//! - [`mailbox`]: one database's queue of settled answers; a worker wakes the event loop only
//!   when it pushes into an empty queue (and nobody waits), and the JS thread settles the whole
//!   queue per wake-up.
//!
//! # Who touches what
//!
//! | field | written by | read by |
//! | --- | --- | --- |
//! | mailbox `queue` | worker (push), JS thread (drain), napi finalizer (clear); all under its mutex | same |
//! | mailbox `outstanding` | JS thread only (one per promise made, minus those settled) | JS thread |
//! | mailbox `awake` | the worker (parks / wakes) | JS thread (is waiting worth it?) |
//! | wake-up `ready` | worker (push), JS thread (take), napi finalizer (take); under its mutex | same |
//! | wake-up `alive` | JS thread (set at creation), napi finalizer (cleared); a mutex held while calling the threadsafe function | worker, JS thread |
//! | wake-up `holders` | JS thread only (mailboxes with calls outstanding) | JS thread |
//! | handover `state` | JS thread (`WAITING`, back to `IDLE`), worker (`WAITING` -> `HANDED` by compare-exchange) | both |
//! | handover `queued` | worker and JS thread, each under the mailbox's queue lock | JS thread (spin) |
//! | waiter's per-env list | JS thread only (thread-local) | JS thread |
//!
//! # Guarantees
//!
//! - Every answer is delivered exactly once: by a drain from the event loop's wake-up or from a
//!   wait, both on the JS thread. A worker that hands over without waking has queued its answer
//!   first, under the same lock the JS thread drains with.
//! - No promise settles inside the call that made it (waits run from `setImmediate`).
//! - A database opened with `replyWaitMicros: 0` never hands over: its answers always wake the
//!   event loop, so a JS thread waiting for another database cannot leave them undelivered.
//! - The admission of each call is released on the JS thread just before its promise settles.

pub(crate) mod handover;
pub(crate) mod mailbox;
pub(crate) mod waiter;
pub(crate) mod wakeup;

use std::time::Duration;

use napi::sys;

pub(crate) use mailbox::Mailbox;

/// What the JS thread's waiter and wake-up need of a database's mailbox.
pub(crate) trait Source: Send + Sync {
    /// Settles every queued answer (JS thread); returns how many.
    ///
    /// # Safety
    /// On the JS thread of `env`, the environment the mailbox was made in.
    unsafe fn drain(&self, env: sys::napi_env) -> usize;
    /// Answers not yet delivered to JavaScript.
    fn outstanding(&self) -> usize;
    /// Whether the database's worker is awake (running or spinning for its next command).
    fn awake(&self) -> bool;
    /// How long the JS thread may wait for this database (`replyWaitMicros`; zero: never).
    fn reply_wait(&self) -> Duration;
    /// How long this database's last answer took, from the call to its answer being queued.
    fn recent(&self) -> Duration;
    /// Counts answers taken by a wait.
    fn count_inline(&self, n: usize);
    /// Drops every queued answer unsettled: the environment is shutting down.
    fn discard(&self);
}
