//! The models inside the filter: fetched from the artifact server, pinned by sha256, loaded with
//! `sfr2l-runtime` (tract) and checked against core's vocabulary before they replace the ones
//! in use. Nothing here calls the host: the plugin feeds fetched bodies in.

use sfr2l_core::agent::AgentKind;
use sfr2l_core::config::{ArtifactRef, ModelsConfig};
use sfr2l_core::loadtest::{self, Decision};
use sfr2l_core::rule::{LoadSetting, TrafficRule};
use sfr2l_core::trace::Predicted;
use sfr2l_core::{Failure, Inputs};
#[cfg(feature = "models")]
use sfr2l_runtime::{Agent, Simulator};
#[cfg(not(feature = "models"))]
use unsupported::{Agent, Simulator};

/// The observe-only build has no model runtime: every model set is rejected, with this reason.
#[cfg(not(feature = "models"))]
mod unsupported {
    use sfr2l_core::agent::{AgentKind, Configuration};

    const WHY: &str =
        "this filter is the observe-only build (no model runtime); deploy the default build for load-test mode";

    pub struct Agent {
        pub objective: String,
        pub inputs: sfr2l_core::Inputs,
        pub failure: sfr2l_core::Failure,
    }
    impl Agent {
        pub fn from_bytes(_: &[u8]) -> Result<Self, &'static str> {
            Err(WHY)
        }
        pub fn check_for(
            &self,
            _: &str,
            _: Configuration,
            _: AgentKind,
            _: Option<&sfr2l_core::Study>,
        ) -> Result<(), &'static str> {
            Err(WHY)
        }
        pub fn decide(&self, _: &[f32]) -> Result<u32, &'static str> {
            Err(WHY)
        }
    }
    pub struct Prediction {
        pub qps: f32,
        pub failure_rate: f32,
        pub uncertainty: [f32; 2],
    }
    pub struct Simulator {
        pub profile: String,
        pub inputs: sfr2l_core::Inputs,
        pub failure: sfr2l_core::Failure,
    }
    impl Simulator {
        pub fn from_bytes(_: &[u8]) -> Result<Self, &'static str> {
            Err(WHY)
        }
        pub fn predict(&self, _: &[Vec<f32>]) -> Result<Vec<Prediction>, &'static str> {
            Err(WHY)
        }
    }
}
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The agents of one configuration (and optionally the simulator), ready to run.
pub struct Models {
    pub source: ModelsConfig,
    agents: Vec<(AgentKind, Agent)>,
    simulator: Option<Simulator>,
    /// The study inputs the agents (and the simulator) read, from their graphs: a study's width
    /// and fields need no new .wasm.
    inputs: Inputs,
    /// The codes the agents' reward counts as failure (from their graphs; the simulator's
    /// rate output must name the same).
    failure: Failure,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One artifact to fetch: a name for messages (`agents.thread`, `simulator`) and its reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub artifact: ArtifactRef,
}

/// What `source` asks for, agents first.
pub fn wanted(source: &ModelsConfig) -> Vec<Wanted> {
    let agents = source.agents.iter().map(|(k, a)| Wanted { name: format!("agents.{k}"), artifact: a.clone() });
    agents.chain(source.simulator.iter().map(|a| Wanted { name: "simulator".into(), artifact: a.clone() })).collect()
}

/// Checks a fetched body against its pin.
pub fn verify(w: &Wanted, status: Option<&str>, body: &[u8]) -> Result<(), String> {
    if status != Some("200") {
        return Err(format!("{} ({}): HTTP status {}", w.name, w.artifact.path, status.unwrap_or("none")));
    }
    let got = sha256_hex(body);
    if !got.eq_ignore_ascii_case(&w.artifact.sha256) {
        return Err(format!(
            "{} ({}): sha256 {got} differs from the configured {} ({} bytes)",
            w.name,
            w.artifact.path,
            w.artifact.sha256,
            body.len()
        ));
    }
    Ok(())
}

