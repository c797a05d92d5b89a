//! From a simulator folder to trained, exported and checked agents.

use super::card::{AgentCard, AgentMetrics, AgentPort, SimulatorRef};
use super::config::RlConfig;
use super::env::{FixedLoad, Objective, RewardTable};
use super::export::{agent_onnx, AgentExport};
use super::protocol::{burn_q_values, run_protocol, EpochStats, RunResult, TrainedAgent};
use crate::data::read_dataset;
use crate::export::folder::StagedDir;
use crate::export::rel_diff;
use anyhow::{bail, Context, Result};
use sfr2l_core::agent::{Configuration, Extra};
use sfr2l_core::artifact::KIND_AGENT;
use sfr2l_core::card::SimulatorCard;
use sfr2l_files::sha256_hex;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A simulator folder, checked against its card and dataset, with its reward table.
pub struct Service {
    pub dir: PathBuf,
    pub card: SimulatorCard,
    pub table: RewardTable,
}

/// Loads `dir/simulator.onnx` and its card, reads the dataset the card names (or `data`),
/// checks that they belong together, and evaluates every reward once.
pub fn load_service(dir: &Path, data: Option<&Path>, objective: Objective) -> Result<Service> {
    let card_path = dir.join("simulator.json");
    let text = std::fs::read_to_string(&card_path).with_context(|| format!("reading {}", card_path.display()))?;
    let card: SimulatorCard = serde_json::from_str(&text).with_context(|| format!("{}", card_path.display()))?;
    let study = sfr2l_files::study::find(&card.profile)
        .with_context(|| format!("{}: field profile names the study", card_path.display()))?
        .study;
    let onnx_path = dir.join("simulator.onnx");
    let bytes = std::fs::read(&onnx_path).with_context(|| format!("reading {}", onnx_path.display()))?;
    let sha = sha256_hex(&bytes);
    if sha != card.onnx_sha256 {
        bail!(
            "{}: its sha256 differs from the card {} (simulator card/model mismatch)",
            onnx_path.display(),
            card_path.display()
        );
    }
    let sim =
        sfr2l_runtime::Simulator::from_bytes(&bytes).with_context(|| format!("loading {}", onnx_path.display()))?;
    if sim.profile != card.profile {
        bail!(
            "{}: graph profile {} but card profile {} (simulator card/profile mismatch)",
            dir.display(),
            sim.profile,
            card.profile
        );
    }
    let data_path = data.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(&card.dataset.path));
    let ds = read_dataset(&data_path, &study).with_context(|| format!("states for {}", dir.display()))?;
    if ds.sha256 != card.dataset.sha256 {
        bail!(
            "{}: this is not the dataset the simulator in {} was fitted on (sha256 differs from its card)",
            data_path.display(),
            dir.display()
        );
    }
    let table = RewardTable::build(&sim, &study, &ds.x, objective)?;
    Ok(Service { dir: dir.to_path_buf(), card, table })
}

/// The folder name of a run's agents: `<config>[-x<services>][-hetero][-best]`.
pub fn agent_dir_name(c: Configuration, services: usize, heterogeneous: bool, objective: Objective) -> String {
    let mut s = c.slug().to_string();
    if services > 1 {
        s.push_str(&format!("-x{services}"));
    }
    if heterogeneous {
        s.push_str("-hetero");
    }
    if objective == Objective::Best {
        s.push_str("-best");
    }
    s
}

/// One learning run's summary (`result.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    pub configuration: String,
    pub label: String,
    pub services: usize,
    pub profiles: Vec<String>,
    pub objective: Objective,
    pub seed: u64,
    pub epochs: usize,
    pub interactions: usize,
    pub sim_ratio: f64,
    pub optimum_ratio: f64,
    pub rl_over_optimum: f64,
    pub greedy_over_optimum: f64,
    pub best_epoch: usize,
    /// Per service, the best single fixed load test in the configuration's action space, over
    /// all the service's states (compare with `rl_over_optimum`).
    #[serde(default)]
    pub best_fixed: Vec<FixedLoad>,
    pub seconds: f64,
    pub export_max_rel_diff: f64,
    pub git_commit: String,
}

