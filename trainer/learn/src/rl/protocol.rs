//! The learning protocol: per epoch, each service draws `interactions` states; the agents act
//! epsilon-greedily in order (a dependent agent sees the first agent's choice); the uniform
//! random baseline acts on the same states; every Q-network is then trained on the epoch's
//! interactions in mini-batches. Per epoch we record the RL, random, greedy and optimum reward.

use super::act::act;
use super::config::RlConfig;
use super::env::{Action, Env, RewardTable};
use super::qnet::{QModel, QWeights};
use super::state::state_norm;
use super::state::{matrix, q_rows, standardise};
use super::train::{train_learner, EpochRewards, Learner, LearnerEpoch, StepSettings};
use crate::data::Standardizer;
use burn::optim::AdamConfig;
use burn::prelude::*;
use sfr2l_core::agent::{max_rolling_mean, rolling_mean, AgentKind, AgentSpec, Configuration};
use sfr2l_core::rng::SplitMix64;
use sfr2l_core::Inputs;

/// Rewards of one epoch, summed over services and interactions.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    pub rl: f64,
    pub random: f64,
    pub greedy: f64,
    pub optimum: f64,
    pub epsilon: f64,
}

/// One interaction of the best epoch, for replay on the real lab.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    pub service: usize,
    pub row: usize,
    pub threads: u32,
    pub calls: u32,
    pub reward: f64,
    pub optimum: f64,
    pub random_reward: f64,
}

/// A trained agent: its spec, weights, per-service state normalisation and reward scale.
pub struct TrainedAgent {
    pub spec: AgentSpec,
    /// The study's inputs its state starts with.
    pub inputs: Inputs,
    pub weights: QWeights,
    pub state_norm: Vec<Standardizer>,
    pub reward_scale: Vec<f64>,
    pub grid: Vec<Vec<u32>>,
}

pub struct RunResult {
    pub configuration: Configuration,
    pub services: usize,
    pub epochs: Vec<EpochStats>,
    /// Max of the rolling mean of RL/random (the paper's "Sim.").
    pub sim_ratio: f64,
    /// Mean optimum/random over epochs (independent of the policy).
    pub optimum_ratio: f64,
    /// Rolling mean of RL/optimum at the window where `sim_ratio` peaks.
    pub rl_over_optimum: f64,
    /// Same for the greedy policy (no exploration).
    pub greedy_over_optimum: f64,
    pub best_epoch: usize,
    pub decisions: Vec<Decision>,
    pub agents: Vec<TrainedAgent>,
    pub seconds: f64,
}

