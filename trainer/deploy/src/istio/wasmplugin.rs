//! Istio's `WasmPlugin` (extensions.istio.io/v1alpha1), typed to the API's fields and enums. The
//! `pluginConfig` must be a filter configuration ([`ConfigV1`]): istiod hands it to the filter as
//! a JSON string, and `pluginName` becomes Envoy's `root_id`.

use super::{check, k8s::Labels, Meta};
use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use sfr2l_core::config::ConfigV1;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WasmPlugin {
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
    pub spec: Spec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_strategy: Option<FailStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub plugin_type: Option<PluginType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "match")]
    pub matches: Vec<TrafficSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_config: Option<VmConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    pub match_labels: Labels,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum PullPolicy {
    #[serde(rename = "UNSPECIFIED_POLICY")]
    Unspecified,
    IfNotPresent,
    Always,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    UnspecifiedPhase,
    Authn,
    Authz,
    Stats,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailStrategy {
    FailClose,
    FailOpen,
    FailReload,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PluginType {
    UnspecifiedPluginType,
    Http,
    Network,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadMode {
    Undefined,
    Client,
    Server,
    ClientAndServer,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSelector>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortSelector {
    pub number: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub value_from: Option<String>,
}

impl WasmPlugin {
    /// The filter configuration, parsed as the filter parses it (from the JSON istiod sends).
    pub fn filter_config(&self) -> Result<ConfigV1> {
        let v = self.spec.plugin_config.clone().unwrap_or(serde_json::json!({}));
        let json = serde_json::to_vec(&v)?;
        ConfigV1::parse(&json).map_err(|e| anyhow!("field spec.pluginConfig: {e}"))
    }

    /// istio/api's rules (wasm.proto and its validation in istio/istio pkg/config/validation).
    pub fn validate(&self) -> Result<()> {
        let s = &self.spec;
        let scheme = s.url.split_once("://").map(|(a, _)| a);
        check(
            matches!(scheme, None | Some("oci" | "file" | "http" | "https")) && !s.url.trim().is_empty(),
            "spec.url",
            format!("must be oci://, file://, http:// or https:// (got {:?})", s.url),
        )?;
        if let Some(h) = &s.sha256 {
            let ok = h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            check(ok, "spec.sha256", format!("must be 64 lower-case hex digits (got {h:?})"))?;
        }
        if let Some(sel) = &s.selector {
            check(!sel.match_labels.is_empty(), "spec.selector.matchLabels", "must not be empty".into())?;
        }
        let name = s.plugin_name.as_deref().unwrap_or("");
        check(!name.is_empty(), "spec.pluginName", "must name the filter's root_id".into())?;
        for (i, m) in s.matches.iter().enumerate() {
            for (j, p) in m.ports.iter().enumerate() {
                let ok = (1..=65535).contains(&p.number);
                check(
                    ok,
                    &format!("spec.match[{i}].ports[{j}].number"),
                    format!("must be in 1..=65535 (got {})", p.number),
                )?;
            }
        }
        for (i, e) in s.vm_config.iter().flat_map(|v| v.env.iter()).enumerate() {
            let from = e.value_from.as_deref().unwrap_or("INLINE");
            let at = format!("spec.vmConfig.env[{i}]");
            check(
                matches!(from, "INLINE" | "HOST"),
                &format!("{at}.valueFrom"),
                format!("INLINE or HOST (got {from})"),
            )?;
            check(!(from == "HOST" && e.value.is_some()), &format!("{at}.value"), "must be empty with HOST".into())?;
        }
        self.filter_config().map(|_| ())
    }
}
