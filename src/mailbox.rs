//! Replies from a database's worker to the JS thread, delivered in batches.
//!
//! napi's deferred makes one threadsafe function per promise: a creation, a wake-up of the event
//! loop and a release for every call. Here each database has one threadsafe function for all its
//! calls. The worker pushes a settled reply onto a queue and wakes the JS thread only when the queue
//! was empty; the JS thread then settles every queued promise in one go. Under load, many replies
//! share one wake-up.
//!
//! A caller that expects its answer within microseconds (one call in flight, worker awake) may
//! instead wait for it on the JS thread ([`Mailbox::wait_for_reply`]): the worker then hands the
//! reply over without waking the event loop, and the promise is settled before it is returned.
//! Waking Node's event loop costs ~15 µs here, several times a point select's own cost.
//!
//! The threadsafe function is referenced (keeps Node's event loop alive) only while calls are
//! outstanding, and released once the handle and every outstanding call are gone.

use std::cell::Cell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::ToNapiValue;
use napi::sys;

use crate::error::ApiError;

/// Work for the JS thread: settles one promise.
type Delivery = Box<dyn FnOnce(sys::napi_env) + Send>;

/// Shared by the threadsafe function (its context) and every outstanding call.
struct Inner {
    queue: Mutex<Vec<Delivery>>,
    /// Calls whose promise is not settled yet (touched on the JS thread only).
    outstanding: AtomicUsize,
    tsfn: AtomicUsize,
    /// False once napi finalized the threadsafe function (at the latest when the environment
    /// shuts down, possibly while workers still answer): from then on it must not be touched.
    /// Held while calling into it, so finalization cannot happen in between.
    alive: Mutex<bool>,
    /// The JS thread's wait for a reply: [`IDLE`], [`WAITING`] or [`HANDED`].
    waiter: AtomicU8,
    /// Replies taken by a waiting JS thread (touched on the JS thread only).
    inline: AtomicU64,
}

/// Nobody waits on the JS thread: a worker wakes the event loop for its reply.
const IDLE: u8 = 0;
/// The JS thread is waiting in [`Mailbox::wait_for_reply`]: the first reply is handed to it.
const WAITING: u8 = 1;
/// A reply was queued for the waiting JS thread, which will drain the queue itself.
const HANDED: u8 = 2;

impl Inner {
    fn tsfn(&self) -> sys::napi_threadsafe_function {
        self.tsfn.load(Ordering::Acquire) as sys::napi_threadsafe_function
    }

    /// Settles every queued promise (on the JS thread) and unreferences the threadsafe function
    /// once nothing is outstanding.
    unsafe fn drain(&self, env: sys::napi_env) {
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let n = batch.len();
        for delivery in batch {
            delivery(env);
        }
        if n > 0 && self.outstanding.fetch_sub(n, Ordering::SeqCst) == n {
            sys::napi_unref_threadsafe_function(env, self.tsfn());
        }
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
    /// Backoff of [`Mailbox::wait_for_reply`] (JS thread only): after a wait that timed out, the
    /// next `skip` calls do not wait; each further timeout doubles the skip, up to [`MAX_SKIP`].
    /// A database whose calls are slower than the budget stops costing the event loop its spin.
    skip: Cell<u32>,
    backoff: Cell<u32>,
}

/// Longest backoff of the reply wait, in calls.
const MAX_SKIP: u32 = 64;

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!("{what} failed (napi status {status})")))
    }
}

impl Mailbox {
    /// Creates the channel. Must run on the JS thread.
    pub fn new(env: sys::napi_env) -> napi::Result<Mailbox> {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
            tsfn: AtomicUsize::new(0),
            alive: Mutex::new(false),
            waiter: AtomicU8::new(IDLE),
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
        Ok(Mailbox {
            inner: inner.clone(),
            releaser: Arc::new(Releaser(inner)),
            skip: Cell::new(0),
            backoff: Cell::new(0),
        })
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
        }
        let slot = Slot {
            deferred: deferred as usize,
            inner: self.inner.clone(),
            releaser: self.releaser.clone(),
            _value: PhantomData,
        };
        Ok((slot, promise))
    }
}

