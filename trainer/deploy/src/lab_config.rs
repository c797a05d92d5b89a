//! The lab's rule and filter configuration from the manifest files: the DestinationRule gives the
//! rule, the WasmPlugin's `pluginConfig` the filter configuration (a kustomize folder is rendered
//! with `kubectl kustomize` first). Envoy cluster names in the configuration are istiod's
//! (`outbound|PORT||SERVICE.NS.svc.cluster.local`); the lab names its client cluster after the
//! study's target the same way, and a manifest's cluster of the target's service (in whatever
//! namespace and port the tree deploys it) is that cluster.

use crate::istio::{self, Object};
use anyhow::{bail, Context, Result};
use sfr2l_core::config::ConfigV1;
use sfr2l_core::study::Target;
use sfr2l_core::TrafficRule;
use sfr2l_lab::destination_rule::{self, Aim, ReadRule};
use sfr2l_lab::envoy;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct LabManifests {
    pub rule: TrafficRule,
    /// The WasmPlugin's configuration (observe defaults without one), with lab cluster names
    /// once [`LabManifests::for_lab`] mapped them.
    pub config: ConfigV1,
    /// What the rules set that the lab does not model, as YAML paths and notes
    /// ([`ReadRule::kept`]).
    pub kept: Vec<String>,
    /// The connect timeout and load balancer the lab renders from the rule.
    pub cluster: envoy::ClusterSettings,
}

/// The lab cluster for an Envoy cluster name in a sidecar's configuration, on a lab whose
/// study targets `target`.
pub fn lab_cluster(name: &str, target: &Target) -> Result<String> {
    let service = match name.strip_prefix("outbound|") {
        Some(rest) => {
            let host = rest.rsplit('|').next().unwrap_or("");
            host.split('.').next().unwrap_or("").to_string()
        }
        None => name.to_string(),
    };
    if service == target.service {
        Ok(target.cluster())
    } else if service == envoy::ARTIFACTS_CLUSTER {
        Ok(envoy::ARTIFACTS_CLUSTER.to_string())
    } else {
        bail!(
            "cluster {name:?}: the lab has only the study's target {} and {}",
            target.service,
            envoy::ARTIFACTS_CLUSTER
        )
    }
}

/// Reads a DestinationRule file, a YAML stream, or a kustomize folder, for a lab whose study
/// targets `target`.
pub fn read(path: &Path, target: &Target) -> Result<LabManifests> {
    load_for(path, Some(target))?.for_lab(target)
}

/// Reads and checks the manifests, keeping istiod's cluster names (see [`LabManifests::for_lab`]).
pub fn load(path: &Path) -> Result<LabManifests> {
    load_for(path, None)
}

/// Like [`load`], with the rule istiod gives `target`'s cluster: the DestinationRules for its
/// host merged, its port's and subset's policy in force ([`destination_rule::parse_for`]).
pub fn load_for(path: &Path, target: Option<&Target>) -> Result<LabManifests> {
    let (text, origin) = istio::text(path)?;
    from_text(&text, &origin, path, target)
}

/// [`load_for`] on the text [`istio::text`] gave for `path` (a folder rendered once).
pub fn from_text(text: &str, origin: &str, path: &Path, target: Option<&Target>) -> Result<LabManifests> {
    let objects = istio::parse_stream(text, origin)?;
    if path.is_dir() {
        istio::validate_set(&objects).with_context(|| origin.to_string())?;
    }
    let aim = target.map_or_else(Aim::default, |t| Aim {
        host: Some(&t.service),
        port: Some(t.port),
        subset: t.subset.as_deref(),
    });
    let ReadRule { rule, kept, cluster, .. } = destination_rule::parse_for(text, origin, aim)?;
    let plugins: Vec<&istio::WasmPlugin> =
        objects.iter().filter_map(|o| if let Object::WasmPlugin(w) = o { Some(w) } else { None }).collect();
    let mut config = match plugins[..] {
        [] => ConfigV1::default(),
        [w] => w.filter_config()?,
        _ => bail!("{}: {} WasmPlugins, expected at most one", path.display(), plugins.len()),
    };
    if config.rule.is_some_and(|r| r != rule) {
        bail!("{}: the WasmPlugin's pluginConfig.rule differs from the DestinationRule", path.display());
    }
    config.rule = Some(rule);
    Ok(LabManifests { rule, config, kept, cluster })
}

impl LabManifests {
    /// The configuration with the lab's cluster names, on a lab whose study targets `target`.
    pub fn for_lab(mut self, target: &Target) -> Result<LabManifests> {
        if let Some(m) = &mut self.config.models {
            m.cluster = lab_cluster(&m.cluster, target)?;
        }
        if let Some(l) = &mut self.config.loadtest {
            l.cluster = lab_cluster(&l.cluster, target)?;
            l.authority = format!("{}:{}", target.host(), target.port);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istiod_cluster_names_map_to_lab_clusters() {
        let target = sfr2l_files::study::find("s1").unwrap().study.target;
        let lab = "outbound|8000||httpbin.default.svc.cluster.local";
        assert_eq!(lab_cluster("outbound|8000||httpbin.sfr2l.svc.cluster.local", &target).unwrap(), lab);
        assert_eq!(
            lab_cluster("outbound|8080||sfr2l-artifacts.x.svc.cluster.local", &target).unwrap(),
            "sfr2l-artifacts"
        );
        assert_eq!(lab_cluster("httpbin", &target).unwrap(), lab);
        let e = lab_cluster("outbound|80||other.ns.svc.cluster.local", &target).unwrap_err().to_string();
        assert!(e.contains("only the study's target httpbin and sfr2l-artifacts"), "{e}");
    }
}
