//! The kustomize tree renders and validates: every overlay through `kubectl kustomize` (offline)
//! and the typed Istio/Kubernetes checks; each overlay's filter rule is its DestinationRule's;
//! bad fields and values are rejected with their YAML path; `sfr2l manifests` renders a pinned,
//! reproducible load-test overlay; the dashboard queries only metrics the filter defines.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use sfr2l_core::config::Mode;
use sfr2l_core::LoadSetting;
use sfr2l_deploy::istio::{self, Object};
use sfr2l_deploy::lab_config as lab_manifests;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn overlays() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(root().join("manifests/overlays")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn kinds(objects: &[Object]) -> Vec<&'static str> {
    objects
        .iter()
        .map(|o| match o {
            Object::Namespace(_) => "Namespace",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Service(_) => "Service",
            Object::Workload(w) if w.kind == "Job" => "Job",
            Object::Workload(_) => "Deployment",
            Object::DestinationRule(_) => "DestinationRule",
            Object::VirtualService(_) => "VirtualService",
            Object::WasmPlugin(_) => "WasmPlugin",
        })
        .collect()
}

#[test]
fn every_overlay_renders_and_validates() {
    let names: Vec<String> = overlays().iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    for want in ["istio-task", "s1", "s2", "s3", "s4", "s5", "s1-loadtest"] {
        assert!(names.contains(&want.to_string()), "overlay {want} missing: {names:?}");
    }
    for dir in overlays() {
        let objects = istio::load(&dir).unwrap_or_else(|e| panic!("{e:#}"));
        let k = kinds(&objects);
        for want in ["Namespace", "Service", "Deployment", "Job", "ConfigMap", "DestinationRule", "WasmPlugin"] {
            assert!(k.contains(&want), "{}: no {want} in {k:?}", dir.display());
        }
        // The lab reads the same overlay: one rule, the WasmPlugin's configuration, equal rules.
        let m = lab_manifests::read(&dir, &sfr2l_files::study::find("s1").unwrap().study.target)
            .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
        let file_rule = sfr2l_lab::destination_rule::read(&dir.join("destinationrule.yaml")).unwrap();
        assert_eq!(m.rule, file_rule, "{}", dir.display());
        let plugin = objects.iter().find_map(|o| if let Object::WasmPlugin(w) = o { Some(w) } else { None }).unwrap();
        assert_eq!(plugin.filter_config().unwrap().rule, Some(file_rule), "{}: filter rule", dir.display());
        assert_eq!(plugin.spec.plugin_name.as_deref(), Some("sfr2l"));
    }
}