pub fn train_agents(
    configuration: Configuration,
    services: &[&Service],
    cfg: &RlConfig,
    on_epoch: impl FnMut(usize, &EpochStats),
) -> Result<RunResult> {
    cfg.check()?;
    if services.is_empty() {
        bail!("train_agents: no services to train {} on (pass at least one dataset)", configuration.slug());
    }
    let tables: Vec<&RewardTable> = services.iter().map(|s| &s.table).collect();
    super::protocol::same_inputs(&tables).map_err(anyhow::Error::msg)?;
    let base = crate::device::compute_device()?;
    Ok(run_protocol(configuration, &tables, cfg, &base, on_epoch))
}

/// Writes agents (ONNX + cards), curve, decisions, config and summary into `out` atomically;
/// every exported agent is reloaded with tract and compared with burn first.
pub fn write_run(
    out: &Path,
    r: &RunResult,
    services: &[&Service],
    cfg: &RlConfig,
    objective: Objective,
    commit: &str,
) -> Result<RunSummary> {
    let stage = StagedDir::new(out, ".rl-")?;
    let mut worst = 0.0f32;
    let obj = match objective {
        Objective::Worst => "worst",
        Objective::Best => "best",
    };
    let run = RunMeta { r, cfg, objective: obj, commit };
    for agent in &r.agents {
        for (n, svc) in services.iter().enumerate() {
            worst = worst.max(export_agent(stage.path(), &run, agent, n, svc)?);
        }
    }
    if worst > 1e-4 {
        bail!("export check failed: tract and burn Q-values differ by {worst:.2e} (relative)");
    }
    std::fs::write(stage.path().join("curve.csv"), curve_csv(r))?;
    std::fs::write(stage.path().join("decisions.csv"), decisions_csv(r, services))?;
    std::fs::write(stage.path().join("config.json"), serde_json::to_string_pretty(cfg)? + "\n")?;
    let summary = RunSummary {
        configuration: r.configuration.slug().into(),
        label: format!(
            "{}{}",
            r.configuration.label(),
            if r.services > 1 { format!("*{}", r.services) } else { String::new() }
        ),
        services: r.services,
        profiles: services.iter().map(|s| s.card.profile.clone()).collect(),
        objective,
        seed: cfg.seed,
        epochs: cfg.epochs,
        interactions: cfg.interactions,
        sim_ratio: r.sim_ratio,
        optimum_ratio: r.optimum_ratio,
        rl_over_optimum: r.rl_over_optimum,
        greedy_over_optimum: r.greedy_over_optimum,
        best_epoch: r.best_epoch,
        best_fixed: {
            let specs = r.configuration.agents();
            let single = (specs.len() == 1).then(|| specs[0].kind);
            services.iter().map(|s| s.table.best_fixed(single)).collect()
        },
        seconds: r.seconds,
        export_max_rel_diff: f64::from(worst),
        git_commit: commit.into(),
    };
    std::fs::write(stage.path().join("result.json"), serde_json::to_string_pretty(&summary)? + "\n")?;
    stage.publish()?;
    Ok(summary)
}

/// What every exported agent's card says about its run.
struct RunMeta<'a> {
    r: &'a RunResult,
    cfg: &'a RlConfig,
    objective: &'static str,
    commit: &'a str,
}

