//! A hostile client in front of real Envoy with the filter (observe build, 2 workers): one
//! keep-alive connection announcing tens of thousands of distinct runs that never complete, with
//! malformed, huge and duplicated run headers mixed in. Envoy's memory and the filter's shared
//! data stay flat, the log is rate-limited, and other traffic is not slowed by the run state.
//! `SFR2L_FLOOD_RUNS` sets the flood (default 10,000; report/reliability.md has a longer one).

mod reliab;

use reliab::{announce, start_envoy, KeepAlive};
use std::time::{Duration, Instant};

fn flood_runs() -> usize {
    std::env::var("SFR2L_FLOOD_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// `n` runs announced from `from` on, one request each, never complete; three in every 97
/// requests carry malformed run headers instead, and one a duplicated run header (Envoy hands the
/// filter the first value: that run is counted, the second value never seen).
fn flood(c: &mut KeepAlive, tag: &str, from: usize, n: usize) {
    let big = "B".repeat(30_000);
    for i in from..from + n {
        let run = format!("{tag}-{i}");
        let status = match i % 97 {
            0 => c.get("/x", &[("x-sfr2l-run", &big), ("x-sfr2l-threads", "1"), ("x-sfr2l-calls", "5")]),
            1 => c.get("/x", &[("x-sfr2l-run", "evil\"{}"), ("x-sfr2l-threads", "1"), ("x-sfr2l-calls", "5")]),
            2 => c.get(
                "/x",
                &[
                    ("x-sfr2l-run", "dup-a"),
                    ("x-sfr2l-run", "evil-b"),
                    ("x-sfr2l-threads", "1"),
                    ("x-sfr2l-calls", "5"),
                ],
            ),
            3 => c.get("/x", &[("x-sfr2l-run", "evil-n"), ("x-sfr2l-threads", "x"), ("x-sfr2l-calls", "1e99")]),
            _ => c.get("/x", &announce(&run, "1000")),
        };
        assert_eq!(status, 200, "request {i}: the filter must never touch a response");
    }
}

/// Requests per second of `n` unannounced requests on their own connection while `background`
/// runs on another.
fn other_traffic_rps(port: u16, n: usize, background: impl FnOnce() + Send) -> f64 {
    std::thread::scope(|s| {
        let bg = s.spawn(background);
        let mut c = KeepAlive::connect(port);
        let t0 = Instant::now();
        for _ in 0..n {
            assert_eq!(c.get("/other", &[]), 200);
        }
        let rps = n as f64 / t0.elapsed().as_secs_f64();
        bg.join().unwrap();
        rps
    })
}

#[test]
fn a_flood_of_runs_keeps_envoy_bounded() {
    let cfg = r#"{"api":"v1","generation":1,"idle_timeout":"2s","max_open_runs":1024,"max_trace_lines_per_s":100}"#;
    let envoy = start_envoy(22100, cfg, None);
    let mut c = KeepAlive::connect(envoy.listener);
    // Warm-up: the run tables fill to their bound.
    flood(&mut c, "warm", 0, 3_000);
    std::thread::sleep(Duration::from_millis(600));
    let (rss0, heap0, shared0) = (envoy.rss_kb(), envoy.heap_allocated(), envoy.metric("sfr2l_shared_run_bytes"));
    let n = flood_runs();
    let t0 = Instant::now();
    flood(&mut c, "flood", 0, n);
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(600));
    let (rss1, heap1, shared1) = (envoy.rss_kb(), envoy.heap_allocated(), envoy.metric("sfr2l_shared_run_bytes"));
    let (open, evicted) = (envoy.metric("sfr2l_open_runs"), envoy.metric("sfr2l_runs_evicted_total"));
    let (dropped, unannounced) =
        (envoy.metric("sfr2l_trace_lines_dropped_total"), envoy.metric("sfr2l_unannounced_responses_total"));
    let text = envoy.log_text();
    let lines = text.matches("SFR2L_TRACE ").count();
    eprintln!(
        "FIGURE hostile: {n} runs in {secs:.1} s ({:.0} req/s); Envoy RSS {rss0} -> {rss1} kB; heap {heap0} -> {heap1} B; \
         shared run tables {shared0} -> {shared1} B; open runs {open}; evicted {evicted}; trace lines {lines}, dropped {dropped}; \
         unannounced {unannounced}",
        n as f64 / secs
    );
    assert!(rss1 <= rss0 + rss0 / 20 + 2048, "Envoy RSS grew: {rss0} -> {rss1} kB");
    assert!(
        shared1 < 1024 * 2 * 400 && shared1 <= shared0 + shared0 / 10 + 4096,
        "shared data: {shared0} -> {shared1}"
    );
    assert!(open <= 1024, "{open} open runs");
    assert!(evicted as usize >= n * 9 / 10 - 1024, "only {evicted} runs evicted of {n}");
    assert!(dropped > 0, "no trace line was dropped");
    assert!(unannounced >= 3 * ((n + 3_000) / 97) as u64 - 6, "malformed announcements counted as runs: {unannounced}");
    let budget = (2.0 * 100.0 * (secs + 5.0)) as usize + 200 * 2;
    assert!(lines <= budget, "{lines} trace lines (budget {budget})");
    for l in text.lines() {
        assert!(!l.contains("evil") && !l.contains("BBBB"), "a hostile header reached the log: {l:.200}");
    }
}

/// Other traffic's throughput while one connection floods with distinct announced runs, against
/// the same flood without announcements: the run state costs the other traffic nothing.
/// A throughput ratio on 2 shared cores is a benchmark, not a unit test (the brief): run it with
/// `cargo test --profile fast -p sfr2l-tests --test hostile -- --ignored --nocapture`; its figures are
/// in report/reliability.md (1.24 under contention, 0.55 on a quiet machine: a miss, open).
#[test]
#[ignore = "throughput benchmark: run with --ignored (report/reliability.md)"]
fn a_flood_of_runs_does_not_slow_other_traffic() {
    let cfg = r#"{"api":"v1","generation":1,"idle_timeout":"2s"}"#;
    let envoy = start_envoy(22200, cfg, None);
    let port = envoy.listener;
    let bg = |announced: bool| {
        move || {
            let mut c = KeepAlive::connect(port);
            for i in 0..4_000 {
                if announced {
                    c.get("/x", &announce(&format!("bg-{i}"), "1000"));
                } else {
                    c.get("/x", &[]);
                }
            }
        }
    };
    other_traffic_rps(port, 1_000, bg(false)); // warm-up
    let mut plain = Vec::new();
    let mut runs = Vec::new();
    for _ in 0..2 {
        plain.push(other_traffic_rps(port, 1_500, bg(false)));
        runs.push(other_traffic_rps(port, 1_500, bg(true)));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (p, r) = (med(&mut plain), med(&mut runs));
    eprintln!(
        "FIGURE other traffic: {p:.0} req/s beside an unannounced flood, {r:.0} beside a flood of runs (ratio {:.2})",
        r / p
    );
    assert!(r >= 0.7 * p, "other traffic slowed by the run flood: {r:.0} vs {p:.0} req/s");
}
