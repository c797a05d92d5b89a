//! Studies: what sfr2l is asked to find about one service. A study names the target (how the
//! mesh and the lab address it), the DestinationRule fields that vary and their ranges (taken
//! from the attribute catalogue, [`crate::feature`]), the load ranges and the agents' action
//! grids, the objective, the lab's upstream and its failure modes, and the collection plan.
//!
//! Studies are files (`studies/<name>.yaml`, [`file::StudyFile`]); this module holds the checked
//! form every stage works from. The paper's datasets S1-S5 ship as `studies/s1.yaml` ...

use crate::duration::IstioDuration;
use crate::failure::Failure;
use crate::feature::{Feature, FEATURES, N_FEATURES, RULE_FEATURES};
use crate::inputs::Inputs;
use crate::rule::{LoadSetting, TrafficRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod file;
mod lab;

pub use file::{StudyError, StudyFile};
pub use lab::{BadMode, Capacity, LabTopology, Places, Quota, Ready, Upstream, UpstreamAsset, PLACEHOLDERS};

/// The schema a study file declares (`apiVersion`).
pub const API_VERSION: &str = "sfr2l/v1";
/// Its `kind`.
pub const KIND: &str = "Study";

/// Whether `s` can name a study: a Kubernetes DNS label (RFC 1123), since the name is also a
/// file and folder name.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An inclusive integer range drawn uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub lo: u32,
    pub hi: u32,
}

impl Span {
    pub const fn new(lo: u32, hi: u32) -> Self {
        Self { lo, hi }
    }
    pub const fn fixed(v: u32) -> Self {
        Self { lo: v, hi: v }
    }
    pub fn contains(&self, v: u32) -> bool {
        self.lo <= v && v <= self.hi
    }
    /// Maps a uniform draw `u` in [0, 1) onto the range.
    pub fn pick(&self, u: f64) -> u32 {
        let n = (self.hi - self.lo + 1) as f64;
        self.lo + ((u * n).floor() as u32).min(self.hi - self.lo)
    }
}

/// An action grid (the paper's Table 6): values `lo, lo+step, ..., hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    pub lo: u32,
    pub hi: u32,
    pub step: u32,
}

impl Grid {
    pub fn values(&self) -> Vec<u32> {
        (self.lo..=self.hi).step_by(self.step.max(1) as usize).collect()
    }
}

/// The service under study, as the mesh and the lab address it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    /// Kubernetes service name (the DestinationRule's `host`).
    pub service: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Service port.
    pub port: u16,
    /// A subset of the service's DestinationRule (`v1`): its own traffic policy merged in, and
    /// its own cluster in the client sidecar. Unset: the service's default cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Method and path of every load-test call, and extra request headers.
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Target {
    /// The service's name in the mesh: `SERVICE.NAMESPACE.svc.cluster.local`.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.namespace)
    }

    /// The client sidecar's Envoy cluster for the service's port (and subset), named as istiod
    /// names it (`outbound|PORT|SUBSET|HOST`: istio/istio `pilot/pkg/model/service.go`,
    /// `BuildSubsetKey`, direction `outbound`). The lab's client cluster has the same name.
    pub fn cluster(&self) -> String {
        let c = outbound_cluster(&self.service, &self.namespace, self.port);
        match &self.subset {
            Some(s) => c.replacen("||", &format!("|{s}|"), 1),
            None => c,
        }
    }
}

/// istiod's outbound cluster name of `service.namespace` at `port` (see [`Target::cluster`]); the
/// port as the caller holds it (a study's u16, a Kubernetes Service's int32).
pub fn outbound_cluster(service: &str, namespace: &str, port: impl std::fmt::Display) -> String {
    format!("outbound|{port}||{service}.{namespace}.svc.cluster.local")
}

fn default_namespace() -> String {
    "default".into()
}
fn default_method() -> String {
    "GET".into()
}

/// Whether the agents look for the load that breaks the service most or least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Search {
    #[default]
    Worst,
    Best,
}

/// What counts as failure and which way the search goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Objective {
    /// Response codes that count as failure.
    #[serde(default = "default_failure_codes")]
    pub failure_codes: Vec<u16>,
    #[serde(default)]
    pub search: Search,
}

impl Default for Objective {
    fn default() -> Self {
        Self { failure_codes: default_failure_codes(), search: Search::Worst }
    }
}

fn default_failure_codes() -> Vec<u16> {
    vec![503]
}

/// How many rows a collection takes and how they are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    pub rows: u32,
    pub seed: u64,
    /// Repeat block: `configs` rule-and-load draws, each run `times` times (the noise floor).
    pub repeats: Option<(u32, u32)>,
}

/// One varying or fixed DestinationRule attribute of a study, in its catalogue unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub feature: Feature,
    pub lo: f64,
    pub hi: f64,
}

impl Attribute {
    pub fn is_fixed(&self) -> bool {
        self.lo == self.hi
    }
}

/// A checked study: every stage (collect, fit, learn, export, validate, advise) works from this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    /// The study's name: file stem, dataset and policy folder name, card field `profile`.
    pub name: String,
    pub description: String,
    pub target: Target,
    /// The rule attributes, in catalogue (feature) order.
    pub attributes: Vec<Attribute>,
    pub threads: Span,
    pub calls: Span,
    pub thread_grid: Grid,
    pub call_grid: Grid,
    pub objective: Objective,
    /// Hosts and failure modes of the lab's upstream side.
    pub lab: LabTopology,
    /// The application behind the server sidecars.
    pub upstream: Upstream,
    /// Workers of the server-side Envoy.
    pub upstream_workers: u32,
    pub collection: Collection,
}

