//! Time, read through one seam: store deadlines, retry backoff, injected hangs and call or
//! transaction timeouts all ask a [`Clock`] instead of the operating system.
//!
//! Production uses [`RealClock`] (a zero-sized forwarder to `Instant`/`thread::sleep`). Tests use
//! [`VirtualClock`], where time passes only when every piece of work the clock knows of is waiting
//! on it: a hang of 300 ms then costs no wall time, and a store call that really works never misses
//! its deadline because the machine was slow. That is what lets the chaos harness run a thousand
//! seeds in minutes and replay a seed the same way twice.
//!
//! How the virtual clock decides: work started on another thread on behalf of a waiting caller (a
//! store call under a deadline) is a *task*, counted from [`Clock::task_started`] (called by the
//! caller, before it hands the work over) to [`Clock::task_finished`]. A task that waits on the
//! clock (an injected hang) stops counting while it waits. Time moves only inside a caller's wait
//! on the clock, and only while no task is counted: it then jumps to the earliest wake-up any
//! waiter asked for, and the tasks woken by that jump count again before anyone else can move time.
//! The one rule for code under a virtual clock: a task must not wait on the clock while holding a
//! lock that another task needs (the blocked task would count as running, and time would stand
//! still for good).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the store stack and the client read time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Instant;

    fn sleep(&self, duration: Duration);

    /// Waits until `done` is set or `deadline` passes; whether `done` was set.
    fn wait_done(&self, done: &Done, deadline: Instant) -> bool;

    /// Work is about to start on another thread for a caller that will wait for it (see the
    /// module docs). The thread that runs it calls [`run_as_task`] around it.
    fn task_started(&self) {}

    /// That work ended (after its [`Done`] was set).
    fn task_finished(&self) {}

    /// Whether time is simulated: then work that never waits on the clock cannot be late, however
    /// long it really takes.
    fn is_simulated(&self) -> bool {
        false
    }
}

/// A flag that one thread sets and another waits for through a [`Clock`].
#[derive(Debug, Default)]
pub struct Done {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Done {
    pub fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_all();
    }

    pub fn is_set(&self) -> bool {
        *self.set.lock().unwrap()
    }
}

