//! `sfr2l manifests`: a kustomize overlay that rolls out a trained policy in load-test mode.
//! The overlay builds on `manifests/base` (the demo tree: httpbin in namespace `sfr2l`) or, for a
//! study's own target, on `manifests/client` alone in the target's namespace (the user's service
//! is already deployed); and on `manifests/artifacts`. Its WasmPlugin patch carries the plugin
//! configuration filled from the agents' cards and the DestinationRule, with every model pinned
//! by sha256, and the artifact server pulls one OCI artifact pinned by digest.

use crate::istio::{self, outbound_cluster, Object};
use crate::oci;
use anyhow::{bail, Context, Result};
use serde_json::json;
use sfr2l_core::artifact::header;
use sfr2l_core::config::{ConfigV1, LoadTestConfig, Mode};
use sfr2l_core::study::Target;
use sfr2l_core::IstioDuration;
use sfr2l_files::{sha256_hex, write_atomic};
use sfr2l_lab::destination_rule::{self, Aim};
use sfr2l_lab::loadtest;
use std::path::{Component, Path, PathBuf};

/// The namespace of the kustomize tree (`manifests/base/kustomization.yaml`).
pub const NAMESPACE: &str = "sfr2l";
pub const ARTIFACTS_SERVICE: &str = "sfr2l-artifacts";
pub const ARTIFACTS_PORT: i64 = 8080;
/// The filter's file name on the artifact server.
pub const WASM_FILE: &str = "sfr2l_filter.wasm";
pub const ARTIFACT_TYPE: &str = "application/vnd.sfr2l.artifacts.v1";

#[derive(Debug, Clone)]
pub struct RenderSettings {
    /// `policies/sN/agents/<configuration>/seed-S`.
    pub agents: PathBuf,
    /// The DestinationRule the agents decide for.
    pub rules: PathBuf,
    pub out: PathBuf,
    pub simulator: bool,
    /// The built filter, served by the artifact server and pinned in the WasmPlugin.
    pub wasm: Option<PathBuf>,
    /// Repository prefix the artifact is pushed under (`<registry>/artifacts@sha256:...`).
    pub registry: String,
    pub trigger: String,
    /// The `manifests/` folder (base and artifacts).
    pub tree: PathBuf,
    /// Where the artifact's OCI layout goes.
    pub oci_out: PathBuf,
    /// A study's own target (its service, namespace, port, subset and path): the overlay goes
    /// beside that service. `None`: the demo tree's httpbin in namespace `sfr2l`.
    pub target: Option<Target>,
}

/// The demo tree's target, as the tree itself names it: the URL its load Job calls
/// (`client/load-job.yaml`, the Service of `base/`), in the tree's namespace.
fn demo_target(tree: &Path) -> Result<Target> {
    let p = tree.join("client/load-job.yaml");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let job: serde_json::Value = serde_norway::from_str(&text).with_context(|| format!("{}: not YAML", p.display()))?;
    let url = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|u| u.as_str())
        .unwrap_or_default();
    let rest = url.strip_prefix("http://").unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (service, port) = authority.split_once(':').unwrap_or((authority, "80"));
    let port: u16 = port.parse().with_context(|| format!("{}: the load Job's URL {url:?} has no port", p.display()))?;
    if service.is_empty() || !path.starts_with('/') {
        bail!("{}: the load Job's last argument {url:?} is not http://SERVICE:PORT/PATH", p.display());
    }
    Ok(Target {
        service: service.into(),
        namespace: NAMESPACE.into(),
        port,
        subset: None,
        method: "GET".into(),
        path: path.into(),
        headers: Default::default(),
    })
}

impl RenderSettings {
    /// The target the load tests go to, and the namespace the overlay is in.
    pub fn target(&self) -> Result<Target> {
        match &self.target {
            Some(t) => Ok(t.clone()),
            None => demo_target(&self.tree),
        }
    }
}

#[derive(Debug)]
pub struct Rendered {
    pub config: ConfigV1,
    pub artifact: oci::Layout,
    pub artifact_ref: String,
    pub wasm_sha256: Option<String>,
}

