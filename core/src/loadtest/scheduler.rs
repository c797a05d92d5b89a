//! fortio's closed loop for an inline load test, with the cost of calls Envoy refuses at
//! dispatch. Time is an argument (ns); nothing here calls a host.

use crate::rule::LoadSetting;

/// fortio's closed loop: at most `threads` calls in flight, `calls` in total.
///
/// A call Envoy refuses at dispatch (its circuit breaker or an empty host set answers with a
/// local 503 before any stream exists) costs microseconds inside the VM, against a fortio
/// thread's round trip for its sidecar's local 503. Its slot is therefore held:
/// - while other calls are in flight, until the next response, as fortio's refused threads,
///   measured on the lab, retry about once per answered call (10 threads, `maxConnections` 1:
///   393 refusals for 47 answers; refilling at a fixed cost instead sent every call of such a
///   test into refusals within 50 ms, and refilling at every tick too doubled S1's refusals);
/// - while none is, for `refusal_ns` of virtual time (the local-503 round trip), so that a test
///   whose every call is refused (every host ejected) runs at fortio's pace: with a slot that
///   waited for the 1 ms tick instead (3-4 ms in practice), one thread ran at 225 against
///   fortio's 410 calls/s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    pub load: LoadSetting,
    pub sent: u32,
    pub done: u32,
    refusal_ns: u64,
    /// Virtual times at which slots held by refused calls are free again ([`AT_RESPONSE`]:
    /// at the next response).
    held: Vec<u64>,
}

/// A held slot that waits for the next response.
const AT_RESPONSE: u64 = u64::MAX;

/// A held slot further behind the event that frees it than this starts its next call this far
/// back, not earlier: a late tick (a busy worker) never turns into a burst of catch-up calls.
pub const MAX_LAG_NS: u64 = 10_000_000;

