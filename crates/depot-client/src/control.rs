//! Per-call control: cancellation and deadlines, checked before a call runs and while it runs.
//!
//! A call that is cancelled (or past its deadline) while queued never runs. A running statement is
//! stopped by SQLite's progress handler, which looks at the running call's control every few
//! thousand virtual-machine steps; SQLite then rolls back an interrupted write transaction.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use depot::Clock;

use crate::{Error, ErrorCode};

/// Cancels the calls it was given to. Cheap to clone; thread-safe.
#[derive(Clone, Default, Debug)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What stopped a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stop {
    None = 0,
    Aborted = 1,
    TimedOut = 2,
}

/// The control of one submitted call.
#[derive(Debug)]
pub struct Control {
    cancel: Option<CancelToken>,
    /// When the call times out, on the store stack's clock.
    deadline: Option<(Instant, Arc<dyn Clock>)>,
    stopped: AtomicU8,
}

impl Control {
    pub fn new(
        cancel: Option<CancelToken>,
        timeout: Option<Duration>,
        clock: &Arc<dyn Clock>,
    ) -> Arc<Control> {
        Arc::new(Control {
            cancel,
            deadline: timeout.map(|t| (clock.now() + t, clock.clone())),
            stopped: AtomicU8::new(Stop::None as u8),
        })
    }

    /// Whether anything can stop the call (a token or a deadline): only then does the progress
    /// handler need to see it.
    pub fn can_stop(&self) -> bool {
        self.cancel.is_some() || self.deadline.is_some()
    }

    /// Checks the token and the deadline; remembers the first reason to stop.
    pub fn check(&self) -> Stop {
        let stop = if self.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            Stop::Aborted
        } else if self.deadline.as_ref().is_some_and(|(d, clock)| clock.now() >= *d) {
            Stop::TimedOut
        } else {
            return Stop::None;
        };
        let _ = self.stopped.compare_exchange(0, stop as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.stopped()
    }

    pub fn stopped(&self) -> Stop {
        match self.stopped.load(Ordering::SeqCst) {
            1 => Stop::Aborted,
            2 => Stop::TimedOut,
            _ => Stop::None,
        }
    }

    /// The error for a call stopped for `stop`.
    pub fn error(stop: Stop, database: &str) -> Error {
        match stop {
            Stop::TimedOut => {
                Error::new(ErrorCode::Timeout, format!("call on database '{database}' timed out"))
            }
            _ => Error::new(ErrorCode::Aborted, format!("call on database '{database}' was aborted")),
        }
    }
}

/// The control of the call running on the worker, read by the progress handler.
pub type Running = Arc<Mutex<Option<Arc<Control>>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_deadline_is_read_on_the_store_stacks_clock() {
        let clock = Arc::new(depot::VirtualClock::new());
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let control = Control::new(None, Some(Duration::from_millis(100)), &dyn_clock);
        assert_eq!(control.check(), Stop::None);
        // Simulated time passes (no wall time does): the call is now past its deadline.
        clock.sleep(Duration::from_millis(99));
        assert_eq!(control.check(), Stop::None);
        clock.sleep(Duration::from_millis(1));
        assert_eq!(control.check(), Stop::TimedOut);
    }

    #[test]
    fn a_call_without_a_timeout_never_reads_the_clock() {
        let clock: Arc<dyn Clock> = Arc::new(depot::VirtualClock::new());
        let control = Control::new(None, None, &clock);
        assert!(!control.can_stop());
        assert_eq!(control.check(), Stop::None);
    }
}
