//! Collection in a user's cluster, tested without one. `mesh plan` renders and validates every
//! row offline. `mesh collect` runs its whole backend (apply, wait on the sidecar's config dump
//! and the filter's generation, fortio in the client pod, the sidecar's log ingested and checked
//! against its cluster stats, append, resume) with `kubectl` replaced by a shim
//! (`trainer/tests/data/kubectl-lab-shim.py`) that answers each call from the real lab: real Envoy, the real
//! filter, real httpbin. What the shim cannot show is what a real cluster adds (istiod's push
//! delay, pods, RBAC): the command lines it was given are checked instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BASE_PORT: u16 = 23400;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

struct LabDown(PathBuf);

impl Drop for LabDown {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_sfr2l"))
            .current_dir(root())
            .args(["lab", "down", "--dir"])
            .arg(&self.0)
            .output();
    }
}

fn sfr2l(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sfr2l"));
    c.current_dir(root()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn mesh_plan_renders_and_validates_every_row() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("plan");
    let o = out.display().to_string();
    let said = ok(&sfr2l(&["mesh", "plan", "--study", "s1", "--rows", "4", "--repeats", "2:2", "--out", &o], &[]));
    assert!(said.starts_with("plan of 4 rows for study s1"), "{said}");
    let csv = std::fs::read_to_string(out.join("plan.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("row,config_id,repeat,run_id,generation,max_pending_requests,"), "{}", lines[0]);
    // The same plan as `lab collect` draws (seed 1: the study's).
    let study = sfr2l_files::study::find("s1").unwrap().study;
    let plan = sfr2l_lab::collect::plan(&study, 4, 1, 2, 2);
    for (line, e) in lines[1..].iter().zip(&plan) {
        assert!(line.contains(&format!(",{},{},", e.config_id, e.repeat)), "{line}");
        assert!(line.contains(&format!(",{},{},sfr2l-load-run-", e.load.threads, e.load.calls)), "{line}");
    }
    let row = std::fs::read_to_string(out.join("rows/00000/row.yaml")).unwrap();
    for want in [
        "kind: DestinationRule",
        "kind: WasmPlugin",
        "generation: 1",
        "kind: Job",
        "http://httpbin.default:8000/status/200",
        "x-sfr2l-run: s1-1-0-g1",
    ] {
        assert!(row.contains(want), "{want} in {row}");
    }
    // A subset target is refused, naming the field.
    std::fs::create_dir_all(tmp.path().join("sub")).unwrap();
    let sub = tmp.path().join("sub/s1.yaml");
    let text = std::fs::read_to_string(root().join("studies/s1.yaml")).unwrap();
    std::fs::write(&sub, text.replace("  port: 8000\n", "  port: 8000\n  subset: v1\n")).unwrap();
    let e = sfr2l(
        &["mesh", "plan", "--study", &sub.display().to_string(), "--rows", "1", "--repeats", "0:0", "--out", &o],
        &[],
    );
    assert!(String::from_utf8_lossy(&e.stderr).contains("target.subset \"v1\""), "{e:?}");
}

#[test]
fn mesh_collect_drives_the_collection_through_kubectl_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = tmp.path().join("lab");
    ok(&sfr2l(
        &["lab", "up", "--profile", "s1", "--base-port", &BASE_PORT.to_string(), "--dir", &lab.display().to_string()],
        &[],
    ));
    let _down = LabDown(lab.clone());
    let calls = tmp.path().join("calls.txt");
    let env = [
        ("SHIM_CALLS", calls.display().to_string()),
        ("SHIM_LAB", lab.display().to_string()),
        ("SHIM_ADMIN", BASE_PORT.to_string()),
        ("SHIM_LISTENER", (BASE_PORT + 1).to_string()),
        ("SHIM_SFR2L", env!("CARGO_BIN_EXE_sfr2l").to_string()),
        (
            "SHIM_FILTER_SHA256",
            sfr2l_files::sha256_file(&root().join("target/wasm32-wasip1/release/sfr2l_filter.wasm")),
        ),
    ];
    let shim = root().join("trainer/tests/data/kubectl-lab-shim.py").display().to_string();
    let csv = tmp.path().join("data/s1.csv");
    let c = csv.display().to_string();
    let collect = |rows: &str, extra: &[&str]| {
        let mut a = vec!["mesh", "collect", "--study", "s1", "--context", "lab", "--kubectl", &shim, "--out", &c];
        a.extend(["--rows", rows, "--repeats", "0:0", "--timeout-s", "20"]);
        a.extend(extra);
        sfr2l(&a, &env)
    };
    let said = ok(&collect("2", &[]));
    assert!(said.starts_with("2 rows in "), "{said}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("data/s1.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["upstream"], "cluster context lab namespace default");
    assert_eq!(meta["filter_sha256"], env[5].1.as_str(), "the WasmPlugin's pin");
    // The command lines a cluster would get: context and namespace explicit on every one.
    let log = std::fs::read_to_string(&calls).unwrap();
    for want in [
        "--context lab -n default get namespace default -o name",
        "--context lab -n default exec deploy/fortio -c istio-proxy -- pilot-agent request GET server_info",
        "--context lab -n default apply -f -",
        "--context lab -n default exec deploy/fortio -c istio-proxy -- pilot-agent request GET config_dump?resource=dynamic_active_clusters",
        "--context lab -n default exec deploy/fortio -c fortio -- fortio load -c ",
        "http://httpbin.default:8000/status/200",
        "--context lab -n default logs deploy/fortio -c istio-proxy --since=",
    ] {
        assert!(log.contains(want), "{want:?} in\n{log}");
    }
    assert!(log.lines().all(|l| l.starts_with("--context lab -n default ")), "{log}");
    // Resume: only the missing row runs.
    let runs_before = log.matches("fortio load").count();
    ok(&collect("3", &["--resume"]));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 4);
    let log = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(log.matches("fortio load").count(), runs_before + 1, "{log}");
    // A row whose trace never comes back: rejected within the time limit, the collection goes
    // on, and --resume runs it again.
    let late = tmp.path().join("data/late.csv").display().to_string();
    let late_run = |extra: &[(&str, String)], resume: bool| {
        let mut a = vec!["mesh", "collect", "--study", "s1", "--context", "lab", "--kubectl", &shim, "--out", &late];
        a.extend(["--rows", "1", "--repeats", "0:0", "--timeout-s", "3", "--tries", "1"]);
        if resume {
            a.push("--resume");
        }
        let all: Vec<(&str, String)> = env.iter().cloned().chain(extra.iter().cloned()).collect();
        sfr2l(&a, &all)
    };
    let o = late_run(&[("SHIM_LOSE_LOGS", "1".to_string())], false);
    let said = ok(&o);
    assert!(said.starts_with("0 rows in ") && said.contains("1 rows skipped: --resume retries them"), "{said}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no trace record for run s1-1-0-"), "{o:?}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("data/late.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["skipped_rows"], 1);
    assert!(ok(&late_run(&[], true)).starts_with("1 rows in "));
    // A context that cannot be reached: named, nothing written.
    let other = tmp.path().join("data/other.csv");
    let o = other.display().to_string();
    let e = sfr2l(
        &["mesh", "collect", "--study", "s1", "--context", "nowhere", "--kubectl", "/nonexistent/kubectl", "--out", &o],
        &env,
    );
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && err.contains("context \"nowhere\" cannot be reached (nothing was written)"),
        "{err}"
    );
    assert!(!Path::new(&other).exists());
}
