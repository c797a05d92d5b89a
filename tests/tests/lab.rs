//! End-to-end: the real lab (two Envoys, httpbin under gunicorn, the built filter) on loopback.
//! Each test owns its ports and temp dir; the lab is stopped on drop, also when a test fails.

use sfr2l_core::{IstioDuration, LoadSetting, TrafficRule};
use sfr2l_lab::admin;
use sfr2l_lab::collect::{self, PlanEntry};
use sfr2l_lab::destination_rule;
use sfr2l_load::{self as load, LoadSpec};
use sfr2l_tests::{processes_mentioning, start_lab, topology};
use std::time::Duration;

fn rule(pending: u32, conn: u32, rpc: u32, consecutive: u32, max_ejection: u32) -> TrafficRule {
    TrafficRule {
        max_pending_requests: pending,
        max_connections: conn,
        max_requests_per_connection: rpc,
        base_ejection_time: IstioDuration::from_secs(180.0),
        max_ejection_percent: max_ejection,
        interval: IstioDuration::from_secs(1.0),
        consecutive_5xx_errors: consecutive,
    }
}

fn entry(id: &str, rule: TrafficRule, threads: u32, calls: u32) -> PlanEntry {
    PlanEntry { config_id: id.into(), repeat: 0, rule, load: LoadSetting { threads, calls } }
}

/// istio.io tasks/traffic-management/circuit-breaking: maxConnections 1, http1MaxPendingRequests 1,
/// maxRequestsPerConnection 1, one httpbin pod, a client sidecar with 2 workers. fortio -c 2 -n 20
/// shows a few 503s, -c 3 -n 30 a large share.
#[test]
fn istio_circuit_breaking_task_shape() {
    let (mut lab, _dir) = start_lab(21000, topology(1, 0, 0.0, 2));
    let dr =
        std::fs::read_to_string(sfr2l_tests::repo_root().join("manifests/overlays/istio-task/destinationrule.yaml"))
            .unwrap();
    let r = destination_rule::parse(&dr, "destinationrule-istio-task.yaml").unwrap();
    let mut share = |threads: u32, calls: u32, reps: u32| {
        let (mut n503, mut n) = (0, 0);
        for i in 0..reps {
            let e = entry("task", r, threads, calls);
            let out = collect::run_once(&mut lab, &e, &format!("task-{threads}-{i}"), "/get", 0).unwrap().unwrap();
            n503 += out.record.count(503);
            n += out.record.responses;
        }
        n503 as f64 / n as f64
    };
    let two = share(2, 20, 5);
    let three = share(3, 30, 5);
    eprintln!("503 share: -c 2 -n 20: {two:.3}; -c 3 -n 30: {three:.3}");
    assert!(two > 0.0 && two < 0.5, "2 threads should give a few 503s, got {two}");
    assert!(three >= 0.2 && three > 2.0 * two, "3 threads should give a large share, got {three} (2 threads: {two})");
}

/// Conservation over 24 runs with 503s from pending overflow and from upstream faults.
#[test]
fn conservation_holds_with_overflow_and_fault_503s() {
    let (mut lab, _dir) = start_lab(21100, topology(8, 2, 50.0, 1));
    let (mut overflow, mut upstream_503, mut ok200) = (0, 0, 0);
    for i in 0..24u32 {
        let r = if i % 2 == 0 { rule(1, 1, 2, 100, 10) } else { rule(50, 20, 0, 100, 10) };
        let threads = 4 + i % 5;
        let e = entry(&format!("c{i}"), r, threads, 60 + 10 * i);
        let out = collect::run_once(&mut lab, &e, &format!("cons-{i}"), "/status/200", 0)
            .unwrap()
            .unwrap_or_else(|why| panic!("run {i} broke conservation: {why}"));
        overflow += out.record.reasons.overflow;
        upstream_503 += out.record.count(503) - out.record.reasons.overflow - out.record.reasons.no_healthy;
        ok200 += out.record.count(200);
    }
    eprintln!("overflow 503 {overflow}, upstream 503 {upstream_503}, 200 {ok200}");
    assert!(overflow > 0, "no pending-overflow 503s");
    assert!(upstream_503 > 0, "no upstream fault 503s");
    assert!(ok200 > 0);
}

