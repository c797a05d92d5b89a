//! Command-line surface: clap types only, parsed at the edge into domain types (profiles,
//! configurations, durations, repeat blocks). `commands/` turns them into settings and calls the
//! library; nothing past `commands/` sees clap.

use clap::{Args, Parser, Subcommand};
use sfr2l_core::agent::Configuration;
use std::path::PathBuf;
use std::time::Duration;

mod advise;
mod explore;
mod lab;
mod mesh;
mod sim;
mod study;
mod validate;

/// A study name as a flag value (a DNS label, e.g. `s1`).
pub fn study_name(s: &str) -> Result<String, String> {
    if sfr2l_core::study::is_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a study name (lower-case letters, digits and '-', e.g. s1)"))
    }
}

pub use advise::AdviseArgs;
pub use explore::ExploreArgs;
pub use lab::*;
pub use mesh::{MeshCollectArgs, MeshCommand, MeshPlanArgs, MeshRowsArgs};
pub use sim::{SimCommand, SimFitArgs, SimPredictArgs, SimTableArgs, SimTuneArgs};
pub use study::{StudyCheckArgs, StudyCommand, StudyInitArgs};
pub use validate::ValidateArgs;

#[derive(Debug, Parser)]
#[command(
    name = "sfr2l",
    version,
    about = "Find the fault-resilience behaviours of a service mesh that matter: real Envoy lab, traces, simulator, agents."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Study files (studies/<name>.yaml): the target, the rule fields and ranges, the load grid,
    /// the objective and the lab's upstream of what sfr2l is asked to find.
    #[command(subcommand)]
    Study(StudyCommand),
    /// The local mesh lab: real Envoy sidecars in front of the study's real upstream, on loopback.
    #[command(subcommand)]
    Lab(LabCommand),
    /// A fortio-compatible load run (`fortio load -c THREADS -n CALLS -qps 0 URL`).
    Load(LoadArgs),
    /// Trace records from Envoy logs.
    #[command(subcommand)]
    Traces(TracesCommand),
    /// The simulator: fit the MLP and the baselines on a dataset, export ONNX, Table 4.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Model-based RL on an exported simulator: learn agents, Table 5, export them as ONNX.
    #[command(subcommand)]
    Rl(RlCommand),
    /// Istio: render a kustomize overlay that rolls out trained agents in load-test mode.
    Manifests(ManifestsArgs),
    /// Your own cluster: a study's collection as manifests (`plan`), or run through kubectl
    /// (`collect`).
    #[command(subcommand)]
    Mesh(MeshCommand),
    /// The filter as OCI image layouts (Istio's compat and oci Wasm variants), no daemon needed.
    Oci(OciArgs),
    /// The DestinationRule the simulator predicts best (or worst) at a load, as Istio YAML.
    Advise(AdviseArgs),
    /// Serve the what-if explorer page (wasm + tract in the browser) and the policies on loopback.
    Explore(ExploreArgs),
    /// The paper's Val.: replay an exported run's states on the real lab, agents against random.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub struct ManifestsArgs {
    /// Exported agents: `policies/sN/agents/<configuration>/seed-S`.
    #[arg(long)]
    pub agents: PathBuf,
    /// The DestinationRule the agents decide for (e.g. manifests/overlays/s1/destinationrule.yaml).
    #[arg(long)]
    pub rules: PathBuf,
    /// Render for this study's own target (service, namespace, port, subset, path), beside the
    /// user's deployed service, with their rule file as it is; default: the demo tree's httpbin
    /// in namespace `sfr2l`.
    #[arg(long)]
    pub study: Option<String>,
    /// The overlay folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also pin the dataset's simulator (the sidecar predicts the reward and reports the residual).
    #[arg(long)]
    pub simulator: bool,
    /// The built filter: served by the artifact server, `url` + `sha256` pinned in the WasmPlugin.
    #[arg(long)]
    pub wasm: Option<PathBuf>,
    /// Repository prefix the artifact is pushed under (`<registry>/artifacts@sha256:...`).
    #[arg(long, default_value = "registry.example.com/sfr2l")]
    pub registry: String,
    /// Name of the rollout's inline load test (a new name starts a new test).
    #[arg(long, default_value = "rollout-1")]
    pub trigger: String,
    /// The kustomize tree with `base/` and `artifacts/`.
    #[arg(long, default_value = "manifests")]
    pub tree: PathBuf,
    /// Where the artifact's OCI image layout is written (push it with oras).
    #[arg(long, default_value = "target/oci/artifacts")]
    pub oci: PathBuf,
}