impl Scheduler {
    pub fn new(load: LoadSetting, refusal_ns: u64) -> Self {
        Self { load, sent: 0, done: 0, refusal_ns: refusal_ns.max(1_000), held: Vec::new() }
    }
    /// Calls dispatched and not yet answered (held slots not included).
    pub fn in_flight(&self) -> u32 {
        self.sent - self.done
    }
    /// The start time of the next call to send at `now`, or `None` when no slot is free or
    /// every call is sent. A held slot that is free by `now` comes first, at its own virtual
    /// time (at most [`MAX_LAG_NS`] back); then a free slot, at `now`. Marks the call sent.
    pub fn next_call(&mut self, now: u64) -> Option<u64> {
        if self.sent >= self.load.calls {
            return None;
        }
        let due = self.held.iter().enumerate().filter(|(_, t)| **t <= now).min_by_key(|(_, t)| **t).map(|(i, _)| i);
        let start = match due {
            Some(i) => self.held.swap_remove(i).max(now.saturating_sub(MAX_LAG_NS)),
            None if self.in_flight() + (self.held.len() as u32) < self.load.threads => now,
            None => return None,
        };
        self.sent += 1;
        Some(start)
    }
    /// The call started at `start` was refused at dispatch: it ends after the refusal cost;
    /// its slot is held until the next response while other calls are in flight, else until
    /// its end. Returns its end time.
    pub fn on_refused(&mut self, start: u64) -> u64 {
        let end = start.saturating_add(self.refusal_ns);
        self.done = (self.done + 1).min(self.sent);
        if self.sent < self.load.calls {
            self.held.push(if self.in_flight() > 0 { AT_RESPONSE } else { end });
        } else {
            self.held.clear(); // every call is sent: no slot is needed again
        }
        end
    }
    /// A dispatched call ended at `now` (answered, timed out or reset): the slots held for a
    /// response are free.
    pub fn on_done(&mut self, now: u64) {
        self.done = (self.done + 1).min(self.sent);
        for t in self.held.iter_mut().filter(|t| **t == AT_RESPONSE) {
            *t = now;
        }
    }
    /// When the earliest slot held for a time is free (the next tick should come no later;
    /// slots held for a response need no tick).
    pub fn next_due(&self) -> Option<u64> {
        self.held.iter().copied().filter(|t| *t != AT_RESPONSE).min()
    }
    pub fn finished(&self) -> bool {
        self.done >= self.load.calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_is_a_closed_loop() {
        let mut s = Scheduler::new(LoadSetting { threads: 3, calls: 5 }, 150_000);
        for _ in 0..3 {
            assert_eq!(s.next_call(100), Some(100));
        }
        assert_eq!(s.next_call(100), None, "three in flight");
        s.on_done(200);
        assert_eq!(s.next_call(200), Some(200));
        s.on_done(300);
        assert_eq!(s.next_call(300), Some(300));
        assert_eq!(s.next_call(300), None, "all five sent");
        for _ in 0..3 {
            s.on_done(400);
        }
        assert!(s.finished());
        s.on_done(500);
        assert_eq!(s.done, 5, "done never passes sent");
    }

    #[test]
    fn refused_calls_hold_their_slot_for_the_refusal_cost() {
        // One thread, every call refused: a call every 150 us of virtual time, as fortio's
        // thread waits for each local 503, however the events that drive it are spaced.
        let mut s = Scheduler::new(LoadSetting { threads: 1, calls: 100 }, 150_000);
        let mut ends = Vec::new();
        for now in [0, 3_500_000, 7_000_000] {
            while let Some(start) = s.next_call(now) {
                ends.push(s.on_refused(start));
            }
        }
        assert_eq!(ends.len(), 47, "calls started by 7 ms, one per 150 us: {ends:?}");
        assert!(ends.windows(2).all(|w| w[1] - w[0] == 150_000));
        assert_eq!(s.next_due(), Some(7_050_000));
        assert_eq!(s.in_flight(), 0);
        // A dispatched call frees nothing held; the held slot comes back at its own time.
        assert_eq!(s.next_call(7_000_000), None, "the only slot is held");
        assert_eq!(s.next_call(7_050_000), Some(7_050_000));
        s.on_done(7_100_000);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn with_a_call_in_flight_a_refused_slot_waits_for_the_next_response() {
        let mut s = Scheduler::new(LoadSetting { threads: 2, calls: 10 }, 150_000);
        assert_eq!(s.next_call(0), Some(0), "dispatched: in flight");
        let b = s.next_call(0).unwrap();
        assert_eq!(s.on_refused(b), 150_000);
        assert_eq!(s.next_due(), None, "no tick needed");
        assert_eq!(s.next_call(3_500_000), None, "a tick frees nothing while a call is in flight");
        s.on_done(5_000_000); // the dispatched call is answered at 5 ms: both slots are free
        assert_eq!(s.next_call(5_000_000), Some(5_000_000), "the held slot");
        assert_eq!(s.next_call(5_000_000), Some(5_000_000), "the answered call's slot");
        assert_eq!(s.next_call(5_000_000), None);
        assert_eq!((s.sent, s.done), (4, 2));
    }

    #[test]
    fn held_slots_never_exceed_the_threads_nor_the_calls() {
        let mut s = Scheduler::new(LoadSetting { threads: 2, calls: 3 }, 1_000_000);
        let a = s.next_call(0).unwrap();
        let b = s.next_call(0).unwrap();
        assert_eq!(s.next_call(0), None);
        assert_eq!((a, b), (0, 0));
        s.on_refused(a); // b is in flight: a's slot waits for its response
        s.on_done(5); // b answered at 5 ns: both slots are free
        assert_eq!(s.next_call(10), Some(5));
        assert_eq!(s.next_call(2_000_000), None, "every call sent");
        assert_eq!(s.on_refused(5), 1_000_005);
        assert!(s.finished());
        assert_eq!(s.next_due(), None, "no slot is held once every call is sent");
        // A late event starts the held slot at most MAX_LAG_NS back.
        let mut s = Scheduler::new(LoadSetting { threads: 1, calls: 10 }, 1_000_000);
        let t = s.next_call(0).unwrap();
        s.on_refused(t);
        assert_eq!(s.next_call(50_000_000), Some(50_000_000 - MAX_LAG_NS));
        // A zero cost is raised to 1 us: a refused test can never spin within one event.
        let mut s = Scheduler::new(LoadSetting { threads: 1, calls: 1_000 }, 0);
        let mut n = 0;
        while let Some(start) = s.next_call(0) {
            s.on_refused(start);
            n += 1;
        }
        assert_eq!(n, 1);
    }
}