/// A run that never completes is closed by the idle timeout with complete = false.
#[test]
fn idle_timeout_closes_an_incomplete_run() {
    let (mut lab, _dir) = start_lab(21200, topology(2, 0, 0.0, 0));
    lab.apply(&rule(100, 100, 0, 5, 10)).unwrap();
    let mut tail = sfr2l_lab::ingest::LogTail::at_end(&lab.client_log()).unwrap();
    let mut spec = LoadSpec::from_url(&lab.client_url("/status/200"), 2, 6).unwrap();
    spec.headers = vec![
        ("x-sfr2l-run".into(), "idle-1".into()),
        ("x-sfr2l-threads".into(), "2".into()),
        ("x-sfr2l-calls".into(), "10".into()),
    ];
    let r = load::run(&spec).unwrap();
    assert_eq!(r.calls(), 6);
    let rec = tail.wait_for("idle-1", Duration::from_secs(5)).unwrap().expect("idle record");
    assert!(!rec.complete);
    assert_eq!(rec.responses, 6);
    assert_eq!(rec.calls, 10);
    let (nums, _) = admin::stats(lab.ports.client_admin, "sfr2l_runs_incomplete_total").unwrap();
    assert_eq!(nums.get("wasmcustom.sfr2l_runs_incomplete_total"), Some(&1));
}