#[derive(Debug, Args)]
pub struct OciArgs {
    /// The built filter.
    #[arg(long, default_value = "target/wasm32-wasip1/release/sfr2l_filter.wasm")]
    pub wasm: PathBuf,
    /// Output folder: `filter-compat/` and `filter-oci/` layouts.
    #[arg(long, default_value = "target/oci")]
    pub out: PathBuf,
    /// Tag recorded in each layout's index.json.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub tag: String,
}

#[derive(Debug, Subcommand)]
pub enum RlCommand {
    /// Train one agent configuration and export its agents (ONNX + cards), curve and decisions.
    Learn(RlLearnArgs),
    /// Run the configurations over datasets and seeds; write report/table5.md and the curves.
    Table(RlTableArgs),
    /// Ask an exported agent (tract) for its decision on one state.
    Decide(RlDecideArgs),
}

#[derive(Debug, Args)]
pub struct RlDecideArgs {
    /// The agent's .onnx file (e.g. policies/s1/agents/thread-call/seed-1/thread.onnx).
    #[arg(long)]
    pub agent: PathBuf,
    /// Comma-separated raw state values in the agent's state order (see its .json card).
    #[arg(long)]
    pub state: String,
}

/// Overrides of the RL config; unset flags keep the config file's or default values.
#[derive(Debug, Args, Clone, Default)]
pub struct RlTuneArgs {
    /// A config.json (as written beside trained agents) to start from.
    #[arg(long)]
    pub rl_config: Option<PathBuf>,
    /// Epochs (paper: 500).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Simulator interactions per epoch and service (paper: 1,000).
    #[arg(long)]
    pub interactions: Option<usize>,
    /// Hidden width of the Q-networks (paper: 512).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Weight of the services' mean reward in eq. 8.
    #[arg(long)]
    pub beta: Option<f64>,
    /// Discount of the next state's value (default 0: see `sfr2l rl` docs).
    #[arg(long)]
    pub discount: Option<f64>,
    /// What the agents maximise: worst = QPS x P503 (the paper), best = QPS x P200.
    #[arg(long, value_enum, default_value = "worst")]
    pub objective: sfr2l_learn::rl::env::Objective,
}

#[derive(Debug, Args)]
pub struct RlLearnArgs {
    /// Simulator folder (simulator.onnx + simulator.json), e.g. policies/s1.
    #[arg(long)]
    pub sim: PathBuf,
    /// call, thread, thread-and-call (Thread&Call), thread-call, call-thread.
    #[arg(long)]
    pub config: Configuration,
    /// Services (1 = single service; 5 = the paper's "*5" collaborative agents).
    #[arg(long, default_value_t = 1)]
    pub services: usize,
    /// Collaborative over S1..S5 (one service per dataset, simulators from --policies).
    #[arg(long)]
    pub heterogeneous: bool,
    /// Folder holding s1..s5 simulators (heterogeneous mode).
    #[arg(long, default_value = "policies")]
    pub policies: PathBuf,
    /// Dataset the states come from (default: the one named in the simulator card).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (default: <sim>/agents/<config>[-x<services>]/seed-<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub tune: RlTuneArgs,
}

