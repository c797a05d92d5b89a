//! Typed Istio and Kubernetes objects of `manifests/` and of what `kubectl kustomize` renders
//! from it: every document is deserialised with unknown fields rejected, checked against the API's
//! value rules, and the set is checked as a whole (selectors, DestinationRule hosts, the filter's
//! Envoy cluster names as istiod names them). Errors name the file, the document and the YAML path.

pub mod k8s;
pub mod wasmplugin;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sfr2l_core::TrafficRule;
use sfr2l_lab::destination_rule;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

pub use wasmplugin::WasmPlugin;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A DestinationRule as the lab reads it: the modelled rule and the host it governs.
#[derive(Debug, Clone)]
pub struct DestinationRule {
    pub name: String,
    pub namespace: Option<String>,
    pub host: String,
    pub rule: TrafficRule,
}

#[derive(Debug, Clone)]
pub enum Object {
    Namespace(k8s::Plain),
    ServiceAccount(k8s::Plain),
    ConfigMap(k8s::ConfigMap),
    Service(k8s::Service),
    /// Deployment or Job.
    Workload(k8s::Workload),
    DestinationRule(DestinationRule),
    /// Read whole by the lab's reader; its routing is not modelled yet.
    VirtualService(VirtualService),
    WasmPlugin(WasmPlugin),
}

#[derive(Debug, Clone)]
pub struct VirtualService {
    pub name: String,
    pub hosts: Vec<String>,
}

pub(crate) fn check(ok: bool, path: &str, msg: String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        bail!("field {path}: {msg}")
    }
}

/// RFC 1123 label, as Kubernetes names of Services, containers and namespaces must be.
pub(crate) fn dns_label(v: &str, path: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    check(ok, path, format!("{v:?} is not a DNS-1123 label"))
}

fn typed<T: serde::de::DeserializeOwned>(v: serde_norway::Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        anyhow!("field {path}: {}", e.into_inner())
    })
}

fn api(v: &serde_norway::Value, want: &[&str]) -> Result<()> {
    let got = v.get("apiVersion").and_then(|a| a.as_str()).unwrap_or("");
    check(want.contains(&got), "apiVersion", format!("expected one of {want:?}, got {got:?}"))
}

/// One document: dispatched on `kind`, typed, and checked.
pub fn parse_value(v: serde_norway::Value) -> Result<Object> {
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("").to_string();
    let obj = match kind.as_str() {
        "Namespace" | "ServiceAccount" => {
            api(&v, &["v1"])?;
            let p: k8s::Plain = typed(v)?;
            dns_label(&p.metadata.name, "metadata.name")?;
            if kind == "Namespace" {
                Object::Namespace(p)
            } else {
                Object::ServiceAccount(p)
            }
        }
        "ConfigMap" => {
            api(&v, &["v1"])?;
            Object::ConfigMap(typed(v)?)
        }
        "Service" => {
            api(&v, &["v1"])?;
            let s: k8s::Service = typed(v)?;
            dns_label(&s.metadata.name, "metadata.name")?;
            s.validate()?;
            Object::Service(s)
        }
        "Deployment" | "Job" => {
            api(&v, &[if kind == "Job" { "batch/v1" } else { "apps/v1" }])?;
            let w: k8s::Workload = typed(v)?;
            dns_label(&w.metadata.name, "metadata.name")?;
            w.validate()?;
            Object::Workload(w)
        }
        "DestinationRule" => {
            let host = v.get("spec").and_then(|s| s.get("host")).and_then(|h| h.as_str()).unwrap_or("").to_string();
            // The reader checks the whole object (metadata as `kubectl get -o yaml` prints it).
            let text = serde_norway::to_string(&v)?;
            let rule = destination_rule::parse(&text, "DestinationRule")?;
            let meta = |k: &str| v.get("metadata").and_then(|m| m.get(k)).and_then(|x| x.as_str()).map(String::from);
            check(!host.is_empty(), "spec.host", "must not be empty".into())?;
            let name = meta("name").unwrap_or_default();
            Object::DestinationRule(DestinationRule { name, namespace: meta("namespace"), host, rule })
        }
        "VirtualService" => {
            let text = serde_norway::to_string(&v)?;
            let (name, hosts) = destination_rule::virtual_service(&text, "VirtualService")?;
            Object::VirtualService(VirtualService { name, hosts })
        }
        "WasmPlugin" => {
            api(&v, &["extensions.istio.io/v1alpha1"])?;
            let w: WasmPlugin = typed(v)?;
            w.validate()?;
            Object::WasmPlugin(w)
        }
        other => bail!("field kind: {other:?} is not a kind of this tree"),
    };
    Ok(obj)
}

