//! One threadsafe function per Node environment: the event-loop wake-up for every database's answers.
//!
//! A threadsafe function is a libuv async handle, and libuv looks at every async handle of a loop
//! at each wake-up. With one per database, a wake-up cost grew with the number of open databases
//! (perf, 30,000 open databases: `uv__async_io` took 66% of the CPU and an awake point select 3 to
//! 9 ms). So an environment has one, shared by its mailboxes:
//!
//! - a worker that queues an answer into an empty mailbox lists that mailbox as ready, and calls
//!   the threadsafe function only when the ready list was empty;
//! - the JS thread takes the whole list and drains each listed mailbox.
//!
//! A mailbox may be listed twice or drained by the waiter before the list is taken; draining an
//! empty mailbox does nothing. The threadsafe function is referenced (keeps the event loop alive)
//! while any mailbox of the environment has calls outstanding, and lives as long as the
//! environment: napi finalizes it when the environment shuts down.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use napi::sys;

use super::Source;

/// One environment's wake-up (shared by its mailboxes and their workers).
pub(crate) struct Wakeup {
    /// Mailboxes with answers queued that the JS thread has not been told about yet.
    ready: Mutex<Vec<Arc<dyn Source>>>,
    tsfn: AtomicUsize,
    /// False once napi finalized the threadsafe function (the environment is shutting down, while
    /// workers may still answer): from then on it must not be touched. Held while calling into it,
    /// so finalization cannot happen in between.
    alive: Mutex<bool>,
    /// Mailboxes with calls outstanding (JS thread only): referenced while non-zero.
    holders: AtomicUsize,
}

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!("{what} failed (napi status {status})")))
    }
}

impl Wakeup {
    /// Creates `env`'s wake-up, unreferenced. Must run on the JS thread of `env`.
    pub fn new(env: sys::napi_env) -> napi::Result<Arc<Wakeup>> {
        let wakeup = Arc::new(Wakeup {
            ready: Mutex::new(Vec::new()),
            tsfn: AtomicUsize::new(0),
            alive: Mutex::new(false),
            holders: AtomicUsize::new(0),
        });
        // napi's reference: given back (and dropped) by `finalize`.
        let context = Arc::into_raw(wakeup.clone()) as *mut c_void;
        let name = b"depot-sqlite reply";
        let mut name_value = std::ptr::null_mut();
        let mut tsfn = std::ptr::null_mut();
        // SAFETY: on the JS thread of `env`; `context` stays valid until `finalize` runs.
        unsafe {
            let status = sys::napi_create_string_utf8(
                env,
                name.as_ptr() as *const _,
                name.len() as isize,
                &mut name_value,
            );
            let status = if status == sys::Status::napi_ok {
                sys::napi_create_threadsafe_function(
                    env,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    name_value,
                    0,
                    1,
                    context,
                    Some(finalize),
                    context,
                    Some(drain_ready),
                    &mut tsfn,
                )
            } else {
                status
            };
            if status != sys::Status::napi_ok {
                drop(Arc::from_raw(context as *const Wakeup));
                return Err(napi::Error::from_reason(format!(
                    "napi_create_threadsafe_function failed ({status})"
                )));
            }
            // Idle, it must not keep the process alive; `hold` references it while calls run.
            check(sys::napi_unref_threadsafe_function(env, tsfn), "napi_unref_threadsafe_function")?;
        }
        wakeup.tsfn.store(tsfn as usize, Ordering::Release);
        *wakeup.alive.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(wakeup)
    }

    fn tsfn(&self) -> sys::napi_threadsafe_function {
        self.tsfn.load(Ordering::Acquire) as sys::napi_threadsafe_function
    }

    /// A mailbox has calls outstanding now (JS thread): keep the event loop alive for them.
    pub fn hold(&self, env: sys::napi_env) {
        if self.holders.fetch_add(1, Ordering::Relaxed) == 0 {
            self.set_referenced(env, true);
        }
    }

    /// A mailbox has no calls outstanding any more (JS thread).
    pub fn release(&self, env: sys::napi_env) {
        if self.holders.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.set_referenced(env, false);
        }
    }

    fn set_referenced(&self, env: sys::napi_env, referenced: bool) {
        let alive = self.alive.lock().unwrap_or_else(|e| e.into_inner());
        if *alive {
            // SAFETY: on the JS thread; not finalized (checked under the lock).
            unsafe {
                if referenced {
                    sys::napi_ref_threadsafe_function(env, self.tsfn());
                } else {
                    sys::napi_unref_threadsafe_function(env, self.tsfn());
                }
            }
        }
    }

    /// `source` has answers queued (any thread): the JS thread drains it at its next wake-up,
    /// woken now unless an earlier ready mailbox already woke it.
    pub fn ready(&self, source: Arc<dyn Source>) {
        let first = {
            let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            ready.push(source);
            ready.len() == 1
        };
        if first {
            let alive = self.alive.lock().unwrap_or_else(|e| e.into_inner());
            if *alive {
                // SAFETY: never released, and not finalized (checked under the lock).
                unsafe {
                    sys::napi_call_threadsafe_function(
                        self.tsfn(),
                        std::ptr::null_mut(),
                        sys::ThreadsafeFunctionCallMode::nonblocking,
                    )
                };
            }
        }
    }

    fn take_ready(&self) -> Vec<Arc<dyn Source>> {
        std::mem::take(&mut *self.ready.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Runs on the JS thread: drains every ready mailbox.
unsafe extern "C" fn drain_ready(
    env: sys::napi_env,
    _js: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        // napi empties its queue this way after `finalize`, which has dropped `context`.
        return;
    }
    let wakeup = &*(context as *const Wakeup);
    for source in wakeup.take_ready() {
        source.drain(env);
    }
}

/// The environment is going away: nobody is left to settle for.
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let wakeup = Arc::from_raw(data as *const Wakeup);
    *wakeup.alive.lock().unwrap_or_else(|e| e.into_inner()) = false;
    for source in wakeup.take_ready() {
        source.discard();
    }
}