/// `to` relative to `from` (both existing folders).
pub fn relative(from: &Path, to: &Path) -> Result<PathBuf> {
    let (from, to) = (from.canonicalize()?, to.canonicalize()?);
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel: PathBuf = a[common..].iter().map(|_| "..").collect();
    rel.extend(b[common..].iter());
    Ok(rel)
}

/// Drops nulls: in a merge patch a null deletes the key, and unset means the same to the filter.
fn strip_nulls(v: &mut serde_json::Value) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
        m.values_mut().for_each(strip_nulls);
    }
}

fn yaml(comment: &str, v: &serde_json::Value) -> Result<Vec<u8>> {
    Ok(format!("# {comment}\n{}", serde_norway::to_string(v)?).into_bytes())
}

/// The plugin configuration for the agents in `s.agents` and the rule in `s.rules`, with Envoy
/// cluster names as istiod gives them in the client sidecar.
pub fn plugin_config(s: &RenderSettings) -> Result<(ConfigV1, PathBuf)> {
    let t = s.target()?;
    let aim = Aim { host: Some(&t.service), port: Some(t.port), subset: t.subset.as_deref() };
    let rule = destination_rule::read_for(&s.rules, aim)?.rule;
    let root = loadtest::policies_root(&s.agents)
        .with_context(|| format!("{}: not under policies/sN/agents/<configuration>/seed-S", s.agents.display()))?;
    let models = loadtest::models_config(
        &root,
        &s.agents,
        s.simulator,
        &outbound_cluster(ARTIFACTS_SERVICE, &t.namespace, ARTIFACTS_PORT),
    )?;
    let loadtest = LoadTestConfig::new(t.cluster(), format!("{}:{}", t.host(), t.port), t.path.clone(), &s.trigger);
    let config = ConfigV1 {
        mode: Mode::LoadTest,
        rule: Some(rule),
        generation: 1,
        idle_timeout: IstioDuration::from_secs(2.0),
        models: Some(models),
        loadtest: Some(loadtest),
        ..ConfigV1::default()
    };
    ConfigV1::parse(config.to_json().as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((config, root.canonicalize()?))
}

pub fn render(s: &RenderSettings) -> Result<Rendered> {
    let (config, root) = plugin_config(s)?;
    let dr = istio::read_file(&s.rules)?
        .into_iter()
        .find_map(|o| if let Object::DestinationRule(d) = o { Some(d) } else { None })
        .with_context(|| format!("{}: no DestinationRule", s.rules.display()))?;

    // The artifact: every model the configuration names (by its served path) and the filter.
    let models = config
        .models
        .as_ref()
        .with_context(|| format!("{}: the plugin configuration names no models (`models`)", s.agents.display()))?;
    let mut files = Vec::new();
    for a in models.agents.values().chain(models.simulator.iter()) {
        let rel = a.path.trim_start_matches('/');
        let bytes = std::fs::read(root.join(rel)).with_context(|| format!("reading {rel} under {}", root.display()))?;
        files.push((rel.to_string(), bytes));
    }
    let wasm =
        s.wasm.as_ref().map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display()))).transpose()?;
    if let Some(w) = &wasm {
        if !w.starts_with(b"\0asm") {
            bail!("{}: not a Wasm module", s.wasm.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
        }
        files.push((WASM_FILE.to_string(), w.clone()));
    }
    files.sort();
    let artifact = oci::files_artifact(&files, &s.trigger, ARTIFACT_TYPE)?;
    artifact.write(&s.oci_out)?;
    let artifact_ref = format!("{}/artifacts@{}", s.registry.trim_end_matches('/'), artifact.manifest_digest());

    std::fs::create_dir_all(&s.out).with_context(|| format!("creating {}", s.out.display()))?;
    let header = format!("Rendered by `sfr2l manifests` from {} and {}.", s.agents.display(), s.rules.display());
    let rule = config
        .rule
        .with_context(|| format!("{}: the plugin configuration carries no rule (`rule`)", s.rules.display()))?;
    let t = s.target()?;
    // The demo tree gets the modelled rule; a study's target gets the user's own file as it is
    // (subsets, VirtualService and what else it keeps), which the configuration's rule was read
    // from as istiod reads it.
    let rules_text = match &s.target {
        None => destination_rule::render(&rule, &dr.name, &dr.host),
        Some(_) => std::fs::read_to_string(&s.rules).with_context(|| format!("reading {}", s.rules.display()))?,
    };
    write_atomic(&s.out.join("destinationrule.yaml"), format!("# {header}\n{rules_text}").as_bytes())?;
    let mut plugin_config: serde_json::Value = serde_json::from_str(&config.to_json())?;
    strip_nulls(&mut plugin_config);
    let mut spec = json!({ "pluginConfig": plugin_config });
    let wasm_sha256 = wasm.as_ref().map(|w| sha256_hex(w));
    if let Some(sha) = &wasm_sha256 {
        spec["url"] =
            json!(format!("http://{ARTIFACTS_SERVICE}.{}.svc.cluster.local:{ARTIFACTS_PORT}/{WASM_FILE}", t.namespace));
        spec["sha256"] = json!(sha);
    }
    let mut patches = vec!["wasmplugin.yaml", "artifacts.yaml"];
    if s.target.is_some() {
        // The filter runs where the client calls the target's port.
        spec["match"] = json!([{ "mode": "CLIENT", "ports": [{ "number": t.port }] }]);
        write_atomic(&s.out.join("load-job.yaml"), &yaml(&header, &load_job(&t, "job-1", 3, 30))?)?;
        patches.push("load-job.yaml");
    }
    let plugin = json!({
        "apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
        "metadata": {"name": "sfr2l-filter"}, "spec": spec,
    });
    write_atomic(&s.out.join("wasmplugin.yaml"), &yaml(&header, &plugin)?)?;
    let server = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": ARTIFACTS_SERVICE},
        "spec": {"template": {"spec": {"initContainers": [
            {"name": "pull", "env": [{"name": "SFR2L_ARTIFACTS", "value": artifact_ref}]}
        ]}}},
    });
    write_atomic(&s.out.join("artifacts.yaml"), &yaml(&header, &server)?)?;
    let base = if s.target.is_some() { "client" } else { "base" };
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": t.namespace,
        "bases": [relative(&s.out, &s.tree.join(base))?, relative(&s.out, &s.tree.join("artifacts"))?],
        "resources": ["destinationrule.yaml"],
        "patchesStrategicMerge": patches,
    });
    write_atomic(&s.out.join("kustomization.yaml"), &yaml(&header, &kustomization)?)?;
    Ok(Rendered { config, artifact, artifact_ref, wasm_sha256 })
}

