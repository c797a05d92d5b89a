//! Model cards: the JSON that sits beside every exported ONNX file and says what it is.

use serde::{Deserialize, Serialize};

pub const CARD_SCHEMA: u32 = 1;

/// Scores of one model on one test set, on standardised targets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Mean of the two per-output MSEs (the paper's Table 4 figure).
    pub mse: f64,
    /// MSE of QPS and of the 503 rate.
    pub mse_per_output: [f64; 2],
    /// Coefficient of determination per output, against the test set's own mean.
    pub r2: [f64; 2],
}

/// One input or output of an exported graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub name: String,
    pub unit: String,
    /// Shape with `batch` as the dynamic first dimension, e.g. `["batch", 1]`.
    pub shape: Vec<serde_json::Value>,
    /// Range the training data covered (inputs) or the output's clamp (outputs).
    pub range: Option<(f64, f64)>,
    pub doc: String,
}

/// The dataset an artifact was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    pub path: String,
    pub sha256: String,
    pub rows: usize,
    pub train_rows: usize,
    pub valid_rows: usize,
    pub test_rows: usize,
}

/// Test metrics of the simulator and the baselines, plus the floor no model can beat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatorMetrics {
    /// The exported ensemble (mean of the members).
    pub mlp_ensemble: Scores,
    /// Each member alone (the paper's single MLP).
    pub mlp_members: Vec<Scores>,
    pub svr: Scores,
    pub logistic: Scores,
    pub ridge: Scores,
    /// Within-configuration share of variance per output, and their mean (None without repeats).
    pub noise_floor: Option<[f64; 2]>,
    pub noise_floor_mean: Option<f64>,
    /// 90% bootstrap intervals of the floor per output and of its mean, and the number of
    /// repeated configurations behind it.
    pub noise_floor_ci90: Option<[[f64; 2]; 2]>,
    pub noise_floor_mean_ci90: Option<[f64; 2]>,
    pub noise_floor_configs: usize,
    /// Penalties the validation slice picked: ridge alpha, SVR C, logistic L2 (per output).
    pub baseline_choices: serde_json::Value,
}

/// `simulator.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatorCard {
    pub schema: u32,
    pub kind: String,
    pub profile: String,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub dataset: DatasetRef,
    pub metrics: SimulatorMetrics,
    pub seed: u64,
    /// The training config (also saved as `config.json`).
    pub config: serde_json::Value,
    pub ensemble: usize,
    pub members: serde_json::Value,
    pub onnx_sha256: String,
    pub git_commit: String,
    pub fit_seconds: serde_json::Value,
    /// The study file the dataset was collected for (absent on cards written before studies,
    /// which name their study in `profile` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<StudyRef>,
}

/// What an artifact says about its study: the name (also in `profile`), the sha256 of the study
/// file's bytes, the target, and the agents' action grids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRef {
    pub name: String,
    pub sha256: String,
    pub target: crate::study::Target,
    pub thread_grid: Vec<u32>,
    pub call_grid: Vec<u32>,
}

impl StudyRef {
    pub fn of(study: &crate::study::Study, sha256: &str) -> Self {
        Self {
            name: study.name.clone(),
            sha256: sha256.to_string(),
            target: study.target.clone(),
            thread_grid: study.thread_grid.values(),
            call_grid: study.call_grid.values(),
        }
    }
}
