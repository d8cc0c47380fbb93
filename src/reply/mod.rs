//! Answers on their way from the databases' worker threads to the JS thread.
//!
//! Three parts, dependencies pointing one way (`mailbox` -> `waiter` -> `handover`):
//!
//! - [`handover`]: the per-JS-thread state that lets a worker hand an answer to a JS thread that is
//!   waiting for it, instead of waking the event loop (`IDLE` -> `WAITING` -> `HANDED` -> `IDLE`),
//!   and the count of answers queued. Plain atomics; unit-tested on its own.
//! - [`waiter`]: per Node environment, the mailboxes with answers outstanding, and
//!   `waitForReplies()`, which index.js calls from a `setImmediate` to wait briefly for them.
//! - [`mailbox`]: one threadsafe function per database and the queue of its settled answers; a
//!   worker wakes the event loop only when it pushes into an empty queue (and nobody waits), and
//!   the JS thread settles the whole queue per wake-up.
//!
//! # Who touches what
//!
//! | field | written by | read by |
//! | --- | --- | --- |
//! | mailbox `queue` | worker (push), JS thread (drain), napi finalizer (clear); all under its mutex | same |
//! | mailbox `outstanding` | JS thread only (one per promise made, minus those settled) | JS thread |
//! | mailbox `alive` | JS thread (set at creation), napi finalizer (cleared); a mutex held while calling the threadsafe function | worker, releaser |
//! | mailbox `awake` | the worker (parks / wakes) | JS thread (is waiting worth it?) |
//! | handover `state` | JS thread (`WAITING`, back to `IDLE`), worker (`WAITING` -> `HANDED` by compare-exchange) | both |
//! | handover `queued` | worker and JS thread, each under the mailbox's queue lock | JS thread (spin) |
//! | waiter's per-env list and backoff | JS thread only (thread-local) | JS thread |
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

pub(crate) use mailbox::Mailbox;
