//! End-to-end: how a study's bad hosts fail (`lab.faults.badHosts.mode`, data/README.md) on real
//! Envoy. A fault abort answers 503 before the app; an `app503` host's app serves the request
//! (the upstream's own path, whatever the server is) and its sidecar answers 503 in its place.
//! At 100% both are exact counts.

use sfr2l_core::study::BadMode;
use sfr2l_core::{IstioDuration, LoadSetting, TrafficRule};
use sfr2l_lab::collect::{self, PlanEntry};
use sfr2l_lab::mesh::admin;
use sfr2l_tests::{start_lab, topology};

/// No limits, no ejection: every call reaches a host.
fn open_rule() -> TrafficRule {
    TrafficRule {
        max_pending_requests: 1000,
        max_connections: 1000,
        max_requests_per_connection: 0,
        base_ejection_time: IstioDuration::from_secs(30.0),
        max_ejection_percent: 0,
        interval: IstioDuration::from_secs(1.0),
        consecutive_5xx_errors: 0,
    }
}

/// Requests the server sidecars passed to the app and it answered 200.
fn app_200(lab: &sfr2l_lab::Lab) -> u64 {
    let (nums, _) = admin::stats(lab.ports.upstream_admin, "^cluster\\.app\\.upstream_rq_200$").unwrap();
    nums.values().sum()
}

/// (200s, 503s, app 200s) of one run of `calls` over 2 threads.
fn run(mode: BadMode, base_port: u16, calls: u32) -> (u64, u64, u64) {
    let mut topo = topology(2, 1, 100.0, 0);
    topo.bad_mode = mode;
    let (mut lab, _dir) = start_lab(base_port, topo);
    let before = app_200(&lab);
    let e =
        PlanEntry { config_id: "bad".into(), repeat: 0, rule: open_rule(), load: LoadSetting { threads: 2, calls } };
    let out = collect::run_once(&mut lab, &e, "bad-1", "/status/200", 0)
        .unwrap()
        .unwrap_or_else(|why| panic!("{mode:?}: the run broke conservation: {why}"));
    (out.record.count(200), out.record.count(503), app_200(&lab) - before)
}

#[test]
fn fault_aborts_skip_the_app_and_app503_hosts_call_it() {
    let (ok, failed, app) = run(BadMode::FaultAbort, 21900, 60);
    assert_eq!(ok + failed, 60);
    assert!(failed > 0 && ok > 0, "both hosts got calls: {ok} 200s, {failed} 503s");
    assert_eq!(app, ok, "an aborted request never reaches the app");

    let (ok, failed, app) = run(BadMode::App503, 21940, 60);
    assert_eq!(ok + failed, 60);
    assert!(failed > 0 && ok > 0, "both hosts got calls: {ok} 200s, {failed} 503s");
    assert_eq!(app, 60, "the app served every request, the bad host's 503s included");
}