/// The learning protocol for one configuration over `tables` (one per service; 1 = single-service).
/// The services share their inputs (the agents' networks take one state width): callers check
/// it ([`same_inputs`]).
pub fn run_protocol(
    configuration: Configuration,
    tables: &[&RewardTable],
    cfg: &RlConfig,
    base: &Device,
    mut on_epoch: impl FnMut(usize, &EpochStats),
) -> RunResult {
    let started = std::time::Instant::now();
    let device = base.clone().autodiff();
    device.seed(cfg.seed);
    let infer = device.clone().inner();
    let collab = tables.len() > 1;
    let step = StepSettings { cfg, lr: if collab { cfg.collab_learning_rate } else { cfg.learning_rate }, collab };
    let specs = configuration.agents();
    let mut learners = init_learners(&specs, tables, cfg, &device);

    let mut envs: Vec<Env> =
        tables.iter().enumerate().map(|(n, t)| Env::new(t, cfg.seed.wrapping_mul(31).wrapping_add(n as u64))).collect();
    let mut explore = SplitMix64::new(cfg.seed ^ 0xE9);
    let mut random = SplitMix64::new(cfg.seed ^ 0x5A);
    let mut epochs = Vec::with_capacity(cfg.epochs);
    let mut best = BestEpoch { ratio: f64::NEG_INFINITY, epoch: 0, decisions: vec![] };

    for epoch in 0..cfg.epochs {
        let eps = cfg.epsilon(epoch);
        let rows: Vec<Vec<usize>> =
            envs.iter_mut().map(|e| (0..cfg.interactions).map(|_| e.reset()).collect()).collect();
        let seen = act(&learners, tables, &rows, eps, &mut explore, &infer);
        let scored = score(&learners, tables, &envs, &rows, &seen, &mut random, eps);
        let ratio = scored.stats.rl / scored.stats.random;
        if ratio > best.ratio {
            best = BestEpoch { ratio, epoch, decisions: scored.decisions };
        }
        on_epoch(epoch, &scored.stats);
        epochs.push(scored.stats);
        train_epoch(&mut learners, &seen, &scored.rewards, &step, &device);
        if best.epoch == epoch {
            for l in learners.iter_mut() {
                l.best = Some(l.model.to_weights());
            }
        }
    }

    let ratios = summarise(&epochs, cfg.rolling_window);
    let agents = learners
        .into_iter()
        .map(|l| TrainedAgent {
            spec: l.spec,
            inputs: l.inputs,
            weights: l.best.unwrap_or_else(|| l.model.to_weights()),
            state_norm: l.norms,
            reward_scale: l.scales,
            grid: l.grids,
        })
        .collect();
    RunResult {
        configuration,
        services: tables.len(),
        epochs,
        sim_ratio: ratios.sim_ratio,
        optimum_ratio: ratios.optimum_ratio,
        rl_over_optimum: ratios.rl_over_optimum,
        greedy_over_optimum: ratios.greedy_over_optimum,
        best_epoch: best.epoch,
        decisions: best.decisions,
        agents,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The epoch with the best RL/random ratio so far and its interactions.
struct BestEpoch {
    ratio: f64,
    epoch: usize,
    decisions: Vec<Decision>,
}

/// One learner per agent of the configuration, each with a head per service sized to that
/// service's grid (heads may differ in size with heterogeneous services).
fn init_learners(specs: &[AgentSpec], tables: &[&RewardTable], cfg: &RlConfig, device: &Device) -> Vec<Learner> {
    let n_svc = tables.len();
    let collab = n_svc > 1;
    specs
        .iter()
        .enumerate()
        .map(|(a, spec)| {
            let grids: Vec<Vec<u32>> = tables.iter().map(|t| t.grid(spec.kind).to_vec()).collect();
            let head_hidden = if collab { cfg.collab_head_hidden } else { 0 };
            let seed = cfg.seed.wrapping_mul(7919).wrapping_add(a as u64 * 101);
            let mut w = QWeights::init(
                spec.state_width(&tables[0].inputs),
                cfg.hidden,
                cfg.trunk_layers,
                head_hidden,
                grids[0].len(),
                n_svc,
                seed,
            );
            for (n, g) in grids.iter().enumerate() {
                if g.len() != grids[0].len() {
                    let widths: Vec<usize> =
                        if collab { vec![cfg.hidden, head_hidden, g.len()] } else { vec![cfg.hidden, g.len()] };
                    w.heads[n] = crate::nn::MlpWeights::init(&widths, seed.wrapping_add(1 + n as u64));
                }
            }
            Learner {
                spec: *spec,
                inputs: tables[0].inputs.clone(),
                model: QModel::from_weights(&w, device),
                optim: AdamConfig::new().init(),
                norms: tables.iter().map(|t| state_norm(spec, t)).collect(),
                scales: tables.iter().map(|t| t.reward_scale()).collect(),
                grids,
                best: None,
            }
        })
        .collect()
}

/// An epoch's rewards: totals, the RL reward per service and interaction, and the interactions.
struct Scored {
    stats: EpochStats,
    /// `[service][interaction]` eq. 3 reward of the taken actions.
    rewards: Vec<Vec<f64>>,
    decisions: Vec<Decision>,
}

/// Rewards of the taken, greedy and uniform-random actions and of the optimum on every
/// interaction; the random baseline draws from `random`.
fn score(
    learners: &[Learner],
    tables: &[&RewardTable],
    envs: &[Env],
    rows: &[Vec<usize>],
    seen: &[LearnerEpoch],
    random: &mut SplitMix64,
    eps: f64,
) -> Scored {
    let specs: Vec<AgentSpec> = learners.iter().map(|l| l.spec).collect();
    let single = (specs.len() == 1).then(|| specs[0].kind);
    let action_of = |choice: &dyn Fn(usize) -> usize| -> Action {
        let mut act = Action { threads: None, calls: None };
        for (a, s) in specs.iter().enumerate() {
            match s.kind {
                AgentKind::Threads => act.threads = Some(choice(a)),
                AgentKind::Calls => act.calls = Some(choice(a)),
            }
        }
        act
    };
    let n_svc = rows.len();
    let inter = rows.first().map_or(0, Vec::len);
    let mut rewards: Vec<Vec<f64>> = vec![vec![0.0; inter]; n_svc];
    let mut st = EpochStats { rl: 0.0, random: 0.0, greedy: 0.0, optimum: 0.0, epsilon: eps };
    let mut decisions = Vec::with_capacity(inter * n_svc);
    for n in 0..n_svc {
        for j in 0..inter {
            let row = rows[n][j];
            let rl = envs[n].step(row, action_of(&|a| seen[a].acted[n][j]));
            let gr = envs[n].step(row, action_of(&|a| seen[a].greedy[n][j]));
            let picks: Vec<usize> = (0..specs.len()).map(|a| random.below(learners[a].grids[n].len())).collect();
            let rd = envs[n].step(row, action_of(&|a| picks[a]));
            let opt = tables[n].optimum(row, single);
            rewards[n][j] = rl;
            st.rl += rl;
            st.greedy += gr;
            st.random += rd;
            st.optimum += opt;
            let val = |k: AgentKind| -> u32 {
                match specs.iter().position(|s| s.kind == k) {
                    Some(a) => learners[a].grids[n][seen[a].acted[n][j]],
                    None => tables[n].run_load[row].of(k) as u32,
                }
            };
            decisions.push(Decision {
                service: n,
                row,
                threads: val(AgentKind::Threads),
                calls: val(AgentKind::Calls),
                reward: rl,
                optimum: opt,
                random_reward: rd,
            });
        }
    }
    Scored { stats: st, rewards, decisions }
}

/// Trains every learner on the epoch: targets are eq. 3 (one service) or eq. 8 (collaborative)
/// over the service's reward scale. Learners train on their own models and optimisers, one
/// thread each (two agents use both cores); results do not depend on the scheduling.
fn train_epoch(
    learners: &mut [Learner],
    seen: &[LearnerEpoch],
    rewards: &[Vec<f64>],
    step: &StepSettings,
    device: &Device,
) {
    let n_svc = rewards.len();
    let inter = rewards.first().map_or(0, Vec::len);
    let mean: Vec<f64> = (0..inter).map(|j| (0..n_svc).map(|n| rewards[n][j]).sum::<f64>() / n_svc as f64).collect();
    let rewards = EpochRewards { per_service: rewards, mean: &mean };
    let rewards = &rewards;
    std::thread::scope(|scope| {
        for (l, seen) in learners.iter_mut().zip(seen) {
            let device = device.clone();
            scope.spawn(move || train_learner(l, seen, rewards, step, &device));
        }
    });
}

/// The run's metrics from its epochs.
struct Ratios {
    sim_ratio: f64,
    optimum_ratio: f64,
    rl_over_optimum: f64,
    greedy_over_optimum: f64,
}

/// Max rolling mean of RL/random over `window` epochs, and RL and greedy over the optimum in
/// that window.
fn summarise(epochs: &[EpochStats], rolling_window: usize) -> Ratios {
    let ratios: Vec<f64> = epochs.iter().map(|e| e.rl / e.random).collect();
    let w = rolling_window.min(ratios.len()).max(1);
    let sim_ratio = max_rolling_mean(&ratios, w);
    let roll = rolling_mean(&ratios, w);
    let peak = (w - 1..roll.len()).max_by(|&a, &b| roll[a].total_cmp(&roll[b])).unwrap_or(0);
    let window = peak + 1 - w.min(peak + 1)..peak + 1;
    let mean_of =
        |f: &dyn Fn(&EpochStats) -> f64| epochs[window.clone()].iter().map(f).sum::<f64>() / window.len().max(1) as f64;
    let rl_over_optimum = mean_of(&|e| e.rl / e.optimum);
    let greedy_over_optimum = mean_of(&|e| e.greedy / e.optimum);
    let optimum_ratio = epochs.iter().map(|e| e.optimum / e.random).sum::<f64>() / epochs.len().max(1) as f64;
    Ratios { sim_ratio, optimum_ratio, rl_over_optimum, greedy_over_optimum }
}

/// Burn's Q-values for raw states of service `head` (reward units): the reference the exported
/// agent graph is checked against. rows: `[batch][state]` -> `[batch][actions]`.
pub fn burn_q_values(agent: &TrainedAgent, head: usize, rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let device = Device::flex();
    let model = QModel::from_weights(&agent.weights, &device);
    let x = standardise(rows, &agent.state_norm[head]);
    let q = q_rows(model.forward(head, matrix(x, rows.len(), agent.spec.state_width(&agent.inputs), &device)));
    let s = agent.reward_scale[head] as f32;
    q.into_iter().map(|r| r.into_iter().map(|v| v * s).collect()).collect()
}

/// Whether every service's study has the same inputs (a collaborative run shares the agents'
/// networks, so one state width); the error names the first that differs.
pub fn same_inputs(tables: &[&RewardTable]) -> Result<(), String> {
    let Some(first) = tables.first() else { return Ok(()) };
    match tables.iter().find(|t| t.inputs != first.inputs) {
        None => Ok(()),
        Some(t) => Err(format!(
            "study {} has inputs `{}`, study {} has `{}`: services learned together must vary the same fields",
            first.profile,
            first.inputs.names().join(","),
            t.profile,
            t.inputs.names().join(",")
        )),
    }
}
