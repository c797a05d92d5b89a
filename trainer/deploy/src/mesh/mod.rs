//! Collection in a user's cluster. [`row_objects`] renders what one row puts in force (the
//! study's DestinationRule, the same rule in the WasmPlugin's `pluginConfig` with the row's
//! generation, and the load Job announcing the run); [`plan`] writes every row of a collection
//! as a kustomize folder validated offline; [`kubectl`] is the thin layer over the cluster and
//! [`backend`] the collection backend (`mesh collect`) over it, which shares the collection loop
//! with the lab.

pub mod backend;
pub mod kubectl;
pub mod plan;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use sfr2l_core::config::{ConfigV1, Mode};
use sfr2l_core::study::Study;
use sfr2l_core::{IstioDuration, LoadSetting, TrafficRule};
use sfr2l_lab::destination_rule;
use std::path::Path;

/// The WasmPlugin's and the load Job's names in `manifests/client`.
pub const PLUGIN: &str = "sfr2l-filter";
pub const JOB: &str = "sfr2l-load-run";

/// The filter's configuration for a row: observe mode, the rule and the generation.
pub fn filter_config(rule: &TrafficRule, generation: u64) -> ConfigV1 {
    ConfigV1 {
        mode: Mode::Observe,
        rule: Some(*rule),
        generation,
        idle_timeout: IstioDuration::from_secs(2.0),
        ..ConfigV1::default()
    }
}

fn client_doc(tree: &Path, name: &str) -> Result<Value> {
    let p = tree.join("client").join(name);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("{}: not YAML", p.display()))
}

/// The Job of one run, `manifests/client/load-job.yaml` aimed at the study's target: its own name
/// per run (no delete between rows), the run headers, fortio's JSON result on stdout.
pub fn load_job(tree: &Path, study: &Study, run_id: &str, load: LoadSetting) -> Result<Value> {
    let mut job = client_doc(tree, "load-job.yaml")?;
    let args = crate::manifests::fortio_args(&study.target, run_id, load.threads, load.calls, true);
    job["metadata"]["name"] = json!(format!("{JOB}-{}", kube_name(run_id)));
    job["spec"]["template"]["metadata"]["labels"]["sfr2l-run"] = json!(kube_name(run_id));
    job["spec"]["template"]["spec"]["containers"][0]["args"] = json!(args);
    Ok(job)
}

/// A run id as a Kubernetes name or label value: lower case, `[a-z0-9-]`, at most 52 characters
/// (a Job name leaves room for its pods' suffixes).
pub fn kube_name(s: &str) -> String {
    let v: String =
        s.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    v.chars().take(52).collect::<String>().trim_matches('-').to_string()
}

/// The WasmPlugin of a row: the client tree's, matching the target's port, with the row's
/// configuration.
pub fn wasm_plugin(tree: &Path, study: &Study, config: &ConfigV1) -> Result<Value> {
    let mut w = client_doc(tree, "wasmplugin.yaml")?;
    let mut pc: Value = serde_json::from_str(&config.to_json())?;
    if let Some(m) = pc.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    w["spec"]["pluginConfig"] = pc;
    w["spec"]["match"] = json!([{ "mode": "CLIENT", "ports": [{ "number": study.target.port }] }]);
    Ok(w)
}

/// What one row puts in force, as YAML documents: the DestinationRule (the study's fields only,
/// as `lab collect` renders them), the WasmPlugin with the same rule, and the run's Job.
pub fn row_objects(
    tree: &Path,
    study: &Study,
    rule: &TrafficRule,
    generation: u64,
    run_id: &str,
    load: LoadSetting,
) -> Result<String> {
    let t = &study.target;
    let job = load_job(tree, study, run_id, load)?;
    Ok(format!(
        "{}---\n{}",
        rule_objects(tree, study, rule, generation)?,
        serde_norway::to_string(&with_ns(job, &t.namespace))?
    ))
}

/// What puts a rule in force: the DestinationRule (the study's fields only, as `lab collect`
/// renders them) and the WasmPlugin with the same rule and `generation`, in the target's
/// namespace.
pub fn rule_objects(tree: &Path, study: &Study, rule: &TrafficRule, generation: u64) -> Result<String> {
    let t = &study.target;
    let dr = destination_rule::render_fields(rule, &t.service, &t.service, &study.inputs());
    let plugin = wasm_plugin(tree, study, &filter_config(rule, generation))?;
    Ok(format!(
        "{}---\n{}",
        with_namespace(&dr, &t.namespace)?,
        serde_norway::to_string(&with_ns(plugin, &t.namespace))?
    ))
}

fn with_ns(mut v: Value, ns: &str) -> Value {
    v["metadata"]["namespace"] = json!(ns);
    v
}

fn with_namespace(yaml: &str, ns: &str) -> Result<String> {
    let v: Value = serde_norway::from_str(yaml)?;
    Ok(serde_norway::to_string(&with_ns(v, ns))?)
}
