//! The environment: states are the traffic rules (and run loads) of dataset rows; actions are
//! Table 6 grid values; rewards come from the exported simulator (eq. 3).
//!
//! Every reward an agent can receive is computed once, in batches, with tract on the exported
//! `simulator.onnx` (the artifact the filter loads), and kept in a table: for each dataset row,
//! the full threads x calls grid, plus each single agent's grid with the row's other load. A
//! lookup returns exactly what a direct simulator call would, so caching changes no result.

use anyhow::{bail, Context, Result};
use sfr2l_core::agent::AgentKind;
use sfr2l_core::{Failure, Inputs, Study};
use sfr2l_runtime::Simulator;

/// What the agents maximise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    #[default]
    /// The paper's reward r = QPS x P(failure) (eq. 3, failure = 503 there; a study names its
    /// codes): the load tests that break the service most.
    Worst,
    /// r = QPS x (1 - P(failure)): the loads the service carries best (P200 taken as
    /// 1 - P(failure), since the simulator predicts the failure rate; other codes are ~0 in
    /// our datasets).
    Best,
}

impl Objective {
    pub fn reward(self, qps: f32, failure_rate: f32) -> f64 {
        let (q, p) = (f64::from(qps), f64::from(failure_rate));
        match self {
            Objective::Worst => sfr2l_core::reward::reward(q, p),
            Objective::Best => sfr2l_core::reward::reward_success(q, 1.0 - p),
        }
    }
}

/// A dataset row's own load setting (raw units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunLoad {
    pub threads: f32,
    pub calls: f32,
}

impl RunLoad {
    /// The value of the load feature an agent of `kind` chooses.
    pub fn of(&self, kind: AgentKind) -> f32 {
        match kind {
            AgentKind::Threads => self.threads,
            AgentKind::Calls => self.calls,
        }
    }
}

/// All rewards of one service (one dataset on its simulator).
#[derive(Debug, Clone)]
pub struct RewardTable {
    /// The study the states come from.
    pub profile: String,
    /// The study's inputs (the simulator's): `rules` has their rule columns.
    pub inputs: Inputs,
    /// The codes the rewards count as failure (the study's, the simulator's rate output).
    pub failure: Failure,
    /// `[rows][rule inputs]` traffic rules, raw units.
    pub rules: Vec<Vec<f32>>,
    /// The row's own threads and calls.
    pub run_load: Vec<RunLoad>,
    pub threads: Vec<u32>,
    pub calls: Vec<u32>,
    /// `[row][t][c]`.
    joint: Vec<f64>,
    /// `[row][t]` with the row's calls.
    thread_only: Vec<f64>,
    /// `[row][c]` with the row's threads.
    call_only: Vec<f64>,
    /// Per row, the best reward over: the joint grid, the thread grid, the call grid.
    best: Vec<[f64; 3]>,
}