thread_local! {
    /// Whether this thread is running a task of a clock (a wait then stops counting it).
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` as a task: a wait on the virtual clock inside `f` stops counting the task while it waits.
pub fn run_as_task<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_TASK.with(|t| t.set(self.0));
        }
    }
    let _reset = Reset(IN_TASK.with(|t| t.replace(true)));
    f()
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration)
    }

    fn wait_done(&self, done: &Done, deadline: Instant) -> bool {
        let mut set = done.set.lock().unwrap();
        loop {
            if *set {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            set = done.cv.wait_timeout(set, left).unwrap().0;
        }
    }
}

/// The one shared real clock (stores that do not say otherwise use it).
pub fn real() -> Arc<dyn Clock> {
    static REAL: OnceLock<Arc<dyn Clock>> = OnceLock::new();
    REAL.get_or_init(|| Arc::new(RealClock)).clone()
}

/// A clock whose time passes only when everything it knows of waits on it (module docs).
#[derive(Debug)]
pub struct VirtualClock {
    origin: Instant,
    state: Mutex<VirtualState>,
    /// Callers wait here: woken by anything that may let them jump or end their wait.
    cv: Condvar,
    /// Tasks wait here: woken only when time moves (hung tasks can be many; waking them for every
    /// finished call would cost more than the simulation saves).
    task_cv: Condvar,
}

#[derive(Debug, Default)]
struct VirtualState {
    elapsed: Duration,
    /// Tasks started and not finished, less those waiting on the clock.
    running: usize,
    /// Pending wake-ups: (when, id) -> whether the waiter is a task.
    timers: BTreeMap<(Duration, u64), Timer>,
    next_id: u64,
    /// Time jumps made so far (for reports).
    jumps: u64,
    /// [`VirtualClock::finish`] was called: every wait ends at once.
    finished: bool,
}

#[derive(Debug, Clone, Copy)]
struct Timer {
    task: bool,
    /// The jump that reached this timer already counted its task as running again.
    counted: bool,
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::new()
    }
}

impl VirtualClock {
    pub fn new() -> VirtualClock {
        VirtualClock {
            origin: Instant::now(),
            state: Mutex::default(),
            cv: Condvar::new(),
            task_cv: Condvar::new(),
        }
    }

    /// Virtual time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.state.lock().unwrap().elapsed
    }

    /// How many times time jumped forward.
    pub fn jumps(&self) -> u64 {
        self.state.lock().unwrap().jumps
    }

    /// Ends the simulation: every wait on this clock, now or later, returns at once (sleeps end,
    /// deadlines pass), so no thread stays parked on a clock nobody drives any more.
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap();
        state.finished = true;
        state.elapsed = Duration::from_secs(100 * 365 * 24 * 3600);
        self.cv.notify_all();
        self.task_cv.notify_all();
    }

    /// Waits until `ready()` or virtual time reaches `until`; moves time when nothing runs.
    fn wait(&self, until: Duration, ready: &dyn Fn() -> bool) -> bool {
        let task = IN_TASK.with(|t| t.get());
        let mut state = self.state.lock().unwrap();
        if ready() {
            return true;
        }
        if state.elapsed >= until || state.finished {
            return false;
        }
        let id = state.next_id;
        state.next_id += 1;
        let key = (until, id);
        state.timers.insert(key, Timer { task, counted: false });
        if task {
            state.running -= 1;
            self.cv.notify_all();
        }
        let outcome = loop {
            if ready() {
                break true;
            }
            if state.elapsed >= until || state.finished {
                break false;
            }
            let (&(earliest, _), _) = state.timers.iter().next().expect("our own timer is pending");
            // Jump only when nothing runs and every waiter woken by an earlier jump has seen it (a
            // woken waiter removes its timer): then the earliest wake-up is the next thing to happen.
            // Only a caller's wait jumps, never a task's: a task left hanging by a caller that gave
            // up on it wakes when a caller next waits, not at whatever moment the caller's own
            // (unclocked) work happens to leave nothing counted, so runs replay the same way.
            if !task && state.running == 0 && earliest > state.elapsed {
                state.elapsed = earliest;
                state.jumps += 1;
                let now = state.elapsed;
                let mut woken = 0;
                for (_, timer) in state.timers.range_mut(..=(now, u64::MAX)) {
                    if timer.task && !timer.counted {
                        timer.counted = true;
                        woken += 1;
                    }
                }
                state.running += woken;
                self.cv.notify_all();
                self.task_cv.notify_all();
                continue;
            }
            state = if task { self.task_cv.wait(state).unwrap() } else { self.cv.wait(state).unwrap() };
        };
        let timer = state.timers.remove(&key).expect("our own timer is pending");
        if task && !timer.counted {
            state.running += 1;
        }
        // Another waiter may have been holding back a jump until this timer was gone.
        self.cv.notify_all();
        outcome
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.origin + self.state.lock().unwrap().elapsed
    }

    fn sleep(&self, duration: Duration) {
        let until = self.state.lock().unwrap().elapsed + duration;
        self.wait(until, &|| false);
    }

    fn wait_done(&self, done: &Done, deadline: Instant) -> bool {
        self.wait(deadline.saturating_duration_since(self.origin), &|| done.is_set())
    }

    fn task_started(&self) {
        self.state.lock().unwrap().running += 1;
    }

    fn task_finished(&self) {
        let mut state = self.state.lock().unwrap();
        state.running -= 1;
        self.cv.notify_all();
    }

    fn is_simulated(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts `body` as a task of `clock` on another thread; `done` is set when it ends.
    fn spawn_task(
        clock: &Arc<VirtualClock>,
        done: &Arc<Done>,
        body: impl FnOnce(&VirtualClock) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        clock.task_started();
        let (c, d) = (clock.clone(), done.clone());
        std::thread::spawn(move || {
            run_as_task(|| body(&c));
            d.set();
            c.task_finished();
        })
    }

    #[test]
    fn a_virtual_sleep_costs_no_wall_time_and_moves_time_exactly() {
        let clock = VirtualClock::new();
        let wall = Instant::now();
        let before = clock.now();
        clock.sleep(Duration::from_secs(3600));
        assert_eq!(clock.now() - before, Duration::from_secs(3600));
        assert!(wall.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn a_running_task_holds_time_until_it_finishes() {
        let clock = Arc::new(VirtualClock::new());
        let done = Arc::new(Done::default());
        let worker = spawn_task(&clock, &done, |_| std::thread::sleep(Duration::from_millis(50)));
        // The task takes 50 ms of real time; a 1 ms virtual deadline must still not pass meanwhile.
        assert!(clock.wait_done(&done, clock.now() + Duration::from_millis(1)));
        assert_eq!(clock.elapsed(), Duration::ZERO);
        worker.join().unwrap();
    }

    #[test]
    fn a_task_sleeping_on_the_clock_lets_the_waiters_deadline_pass() {
        let clock = Arc::new(VirtualClock::new());
        let done = Arc::new(Done::default());
        let worker = spawn_task(&clock, &done, |c| c.sleep(Duration::from_millis(300)));
        assert!(!clock.wait_done(&done, clock.now() + Duration::from_millis(100)));
        assert_eq!(clock.elapsed(), Duration::from_millis(100));
        // The hung task wakes once somebody waits past its wake-up.
        clock.sleep(Duration::from_secs(1));
        worker.join().unwrap();
        assert!(done.is_set());
        assert_eq!(clock.elapsed(), Duration::from_millis(1100));
    }

    #[test]
    fn finish_releases_every_waiter() {
        let clock = Arc::new(VirtualClock::new());
        clock.task_started();
        let c = clock.clone();
        let sleeper = std::thread::spawn(move || run_as_task(|| c.sleep(Duration::from_secs(10))));
        // The sleeper's task never finishes counting as running before it sleeps; wait for it.
        while clock.state.lock().unwrap().running != 0 {
            std::thread::yield_now();
        }
        clock.finish();
        sleeper.join().unwrap();
    }

    #[test]
    fn the_real_clock_times_out_and_sees_done() {
        let done = Done::default();
        assert!(!RealClock.wait_done(&done, Instant::now() + Duration::from_millis(5)));
        done.set();
        assert!(RealClock.wait_done(&done, Instant::now() + Duration::from_secs(5)));
    }
}