#[derive(Debug, Args)]
pub struct RlTableArgs {
    /// Datasets (study names, comma-separated); simulators come from <policies>/<dataset>.
    #[arg(long, alias = "studies", value_delimiter = ',', default_value = "s1,s2,s3,s4,s5", value_parser = study_name)]
    pub datasets: Vec<String>,
    /// Configurations (comma-separated slugs, `*5` suffix for collaborative); default all ten.
    #[arg(long, value_delimiter = ',')]
    pub configs: Option<Vec<ConfigChoice>>,
    /// Seeds per cell.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Seeds per collaborative cell (default: --seeds).
    #[arg(long)]
    pub collab_seeds: Option<u64>,
    /// Services of the collaborative configurations.
    #[arg(long, default_value_t = 5)]
    pub services: usize,
    /// Folder holding the simulators; agents of the first seed are exported under
    /// <policies>/<dataset>/agents/.
    #[arg(long, default_value = "policies")]
    pub policies: PathBuf,
    /// The Markdown report to write; curves go to <report dir>/curves/.
    #[arg(long, default_value = "report/table5.md")]
    pub report: PathBuf,
    /// Where the first seed's agents go (default: --policies, i.e. <policies>/<dataset>/agents/).
    #[arg(long)]
    pub export_to: Option<PathBuf>,
    /// Continue an interrupted table: cells saved by an earlier run with the same settings are
    /// taken as they are (each finished cell is saved as it completes).
    #[arg(long)]
    pub resume: bool,
    /// Folder of the saved cells (default: .<report name>-cells beside the report).
    #[arg(long)]
    pub cells: Option<PathBuf>,
    /// Cells trained at once. The table is the same for any value (each cell is deterministic);
    /// a single-agent cell uses one core, so 2 fills a 2-core machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub tune: RlTuneArgs,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Threads (connections).
    #[arg(short = 'c', default_value_t = 4)]
    pub threads: u32,
    /// Exact total calls; 0 = run for -t.
    #[arg(short = 'n', default_value_t = 0)]
    pub calls: u32,
    /// Duration when -n is 0 (e.g. 5s).
    #[arg(short = 't', default_value = "5s", value_parser = istio_duration)]
    pub duration: Duration,
    /// Target total QPS; 0 = max speed.
    #[arg(long, default_value_t = 0.0)]
    pub qps: f64,
    /// Print fortio's JSON result instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_parser = header)]
    pub headers: Vec<(String, String)>,
    /// Run id for the sfr2l filter (x-sfr2l-run); threads and calls headers follow -c and -n.
    #[arg(long)]
    pub run: Option<String>,
    /// Per-request timeout (e.g. 3s).
    #[arg(long, default_value = "3s", value_parser = istio_duration)]
    pub timeout: Duration,
    /// Target URL (http://host:port/path; loopback only).
    pub url: String,
}

#[derive(Debug, Subcommand)]
pub enum TracesCommand {
    /// Read trace records from an Envoy log (file or `-` for stdin, e.g. `kubectl logs -c istio-proxy`).
    Ingest(IngestArgs),
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Log file, or `-` for standard input.
    pub file: String,
    /// Write JSON lines (default) or CSV rows.
    #[arg(long, value_enum, default_value_t = IngestFormat::Jsonl)]
    pub format: IngestFormat,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CSV: the response codes the rate column counts as failure (a study's
    /// `objective.failureCodes`), comma-separated.
    #[arg(long, default_value = "503", value_parser = parse_failure)]
    pub failure_codes: sfr2l_core::Failure,
}

fn parse_failure(s: &str) -> Result<sfr2l_core::Failure, String> {
    sfr2l_core::Failure::from_list(s)
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum IngestFormat {
    Jsonl,
    Csv,
}

/// One entry of `rl table --configs`: a configuration, collaborative with a `*5` (or `*N`)
/// suffix (then over `--services` services).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChoice {
    pub configuration: Configuration,
    /// The suffix as given (`""`, `"*5"` or `"*N"`), kept to echo the command line.
    pub suffix: &'static str,
}

impl ConfigChoice {
    pub fn collaborative(&self) -> bool {
        !self.suffix.is_empty()
    }
}

impl std::str::FromStr for ConfigChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (name, suffix) = match (s.strip_suffix("*5"), s.strip_suffix("*N")) {
            (Some(n), _) => (n, "*5"),
            (_, Some(n)) => (n, "*N"),
            _ => (s, ""),
        };
        Ok(Self { configuration: name.parse()?, suffix })
    }
}

impl std::fmt::Display for ConfigChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.configuration.slug(), self.suffix)
    }
}

/// An Istio duration string (`5s`, `3m`, `250ms`).
fn istio_duration(s: &str) -> Result<Duration, String> {
    let d = sfr2l_core::IstioDuration::parse(s).map_err(|e| e.to_string())?;
    Ok(Duration::from_secs_f64(d.secs()))
}

/// A request header `Name: value`.
fn header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected `Name: value`"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}
