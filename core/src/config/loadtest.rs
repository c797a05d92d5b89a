//! The load-test part of the plugin configuration: which models to fetch from where, and the
//! inline test the agents decide.

use super::ConfigError;
use crate::agent::Configuration;
use crate::duration::IstioDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One artifact on the artifact server, pinned by the sha256 of its bytes (the card's
/// `onnx_sha256`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// Request path on the artifact server, e.g. `/s1/agents/thread-call/seed-1/thread.onnx`.
    pub path: String,
    pub sha256: String,
}

/// Where the models come from and which ones. Envoy's Wasm sandbox has no file system and a
/// WasmPlugin object is too small for the graphs, so the filter fetches them over
/// `dispatch_http_call` from `cluster` and checks each against its sha256 and core's vocabulary
/// before it replaces the models in use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Envoy cluster of the artifact server (`sfr2l serve` or any static HTTP server).
    pub cluster: String,
    /// `:authority` of the fetches (defaults to the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    /// The study the agents were trained on (their cards' `profile` must say the same).
    #[serde(alias = "study")]
    pub profile: String,
    /// The agent configuration (Table 3), e.g. `thread-call`.
    #[serde(with = "configuration_slug")]
    pub configuration: Configuration,
    /// One artifact per agent of the configuration, keyed `thread` / `call`.
    pub agents: BTreeMap<String, ArtifactRef>,
    /// The simulator: predicted reward of inline tests, residual gauges in observe mode.
    #[serde(default)]
    pub simulator: Option<ArtifactRef>,
    /// Per-fetch timeout.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout: IstioDuration,
}

/// The inline load test: the agents choose threads and calls for the rule in force, the filter
/// sends that load to `cluster` itself (at most `threads` calls in flight, `calls` in total).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadTestConfig {
    /// Envoy cluster of the service under test (in a sidecar:
    /// `outbound|8000||httpbin.default.svc.cluster.local`).
    pub cluster: String,
    /// `:authority` of the test calls.
    pub authority: String,
    #[serde(default = "default_path")]
    pub path: String,
    /// A test runs once for each new value (an operator action through the configuration
    /// push, so no request from the data plane can start one).
    pub trigger: String,
    /// Repeat the test every period as well (unset: once per trigger).
    #[serde(default)]
    pub every: Option<IstioDuration>,
    /// Per-call timeout.
    #[serde(default = "default_call_timeout")]
    pub timeout: IstioDuration,
    /// Load values no agent chooses (single-agent configurations): the run's threads or calls.
    #[serde(default)]
    pub threads: Option<u32>,
    #[serde(default)]
    pub calls: Option<u32>,
    /// Safety cap on the calls of one test, whatever an agent asks for.
    #[serde(default = "default_max_calls")]
    pub max_calls: u32,
    /// How long a call Envoy refuses at dispatch holds its slot: the round trip of the local
    /// 503 a fortio thread waits for (calibrated on the lab, bench/README.md), so that a test
    /// whose calls are mostly refused runs at fortio's pace inside the VM too.
    /// In microseconds (below Istio's 1 ms duration floor).
    #[serde(default = "default_refusal_cost_us")]
    pub refusal_cost_us: u32,
}

impl LoadTestConfig {
    /// A test of `path` on `cluster` (`authority` on each call), started by `trigger`, with the
    /// defaults of every other setting (no period, 10 s per call, agents choose both loads).
    pub fn new(cluster: String, authority: String, path: String, trigger: &str) -> Self {
        LoadTestConfig {
            cluster,
            authority,
            path,
            trigger: trigger.to_string(),
            every: None,
            timeout: default_call_timeout(),
            threads: None,
            calls: None,
            max_calls: default_max_calls(),
            refusal_cost_us: DEFAULT_REFUSAL_COST_US,
        }
    }
}

fn default_fetch_timeout() -> IstioDuration {
    IstioDuration::from_secs(30.0)
}
fn default_call_timeout() -> IstioDuration {
    IstioDuration::from_secs(10.0)
}
fn default_path() -> String {
    "/get".into()
}
fn default_max_calls() -> u32 {
    10_000
}
/// The measured cost of a local 503 to a fortio thread on the lab (refusal calibration).
pub const DEFAULT_REFUSAL_COST_US: u32 = 150;
pub fn default_refusal_cost_us() -> u32 {
    DEFAULT_REFUSAL_COST_US
}

/// `thread-call`, as in the agents' folder names and cards.
mod configuration_slug {
    use crate::agent::Configuration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Configuration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.slug())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Configuration, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn valid_path(p: &str) -> bool {
    p.starts_with('/') && p.len() <= 1024 && p.bytes().all(|b| b.is_ascii_graphic())
}

impl ModelsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |f: String| Err(ConfigError::Invalid(f));
        if self.cluster.is_empty() {
            return bad("models.cluster: must not be empty".into());
        }
        if !crate::study::is_name(&self.profile) {
            return bad(format!("models.profile: {:?} is not a study name (a DNS label)", self.profile));
        }
        let want: Vec<&str> = self.configuration.agents().iter().map(|a| a.kind.name()).collect();
        let have: Vec<&str> = self.agents.keys().map(String::as_str).collect();
        let mut sorted = want.clone();
        sorted.sort_unstable();
        if have != sorted {
            return bad(format!(
                "models.agents: configuration {} needs [{}], found [{}]",
                self.configuration,
                want.join(", "),
                have.join(", ")
            ));
        }
        let all = self.agents.iter().map(|(k, a)| (format!("models.agents.{k}"), a));
        for (field, a) in all.chain(self.simulator.iter().map(|a| ("models.simulator".to_string(), a))) {
            if !valid_path(&a.path) {
                return bad(format!("{field}.path: must be an absolute request path without spaces"));
            }
            if a.sha256.len() != 64 || !a.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad(format!("{field}.sha256: must be 64 hex digits"));
            }
        }
        Ok(())
    }

    pub fn authority(&self) -> &str {
        self.authority.as_deref().unwrap_or(&self.cluster)
    }
}

impl LoadTestConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |f: &str| Err(ConfigError::Invalid(f.into()));
        if self.cluster.is_empty() || self.authority.is_empty() {
            return bad("loadtest.cluster / loadtest.authority: must not be empty");
        }
        if !valid_path(&self.path) {
            return bad("loadtest.path: must be an absolute request path without spaces");
        }
        if self.trigger.is_empty() || self.trigger.len() > 64 {
            return bad("loadtest.trigger: 1 to 64 characters");
        }
        if self.every.is_some_and(|e| e.secs() < 1.0) {
            return bad("loadtest.every: must be >= 1s");
        }
        if self.max_calls == 0 || self.max_calls > 1_000_000 {
            return bad("loadtest.max_calls: must be within 1..=1000000");
        }
        if !(1..=100_000).contains(&self.refusal_cost_us) {
            return bad("loadtest.refusal_cost_us: must be within 1..=100000");
        }
        Ok(())
    }
}
