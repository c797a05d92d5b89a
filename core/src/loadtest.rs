//! Inline load tests (the filter's load-test mode), as pure logic: the agents' decision chain,
//! the fortio-like call scheduler, the classification of dispatched responses, and the
//! leader claim that lets exactly one worker VM of an Envoy run a test.
//!
//! Time is always an argument (ns since the epoch); nothing here calls a host.

use crate::agent::{AgentKind, Configuration, Extra};
use crate::counters::flags;
use crate::inputs::Inputs;
use crate::rule::{LoadSetting, TrafficRule};
use crate::store::{cas_update, MergeError, SharedStore, CLAIM_KEY, VM_SEQ_KEY};
use serde::{Deserialize, Serialize};

mod scheduler;
pub use scheduler::{Scheduler, MAX_LAG_NS};

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

/// The state an agent of `configuration` sees: the study's rule inputs, then the extra column.
/// `fixed`: the load values the configuration does not choose (single-agent configurations);
/// `chosen`: what earlier agents chose.
fn state_for(
    inputs: &Inputs,
    extra: Extra,
    rule: &TrafficRule,
    fixed: &LoadSetting,
    chosen: &[(AgentKind, u32)],
) -> Vec<f32> {
    let mut s: Vec<f32> = inputs.state(rule).iter().map(|v| *v as f32).collect();
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
/// of that kind; `inputs` are the study's, as the agents' state names them. Load values no
/// agent chooses come from `fixed`.
pub fn decide<E>(
    configuration: Configuration,
    inputs: &Inputs,
    rule: &TrafficRule,
    fixed: LoadSetting,
    mut ask: impl FnMut(AgentKind, &[f32]) -> Result<u32, E>,
) -> Result<Decision, E> {
    let mut chosen: Vec<(AgentKind, u32)> = Vec::new();
    let mut steps = Vec::new();
    for spec in configuration.agents() {
        let state = state_for(inputs, spec.extra, rule, &fixed, &chosen);
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

/// The leader claim of one inline test, kept in host shared data under [`CLAIM_KEY`](crate::store::CLAIM_KEY).
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
        let d = decide::<()>(Configuration::ThreadCall, &Inputs::catalogue(), &rule(), fixed, |k, s| {
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
        let d = decide::<()>(Configuration::Call, &Inputs::catalogue(), &rule(), fixed, |_, s| {
            assert_eq!(s[7], 2.0);
            Ok(444)
        })
        .unwrap();
        assert_eq!(d.load, LoadSetting { threads: 2, calls: 444 });
        let e = decide(Configuration::Thread, &Inputs::catalogue(), &rule(), fixed, |_, _| Err("boom"));
        assert_eq!(e.unwrap_err(), "boom");
        // A study's agents that see two fields get those two, then their extra column.
        let two = Inputs::new(vec![crate::Feature::MaxConnections, crate::Feature::Interval]).unwrap();
        let d = decide::<()>(Configuration::Call, &two, &rule(), fixed, |_, s| {
            assert_eq!(s, &[5.0, 1.0, 2.0]);
            Ok(300)
        })
        .unwrap();
        assert_eq!(d.load.calls, 300);
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
