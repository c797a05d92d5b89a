//! The built binary in a temp dir: help, bad input, and a live collection killed mid-run.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sfr2l"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rows(csv: &Path) -> usize {
    std::fs::read_to_string(csv).map(|t| t.lines().count().saturating_sub(1)).unwrap_or(0)
}

fn lab_processes(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&c).replace('\0', " ");
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat.rsplit(')').next().map(|r| r.trim_start().starts_with('Z')).unwrap_or(true);
            if cmd.contains(needle) && !zombie {
                out.push(cmd);
            }
        }
    }
    out
}

/// The names a `--help` page lists: subcommands (first word of each line under `Commands:`)
/// and long options (every `--name` under `Options:`).
fn listed(help: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut commands, mut options) = (BTreeSet::new(), BTreeSet::new());
    let mut section = "";
    for line in help.lines() {
        if line.trim().is_empty() {
            continue; // long help separates entries with blank lines
        }
        if !line.starts_with(' ') {
            section = line.trim_end();
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        match section {
            "Commands:" if line.starts_with("  ") && !line.starts_with("   ") => {
                commands.extend(line.split_whitespace().next().map(str::to_string));
            }
            // Flags start at column 2 (`-s, --seed`) or 6 (`--dir`); deeper lines are descriptions.
            "Options:" if indent <= 6 && line.trim_start().starts_with('-') => {
                // `  -s, --seed <SEED>  ...`: the flags come before the description's two spaces.
                let flags = line.trim_start().split("  ").next().unwrap_or("");
                for w in flags.split([' ', ',']) {
                    if let Some(name) = w.strip_prefix("--") {
                        let name: String =
                            name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                        options.insert(name);
                    }
                }
            }
            _ => {}
        }
    }
    (commands, options)
}

/// Every `--help` page of every subcommand lists exactly the subcommands and long options of
/// the clap definition (`Cli::command()`), hidden ones left out: nothing missing, nothing extra,
/// no match by substring.
#[test]
fn help_lists_exactly_the_defined_commands_and_options() {
    use clap::CommandFactory;
    let mut root_cmd = sfr2l::cli::Cli::command();
    root_cmd.build();
    let mut pages = 0;
    let mut stack: Vec<(Vec<String>, clap::Command)> = vec![(vec![], root_cmd)];
    while let Some((path, cmd)) = stack.pop() {
        let out = bin().args(&path).arg("--help").output().unwrap();
        assert!(out.status.success(), "sfr2l {} --help", path.join(" "));
        let (commands, options) = listed(&String::from_utf8_lossy(&out.stdout));
        let want_commands: BTreeSet<String> =
            cmd.get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_string()).collect();
        let want_options: BTreeSet<String> =
            cmd.get_arguments().filter(|a| !a.is_hide_set()).filter_map(|a| a.get_long().map(str::to_string)).collect();
        assert_eq!(commands, want_commands, "sfr2l {} --help: commands", path.join(" "));
        assert_eq!(options, want_options, "sfr2l {} --help: options", path.join(" "));
        pages += 1;
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            stack.push((p, sub.clone()));
        }
    }
    assert!(pages > 10, "only {pages} help pages");
    let (commands, _) = listed(&String::from_utf8_lossy(&bin().arg("--help").output().unwrap().stdout));
    for c in ["lab", "load", "traces", "rl", "validate"] {
        assert!(commands.contains(c), "{c} is not a subcommand: {commands:?}");
    }
}

#[test]
fn bad_destination_rule_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let dr = dir.path().join("dr.yaml");
    let text = std::fs::read_to_string(root().join("manifests/overlays/istio-task/destinationrule.yaml")).unwrap();
    std::fs::write(&dr, text.replace("consecutive5xxErrors", "consecutiveErrors")).unwrap();
    let out = bin().args(["lab", "apply", "--dir"]).arg(dir.path()).arg(&dr).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dr.yaml") && err.contains("consecutiveErrors"), "{err}");
}

#[test]
fn ingest_reports_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("envoy.log");
    std::fs::write(&log, "a\nb\n[info] wasm log sfr2l: SFR2L_TRACE {\"schema\":1,\n").unwrap();
    let out = bin().args(["traces", "ingest"]).arg(&log).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("envoy.log:3"));
}

fn collect(dir: &Path, out: &Path, base: u16, resume: bool) -> Command {
    let mut c = bin();
    c.current_dir(root())
        .args(["lab", "collect", "--profile", "s3", "--rows", "12", "--repeats", "2:3", "--seed", "3", "--quiet"])
        .args(["--base-port", &base.to_string(), "--dir"])
        .arg(dir)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

fn wait_rows(csv: &Path, n: usize) {
    let t0 = Instant::now();
    while rows(csv) < n {
        assert!(t0.elapsed() < Duration::from_secs(60), "collection made no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL and SIGINT mid-collection leave a valid file and no Envoy or gunicorn; --resume
/// then finishes exactly the planned rows.
#[test]
fn killed_collection_leaves_no_processes_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = tmp.path().join("lab");
    let csv = tmp.path().join("s3.csv");
    let needle = lab.to_string_lossy().to_string();
    let httpbin = "127.0.0.1:21503";

    let mut child = collect(&lab, &csv, 21500, false).spawn().unwrap();
    wait_rows(&csv, 2);
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab_processes(&needle).is_empty(), "orphans after SIGKILL: {:?}", lab_processes(&needle));
    assert!(lab_processes(httpbin).is_empty(), "gunicorn left after SIGKILL");

    let mut child = collect(&lab, &csv, 21500, true).spawn().unwrap();
    let before = rows(&csv);
    wait_rows(&csv, before + 1);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(lab_processes(&needle).is_empty(), "orphans after SIGINT");
    assert!(lab_processes(httpbin).is_empty());
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.ends_with('\n'));

    let out = collect(&lab, &csv, 21500, true).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows(&csv), 12);
    let text = std::fs::read_to_string(&csv).unwrap();
    let ids: std::collections::HashSet<_> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[f.len() - 2].to_string(), f[f.len() - 1].to_string())
        })
        .collect();
    assert_eq!(ids.len(), 12, "no row twice");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("s3.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["rows"], 12);
    assert!(meta["envoy_version"].as_str().unwrap().contains("1.40.0"));
}

/// A detached `lab up` that fails after starting some processes (here: a filter module Envoy
/// cannot load, so the client sidecar never takes its listener) stops what it started.
#[test]
fn a_failed_lab_up_leaves_no_processes() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("broken.wasm");
    std::fs::write(&wasm, b"\0asm not really").unwrap();
    let lab = dir.path().join("lab");
    let o = bin()
        .args(["lab", "up", "--profile", "s1", "--base-port", "22700", "--wasm"])
        .arg(&wasm)
        .arg("--dir")
        .arg(&lab)
        .current_dir(root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a broken filter module must fail `lab up`");
    // It failed after its processes started: Envoy itself rejected the module.
    assert!(err.contains("Unable to create Wasm plugin"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let needle = lab.display().to_string();
    assert!(lab_processes(&needle).is_empty(), "orphans: {:?}", lab_processes(&needle));
    assert!(lab_processes("127.0.0.1:22703").is_empty(), "gunicorn left: {:?}", lab_processes("127.0.0.1:22703"));
}
