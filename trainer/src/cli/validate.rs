//! `sfr2l validate`'s command line.

use super::LabSetupArgs;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Lab settings; the lab takes the agents' study (its topology overrides apply).
    #[command(flatten)]
    pub setup: LabSetupArgs,
    /// Exported agents: `policies/sN/agents/<configuration>/seed-S`.
    #[arg(long, required_unless_present = "table")]
    pub agents: Option<PathBuf>,
    /// Every Table 5 cell (seed 1 of each configuration, per dataset): per-cell files beside the
    /// agents, `report/validation.md`, and the Val. section of `--report`.
    #[arg(long, conflicts_with_all = ["agents", "out", "attach"])]
    pub table: bool,
    /// Datasets of `--table` (comma-separated).
    #[arg(long, alias = "studies", value_delimiter = ',', default_value = "s1,s2,s3,s4,s5", value_parser = super::study_name)]
    pub datasets: Vec<String>,
    /// Folder of the exported agents for `--table`.
    #[arg(long, default_value = "policies")]
    pub policies: PathBuf,
    /// The Table 5 report that gets the Val. section (`--table`); validation.md goes beside it.
    #[arg(long, default_value = "report/table5.md")]
    pub report: PathBuf,
    /// Collaborative configurations' services (their folders are `<configuration>-x<services>`).
    #[arg(long, default_value_t = 5)]
    pub services: usize,
    /// States replayed (drawn from the run's decisions.csv, service 0).
    #[arg(long, default_value_t = 20)]
    pub samples: usize,
    /// Seed of the state draw and of the random baseline.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also run each state's test inside Envoy (the filter's load-test mode decides and sends it).
    #[arg(long)]
    pub inline: bool,
    /// Per-sample results (CSV); default `<agents>/validation.csv`. The summary goes beside it
    /// (`.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted validation from its CSV.
    #[arg(long)]
    pub resume: bool,
    /// Use a lab started with `lab up` (same profile topology) instead of starting one.
    #[arg(long)]
    pub attach: bool,
    /// Tries per run before the validation stops with an error (a run that fails its
    /// conservation check is retried, never dropped).
    #[arg(long, default_value_t = 3)]
    pub tries: u32,
    /// Path requested on the upstream (outside and, with `--inline`, inside Envoy); default:
    /// the study's `target.path`.
    #[arg(long)]
    pub path: Option<String>,
    /// With `--inline`: how long a call Envoy refuses at dispatch holds its thread's slot in the
    /// filter, in microseconds (`loadtest.refusal_cost_us`, default 150: a fortio thread's
    /// local-503 round trip on this lab). To calibrate it for another machine, compare the
    /// inside and outside QPS of tests whose calls are mostly refused.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub refusal_cost_us: Option<u32>,
}
