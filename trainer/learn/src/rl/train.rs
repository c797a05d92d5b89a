//! One epoch of Q-learning for one learner: squared error of the taken actions' Q-values
//! against eq. 3 / eq. 8 targets, in mini-batches over the epoch's interactions.

use super::config::RlConfig;
use super::qnet::{QModel, QWeights};
use super::state::matrix;
use crate::data::Standardizer;
use burn::optim::GradientsParams;
use burn::prelude::*;
use sfr2l_core::agent::AgentSpec;
use sfr2l_core::Inputs;

/// An agent while it learns: its model and optimiser, per-service normalisation, reward scale
/// and grid, and the weights of the best epoch so far.
pub(super) struct Learner {
    pub(super) spec: AgentSpec,
    /// The study's inputs (every service's: they share them).
    pub(super) inputs: Inputs,
    pub(super) model: QModel,
    pub(super) optim: burn::optim::ModuleOptimizer,
    pub(super) norms: Vec<Standardizer>,
    pub(super) scales: Vec<f64>,
    pub(super) grids: Vec<Vec<u32>>,
    pub(super) best: Option<QWeights>,
}

/// What one learner saw and did in an epoch, per service: `[service][interaction]`.
pub(super) struct LearnerEpoch {
    /// Standardised states, `[service][interaction * state width]`.
    pub(super) inputs: Vec<Vec<f32>>,
    /// Grid index the agent took (epsilon-greedy).
    pub(super) acted: Vec<Vec<usize>>,
    /// Grid index the greedy policy takes.
    pub(super) greedy: Vec<Vec<usize>>,
    /// `max_a Q(s, a)`: the next state's value when the discount is > 0.
    pub(super) qmax: Vec<Vec<f32>>,
}

/// The epoch's rewards, shared by every learner.
pub(super) struct EpochRewards<'a> {
    /// `[service][interaction]` eq. 3 reward of the taken actions.
    pub(super) per_service: &'a [Vec<f64>],
    /// `[interaction]` mean over services (eq. 8's second term).
    pub(super) mean: &'a [f64],
}

/// The run's training settings.
pub(super) struct StepSettings<'a> {
    pub(super) cfg: &'a RlConfig,
    /// Adam learning rate (single-service or collaborative).
    pub(super) lr: f64,
    /// Collaborative: targets follow eq. 8.
    pub(super) collab: bool,
}

/// One epoch of training for one learner: mini-batches over the epoch's interactions.
pub(super) fn train_learner(
    l: &mut Learner,
    seen: &LearnerEpoch,
    rewards: &EpochRewards,
    step: &StepSettings,
    device: &Device,
) {
    let StepSettings { cfg, lr, collab } = *step;
    let (r_rl, mean_r) = (rewards.per_service, rewards.mean);
    let (n_svc, inter) = (r_rl.len(), mean_r.len());
    let device = device.clone();
    let width = l.spec.state_width(&l.inputs);
    let targets: Vec<Vec<f32>> = (0..n_svc)
        .map(|n| {
            (0..inter)
                .map(|j| {
                    let r = if collab { r_rl[n][j] + cfg.beta * mean_r[j] } else { r_rl[n][j] };
                    let next = if cfg.discount > 0.0 && j + 1 < inter {
                        cfg.discount * f64::from(seen.qmax[n][j + 1])
                    } else {
                        0.0
                    };
                    (r / l.scales[n] + next) as f32
                })
                .collect()
        })
        .collect();
    for j0 in (0..inter).step_by(cfg.batch_size) {
        let j1 = (j0 + cfg.batch_size).min(inter);
        let b = j1 - j0;
        let batches: Vec<(Tensor<2>, Tensor<2>, Tensor<2>)> = (0..n_svc)
            .map(|n| {
                let na = l.grids[n].len();
                let x = matrix(seen.inputs[n][j0 * width..j1 * width].to_vec(), b, width, &device);
                let mut oh = vec![0.0f32; b * na];
                for (k, j) in (j0..j1).enumerate() {
                    oh[k * na + seen.acted[n][j]] = 1.0;
                }
                (x, matrix(oh, b, na, &device), matrix(targets[n][j0..j1].to_vec(), b, 1, &device))
            })
            .collect();
        let loss = if n_svc == 1 {
            batches.into_iter().next().map(|(x, oh, tg)| l.model.forward_step(0, x, oh, tg).1)
        } else {
            l.model.services_loss(batches)
        };
        let Some(loss) = loss else { continue };
        let grads = GradientsParams::from_grads(loss.backward(), &l.model);
        let model = std::mem::replace(&mut l.model, QModel { trunk: crate::nn::Mlp { layers: vec![] }, heads: vec![] });
        l.model = l.optim.step(lr, model, grads);
    }
}
