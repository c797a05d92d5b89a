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

    /// Collaborative training step: every service's mini-batch through the shared trunk in one
    /// forward pass (`[sum of rows, state]`: one large product instead of one per service), then
    /// each service's rows through its own head. The loss is the mean over services of each
    /// service's mean squared error, as with [`QModel::forward_step`] per service. Per service:
    /// x `[rows, state]`, onehot `[rows, actions]`, target `[rows, 1]` -> `[1]`.
    pub fn services_loss(&self, batches: Vec<(Tensor<2>, Tensor<2>, Tensor<2>)>) -> Option<Tensor<1>> {
        let n = batches.len();
        let rows: Vec<usize> = batches.iter().map(|(x, _, _)| x.dims()[0]).collect();
        let (xs, rest): (Vec<Tensor<2>>, Vec<(Tensor<2>, Tensor<2>)>) =
            batches.into_iter().map(|(x, oh, tg)| (x, (oh, tg))).unzip();
        if xs.is_empty() {
            return None;
        }
        let h = relu(self.trunk.forward(Tensor::cat(xs, 0)));
        let mut start = 0;
        let mut loss: Option<Tensor<1>> = None;
        for (head, ((oh, tg), r)) in rest.into_iter().zip(rows).enumerate() {
            let q = self.heads[head].forward(h.clone().narrow(0, start, r));
            start += r;
            let l = ((q * oh).sum_dim(1) - tg).powi_scalar(2).mean();
            loss = Some(match loss {
                Some(s) => s + l,
                None => l,
            });
        }
        loss.map(|l| l.div_scalar(n as f32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Vec<f32>, r: usize, c: usize, d: &Device) -> Tensor<2> {
        Tensor::<2>::from_data(TensorData::new(v, [r, c]), d)
    }

    /// The collaborative step's loss through one trunk pass equals the mean of the services'
    /// own losses (the old per-service path), up to float summation order.
    #[test]
    fn one_trunk_pass_gives_the_per_service_loss() {
        let d = Device::flex();
        let m = QModel::from_weights(&QWeights::init(3, 16, 2, 8, 4, 3, 7), &d);
        let batch = |n: usize, rows: usize| {
            let x: Vec<f32> = (0..rows * 3).map(|i| ((i * 7 + n * 13) % 11) as f32 / 5.0 - 1.0).collect();
            let mut oh = vec![0.0f32; rows * 4];
            for r in 0..rows {
                oh[r * 4 + (r + n) % 4] = 1.0;
            }
            let tg: Vec<f32> = (0..rows).map(|r| (r as f32 - n as f32) / 3.0).collect();
            (t(x, rows, 3, &d), t(oh, rows, 4, &d), t(tg, rows, 1, &d))
        };
        let rows = [5, 5, 3];
        let each: f32 = (0..3)
            .map(|n| {
                let (x, oh, tg) = batch(n, rows[n]);
                m.forward_step(n, x, oh, tg).1.into_scalar::<f32>()
            })
            .sum::<f32>()
            / 3.0;
        let joint: f32 = m.services_loss((0..3).map(|n| batch(n, rows[n])).collect()).unwrap().into_scalar::<f32>();
        assert!((each - joint).abs() <= 1e-6 * each.abs().max(1.0), "{each} vs {joint}");
        assert!(m.services_loss(vec![]).is_none());
    }
}