/// Writes one agent's graph for service `n` and its card into `dir`, after checking the graph
/// (tract) against burn on the service's states; returns the largest relative difference.
fn export_agent(dir: &Path, run: &RunMeta, agent: &TrainedAgent, n: usize, svc: &Service) -> Result<f32> {
    let RunMeta { r, cfg, objective: obj, commit } = *run;
    let mut worst = 0.0f32;
    let bytes = agent_onnx(&AgentExport {
        agent,
        head: n,
        profile: &svc.card.profile,
        configuration: r.configuration,
        services: r.services,
        objective: obj,
        failure: &svc.table.failure,
    });
    // Check on states of this service.
    let rows: Vec<Vec<f32>> = (0..svc.table.rows().min(500))
        .map(|i| {
            let mut s = svc.table.rules[i].to_vec();
            match agent.spec.extra {
                Extra::None => {}
                Extra::RunLoad(k) | Extra::FirstAction(k) => s.push(svc.table.run_load[i].of(k)),
            }
            s
        })
        .collect();
    let want = burn_q_values(agent, n, &rows);
    let got = sfr2l_runtime::Agent::from_bytes(&bytes)?.q_values(&rows)?;
    let scale = agent.reward_scale[n] as f32;
    for (g, w) in got.iter().zip(&want) {
        for (a, b) in g.iter().zip(w) {
            worst = worst.max(rel_diff(*a, *b, scale.max(1e-3)));
        }
    }
    let name =
        if r.services > 1 { format!("{}-svc{n}", agent.spec.kind.name()) } else { agent.spec.kind.name().to_string() };
    std::fs::write(dir.join(format!("{name}.onnx")), &bytes)?;
    let card = AgentCard {
        action: agent.spec.kind.feature().name().into(),
        agent: agent.spec.kind.name().into(),
        configuration: r.configuration.slug().into(),
        git_commit: commit.into(),
        grid: agent.grid[n].clone(),
        inputs: vec![AgentPort {
            name: "state".into(),
            shape: vec!["batch".into(), agent.spec.state_width(&agent.inputs).into()],
            unit: None,
        }],
        kind: KIND_AGENT.into(),
        label: r.configuration.label().into(),
        metrics: AgentMetrics {
            best_epoch: r.best_epoch,
            greedy_over_optimum: r.greedy_over_optimum,
            optimum_ratio: r.optimum_ratio,
            rl_over_optimum: r.rl_over_optimum,
            sim_ratio: r.sim_ratio,
        },
        objective: obj.into(),
        onnx_sha256: sha256_hex(&bytes),
        outputs: vec![AgentPort {
            name: "q_values".into(),
            shape: vec!["batch".into(), agent.grid[n].len().into()],
            unit: Some("reward (QPS x rate)".into()),
        }],
        profile: svc.card.profile.clone(),
        reward_scale: agent.reward_scale[n],
        schema: sfr2l_core::card::CARD_SCHEMA,
        seed: cfg.seed,
        service: n,
        services: r.services,
        simulator: SimulatorRef { dir: svc.dir.display().to_string(), onnx_sha256: svc.card.onnx_sha256.clone() },
        state: agent.spec.state_names(&agent.inputs).into_iter().map(String::from).collect(),
    };
    std::fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(&card)? + "\n")?;
    Ok(worst)
}

/// `curve.csv`: the per-epoch rewards and the RL/random ratio.
fn curve_csv(r: &RunResult) -> String {
    let mut curve = String::from("epoch,rl,random,greedy,optimum,epsilon,ratio\n");
    for (i, e) in r.epochs.iter().enumerate() {
        let _ = writeln!(
            curve,
            "{i},{:.3},{:.3},{:.3},{:.3},{:.4},{:.5}",
            e.rl,
            e.random,
            e.greedy,
            e.optimum,
            e.epsilon,
            e.rl / e.random
        );
    }
    curve
}

/// `decisions.csv`: the best epoch's interactions with their rules, choices and rewards.
fn decisions_csv(r: &RunResult, services: &[&Service]) -> String {
    let mut dec = String::from("service,profile,row,");
    // The services share their inputs (train_agents checks it).
    let rules: Vec<&str> =
        services.first().map(|s| s.table.inputs.rules().iter().map(|f| f.name()).collect()).unwrap_or_default();
    dec.push_str(&rules.join(","));
    dec.push_str(",threads,calls,reward,optimum,random_reward\n");
    for d in &r.decisions {
        let t = &services[d.service].table;
        let rule = t.rules[d.row].iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(",");
        let _ = writeln!(
            dec,
            "{},{},{},{rule},{},{},{:.3},{:.3},{:.3}",
            d.service, t.profile, d.row, d.threads, d.calls, d.reward, d.optimum, d.random_reward
        );
    }
    dec
}
