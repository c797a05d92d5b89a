//! Inline load tests (the filter's load-test mode), as pure logic: the agents' decision chain,
//! the fortio-like call scheduler, the classification of dispatched responses, and the
//! leader claim that lets exactly one worker VM of an Envoy run a test.
//!
//! Time is always an argument (ns since the epoch); nothing here calls a host.

use crate::agent::{AgentKind, Configuration, Extra};
use crate::counters::flags;
use crate::rule::{LoadSetting, TrafficRule};
use crate::store::{cas_update, MergeError, SharedStore};
use serde::{Deserialize, Serialize};

/// One agent's question and answer in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `thread` or `call`.
    pub agent: String,
    /// The raw state the agent saw (its card's state order).
    pub state: Vec<f32>,
    /// The grid value it chose.
    pub choice: u32,
}

/// The load a configuration's agents chose for a traffic rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub load: LoadSetting,
    /// In acting order.
    pub steps: Vec<Step>,
}

/// The state an agent of `configuration` sees: the seven rule values, then the extra column.
/// `fixed`: the load values the configuration does not choose (single-agent configurations);
/// `chosen`: what earlier agents chose.
fn state_for(extra: Extra, rule: &TrafficRule, fixed: &LoadSetting, chosen: &[(AgentKind, u32)]) -> Vec<f32> {
    let mut s: Vec<f32> = rule.values().iter().map(|v| *v as f32).collect();
    match extra {
        Extra::None => {}
        Extra::RunLoad(k) => s.push(load_value(fixed, k) as f32),
        Extra::FirstAction(k) => {
            let v = chosen.iter().find(|(c, _)| *c == k).map(|(_, v)| *v).unwrap_or(0);
            s.push(v as f32);
        }
    }
    s
}

fn load_value(load: &LoadSetting, k: AgentKind) -> u32 {
    match k {
        AgentKind::Threads => load.threads,
        AgentKind::Calls => load.calls,
    }
}

/// Runs the decision chain of `configuration` for `rule`: agents in acting order, dependent
/// agents seeing the earlier choice, exactly as in training. `ask(kind, state)` runs the agent
/// of that kind. Load values no agent chooses come from `fixed`.
pub fn decide<E>(
    configuration: Configuration,
    rule: &TrafficRule,
    fixed: LoadSetting,
    mut ask: impl FnMut(AgentKind, &[f32]) -> Result<u32, E>,
) -> Result<Decision, E> {
    let mut chosen: Vec<(AgentKind, u32)> = Vec::new();
    let mut steps = Vec::new();
    for spec in configuration.agents() {
        let state = state_for(spec.extra, rule, &fixed, &chosen);
        let choice = ask(spec.kind, &state)?;
        chosen.push((spec.kind, choice));
        steps.push(Step { agent: spec.kind.name().to_string(), state, choice });
    }
    let mut load = fixed;
    for (k, v) in chosen {
        match k {
            AgentKind::Threads => load.threads = v,
            AgentKind::Calls => load.calls = v,
        }
    }
    Ok(Decision { load, steps })
}

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

/// Status code recorded for a call that got no HTTP response at all (stream reset): fortio
/// counts these as errors with code -1; a trace record keeps them under 0.
pub const NO_RESPONSE: u16 = 0;

/// Envoy's `response.flags` equivalent for a dispatched call, which has no stream info: the
/// cause is read from what Envoy's local replies carry (reference section 2.1).
pub fn callout_flags(code: u16, overloaded_header: bool, body_prefix: &[u8]) -> u64 {
    if code != 503 {
        return 0;
    }
    if overloaded_header {
        return flags::UPSTREAM_OVERFLOW;
    }
    let body = String::from_utf8_lossy(body_prefix);
    if body.starts_with("no healthy upstream") {
        flags::NO_HEALTHY_UPSTREAM
    } else if body.contains("reset reason: overflow") {
        flags::UPSTREAM_OVERFLOW
    } else if body.contains("remote connection failure") || body.contains("connection failure") {
        flags::UPSTREAM_CONNECTION_FAILURE
    } else {
        0
    }
}

/// The leader claim of one inline test, kept in host shared data under [`CLAIM_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Which test: the trigger and, with a schedule, the period number.
    pub slot: String,
    /// The VM that runs it.
    pub leader: u64,
    /// Refreshed by the leader on every tick while the test runs.
    pub heartbeat_ns: u64,
    pub done: bool,
}

