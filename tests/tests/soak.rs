//! Soak on the real lab (client sidecar with the observe build, server-side Envoy, httpbin):
//! announced runs back to back while a second client sends unannounced traffic, with a rule
//! switch every `SFR2L_SOAK_SWITCH_S` seconds (default 10) for `SFR2L_SOAK_S` seconds (default 20;
//! the report's figure: 600 s with 30 s switches). Every run is conserved (calls sent = responses
//! traced = the load generator's codes), no filter error, no failed unannounced request, the
//! client Envoy's RSS flat within 5% after warm-up, the shared run tables within their bound.
//! The same in load-test mode: the sidecar's own inline test every second (`SFR2L_SOAK_LT_S`,
//! default 15, switches every 5 s unless `SFR2L_SOAK_SWITCH_S` says otherwise), each decided by
//! the agents for the rule in force and each record whole.

mod reliability;

use reliability::KeepAlive;
use sfr2l_core::artifact::header;
use sfr2l_core::config::{ConfigV1, Mode};
use sfr2l_core::{IstioDuration, TrafficRule};
use sfr2l_lab::ingest::LogTail;
use sfr2l_lab::loadtest::{lab_loadtest, log_offset, models_config, records_since};
use sfr2l_lab::{admin, envoy, Lab, LabOptions, Toolchain};
use sfr2l_load::{self as load, LoadSpec};
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

/// Unannounced traffic beside the runs: one keep-alive client, a request every 2 ms.
#[derive(Default)]
struct Background {
    ok: AtomicU64,
    bad: AtomicU64,
    reconnects: AtomicU64,
}