impl RewardTable {
    /// Evaluates the simulator on every (row, action) pair. `rows`: raw input rows of the
    /// dataset (the study's inputs); the grids must lie inside the simulator's training ranges.
    pub fn build(sim: &Simulator, study: &Study, rows: &[Vec<f64>], objective: Objective) -> Result<Self> {
        let profile = study.name.clone();
        let inputs = study.inputs();
        // Threads and calls follow the rule columns.
        let nr = inputs.n_rules();
        let (ti, ci) = (nr, nr + 1);
        let threads = AgentKind::Threads.grid(study);
        let calls = AgentKind::Calls.grid(study);
        if rows.is_empty() {
            bail!("no states: the dataset has no rows");
        }
        if let Some(r) = rows.iter().find(|r| r.len() != inputs.len()) {
            bail!("a state row has {} values, study {profile} has {} inputs", r.len(), inputs.len());
        }
        // The simulator only knows the loads its rows covered.
        for (kind, grid) in [(AgentKind::Threads, &threads), (AgentKind::Calls, &calls)] {
            let col = if kind == AgentKind::Threads { ti } else { ci };
            let lo = rows.iter().map(|r| r[col]).fold(f64::INFINITY, f64::min);
            let hi = rows.iter().map(|r| r[col]).fold(f64::NEG_INFINITY, f64::max);
            if let Some(v) = grid.iter().find(|v| f64::from(**v) < lo || f64::from(**v) > hi) {
                bail!(
                    "{} grid value {v} lies outside the simulator's training range {lo}..={hi} (study {profile})",
                    kind.name()
                );
            }
        }
        if sim.profile != profile {
            bail!("simulator was fitted on study {} but the states come from study {profile}", sim.profile);
        }
        if sim.inputs != inputs {
            bail!(
                "simulator takes `{}` but study {profile} has inputs `{}`",
                sim.inputs.names().join(","),
                inputs.names().join(",")
            );
        }
        let failure = study.failure();
        if sim.failure != failure {
            bail!("simulator predicts {} but study {profile} counts failure codes {failure}", sim.failure.column());
        }
        let rules: Vec<Vec<f32>> = rows.iter().map(|r| r[..nr].iter().map(|v| *v as f32).collect()).collect();
        let run_load: Vec<RunLoad> =
            rows.iter().map(|r| RunLoad { threads: r[ti] as f32, calls: r[ci] as f32 }).collect();
        let feat = |rule: &[f32], t: f32, c: f32| -> Vec<f32> { rule.iter().copied().chain([t, c]).collect() };
        let mut queries: Vec<Vec<f32>> = Vec::new();
        for (rule, load) in rules.iter().zip(&run_load) {
            for &t in &threads {
                for &c in &calls {
                    queries.push(feat(rule, t as f32, c as f32));
                }
            }
            for &t in &threads {
                queries.push(feat(rule, t as f32, load.calls));
            }
            for &c in &calls {
                queries.push(feat(rule, load.threads, c as f32));
            }
        }
        let mut rewards = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(4096) {
            let pred = sim.predict(chunk).context("simulator")?;
            rewards.extend(pred.iter().map(|p| objective.reward(p.qps, p.failure_rate)));
        }
        let (nt, nc) = (threads.len(), calls.len());
        let per_row = nt * nc + nt + nc;
        let mut t = RewardTable {
            profile,
            inputs,
            failure,
            rules,
            run_load,
            threads,
            calls,
            joint: Vec::with_capacity(rows.len() * nt * nc),
            thread_only: Vec::with_capacity(rows.len() * nt),
            call_only: Vec::with_capacity(rows.len() * nc),
            best: Vec::with_capacity(rows.len()),
        };
        let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for r in rewards.chunks(per_row) {
            t.joint.extend_from_slice(&r[..nt * nc]);
            t.thread_only.extend_from_slice(&r[nt * nc..nt * nc + nt]);
            t.call_only.extend_from_slice(&r[nt * nc + nt..]);
            t.best.push([max(&r[..nt * nc]), max(&r[nt * nc..nt * nc + nt]), max(&r[nt * nc + nt..])]);
        }
        Ok(t)
    }

