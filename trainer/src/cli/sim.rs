//! `sfr2l sim ...`: fit, table and predict.

use super::study_name;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Fit the simulator on one dataset and write simulator.onnx, simulator.json, config.json.
    Fit(SimFitArgs),
    /// Fit all five datasets and write report/table4.md beside the paper's figures.
    Table(SimTableArgs),
    /// Predict with an exported simulator (tract) for one setting of the nine features.
    Predict(SimPredictArgs),
}

/// Overrides of the training config; unset flags keep the config file's or default values.
#[derive(Debug, Args, Clone, Default)]
pub struct SimTuneArgs {
    /// A config.json (as written beside a simulator) to start from.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed of split, initialisation and batch order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Maximum epochs per network (early stopping usually ends sooner).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Ensemble members (1 = the paper's single MLP).
    #[arg(long)]
    pub ensemble: Option<usize>,
    /// Hidden layer width (paper: 512).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
}

#[derive(Debug, Args)]
pub struct SimFitArgs {
    /// Dataset CSV (as written by `sfr2l lab collect`).
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder, e.g. policies/s1 (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// The dataset's study (a name under studies/ or a path); default: the one its .meta.json
    /// names. `--profile` is the old name of this flag.
    #[arg(long, alias = "profile")]
    pub study: Option<String>,
    #[command(flatten)]
    pub tune: SimTuneArgs,
}

#[derive(Debug, Args)]
pub struct SimTableArgs {
    /// Folder holding s1.csv .. s5.csv.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Folder for the simulators (one sub-folder per dataset).
    #[arg(long, default_value = "policies")]
    pub out_dir: PathBuf,
    /// The Markdown report to write.
    #[arg(long, default_value = "report/table4.md")]
    pub report: PathBuf,
    /// Only these datasets (study names, comma-separated, e.g. s1,s3); default all five.
    #[arg(long, value_delimiter = ',', value_parser = study_name)]
    pub only: Option<Vec<String>>,
    #[command(flatten)]
    pub tune: SimTuneArgs,
}

#[derive(Debug, Args)]
pub struct SimPredictArgs {
    /// Folder with simulator.onnx (e.g. policies/s1), or the .onnx file.
    #[arg(long)]
    pub sim: PathBuf,
    /// Nine comma-separated raw values in feature order (max_pending_requests, ..., calls).
    #[arg(long)]
    pub features: String,
}