impl Background {
    fn run(&self, listener: u16, stop: &AtomicBool) {
        let mut c = KeepAlive::connect(listener);
        while !stop.load(Ordering::Relaxed) {
            // A rule switch drains the listener, which closes keep-alive connections: a client
            // reconnects and sends again (not a failure); a second failure is one.
            let status = c.try_get("/status/200", &[]).or_else(|_| {
                self.reconnects.fetch_add(1, Ordering::Relaxed);
                c = KeepAlive::connect(listener);
                c.try_get("/status/200", &[])
            });
            match status {
                Ok(200) => self.ok.fetch_add(1, Ordering::Relaxed),
                _ => self.bad.fetch_add(1, Ordering::Relaxed),
            };
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    fn counts(&self) -> (u64, u64, u64) {
        (self.ok.load(Ordering::Relaxed), self.bad.load(Ordering::Relaxed), self.reconnects.load(Ordering::Relaxed))
    }
}

/// The filter's error lines in the client log (each kind is logged once).
fn error_lines(lab: &Lab) -> Vec<String> {
    let log = reliability::read_log(&lab.client_log());
    log.lines().filter(|l| l.contains("][error][wasm]")).map(str::to_string).collect()
}

/// Min and max RSS over the samples after the first third of the soak (warm-up).
fn rss_after_warmup(samples: &[(f64, u64, u64)], total: u64) -> (u64, u64) {
    let warm: Vec<u64> = samples.iter().filter(|s| s.0 >= total as f64 / 3.0).map(|s| s.1).collect();
    (warm.iter().copied().min().unwrap_or(0), warm.iter().copied().max().unwrap_or(0))
}

fn wasm_metric(port: u16, name: &str) -> u64 {
    let (nums, _) = admin::stats(port, &format!("^wasmcustom\\.{name}$")).unwrap();
    nums.get(&format!("wasmcustom.{name}")).copied().unwrap_or(0)
}

#[test]
fn soak_observe_mode_with_rule_switches() {
    let (total, switch_every) = (env_secs("SFR2L_SOAK_S", 20), env_secs("SFR2L_SOAK_SWITCH_S", 10));
    let dir = tempfile::tempdir().unwrap();
    let root = sfr2l_tests::repo_root();
    let opts = LabOptions {
        dir: dir.path().to_path_buf(),
        base_port: 22300,
        topology: sfr2l_tests::topology(2, 0, 0.0, 0),
        tools: Toolchain::discover(&root.join(".venv"), &reliability::observe_wasm()).unwrap(),
        upstream: sfr2l_tests::httpbin(2, 16),
        target: sfr2l_tests::target(),
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
    let other = Background::default();
    let t0 = Instant::now();
    let mut samples: Vec<(f64, u64, u64)> = Vec::new(); // (s, rss kB, shared bytes)
    let (mut runs, mut calls_total, mut switches) = (0u64, 0u64, 0u64);
    std::thread::scope(|s| {
        s.spawn(|| other.run(listener, &stop));
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
                    samples.push((t0.elapsed().as_secs_f64(), reliability::rss_kb(client_pid), shared));
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
    let (ok, bad, reconnects) = other.counts();
    // Each kind of filter error is logged once: show them with the figure.
    let error_lines = error_lines(&lab);
    eprintln!("filter error lines: {error_lines:#?}");
    let (lo, hi) = rss_after_warmup(&samples, total);
    let shared_max = samples.iter().map(|s| s.2).max().unwrap();
    eprintln!(
        "FIGURE soak: {total} s, {runs} runs ({calls_total} calls) all conserved, {switches} rule switches, \
         {ok} unannounced ok / {bad} failed ({} reconnects after drains), filter errors {errors:?}, client resets {resets}; client Envoy RSS after warm-up {lo}..{hi} kB \
         ({:+.1}%), shared run tables max {shared_max} B; samples {samples:?}",
        reconnects,
        (hi as f64 / lo as f64 - 1.0) * 100.0
    );
    // A request in flight when a rule switch drains its connection ends without a response: the
    // filter counts it in `sfr2l_client_resets_total`, not as an error of its own.
    assert!(error_lines.is_empty(), "filter errors: {error_lines:#?}");
    assert_eq!(errors, (0, 0), "internal and configuration errors");
    assert_eq!(bad, 0, "unannounced requests failed");
    assert!(ok > 0 && runs > 0 && switches >= total / switch_every - 1);
    assert!(hi as f64 <= lo as f64 * 1.05, "client Envoy RSS not flat after warm-up: {lo}..{hi} kB");
    // Runs complete one after another and are kept, emitted, for 120 s: at most every run of the
    // soak lies in the tables, each entry no larger than the last id's with every code it saw
    // (200 and 503 at most) for the largest run; one magic byte per table.
    let entry = reliability::entry_bytes(&format!("soak-{runs}"), 5, 120, &[200, 503], 120);
    let bound = sfr2l_core::store::SHARDS as u64 + runs * entry as u64;
    assert!(shared_max <= bound, "shared run tables: {shared_max} B; bound {bound} B ({entry} B an entry)");
}

#[test]
fn soak_loadtest_mode_with_rule_switches() {
    let (total, switch_every) = (env_secs("SFR2L_SOAK_LT_S", 15), env_secs("SFR2L_SOAK_SWITCH_S", 5));
    let root = sfr2l_tests::repo_root().join("policies");
    let agents = root.join("s1/agents/call/seed-1");
    let (mut lab, _dir) = sfr2l_tests::start_lab_with(23000, sfr2l_tests::topology(2, 0, 0.0, 0), Some(root.clone()));
    let (admin_port, listener) = (lab.ports.client_admin, lab.ports.client_listener);
    let client_pid = *lab.pids().last().unwrap();
    let mut lt = lab_loadtest(&lab, "soak");
    lt.threads = Some(2);
    lt.path = "/status/200".into();
    lt.every = Some(IstioDuration::from_secs(1.0));
    let models = models_config(&root, &agents, false, envoy::ARTIFACTS_CLUSTER).unwrap();
    let config = ConfigV1 { mode: Mode::LoadTest, models: Some(models), loadtest: Some(lt), ..ConfigV1::default() };
    let rules = [rule(64), rule(16)];
    let offset = log_offset(&lab);
    lab.apply_filter_config(&rules[0], config.clone()).unwrap();

    let stop = AtomicBool::new(false);
    let other = Background::default();
    let t0 = Instant::now();
    let mut samples: Vec<(f64, u64, u64)> = Vec::new();
    let mut switches = 0u64;
    std::thread::scope(|s| {
        s.spawn(|| other.run(listener, &stop));
        let mut last_switch = Instant::now();
        let mut last_sample = Instant::now() - Duration::from_secs(10);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while t0.elapsed() < Duration::from_secs(total) {
                if last_switch.elapsed() >= Duration::from_secs(switch_every) {
                    switches += 1;
                    lab.apply_filter_config(&rules[(switches % 2) as usize], config.clone()).unwrap();
                    last_switch = Instant::now();
                }
                if last_sample.elapsed() >= Duration::from_secs(2) {
                    let shared = wasm_metric(admin_port, "sfr2l_shared_run_bytes");
                    samples.push((t0.elapsed().as_secs_f64(), reliability::rss_kb(client_pid), shared));
                    last_sample = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }));
        stop.store(true, Ordering::Relaxed);
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    });
    // The test in progress at the end finishes within a second or two.
    std::thread::sleep(Duration::from_secs(2));
    let recs: Vec<_> = records_since(&lab, offset).unwrap().into_iter().filter(|r| r.inline.is_some()).collect();
    let calls: u64 = recs.iter().map(|r| u64::from(r.calls)).sum();
    let errors =
        (wasm_metric(admin_port, "sfr2l_internal_errors_total"), wasm_metric(admin_port, "sfr2l_config_errors_total"));
    let aborted = wasm_metric(admin_port, "sfr2l_inline_aborted_total");
    let (ok, bad, reconnects) = other.counts();
    let error_lines = error_lines(&lab);
    let (lo, hi) = rss_after_warmup(&samples, total);
    eprintln!(
        "FIGURE soak, load-test mode: {total} s, {} inline tests ({calls} calls) all whole, {switches} rule switches, \
         {ok} unannounced ok / {bad} failed ({reconnects} reconnects after drains), filter errors {errors:?}, \
         {aborted} tests aborted; client Envoy RSS after warm-up {lo}..{hi} kB ({:+.1}%); samples {samples:?}",
        recs.len(),
        (hi as f64 / lo as f64 - 1.0) * 100.0
    );
    for r in &recs {
        let counted: u64 = r.codes.values().sum();
        assert!(r.complete && r.responses == u64::from(r.calls) && counted == r.responses, "{r:?}");
        assert_eq!(r.mismatched, 0, "{r:?}");
    }
    assert!(recs.len() as u64 >= total / 2, "only {} inline tests in {total} s", recs.len());
    assert!(error_lines.is_empty(), "filter errors: {error_lines:#?}");
    assert_eq!((errors, aborted), ((0, 0), 0), "internal and configuration errors, aborted tests");
    assert_eq!(bad, 0, "unannounced requests failed");
    // A switch waits for Envoy to confirm the new generation: they come a little apart.
    assert!(ok > 0 && switches >= total / switch_every / 2, "{switches} rule switches");
    assert!(hi as f64 <= lo as f64 * 1.05, "client Envoy RSS not flat after warm-up: {lo}..{hi} kB");
}
