//! What the learning protocol costs in matrix-multiply FLOPs, counted from the networks' shapes
//! and the schedule the code runs (`protocol::act`, `train::train_learner`), so that a measured
//! training time can be set against the machine's matmul throughput.
//!
//! Per interaction, service and agent: one forward pass to act (batched over the epoch), and one
//! forward and backward pass in training (mini-batches). A dense layer `in -> out` costs
//! `2 in out` FLOPs per row forward, as much again for its weight gradient, and as much again for
//! its input gradient, except the first layer, whose input needs none. Not counted: element-wise
//! work (ReLU, loss, Adam's update, about 10 FLOPs per weight per step), the greedy re-evaluation
//! of a dependent agent on rows where the first agent explored (an epsilon share of one forward),
//! and the reward lookups.

use super::config::RlConfig;
#[cfg(doc)]
use sfr2l_core::agent::AgentSpec;
use sfr2l_core::agent::Configuration;
use sfr2l_core::Study;

/// One agent's network for one service, input to output: `[state, hidden.., (head hidden), actions]`.
/// `state`: the state width ([`AgentSpec::state_width`] over the study's inputs).
pub fn widths(state: usize, cfg: &RlConfig, actions: usize, collab: bool) -> Vec<usize> {
    let mut w = vec![state];
    w.extend(std::iter::repeat_n(cfg.hidden, cfg.trunk_layers));
    if collab && cfg.collab_head_hidden > 0 {
        w.push(cfg.collab_head_hidden);
    }
    w.push(actions);
    w
}

/// Forward FLOPs of one row.
pub fn forward(widths: &[usize]) -> f64 {
    widths.windows(2).map(|p| 2.0 * (p[0] * p[1]) as f64).sum()
}

/// FLOPs of one interaction of one agent on one service: act, then train on it.
pub fn interaction(widths: &[usize]) -> f64 {
    let f = forward(widths);
    let first = widths.get(..2).map_or(0.0, |p| 2.0 * (p[0] * p[1]) as f64);
    f + f + (2.0 * f - first)
}

/// FLOPs of one run: `services` copies of `profile` (1 = single service).
pub fn run(configuration: Configuration, profile: &Study, services: usize, cfg: &RlConfig) -> f64 {
    let collab = services > 1;
    let per_interaction: f64 = configuration
        .agents()
        .iter()
        .map(|spec| {
            interaction(&widths(spec.state_width(&profile.inputs()), cfg, spec.kind.grid(profile).len(), collab))
        })
        .sum();
    per_interaction * (services * cfg.interactions * cfg.epochs) as f64
}

/// FLOPs of a whole table: every configuration single and with `collab_services` services, on
/// every profile, `seeds` seeds each (the paper: 5 configurations x 2 x 5 datasets x 3 seeds).
pub fn table(profiles: &[Study], cfg: &RlConfig, seeds: u64, collab_services: usize) -> f64 {
    let mut total = 0.0;
    for p in profiles {
        for c in sfr2l_core::agent::CONFIGURATIONS {
            total += seeds as f64 * (run(c, p, 1, cfg) + run(c, p, collab_services, cfg));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfr2l_core::agent::{AgentKind, Extra};

    #[test]
    fn counts_a_small_network_by_hand() {
        // 3 -> 4 -> 2: forward 2*(12 + 8) = 40; training 40 + 2*40 - 2*12 = 96; act + train = 136.
        assert_eq!(forward(&[3, 4, 2]), 40.0);
        assert_eq!(interaction(&[3, 4, 2]), 136.0);
    }

    #[test]
    fn shapes_follow_the_config() {
        let cfg = RlConfig::new();
        let spec = sfr2l_core::agent::AgentSpec { kind: AgentKind::Threads, extra: Extra::RunLoad(AgentKind::Calls) };
        let w = spec.state_width(&sfr2l_core::Inputs::catalogue());
        assert_eq!(w, 8);
        assert_eq!(widths(w, &cfg, 9, false), vec![8, 512, 512, 9]);
        assert_eq!(widths(w, &cfg, 9, true), vec![8, 512, 512, 512, 9]);
    }

    #[test]
    fn the_paper_protocol_is_about_fourteen_hundred_teraflop() {
        let cfg = RlConfig::new();
        let profiles: Vec<Study> =
            sfr2l_files::study::built_in_names().map(|n| sfr2l_files::study::find(n).unwrap().study).collect();
        let t = table(&profiles, &cfg, 3, 5);
        // Two-agent collaborative runs dominate: 5 services x 2 agents x ~4.3 MFLOP x 500k.
        assert!((1.0e15..2.0e15).contains(&t), "{t:e}");
        let two = run(Configuration::ThreadCall, &profiles[0], 5, &cfg);
        let one = run(Configuration::Thread, &profiles[0], 5, &cfg);
        assert!(two > 1.9 * one && two < 2.1 * one);
    }
}
