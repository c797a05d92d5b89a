//! The study file as the user writes it (`studies/<name>.yaml`); its checks are in [`check`].
//! Every error names the YAML path of the field (`attributes[2].range`), so the reader can
//! point at it.

use super::{BadMode, Objective};
use crate::duration::IstioDuration;
use serde::{Deserialize, Serialize};

mod check;

/// A study error: the YAML path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{msg}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct StudyError {
    pub path: String,
    pub msg: String,
}

impl StudyError {
    pub fn at(path: impl Into<String>, msg: impl Into<String>) -> Self {
        Self { path: path.into(), msg: msg.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StudyFile {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub target: super::Target,
    /// The DestinationRule fields, in catalogue order: each varies over `range` or is fixed at
    /// `value`.
    pub attributes: Vec<AttributeFile>,
    pub load: LoadFile,
    #[serde(default)]
    pub objective: Objective,
    pub lab: LabFile,
    pub collection: CollectionFile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// A number, or an Istio duration string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeFile {
    /// The Istio field, e.g. `connectionPool.tcp.maxConnections`.
    pub field: String,
    #[serde(default)]
    pub range: Option<[Scalar; 2]>,
    #[serde(default)]
    pub value: Option<Scalar>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadFile {
    /// fortio `-c`.
    pub threads: AxisFile,
    /// fortio `-n`.
    pub calls: AxisFile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisFile {
    /// The range collection draws from.
    pub range: [u32; 2],
    /// The values the agents choose from.
    pub grid: GridFile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridFile {
    pub from: u32,
    pub to: u32,
    #[serde(default = "one")]
    pub step: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabFile {
    pub upstream: UpstreamFile,
    /// Endpoints of the client-side cluster (one server sidecar listener each).
    pub hosts: u32,
    /// Worker threads of the client sidecar (Istio's default is 2).
    #[serde(default = "two")]
    pub client_workers: u32,
    /// Workers of the server-side Envoy.
    #[serde(default = "one")]
    pub upstream_workers: u32,
    #[serde(default)]
    pub faults: FaultsFile,
}

fn two() -> u32 {
    2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// The command the lab starts (`{port}`: its port; `{venv}`: the lab's venv; `{dir}`: its
    /// own directory).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Or a service already running, `host:port`.
    #[serde(default)]
    pub address: Option<String>,
    pub ready: ReadyFile,
    /// A command that prints what ran (its first line goes into the dataset's metadata).
    #[serde(default)]
    pub version: Option<Vec<String>>,
    /// Files the lab writes into the upstream's directory (`{dir}`) before starting the command.
    #[serde(default)]
    pub files: Vec<AssetFile>,
}

/// One file of a command upstream: its path under `{dir}` and its content (placeholders filled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetFile {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyFile {
    pub path: String,
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default = "thirty_seconds")]
    pub timeout: IstioDuration,
}

fn ok() -> u16 {
    200
}
fn thirty_seconds() -> IstioDuration {
    IstioDuration::from_secs(30.0)
}

/// The failure modes the server sidecars add (data/README.md, "Failure modes per profile").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultsFile {
    /// The first `count` hosts answer 503 to `abortPercent` of requests.
    #[serde(default)]
    pub bad_hosts: Option<BadHostsFile>,
    /// Every host delays `percent` of requests by `ms`.
    #[serde(default)]
    pub delay: Option<DelayFile>,
    /// The first `hosts` hosts grant each load test `tokens` requests (refilled per second).
    #[serde(default)]
    pub client_quota: Option<QuotaFile>,
    /// The first `hosts` hosts grant each connection `tokens` requests.
    #[serde(default)]
    pub conn_quota: Option<QuotaFile>,
    /// The first `hosts` hosts serve `concurrency` requests at once, queue `queue`, refuse the rest.
    #[serde(default)]
    pub capacity: Option<CapacityFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BadHostsFile {
    pub count: u32,
    pub abort_percent: f64,
    #[serde(default)]
    pub mode: BadMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayFile {
    pub ms: u32,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaFile {
    pub hosts: u32,
    pub tokens: u32,
    #[serde(default)]
    pub refill_per_second: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityFile {
    pub hosts: u32,
    pub concurrency: u32,
    pub queue: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionFile {
    pub rows: u32,
    #[serde(default = "one_u64")]
    pub seed: u64,
    #[serde(default)]
    pub repeats: Option<RepeatsFile>,
}

fn one_u64() -> u64 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatsFile {
    /// Distinct rule-and-load draws in the block.
    pub configs: u32,
    /// Runs of each.
    pub times: u32,
}
