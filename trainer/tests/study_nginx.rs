//! The study workflow end to end on a service nobody here wrote: a small study of nginx
//! (`studies/nginx.yaml`, narrowed to a few dozen rows) collected on the real lab, fitted,
//! learnt, advised with a check on the real lab, and validated, with the same commands a user
//! runs, from a working directory of its own (the study found under its `studies/`). The small
//! study lists four of the seven DestinationRule fields, so it also proves that width and names
//! come from the study: datasets, simulator, agents, advice, the filter's inline test and
//! validation all carry those four and no other. Its nginx sheds load with 429 (not the full
//! study's 503) and the study counts 429 and 503 as failure, so the rate column, the simulator's
//! output, the agents' reward and the filter's inline reward all follow the study's failure
//! codes. Every artifact must name the study and what ran, and none may mention httpbin.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use std::path::{Path, PathBuf};
use std::process::Command;

const BASE_PORT: &str = "22900";

/// The small study's inputs: the four rule fields it lists, then the load.
const INPUTS: [&str; 6] =
    ["max_pending_requests", "max_connections", "max_ejection_percent", "consecutive_5xx_errors", "threads", "calls"];

/// Stops a lab started with `lab up` when the test ends, passed or not.
struct LabDown(PathBuf, PathBuf);

impl Drop for LabDown {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_sfr2l"))
            .current_dir(&self.0)
            .args(["lab", "down", "--dir", &self.1.display().to_string()])
            .output();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// `sfr2l ARGS` in `cwd`; its stdout, or a panic with its stderr.
fn sfr2l(cwd: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sfr2l")).current_dir(cwd).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sfr2l {}: {err}", args.join(" "));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The nginx study, narrowed: 36 rows (a 4 x 3 repeat block among them), the load grids cut to
/// their ends so that 36 draws cover them, three rule fields left out (unset, as in a
/// DestinationRule without them), nginx shedding with 429 and both 429 and 503 (the sidecar's
/// overflow) counted as failure, and a new name.
fn mini_study() -> String {
    let text = std::fs::read_to_string(root().join("studies/nginx.yaml")).unwrap();
    let swaps = [
        ("  name: nginx\n", "  name: nginx-mini\n"),
        (
            "    range: [1, 12]\n    grid: {from: 1, to: 12, step: 1}",
            "    range: [2, 10]\n    grid: {from: 2, to: 10, step: 8}",
        ),
        (
            "    range: [100, 400]\n    grid: {from: 100, to: 400, step: 50}",
            "    range: [100, 200]\n    grid: {from: 100, to: 200, step: 100}",
        ),
        ("  rows: 1200\n", "  rows: 36\n"),
        ("  - field: connectionPool.http.maxRequestsPerConnection\n    range: [1, 10]\n", ""),
        ("  - field: outlierDetection.baseEjectionTime\n    value: 30s\n", ""),
        ("  - field: outlierDetection.interval\n    value: 1s\n", ""),
        ("  repeats: {configs: 30, times: 4}", "  repeats: {configs: 4, times: 3}"),
        ("limit_conn_status 503;", "limit_conn_status 429;"),
        ("  failureCodes: [503]\n", "  failureCodes: [429, 503]\n"),
    ];
    swaps.iter().fold(text, |t, (from, to)| {
        assert!(t.contains(from), "studies/nginx.yaml no longer has {from:?}");
        t.replace(from, to)
    })
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Every file under `dir` that is text (JSON, CSV, YAML), with its path.
fn texts(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(texts(&p));
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push((p, t));
        }
    }
    out
}

