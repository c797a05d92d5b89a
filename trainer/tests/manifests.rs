//! The Istio manifests are the same files the lab reads: every DestinationRule parses, each
//! profile preset lies in its profile's ranges, and the WasmPlugin's pluginConfig is a valid
//! filter configuration.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use sfr2l::destination_rule;
use sfr2l_core::config::ConfigV1;
use sfr2l_core::profile::{Profile, PROFILE_IDS};
use sfr2l_core::LoadSetting;
use std::path::PathBuf;

fn manifests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

#[test]
fn profile_presets_parse_and_lie_in_their_ranges() {
    for id in PROFILE_IDS {
        let path = manifests().join(format!("destinationrule-{id}.yaml"));
        let rule = destination_rule::read(&path).unwrap();
        let p = Profile::get(id);
        let load = LoadSetting { threads: p.threads.lo, calls: p.calls.lo };
        p.check(&rule, &load).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn wasmplugin_config_is_a_valid_filter_config() {
    let text = std::fs::read_to_string(manifests().join("wasmplugin.yaml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let cfg = serde_json::to_vec(&doc["spec"]["pluginConfig"]).unwrap();
    let c = ConfigV1::parse(&cfg).unwrap();
    let task = destination_rule::read(&manifests().join("destinationrule-istio-task.yaml")).unwrap();
    assert_eq!(c.rule, Some(task), "the WasmPlugin's rule should match the task's DestinationRule");
}
