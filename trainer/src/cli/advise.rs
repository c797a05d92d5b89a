//! `sfr2l advise`'s command line.

use crate::advise::search::{Objective, DEFAULT_LEVELS};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// Folder with simulator.onnx and its card simulator.json (e.g. policies/s1).
    #[arg(long)]
    pub sim: PathBuf,
    /// fortio -c of the load to advise for.
    #[arg(long)]
    pub threads: u32,
    /// fortio -n of the load to advise for.
    #[arg(long)]
    pub calls: u32,
    /// best: lowest predicted 503 rate; worst: the rule that fails worst (highest 503 rate).
    #[arg(long, default_value = "best")]
    pub objective: Objective,
    /// Values per rule axis when its range has more integers (ends included); all integers otherwise.
    #[arg(long, default_value_t = DEFAULT_LEVELS)]
    pub levels: usize,
    /// Write the advised DestinationRule here (it is always printed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the median rule (what the advice is compared with) here.
    #[arg(long)]
    pub median_out: Option<PathBuf>,
    /// metadata.name and spec.host of the DestinationRule; default: the study's
    /// `target.service`.
    #[arg(long)]
    pub host: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Measure the advice on the study's real lab: the advised and the median rule run this
    /// load this many times each, in turns (0: no check).
    #[arg(long, default_value_t = 0)]
    pub check: u32,
    /// The lab of `--check` (its `--study` is the simulator's; the other flags as `lab up`).
    #[command(flatten)]
    pub lab: crate::cli::LabSetupArgs,
}