/// fortio's arguments for one run against the target, announced to the filter by the run
/// headers (and the study's own headers); `json`: its result as JSON on stdout.
pub fn fortio_args(t: &Target, run: &str, threads: u32, calls: u32, json: bool) -> Vec<String> {
    let (c, n) = (threads.to_string(), calls.to_string());
    let mut args: Vec<String> = ["load", "-c", &c, "-n", &n, "-qps", "0"].iter().map(|a| a.to_string()).collect();
    if json {
        args.extend(["-json".to_string(), "-".to_string()]);
    }
    let headers = [(header::RUN, run), (header::THREADS, &c), (header::CALLS, &n)];
    for (k, v) in headers.iter().copied().chain(t.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        args.extend(["-H".to_string(), format!("{k}: {v}")]);
    }
    args.push(format!("http://{}.{}:{}{}", t.service, t.namespace, t.port, t.path));
    args
}

/// A patch of the client tree's load Job (`manifests/client/load-job.yaml`): one fortio run
/// against the target.
pub fn load_job(t: &Target, run: &str, threads: u32, calls: u32) -> serde_json::Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sfr2l-load-run"},
        "spec": {"template": {
            "metadata": {"labels": {"app": "fortio", "sfr2l-run": run}},
            "spec": {"containers": [{"name": "fortio", "args": fortio_args(t, run, threads, calls, false)}]},
        }},
    })
}
