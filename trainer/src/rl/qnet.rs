//! Q-networks: a trunk (the paper's SNet, shared by agents of one type across services) and
//! one head per service (PNet). A single-service agent is the same shape with one head:
//! trunk = 2 hidden layers of 512, head = the output layer; collaborative heads add one hidden
//! layer of 512 (paper: "SNet = 2 layers of 512 at the end of the shared part, PNet = one
//! hidden layer of 512").

use crate::nn::{Mlp, MlpWeights};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Plain weights of a learner (trunk + heads), for export and best-epoch copies.
#[derive(Debug, Clone, PartialEq)]
pub struct QWeights {
    pub trunk: MlpWeights,
    pub heads: Vec<MlpWeights>,
}

#[derive(Module, Debug)]
pub struct QModel {
    pub trunk: Mlp,
    pub heads: Vec<Mlp>,
}

impl QWeights {
    /// `state` inputs, `actions` outputs, `services` heads; `head_hidden` = 0 for a plain
    /// Q-network, > 0 for collaborative heads.
    pub fn init(
        state: usize,
        hidden: usize,
        trunk_layers: usize,
        head_hidden: usize,
        actions: usize,
        services: usize,
        seed: u64,
    ) -> Self {
        let mut widths = vec![state];
        widths.extend(std::iter::repeat_n(hidden, trunk_layers));
        let trunk = MlpWeights::init(&widths, seed);
        let heads = (0..services)
            .map(|n| {
                let w: Vec<usize> =
                    if head_hidden > 0 { vec![hidden, head_hidden, actions] } else { vec![hidden, actions] };
                MlpWeights::init(&w, seed.wrapping_add(1 + n as u64))
            })
            .collect();
        Self { trunk, heads }
    }
}

impl QModel {
    pub fn from_weights(w: &QWeights, device: &Device) -> Self {
        Self {
            trunk: Mlp::from_weights(&w.trunk, device),
            heads: w.heads.iter().map(|h| Mlp::from_weights(h, device)).collect(),
        }
    }
    pub fn to_weights(&self) -> QWeights {
        QWeights { trunk: self.trunk.to_weights(), heads: self.heads.iter().map(Mlp::to_weights).collect() }
    }
    /// input: `[batch, state]` standardised -> `[batch, actions]` Q-values in reward-scale units.
    pub fn forward(&self, head: usize, x: Tensor<2>) -> Tensor<2> {
        let h = relu(self.trunk.forward(x));
        self.heads[head].forward(h)
    }
    /// The step shared by acting and training: Q-values, and the squared error of the chosen
    /// actions' Q against the targets. x: `[batch, state]`, onehot: `[batch, actions]`,
    /// target: `[batch, 1]` -> (`[batch, actions]`, `[1]`).
    pub fn forward_step(
        &self,
        head: usize,
        x: Tensor<2>,
        onehot: Tensor<2>,
        target: Tensor<2>,
    ) -> (Tensor<2>, Tensor<1>) {
        let q = self.forward(head, x);
        let q_sa = (q.clone() * onehot).sum_dim(1);
        let loss = (q_sa - target).powi_scalar(2).mean();
        (q, loss)
    }
}
