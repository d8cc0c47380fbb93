//! Replies from a database's worker to the JS thread, delivered in batches.
//!
//! napi's deferred makes one threadsafe function per promise: a creation, a wake-up of the event
//! loop and a release for every call. Here each database has one queue for all its calls, and
//! every database of a Node environment shares one threadsafe function ([`super::wakeup`]). The
//! worker pushes a settled reply onto the queue and wakes the JS thread only when the queue was
//! empty; the JS thread then settles every queued promise in one go. Under load, many replies
//! share one wake-up.
//!
//! When the JS thread has run out of work with answers due from awake workers, it may wait for
//! them instead of sleeping in the event loop ([`super::waiter`]): a worker then hands its reply
//! over without waking the loop ([`super::handover`]).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use depot_client::Admission;
use napi::bindgen_prelude::ToNapiValue;
use napi::sys;

use super::handover::Handover;
use super::waiter;
use super::wakeup::Wakeup;
use super::Source;
use crate::error::ApiError;

/// Work for the JS thread: settles one promise.
type Delivery = Box<dyn FnOnce(sys::napi_env) + Send>;

/// One database's queue, shared by its handle, every outstanding call, the environment's waiter
/// and (while listed as ready) its wake-up.
pub(crate) struct Inner {
    queue: Mutex<Vec<Delivery>>,
    /// Calls whose promise is not settled yet (touched on the JS thread only).
    outstanding: AtomicUsize,
    /// The environment's event-loop wake-up, shared with its other mailboxes.
    wakeup: Arc<Wakeup>,
    /// The environment the mailbox was made in (its JS thread's waiter is per environment).
    env: usize,
    /// That environment's hand-over state, shared by its mailboxes and their workers.
    handover: Arc<Handover>,
    /// The worker's flag: not parked (see `depot_client::Database::awake_flag`).
    awake: Arc<AtomicBool>,
    /// How long the waiter may wait for this database's answers.
    reply_wait: Duration,
    /// Replies taken by the waiter (touched on the JS thread only).
    inline: AtomicU64,
    /// Microseconds the last answer took from the call to its queue (set by the worker).
    recent_micros: AtomicU64,
}

impl Inner {
    /// Whether the JS thread may wait for this database's answers (`replyWaitMicros` > 0). The
    /// hand-over's `queued` counts only such answers, and only they are handed over: an answer of
    /// a database with waiting off always wakes the event loop (handing it to a JS thread that
    /// waits for another database left it undelivered).
    fn may_wait(&self) -> bool {
        !self.reply_wait.is_zero()
    }

    /// Answers queued (under the queue lock).
    fn count(&self, n: usize) {
        if self.may_wait() {
            self.handover.add_queued(n);
        }
    }

    /// Answers taken or dropped from the queue (under the queue lock).
    fn uncount(&self, n: usize) {
        if self.may_wait() {
            self.handover.remove_queued(n);
        }
    }
}

impl Source for Inner {
    /// Settles every queued promise; once nothing is outstanding, the event loop need not stay
    /// alive for this database.
    unsafe fn drain(&self, env: sys::napi_env) -> usize {
        let batch = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            self.uncount(queue.len());
            std::mem::take(&mut *queue)
        };
        let n = batch.len();
        for delivery in batch {
            delivery(env);
        }
        if n > 0 && self.outstanding.fetch_sub(n, Ordering::SeqCst) == n {
            self.wakeup.release(env);
            waiter::forget(self.env as sys::napi_env, self as *const Inner as *const ());
        }
        n
    }

    fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    fn awake(&self) -> bool {
        self.awake.load(Ordering::SeqCst)
    }

    fn reply_wait(&self) -> Duration {
        self.reply_wait
    }

    fn recent(&self) -> Duration {
        Duration::from_micros(self.recent_micros.load(Ordering::Relaxed))
    }

    fn count_inline(&self, n: usize) {
        self.inline.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn discard(&self) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.uncount(queue.len());
        queue.clear();
    }
}

