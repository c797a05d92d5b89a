//! Soak on the real lab (client sidecar with the observe build, server-side Envoy, httpbin):
//! announced runs back to back while a second client sends unannounced traffic, with a rule
//! switch every `SFR2L_SOAK_SWITCH_S` seconds (default 10) for `SFR2L_SOAK_S` seconds (default 40;
//! the report's figure: 600 s with 30 s switches). Every run is conserved (calls sent = responses
//! traced = the load generator's codes), no filter error, no failed unannounced request, the
//! client Envoy's RSS flat within 5% after warm-up, the shared run tables within their bound.

mod reliab;

use reliab::KeepAlive;
use sfr2l::ingest::LogTail;
use sfr2l::lab::{admin, Lab, LabOptions, Toolchain};
use sfr2l::load::{self, LoadSpec};
use sfr2l_core::artifact::header;
use sfr2l_core::{IstioDuration, TrafficRule};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rule(conn: u32) -> TrafficRule {
    TrafficRule {
        max_pending_requests: 1_000,
        max_connections: conn,
        max_requests_per_connection: 0,
        base_ejection_time: IstioDuration::from_secs(30.0),
        max_ejection_percent: 0,
        interval: IstioDuration::from_secs(10.0),
        consecutive_5xx_errors: 0,
    }
}

fn wasm_metric(port: u16, name: &str) -> u64 {
    let (nums, _) = admin::stats(port, &format!("^wasmcustom\\.{name}$")).unwrap();
    nums.get(&format!("wasmcustom.{name}")).copied().unwrap_or(0)
}

