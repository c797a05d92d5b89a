//! `make bench`: side-by-side measurements in one run on this machine (ratios, not absolutes).
//!
//! 1. Envoy throughput and p99 with the sfr2l filter (observe mode) vs no filter vs a minimal
//!    status-code-counting filter: on a direct-response route (pure proxy cost) and in front of
//!    httpbin (the product's setting). One Envoy, 1 worker, 8 connections, interleaved rounds.
//! 2. The load generator against oha on the same target (if `oha` is on PATH or given).
//! 3. Lab overhead per row beyond the load itself (rule switch + trace ingest + stats), median.
//! 4. Filter .wasm sizes.
//!
//! Usage: cargo run --profile fast --example bench -- [--rounds 5] [--oha PATH] [--minimal PATH]

use anyhow::{Context, Result};
use serde_json::json;
use sfr2l_core::config::ConfigV1;
use sfr2l_lab::collect::{self, PlanEntry};
use sfr2l_lab::process::{wait_ready, Proc};
use sfr2l_lab::{admin, Lab, LabOptions, Toolchain};
use sfr2l_load::{self as load, LoadSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BASE: u16 = 19700;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn wasm_filter(name: &str, vm: &str, file: &Path, config: &str) -> serde_json::Value {
    json!({ "name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": { "name": name, "root_id": name,
            "configuration": { "@type": "type.googleapis.com/google.protobuf.StringValue", "value": config },
            "failure_policy": "FAIL_OPEN",
            "vm_config": { "vm_id": vm, "runtime": "envoy.wasm.runtime.v8", "code": { "local": { "filename": file } } } } } })
}