impl Study {
    /// Parses and checks a study from its text (YAML is a superset of JSON; the trainer reads
    /// YAML files through [`StudyFile`], core's own tests and the explorer use JSON).
    pub fn from_json(text: &str) -> Result<Study, StudyError> {
        let file: StudyFile = serde_json::from_str(text).map_err(|e| StudyError::at("", e.to_string()))?;
        file.check()
    }

    fn attribute(&self, f: Feature) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.feature == f)
    }

    /// The inputs of this study's models: the attributes it lists (varying or fixed), in
    /// catalogue order, then threads and calls.
    pub fn inputs(&self) -> Inputs {
        // A checked study lists them in catalogue order, once each: `ordered` keeps that order.
        Inputs::ordered(self.attributes.iter().map(|a| a.feature))
    }

    /// The rule in force for the fields the study does not list: what istiod renders when a
    /// DestinationRule leaves them unset ([`TrafficRule::unset`]; the rule has an
    /// `outlierDetection` block when the study lists any outlier field).
    pub fn base_rule(&self) -> TrafficRule {
        self.inputs().unset_rule()
    }

    /// The closed range `(lo, hi)` a feature takes in this study, in the feature's unit (an
    /// unlisted field is held at its [`Study::base_rule`] value).
    pub fn feature_range(&self, f: Feature) -> (f64, f64) {
        let span = |s: Span| (f64::from(s.lo), f64::from(s.hi));
        match f {
            Feature::Threads => span(self.threads),
            Feature::Calls => span(self.calls),
            _ => self.attribute(f).map_or_else(
                || {
                    let v = self.base_rule().get(f);
                    (v, v)
                },
                |a| (a.lo, a.hi),
            ),
        }
    }

    /// The columns of this study's dataset: its inputs and its failure rate.
    pub fn columns(&self) -> crate::columns::Columns {
        crate::columns::Columns { inputs: self.inputs(), failure: self.failure() }
    }

    /// The response codes that count as failure (a checked study's are valid).
    pub fn failure(&self) -> Failure {
        Failure::new(&self.objective.failure_codes).unwrap_or_default()
    }

    /// The ranges of the study's inputs, in input order.
    pub fn input_ranges(&self) -> Vec<(f64, f64)> {
        self.inputs().features().iter().map(|f| self.feature_range(*f)).collect()
    }

    /// The ranges of all features, in feature order.
    pub fn ranges(&self) -> [(f64, f64); N_FEATURES] {
        FEATURES.map(|f| self.feature_range(f))
    }

    /// Builds the rule and load for uniform draws `u` in [0, 1), one per catalogue feature in
    /// catalogue order (so a plan's draws do not depend on which fields a study lists).
    /// Whole-number attributes are drawn uniformly over their values; a duration that varies
    /// over whole milliseconds; an unlisted field is its base value.
    pub fn draw(&self, u: &[f64; N_FEATURES]) -> (TrafficRule, LoadSetting) {
        let mut values = [0.0; crate::feature::N_RULES];
        for (i, f) in RULE_FEATURES.iter().enumerate() {
            let (lo, hi) = self.feature_range(*f);
            let at = u[f.index()];
            values[i] = if f.is_duration() {
                let (lo_ms, hi_ms) = ((lo * 1000.0).round() as u32, (hi * 1000.0).round() as u32);
                f64::from(Span::new(lo_ms, hi_ms).pick(at)) / 1000.0
            } else {
                f64::from(Span::new(lo as u32, hi as u32).pick(at))
            };
        }
        let load = LoadSetting {
            threads: self.threads.pick(u[Feature::Threads.index()]),
            calls: self.calls.pick(u[Feature::Calls.index()]),
        };
        (TrafficRule::from_values(&values), load)
    }

    /// Whether a rule and load lie inside this study's ranges; names the first field outside.
    pub fn check(&self, rule: &TrafficRule, load: &LoadSetting) -> Result<(), String> {
        let rules = rule.values();
        for (i, f) in RULE_FEATURES.iter().enumerate() {
            let (lo, hi) = self.feature_range(*f);
            let v = rules[i];
            if v < lo - 1e-9 || v > hi + 1e-9 {
                let shown =
                    |x: f64| if f.is_duration() { IstioDuration::from_secs(x).to_string() } else { x.to_string() };
                return Err(if lo == hi {
                    format!("{} = {} differs from study {} ({})", f.name(), shown(v), self.name, shown(lo))
                } else {
                    format!(
                        "{} = {} is outside study {} range {}..={}",
                        f.name(),
                        shown(v),
                        self.name,
                        shown(lo),
                        shown(hi)
                    )
                });
            }
        }
        for (name, span, v) in [("threads", self.threads, load.threads), ("calls", self.calls, load.calls)] {
            if !span.contains(v) {
                return Err(format!("{name} = {v} is outside study {} range {}..={}", self.name, span.lo, span.hi));
            }
        }
        Ok(())
    }

    /// How many hosts outlier detection may eject at a max-ejection percent (Envoy >= 1.27:
    /// a host is ejected only while 100*(ejected+1)/hosts <= percent).
    pub fn max_ejectable(hosts: u32, percent: u32) -> u32 {
        (percent as u64 * hosts as u64 / 100) as u32
    }
}

#[cfg(test)]
pub(crate) mod tests;
