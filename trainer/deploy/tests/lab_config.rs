//! The lab runs from the manifest files: a kustomize overlay (rendered by `kubectl kustomize`)
//! gives the rule and the filter configuration, and the client Envoy's live configuration
//! (admin `/config_dump`) carries exactly the DestinationRule's numbers and the WasmPlugin's
//! pluginConfig; an edit of the overlay's files shows up in Envoy after the next apply; the
//! rendered load-test overlay runs its inline load test in the lab's sidecar.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use serde_json::Value;
use sfr2l_core::config::ConfigV1;
use sfr2l_deploy::lab_config;
use sfr2l_lab::admin;
use sfr2l_tests::{repo_root, start_lab_with, topology};
use std::path::Path;

/// Every object in `v` (depth first) for which `pred` holds.
fn find<'a>(v: &'a Value, pred: &dyn Fn(&Value) -> bool, out: &mut Vec<&'a Value>) {
    if pred(v) {
        out.push(v);
    }
    match v {
        Value::Object(m) => m.values().for_each(|x| find(x, pred, out)),
        Value::Array(a) => a.iter().for_each(|x| find(x, pred, out)),
        _ => {}
    }
}

/// (cluster thresholds and outlier detection of the target's cluster, filter configuration) from Envoy.
fn live(port: u16) -> (Value, Value, ConfigV1) {
    let dump: Value = serde_json::from_str(&admin::get(port, "/config_dump").unwrap()).unwrap();
    let mut clusters = Vec::new();
    find(
        &dump,
        &|v| {
            v.get("name") == Some(&Value::from(sfr2l_tests::target().cluster())) && v.get("circuit_breakers").is_some()
        },
        &mut clusters,
    );
    let c = clusters.first().expect("the target's cluster in config_dump");
    let mut filters = Vec::new();
    find(&dump, &|v| v.get("root_id") == Some(&Value::from("sfr2l")) && v.get("configuration").is_some(), &mut filters);
    let json = filters.first().expect("sfr2l filter in config_dump")["configuration"]["value"].as_str().unwrap();
    (
        c["circuit_breakers"]["thresholds"][0].clone(),
        c["outlier_detection"].clone(),
        ConfigV1::parse(json.as_bytes()).unwrap(),
    )
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dst = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).unwrap();
        }
    }
}

#[test]
fn the_lab_envoy_configuration_comes_from_the_overlay() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("manifests");
    copy_tree(&repo_root().join("manifests"), &tree);
    let overlay = tree.join("overlays/s3");
    let (mut lab, _dir) = start_lab_with(22400, topology(2, 0, 0.0, 0), Some(repo_root().join("policies")));
    let port = lab.ports.client_admin;

    let check = |lab: &mut sfr2l_lab::Lab, conns: u64, pending: u64, window: f64| {
        let m = lab_config::read(&overlay, &lab.opts.target).unwrap();
        lab.apply_filter_config(&m.rule, m.config.clone()).unwrap();
        let (thresholds, outlier, filter) = live(port);
        assert_eq!(thresholds["max_connections"], conns, "{thresholds}");
        assert_eq!(thresholds["max_pending_requests"], pending, "{thresholds}");
        assert_eq!(outlier["consecutive_5xx"], 6, "{outlier}");
        assert_eq!(outlier["max_ejection_percent"], 6, "{outlier}");
        assert_eq!(filter.rule, Some(m.rule));
        assert_eq!(filter.window.secs(), window);
        // Everything but what the lab owns (generation, idle timeout) is the WasmPlugin's.
        let expect = ConfigV1 { generation: filter.generation, idle_timeout: filter.idle_timeout, ..m.config };
        assert_eq!(filter.to_json(), expect.to_json());
    };
    check(&mut lab, 3, 15, 10.0);

    // Edit the files (rule in the DestinationRule and the WasmPlugin patch, and a filter
    // setting): the next apply reaches Envoy with the new values.
    let edit = |file: &str, from: &str, to: &str| {
        let p = overlay.join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{file}: {from}");
        std::fs::write(&p, text.replace(from, to)).unwrap();
    };
    edit("destinationrule.yaml", "maxConnections: 3", "maxConnections: 5");
    edit("destinationrule.yaml", "http1MaxPendingRequests: 15", "http1MaxPendingRequests: 11");
    edit("wasmplugin.yaml", "max_connections: 3", "max_connections: 5");
    edit("wasmplugin.yaml", "max_pending_requests: 15", "max_pending_requests: 11");
    edit("wasmplugin.yaml", "  pluginConfig:\n", "  pluginConfig:\n    window: 20s\n");
    check(&mut lab, 5, 11, 20.0);

    // A WasmPlugin rule that disagrees with the DestinationRule is refused before Envoy sees it.
    edit("wasmplugin.yaml", "max_connections: 5", "max_connections: 6");
    let e = format!("{:#}", lab_config::read(&overlay, &lab.opts.target).unwrap_err());
    assert!(e.contains("differs from the DestinationRule"), "{e}");

    // The rendered load-test overlay: istiod's cluster names mapped to the lab's, models fetched
    // from the lab's artifact server by the pinned paths, the decision and the load in the sidecar.
    let m = lab_config::read(&tree.join("overlays/s1-loadtest"), &lab.opts.target).unwrap();
    let lt = m.config.loadtest.clone().unwrap();
    let offset = sfr2l_lab::loadtest::log_offset(&lab);
    lab.apply_filter_config(&m.rule, m.config.clone()).unwrap();
    let t0 = std::time::Instant::now();
    let rec = loop {
        let found = sfr2l_lab::loadtest::records_since(&lab, offset)
            .unwrap()
            .into_iter()
            .find(|r| r.inline.as_ref().is_some_and(|i| i.slot == lt.trigger));
        if let Some(r) = found {
            break r;
        }
        assert!(t0.elapsed().as_secs() < 90, "no inline record for {}", lt.trigger);
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let i = rec.inline.as_ref().unwrap();
    assert_eq!((i.profile.as_str(), i.configuration.as_str()), ("s1", "thread-call"), "{}", rec.to_log_line());
    assert_eq!(i.steps.len(), 2);
    assert!(rec.responses > 0 && i.predicted.is_some(), "{}", rec.to_log_line());
    eprintln!("inline test from the overlay: {}", rec.to_log_line());
}
