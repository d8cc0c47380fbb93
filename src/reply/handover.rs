//! The hand-over between one JS thread and the workers answering it: plain atomics, no napi, so
//! the logic is tested on its own (see the tests below).
//!
//! ```text
//!        JS thread: arm() (a wait is scheduled)
//!        or wait_first()                          worker: hand_over()
//!   IDLE ──────────────────────────► WAITING ───────────────────────► HANDED
//!    ▲                                  │                                 │
//!    └──────── JS thread: disarm() (its scheduled wait is over) ─────────┘
//! ```
//! `queued` counts answers pushed into the mailboxes of the JS thread (by workers, under each
//! mailbox's queue lock) and not yet drained (by the JS thread). A worker that pushes an answer
//! into an empty mailbox calls [`Handover::hand_over`]: if the JS thread is WAITING (spinning in
//! its wait, or sure to run its wait soon) it takes the answer itself and the worker skips waking
//! the event loop; otherwise the worker wakes it. The JS thread disarms before it drains for the
//! last time, so an answer handed over is always drained: it was queued before the hand-over.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Nobody waits: a worker wakes the event loop for its answer.
const IDLE: u8 = 0;
/// The JS thread waits in [`Handover::wait_first`], or has a wait scheduled ([`Handover::arm`]).
const WAITING: u8 = 1;
/// A worker queued an answer for the waiting JS thread and did not wake the loop.
const HANDED: u8 = 2;

/// One JS thread's hand-over state, shared with the workers that answer it.
#[derive(Default, Debug)]
pub(crate) struct Handover {
    state: AtomicU8,
    /// Answers queued in this thread's mailboxes (of databases that may be waited for) and not
    /// yet drained.
    queued: AtomicUsize,
}

impl Handover {
    /// Worker side, after queuing an answer into an empty mailbox: hands it to a waiting JS
    /// thread. False when nobody waits (the caller then wakes the event loop).
    pub fn hand_over(&self) -> bool {
        self.state.compare_exchange(WAITING, HANDED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Answers were queued (worker side, under the mailbox's queue lock, before `hand_over`).
    pub fn add_queued(&self, n: usize) {
        self.queued.fetch_add(n, Ordering::SeqCst);
    }

    /// Answers were drained or dropped (under the mailbox's queue lock).
    pub fn remove_queued(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::SeqCst);
    }

    /// Whether any answer is queued now.
    pub fn any_queued(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0
    }

    /// JS side: a wait is scheduled (it runs once the JS stack is empty, and drains every answer
    /// queued by then): until [`Handover::disarm`], workers hand answers over instead of waking
    /// the event loop.
    pub fn arm(&self) {
        let _ = self.state.compare_exchange(IDLE, WAITING, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// JS side, before the last drain of a scheduled wait: from now on workers wake the event loop.
    /// A worker that handed an answer over has queued it already, so that drain sees it.
    pub fn disarm(&self) {
        self.state.store(IDLE, Ordering::SeqCst);
    }

    /// JS side: spins until an answer is queued or `budget` is spent; true when one is queued.
    /// Waits for the first answer only: waiting for all of them measured slower (on 2 cores the
    /// spinning JS thread takes a core from the workers it waits for). Leaves the state to
    /// [`Handover::disarm`]. A hand-over without an answer queued is a late one from an earlier
    /// wait (its answer was drained then), not a reason to count this wait as answered.
    pub fn wait_first(&self, budget: Duration) -> bool {
        self.arm();
        let until = Instant::now() + budget;
        while !self.any_queued() && Instant::now() < until {
            for _ in 0..16 {
                std::hint::spin_loop();
            }
        }
        self.any_queued()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn nobody_waiting_means_the_worker_wakes_the_loop() {
        let h = Handover::default();
        h.add_queued(1);
        assert!(!h.hand_over());
    }

    #[test]
    fn a_worker_finding_the_js_thread_waiting_hands_over_and_its_answer_ends_the_wait() {
        let h = Arc::new(Handover::default());
        let js = {
            let h = Arc::clone(&h);
            std::thread::spawn(move || h.wait_first(Duration::from_secs(10)))
        };
        while h.state.load(Ordering::SeqCst) != WAITING {
            std::hint::spin_loop();
        }
        // The wait only ends on a queued answer, so the hand-over cannot miss it here.
        assert!(h.hand_over(), "a waiting JS thread takes the answer: no wake-up");
        h.add_queued(1);
        assert!(js.join().unwrap(), "the wait saw the answer");
        h.disarm();
        assert_eq!(h.state.load(Ordering::SeqCst), IDLE, "workers wake the loop again after the wait");
        assert!(!h.hand_over());
    }

    #[test]
    fn an_answer_queued_just_as_the_wait_ends_is_still_seen() {
        // A worker queues while the JS thread waits, but hands over only after the wait ended: the
        // hand-over fails (the worker wakes the loop) and the wait still reports the answer.
        let h = Handover::default();
        h.add_queued(1);
        assert!(h.wait_first(Duration::from_secs(10)));
        h.disarm();
        assert!(!h.hand_over());
    }

    #[test]
    fn a_wait_that_runs_out_reports_no_answer_and_leaves_the_state_idle() {
        let h = Handover::default();
        assert!(!h.wait_first(Duration::from_micros(50)));
        h.disarm();
        assert!(!h.hand_over(), "after the wait a worker wakes the loop");
    }

    #[test]
    fn while_a_wait_is_scheduled_answers_are_handed_over_and_after_it_they_wake_the_loop() {
        let h = Handover::default();
        h.arm();
        h.add_queued(1);
        assert!(h.hand_over(), "armed: no wake-up");
        h.arm();
        assert_eq!(h.state.load(Ordering::SeqCst), HANDED, "arming again keeps the hand-over");
        assert!(h.wait_first(Duration::from_secs(10)), "the wait finds the answer at once");
        h.disarm();
        assert!(h.any_queued(), "the last drain comes after the disarm");
        h.add_queued(1);
        assert!(!h.hand_over(), "disarmed: the worker wakes the loop");
    }

    #[test]
    fn a_late_hand_over_from_an_earlier_wait_does_not_count_as_an_answer() {
        let h = Handover::default();
        // An earlier wait: a worker handed an answer over, and the JS thread drained it.
        h.state.store(WAITING, Ordering::SeqCst);
        h.add_queued(1);
        assert!(h.hand_over());
        h.remove_queued(1);
        // The next wait finds HANDED left over but nothing queued: it is not answered.
        h.state.store(HANDED, Ordering::SeqCst);
        assert!(!h.wait_first(Duration::from_micros(50)));
    }
}
