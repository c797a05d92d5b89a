//! Training the simulator MLP with Adam and early stopping on the validation slice.

use super::config::SimConfig;
use crate::nn::{tensor_from_rows, Mlp, MlpWeights};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use sfr2l_core::rng::SplitMix64;
/// Standardised training material: inputs `[rows][inputs]`, targets `[rows][2]`.
pub struct Xy<'a> {
    pub x: &'a [Vec<f32>],
    pub y: &'a [[f32; 2]],
}

/// What one member's training did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberReport {
    pub seed: u64,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_valid_mse: f64,
    pub seconds: f64,
}

/// Trains one network; returns the weights of the epoch with the lowest validation MSE.
/// `on_epoch(epoch, valid_mse)` reports progress.
pub fn train_member(
    cfg: &SimConfig,
    seed: u64,
    train: &Xy,
    valid: &Xy,
    base: &Device,
    mut on_epoch: impl FnMut(usize, f64),
) -> (MlpWeights, MemberReport) {
    let started = std::time::Instant::now();
    let device = base.clone().autodiff();
    device.seed(seed);
    let init = MlpWeights::init(&cfg.widths(train.x.first().map_or(0, Vec::len)), seed);
    let mut model = Mlp::from_weights(&init, &device);
    let mut optim = AdamConfig::new().init();
    let mut rng = SplitMix64::new(seed ^ 0xB47C);
    let mut order: Vec<usize> = (0..train.x.len()).collect();

    let eval_device = device.clone().inner();
    let vx = tensor_from_rows(valid.x, &eval_device);
    let vy = tensor_from_rows(valid.y, &eval_device);

    let mut best = (f64::INFINITY, 0usize, init);
    let mut epochs_run = 0;
    for epoch in 0..cfg.max_epochs {
        rng.shuffle(&mut order);
        for batch in order.chunks(cfg.batch_size) {
            let bx: Vec<&[f32]> = batch.iter().map(|&i| train.x[i].as_slice()).collect();
            let by: Vec<[f32; 2]> = batch.iter().map(|&i| train.y[i]).collect();
            let (_, loss) = model.forward_step(tensor_from_rows(&bx, &device), tensor_from_rows(&by, &device));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.learning_rate, model, grads);
        }
        epochs_run = epoch + 1;
        let (_, vloss) = model.valid().forward_step(vx.clone(), vy.clone());
        let v = f64::from(vloss.into_scalar::<f32>());
        on_epoch(epoch, v);
        if v < best.0 {
            best = (v, epoch, model.to_weights());
        } else if epoch - best.1 >= cfg.patience {
            break;
        }
    }
    let report = MemberReport {
        seed,
        epochs_run,
        best_epoch: best.1,
        best_valid_mse: best.0,
        seconds: started.elapsed().as_secs_f64(),
    };
    (best.2, report)
}

/// Predictions of an ensemble (mean over members), standardised in and out, on burn's CPU
/// backend without autodiff. input: `[rows][inputs]` -> `[rows][2]`.
pub fn predict_ensemble<R: AsRef<[f32]>>(members: &[MlpWeights], x: &[R]) -> Vec<[f32; 2]> {
    let device = Device::flex();
    let input = tensor_from_rows(x, &device);
    let mut sum: Option<Tensor<2>> = None;
    for w in members {
        let out = Mlp::from_weights(w, &device).forward(input.clone());
        sum = Some(match sum {
            Some(s) => s + out,
            None => out,
        });
    }
    let Some(sum) = sum else { return vec![] };
    let mean = sum.div_scalar(members.len() as f32);
    let flat = mean.into_data().try_to_vec::<f32>().unwrap_or_default();
    flat.chunks(2).map(|c| [c[0], c[1]]).collect()
}
