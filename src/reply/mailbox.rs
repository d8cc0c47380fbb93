//! Replies from a database's worker to the JS thread, delivered in batches.
//!
//! napi's deferred makes one threadsafe function per promise: a creation, a wake-up of the event
//! loop and a release for every call. Here each database has one threadsafe function for all its
//! calls. The worker pushes a settled reply onto a queue and wakes the JS thread only when the queue
//! was empty; the JS thread then settles every queued promise in one go. Under load, many replies
//! share one wake-up.
//!
//! When the JS thread has run out of work with answers due from awake workers, it may wait for
//! them instead of sleeping in the event loop ([`super::waiter`]): a worker then hands its reply
//! over without waking the loop ([`super::handover`]).
//!
//! The threadsafe function is referenced (keeps Node's event loop alive) only while calls are
//! outstanding, and released once the handle and every outstanding call are gone.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use depot_client::Admission;
use napi::bindgen_prelude::ToNapiValue;
use napi::sys;

use super::handover::Handover;
use super::waiter::{self, Source};
use crate::error::ApiError;

/// Work for the JS thread: settles one promise.
type Delivery = Box<dyn FnOnce(sys::napi_env) + Send>;

/// Shared by the threadsafe function (its context) and every outstanding call.
pub(crate) struct Inner {
    queue: Mutex<Vec<Delivery>>,
    /// Calls whose promise is not settled yet (touched on the JS thread only).
    outstanding: AtomicUsize,
    tsfn: AtomicUsize,
    /// False once napi finalized the threadsafe function (at the latest when the environment
    /// shuts down, possibly while workers still answer): from then on it must not be touched.
    /// Held while calling into it, so finalization cannot happen in between.
    alive: Mutex<bool>,
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
}

impl Inner {
    fn tsfn(&self) -> sys::napi_threadsafe_function {
        self.tsfn.load(Ordering::Acquire) as sys::napi_threadsafe_function
    }

    /// Settles every queued promise (on the JS thread) and unreferences the threadsafe function
    /// once nothing is outstanding.
    unsafe fn drain_queue(&self, env: sys::napi_env) -> usize {
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
            sys::napi_unref_threadsafe_function(env, self.tsfn());
            waiter::forget(self.env as sys::napi_env, self as *const Inner as *const ());
        }
        n
    }

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
    unsafe fn drain(&self, env: sys::napi_env) -> usize {
        self.drain_queue(env)
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

    fn count_inline(&self, n: usize) {
        self.inline.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Releases the threadsafe function when the handle and every outstanding call are done with it
/// (from any thread). Queued deliveries are still run before napi finalizes it.
struct Releaser(Arc<Inner>);

impl Drop for Releaser {
    fn drop(&mut self) {
        let alive = self.0.alive.lock().unwrap_or_else(|e| e.into_inner());
        if *alive {
            // SAFETY: created in `Mailbox::new`, not finalized (checked under the lock), and
            // released exactly once, here.
            unsafe {
                sys::napi_release_threadsafe_function(
                    self.0.tsfn(),
                    sys::ThreadsafeFunctionReleaseMode::release,
                )
            };
        }
    }
}

/// One database's reply channel to the JS thread.
pub(crate) struct Mailbox {
    inner: Arc<Inner>,
    releaser: Arc<Releaser>,
}

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!("{what} failed (napi status {status})")))
    }
}

