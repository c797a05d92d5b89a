//! The simulator: the paper's MLP on burn (an ensemble of them), the SVR / logistic / ridge
//! baselines, test metrics, and the fit that exports and checks `simulator.onnx`.

pub mod baselines;
pub mod config;
pub mod export;
pub mod fit;
pub mod metrics;
pub mod table;
pub mod train;

pub use config::SimConfig;
