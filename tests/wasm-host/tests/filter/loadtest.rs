//! Load-test mode end to end in the host: models fetched and loaded in every VM, one VM claims
//! the test, sends it as a closed loop and writes one record; a leader that goes away is taken
//! over after 5 s.

use crate::support::*;
use sfr2l_core::trace::TraceRecord;
use sfr2l_runtime::Agent;
use sfr2l_wasm_host::Host;

pub const MAX_CALLS: u32 = 12;

/// The native runtime's agents of the pair the filter loads.
fn native() -> Vec<Agent> {
    ["thread", "call"]
        .iter()
        .map(|a| Agent::from_bytes(&std::fs::read(repo().join(format!("policies{AGENTS}/{a}.onnx"))).unwrap()).unwrap())
        .collect()
}

/// The decision steps equal the native runtime's on the same states, and the thread agent saw
/// the rule, the call agent the rule and the thread choice.
pub fn check_decision(rec: &TraceRecord, r: &sfr2l_core::TrafficRule) {
    let inline = rec.inline.as_ref().unwrap();
    assert_eq!((inline.configuration.as_str(), inline.profile.as_str(), inline.steps.len()), ("thread-call", "s1", 2));
    let state: Vec<f32> = r.values().iter().map(|v| *v as f32).collect();
    assert_eq!(inline.steps[0].state, state);
    assert_eq!(inline.steps[1].state[..7], state[..]);
    assert_eq!(inline.steps[1].state[7], inline.steps[0].choice as f32);
    for (step, agent) in inline.steps.iter().zip(native()) {
        assert_eq!(
            step.choice,
            agent.decide(&step.state).unwrap(),
            "{} agent: the VM decided otherwise than the native runtime",
            step.agent
        );
    }
    assert_eq!(rec.threads, inline.steps[0].choice);
    assert_eq!(rec.calls, inline.steps[1].choice.min(MAX_CALLS));
}

/// The rule of these tests: the agents choose 5 threads for it (at least two are checked).
pub fn test_rule() -> sfr2l_core::TrafficRule {
    rule(1, 3, 1)
}

/// Ticks until a VM has claimed the test and dispatched its first calls; returns that VM.
pub fn until_claimed(h: &mut Host) -> usize {
    advance_until(h, 10, 2_000, |h| !dispatched_tests(h).is_empty());
    dispatched_tests(h)[0].id.vm
}