impl Mailbox {
    /// Creates the channel for a database whose worker sets `awake`, and whose answers the JS
    /// thread may wait for up to `reply_wait`. Must run on the JS thread.
    pub fn new(env: sys::napi_env, awake: Arc<AtomicBool>, reply_wait: Duration) -> napi::Result<Mailbox> {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
            tsfn: AtomicUsize::new(0),
            alive: Mutex::new(false),
            env: env as usize,
            handover: waiter::handover_of(env),
            awake,
            reply_wait,
            inline: AtomicU64::new(0),
        });
        let context = Arc::into_raw(inner.clone()) as *mut c_void;
        let name = b"depot-sqlite reply";
        let mut name_value = std::ptr::null_mut();
        let mut tsfn = std::ptr::null_mut();
        unsafe {
            check(
                sys::napi_create_string_utf8(
                    env,
                    name.as_ptr() as *const _,
                    name.len() as isize,
                    &mut name_value,
                ),
                "napi_create_string_utf8",
            )?;
            let status = sys::napi_create_threadsafe_function(
                env,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                name_value,
                0,
                1,
                context,
                Some(finalize),
                context,
                Some(drain),
                &mut tsfn,
            );
            if status != sys::Status::napi_ok {
                drop(Arc::from_raw(context as *const Inner));
                return Err(napi::Error::from_reason(format!(
                    "napi_create_threadsafe_function failed ({status})"
                )));
            }
            // Idle, it must not keep the process alive; `pending` references it while calls run.
            check(sys::napi_unref_threadsafe_function(env, tsfn), "napi_unref_threadsafe_function")?;
        }
        inner.tsfn.store(tsfn as usize, Ordering::Release);
        *inner.alive.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(Mailbox { inner: inner.clone(), releaser: Arc::new(Releaser(inner)) })
    }

    /// A new promise settled through this mailbox. Must run on the JS thread.
    pub fn pending<T: ToNapiValue + Send + 'static>(
        &self,
        env: sys::napi_env,
    ) -> napi::Result<(Slot<T>, sys::napi_value)> {
        let mut deferred = std::ptr::null_mut();
        let mut promise = std::ptr::null_mut();
        check(unsafe { sys::napi_create_promise(env, &mut deferred, &mut promise) }, "napi_create_promise")?;
        if self.inner.outstanding.fetch_add(1, Ordering::SeqCst) == 0 {
            check(
                unsafe { sys::napi_ref_threadsafe_function(env, self.inner.tsfn()) },
                "napi_ref_threadsafe_function",
            )?;
            waiter::track(env, self.inner.clone());
        }
        let slot = Slot { deferred: deferred as usize, releaser: self.releaser.clone(), _value: PhantomData };
        Ok((slot, promise))
    }
}

impl Mailbox {
    /// How many answers the waiter took.
    pub fn answered_inline(&self) -> u64 {
        self.inner.inline.load(Ordering::Relaxed)
    }
}

/// The settling half of one promise; callable from any thread, exactly once.
pub(crate) struct Slot<T> {
    deferred: usize,
    /// Keeps the threadsafe function alive until this reply is queued; its `Inner` is the channel.
    releaser: Arc<Releaser>,
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
        let inner = &self.releaser.0;
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
            let alive = inner.alive.lock().unwrap_or_else(|e| e.into_inner());
            if *alive {
                // SAFETY: not released (the releaser held by `self`) nor finalized (the lock).
                unsafe {
                    sys::napi_call_threadsafe_function(
                        inner.tsfn(),
                        std::ptr::null_mut(),
                        sys::ThreadsafeFunctionCallMode::nonblocking,
                    )
                };
            }
        }
        drop(self.releaser);
    }
}

/// Runs on the JS thread: settles every queued promise.
unsafe extern "C" fn drain(
    env: sys::napi_env,
    _js: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    let inner = &*(context as *const Inner);
    if env.is_null() {
        // The environment is going away: nobody is left to settle for.
        let mut queue = inner.queue.lock().unwrap_or_else(|e| e.into_inner());
        inner.uncount(queue.len());
        queue.clear();
        return;
    }
    inner.drain_queue(env);
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let inner = Arc::from_raw(data as *const Inner);
    *inner.alive.lock().unwrap_or_else(|e| e.into_inner()) = false;
    let mut queue = inner.queue.lock().unwrap_or_else(|e| e.into_inner());
    inner.uncount(queue.len());
    queue.clear();
}
