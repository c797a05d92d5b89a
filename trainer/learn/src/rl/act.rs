//! Acting: every agent's epsilon-greedy and greedy choices on an epoch's states, with the
//! dependent agent's greedy chain (split from the protocol).

use super::env::RewardTable;
use super::qnet::QModel;
use super::state::{matrix, q_rows, raw_states, standardise};
use super::train::{Learner, LearnerEpoch};
use burn::prelude::*;
use sfr2l_core::agent::{argmax, Extra};
use sfr2l_core::rng::SplitMix64;

/// Whether the agent's state includes the first agent's choice (dependent second agent).
fn is_dependent(a: usize, l: &Learner) -> bool {
    a > 0 && matches!(l.spec.extra, Extra::FirstAction(_))
}

/// Every agent's choices on the epoch's states (`rows[service][interaction]`), in acting order:
/// a dependent agent sees the first agent's actual choice. Epsilon-greedy on `explore`. The
/// services' forward passes of one agent run on two threads; the exploration draws follow in
/// the same order as before, so the choices do not depend on the threading.
pub(super) fn act(
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
        let width = l.spec.state_width(&l.inputs);
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
    let gq = q_rows(
        valid.forward(n, matrix(standardise(&graw, &l.norms[n]), differ.len(), l.spec.state_width(&l.inputs), infer)),
    );
    for (k, &j) in differ.iter().enumerate() {
        g[j] = argmax(&gq[k]).unwrap_or(0);
    }
    g
}