/// One database's reply channel to the JS thread.
pub(crate) struct Mailbox {
    inner: Arc<Inner>,
}

impl Mailbox {
    /// Creates the channel for a database whose worker sets `awake`, and whose answers the JS
    /// thread may wait for up to `reply_wait`. Must run on the JS thread.
    pub fn new(env: sys::napi_env, awake: Arc<AtomicBool>, reply_wait: Duration) -> napi::Result<Mailbox> {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
            wakeup: waiter::wakeup_of(env)?,
            env: env as usize,
            handover: waiter::handover_of(env),
            awake,
            reply_wait,
            inline: AtomicU64::new(0),
            recent_micros: AtomicU64::new(0),
        });
        Ok(Mailbox { inner })
    }

    /// A new promise settled through this mailbox. Must run on the JS thread.
    pub fn pending<T: ToNapiValue + Send + 'static>(
        &self,
        env: sys::napi_env,
    ) -> napi::Result<(Slot<T>, sys::napi_value)> {
        let mut deferred = std::ptr::null_mut();
        let mut promise = std::ptr::null_mut();
        // SAFETY: on the JS thread of `env`.
        let status = unsafe { sys::napi_create_promise(env, &mut deferred, &mut promise) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!(
                "napi_create_promise failed (napi status {status})"
            )));
        }
        if self.inner.outstanding.fetch_add(1, Ordering::SeqCst) == 0 {
            self.inner.wakeup.hold(env);
            waiter::track(env, self.inner.clone());
        }
        let slot = Slot {
            deferred: deferred as usize,
            inner: self.inner.clone(),
            made: Instant::now(),
            _value: PhantomData,
        };
        Ok((slot, promise))
    }

    /// How many calls of this database wait for their answers (JS thread).
    pub fn in_flight(&self) -> usize {
        self.inner.outstanding.load(Ordering::SeqCst)
    }

    /// How many answers the waiter took.
    pub fn answered_inline(&self) -> u64 {
        self.inner.inline.load(Ordering::Relaxed)
    }
}

/// The settling half of one promise; callable from any thread, exactly once.
pub(crate) struct Slot<T> {
    deferred: usize,
    /// The database's mailbox.
    inner: Arc<Inner>,
    /// When the call was made (its answer's latency sizes the JS thread's next wait).
    made: Instant,
    _value: PhantomData<fn(T)>,
}

impl<T: ToNapiValue + Send + 'static> Slot<T> {
    /// Queues the outcome; the call's admission is released on the JS thread just before
    /// JavaScript sees the outcome, so `maxQueue` also bounds answers on their way to it.
    pub fn settle(self, outcome: Result<T, ApiError>, admission: Admission) {
        let deferred = self.deferred;
        let delivery: Delivery = Box::new(move |env| {
            drop(admission);
            let deferred = deferred as sys::napi_deferred;
            // SAFETY: on the JS thread of the env the deferred belongs to, settled once.
            unsafe {
                let resolved = match outcome {
                    Ok(value) => T::to_napi_value(env, value).map_err(ApiError::from),
                    Err(error) => Err(error),
                };
                match resolved {
                    Ok(value) => sys::napi_resolve_deferred(env, deferred, value),
                    Err(error) => sys::napi_reject_deferred(env, deferred, error.into_value(env)),
                };
            }
        });
        let inner = self.inner;
        let took = self.made.elapsed().as_micros().min(u64::MAX as u128) as u64;
        inner.recent_micros.store(took, Ordering::Relaxed);
        let was_empty = {
            let mut queue = inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push(delivery);
            inner.count(1);
            queue.len() == 1
        };
        // A JS thread waiting for answers takes this one itself: no event-loop wake-up. Never for
        // a database with waiting off: the waiter leaves its answers alone.
        let handed = was_empty && inner.may_wait() && inner.handover.hand_over();
        if was_empty && !handed {
            let wakeup = Arc::clone(&inner.wakeup);
            wakeup.ready(inner);
        }
    }
}
