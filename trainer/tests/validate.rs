//! `sfr2l validate` on a small budget, end to end on the real lab: the committed S1 Thread-Call
//! agents replayed outside and inside Envoy (the filter must take the native runtime's decision
//! on every state), an interrupted validation resumed exactly, and the bad inputs that must stop
//! it with a clear error.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn validate(args: &[&str], lab: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sfr2l"))
        .current_dir(root())
        .arg("validate")
        .args(args)
        .arg("--dir")
        .arg(lab)
        .arg("--out")
        .arg(out)
        .args(["--base-port", "22500"])
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

const AGENTS: &str = "policies/s1/agents/thread-call/seed-1";

#[test]
fn validates_outside_and_inside_envoy_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, out) = (dir.path().join("lab"), dir.path().join("v.csv"));
    let o = validate(&["--agents", AGENTS, "--samples", "2", "--inline"], &lab, &out);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("Val. (lab, decided outside Envoy)") && stdout.contains("decided inside Envoy"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.with_extension("json")).unwrap()).unwrap();
    assert_eq!(summary["samples"], 2);
    assert_eq!(summary["profile"], "s1");
    // The filter decides exactly as the native runtime on the same states.
    assert_eq!(summary["inline_same_decision"], 2, "{stdout}");
    let v = &summary["validated"];
    assert!(v["ratio"].as_f64().unwrap() > 0.0 && v["lo"].as_f64() <= v["ratio"].as_f64(), "{summary}");
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        let (threads, calls): (u32, u32) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        assert!(
            (1..=7).contains(&threads) && (435..=450).contains(&calls),
            "agent load {threads}x{calls} off S1's grid"
        );
        assert!(f[8].parse::<f64>().unwrap() > 0.0 && f[11].parse::<f64>().unwrap() > 0.0, "rewards in {l}");
    }

    // Interrupted after the first sample: only the second one runs again; the first is kept as is.
    std::fs::write(&out, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    let o = validate(&["--agents", AGENTS, "--samples", "2", "--inline", "--resume"], &lab, &out);
    let (_, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stderr.matches("sample ").count(), 1, "{stderr}");
    assert!(stderr.contains("sample   1:"), "{stderr}");
    let again = std::fs::read_to_string(&out).unwrap();
    assert_eq!(again.lines().nth(1), Some(lines[1]));
    assert_eq!(again.lines().count(), 3);

    // Another seed draws other states: the file is not mixed with them.
    let o = validate(&["--agents", AGENTS, "--samples", "2", "--seed", "7", "--resume"], &lab, &out);
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(stderr.contains("another --seed"), "{stderr}");
}

#[test]
fn bad_agents_and_missing_labs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, out) = (dir.path().join("lab"), dir.path().join("v.csv"));
    // An agent folder whose run claims another profile than its graphs.
    let bad = dir.path().join("policies/s1/agents/thread-call/seed-1");
    std::fs::create_dir_all(&bad).unwrap();
    for e in std::fs::read_dir(root().join(AGENTS)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), bad.join(e.file_name())).unwrap();
    }
    let result = std::fs::read_to_string(bad.join("result.json")).unwrap();
    std::fs::write(bad.join("result.json"), result.replace("\"s1\"", "\"s2\"")).unwrap();
    let o = validate(&["--agents", bad.to_str().unwrap()], &lab, &out);
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(stderr.contains("thread.onnx") && stderr.contains("expected `s2`"), "{stderr}");
    // More samples than states.
    let o = validate(&["--agents", AGENTS, "--samples", "100000"], &lab, &out);
    let (_, stderr) = text(&o);
    assert!(!o.status.success() && stderr.contains("fewer than --samples 100000"), "{stderr}");
    // --attach without a lab.
    let o = validate(&["--agents", AGENTS, "--attach"], &lab, &out);
    let (_, stderr) = text(&o);
    assert!(!o.status.success() && stderr.contains("no lab recorded"), "{stderr}");
    assert!(!out.exists(), "nothing written on a failed start");
}
