//! Model sets pushed while a test runs: bad ones are rejected (once per push and VM, counted),
//! the running test completes with the models it started with; fetches answered out of order
//! load, and those of a superseded configuration are ignored.

use crate::loadtest::{check_decision, test_rule, until_claimed, MAX_CALLS};
use crate::support::*;

const REJECTED: &str = "sfr2l: new models rejected";

#[test]
fn bad_model_sets_pushed_mid_test_are_rejected_and_the_test_completes_with_the_old_ones() {
    let r = test_rule();
    let mut h = host(2);
    start_loadtest(&mut h, 2, &loadtest(1, r, models(false), "t1", MAX_CALLS));
    until_claimed(&mut h);
    let good = models(false);
    let mut wrong_sha = good.clone();
    wrong_sha.agents.get_mut("thread").unwrap().sha256 = "0".repeat(64);
    let mut missing = good.clone();
    missing.agents.get_mut("call").unwrap().path = format!("{AGENTS}/nope.onnx");
    let pushes = [(2, wrong_sha, "differs from the configured"), (3, missing, "HTTP status 404")];
    for (i, (generation, m, why)) in pushes.into_iter().enumerate() {
        // Answer two test calls, push the bad set to both VMs, answer two more, serve the fetches.
        for c in test_calls(&h).into_iter().take(2) {
            h.respond(c.id, 200, &[], b"").unwrap();
        }
        for vm in 0..2 {
            assert!(h.reconfigure(vm, &loadtest(generation, r, m.clone(), "t1", MAX_CALLS)).unwrap());
        }
        advance_until(&mut h, 10, 1_000, |h| h.calls().iter().filter(|c| c.cluster == ARTIFACTS).count() == 4);
        for c in test_calls(&h).into_iter().take(2) {
            h.respond(c.id, 200, &[], b"").unwrap();
        }
        assert_eq!(serve_fetches(&mut h), 4);
        h.advance(100).unwrap();
        assert_eq!(log_count(&h, REJECTED), 2 * (i + 1), "one rejection per push and VM: {:#?}", h.logs());
        assert_eq!(h.logs().iter().filter(|l| l.message.contains(REJECTED) && l.message.contains(why)).count(), 2);
        assert_eq!(h.metric("sfr2l_model_errors_total"), Some(2 * (i as i64 + 1)));
        assert_eq!(h.metric("sfr2l_models_loaded"), Some(1));
    }
    // The running test completes with the old models.
    while records(&h).is_empty() {
        for c in test_calls(&h) {
            h.respond(c.id, 200, &[], b"").unwrap();
        }
        h.advance(20).unwrap();
        assert!(h.now_ns() < sfr2l_wasm_host::T0_NS + 60_000_000_000, "the test never completed: {:#?}", h.logs());
    }
    h.advance(1_000).unwrap();
    let recs = records(&h);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let rec = &recs[0];
    assert!(rec.complete);
    assert_eq!((rec.generation, rec.responses, rec.count(200)), (1, MAX_CALLS as u64, MAX_CALLS as u64));
    assert_eq!(rec.inline.as_ref().unwrap().agents_sha256[0], good.agents["thread"].sha256);
    check_decision(rec, &r);
    assert_eq!(dispatched_tests(&h).len() as u32, MAX_CALLS);
    assert_eq!(h.metric("sfr2l_model_errors_total"), Some(4));
    assert_eq!(h.metric("sfr2l_models_loaded"), Some(1));
    assert_eq!(log_count(&h, "sfr2l: models loaded"), 2, "only the first set loaded (once per VM)");
}

#[test]
fn fetches_out_of_order_load_and_a_superseded_fetch_is_ignored() {
    let r = test_rule();
    let mut h = host(1);
    // Push A (with the simulator): three fetches, left unanswered.
    assert!(h.configure(0, &loadtest(1, r, models(true), "t1", MAX_CALLS)).unwrap());
    advance_until(&mut h, 10, 1_000, |h| h.calls().len() == 3);
    let superseded = h.calls();
    // Push B (no simulator) replaces it: its two fetches answered in reverse order.
    assert!(h.reconfigure(0, &loadtest(2, r, models(false), "t1", MAX_CALLS)).unwrap());
    advance_until(&mut h, 10, 1_000, |h| h.calls().len() == 5);
    let mut b: Vec<_> = h.calls().into_iter().filter(|c| !superseded.contains(c)).collect();
    assert_eq!(b.len(), 2);
    b.reverse();
    for c in &b {
        let body =
            std::fs::read(repo().join("policies").join(c.header(":path").unwrap().trim_start_matches('/'))).unwrap();
        h.respond(c.id, 200, &[], &body).unwrap();
    }
    assert_eq!(log_count(&h, "sfr2l: models loaded"), 1, "{:#?}", h.logs());
    // A's fetches arrive late: a 404 and a wrong body are not rejections, the right body loads nothing.
    h.respond(superseded[0].id, 404, &[], b"gone").unwrap();
    h.respond(superseded[1].id, 200, &[], b"not the model").unwrap();
    let body =
        std::fs::read(repo().join("policies").join(superseded[2].header(":path").unwrap().trim_start_matches('/')))
            .unwrap();
    h.respond(superseded[2].id, 200, &[], &body).unwrap();
    h.advance(100).unwrap();
    assert_eq!(log_count(&h, "sfr2l: models loaded"), 1);
    assert_eq!(log_count(&h, REJECTED), 0, "{:#?}", h.logs());
    assert_eq!(h.metric("sfr2l_model_errors_total"), Some(0));
    // The test decides with B: generation 2, no simulator prediction.
    until_claimed(&mut h);
    while records(&h).is_empty() {
        for c in test_calls(&h) {
            h.respond(c.id, 200, &[], b"").unwrap();
        }
        h.advance(20).unwrap();
        assert!(h.now_ns() < sfr2l_wasm_host::T0_NS + 60_000_000_000, "the test never completed");
    }
    let rec = &records(&h)[0];
    assert_eq!(rec.generation, 2);
    assert!(rec.inline.as_ref().unwrap().predicted.is_none(), "decided with the superseded set (simulator)");
    check_decision(rec, &r);
}

/// A push that keeps the models (only the trigger changes) while they are being fetched, then
/// Envoy deletes the old root context once its listener drained, cancelling its callouts: the
/// models must still load (fetched again from the new root context), and the new test run.
#[test]
fn models_fetched_by_a_deleted_root_context_still_load() {
    let r = test_rule();
    let mut h = host(1);
    assert!(h.configure(0, &loadtest(1, r, models(false), "t1", MAX_CALLS)).unwrap());
    advance_until(&mut h, 10, 1_000, |h| h.calls().len() == 2);
    let old = h.root(0).unwrap();
    assert!(h.reconfigure(0, &loadtest(2, r, models(false), "t2", MAX_CALLS)).unwrap());
    h.advance(100).unwrap();
    h.delete_root(0, old).unwrap();
    assert!(h.calls().iter().all(|c| c.context != old), "the old root context's fetches are cancelled");
    // Serve whatever is fetched for the fetch timeout (30 s) and its margin.
    for _ in 0..330 {
        serve_fetches(&mut h);
        h.advance(100).unwrap();
    }
    assert_eq!(log_count(&h, REJECTED), 0, "{:#?}", h.logs());
    assert_eq!(h.metric("sfr2l_models_loaded"), Some(1), "{:#?}", h.logs());
    assert!(!dispatched_tests(&h).is_empty(), "no test ran for t2");
}
