//! Admission: how many calls of one database are in flight, and the guard that holds one place.
//!
//! A call is admitted when it is accepted and holds its place until its [`Admission`] is dropped.
//! The guard travels with the answer: Rust callers drop it as soon as they have the result, the
//! NAPI layer once JavaScript has the value. So `max_queue` bounds everything between acceptance and
//! delivery (queued, running, waiting behind a transaction, answered but not yet delivered), and a
//! burst of calls is admitted deterministically: exactly `max_queue` of them, whatever the timing.
//!
//! Admission is not a metric: the gate is its own state, and the metrics only read it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The in-flight count of one database against its limit.
#[derive(Debug)]
pub(crate) struct Gate {
    in_flight: AtomicU64,
    limit: u64,
}

/// Why a call was not admitted: the calls in flight at that moment, and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full {
    pub depth: u64,
    pub limit: u64,
}

impl Gate {
    pub fn new(limit: u64) -> Arc<Gate> {
        Arc::new(Gate { in_flight: AtomicU64::new(0), limit: limit.max(1) })
    }

    /// Takes one place, or reports the gate full. `exempt` calls (those of an open interactive
    /// transaction) always get a place, so a full gate cannot stop a transaction from finishing.
    pub fn admit(self: &Arc<Gate>, exempt: bool) -> Result<Admission, Full> {
        let limit = if exempt { u64::MAX } else { self.limit };
        match self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| (d < limit).then_some(d + 1))
        {
            Ok(_) => Ok(Admission { gate: Some(Arc::clone(self)) }),
            Err(depth) => Err(Full { depth, limit: self.limit }),
        }
    }

    /// Calls admitted and not yet released.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// One admitted call's place; dropping it gives the place back. Holding it costs a reference to
/// the gate (no allocation).
#[derive(Debug)]
#[must_use = "dropping the admission releases the call's place at once"]
pub struct Admission {
    gate: Option<Arc<Gate>>,
}

impl Admission {
    /// No place held: the answer of a call refused before admission (closed, dead, overloaded).
    pub fn none() -> Admission {
        Admission { gate: None }
    }

    /// Whether this guard holds a place.
    pub fn is_held(&self) -> bool {
        self.gate.is_some()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_admits_exactly_its_limit_until_a_place_is_released() {
        let gate = Gate::new(2);
        let a = gate.admit(false).unwrap();
        let _b = gate.admit(false).unwrap();
        assert_eq!(gate.admit(false).unwrap_err(), Full { depth: 2, limit: 2 });
        drop(a);
        assert_eq!(gate.in_flight(), 1);
        let _c = gate.admit(false).unwrap();
        assert_eq!(gate.in_flight(), 2);
    }

    #[test]
    fn exempt_calls_pass_a_full_gate_and_are_counted() {
        let gate = Gate::new(1);
        let _a = gate.admit(false).unwrap();
        let t = gate.admit(true).unwrap();
        assert!(t.is_held());
        assert_eq!(gate.in_flight(), 2);
        drop(t);
        assert_eq!(gate.in_flight(), 1);
    }

    #[test]
    fn a_refused_call_holds_no_place() {
        let gate = Gate::new(1);
        let none = Admission::none();
        assert!(!none.is_held());
        drop(none);
        assert_eq!(gate.in_flight(), 0);
    }
}