#[test]
fn soak_observe_mode_with_rule_switches() {
    let (total, switch_every) = (env_secs("SFR2L_SOAK_S", 40), env_secs("SFR2L_SOAK_SWITCH_S", 10));
    let dir = tempfile::tempdir().unwrap();
    let root = sfr2l_tests::repo_root();
    let opts = LabOptions {
        dir: dir.path().to_path_buf(),
        base_port: 22300,
        topology: sfr2l_tests::topology(2, 0, 0.0, 0),
        tools: Toolchain::discover(&root.join(".venv"), &reliab::observe_wasm()).unwrap(),
        httpbin_workers: 2,
        httpbin_threads: 16,
        upstream_workers: 1,
        attached: true,
        idle_timeout_ms: 1000,
        artifacts: None,
    };
    let mut lab = Lab::start(opts).unwrap();
    let (admin_port, listener) = (lab.ports.client_admin, lab.ports.client_listener);
    let client_pid = *lab.pids().last().unwrap();
    let rules = [rule(64), rule(16)];
    lab.apply(&rules[0]).unwrap();

    let stop = AtomicBool::new(false);
    let (other_ok, other_bad, reconnects) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let t0 = Instant::now();
    let mut samples: Vec<(f64, u64, u64)> = Vec::new(); // (s, rss kB, shared bytes)
    let (mut runs, mut calls_total, mut switches) = (0u64, 0u64, 0u64);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = KeepAlive::connect(listener);
            while !stop.load(Ordering::Relaxed) {
                // A rule switch drains the listener, which closes keep-alive connections: a
                // client reconnects and sends again (not a failure); a second failure is one.
                let status = c.try_get("/status/200", &[]).or_else(|_| {
                    reconnects.fetch_add(1, Ordering::Relaxed);
                    c = KeepAlive::connect(listener);
                    c.try_get("/status/200", &[])
                });
                match status {
                    Ok(200) => other_ok.fetch_add(1, Ordering::Relaxed),
                    _ => other_bad.fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let mut last_switch = Instant::now();
        let mut last_sample = Instant::now() - Duration::from_secs(10);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while t0.elapsed() < Duration::from_secs(total) {
                if last_switch.elapsed() >= Duration::from_secs(switch_every) {
                    switches += 1;
                    lab.apply(&rules[(switches % 2) as usize]).unwrap();
                    last_switch = Instant::now();
                }
                let (threads, calls) = (2 + (runs % 4) as u32, 40 + 20 * (runs % 5) as u32);
                let run = format!("soak-{runs}");
                let mut tail = LogTail::at_end(&lab.client_log()).unwrap();
                let mut spec = LoadSpec::from_url(&lab.client_url("/status/200"), threads, calls).unwrap();
                spec.headers = vec![
                    (header::RUN.into(), run.clone()),
                    (header::THREADS.into(), threads.to_string()),
                    (header::CALLS.into(), calls.to_string()),
                ];
                let res = load::run(&spec).unwrap();
                let rec = tail
                    .wait_for(&run, Duration::from_secs(5))
                    .unwrap()
                    .unwrap_or_else(|| panic!("no record for {run}"));
                assert!(rec.complete && rec.responses == u64::from(calls), "{run}: {rec:?}");
                let sent: u64 = res.ret_codes().values().sum();
                assert_eq!(sent, u64::from(calls), "{run}: load generator");
                for (code, n) in res.ret_codes() {
                    assert_eq!(rec.count(*code as u16), *n, "{run}: code {code}");
                }
                runs += 1;
                calls_total += u64::from(calls);
                if last_sample.elapsed() >= Duration::from_secs(2) {
                    let shared = wasm_metric(admin_port, "sfr2l_shared_run_bytes");
                    samples.push((t0.elapsed().as_secs_f64(), reliab::rss_kb(client_pid), shared));
                    last_sample = Instant::now();
                }
            }
        }));
        stop.store(true, Ordering::Relaxed);
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    });
    let errors =
        (wasm_metric(admin_port, "sfr2l_internal_errors_total"), wasm_metric(admin_port, "sfr2l_config_errors_total"));
    let resets = wasm_metric(admin_port, "sfr2l_client_resets_total");
    let (ok, bad) = (other_ok.load(Ordering::Relaxed), other_bad.load(Ordering::Relaxed));
    // Each kind of filter error is logged once: show them with the figure.
    let log = reliab::read_log(&lab.client_log());
    let error_lines: Vec<&str> = log.lines().filter(|l| l.contains("][error][wasm]")).collect();
    eprintln!("filter error lines: {error_lines:#?}");
    let warm: Vec<&(f64, u64, u64)> = samples.iter().filter(|s| s.0 >= total as f64 / 3.0).collect();
    let (lo, hi) = (warm.iter().map(|s| s.1).min().unwrap(), warm.iter().map(|s| s.1).max().unwrap());
    let shared_max = samples.iter().map(|s| s.2).max().unwrap();
    eprintln!(
        "FIGURE soak: {total} s, {runs} runs ({calls_total} calls) all conserved, {switches} rule switches, \
         {ok} unannounced ok / {bad} failed ({} reconnects after drains), filter errors {errors:?}, client resets {resets}; client Envoy RSS after warm-up {lo}..{hi} kB \
         ({:+.1}%), shared run tables max {shared_max} B; samples {samples:?}",
        reconnects.load(Ordering::Relaxed),
        (hi as f64 / lo as f64 - 1.0) * 100.0
    );
    // A request in flight when a rule switch drains its connection ends without a response: the
    // filter counts it in `sfr2l_client_resets_total`, not as an error of its own.
    assert!(error_lines.is_empty(), "filter errors: {error_lines:#?}");
    assert_eq!(errors, (0, 0), "internal and configuration errors");
    assert_eq!(bad, 0, "unannounced requests failed");
    assert!(ok > 0 && runs > 0 && switches >= total / switch_every - 1);
    assert!(hi as f64 <= lo as f64 * 1.05, "client Envoy RSS not flat after warm-up: {lo}..{hi} kB");
    assert!(shared_max < 1024 * 2 * 400, "shared run tables: {shared_max} B");
}
