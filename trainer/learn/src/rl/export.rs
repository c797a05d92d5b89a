//! Agent export: one ONNX graph per agent and service. Input `state` `[batch, width]` raw
//! (the rules, then the extra column if any, names in the card and metadata); output
//! `q_values` `[batch, actions]` in reward units (QPS x rate), one per grid value; the
//! decision is the grid value at the argmax. Normalisation and reward scale are in the graph.

use super::protocol::TrainedAgent;
use crate::export::onnx::{encode, GraphBuilder};
use sfr2l_core::agent::Configuration;
use sfr2l_core::artifact::{meta, KIND_AGENT};

pub struct AgentExport<'a> {
    pub agent: &'a TrainedAgent,
    pub head: usize,
    /// The study the agent was trained on.
    pub profile: &'a str,
    pub configuration: Configuration,
    pub services: usize,
    pub objective: &'a str,
    /// The codes its reward counted as failure.
    pub failure: &'a sfr2l_core::Failure,
}

pub fn agent_onnx(e: &AgentExport) -> Vec<u8> {
    let a = e.agent;
    let names = a.spec.state_names(&a.inputs);
    let width = names.len();
    let grid = &a.grid[e.head];
    let mut g = GraphBuilder::default();
    let x = g.input("state", width as i64, &format!("raw state: {}", names.join(", ")));
    let f32s = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
    let norm = &a.state_norm[e.head];
    let m = g.const_f32("state_mean", &[width as i64], f32s(&norm.mean));
    let s = g.const_f32("state_std", &[width as i64], f32s(&norm.std));
    let c = g.op("Sub", &[&x, &m]);
    let xs = g.op("Div", &[&c, &s]);
    let h = g.mlp(&xs, &a.weights.trunk);
    let h = g.op("Relu", &[&h]);
    let q = g.mlp(&h, &a.weights.heads[e.head]);
    let scale = g.const_f32("reward_scale", &[], vec![a.reward_scale[e.head] as f32]);
    let q = g.op("Mul", &[&q, &scale]);
    g.output(&q, "q_values", grid.len() as i64, "expected reward per grid value (QPS x rate)");
    let grid_s = grid.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let metadata = vec![
        (meta::SCHEMA.to_string(), sfr2l_core::card::CARD_SCHEMA.to_string()),
        (meta::KIND.to_string(), KIND_AGENT.to_string()),
        (meta::PROFILE.to_string(), e.profile.to_string()),
        (meta::CONFIGURATION.to_string(), e.configuration.slug().to_string()),
        (meta::SERVICES.to_string(), e.services.to_string()),
        (meta::SERVICE.to_string(), e.head.to_string()),
        (meta::ACTION.to_string(), a.spec.kind.feature().name().to_string()),
        (meta::GRID.to_string(), grid_s),
        (meta::STATE.to_string(), names.join(",")),
        (meta::OBJECTIVE.to_string(), e.objective.to_string()),
    ];
    // 503 only is what a graph without the key means (the paper's studies' graphs lack it).
    let mut metadata = metadata;
    if *e.failure != sfr2l_core::Failure::default() {
        metadata.push((meta::FAILURE_CODES.to_string(), e.failure.to_string()));
    }
    let doc = format!(
        "sfr2l {} agent ({}), study {}: raw state in, Q-value per {} grid value out",
        a.spec.kind.name(),
        e.configuration.label(),
        e.profile,
        a.spec.kind.feature().name()
    );
    encode(&g.finish("sfr2l_agent", &doc, &metadata))
}