pub const CLAIM_KEY: &str = "sfr2l/inline/claim";
/// Counter behind each VM's identity.
pub const VM_SEQ_KEY: &str = "sfr2l/inline/vm_seq";

/// The slot a VM should run now: the trigger, plus the schedule period when `every_ns` is set.
pub fn slot(trigger: &str, every_ns: Option<u64>, now_ns: u64) -> String {
    match every_ns {
        Some(e) if e > 0 => format!("{trigger}#{}", now_ns / e),
        _ => trigger.to_string(),
    }
}

/// What a VM should write to take `slot`, or `None` if another VM holds it, it is done, or an
/// earlier slot's test still runs (the next test starts once it is done: a test longer than
/// the `every` period, or one running when the trigger changes, is never cut short; measured
/// before this rule: 8 of 595 one-second tests aborted in a 10-minute soak). A claim whose
/// leader has not refreshed it for `takeover_ns` is taken over (the leader's VM went away); for
/// the same slot the new leader starts the test again.
pub fn try_claim(current: Option<&Claim>, slot: &str, me: u64, now_ns: u64, takeover_ns: u64) -> Option<Claim> {
    let fresh = Claim { slot: slot.to_string(), leader: me, heartbeat_ns: now_ns, done: false };
    match current {
        None => Some(fresh),
        Some(c) if c.slot == slot && (c.done || c.leader == me) => None,
        Some(c) if c.done => Some(fresh),
        Some(c) if now_ns.saturating_sub(c.heartbeat_ns) > takeover_ns => Some(fresh),
        Some(_) => None,
    }
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> MergeError {
    MergeError::Corrupt(key.to_string(), e.to_string())
}

/// A new identity for this VM, unique within the Envoy process (a CAS counter).
pub fn next_vm_id<S: SharedStore>(store: &S) -> Result<u64, MergeError> {
    cas_update(store, VM_SEQ_KEY, |cur| {
        let n: u64 = match cur {
            None => 0,
            Some(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| corrupt(VM_SEQ_KEY, "not a number"))?,
        };
        Ok(((n + 1).to_string().into_bytes(), n + 1))
    })
}

fn decode_claim(cur: Option<&[u8]>) -> Result<Option<Claim>, MergeError> {
    cur.map(|b| serde_json::from_slice(b).map_err(|e| corrupt(CLAIM_KEY, e))).transpose()
}

fn encode_claim(c: &Claim) -> Vec<u8> {
    serde_json::to_vec(c).unwrap_or_default()
}

/// Tries to become the leader of `slot` (see [`try_claim`]); `Some` when this VM now runs it.
pub fn claim<S: SharedStore>(
    store: &S,
    slot: &str,
    me: u64,
    now_ns: u64,
    takeover_ns: u64,
) -> Result<Option<Claim>, MergeError> {
    cas_update(store, CLAIM_KEY, |cur| {
        let current = decode_claim(cur)?;
        match try_claim(current.as_ref(), slot, me, now_ns, takeover_ns) {
            Some(c) => Ok((encode_claim(&c), Some(c))),
            None => Ok((cur.map(<[u8]>::to_vec).unwrap_or_default(), None)),
        }
    })
}

/// Refreshes the leader's heartbeat (or marks the slot done); `false` when another VM has taken
/// the slot over, in which case this VM must stop its test without writing a record.
pub fn refresh<S: SharedStore>(store: &S, slot: &str, me: u64, now_ns: u64, done: bool) -> Result<bool, MergeError> {
    cas_update(store, CLAIM_KEY, |cur| match decode_claim(cur)? {
        Some(c) if c.slot == slot && c.leader == me => {
            let next = Claim { heartbeat_ns: now_ns, done, ..c };
            Ok((encode_claim(&next), true))
        }
        _ => Ok((cur.map(<[u8]>::to_vec).unwrap_or_default(), false)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::IstioDuration;
    use crate::store::memory::MemoryStore;

    fn rule() -> TrafficRule {
        TrafficRule {
            max_pending_requests: 4,
            max_connections: 5,
            max_requests_per_connection: 6,
            base_ejection_time: IstioDuration::from_secs(180.0),
            max_ejection_percent: 100,
            interval: IstioDuration::from_secs(1.0),
            consecutive_5xx_errors: 1,
        }
    }

    #[test]
    fn dependent_agent_sees_the_first_choice() {
        let fixed = LoadSetting { threads: 0, calls: 0 };
        let d = decide::<()>(Configuration::ThreadCall, &rule(), fixed, |k, s| {
            Ok(match k {
                AgentKind::Threads => {
                    assert_eq!(s.len(), 7);
                    3
                }
                AgentKind::Calls => {
                    assert_eq!(s, &[4.0, 5.0, 6.0, 180.0, 100.0, 1.0, 1.0, 3.0]);
                    440
                }
            })
        })
        .unwrap();
        assert_eq!(d.load, LoadSetting { threads: 3, calls: 440 });
        assert_eq!(d.steps.len(), 2);
        assert_eq!(d.steps[1].agent, "call");
    }

    #[test]
    fn single_agent_uses_the_fixed_load() {
        let fixed = LoadSetting { threads: 2, calls: 400 };
        let d = decide::<()>(Configuration::Call, &rule(), fixed, |_, s| {
            assert_eq!(s[7], 2.0);
            Ok(444)
        })
        .unwrap();
        assert_eq!(d.load, LoadSetting { threads: 2, calls: 444 });
        let e = decide(Configuration::Thread, &rule(), fixed, |_, _| Err("boom"));
        assert_eq!(e.unwrap_err(), "boom");
    }

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

    #[test]
    fn callout_causes() {
        assert_eq!(callout_flags(200, false, b""), 0);
        assert_eq!(callout_flags(503, true, b"upstream connect error"), flags::UPSTREAM_OVERFLOW);
        assert_eq!(callout_flags(503, false, b"no healthy upstream"), flags::NO_HEALTHY_UPSTREAM);
        assert_eq!(
            callout_flags(
                503,
                false,
                b"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
            ),
            flags::UPSTREAM_CONNECTION_FAILURE
        );
        assert_eq!(callout_flags(503, false, b"<html>app says 503"), 0);
    }

    #[test]
    fn shared_claim_has_one_leader() {
        let store = MemoryStore::default();
        crate::store::init_shared(&store).unwrap();
        let (a, b) = (next_vm_id(&store).unwrap(), next_vm_id(&store).unwrap());
        assert_eq!((a, b), (1, 2));
        assert!(claim(&store, "t1", a, 100, 50).unwrap().is_some());
        assert!(claim(&store, "t1", b, 110, 50).unwrap().is_none());
        assert!(refresh(&store, "t1", a, 140, false).unwrap());
        assert!(claim(&store, "t1", b, 180, 50).unwrap().is_none(), "heartbeat kept it");
        assert!(claim(&store, "t1", b, 300, 50).unwrap().is_some(), "stale leader taken over");
        assert!(!refresh(&store, "t1", a, 310, true).unwrap(), "old leader lost it");
        assert!(refresh(&store, "t1", b, 320, true).unwrap());
        assert!(claim(&store, "t1", a, 10_000, 50).unwrap().is_none(), "done slots stay done");
    }

    #[test]
    fn one_leader_per_slot_and_takeover() {
        let c = try_claim(None, "t1", 1, 100, 50).unwrap();
        assert_eq!(c.leader, 1);
        assert_eq!(try_claim(Some(&c), "t1", 2, 120, 50), None, "held");
        assert_eq!(try_claim(Some(&c), "t1", 1, 120, 50), None, "already mine");
        let taken = try_claim(Some(&c), "t1", 2, 200, 50).unwrap();
        assert_eq!(taken.leader, 2, "stale leader taken over");
        let done = Claim { done: true, ..c.clone() };
        assert_eq!(try_claim(Some(&done), "t1", 2, 10_000, 50), None);
        assert_eq!(try_claim(Some(&done), "t2", 2, 10_000, 50).unwrap().slot, "t2");
        assert_eq!(try_claim(Some(&c), "t2", 2, 120, 50), None, "an earlier slot's test still runs: wait");
        assert_eq!(try_claim(Some(&c), "t2", 1, 120, 50), None, "also for its own leader");
        assert_eq!(try_claim(Some(&c), "t2", 2, 200, 50).unwrap().slot, "t2", "unless its leader went away");
        assert_eq!(slot("t", Some(10), 25), "t#2");
        assert_eq!(slot("t", None, 25), "t");
    }
}
