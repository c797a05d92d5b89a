//! Every knob of `sfr2l sim fit`, saved as `config.json` beside the simulator it produced.

use burn::prelude::*;

/// Simulator training settings. The defaults are the ones `report/table4.md` was made with.
#[derive(Config, Debug, PartialEq)]
pub struct SimConfig {
    /// Seed of the split, the initialisation and the batch order.
    #[config(default = 1)]
    pub seed: u64,
    /// Share of configurations held out for the test MSE (paper: 8:2).
    #[config(default = 0.2)]
    pub test_fraction: f64,
    /// Share of the remaining configurations used as the early-stopping validation slice.
    #[config(default = 0.1)]
    pub valid_fraction: f64,
    /// Width of each hidden layer (paper: 512).
    #[config(default = 512)]
    pub hidden: usize,
    /// Number of hidden layers (paper: 3).
    #[config(default = 3)]
    pub hidden_layers: usize,
    /// Adam learning rate. The paper's 1e-6..1e-5 needs far more epochs than our 2,000-row
    /// datasets warrant; with early stopping 1e-4 reaches the same plateau in minutes.
    #[config(default = 1e-4)]
    pub learning_rate: f64,
    /// Mini-batch size.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Upper bound on epochs; early stopping usually ends sooner.
    #[config(default = 300)]
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation loss; the best weights are kept.
    #[config(default = 30)]
    pub patience: usize,
    /// Ensemble members (different seeds). The exported simulator predicts their mean and
    /// reports their spread as an uncertainty output. 1 = the paper's single network.
    #[config(default = 3)]
    pub ensemble: usize,
    /// Ridge penalties (alpha) tried by the ridge baseline; the validation slice picks one.
    #[config(default = "vec![1e-3, 1e-2, 1e-1, 1.0]")]
    pub ridge_alphas: Vec<f64>,
    /// C values tried by the epsilon-SVR baseline; the validation slice picks one.
    #[config(default = "vec![0.3, 1.0, 3.0, 10.0, 30.0]")]
    pub svr_cs: Vec<f64>,
    /// Epsilon of the epsilon-insensitive loss, in standardised target units.
    #[config(default = 0.1)]
    pub svr_epsilon: f64,
    /// Width of the SVR's Gaussian kernel, exp(-|a-b|^2 / width).
    #[config(default = 9.0)]
    pub svr_kernel_width: f64,
    /// L2 penalties tried by the fractional logistic baseline.
    #[config(default = "vec![1e-4, 1e-2]")]
    pub logistic_l2s: Vec<f64>,
}

/// A setting that makes training meaningless, found before any work starts.
#[derive(Debug, thiserror::Error)]
#[error("config field `{field}`: {msg}")]
pub struct ConfigError {
    pub field: &'static str,
    pub msg: String,
}

impl SimConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |field, msg: &str| Err(ConfigError { field, msg: msg.into() });
        if !(0.05..=0.5).contains(&self.test_fraction) {
            return bad("test_fraction", "must lie in 0.05..=0.5");
        }
        if !(0.02..=0.5).contains(&self.valid_fraction) {
            return bad("valid_fraction", "must lie in 0.02..=0.5");
        }
        if self.hidden == 0 || self.hidden_layers == 0 {
            return bad("hidden", "hidden width and hidden_layers must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return bad("learning_rate", "must lie in (0, 1)");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.max_epochs == 0 {
            return bad("max_epochs", "must be at least 1");
        }
        if self.ensemble == 0 || self.ensemble > 16 {
            return bad("ensemble", "must lie in 1..=16");
        }
        let positive = |v: &[f64]| !v.is_empty() && v.iter().all(|x| *x > 0.0 && x.is_finite());
        if !positive(&self.ridge_alphas) {
            return bad("ridge_alphas", "needs at least one positive value");
        }
        if !positive(&self.svr_cs) {
            return bad("svr_cs", "needs at least one positive value");
        }
        if !positive(&self.logistic_l2s) {
            return bad("logistic_l2s", "needs at least one positive value");
        }
        if self.svr_epsilon < 0.0 || self.svr_kernel_width <= 0.0 {
            return bad("svr_epsilon", "svr_epsilon must be >= 0 and svr_kernel_width > 0");
        }
        Ok(())
    }

    /// Layer widths `[inputs, hidden.., 2]` for a study with `inputs` inputs.
    pub fn widths(&self, inputs: usize) -> Vec<usize> {
        let mut w = vec![inputs];
        w.extend(std::iter::repeat_n(self.hidden, self.hidden_layers));
        w.push(2);
        w
    }
}