#[test]
fn a_small_nginx_study_goes_from_file_to_validated_advice() {
    let root = root();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::create_dir_all(w.join("studies")).unwrap();
    std::fs::write(w.join("studies/nginx-mini.yaml"), mini_study()).unwrap();
    let venv = root.join(".venv").display().to_string();
    let wasm = root.join("target/wasm32-wasip1/release/sfr2l_filter.wasm").display().to_string();
    let lab = |sub: &str| -> Vec<String> {
        ["--dir", &w.join(sub).display().to_string(), "--base-port", BASE_PORT, "--venv", &venv, "--wasm", &wasm]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let with = |args: &[&str], sub: &str| -> String {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(lab(sub));
        sfr2l(w, &all.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let checked = sfr2l(w, &["study", "check", "nginx-mini"]);
    assert!(checked.contains("study nginx-mini is valid"), "{checked}");

    // Collect: real nginx behind real Envoy sidecars.
    with(&["lab", "collect", "--study", "nginx-mini", "--out", "data/nginx-mini.csv"], "collect");
    let meta = json(&w.join("data/nginx-mini.meta.json"));
    let ran = meta["upstream"].as_str().unwrap();
    assert!(ran.starts_with("nginx version: nginx/"), "the metadata names what ran: {ran}");
    assert_eq!(meta["profile"], "nginx-mini");
    let csv = std::fs::read_to_string(w.join("data/nginx-mini.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 36);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header[..INPUTS.len()], INPUTS, "the dataset's columns are the study's inputs");
    assert!(!header.contains(&"interval_s"));
    assert!(!header.contains(&"rate_503"), "the rate column is named by the study's failure codes: {header:?}");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (failed, threads, run, other) = (col("rate_429_503"), col("threads"), col("run_id"), col("other_codes"));
    let cell = |r: &str, c: usize| r.split(',').nth(c).unwrap().to_string();
    let rate = |r: &&str| cell(r, failed).parse::<f64>().unwrap();
    let heavy: Vec<f64> = rows.iter().filter(|r| cell(r, threads).parse::<f64>().unwrap() >= 9.0).map(rate).collect();
    assert!(
        heavy.iter().any(|r| *r > 0.0) && rows.iter().map(rate).any(|r| r == 0.0),
        "nginx sheds some loads (its limit_conn answers 429) and carries others: {heavy:?}"
    );
    assert!(rows.iter().all(|r| !cell(r, other).contains("429")), "429 is a failure code, not an other code");
    // The filter's records of the same runs: the rate counts nginx's 429s and the sidecar's 503s.
    let log = w.join("collect/logs/client-envoy.log");
    let records = sfr2l(w, &["traces", "ingest", &log.display().to_string()]);
    let mut shed = 0;
    for rec in records.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()) {
        let Some(row) = rows.iter().find(|r| cell(r, run) == rec["run"].as_str().unwrap()) else { continue };
        let count = |c: &str| rec["codes"][c].as_f64().unwrap_or(0.0);
        let want = (count("429") + count("503")) / rec["responses"].as_f64().unwrap();
        assert!((rate(row) - want).abs() < 1e-6, "run {}: rate {} but codes {}", rec["run"], rate(row), rec["codes"]);
        shed += usize::from(count("429") > 0.0);
    }
    assert!(shed > 0, "some runs met nginx's 429s");

    // Fit and learn, small.
    sfr2l(
        w,
        &[
            "sim",
            "fit",
            "--data",
            "data/nginx-mini.csv",
            "--out",
            "policies/nginx-mini",
            "--hidden",
            "32",
            "--epochs",
            "40",
            "--ensemble",
            "1",
        ],
    );
    let card = json(&w.join("policies/nginx-mini/simulator.json"));
    assert_eq!(card["profile"], "nginx-mini");
    assert_eq!(card["outputs"][1]["name"], "rate_429_503", "the simulator predicts the study's failure rate");
    assert_eq!(card["study"]["name"], "nginx-mini");
    assert_eq!(card["study"]["target"]["service"], "web");
    assert_eq!(card["study"]["thread_grid"], serde_json::json!([2, 10]));
    let names: Vec<&str> = card["inputs"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, INPUTS, "the simulator takes the study's inputs");
    let learnt = sfr2l(
        w,
        &[
            "rl",
            "learn",
            "--sim",
            "policies/nginx-mini",
            "--config",
            "thread-call",
            "--epochs",
            "8",
            "--interactions",
            "100",
            "--hidden",
            "32",
        ],
    );
    let learnt: serde_json::Value = serde_json::from_str(learnt.trim()).unwrap();
    let fixed = &learnt["best_fixed"][0];
    assert!(fixed["over_optimum"].as_f64().unwrap() <= 1.0 + 1e-9, "{fixed}");
    let agents = w.join("policies/nginx-mini/agents/thread-call/seed-1");
    let thread = json(&agents.join("thread.json"));
    assert_eq!(thread["grid"], serde_json::json!([2, 10]));
    assert_eq!(thread["state"], serde_json::json!(INPUTS[..4]), "the first agent sees the study's rule fields");

    // Advise at the heaviest load, checked on the real lab; then validate the agents there.
    let advice = with(
        &["advise", "--sim", "policies/nginx-mini", "--threads", "10", "--calls", "200", "--check", "1", "--json"],
        "advise",
    );
    let advice: serde_json::Value = serde_json::from_str(advice.trim()).unwrap();
    assert_eq!(advice["check"]["runs"], 1, "{advice}");
    let yaml = advice["yaml"].as_str().unwrap();
    assert!(yaml.contains("host: web"), "{advice}");
    assert!(!yaml.contains("maxRequestsPerConnection"), "a field the study leaves out stays unset: {yaml}");

    // The filter runs the agents and the simulator inline, inside the client sidecar, with the
    // same .wasm as for S1-S5: it takes their inputs from the graphs.
    std::fs::write(w.join("advised.yaml"), yaml).unwrap();
    let up: Vec<String> = ["lab", "up", "--study", "nginx-mini", "--artifacts", "policies"]
        .iter()
        .map(|s| s.to_string())
        .chain(lab("inline"))
        .collect();
    sfr2l(w, &up.iter().map(String::as_str).collect::<Vec<_>>());
    let _down = LabDown(w.to_path_buf(), w.join("inline"));
    let inline = sfr2l(
        w,
        &[
            "lab",
            "loadtest",
            "--dir",
            &w.join("inline").display().to_string(),
            "--agents",
            "policies/nginx-mini/agents/thread-call/seed-1",
            "--simulator",
            "--trigger",
            "mini",
            "advised.yaml",
        ],
    );
    assert!(inline.contains("inline load test mini (nginx-mini thread-call"), "{inline}");
    assert!(inline.contains("(simulator: QPS"), "the simulator predicted inside Envoy: {inline}");
    let record = inline.lines().find(|l| l.starts_with("SFR2L_TRACE ")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record["SFR2L_TRACE ".len()..]).unwrap();
    let count = |c: &str| record["codes"][c].as_f64().unwrap_or(0.0);
    let observed =
        record["qps"].as_f64().unwrap() * (count("429") + count("503")) / record["responses"].as_f64().unwrap();
    assert_eq!(record["inline"]["failure_codes"], serde_json::json!([429, 503]), "{record}");
    assert!(
        (record["inline"]["reward"].as_f64().unwrap() - observed).abs() < 1e-6,
        "inline reward = QPS x P(429 or 503): {record}"
    );
    let state_line = inline.lines().find(|l| l.starts_with("thread agent: state")).unwrap();
    assert_eq!(state_line.matches(',').count(), 3, "the thread agent saw the four rule fields: {state_line}");
    drop(_down);
    with(&["validate", "--agents", &agents.display().to_string(), "--samples", "3"], "validate");
    let summary = json(&agents.join("validation.json"));
    assert_eq!(summary["samples"], 3, "{summary}");

    // Nothing httpbin-specific crept in.
    for dir in ["data", "policies"] {
        for (p, t) in texts(&w.join(dir)) {
            assert!(!t.to_lowercase().contains("httpbin"), "{} mentions httpbin", p.display());
        }
    }
    assert!(!advice.to_string().to_lowercase().contains("httpbin"));
}
