//! The learning protocol: per epoch, each service draws `interactions` states; the agents act
//! epsilon-greedily in order (a dependent agent sees the first agent's choice); the uniform
//! random baseline acts on the same states; every Q-network is then trained on the epoch's
//! interactions in mini-batches. Per epoch we record the RL, random, greedy and optimum reward.

use super::config::RlConfig;
use super::env::{Action, Env, RewardTable};
use super::qnet::{QModel, QWeights};
use super::state::{matrix, q_rows, raw_states, standardise, state_norm};
use super::train::{train_learner, EpochRewards, Learner, LearnerEpoch, StepSettings};
use crate::data::Standardizer;
use crate::rng::SplitMix64;
use burn::optim::AdamConfig;
use burn::prelude::*;
use sfr2l_core::agent::{argmax, max_rolling_mean, rolling_mean, AgentKind, AgentSpec, Configuration, Extra};

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
                spec.state_width(),
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

/// Whether the agent's state includes the first agent's choice (dependent second agent).
fn is_dependent(a: usize, l: &Learner) -> bool {
    a > 0 && matches!(l.spec.extra, Extra::FirstAction(_))
}

/// Every agent's choices on the epoch's states (`rows[service][interaction]`), in acting order:
/// a dependent agent sees the first agent's actual choice. Epsilon-greedy on `explore`. The
/// services' forward passes of one agent run on two threads; the exploration draws follow in
/// the same order as before, so the choices do not depend on the threading.
fn act(
    learners: &[Learner],
    tables: &[&RewardTable],
    rows: &[Vec<usize>],
    eps: f64,
    explore: &mut SplitMix64,
    infer: &Device,
) -> Vec<LearnerEpoch> {
    let mut seen: Vec<LearnerEpoch> = Vec::with_capacity(learners.len());
    for (a, l) in learners.iter().enumerate() {
        let valid = l.model.valid();
        let xs: Vec<Vec<f32>> = rows
            .iter()
            .enumerate()
            .map(|(n, rows_n)| {
                let first_vals: Option<Vec<u32>> =
                    is_dependent(a, l).then(|| seen[0].acted[n].iter().map(|&i| learners[0].grids[n][i]).collect());
                standardise(&raw_states(&l.spec, tables[n], rows_n, first_vals.as_deref()), &l.norms[n])
            })
            .collect();
        let width = l.spec.state_width();
        let qs = q_values_by_service(&valid, &xs, width, infer);
        let mut e = LearnerEpoch { inputs: vec![], acted: vec![], greedy: vec![], qmax: vec![] };
        for (n, ((rows_n, x), q)) in rows.iter().zip(xs).zip(qs).enumerate() {
            let g: Vec<usize> = q.iter().map(|r| argmax(r).unwrap_or(0)).collect();
            let acts: Vec<usize> =
                g.iter().map(|&gi| if explore.unit() < eps { explore.below(l.grids[n].len()) } else { gi }).collect();
            let g = if is_dependent(a, l) {
                let first = GreedyFirst { seen: &seen[0], grid: &learners[0].grids[n] };
                let states = ServiceStates { n, table: tables[n], rows: rows_n };
                greedy_given_first(l, &valid, &states, &first, g, infer)
            } else {
                g
            };
            e.qmax.push(q.iter().map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max)).collect());
            e.acted.push(acts);
            e.greedy.push(g);
            e.inputs.push(x);
        }
        seen.push(e);
    }
    seen
}

/// Q-values of every service's states through its head, `[service][row][action]`; with more
/// than one service, half of them on a second thread (each forward is single-threaded).
fn q_values_by_service(model: &QModel, xs: &[Vec<f32>], width: usize, infer: &Device) -> Vec<Vec<Vec<f32>>> {
    let forward = |n: usize| q_rows(model.forward(n, matrix(xs[n].clone(), xs[n].len() / width, width, infer)));
    if xs.len() < 2 {
        return (0..xs.len()).map(forward).collect();
    }
    let half = xs.len().div_ceil(2);
    std::thread::scope(|s| {
        let second = s.spawn(|| (half..xs.len()).map(forward).collect::<Vec<_>>());
        let mut out: Vec<Vec<Vec<f32>>> = (0..half).map(forward).collect();
        match second.join() {
            Ok(rest) => out.extend(rest),
            // The thread cannot panic short of a bug in the backend; recompute here if it did.
            Err(_) => out.extend((half..xs.len()).map(forward)),
        }
        out
    })
}

/// One service's states of the epoch: its index, reward table and drawn rows.
struct ServiceStates<'a> {
    n: usize,
    table: &'a RewardTable,
    rows: &'a [usize],
}

/// The first agent's choices on one service, for the dependent agent's greedy chain.
struct GreedyFirst<'a> {
    seen: &'a LearnerEpoch,
    grid: &'a [u32],
}

/// Greedy chain for dependent agents: the second agent's greedy choice given the first agent's
/// greedy choice needs its own forward pass, but only on rows where the first agent explored
/// (elsewhere the state is the same and `g` already holds it).
fn greedy_given_first(
    l: &Learner,
    valid: &QModel,
    states: &ServiceStates,
    first: &GreedyFirst,
    mut g: Vec<usize>,
    infer: &Device,
) -> Vec<usize> {
    let ServiceStates { n, table, rows: rows_n } = *states;
    let (acted, greedy) = (&first.seen.acted[n], &first.seen.greedy[n]);
    let differ: Vec<usize> = (0..rows_n.len()).filter(|&j| acted[j] != greedy[j]).collect();
    if differ.is_empty() {
        return g;
    }
    let sub_rows: Vec<usize> = differ.iter().map(|&j| rows_n[j]).collect();
    let gv: Vec<u32> = differ.iter().map(|&j| first.grid[greedy[j]]).collect();
    let graw = raw_states(&l.spec, table, &sub_rows, Some(&gv));
    let gq =
        q_rows(valid.forward(n, matrix(standardise(&graw, &l.norms[n]), differ.len(), l.spec.state_width(), infer)));
    for (k, &j) in differ.iter().enumerate() {
        g[j] = argmax(&gq[k]).unwrap_or(0);
    }
    g
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
    let q = q_rows(model.forward(head, matrix(x, rows.len(), agent.spec.state_width(), &device)));
    let s = agent.reward_scale[head] as f32;
    q.into_iter().map(|r| r.into_iter().map(|v| v * s).collect()).collect()
}
