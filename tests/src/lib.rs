//! Shared set-up for the end-to-end tests: a real lab on its own loopback ports in a temp dir.

pub mod mutate;

use sfr2l_core::study::{LabTopology, Upstream};
use sfr2l_lab::{Lab, LabOptions, Toolchain};
use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn toolchain() -> Toolchain {
    let root = repo_root();
    Toolchain::discover(&root.join(".venv"), &root.join("target/wasm32-wasip1/release/sfr2l_filter.wasm"))
        .expect("lab toolchain (run `make setup filter` first)")
}

/// The paper's upstream (httpbin under gunicorn, `studies/s1.yaml`), with `workers` processes of
/// `threads` threads.
pub fn httpbin(workers: u32, threads: u32) -> Upstream {
    let mut up = sfr2l_files::study::find_in(&repo_root(), "s1").expect("studies/s1.yaml").study.upstream;
    if let Upstream::Command { argv, .. } = &mut up {
        for (flag, v) in [("--workers", workers), ("--threads", threads)] {
            if let Some(i) = argv.iter().position(|a| a == flag) {
                argv[i + 1] = v.to_string();
            }
        }
    }
    up
}

/// The paper's target (`studies/s1.yaml`): httpbin, whose cluster the lab's client sidecar names
/// as istiod does.
pub fn target() -> sfr2l_core::study::Target {
    sfr2l_files::study::find_in(&repo_root(), "s1").expect("studies/s1.yaml").study.target
}

pub fn topology(hosts: u32, bad_hosts: u32, bad_abort_percent: f64, delay_ms: u32) -> LabTopology {
    LabTopology {
        hosts,
        bad_hosts,
        bad_abort_percent,
        bad_mode: Default::default(),
        delay_ms,
        delay_percent: 100.0,
        client_workers: 2,
        client_quota: None,
        conn_quota: None,
        capacity: None,
    }
}

/// A lab in a fresh temp dir; the dir lives as long as the returned guard.
pub fn start_lab(base_port: u16, topo: LabTopology) -> (Lab, tempfile::TempDir) {
    start_lab_with(base_port, topo, None)
}

/// A lab whose artifact server serves `artifacts` to the filter (load-test mode).
pub fn start_lab_with(base_port: u16, topo: LabTopology, artifacts: Option<PathBuf>) -> (Lab, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LabOptions {
        dir: dir.path().to_path_buf(),
        base_port,
        topology: topo,
        tools: toolchain(),
        upstream: httpbin(2, 16),
        target: target(),
        upstream_workers: 1,
        attached: true,
        idle_timeout_ms: 1000,
        artifacts,
    };
    (Lab::start(opts).expect("lab start"), dir)
}

/// Processes whose command line mentions `needle` (a lab dir or a port).
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&c).replace('\0', " ");
            if cmd.contains(needle) && !cmd.contains("cargo") && sfr2l_lab::process::pid_alive(pid) {
                out.push((pid, cmd));
            }
        }
    }
    out
}