    pub fn rows(&self) -> usize {
        self.rules.len()
    }
    pub fn grid(&self, kind: AgentKind) -> &[u32] {
        match kind {
            AgentKind::Threads => &self.threads,
            AgentKind::Calls => &self.calls,
        }
    }
    /// Reward of both loads chosen (grid indices).
    pub fn joint(&self, row: usize, t: usize, c: usize) -> f64 {
        self.joint[(row * self.threads.len() + t) * self.calls.len() + c]
    }
    /// Reward of one agent's choice with the row's other load.
    pub fn single(&self, row: usize, kind: AgentKind, a: usize) -> f64 {
        match kind {
            AgentKind::Threads => self.thread_only[row * self.threads.len() + a],
            AgentKind::Calls => self.call_only[row * self.calls.len() + a],
        }
    }
    /// Best reward over the whole grid: the joint grid, or one agent's grid (computed once,
    /// when the table is built).
    pub fn optimum(&self, row: usize, single: Option<AgentKind>) -> f64 {
        let k = match single {
            None => 0,
            Some(AgentKind::Threads) => 1,
            Some(AgentKind::Calls) => 2,
        };
        self.best[row][k]
    }
    /// The best single fixed load test: the choice (both loads, or one agent's load with each
    /// row's other load when `single`) with the highest total reward over all rows, with that
    /// total over the rows' optima and over the uniform random choice's expected total.
    pub fn best_fixed(&self, single: Option<AgentKind>) -> FixedLoad {
        let (nt, nc) = (self.threads.len(), self.calls.len());
        let choices: Vec<(Option<usize>, Option<usize>)> = match single {
            None => (0..nt).flat_map(|t| (0..nc).map(move |c| (Some(t), Some(c)))).collect(),
            Some(AgentKind::Threads) => (0..nt).map(|t| (Some(t), None)).collect(),
            Some(AgentKind::Calls) => (0..nc).map(|c| (None, Some(c))).collect(),
        };
        let reward = |row: usize, (t, c): (Option<usize>, Option<usize>)| match (t, c) {
            (Some(t), Some(c)) => self.joint(row, t, c),
            (Some(t), None) => self.single(row, AgentKind::Threads, t),
            (None, Some(c)) => self.single(row, AgentKind::Calls, c),
            (None, None) => 0.0,
        };
        let totals: Vec<f64> = choices.iter().map(|&a| (0..self.rows()).map(|r| reward(r, a)).sum()).collect();
        let best = (0..choices.len()).max_by(|&a, &b| totals[a].total_cmp(&totals[b])).unwrap_or(0);
        let optimum: f64 = (0..self.rows()).map(|r| self.optimum(r, single)).sum();
        let random = totals.iter().sum::<f64>() / totals.len().max(1) as f64;
        let (t, c) = choices[best];
        FixedLoad {
            threads: t.map(|i| self.threads[i]),
            calls: c.map(|i| self.calls[i]),
            over_optimum: totals[best] / optimum,
            over_random: totals[best] / random,
        }
    }

    /// Standard deviation of rewards over the joint table: the scale Q-targets are divided by.
    pub fn reward_scale(&self) -> f64 {
        let n = self.joint.len().max(1) as f64;
        let m = self.joint.iter().sum::<f64>() / n;
        let v = self.joint.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / n;
        if v.sqrt() > 1e-9 {
            v.sqrt()
        } else {
            1.0
        }
    }
}

/// The best single fixed load test of a service ([`RewardTable::best_fixed`]); a load the
/// choice leaves to each row is `None`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FixedLoad {
    pub threads: Option<u32>,
    pub calls: Option<u32>,
    /// Its total reward over the rows' optima (1 = one load test is the worst case everywhere).
    pub over_optimum: f64,
    /// Its total reward over the uniform random choice's.
    pub over_random: f64,
}

/// One service's environment: `reset` draws a state (a dataset row), `step` returns the reward
/// of a choice on it. Actions do not change the next state, which is drawn independently.
pub struct Env<'a> {
    pub table: &'a RewardTable,
    rng: sfr2l_core::rng::SplitMix64,
}

/// A choice of one or both loads, as grid indices; `None` = the run's own value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    pub threads: Option<usize>,
    pub calls: Option<usize>,
}

impl<'a> Env<'a> {
    pub fn new(table: &'a RewardTable, seed: u64) -> Self {
        Self { table, rng: sfr2l_core::rng::SplitMix64::new(seed) }
    }
    pub fn reset(&mut self) -> usize {
        self.rng.below(self.table.rows())
    }
    pub fn step(&self, row: usize, a: Action) -> f64 {
        match (a.threads, a.calls) {
            (Some(t), Some(c)) => self.table.joint(row, t, c),
            (Some(t), None) => self.table.single(row, AgentKind::Threads, t),
            (None, Some(c)) => self.table.single(row, AgentKind::Calls, c),
            (None, None) => f64::NAN,
        }
    }
}
