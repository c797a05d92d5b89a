//! End-to-end: the lab's quota failure modes (data/README.md, "Failure modes per profile") on
//! real Envoy. They are count-based, so the expected counts are exact, not statistical.

use sfr2l_core::study::Quota;
use sfr2l_core::{IstioDuration, LoadSetting, TrafficRule};
use sfr2l_lab::collect::{self, PlanEntry};
use sfr2l_tests::{start_lab, topology};

fn rule(rpc: u32) -> TrafficRule {
    TrafficRule {
        max_pending_requests: 100,
        max_connections: 100,
        max_requests_per_connection: rpc,
        base_ejection_time: IstioDuration::from_secs(180.0),
        max_ejection_percent: 0,
        interval: IstioDuration::from_secs(1.0),
        consecutive_5xx_errors: 0,
    }
}

fn run(lab: &mut sfr2l_lab::Lab, id: &str, rpc: u32, threads: u32, calls: u32) -> (u64, u64) {
    let e = PlanEntry { config_id: id.into(), repeat: 0, rule: rule(rpc), load: LoadSetting { threads, calls } };
    let out = collect::run_once(lab, &e, id, "/status/200", 0)
        .unwrap()
        .unwrap_or_else(|why| panic!("run {id} broke conservation: {why}"));
    (out.record.count(200), out.record.count(503))
}

/// Each load test (run header) is a new client with a full quota on every host; the 503s past
/// the quota come from the host, so conservation and the counts are exact.
#[test]
fn client_quota_is_per_load_test_and_exact() {
    let mut topo = topology(2, 0, 0.0, 0);
    topo.client_quota = Some(Quota { hosts: 2, tokens: 5, refill_per_s: 0 });
    let (mut lab, _dir) = start_lab(21800, topo);
    assert_eq!(run(&mut lab, "q1", 0, 2, 30), (10, 20));
    assert_eq!(run(&mut lab, "q2", 0, 2, 30), (10, 20), "a new load test starts with full quotas");
    // Within one host's quota, however least-request splits the calls.
    assert_eq!(run(&mut lab, "q3", 0, 3, 5), (5, 0));
    // Traffic without run headers is no client of the quota.
    let spec = sfr2l_load::LoadSpec::from_url(&lab.client_url("/status/200"), 2, 40).unwrap();
    let r = sfr2l_load::run(&spec).unwrap();
    assert_eq!(r.ret_codes().get(&200).copied(), Some(40));
}

/// A per-connection budget: connections recycled before it runs out never fail, a connection
/// kept longer fails every request past the budget.
#[test]
fn connection_quota_follows_max_requests_per_connection() {
    let mut topo = topology(1, 0, 0.0, 0);
    topo.conn_quota = Some(Quota { hosts: 1, tokens: 3, refill_per_s: 0 });
    let (mut lab, _dir) = start_lab(21850, topo);
    assert_eq!(run(&mut lab, "c1", 3, 1, 12), (12, 0), "3 requests per connection fit the budget");
    assert_eq!(run(&mut lab, "c2", 4, 1, 12), (9, 3), "every 4th request on a connection fails");
    assert_eq!(run(&mut lab, "c3", 0, 1, 12), (3, 9), "one connection: only the first 3 succeed");
}
