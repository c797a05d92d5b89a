//! The built binary, end to end in load-test mode: agents trained with `--objective best` in a
//! temp policies folder, served by `lab up --artifacts`, decided and run in the client sidecar by
//! `lab loadtest`; its decisions equal `rl decide` on the same states.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sfr2l"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.current_dir(root()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{cmd:?}: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Stops the lab when the test ends, also on failure.
struct LabGuard(PathBuf);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = bin().args(["lab", "down", "--dir"]).arg(&self.0).current_dir(root()).output();
    }
}

fn decide(agent: &Path, state: &[f32]) -> u32 {
    let s: Vec<String> = state.iter().map(|v| v.to_string()).collect();
    let out = run(bin().args(["rl", "decide", "--agent"]).arg(agent).args(["--state", &s.join(",")]));
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["decision"].as_u64().unwrap() as u32
}

#[test]
fn best_objective_agents_decide_in_the_sidecar() {
    let tmp = tempfile::tempdir().unwrap();
    let policies = tmp.path().join("policies");
    let s1 = policies.join("s1");
    std::fs::create_dir_all(&s1).unwrap();
    for f in ["simulator.onnx", "simulator.json", "config.json"] {
        std::fs::copy(root().join("policies/s1").join(f), s1.join(f)).unwrap();
    }
    let agents = s1.join("agents/thread-call/best-seed-3");
    run(bin()
        .args(["rl", "learn", "--sim"])
        .arg(&s1)
        .args([
            "--config",
            "thread-call",
            "--objective",
            "best",
            "--epochs",
            "3",
            "--seed",
            "3",
            "--data",
            "data/s1.csv",
            "--out",
        ])
        .arg(&agents));

    let lab = tmp.path().join("lab");
    run(bin()
        .args(["lab", "up", "--profile", "s1", "--base-port", "21700", "--artifacts"])
        .arg(&policies)
        .arg("--dir")
        .arg(&lab));
    let _guard = LabGuard(lab.clone());
    let out = run(bin().args(["lab", "loadtest", "--dir"]).arg(&lab).arg("--agents").arg(&agents).args([
        "--simulator",
        "--trigger",
        "best-1",
        "manifests/overlays/s1/destinationrule.yaml",
    ]));
    let line = out.lines().find(|l| l.starts_with("SFR2L_TRACE ")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(&line["SFR2L_TRACE ".len()..]).unwrap();
    let inline = &rec["inline"];
    assert_eq!(inline["objective"], "best");
    assert_eq!(inline["configuration"], "thread-call");
    assert_eq!(rec["complete"], true);
    let (qps, rate_200) = (rec["qps"].as_f64().unwrap(), rec["rate_200"].as_f64().unwrap());
    assert!((inline["reward"].as_f64().unwrap() - qps * rate_200).abs() < 1e-9, "best objective: QPS x P200");
    // The sidecar's choices are `rl decide`'s on the same states.
    for step in inline["steps"].as_array().unwrap() {
        let state: Vec<f32> = step["state"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let graph = agents.join(format!("{}.onnx", step["agent"].as_str().unwrap()));
        assert_eq!(step["choice"].as_u64().unwrap() as u32, decide(&graph, &state), "{step}");
    }
    assert_eq!(rec["threads"], inline["steps"][0]["choice"]);
    assert_eq!(rec["calls"], inline["steps"][1]["choice"]);
}
