//! The Kubernetes objects of the kustomize tree, typed to the fields it uses (unknown fields are
//! an error with their YAML path), with the value rules the API server applies to them.

use super::{check, Meta};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Plain {
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMap {
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
    pub spec: ServiceSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSpec {
    pub ports: Vec<ServicePort>,
    #[serde(default)]
    pub selector: Labels,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default)]
    pub name: Option<String>,
    pub port: i64,
    #[serde(default)]
    pub target_port: Option<i64>,
}

/// Deployment and Job share the pod template; `workload` tells them apart.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
    pub spec: WorkloadSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSpec {
    #[serde(default)]
    pub replicas: Option<i64>,
    #[serde(default)]
    pub selector: Option<Selector>,
    #[serde(default)]
    pub backoff_limit: Option<i64>,
    #[serde(default)]
    pub ttl_seconds_after_finished: Option<i64>,
    pub template: PodTemplate,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    pub match_labels: Labels,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodTemplate {
    pub metadata: TemplateMeta,
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMeta {
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub service_account_name: Option<String>,
    #[serde(default)]
    pub restart_policy: Option<String>,
    #[serde(default)]
    pub init_containers: Vec<Container>,
    pub containers: Vec<Container>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerPort {
    pub container_port: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    #[serde(default)]
    pub empty_dir: Option<BTreeMap<String, String>>,
}

fn port(v: i64, path: &str) -> Result<()> {
    check((1..=65535).contains(&v), path, format!("must be a port in 1..=65535 (got {v})"))
}

impl Service {
    pub fn validate(&self) -> Result<()> {
        check(!self.spec.ports.is_empty(), "spec.ports", "must not be empty".into())?;
        for (i, p) in self.spec.ports.iter().enumerate() {
            port(p.port, &format!("spec.ports[{i}].port"))?;
            if let Some(t) = p.target_port {
                port(t, &format!("spec.ports[{i}].targetPort"))?;
            }
        }
        Ok(())
    }
}

impl Workload {
    /// Labels of the pods this workload creates.
    pub fn pod_labels(&self) -> &Labels {
        &self.spec.template.metadata.labels
    }

    pub fn validate(&self) -> Result<()> {
        let s = &self.spec;
        if self.kind == "Deployment" {
            let sel = s.selector.as_ref().map(|s| &s.match_labels);
            let Some(sel) = sel else { return check(false, "spec.selector", "is required".into()) };
            let ok = !sel.is_empty() && sel.iter().all(|(k, v)| self.pod_labels().get(k) == Some(v));
            check(ok, "spec.selector.matchLabels", "must be non-empty and match spec.template.metadata.labels".into())?;
            check(s.backoff_limit.is_none(), "spec.backoffLimit", "is a Job field".into())?;
        } else {
            let rp = s.template.spec.restart_policy.as_deref();
            check(
                matches!(rp, Some("Never" | "OnFailure")),
                "spec.template.spec.restartPolicy",
                format!("a Job needs Never or OnFailure (got {rp:?})"),
            )?;
        }
        let pod = &s.template.spec;
        for (i, c) in pod.containers.iter().enumerate() {
            if c.args.first().map(String::as_str) == Some("load") && c.image.starts_with("fortio/") {
                fortio_run_headers(&c.args, &format!("spec.template.spec.containers[{i}].args"))?;
            }
        }
        check(!pod.containers.is_empty(), "spec.template.spec.containers", "must not be empty".into())?;
        let volumes: Vec<&str> = pod.volumes.iter().map(|v| v.name.as_str()).collect();
        for (list, cs) in [("initContainers", &pod.init_containers), ("containers", &pod.containers)] {
            for (i, c) in cs.iter().enumerate() {
                let at = format!("spec.template.spec.{list}[{i}]");
                check(!c.image.trim().is_empty(), &format!("{at}.image"), "must not be empty".into())?;
                super::dns_label(&c.name, &format!("{at}.name"))?;
                for (j, p) in c.ports.iter().enumerate() {
                    port(p.container_port, &format!("{at}.ports[{j}].containerPort"))?;
                }
                for (j, m) in c.volume_mounts.iter().enumerate() {
                    let path = format!("{at}.volumeMounts[{j}].name");
                    check(volumes.contains(&m.name.as_str()), &path, format!("no volume named {:?}", m.name))?;
                }
            }
        }
        Ok(())
    }
}

/// A fortio load run announces itself to the filter: `x-sfr2l-run`, and `x-sfr2l-threads` /
/// `x-sfr2l-calls` equal to `-c` / `-n` (the filter counts the run against them).
fn fortio_run_headers(args: &[String], path: &str) -> Result<()> {
    use sfr2l_core::artifact::header;
    let flag = |f: &str| args.iter().position(|a| a == f).and_then(|i| args.get(i + 1)).map(String::as_str);
    let headers: Vec<(&str, &str)> = args
        .windows(2)
        .filter(|w| w[0] == "-H")
        .filter_map(|w| w[1].split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
    check(get(header::RUN).is_some_and(|v| !v.is_empty()), path, format!("needs -H \"{}: <id>\"", header::RUN))?;
    for (h, f) in [(header::THREADS, "-c"), (header::CALLS, "-n")] {
        check(
            get(h).is_some() && get(h) == flag(f),
            path,
            format!("-H \"{h}\" must equal {f} (got {:?} and {:?})", get(h), flag(f)),
        )?;
    }
    Ok(())
}
