//! `sfr2l lab apply` with a rule as users run it (a Bookinfo-style `reviews` DestinationRule with
//! annotations, a load balancer, a connect timeout, HTTP/2 and retry limits, a subset and
//! port-level settings), aimed at the lab's target: the rule the target's
//! cluster gets is the one istiod picks (host, then the port's `portLevelSettings` entry, whose
//! blocks replace the top-level ones whole), measured in the client Envoy's own `/clusters`, and
//! every field the lab does not model is listed. Then Istio's own samples: Bookinfo's rules and the
//! circuit-breaking task's.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BASE_PORT: u16 = 22460;
const CLUSTER: &str = "outbound|8000||httpbin.default.svc.cluster.local";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sfr2l"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Stops the lab when the test ends, also on failure.
struct LabGuard(PathBuf);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = bin().args(["lab", "down", "--dir"]).arg(&self.0).current_dir(root()).output();
    }
}

fn reviews(port: u16) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
  annotations: {{owner: team-reviews}}
spec:
  host: httpbin
  trafficPolicy:
    loadBalancer: {{simple: LEAST_REQUEST}}
    connectionPool:
      tcp: {{maxConnections: 4, connectTimeout: 250ms}}
      http: {{http1MaxPendingRequests: 2, http2MaxRequests: 100, maxRetries: 3}}
    outlierDetection: {{consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 1m}}
    portLevelSettings:
    - port: {{number: {port}}}
      connectionPool: {{tcp: {{maxConnections: 6}}}}
  subsets:
  - name: v1
    labels: {{version: v1}}
    trafficPolicy: {{connectionPool: {{tcp: {{maxConnections: 1}}}}}}
"#
    )
}

fn apply(lab: &Path, file: &Path) -> Output {
    bin().args(["lab", "apply", "--dir"]).arg(lab).arg(file).current_dir(root()).output().unwrap()
}

/// The target cluster's default-priority circuit-breaker thresholds, from the client Envoy.
fn thresholds() -> (String, String) {
    let body = sfr2l_lab::admin::get(BASE_PORT, "/clusters").unwrap();
    let get = |name: &str| {
        let key = format!("{CLUSTER}::default_priority::{name}::");
        body.lines().find_map(|l| l.strip_prefix(&key)).unwrap_or_else(|| panic!("{key} in /clusters")).to_string()
    };
    (get("max_connections"), get("max_pending_requests"))
}

/// A field of the target's cluster in the client Envoy's config dump.
fn cluster_field(name: &str) -> String {
    let dump = sfr2l_lab::admin::get(BASE_PORT, "/config_dump?resource=dynamic_active_clusters").unwrap();
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let c = v["configs"].as_array().unwrap().iter().find(|c| c["cluster"]["name"] == CLUSTER).unwrap();
    c["cluster"][name].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_users_rule_is_applied_as_istiod_picks_it_and_the_rest_is_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = tmp.path().join("lab");
    let up = bin()
        .args(["lab", "up", "--profile", "s1", "--base-port", &BASE_PORT.to_string(), "--dir"])
        .arg(&lab)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(up.status.success(), "lab up: {}", String::from_utf8_lossy(&up.stderr));
    let _guard = LabGuard(lab.clone());

    // Port-level settings for another port: the top-level policy is in force.
    let other = tmp.path().join("reviews-9080.yaml");
    std::fs::write(&other, reviews(9080)).unwrap();
    let out = apply(&lab, &other);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        thresholds(),
        ("4".to_string(), "2".to_string()),
        "the subset's and the other port's pools do not apply"
    );
    // The connect timeout and the balancer are honoured (rendered as istiod does), not listed.
    assert!(!err.contains("loadBalancer") && !err.contains("connectTimeout"), "{err}");
    assert_eq!(
        (cluster_field("connect_timeout"), cluster_field("lb_policy")),
        ("0.250s".into(), "LEAST_REQUEST".into())
    );
    for kept in [
        "metadata.annotations",
        "spec.subsets",
        "spec.trafficPolicy.connectionPool.http.http2MaxRequests",
        "spec.trafficPolicy.connectionPool.http.maxRetries",
        "spec.trafficPolicy.portLevelSettings",
    ] {
        assert!(err.contains(&format!("kept, not modelled: {kept}\n")), "{kept} listed: {err}");
    }

    // The target's port has an entry: its pool replaces the top-level one whole (no http block:
    // pending requests unlimited, as istiod renders an unset limit).
    let mine = tmp.path().join("reviews-8000.yaml");
    std::fs::write(&mine, reviews(8000)).unwrap();
    let out = apply(&lab, &mine);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(thresholds(), ("6".to_string(), u32::MAX.to_string()));
    assert!(err.contains("entry 0 (port 8000) is the policy in force"), "{err}");
    // The entry's pool replaced the top level's whole, connect timeout included: the mesh's 10s.
    assert_eq!(cluster_field("connect_timeout"), "10s");
    // The client sidecar's config dump, read as `mesh collect` reads a cluster's.
    let dump = sfr2l_lab::admin::get(BASE_PORT, "/config_dump?resource=dynamic_active_clusters").unwrap();
    assert_eq!(sfr2l_deploy::mesh::backend::cluster_limits(&dump, CLUSTER).unwrap(), Some((6, u64::from(u32::MAX))));

    // Istio's own samples, aimed at the lab's target (the host renamed, nothing else): Bookinfo's
    // four rules set subsets only, so the target's cluster gets istiod's defaults.
    let bookinfo = root().join("trainer/lab/tests/data/bookinfo/destination-rule-all.yaml");
    let all = tmp.path().join("destination-rule-all.yaml");
    std::fs::write(&all, std::fs::read_to_string(bookinfo).unwrap().replace("host: reviews", "host: httpbin")).unwrap();
    let out = apply(&lab, &all);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(thresholds(), (u32::MAX.to_string(), u32::MAX.to_string()));
    assert!(err.contains("kept, not modelled: document 2 (line 12) spec.subsets\n"), "{err}");
    // Bookinfo's reviews rule balances at random.
    let bookinfo = root().join("trainer/lab/tests/data/bookinfo/destination-rule-reviews.yaml");
    let random = tmp.path().join("destination-rule-reviews.yaml");
    std::fs::write(&random, std::fs::read_to_string(bookinfo).unwrap().replace("host: reviews", "host: httpbin"))
        .unwrap();
    let out = apply(&lab, &random);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((cluster_field("lb_policy"), cluster_field("connect_timeout")), ("RANDOM".into(), "10s".into()));
    // istio.io's circuit-breaking task, as the overlay ships it.
    let out = apply(&lab, &root().join("manifests/overlays/istio-task"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(thresholds(), ("1".to_string(), "1".to_string()));
}