impl Mailbox {
    /// How many answers [`Self::wait_for_reply`] took.
    pub fn answered_inline(&self) -> u64 {
        self.inner.inline.load(Ordering::Relaxed)
    }

    /// Waits on the JS thread, at most `budget`, for the answer to the only outstanding call, and
    /// settles it here if it came. Returns whether it did; if not, the answer arrives through the
    /// event loop as usual. Must run on the JS thread.
    pub fn wait_for_reply(&self, env: sys::napi_env, budget: Duration) -> bool {
        let inner = &self.inner;
        if inner.outstanding.load(Ordering::SeqCst) != 1 {
            return false;
        }
        if self.skip.get() > 0 {
            self.skip.set(self.skip.get() - 1);
            return false;
        }
        inner.waiter.store(WAITING, Ordering::SeqCst);
        // A reply queued before the store above went through the event loop's wake-up path;
        // it is taken here all the same (the wake-up then finds nothing to do).
        let mut handed = !inner.queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
        let until = Instant::now() + budget;
        while !handed {
            for _ in 0..16 {
                std::hint::spin_loop();
            }
            handed = inner.waiter.load(Ordering::Acquire) == HANDED;
            if !handed && Instant::now() >= until {
                // Too late: from now on the worker wakes the event loop. If it handed the reply
                // over meanwhile, the exchange fails and the reply is ours to settle.
                handed =
                    inner.waiter.compare_exchange(WAITING, IDLE, Ordering::SeqCst, Ordering::SeqCst).is_err();
                if !handed {
                    let backoff = (self.backoff.get() * 2).clamp(1, MAX_SKIP);
                    self.backoff.set(backoff);
                    self.skip.set(backoff);
                    return false;
                }
            }
        }
        // Back to IDLE before draining: a reply queued after this wakes the event loop as usual.
        inner.waiter.store(IDLE, Ordering::SeqCst);
        inner.inline.fetch_add(1, Ordering::Relaxed);
        self.backoff.set(0);
        // SAFETY: on the JS thread, whose env this is.
        unsafe { inner.drain(env) };
        true
    }
}

/// The settling half of one promise; callable from any thread, exactly once.
pub(crate) struct Slot<T> {
    deferred: usize,
    inner: Arc<Inner>,
    releaser: Arc<Releaser>,
    _value: PhantomData<fn(T)>,
}

impl<T: ToNapiValue + Send + 'static> Slot<T> {
    /// Queues the outcome; `on_js_thread` runs on the JS thread just before JavaScript sees it.
    pub fn settle_then(self, outcome: Result<T, ApiError>, on_js_thread: impl FnOnce() + Send + 'static) {
        let deferred = self.deferred;
        let delivery: Delivery = Box::new(move |env| {
            on_js_thread();
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
        let was_empty = {
            let mut queue = self.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push(delivery);
            queue.len() == 1
        };
        // A JS thread waiting for this reply takes the queue itself: no event-loop wake-up.
        let handed = was_empty
            && self
                .inner
                .waiter
                .compare_exchange(WAITING, HANDED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        if was_empty && !handed {
            let alive = self.inner.alive.lock().unwrap_or_else(|e| e.into_inner());
            if *alive {
                // SAFETY: not released (the releaser held by `self`) nor finalized (the lock).
                unsafe {
                    sys::napi_call_threadsafe_function(
                        self.inner.tsfn(),
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
        inner.queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
        return;
    }
    inner.drain(env);
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let inner = Arc::from_raw(data as *const Inner);
    *inner.alive.lock().unwrap_or_else(|e| e.into_inner()) = false;
    inner.queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
}