/// Every document of a YAML stream (`---` separated), typed; `origin` names it in errors.
pub fn parse_stream(text: &str, origin: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = serde_norway::Value::deserialize(de).with_context(|| format!("{origin}: document {i}"))?;
        if v.is_null() {
            continue;
        }
        let name = v.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).unwrap_or("?");
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
        let what = format!("{origin}: document {i} ({kind} {name})");
        out.push(parse_value(v.clone()).with_context(|| what)?);
    }
    Ok(out)
}

pub fn read_file(path: &Path) -> Result<Vec<Object>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_stream(&text, &path.display().to_string())
}

/// `kubectl kustomize DIR` (offline: no cluster is contacted).
pub fn kustomize(dir: &Path) -> Result<String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .context("running kubectl (make setup installs it)")?;
    if !out.status.success() {
        bail!("kubectl kustomize {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A folder's text as kustomize renders it, a file's as it is, with the name errors give it.
pub fn text(path: &Path) -> Result<(String, String)> {
    if path.is_dir() {
        Ok((kustomize(path)?, format!("kubectl kustomize {}", path.display())))
    } else {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok((text, path.display().to_string()))
    }
}

/// A folder is rendered with kustomize and checked as a set, a file read as it is.
pub fn load(path: &Path) -> Result<Vec<Object>> {
    load_with(path, &Outside::default())
}

/// What a tree refers to that lives outside it: a study's own service, already deployed.
#[derive(Debug, Clone, Default)]
pub struct Outside {
    /// Service names (short) a DestinationRule may name as its host.
    pub hosts: Vec<String>,
    /// Envoy cluster names (istiod's) the filter may name.
    pub clusters: Vec<String>,
}

/// [`load`], with references to `outside` accepted.
pub fn load_with(path: &Path, outside: &Outside) -> Result<Vec<Object>> {
    let (text, origin) = text(path)?;
    let objects = parse_stream(&text, &origin)?;
    if path.is_dir() {
        validate_set_with(&objects, outside).with_context(|| origin)?;
    }
    Ok(objects)
}

/// The Envoy cluster istiod gives a Service port in a client sidecar (istiod's BuildSubsetKey).
pub use sfr2l_core::study::outbound_cluster;

/// Cross-object rules of a rendered tree: Services and the WasmPlugin select pods that exist,
/// DestinationRule hosts are Services, the filter's clusters are Service ports named as istiod does.
pub fn validate_set(objects: &[Object]) -> Result<()> {
    validate_set_with(objects, &Outside::default())
}

/// [`validate_set`], with references to `outside` accepted.
pub fn validate_set_with(objects: &[Object], outside: &Outside) -> Result<()> {
    let pods: Vec<&k8s::Labels> =
        objects.iter().filter_map(|o| if let Object::Workload(w) = o { Some(w.pod_labels()) } else { None }).collect();
    let selects = |sel: &k8s::Labels| pods.iter().any(|p| sel.iter().all(|(k, v)| p.get(k) == Some(v)));
    let services: Vec<&k8s::Service> =
        objects.iter().filter_map(|o| if let Object::Service(s) = o { Some(s) } else { None }).collect();
    let mut clusters = outside.clusters.clone();
    for s in &services {
        check(selects(&s.spec.selector), "spec.selector", format!("Service {} selects no pod", s.metadata.name))?;
        let ns = s.metadata.namespace.as_deref().unwrap_or("default");
        clusters.extend(s.spec.ports.iter().map(|p| outbound_cluster(&s.metadata.name, ns, p.port)));
    }
    for o in objects {
        match o {
            Object::DestinationRule(d) => {
                let ns = d.namespace.as_deref().unwrap_or("default");
                let short = d.host.split('.').next().unwrap_or("");
                let known = outside.hosts.iter().any(|h| h == short)
                    || services.iter().any(|s| {
                        let sns = s.metadata.namespace.as_deref().unwrap_or("default");
                        d.host == s.metadata.name || d.host == format!("{}.{sns}.svc.cluster.local", s.metadata.name)
                    });
                check(
                    known,
                    "spec.host",
                    format!("DestinationRule {} (namespace {ns}): no Service {}", d.name, d.host),
                )?;
            }
            Object::WasmPlugin(w) => {
                if let Some(sel) = &w.spec.selector {
                    check(selects(&sel.match_labels), "spec.selector", "selects no pod".into())?;
                }
                let c = w.filter_config()?;
                let named = c.models.iter().map(|m| ("models.cluster", &m.cluster));
                for (field, cluster) in named.chain(c.loadtest.iter().map(|l| ("loadtest.cluster", &l.cluster))) {
                    check(
                        clusters.contains(cluster),
                        &format!("spec.pluginConfig.{field}"),
                        format!("{cluster:?} is no Service port's cluster as istiod names it (one of {clusters:?})"),
                    )?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