impl Models {
    /// Loads and checks every fetched artifact (`bodies` keyed by [`Wanted::name`]).
    pub fn build(source: &ModelsConfig, bodies: &BTreeMap<String, Vec<u8>>) -> Result<Models, String> {
        let body = |name: &str| bodies.get(name).ok_or_else(|| format!("{name}: not fetched"));
        let mut agents = Vec::new();
        for spec in source.configuration.agents() {
            let name = format!("agents.{}", spec.kind.name());
            let agent = Agent::from_bytes(body(&name)?).map_err(|e| format!("{name}: {e}"))?;
            agent
                .check_for(&source.profile, source.configuration, spec.kind, None)
                .map_err(|e| format!("{name}: {e}"))?;
            agents.push((spec.kind, agent));
        }
        let inputs = agents.first().map(|(_, a)| a.inputs.clone()).ok_or("agents: none configured")?;
        if let Some((k, a)) = agents.iter().find(|(_, a)| a.inputs != inputs) {
            return Err(format!(
                "agents.{}: state fields `{}` differ from the other agents' `{}`",
                k.name(),
                a.inputs.names().join(","),
                inputs.names().join(",")
            ));
        }
        let objectives: Vec<&str> = agents.iter().map(|(_, a)| a.objective.as_str()).collect();
        if objectives.windows(2).any(|w| w[0] != w[1]) {
            return Err(format!("agents: objectives differ ({})", objectives.join(", ")));
        }
        let failure = agents.first().map(|(_, a)| a.failure.clone()).unwrap_or_default();
        if let Some((k, a)) = agents.iter().find(|(_, a)| a.failure != failure) {
            return Err(format!(
                "agents.{}: failure codes {} differ from the other agents' {failure}",
                k.name(),
                a.failure
            ));
        }
        let simulator = match &source.simulator {
            None => None,
            Some(_) => {
                let sim = Simulator::from_bytes(body("simulator")?).map_err(|e| format!("simulator: {e}"))?;
                if sim.profile != source.profile {
                    return Err(format!("simulator: profile `{}`, expected `{}`", sim.profile, source.profile));
                }
                if sim.failure != failure {
                    return Err(format!(
                        "simulator: predicts {} but the agents count failure codes {failure}",
                        sim.failure.column()
                    ));
                }
                if sim.inputs != inputs {
                    return Err(format!(
                        "simulator: inputs `{}` differ from the agents' `{}`",
                        sim.inputs.names().join(","),
                        inputs.names().join(",")
                    ));
                }
                Some(sim)
            }
        };
        Ok(Models { source: source.clone(), agents, simulator, inputs, failure })
    }

    pub fn objective(&self) -> &str {
        self.agents.first().map(|(_, a)| a.objective.as_str()).unwrap_or("worst")
    }

    pub fn failure(&self) -> &Failure {
        &self.failure
    }

    pub fn agents_sha256(&self) -> Vec<String> {
        self.source
            .configuration
            .agents()
            .iter()
            .filter_map(|s| self.source.agents.get(s.kind.name()))
            .map(|a| a.sha256.clone())
            .collect()
    }

    pub fn has_simulator(&self) -> bool {
        self.simulator.is_some()
    }

    /// The configuration's decision for `rule`, dependent agents in order.
    pub fn decide(&self, rule: &TrafficRule, fixed: LoadSetting) -> Result<Decision, String> {
        loadtest::decide(self.source.configuration, &self.inputs, rule, fixed, |kind, state| {
            let agent = self
                .agents
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, a)| a)
                .ok_or_else(|| format!("no {} agent", kind.name()))?;
            agent.decide(state).map_err(|e| format!("{} agent: {e}", kind.name()))
        })
    }

    /// The simulator's prediction for `rule` under `load`, with the reward under the objective.
    pub fn predict(&self, rule: &TrafficRule, load: LoadSetting) -> Option<Result<Predicted, String>> {
        let sim = self.simulator.as_ref()?;
        let x = self.inputs.row_f32(rule, &load);
        let p = match sim.predict(&[x]) {
            Ok(p) => p,
            Err(e) => return Some(Err(format!("simulator: {e}"))),
        };
        let p = p.first()?;
        let (qps, failure_rate) = (f64::from(p.qps), f64::from(p.failure_rate));
        Some(Ok(Predicted {
            qps,
            failure_rate,
            reward: objective_reward(self.objective(), qps, failure_rate, None),
            uncertainty: [f64::from(p.uncertainty[0]), f64::from(p.uncertainty[1])],
        }))
    }
}

/// The reward of an observed or predicted run under the agents' objective: `worst` (eq. 3,
/// QPS x P(failure)) or `best` (QPS x P200; a prediction has no P200, so 1 - P(failure)
/// stands in).
pub fn objective_reward(objective: &str, qps: f64, failure_rate: f64, rate_200: Option<f64>) -> f64 {
    match objective {
        "best" => sfr2l_core::reward::reward_success(qps, rate_200.unwrap_or(1.0 - failure_rate)),
        _ => sfr2l_core::reward::reward(qps, failure_rate),
    }
}