#[test]
fn one_vm_runs_the_test_as_a_closed_loop() {
    let r = test_rule();
    let mut h = host(2);
    start_loadtest(&mut h, 2, &loadtest(1, r, models(true), "t1", MAX_CALLS));
    // Both VMs race for the claim, and lose CAS races to "other workers" on the way.
    h.shared.borrow_mut().interleave = 4;
    let leader = until_claimed(&mut h);
    assert_eq!(h.shared.borrow().interleave, 0);
    let threads = test_calls(&h).len();
    assert!(threads >= 2, "the agents chose {threads} thread(s): pick a rule with more, out of order needs two");
    // Answer one at a time, the newest outstanding call first (out of dispatch order); the mix:
    // 200, Envoy's overflow 503 (told by x-envoy-overloaded, or by its body), the application's 503.
    let (mut answered, mut ok, mut overflow, mut app503) = (0u32, 0u64, 0u64, 0u64);
    while answered < MAX_CALLS {
        let mut out = test_calls(&h);
        assert!(!out.is_empty(), "nothing outstanding after {answered} answers; logs: {:#?}", h.logs());
        out.reverse();
        let c = &out[0];
        match answered % 3 {
            0 => {
                h.respond(c.id, 200, &[], b"{}").unwrap();
                ok += 1;
            }
            1 if answered % 2 == 1 => {
                h.respond(c.id, 503, &[("x-envoy-overloaded", "true")], b"").unwrap();
                overflow += 1;
            }
            1 => {
                let body = b"upstream connect error or disconnect/reset before headers. reset reason: overflow";
                h.respond(c.id, 503, &[], body).unwrap();
                overflow += 1;
            }
            _ => {
                h.respond(c.id, 503, &[], b"<html>app says 503</html>").unwrap();
                app503 += 1;
            }
        }
        answered += 1;
        if answered % 4 == 0 {
            h.advance(60).unwrap(); // ticks of both VMs in between
        }
    }
    h.advance(1_000).unwrap();
    let sent = dispatched_tests(&h);
    assert!(sent.iter().all(|c| c.id.vm == leader), "a second VM sent test calls");
    assert_eq!(sent.len() as u32, MAX_CALLS, "calls in total");
    let peak = h.shared.borrow().peak[SERVICE];
    assert_eq!(peak, threads, "most calls outstanding at once (at any dispatch), threads {threads}");
    assert!(sent.iter().all(|c| c.header(":path") == Some("/get") && c.header(":authority") == Some(SERVICE)));
    let recs = records(&h);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let rec = &recs[0];
    assert!(rec.complete, "{rec:?}");
    assert_eq!((rec.responses, rec.count(200), rec.count(503)), (MAX_CALLS as u64, ok, overflow + app503));
    assert_eq!((rec.reasons.overflow, rec.reasons.upstream, rec.reasons.refused), (overflow, ok + app503, 0));
    assert_eq!(rec.threads as usize, threads);
    check_decision(rec, &r);
    let inline = rec.inline.as_ref().unwrap();
    assert_eq!((inline.slot.as_str(), inline.no_response), ("t1", 0));
    assert_eq!(
        inline.agents_sha256,
        vec![models(false).agents["thread"].sha256.clone(), models(false).agents["call"].sha256.clone()]
    );
    assert!(inline.predicted.is_some(), "simulator loaded");
    assert_eq!(h.metric("sfr2l_inline_tests_total"), Some(1));
    assert_eq!(h.metric("sfr2l_model_errors_total"), Some(0));
    // The slot is done: no VM runs it again.
    h.advance(10_000).unwrap();
    assert_eq!(dispatched_tests(&h).len() as u32, MAX_CALLS);
    assert_eq!(records(&h).len(), 1);
}

#[test]
fn a_leader_that_goes_away_is_taken_over_after_5s() {
    let r = test_rule();
    let mut h = host(2);
    start_loadtest(&mut h, 2, &loadtest(1, r, models(false), "t1", MAX_CALLS));
    let leader = until_claimed(&mut h);
    for c in test_calls(&h).into_iter().take(2) {
        h.respond(c.id, 200, &[], b"").unwrap();
    }
    h.advance(100).unwrap();
    let gone = h.now_ns();
    h.drop_vm(leader);
    let other = 1 - leader;
    advance_until(&mut h, 10, 7_000, |h| dispatched_tests(h).iter().any(|c| c.id.vm == other));
    let first = dispatched_tests(&h).into_iter().find(|c| c.id.vm == other).unwrap().sent_ns;
    let after = first - gone;
    assert!((4_750_000_000..=5_600_000_000).contains(&after), "taken over {after} ns after the leader went away");
    while dispatched_tests(&h).iter().filter(|c| c.id.vm == other).count() < MAX_CALLS as usize
        || !test_calls(&h).is_empty()
    {
        for c in test_calls(&h) {
            h.respond(c.id, 200, &[], b"").unwrap();
        }
        h.advance(20).unwrap();
    }
    h.advance(1_000).unwrap();
    let recs = records(&h);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let rec = &recs[0];
    assert!(rec.complete);
    assert_eq!(
        (rec.responses, rec.count(200)),
        (MAX_CALLS as u64, MAX_CALLS as u64),
        "the new leader ran the whole test again"
    );
    check_decision(rec, &r);
    h.advance(10_000).unwrap();
    assert_eq!(records(&h).len(), 1);
}