#[test]
fn study_presets_lie_in_their_ranges() {
    for id in sfr2l_files::study::built_in_names() {
        let path = root().join(format!("manifests/overlays/{id}/destinationrule.yaml"));
        let rule = sfr2l_lab::destination_rule::read(&path).unwrap();
        let p = sfr2l_files::study::find_in(&root(), id).unwrap().study;
        let load = LoadSetting { threads: p.threads.lo, calls: p.calls.lo };
        p.check(&rule, &load).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

fn err(text: &str) -> String {
    format!("{:#}", istio::parse_stream(text, "bad.yaml").unwrap_err())
}

fn base_doc(name: &str) -> String {
    std::fs::read_to_string(root().join("manifests/base").join(name))
        .or_else(|_| std::fs::read_to_string(root().join("manifests/client").join(name)))
        .unwrap()
}

#[test]
fn bad_fields_and_values_are_rejected_with_their_yaml_path() {
    let dr = std::fs::read_to_string(root().join("manifests/overlays/istio-task/destinationrule.yaml")).unwrap();
    let cases: Vec<(String, &[&str])> = vec![
        (dr.replace("consecutive5xxErrors", "consecutiveErrors"), &["outlierDetection", "consecutiveErrors"]),
        (dr.replace("3m", "3 minutes"), &["baseEjectionTime", "3 minutes"]),
        (dr.replace("interval: 1s", "interval: 500us"), &["interval", "1ms"]),
        (dr.replace("maxEjectionPercent: 100", "maxEjectionPercent: 101"), &["maxEjectionPercent", "0..=100"]),
        (dr.replace("maxConnections: 1", "maxConnections: 3000000000"), &["maxConnections", "int32"]),
        (dr.replace("host: httpbin", "host: httpbin\n  hosst: x"), &["spec", "hosst"]),
    ];
    let wp = base_doc("wasmplugin.yaml");
    let mut more: Vec<(String, &[&str])> = vec![
        (wp.replace("FAIL_OPEN", "FAIL_OPENED"), &["spec.failStrategy", "FAIL_OPENED"]),
        (wp.replace("mode: CLIENT", "mode: OUTBOUND"), &["spec.match[0].mode", "OUTBOUND"]),
        (wp.replace("imagePullPolicy: IfNotPresent", "sha256: ABC"), &["spec.sha256"]),
        (wp.replace("- number: 8000", "- number: 70000"), &["spec.match[0].ports[0].number"]),
        (wp.replace("idle_timeout: 2s", "idle_timeout: 2s\n    idle_timout: 3s"), &["pluginConfig", "idle_timout"]),
        (wp.replace("mode: observe", "mode: loadtest"), &["pluginConfig", "loadtest"]),
        (wp.replace("priority: 10", "priority: 10\n  priorty: 1"), &["spec", "priorty"]),
    ];
    let fortio = base_doc("fortio.yaml");
    more.push((
        fortio.replace("matchLabels: {app: fortio}", "matchLabels: {app: other}"),
        &["spec.selector.matchLabels"],
    ));
    more.push((fortio.replace("containerPort: 8080", "containerPort: 0"), &["containers[0].ports[0].containerPort"]));
    more.push((fortio.replace("image: fortio", "imagee: fortio"), &["spec.template.spec.containers[0]", "imagee"]));
    let job = base_doc("load-job.yaml");
    more.push((job.replace("restartPolicy: Never", "restartPolicy: Always"), &["restartPolicy"]));
    more.push((job.replace("\"x-sfr2l-calls: 30\"", "\"x-sfr2l-calls: 20\""), &["args", "x-sfr2l-calls", "-n"]));
    more.push((job.replace("\"-H\", \"x-sfr2l-run: job-1\", ", ""), &["args", "x-sfr2l-run"]));
    for (text, needles) in cases.into_iter().chain(more) {
        let e = err(&text);
        assert!(e.contains("bad.yaml: document"), "{e}");
        for n in needles {
            assert!(e.contains(n), "error lacks {n:?}: {e}");
        }
    }
    // The untouched documents pass.
    for f in ["wasmplugin.yaml", "fortio.yaml", "load-job.yaml", "httpbin.yaml"] {
        istio::parse_stream(&base_doc(f), f).unwrap();
    }
}

#[test]
fn cross_object_rules_catch_a_wrong_cluster_name() {
    let dir = root().join("manifests/overlays/s1-loadtest");
    let text = istio::kustomize(&dir).unwrap();
    let objects = istio::parse_stream(&text, "rendered").unwrap();
    istio::validate_set(&objects).unwrap();
    let bad = text.replace("outbound|8000||httpbin.sfr2l.svc", "outbound|8000||httpbin.default.svc");
    let e = format!("{:#}", istio::validate_set(&istio::parse_stream(&bad, "rendered").unwrap()).unwrap_err());
    assert!(e.contains("spec.pluginConfig.loadtest.cluster"), "{e}");
    let bad = text.replace("  host: httpbin\n", "  host: httpbin2\n");
    let e = format!("{:#}", istio::validate_set(&istio::parse_stream(&bad, "rendered").unwrap()).unwrap_err());
    assert!(e.contains("spec.host"), "{e}");
}

/// Runs `sfr2l ARGS` from the repository root; its stdout.
fn sfr2l(args: &[&str], out: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sfr2l")).args(args).current_dir(root()).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    assert!(out.exists());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wasm() -> PathBuf {
    let p = root().join("target/wasm32-wasip1/release/sfr2l_filter.wasm");
    assert!(p.exists(), "{} missing: run `make filter`", p.display());
    p
}

#[test]
fn manifests_command_pins_models_filter_and_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let agents = "policies/s1/agents/thread-call/seed-1";
    let rules = "manifests/overlays/s1/destinationrule.yaml";
    let render = |name: &str, wasm: Option<&Path>| {
        let out = tmp.path().join(name);
        let oci = tmp.path().join(format!("{name}-oci"));
        let mut args = vec!["manifests", "--agents", agents, "--rules", rules, "--simulator", "--trigger", "example-1"];
        let (o, c) = (out.to_string_lossy().to_string(), oci.to_string_lossy().to_string());
        args.extend(["--out", &o, "--oci", &c]);
        let w = wasm.map(|p| p.to_string_lossy().to_string());
        if let Some(w) = &w {
            args.extend(["--wasm", w]);
        }
        sfr2l(&args, &out);
        (out, oci)
    };
    // Without the filter: the committed example is exactly what the command renders.
    let (plain, _) = render("plain", None);
    for f in ["destinationrule.yaml", "wasmplugin.yaml", "artifacts.yaml"] {
        let committed = std::fs::read_to_string(root().join("manifests/overlays/s1-loadtest").join(f)).unwrap();
        assert_eq!(std::fs::read_to_string(plain.join(f)).unwrap(), committed, "{f} of overlays/s1-loadtest is stale");
    }
    // With the filter, twice: same bytes, the WasmPlugin pins the built module.
    let wasm = wasm();
    let (a, a_oci) = render("a", Some(&wasm));
    let (b, b_oci) = render("b", Some(&wasm));
    for f in ["destinationrule.yaml", "wasmplugin.yaml", "artifacts.yaml"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
    assert_eq!(std::fs::read(a_oci.join("index.json")).unwrap(), std::fs::read(b_oci.join("index.json")).unwrap());
    let objects = istio::load(&a).unwrap();
    let plugin = objects.iter().find_map(|o| if let Object::WasmPlugin(w) = o { Some(w) } else { None }).unwrap();
    let wasm_sha = sfr2l_files::sha256_file(&wasm);
    assert_eq!(plugin.spec.sha256.as_deref(), Some(wasm_sha.as_str()));
    assert!(plugin.spec.url.ends_with("/sfr2l_filter.wasm"), "{}", plugin.spec.url);
    let c = plugin.filter_config().unwrap();
    assert_eq!(c.mode, Mode::LoadTest);
    let models = c.models.unwrap();
    for (name, r) in &models.agents {
        let card: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root().join(agents).join(format!("{name}.json"))).unwrap())
                .unwrap();
        assert_eq!(card["onnx_sha256"].as_str(), Some(r.sha256.as_str()), "{name}");
    }
    // The artifact server pulls the artifact by the digest of the layout written beside it,
    // and the artifact holds every pinned file under the path the filter requests.
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(a_oci.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let server = std::fs::read_to_string(a.join("artifacts.yaml")).unwrap();
    assert!(server.contains(&format!("registry.example.com/sfr2l/artifacts@{digest}")), "{server}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a_oci.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap(),
    )
    .unwrap();
    let titles: Vec<(String, String)> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let t = l["annotations"]["org.opencontainers.image.title"].as_str().unwrap().to_string();
            (t, l["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string())
        })
        .collect();
    let mut want: Vec<(String, String)> = models
        .agents
        .values()
        .chain(models.simulator.iter())
        .map(|r| (r.path.trim_start_matches('/').to_string(), r.sha256.clone()))
        .collect();
    want.push(("sfr2l_filter.wasm".into(), wasm_sha));
    want.sort();
    let mut titles = titles;
    titles.sort();
    assert_eq!(titles, want);
    // The lab maps istiod's cluster names to its own.
    let target = sfr2l_files::study::find("s1").unwrap().study.target;
    let m = lab_manifests::read(&a, &target).unwrap();
    assert_eq!(m.config.models.unwrap().cluster, "sfr2l-artifacts");
    assert_eq!(m.config.loadtest.unwrap().cluster, "outbound|8000||httpbin.default.svc.cluster.local");
}

#[test]
fn dashboard_queries_only_metrics_the_filter_defines() {
    let text = std::fs::read_to_string(root().join("manifests/client/sfr2l-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let module = std::fs::read(wasm()).unwrap();
    let defined = std::fs::read_to_string(root().join("filter/src/metrics.rs")).unwrap();
    let mut queried = std::collections::BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("sfr2l_") {
                let name: String = expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                queried.insert(name);
            }
        }
    }
    for want in ["sfr2l_window_qps", "sfr2l_responses_5xx_total", "sfr2l_runs_completed_total"] {
        assert!(queried.contains(want), "the dashboard should query {want}");
    }
    for want in ["sfr2l_inline_last_threads", "sfr2l_inline_last_reward_milli", "sfr2l_sim_residual_qps_abs"] {
        assert!(queried.contains(want), "the dashboard should query {want}");
    }
    for name in &queried {
        assert!(defined.contains(&format!("\"{name}\"")), "{name} is not defined in filter/src/metrics.rs");
        assert!(module.windows(name.len()).any(|w| w == name.as_bytes()), "{name} is not in the built filter");
    }
    // It ships in the tree as a ConfigMap Grafana's sidecar imports.
    let objects = istio::load(&root().join("manifests/overlays/s1")).unwrap();
    let cm = objects.iter().find_map(|o| if let Object::ConfigMap(c) = o { Some(c) } else { None }).unwrap();
    assert_eq!(cm.metadata.labels.get("grafana_dashboard").map(String::as_str), Some("1"));
    assert_eq!(cm.data.get("sfr2l-dashboard.json"), Some(&text));
}

/// A user's own rule file for the study's service (subsets and a VirtualService kept as they are).
const USER_RULES: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, annotations: {owner: team-a}}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 3}, http: {http1MaxPendingRequests: 2, maxRequestsPerConnection: 4}}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 50}
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http: [{timeout: 5s, route: [{destination: {host: httpbin, subset: v1}}]}]
";

