//! Every knob of `sfr2l rl learn`, saved as `config.json` beside the agents it produced.

use burn::prelude::*;

/// Agent training settings; defaults follow the paper where it gives a figure.
#[derive(Config, Debug, PartialEq)]
pub struct RlConfig {
    /// Seed of state sampling, exploration, the random baseline and initialisation.
    #[config(default = 1)]
    pub seed: u64,
    /// Epochs (paper: 500).
    #[config(default = 500)]
    pub epochs: usize,
    /// Simulator interactions per epoch and service (paper: 1,000).
    #[config(default = 1000)]
    pub interactions: usize,
    /// Width of the Q-network's hidden layers (paper: 512).
    #[config(default = 512)]
    pub hidden: usize,
    /// Hidden layers of the trunk (paper: 2; it is the SNet in collaborative runs).
    #[config(default = 2)]
    pub trunk_layers: usize,
    /// Hidden width of each collaborative head (PNet; paper: one hidden layer of 512).
    #[config(default = 512)]
    pub collab_head_hidden: usize,
    /// Adam learning rate of single-service agents (paper: 5e-5).
    #[config(default = 5e-5)]
    pub learning_rate: f64,
    /// Adam learning rate of collaborative nets (paper: 1e-5).
    #[config(default = 1e-5)]
    pub collab_learning_rate: f64,
    /// Interactions per gradient step; each epoch's interactions are used once, in order.
    #[config(default = 100)]
    pub batch_size: usize,
    /// Discount of the next state's value in the Q target. 0 by default: an action does not
    /// change the next state (states are drawn independently from the dataset), so the
    /// problem is a contextual bandit and the target is the received reward.
    #[config(default = 0.0)]
    pub discount: f64,
    /// Epsilon-greedy exploration: linear from `epsilon_start` to `epsilon_end` over the first
    /// `epsilon_decay_share` of the epochs, then constant.
    #[config(default = 1.0)]
    pub epsilon_start: f64,
    #[config(default = 0.05)]
    pub epsilon_end: f64,
    #[config(default = 0.4)]
    pub epsilon_decay_share: f64,
    /// Weight of the services' mean reward in eq. 8 (collaborative runs).
    #[config(default = 0.5)]
    pub beta: f64,
    /// Window of the rolling mean behind the "Sim." figure (paper: 25 epochs).
    #[config(default = 25)]
    pub rolling_window: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("config field `{field}`: {msg}")]
pub struct RlConfigError {
    pub field: &'static str,
    pub msg: String,
}

impl RlConfig {
    pub fn check(&self) -> Result<(), RlConfigError> {
        let bad = |field, msg: &str| Err(RlConfigError { field, msg: msg.into() });
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.interactions == 0 {
            return bad("interactions", "must be at least 1");
        }
        if self.hidden == 0 || self.trunk_layers == 0 {
            return bad("hidden", "hidden width and trunk_layers must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        for (f, v) in [("learning_rate", self.learning_rate), ("collab_learning_rate", self.collab_learning_rate)] {
            if !(v > 0.0 && v < 1.0) {
                return bad(f, "must lie in (0, 1)");
            }
        }
        if !(0.0..1.0).contains(&self.discount) {
            return bad("discount", "must lie in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.epsilon_start) || !(0.0..=1.0).contains(&self.epsilon_end) {
            return bad("epsilon_start", "epsilons must lie in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.epsilon_decay_share) {
            return bad("epsilon_decay_share", "must lie in [0, 1]");
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return bad("beta", "must be >= 0");
        }
        if self.rolling_window == 0 {
            return bad("rolling_window", "must be at least 1");
        }
        Ok(())
    }

    /// Exploration rate at `epoch`.
    pub fn epsilon(&self, epoch: usize) -> f64 {
        let decay = (self.epochs as f64 * self.epsilon_decay_share).max(1.0);
        let f = (epoch as f64 / decay).min(1.0);
        self.epsilon_start + (self.epsilon_end - self.epsilon_start) * f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_decays_linearly_then_holds() {
        let c = RlConfig::new().with_epochs(100);
        assert_eq!(c.epsilon(0), 1.0);
        assert!((c.epsilon(20) - 0.525).abs() < 1e-12);
        assert!((c.epsilon(40) - 0.05).abs() < 1e-12);
        assert!((c.epsilon(99) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn zero_epochs_is_refused() {
        let e = RlConfig::new().with_epochs(0).check().unwrap_err().to_string();
        assert!(e.contains("`epochs`"), "{e}");
    }
}
