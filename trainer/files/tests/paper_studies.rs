//! `studies/s1.yaml` ... `s5.yaml` are the profiles that were compiled into core until issue 28
//! (`Profile::get`, commit 734a49f): the same ranges, fixed values, grids and lab topology, so
//! the committed datasets, simulators and agents keep meaning what they meant.

use sfr2l_core::study::{BadMode, Capacity, LabTopology, Quota, Span, Study};
use sfr2l_core::Feature;
use std::path::Path;

struct Old {
    name: &'static str,
    pend: (u32, u32),
    conn: (u32, u32),
    rpc: (u32, u32),
    ejp: (u32, u32),
    ce: (u32, u32),
    threads: (u32, u32),
    calls: (u32, u32),
    thread_grid: (u32, u32, u32),
    call_grid: (u32, u32, u32),
    lab: LabTopology,
}

const fn topo(hosts: u32, bad: u32, bad_pct: f64, client: Option<Quota>, conn: Option<Quota>) -> LabTopology {
    LabTopology {
        hosts,
        bad_hosts: bad,
        bad_abort_percent: bad_pct,
        bad_mode: BadMode::FaultAbort,
        delay_ms: 2,
        delay_percent: 100.0,
        client_workers: 2,
        client_quota: client,
        conn_quota: conn,
        capacity: None::<Capacity>,
    }
}

const fn q(hosts: u32, tokens: u32) -> Option<Quota> {
    Some(Quota { hosts, tokens, refill_per_s: 0 })
}

/// `Profile::get` as it was (core/src/profile.rs at 734a49f).
const OLD: [Old; 5] = [
    Old {
        name: "s1",
        pend: (1, 7),
        conn: (1, 7),
        rpc: (1, 7),
        ejp: (100, 100),
        ce: (1, 1),
        threads: (1, 5),
        calls: (400, 450),
        thread_grid: (1, 5, 1),
        call_grid: (435, 450, 1),
        lab: topo(2, 2, 30.0, None, None),
    },
    Old {
        name: "s2",
        pend: (3, 7),
        conn: (3, 7),
        rpc: (3, 7),
        ejp: (100, 100),
        ce: (1, 1),
        threads: (3, 7),
        calls: (100, 700),
        thread_grid: (3, 7, 1),
        call_grid: (100, 400, 100),
        lab: topo(2, 0, 0.0, q(2, 80), q(1, 5)),
    },
    Old {
        name: "s3",
        pend: (12, 18),
        conn: (1, 5),
        rpc: (10, 16),
        ejp: (4, 8),
        ce: (4, 8),
        threads: (10, 16),
        calls: (50, 500),
        thread_grid: (10, 16, 1),
        call_grid: (50, 500, 50),
        lab: topo(25, 2, 90.0, q(25, 7), None),
    },
    Old {
        name: "s4",
        pend: (12, 18),
        conn: (10, 20),
        rpc: (12, 18),
        ejp: (12, 18),
        ce: (12, 18),
        threads: (12, 18),
        calls: (250, 600),
        thread_grid: (12, 18, 1),
        call_grid: (250, 600, 50),
        lab: topo(17, 0, 0.0, q(17, 12), None),
    },
    Old {
        name: "s5",
        pend: (15, 30),
        conn: (5, 15),
        rpc: (15, 30),
        ejp: (22, 30),
        ce: (22, 30),
        threads: (16, 20),
        calls: (1000, 2000),
        thread_grid: (16, 20, 1),
        call_grid: (1000, 2000, 100),
        lab: topo(12, 0, 0.0, q(12, 60), None),
    },
];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn range(s: &Study, f: Feature) -> (u32, u32) {
    let (lo, hi) = s.feature_range(f);
    (lo as u32, hi as u32)
}

#[test]
fn paper_studies_reproduce_the_compiled_profiles() {
    for old in &OLD {
        let src = sfr2l_files::study::read(&root().join(format!("studies/{}.yaml", old.name))).unwrap();
        let s = &src.study;
        assert_eq!(s.name, old.name);
        assert_eq!(range(s, Feature::MaxPendingRequests), old.pend, "{}", old.name);
        assert_eq!(range(s, Feature::MaxConnections), old.conn, "{}", old.name);
        assert_eq!(range(s, Feature::MaxRequestsPerConnection), old.rpc, "{}", old.name);
        assert_eq!(s.feature_range(Feature::BaseEjectionTime), (180.0, 180.0), "{}", old.name);
        assert_eq!(range(s, Feature::MaxEjectionPercent), old.ejp, "{}", old.name);
        assert_eq!(s.feature_range(Feature::Interval), (1.0, 1.0), "{}", old.name);
        assert_eq!(range(s, Feature::Consecutive5xxErrors), old.ce, "{}", old.name);
        assert_eq!(s.threads, Span::new(old.threads.0, old.threads.1), "{}", old.name);
        assert_eq!(s.calls, Span::new(old.calls.0, old.calls.1), "{}", old.name);
        assert_eq!((s.thread_grid.lo, s.thread_grid.hi, s.thread_grid.step), old.thread_grid, "{}", old.name);
        assert_eq!((s.call_grid.lo, s.call_grid.hi, s.call_grid.step), old.call_grid, "{}", old.name);
        assert_eq!(s.lab, old.lab, "{}", old.name);
        assert_eq!(s.upstream_workers, 1);
        // What every committed dataset was collected with (data/sN.meta.json).
        assert_eq!((s.collection.rows, s.collection.seed, s.collection.repeats), (2000, 1, Some((50, 4))));
        assert_eq!((s.target.path.as_str(), s.upstream.ready().path.as_str()), ("/status/200", "/status/200"));
        // Draws map onto the same values the compiled profile drew (uniform over whole values).
        for u in [0.0, 0.25, 0.5, 0.999_999] {
            let (rule, load) = s.draw(&[u; 9]);
            let pick = |(lo, hi): (u32, u32)| Span::new(lo, hi).pick(u);
            assert_eq!(rule.max_pending_requests, pick(old.pend));
            assert_eq!(rule.max_connections, pick(old.conn));
            assert_eq!(rule.max_requests_per_connection, pick(old.rpc));
            assert_eq!(rule.max_ejection_percent, pick(old.ejp));
            assert_eq!(rule.consecutive_5xx_errors, pick(old.ce));
            assert_eq!((rule.base_ejection_time.secs(), rule.interval.secs()), (180.0, 1.0));
            assert_eq!((load.threads, load.calls), (pick(old.threads), pick(old.calls)));
        }
    }
}
