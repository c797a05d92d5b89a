//! Dense networks shared by the simulator and the agents: the paper's MLP (ReLU hidden layers) on
//! burn, and its plain-weights form that the ONNX writer reads.
//!
//! Weights live in two forms: the burn module while training, and [`MlpWeights`] (plain `f32`
//! vectors) for keeping the best epoch, exporting to ONNX and reloading. Initialisation draws
//! from our own seeded generator, so the same seed gives the same network on every backend.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::relu;
use sfr2l_core::rng::SplitMix64;

/// One dense layer: `weight` is `[d_in, d_out]` row-major (burn's `Linear` layout), `bias` `[d_out]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// A plain copy of an MLP: ReLU after every layer but the last.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpWeights {
    pub layers: Vec<Dense>,
}

impl MlpWeights {
    /// PyTorch's default init: weights and biases uniform in `±1/sqrt(d_in)`.
    /// `widths` = `[d_in, hidden.., d_out]`.
    pub fn init(widths: &[usize], seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let layers = widths
            .windows(2)
            .map(|w| {
                let (d_in, d_out) = (w[0], w[1]);
                let k = 1.0 / (d_in as f64).sqrt();
                let mut draw =
                    |n: usize| -> Vec<f32> { (0..n).map(|_| ((rng.unit() * 2.0 - 1.0) * k) as f32).collect() };
                let weight = draw(d_in * d_out);
                let bias = draw(d_out);
                Dense { d_in, d_out, weight, bias }
            })
            .collect();
        Self { layers }
    }

    /// Reference forward pass in plain Rust (`f32`, same op order as the ONNX graph).
    /// input: `[inputs]` standardised; output: `[d_out]` standardised.
    pub fn forward_one(&self, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        let last = self.layers.len().saturating_sub(1);
        for (li, l) in self.layers.iter().enumerate() {
            let mut out = l.bias.clone();
            for (i, hv) in h.iter().enumerate() {
                let row = &l.weight[i * l.d_out..(i + 1) * l.d_out];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += hv * w;
                }
            }
            if li < last {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = out;
        }
        h
    }

    pub fn num_params(&self) -> usize {
        self.layers.iter().map(|l| l.weight.len() + l.bias.len()).sum()
    }
}

/// The burn module.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
}

impl Mlp {
    pub fn from_weights(w: &MlpWeights, device: &Device) -> Self {
        let layers = w
            .layers
            .iter()
            .map(|d| Linear {
                weight: Param::from_tensor(Tensor::<2>::from_data(
                    TensorData::new(d.weight.clone(), [d.d_in, d.d_out]),
                    device,
                )),
                bias: Some(Param::from_tensor(Tensor::<1>::from_data(
                    TensorData::new(d.bias.clone(), [d.d_out]),
                    device,
                ))),
            })
            .collect();
        Self { layers }
    }

    pub fn to_weights(&self) -> MlpWeights {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let [d_in, d_out] = l.weight.val().dims();
                let weight = l.weight.val().into_data().try_to_vec::<f32>().unwrap_or_default();
                let bias = l
                    .bias
                    .as_ref()
                    .map(|b| b.val().into_data().try_to_vec::<f32>().unwrap_or_default())
                    .unwrap_or_else(|| vec![0.0; d_out]);
                Dense { d_in, d_out, weight, bias }
            })
            .collect();
        MlpWeights { layers }
    }

    /// input: `[batch, d_in]` standardised features; output: `[batch, d_out]` standardised targets.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len().saturating_sub(1);
        self.layers.iter().enumerate().fold(x, |h, (i, l)| {
            let h = l.forward(h);
            if i < last {
                relu(h)
            } else {
                h
            }
        })
    }

    /// The one step shared by training and evaluation: predictions and the mean squared error
    /// over batch and outputs. x: `[batch, d_in]`, y: `[batch, d_out]` -> (`[batch, d_out]`, `[1]`).
    pub fn forward_step(&self, x: Tensor<2>, y: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let pred = self.forward(x);
        let loss = (pred.clone() - y).powi_scalar(2).mean();
        (pred, loss)
    }
}

/// Rows as a `[rows, width]` tensor.
pub fn tensor_from_rows<R: AsRef<[f32]>>(rows: &[R], device: &Device) -> Tensor<2> {
    let width = rows.first().map_or(0, |r| r.as_ref().len());
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.as_ref().iter().copied()).collect();
    Tensor::<2>::from_data(TensorData::new(flat, [rows.len(), width]), device)
}

/// A `[rows, width]` tensor back to rows.
pub fn rows_from_tensor(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, w] = t.dims();
    let flat = t.into_data().try_to_vec::<f32>().unwrap_or_default();
    flat.chunks(w.max(1)).map(<[f32]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_seeded_and_bounded() {
        let a = MlpWeights::init(&[9, 16, 2], 5);
        assert_eq!(a, MlpWeights::init(&[9, 16, 2], 5));
        assert_ne!(a, MlpWeights::init(&[9, 16, 2], 6));
        assert_eq!(a.num_params(), 9 * 16 + 16 + 16 * 2 + 2);
        let k = 1.0 / 3.0;
        assert!(a.layers[0].weight.iter().all(|w| w.abs() <= k));
    }

    #[test]
    fn burn_forward_matches_the_plain_forward() {
        let w = MlpWeights::init(&[9, 32, 32, 2], 1);
        let device = Device::flex();
        let m = Mlp::from_weights(&w, &device);
        assert_eq!(m.to_weights(), w);
        let rows: Vec<[f32; 9]> = (0..4).map(|i| std::array::from_fn(|j| (i * 9 + j) as f32 / 10.0 - 1.5)).collect();
        let out = rows_from_tensor(m.forward(tensor_from_rows(&rows, &device)));
        for (r, o) in rows.iter().zip(&out) {
            let plain = w.forward_one(r);
            for (a, b) in plain.iter().zip(o) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }
}
