//! Observe mode across worker VMs: shares merged through shared data with CAS, exactly one
//! record per run, idle runs closed by the idle timeout on the virtual clock.

use crate::support::*;
use wasmtime::Module;

const CONFIG: &[u8] = br#"{"api":"v1","mode":"observe","generation":4,"idle_timeout":"2s","flush_period":"50ms"}"#;

fn announce<'a>(run: &'a str, calls: &'a str) -> [(&'a str, &'a str); 4] {
    [(":path", "/status/200"), ("x-sfr2l-run", run), ("x-sfr2l-threads", "2"), ("x-sfr2l-calls", calls)]
}

#[test]
fn two_workers_share_a_run_and_one_record_is_written() {
    share_a_run(module());
}

#[test]
fn the_observe_build_shares_a_run_as_well() {
    share_a_run(observe_module());
}

/// The observe-only build has no model runtime: a model set is fetched, then rejected with the
/// reason, counted, and the filter keeps counting.
#[test]
fn the_observe_build_rejects_model_sets() {
    let mut h = host_of(observe_module(), 1);
    let config = loadtest(1, crate::loadtest::test_rule(), models(false), "t1", 12);
    assert!(h.configure(0, &config).unwrap());
    advance_until(&mut h, 10, 1_000, |h| h.calls().len() == 2);
    assert_eq!(serve_fetches(&mut h), 2);
    assert_eq!(log_count(&h, "this filter is the observe-only build"), 1, "{:#?}", h.logs());
    assert_eq!((h.metric("sfr2l_model_errors_total"), h.metric("sfr2l_models_loaded")), (Some(1), Some(0)));
    h.advance(2_000).unwrap();
    assert!(dispatched_tests(&h).is_empty(), "a test without models");
    h.stream(0, &announce("r3", "1"), Some(200), 0).unwrap();
    h.advance(100).unwrap();
    assert_eq!(records(&h).len(), 1);
}

fn share_a_run(m: &Module) {
    let mut h = host_of(m, 2);
    // Tick phases 20 ms apart: the workers' merges interleave.
    assert!(h.configure(0, CONFIG).unwrap());
    h.advance(20).unwrap();
    assert!(h.configure(1, CONFIG).unwrap());
    // 10 responses: vm 0 sees the even ones, vm 1 the odd ones; every third is an overflow 503.
    // Each step, "another worker" also wins the next three CAS races (the merge must retry).
    let mut expect = (0u64, 0u64);
    for i in 0..10 {
        let overflow = i % 3 == 0;
        let (code, flags) = if overflow { (503, 0x80) } else { (200, 0) };
        if overflow {
            expect.1 += 1;
        } else {
            expect.0 += 1;
        }
        h.stream(i % 2, &announce("r1", "10"), Some(code), flags).unwrap();
        h.shared.borrow_mut().interleave += 3;
        h.advance(if i % 4 == 0 { 30 } else { 7 }).unwrap();
        if i < 9 {
            assert!(records(&h).is_empty(), "record before the last response (after {})", i + 1);
        }
    }
    h.advance(120).unwrap();
    assert_eq!(h.shared.borrow().interleave, 0);
    assert_eq!(h.shared.borrow().cas_mismatches, 30, "every injected CAS race retried, none stale");
    let recs = records(&h);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let r = &recs[0];
    assert!(r.complete);
    assert_eq!((r.run.as_str(), r.generation, r.threads, r.calls, r.responses), ("r1", 4, 2, 10, 10));
    assert_eq!((r.count(200), r.count(503)), expect);
    assert_eq!((r.reasons.overflow, r.reasons.upstream, r.reasons.total()), (expect.1, expect.0, 10));
    assert!(r.inline.is_none());
    // Later ticks of both workers (and the idle scan) write nothing more.
    h.advance(10_000).unwrap();
    assert_eq!(records(&h).len(), 1);
    assert_eq!(h.metric("sfr2l_runs_completed_total"), Some(1));
    assert_eq!(h.metric("sfr2l_responses_2xx_total"), Some(expect.0 as i64));
    assert_eq!(h.metric("sfr2l_responses_5xx_total"), Some(expect.1 as i64));

    // A straggler of the completed run is late, never a second record.
    h.stream(1, &announce("r1", "10"), Some(200), 0).unwrap();
    h.advance(200).unwrap();
    assert_eq!(records(&h).len(), 1);
    assert_eq!(h.metric("sfr2l_late_responses_total"), Some(1));
}

#[test]
fn an_idle_run_is_closed_once_by_the_idle_timeout() {
    let mut h = host(2);
    for vm in 0..2 {
        assert!(h.configure(vm, CONFIG).unwrap());
    }
    for i in 0..3 {
        h.stream(i % 2, &announce("r2", "10"), Some(200), 0).unwrap();
        h.advance(20).unwrap();
    }
    let last = h.now_ns();
    // Not before the idle timeout (2 s after the last response)...
    h.advance(1_800).unwrap();
    assert!(records(&h).is_empty());
    // ...and within one idle scan (250 ms) after it.
    h.advance(500).unwrap();
    let recs = records(&h);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let r = &recs[0];
    assert!(!r.complete);
    assert_eq!((r.run.as_str(), r.calls, r.responses, r.count(200)), ("r2", 10, 3, 3));
    assert!(r.last_ns <= last);
    h.advance(20_000).unwrap();
    assert_eq!(records(&h).len(), 1, "closed more than once");
    assert_eq!(h.metric("sfr2l_runs_incomplete_total"), Some(1));
    assert_eq!(h.metric("sfr2l_runs_completed_total"), Some(0));
}
