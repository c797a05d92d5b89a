//! Shared set-up: the built module (compiled once per process, cached on disk), hosts with N
//! VMs, plugin configurations, the artifact server and trace records.

use sfr2l_core::config::{ArtifactRef, ConfigV1, LoadTestConfig, Mode, ModelsConfig};
use sfr2l_core::trace::TraceRecord;
use sfr2l_core::{IstioDuration, TrafficRule};
use sfr2l_wasm_host::{engine, linker, load_module, Call, Host};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use wasmtime::Module;

pub const ARTIFACTS: &str = "artifacts";
pub const SERVICE: &str = "httpbin";
pub const AGENTS: &str = "/s1/agents/thread-call/seed-1";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the built modules are: `SFR2L_FILTER_DIR`, else `make filter`'s output.
pub fn filter_dir() -> PathBuf {
    std::env::var_os("SFR2L_FILTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/wasm32-wasip1/release"))
}

fn load(name: &str) -> Module {
    let engine = engine().unwrap();
    load_module(&engine, &filter_dir().join(name), &repo().join("target/wasm-host-cache")).unwrap()
}

/// The model build of the filter, compiled once per test process.
pub fn module() -> &'static Module {
    static MODULE: OnceLock<Module> = OnceLock::new();
    MODULE.get_or_init(|| load("sfr2l_filter.wasm"))
}

/// The observe-only build (no model runtime), built beside it by `make filter`.
pub fn observe_module() -> &'static Module {
    static MODULE: OnceLock<Module> = OnceLock::new();
    MODULE.get_or_init(|| load("sfr2l_filter_observe.wasm"))
}

/// A host with `vms` started VMs of the model build; both clusters exist.
pub fn host(vms: usize) -> Host {
    host_of(module(), vms)
}

pub fn host_of(m: &Module, vms: usize) -> Host {
    let mut h = Host::new(m, linker(m.engine(), m, &[]).unwrap());
    h.shared.borrow_mut().clusters.extend([ARTIFACTS.to_string(), SERVICE.to_string()]);
    for _ in 0..vms {
        h.add_vm().unwrap();
    }
    h
}

pub fn rule(pending: u32, conn: u32, rpc: u32) -> TrafficRule {
    TrafficRule {
        max_pending_requests: pending,
        max_connections: conn,
        max_requests_per_connection: rpc,
        base_ejection_time: IstioDuration::from_secs(180.0),
        max_ejection_percent: 100,
        interval: IstioDuration::from_secs(1.0),
        consecutive_5xx_errors: 1,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// An artifact under policies/, pinned by the sha256 of its bytes.
pub fn artifact(path: &str) -> ArtifactRef {
    let bytes = std::fs::read(repo().join("policies").join(path.trim_start_matches('/'))).unwrap();
    ArtifactRef { path: path.to_string(), sha256: sha256_hex(&bytes) }
}

/// The thread-call pair of S1 seed 1, with or without the simulator.
pub fn models(simulator: bool) -> ModelsConfig {
    let agents: BTreeMap<String, ArtifactRef> =
        ["thread", "call"].iter().map(|a| (a.to_string(), artifact(&format!("{AGENTS}/{a}.onnx")))).collect();
    ModelsConfig {
        cluster: ARTIFACTS.into(),
        authority: None,
        profile: "s1".into(),
        configuration: "thread-call".parse().unwrap(),
        agents,
        simulator: simulator.then(|| artifact("/s1/simulator.onnx")),
        fetch_timeout: IstioDuration::from_secs(30.0),
    }
}

/// Load-test mode: `trigger`, at most `max_calls` calls of 2 s timeout each.
pub fn loadtest(generation: u64, r: TrafficRule, m: ModelsConfig, trigger: &str, max_calls: u32) -> Vec<u8> {
    let lt = LoadTestConfig {
        cluster: SERVICE.into(),
        authority: SERVICE.into(),
        path: "/get".into(),
        trigger: trigger.into(),
        every: None,
        timeout: IstioDuration::from_secs(2.0),
        threads: None,
        calls: None,
        max_calls,
        refusal_cost_us: sfr2l_core::config::DEFAULT_REFUSAL_COST_US,
    };
    let c = ConfigV1 {
        mode: Mode::LoadTest,
        generation,
        rule: Some(r),
        models: Some(m),
        loadtest: Some(lt),
        ..Default::default()
    };
    let json = c.to_json();
    ConfigV1::parse(json.as_bytes()).unwrap();
    json.into_bytes()
}

/// Answers every outstanding model fetch from policies/ (404 for a missing file); returns how
/// many it answered.
pub fn serve_fetches(h: &mut Host) -> usize {
    let fetches: Vec<Call> = h.calls().into_iter().filter(|c| c.cluster == ARTIFACTS).collect();
    for c in &fetches {
        let file = repo().join("policies").join(c.header(":path").unwrap().trim_start_matches('/'));
        match std::fs::read(&file) {
            Ok(body) => h.respond(c.id, 200, &[("content-type", "application/octet-stream")], &body).unwrap(),
            Err(_) => h.respond(c.id, 404, &[], b"not found").unwrap(),
        }
    }
    fetches.len()
}

/// Outstanding test calls (to the service under test).
pub fn test_calls(h: &Host) -> Vec<Call> {
    h.calls().into_iter().filter(|c| c.cluster == SERVICE).collect()
}

/// Every test call dispatched so far.
pub fn dispatched_tests(h: &Host) -> Vec<Call> {
    h.shared.borrow().dispatched.iter().filter(|c| c.cluster == SERVICE).cloned().collect()
}

/// Every trace record logged so far.
pub fn records(h: &Host) -> Vec<TraceRecord> {
    h.trace_lines().iter().map(|l| TraceRecord::from_log_line(l).unwrap().unwrap()).collect()
}

pub fn log_count(h: &Host, needle: &str) -> usize {
    h.logs().iter().filter(|l| l.message.contains(needle)).count()
}

/// Advances in `step_ms` steps until `until` holds (at most `max_ms`).
pub fn advance_until(h: &mut Host, step_ms: u64, max_ms: u64, mut until: impl FnMut(&Host) -> bool) {
    let mut t = 0;
    while !until(h) {
        assert!(t < max_ms, "condition not reached after {max_ms} ms of virtual time; logs: {:#?}", h.logs());
        h.advance(step_ms).unwrap();
        t += step_ms;
    }
}

/// Configures every VM with `config` and loads its models (answers the fetches).
pub fn start_loadtest(h: &mut Host, vms: usize, config: &[u8]) {
    for vm in 0..vms {
        assert!(h.configure(vm, config).unwrap());
    }
    // One fetch per pinned artifact and VM.
    let artifacts = String::from_utf8_lossy(config).matches("\"sha256\"").count() * vms;
    advance_until(h, 10, 1_000, |h| h.calls().iter().filter(|c| c.cluster == ARTIFACTS).count() == artifacts);
    assert_eq!(serve_fetches(h), artifacts);
    assert_eq!(log_count(h, "sfr2l: models loaded"), vms, "{:#?}", h.logs());
    assert_eq!(h.metric("sfr2l_models_loaded"), Some(1));
}
