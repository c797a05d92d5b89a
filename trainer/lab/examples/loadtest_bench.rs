//! In-Envoy figures of load-test mode, side by side in one run on the real lab (S1 topology):
//! module sizes, client sidecar start with each module, model load (fetch + tract plans) and
//! the memory it costs, decision latency inside V8 (p50/p99 over many inline decisions), and
//! listener throughput with the models loaded against the same filter without models.
//!
//! `cargo run --profile fast -p sfr2l-lab --example loadtest_bench -- [DECISIONS] [ROUNDS]`
//! (`make bench` runs it after the other benchmarks).

use anyhow::{bail, Context, Result};
use sfr2l_core::config::{ConfigV1, Mode};
use sfr2l_core::{IstioDuration, TrafficRule};
use sfr2l_lab::loadtest::{lab_loadtest, log_offset, models_config, records_since};
use sfr2l_lab::{envoy, process, Lab, LabOptions, Toolchain};
use sfr2l_load::{self as load, LoadSpec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn rss_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn client_pid(lab: &mut Lab) -> i32 {
    lab.status().into_iter().find(|(n, _, _)| n == "client-envoy").map(|(_, p, _)| p).unwrap_or(0)
}

fn start(root: &Path, wasm: &Path, base_port: u16, dir: &Path) -> Result<(Lab, Duration)> {
    let tools = Toolchain::discover(&root.join(".venv"), wasm)?;
    let opts = LabOptions {
        dir: dir.to_path_buf(),
        base_port,
        topology: sfr2l_files::study::find("s1")?.study.lab,
        tools,
        upstream: sfr2l_files::study::find("s1")?.study.upstream,
        target: sfr2l_files::study::find("s1")?.study.target,
        upstream_workers: 1,
        attached: true,
        idle_timeout_ms: 1000,
        artifacts: Some(root.join("policies")),
    };
    let t0 = Instant::now();
    let lab = Lab::start(opts)?;
    Ok((lab, t0.elapsed()))
}

fn rule() -> TrafficRule {
    TrafficRule {
        max_pending_requests: 50,
        max_connections: 50,
        max_requests_per_connection: 0,
        base_ejection_time: IstioDuration::from_secs(180.0),
        max_ejection_percent: 100,
        interval: IstioDuration::from_secs(1.0),
        consecutive_5xx_errors: 0,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let decisions: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let rounds: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?;
    let wasm_dir = root.join("target/wasm32-wasip1/release");
    let full = wasm_dir.join("sfr2l_filter.wasm");
    let observe = wasm_dir.join("sfr2l_filter_observe.wasm");
    println!("## Load-test mode in Envoy (`cargo run --profile fast -p sfr2l-lab --example loadtest_bench -- {decisions} {rounds}`)\n");
    println!("| module | bytes |\n|---|---|");
    for p in [&observe, &full] {
        println!(
            "| {} | {} |",
            p.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            std::fs::metadata(p).with_context(|| format!("{} (make filter)", p.display()))?.len()
        );
    }

    // Client sidecar start (to LIVE, the filter's VMs compiled and configured) with each module;
    // both labs stay up for the throughput comparison at the end.
    let tmp = tempfile::tempdir()?;
    let (mut obs_lab, t_observe) = start(&root, &observe, 23000, &tmp.path().join("observe"))?;
    let (mut lab, t_full) = start(&root, &full, 23100, &tmp.path().join("full"))?;
    println!("\nLab start to all-ready (httpbin, server Envoy, artifact server, client Envoy): observe build {:.2} s, model build {:.2} s.", t_observe.as_secs_f64(), t_full.as_secs_f64());

    // Model load: agents + simulator fetched, checked, planned in every VM (main + 2 workers).
    let agents = root.join("policies/s1/agents/thread-call/seed-1");
    let models = models_config(&root.join("policies"), &agents, true, envoy::ARTIFACTS_CLUSTER)?;
    let pid = client_pid(&mut lab);
    lab.apply_filter_config(&rule(), ConfigV1::default())?;
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = rss_kb(pid);
    let offset = log_offset(&lab);
    let t0 = Instant::now();
    lab.apply_filter_config(&rule(), ConfigV1 { models: Some(models.clone()), ..ConfigV1::default() })?;
    let loaded = loop {
        let text = std::fs::read_to_string(lab.client_log())?;
        let lines: Vec<String> =
            text[offset as usize..].lines().filter(|l| l.contains("models loaded")).map(String::from).collect();
        if lines.len() >= 3 {
            break lines;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            bail!("models not loaded in 3 VMs within 120 s:\n{}", process::tail_file(&lab.client_log(), 10));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let t_load = t0.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = rss_kb(pid);
    println!(
        "\nModels (thread-call agents + simulator, S1; {} VMs): loaded in {:.2} s after the push; client Envoy RSS {} -> {} MB (+{:.1} MB per VM).",
        loaded.len(),
        t_load.as_secs_f64(),
        rss_before / 1024,
        rss_after / 1024,
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0 / loaded.len() as f64
    );
    for l in &loaded {
        if let Some(at) = l.find("sfr2l: models loaded") {
            println!("- `{}`", &l[at..]);
        }
    }

    // Decision latency in V8: inline tests of one call each, one per configuration push.
    let mut lat = Vec::new();
    for i in 0..decisions {
        let mut lt = lab_loadtest(&lab, &format!("lat{i}"));
        lt.path = "/get".into(); // as the figures in bench/README.md were measured
        lt.max_calls = 1;
        let offset = log_offset(&lab);
        lab.apply_filter_config(
            &rule(),
            ConfigV1 { mode: Mode::LoadTest, models: Some(models.clone()), loadtest: Some(lt), ..ConfigV1::default() },
        )?;
        let t0 = Instant::now();
        let rec = loop {
            if let Some(r) = records_since(&lab, offset)?
                .into_iter()
                .find(|r| r.inline.as_ref().is_some_and(|x| x.slot == format!("lat{i}")))
            {
                break r;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                bail!("no inline record for lat{i}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        lat.push(rec.inline.map(|x| x.decide_ns as f64 / 1000.0).unwrap_or(f64::NAN));
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "\nDecision latency inside V8 (thread agent then call agent, paper-size graphs, host clock; {} decisions): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs.",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );

    // Throughput of ordinary (unannounced) traffic, interleaved rounds: the observe build, the
    // model build with no models, the model build with models loaded (and the simulator gauges).
    obs_lab.apply_filter_config(&rule(), ConfigV1::default())?;
    let kinds = ["observe build", "model build, no models", "model build, models loaded"];
    let mut qps: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for _ in 0..rounds {
        for (k, _) in kinds.iter().enumerate() {
            let target = if k == 0 {
                &mut obs_lab
            } else {
                let config = ConfigV1 { models: (k == 2).then(|| models.clone()), ..ConfigV1::default() };
                lab.apply_filter_config(&rule(), config)?;
                &mut lab
            };
            std::thread::sleep(Duration::from_millis(1500));
            let mut spec = LoadSpec::from_url(&target.client_url("/status/200"), 4, 6000)?;
            spec.connect_first = true;
            let r = load::run(&spec)?;
            qps[k].push(r.actual_qps());
            p99[k].push(r.latency_percentile(99.0).unwrap_or(f64::NAN) * 1000.0);
        }
    }
    println!("\nListener throughput, /status/200 (2 ms upstream delay, S1 lab), 4 connections x 6000 calls, medians of {rounds} interleaved rounds:\n");
    println!("| filter | QPS | p99 ms | QPS vs observe build |\n|---|---|---|---|");
    let base = median(qps[0].clone());
    for (k, name) in kinds.iter().enumerate() {
        let q = median(qps[k].clone());
        println!("| {name} | {q:.0} | {:.2} | {:.3} |", median(p99[k].clone()), q / base);
    }
    lab.stop();
    obs_lab.stop();
    Ok(())
}
