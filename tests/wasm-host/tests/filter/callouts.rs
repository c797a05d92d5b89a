//! Test calls that fail, get lost, or are refused at dispatch.

use crate::loadtest::{check_decision, test_rule, until_claimed, MAX_CALLS};
use crate::support::*;

#[test]
fn failed_and_lost_calls_close_the_test_as_incomplete_after_the_stall_timeout() {
    let r = test_rule();
    let mut h = host(2);
    start_loadtest(&mut h, 2, &loadtest(1, r, models(false), "t1", MAX_CALLS));
    until_claimed(&mut h);
    // Four answers, two of them failures (no headers: reset or timeout), then silence.
    for i in 0..4 {
        let c = test_calls(&h)[0].clone();
        if i % 2 == 0 {
            h.fail(c.id).unwrap();
        } else {
            h.respond(c.id, 200, &[], b"").unwrap();
        }
    }
    let last = h.now_ns();
    let lost = test_calls(&h).len();
    assert!(lost > 0);
    // Timeout 2 s + 5 s without progress: closed, not before.
    h.advance(6_900).unwrap();
    assert!(records(&h).is_empty(), "closed before the stall timeout");
    h.advance(600).unwrap();
    let recs = records(&h);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let rec = &recs[0];
    assert!(!rec.complete, "{rec:?}");
    assert_eq!((rec.calls, rec.responses, rec.count(0), rec.count(200)), (MAX_CALLS, 4, 2, 2));
    assert_eq!(rec.inline.as_ref().unwrap().no_response, 2);
    assert!(rec.last_ns <= last);
    check_decision(rec, &r);
    assert_eq!(h.metric("sfr2l_runs_incomplete_total"), Some(1));
    // The lost calls stay lost; answering one late changes nothing, nor do later ticks.
    let late = test_calls(&h)[0].clone();
    h.respond(late.id, 200, &[], b"").unwrap();
    h.advance(20_000).unwrap();
    assert_eq!(records(&h).len(), 1);
    assert_eq!(dispatched_tests(&h).len(), 4 + lost);
}

#[test]
fn refused_dispatches_count_as_503_refused() {
    let r = test_rule();
    let mut h = host(1);
    start_loadtest(&mut h, 1, &loadtest(1, r, models(false), "t1", MAX_CALLS));
    h.shared.borrow_mut().refusing.insert(SERVICE.into());
    // The claiming tick refuses every slot (`threads` calls), then the slots refill fast.
    advance_until(&mut h, 10, 2_000, |h| h.shared.borrow().refused > 0);
    let refused = h.shared.borrow().refused;
    assert!(test_calls(&h).is_empty());
    h.shared.borrow_mut().refusing.clear();
    advance_until(&mut h, 1, 100, |h| !test_calls(h).is_empty());
    while !records(&h).iter().any(|r| r.complete) {
        for c in test_calls(&h) {
            h.respond(c.id, 200, &[], b"").unwrap();
        }
        h.advance(5).unwrap();
        assert!(h.now_ns() < sfr2l_wasm_host::T0_NS + 60_000_000_000, "the test never completed");
    }
    let recs = records(&h);
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(u64::from(rec.threads), refused, "one refusal per slot of the claiming tick");
    assert_eq!(
        (rec.responses, rec.count(503), rec.count(200)),
        (MAX_CALLS as u64, refused, MAX_CALLS as u64 - refused)
    );
    assert_eq!((rec.reasons.refused, rec.reasons.upstream), (refused, MAX_CALLS as u64 - refused));
    assert_eq!(dispatched_tests(&h).len() as u64, MAX_CALLS as u64 - refused);
    // An unknown cluster is refused too (BadArgument): the models fetch is retried, not lost.
    let mut m = models(false);
    m.cluster = "no-such-cluster".into();
    m.fetch_timeout = sfr2l_core::IstioDuration::from_secs(1.0);
    let before = h.shared.borrow().refused;
    assert!(h.reconfigure(0, &loadtest(2, r, m, "t2", MAX_CALLS)).unwrap());
    h.advance(2_000).unwrap();
    assert!(h.shared.borrow().refused > before + 1, "fetch dispatch retried");
    h.advance(2_000).unwrap();
    assert_eq!(h.metric("sfr2l_model_errors_total"), Some(1), "{:#?}", h.logs());
    assert_eq!(log_count(&h, "fetch from cluster `no-such-cluster` timed out"), 1);
}

#[test]
fn a_refused_test_runs_at_the_refusal_cost() {
    // Every call refused (all hosts ejected, or the circuit breaker open): each thread's calls
    // follow one another at the refusal cost, as a fortio thread's do behind its sidecar's local
    // 503s, though the 1 ms ticks that drive them come once per seven refusals.
    let r = test_rule();
    let mut h = host(1);
    let calls = 120;
    start_loadtest(&mut h, 1, &loadtest(1, r, models(false), "t1", calls));
    h.shared.borrow_mut().refusing.insert(SERVICE.into());
    advance_until(&mut h, 1, 2_000, |h| !records(h).is_empty());
    let recs = records(&h);
    let rec = &recs[0];
    assert!(rec.complete, "{rec:?}");
    assert_eq!((rec.responses, rec.reasons.refused), (u64::from(calls), u64::from(calls)));
    assert!(dispatched_tests(&h).is_empty());
    let cost = u64::from(sfr2l_core::config::DEFAULT_REFUSAL_COST_US) * 1_000;
    let per_thread = u64::from(calls.div_ceil(rec.threads));
    assert_eq!(rec.last_ns - rec.first_ns, per_thread * cost, "{rec:?}");
    assert_eq!(h.metric("sfr2l_internal_errors_total").unwrap_or(0), 0);
}