#[test]
fn manifests_for_a_studys_own_target_go_beside_the_users_service() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.yaml");
    std::fs::write(&rules, USER_RULES).unwrap();
    let out = tmp.path().join("rollout");
    let (o, r, c) =
        (out.display().to_string(), rules.display().to_string(), tmp.path().join("oci").display().to_string());
    let args = ["manifests", "--agents", "policies/s1/agents/thread-call/seed-1", "--rules", &r, "--study", "s1"];
    let said = sfr2l(&[&args[..], &["--trigger", "t-1", "--out", &o, "--oci", &c]].concat(), &out);
    assert!(said.contains("for httpbin port 8000 in namespace default"), "{said}");
    // The study's target (s1: httpbin in namespace default, port 8000, /status/200), not the
    // demo tree: no httpbin Deployment, Service or Namespace of ours.
    let rendered = istio::kustomize(&out).unwrap();
    let objects = istio::parse_stream(&rendered, "rollout").unwrap();
    assert_eq!(
        kinds(&objects),
        ["ConfigMap", "Service", "Deployment", "Deployment", "Job", "WasmPlugin", "DestinationRule", "VirtualService"]
    );
    assert!(
        rendered.lines().filter(|l| l.trim_start().starts_with("namespace:")).all(|l| l.trim() == "namespace: default"),
        "{rendered}"
    );
    let plugin = objects.iter().find_map(|o| if let Object::WasmPlugin(w) = o { Some(w) } else { None }).unwrap();
    let c = plugin.filter_config().unwrap();
    let lt = c.loadtest.unwrap();
    assert_eq!(
        (lt.cluster.as_str(), lt.path.as_str()),
        ("outbound|8000||httpbin.default.svc.cluster.local", "/status/200")
    );
    assert_eq!(c.models.unwrap().cluster, "outbound|8080||sfr2l-artifacts.default.svc.cluster.local");
    assert_eq!(c.rule.unwrap().max_connections, 3);
    assert!(rendered.contains("- number: 8000"), "the WasmPlugin matches the target's port");
    assert!(rendered.contains("http://httpbin.default:8000/status/200"), "the load Job calls the target");
    // The user's file as they wrote it: subsets, annotations and the VirtualService kept.
    let dr = std::fs::read_to_string(out.join("destinationrule.yaml")).unwrap();
    assert!(dr.ends_with(USER_RULES), "{dr}");
    // Agents decide for their own study only.
    let e = Command::new(env!("CARGO_BIN_EXE_sfr2l"))
        .current_dir(root())
        .args([
            "manifests",
            "--agents",
            "policies/s1/agents/thread-call/seed-1",
            "--rules",
            &r,
            "--study",
            "s2",
            "--out",
            &o,
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&e.stderr).contains("agents of study s1 cannot decide for study s2"), "{e:?}");
}