fn listener(port: u16, name: &str, filters: Vec<serde_json::Value>, direct: bool) -> serde_json::Value {
    let mut chain = filters;
    chain.push(json!({ "name": "envoy.filters.http.router", "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }));
    let route = if direct {
        json!({ "match": { "prefix": "/" }, "direct_response": { "status": 200, "body": { "inline_string": "ok" } } })
    } else {
        json!({ "match": { "prefix": "/" }, "route": { "cluster": "httpbin", "timeout": "15s" } })
    };
    json!({ "name": name, "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
        "filter_chains": [ { "filters": [ { "name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": name,
            "route_config": { "name": name, "virtual_hosts": [ { "name": "all", "domains": ["*"], "routes": [route] } ] },
            "http_filters": chain } } ] } ] })
}

struct Target {
    name: &'static str,
    port: u16,
    calls: u32,
}

fn measure(t: &Target, announce: bool, run: &str) -> Result<(f64, f64)> {
    let mut spec = LoadSpec::from_url(&format!("http://127.0.0.1:{}/status/200", t.port), 8, t.calls)?;
    if announce {
        spec.headers = vec![
            ("x-sfr2l-run".into(), run.into()),
            ("x-sfr2l-threads".into(), "8".into()),
            ("x-sfr2l-calls".into(), t.calls.to_string()),
        ];
    }
    let r = load::run(&spec)?;
    let ok = r.ret_codes().get(&200).copied().unwrap_or(0);
    anyhow::ensure!(ok == t.calls as u64, "{}: {:?}", t.name, r.ret_codes());
    Ok((r.actual_qps(), r.latency_percentile(99.0).unwrap_or(f64::NAN) * 1e3))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let rounds: usize = arg("--rounds").map(|s| s.parse()).transpose()?.unwrap_or(5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sfr2l_wasm = root.join("target/wasm32-wasip1/release/sfr2l_filter.wasm");
    let minimal = arg("--minimal")
        .map(PathBuf::from)
        .unwrap_or(root.join("target/wasm32-wasip1/release/sfr2l_minimal_filter.wasm"));
    let tools = Toolchain::discover(&root.join(".venv"), &sfr2l_wasm)?;
    let dir = tempfile::tempdir()?;
    let logs = dir.path();
    println!(
        "# sfr2l benchmarks\n\nEnvoy {}; {} cores; {} rounds, interleaved.\n",
        tools.envoy_version(),
        std::thread::available_parallelism()?.get(),
        rounds
    );

    // httpbin + one Envoy (1 worker) with five listeners.
    let mut cmd = Command::new(tools.venv.join("bin/gunicorn"));
    cmd.args([
        "--bind",
        &format!("127.0.0.1:{}", BASE + 3),
        "--workers",
        "2",
        "--worker-class",
        "gthread",
        "--threads",
        "16",
        "--log-level",
        "warning",
        "httpbin:app",
    ]);
    let mut httpbin = Proc::spawn("httpbin", cmd, &logs.join("httpbin.log"), true, libc::SIGTERM)?;
    wait_ready(&mut httpbin, Duration::from_secs(30), || {
        matches!(admin::request(BASE + 3, "GET", "/status/200"), Ok((200, _)))
    })?;
    let cfg = ConfigV1::default().to_json();
    let sf = || wasm_filter("sfr2l", "sfr2l", &tools.wasm, &cfg);
    let mf = || wasm_filter("minimal", "minimal", &minimal, "");
    let listeners = vec![
        listener(BASE + 20, "direct_none", vec![], true),
        listener(BASE + 21, "direct_sfr2l", vec![sf()], true),
        listener(BASE + 22, "direct_minimal", vec![mf()], true),
        listener(BASE + 23, "httpbin_none", vec![], false),
        listener(BASE + 24, "httpbin_sfr2l", vec![sf()], false),
    ];
    let boot = json!({ "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": BASE } } },
        "static_resources": { "listeners": listeners, "clusters": [ { "name": "httpbin", "type": "STATIC", "connect_timeout": "5s",
            "load_assignment": { "cluster_name": "httpbin", "endpoints": [ { "lb_endpoints": [ { "endpoint": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": BASE + 3 } } } } ] } ] } } ] } });
    let boot_path = logs.join("bench.json");
    std::fs::write(&boot_path, serde_json::to_vec_pretty(&boot)?)?;
    let mut cmd = Command::new(&tools.envoy);
    cmd.arg("-c").arg(&boot_path).args(["--concurrency", "1", "--disable-hot-restart", "-l", "warning"]);
    let mut envoy = Proc::spawn("bench-envoy", cmd, &logs.join("envoy.log"), true, libc::SIGKILL)?;
    wait_ready(&mut envoy, Duration::from_secs(30), || admin::is_live(BASE))?;

    let direct = [
        Target { name: "direct_none", port: BASE + 20, calls: 20000 },
        Target { name: "direct_minimal", port: BASE + 22, calls: 20000 },
        Target { name: "direct_sfr2l", port: BASE + 21, calls: 20000 },
    ];
    let httpbin_t = [
        Target { name: "httpbin_none", port: BASE + 23, calls: 3000 },
        Target { name: "httpbin_sfr2l", port: BASE + 24, calls: 3000 },
    ];
    let mut results: std::collections::BTreeMap<String, (Vec<f64>, Vec<f64>)> = Default::default();
    for t in direct.iter().chain(httpbin_t.iter()) {
        measure(t, false, "warm")?; // warm-up, not recorded
    }
    for round in 0..rounds {
        for t in direct.iter().chain(httpbin_t.iter()) {
            for announce in [false, true] {
                if announce && !t.name.ends_with("sfr2l") {
                    continue;
                }
                let (qps, p99) = measure(t, announce, &format!("bench-{round}-{}", t.name))?;
                let key = if announce { format!("{} (announced runs)", t.name) } else { t.name.to_string() };
                let e = results.entry(key).or_default();
                e.0.push(qps);
                e.1.push(p99);
            }
        }
    }
    let med = |k: &str| median(results[k].0.clone());
    println!("## Envoy with and without the filter (1 worker, sfr2l-load -c 8, median of {rounds})\n");
    println!("| listener | QPS | p99 ms | QPS vs no filter | QPS vs minimal filter |\n|---|---|---|---|---|");
    for (k, (q, p)) in &results {
        let base = if k.starts_with("direct") { med("direct_none") } else { med("httpbin_none") };
        let vs_min = if k.starts_with("direct") {
            format!("{:.3}", median(q.clone()) / med("direct_minimal"))
        } else {
            "-".into()
        };
        println!(
            "| {k} | {:.0} | {:.2} | {:.3} | {vs_min} |",
            median(q.clone()),
            median(p.clone()),
            median(q.clone()) / base
        );
    }

    // Load generator vs oha on the same target.
    let oha = arg("--oha").unwrap_or_else(|| "oha".into());
    let url = format!("http://127.0.0.1:{}/status/200", BASE + 20);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..rounds {
        let spec = LoadSpec::from_url(&url, 8, 20000)?;
        ours.push(load::run(&spec)?.actual_qps());
        match Command::new(&oha).args(["-c", "8", "-n", "20000", "--no-tui", "--output-format", "json", &url]).output()
        {
            Ok(o) if o.status.success() => {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).context("oha JSON")?;
                theirs.push(v["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN));
            }
            _ => {}
        }
    }
    println!("\n## Load generator vs oha (direct-response listener, -c 8 -n 20000, median of {rounds})\n");
    if theirs.is_empty() {
        println!("oha not found (`cargo install oha`); sfr2l-load: {:.0} QPS", median(ours));
    } else {
        println!(
            "| tool | QPS |\n|---|---|\n| sfr2l-load | {:.0} |\n| oha | {:.0} |\n| ratio | {:.3} |",
            median(ours.clone()),
            median(theirs.clone()),
            median(ours) / median(theirs)
        );
    }
    drop(envoy);
    drop(httpbin);

    // Lab overhead per row: rule switch + ingest + stats around the load itself.
    let profile = sfr2l_files::study::find("s3")?.study;
    let lab_dir = tempfile::tempdir()?;
    let mut lab = Lab::start(LabOptions {
        dir: lab_dir.path().to_path_buf(),
        base_port: BASE + 100,
        topology: profile.lab,
        tools: tools.clone(),
        upstream: sfr2l_files::study::find("s1")?.study.upstream,
        target: sfr2l_files::study::find("s1")?.study.target,
        upstream_workers: 1,
        attached: true,
        idle_timeout_ms: 1500,
        artifacts: None,
    })?;
    let plan: Vec<PlanEntry> = collect::plan(&profile, 40, 11, 0, 0);
    let mut over = Vec::new();
    for (i, e) in plan.iter().enumerate() {
        if let Ok(out) = collect::run_once(&mut lab, e, &format!("bench-ovh-{i}"), "/status/200", 0)? {
            over.push(out.overhead.as_secs_f64() * 1e3);
        }
    }
    println!(
        "\n## Lab overhead per row (S3 plan, {} rows): median {:.1} ms, max {:.1} ms (target <= 300 ms)",
        over.len(),
        median(over.clone()),
        over.iter().cloned().fold(0.0, f64::max)
    );
    drop(lab);

    // The one place the modules' sizes are measured: README and bench/README.md quote this table.
    let observe = tools.wasm.with_file_name("sfr2l_filter_observe.wasm");
    println!("\n## Filter module sizes\n\n| module | bytes |\n|---|---|");
    for p in [&tools.wasm, &observe, &minimal] {
        println!(
            "| {} | {} |",
            p.file_name().and_then(|n| n.to_str()).unwrap_or(""),
            std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
        );
    }
    Ok(())
}
