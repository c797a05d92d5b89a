//! The agent card (`<agent>.json` beside each exported agent graph), typed like the simulator
//! card. Fields are declared in alphabetical order: the card is written in that order.

use serde::{Deserialize, Serialize};

/// `<agent>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCard {
    /// The feature the agent chooses (`threads` or `calls`).
    pub action: String,
    /// The agent's kind name (`thread` or `call`).
    pub agent: String,
    /// Configuration slug, e.g. `thread-call`.
    pub configuration: String,
    pub git_commit: String,
    /// The grid values, one per Q-value output.
    pub grid: Vec<u32>,
    pub inputs: Vec<AgentPort>,
    /// Always [`sfr2l_core::artifact::KIND_AGENT`].
    pub kind: String,
    /// The configuration's label in the paper, e.g. `Thread-Call`.
    pub label: String,
    pub metrics: AgentMetrics,
    /// What the agent maximises (`worst` or `best`).
    pub objective: String,
    pub onnx_sha256: String,
    pub outputs: Vec<AgentPort>,
    pub profile: String,
    /// Rewards are learnt in units of this scale; the graph multiplies it back.
    pub reward_scale: f64,
    pub schema: u32,
    pub seed: u64,
    /// Which service's head this graph is.
    pub service: usize,
    pub services: usize,
    pub simulator: SimulatorRef,
    /// State column names, in input order.
    pub state: Vec<String>,
}

/// One input or output of an agent graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentPort {
    pub name: String,
    /// Shape with `batch` as the dynamic first dimension.
    pub shape: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// The run's metrics (see `rl::protocol::RunResult`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgentMetrics {
    pub best_epoch: usize,
    pub greedy_over_optimum: f64,
    pub optimum_ratio: f64,
    pub rl_over_optimum: f64,
    pub sim_ratio: f64,
}

/// The simulator the agent learnt on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatorRef {
    pub dir: String,
    pub onnx_sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys in the order they appear in a pretty-printed card.
    fn keys(text: &str) -> Vec<&str> {
        text.lines().filter_map(|l| l.trim_start().strip_prefix('"')?.split_once("\":").map(|(k, _)| k)).collect()
    }

    /// The typed card reads the committed cards and writes the same keys in the same order.
    /// (Values are compared as JSON: serde_json's default float parsing is not exact to the last
    /// digit, its printing is.)
    #[test]
    fn committed_agent_cards_read_and_write_back_unchanged() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/s1/agents/thread-call/seed-1");
        for name in ["thread.json", "call.json"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let card: AgentCard = serde_json::from_str(&text).unwrap();
            let back = serde_json::to_string_pretty(&card).unwrap() + "\n";
            assert_eq!(keys(&back), keys(&text), "{name}");
            let want: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(serde_json::to_value(&card).unwrap(), want, "{name}");
        }
    }
}