/// Metrics are in /stats and /stats/prometheus; unannounced traffic feeds the window gauges;
/// a bad plugin configuration changes no response and is counted.
#[test]
fn metrics_window_and_fail_open() {
    let (mut lab, _dir) = start_lab(21300, topology(2, 0, 0.0, 0));
    let r = rule(100, 100, 0, 5, 10);
    lab.apply(&r).unwrap();
    let spec = LoadSpec::from_url(&lab.client_url("/status/200"), 2, 200).unwrap();
    assert_eq!(load::run(&spec).unwrap().ret_codes().get(&200), Some(&200));
    std::thread::sleep(Duration::from_millis(1200));
    let (nums, _) = admin::stats(lab.ports.client_admin, "wasmcustom").unwrap();
    assert_eq!(nums.get("wasmcustom.sfr2l_responses_2xx_total"), Some(&200));
    assert!(nums.get("wasmcustom.sfr2l_window_qps").copied().unwrap_or(0) > 0, "{nums:?}");
    let prom = admin::get(lab.ports.client_admin, "/stats/prometheus").unwrap();
    assert!(prom.contains("sfr2l_responses_2xx_total{} 200"), "prometheus text lacks the counter");

    // Unknown field: the filter keeps its last good config, traffic passes, the error is counted.
    lab.apply_raw_filter_config(&r, r#"{"api":"v1","mode":"observe","bogus":true}"#).unwrap();
    let res = load::run(&spec).unwrap();
    assert_eq!(res.ret_codes().get(&200), Some(&200), "{:?}", res.ret_codes());
    let (nums, _) = admin::stats(lab.ports.client_admin, "wasmcustom.sfr2l_config_errors_total").unwrap();
    assert!(nums.get("wasmcustom.sfr2l_config_errors_total").copied().unwrap_or(0) >= 1);
    let log = std::fs::read_to_string(lab.client_log()).unwrap();
    assert!(log.contains("bad plugin configuration") && log.contains("bogus"));
    // Not even JSON.
    lab.apply_raw_filter_config(&r, "{{{").unwrap();
    assert_eq!(load::run(&spec).unwrap().ret_codes().get(&200), Some(&200));
}

/// Port in use and a dying Envoy give clear errors; stopping leaves no process behind.
#[test]
fn bad_environment_errors_and_clean_stop() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:21401").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = sfr2l_lab::LabOptions {
        dir: dir.path().to_path_buf(),
        base_port: 21400,
        topology: topology(1, 0, 0.0, 0),
        tools: sfr2l_tests::toolchain(),
        upstream: sfr2l_tests::httpbin(1, 4),
        target: sfr2l_tests::target(),
        upstream_workers: 1,
        attached: true,
        idle_timeout_ms: 1000,
        artifacts: None,
    };
    let e = format!("{:#}", sfr2l_lab::Lab::start(opts).err().unwrap());
    assert!(e.contains("21401") && e.contains("in use"), "{e}");
    drop(blocker);

    let (mut lab, dir) = start_lab(21400, topology(1, 0, 0.0, 0));
    let needle = dir.path().to_string_lossy().to_string();
    assert!(!processes_mentioning(&needle).is_empty());
    let envoy_pid = lab.pids()[2];
    unsafe { libc::kill(envoy_pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    let e = format!("{:#}", lab.check().unwrap_err());
    assert!(e.contains("client-envoy") && e.contains("exited"), "{e}");
    lab.stop();
    assert!(processes_mentioning(&needle).is_empty(), "{:?}", processes_mentioning(&needle));
    assert!(processes_mentioning("127.0.0.1:21403").is_empty());
}

/// The study's upstream: a command that never becomes ready or does not exist fails with its
/// probe and time-out named, and a service already running (`address`) is probed and served
/// through the sidecars without the lab starting or stopping it.
#[test]
fn study_upstreams_start_probe_and_fail_clearly() {
    use sfr2l_core::study::{Ready, Upstream};
    let tools = sfr2l_tests::toolchain();
    let python = tools.venv.join("bin/python").to_string_lossy().into_owned();
    let opts = |upstream: Upstream, dir: &std::path::Path| sfr2l_lab::LabOptions {
        dir: dir.to_path_buf(),
        base_port: 21900,
        topology: topology(1, 0, 0.0, 0),
        tools: tools.clone(),
        upstream,
        target: sfr2l_tests::target(),
        upstream_workers: 1,
        attached: true,
        idle_timeout_ms: 1000,
        artifacts: None,
    };
    let ready = |path: &str, ms: u64| Ready { path: path.into(), status: 200, timeout_ms: ms };
    let serve = |port: &str| {
        ["-m", "http.server", "--bind", "127.0.0.1", port].iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };

    // Runs, but answers 404 on the probe path: the time-out and the probe are named.
    let dir = tempfile::tempdir().unwrap();
    let mut argv = vec![python.clone()];
    argv.extend(serve("{port}"));
    let never = Upstream::Command { argv, ready: ready("/never-there", 1500), version: None, files: Vec::new() };
    let e = format!("{:#}", sfr2l_lab::Lab::start(opts(never, dir.path())).err().unwrap());
    assert!(e.contains("app did not become ready within 1.5s"), "{e}");
    assert!(processes_mentioning("127.0.0.1 21903").is_empty(), "the upstream is stopped");

    // Does not exist.
    let missing = Upstream::Command {
        argv: vec!["/nonexistent/server".into(), "{port}".into()],
        ready: ready("/", 1000),
        version: None,
        files: Vec::new(),
    };
    let e = format!("{:#}", sfr2l_lab::Lab::start(opts(missing, dir.path())).err().unwrap());
    assert!(e.contains("starting the study's upstream `/nonexistent/server 21903`"), "{e}");

    // An address where nothing listens.
    let nobody = Upstream::Address { address: "127.0.0.1:21939".into(), ready: ready("/", 500) };
    let e = format!("{:#}", sfr2l_lab::Lab::start(opts(nobody, dir.path())).err().unwrap());
    assert!(e.contains("upstream at 127.0.0.1:21939 did not answer GET / with 200 within 500 ms"), "{e}");

    // A service already running: probed, then served through both sidecars; left running.
    let mut running = std::process::Command::new(&python)
        .args(serve("21938"))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let address = Upstream::Address { address: "127.0.0.1:21938".into(), ready: ready("/", 10_000) };
    let mut lab = sfr2l_lab::Lab::start(opts(address, dir.path())).unwrap();
    assert!(lab.pid_of("app").is_none(), "the lab starts no app for an address");
    let spec = LoadSpec::from_url(&lab.client_url("/"), 2, 20).unwrap();
    assert_eq!(load::run(&spec).unwrap().ret_codes().get(&200), Some(&20));
    lab.stop();
    assert!(running.try_wait().unwrap().is_none(), "the running service is not the lab's to stop");
    running.kill().unwrap();
    running.wait().unwrap();
}
