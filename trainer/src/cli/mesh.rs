//! `sfr2l mesh ...`: a collection in your own cluster.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum MeshCommand {
    /// Render a collection's rows as manifests (the rule, the same rule in the WasmPlugin with
    /// the row's generation, the load Job announcing the run), validated offline.
    Plan(MeshPlanArgs),
    /// Collect a study's dataset in a cluster through kubectl, row by row, with the lab's checks;
    /// resumable.
    Collect(MeshCollectArgs),
}

#[derive(Debug, Args, Clone)]
pub struct MeshRowsArgs {
    /// The study (a name under studies/, or a path).
    #[arg(long)]
    pub study: String,
    /// Rows; default: the study's `collection.rows`.
    #[arg(long)]
    pub rows: Option<u32>,
    /// Seed of the draws; default: the study's `collection.seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Repeat block `CONFIGS:REPEATS`; default: the study's.
    #[arg(long)]
    pub repeats: Option<sfr2l_lab::collect::Repeats>,
    /// The `manifests/` folder (its `client/` tree).
    #[arg(long, default_value = "manifests")]
    pub tree: PathBuf,
}

#[derive(Debug, Args)]
pub struct MeshPlanArgs {
    #[command(flatten)]
    pub rows: MeshRowsArgs,
    /// Folder to write: `client/`, `rows/NNNNN/`, `plan.csv`.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct MeshCollectArgs {
    #[command(flatten)]
    pub rows: MeshRowsArgs,
    /// The kubectl context of the cluster (checked before anything is written).
    #[arg(long)]
    pub context: String,
    /// Output CSV; `<name>.meta.json` is written beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue an interrupted collection of the same study and seed.
    #[arg(long)]
    pub resume: bool,
    /// Seconds a rule may take to reach the sidecar, a run to finish and its trace to come back;
    /// a row past it is recorded as failed and retried by --resume.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Tries per row before it is skipped.
    #[arg(long, default_value_t = 2)]
    pub tries: u32,
    /// The kubectl to run.
    #[arg(long, default_value = "kubectl")]
    pub kubectl: String,
}
