//! `sfr2l rl table`: every configuration over datasets and seeds, the first seed's agents
//! exported, and the Table 5 report with its learning curves.

use super::env::Objective;
use super::report::{curves_svg, table5};
use super::run::{agent_dir_name, load_service, train_agents, write_run, RunSummary, Service};
use super::RlConfig;
use crate::artifact::write_atomic;
use anyhow::Result;
use sfr2l_core::agent::Configuration;
use sfr2l_core::ProfileId;
use std::path::{Path, PathBuf};

/// What the table runs.
pub struct TableJob {
    pub datasets: Vec<ProfileId>,
    /// Configurations with their number of services (1 = single service).
    pub configs: Vec<(Configuration, usize)>,
    /// Seeds per single-service cell, and per collaborative cell.
    pub seeds: u64,
    pub collab_seeds: u64,
    /// Folder holding `<dataset>/simulator.onnx`.
    pub policies: PathBuf,
    /// Where the first seed's agents go: `<export_to>/<dataset>/agents/...`.
    pub export_to: PathBuf,
    pub objective: Objective,
    /// The config of every run (its seed is set per run).
    pub base: RlConfig,
}

/// The table's runs and, per dataset, the first seed's RL/random curve of each configuration.
pub struct TableRuns {
    pub runs: Vec<RunSummary>,
    pub curves: Vec<Vec<(String, Vec<f64>)>>,
    pub seconds: f64,
}

/// Runs the table; every simulator is loaded and checked before the first run.
pub fn run_table(job: &TableJob, commit: &str) -> Result<TableRuns> {
    let objective = job.objective;
    let datasets: Vec<String> = job.datasets.iter().map(ProfileId::to_string).collect();
    let mut services: Vec<Service> = Vec::new();
    for d in &datasets {
        services.push(load_service(&job.policies.join(d), None, objective)?);
    }
    let mut runs: Vec<RunSummary> = Vec::new();
    let mut curves: Vec<Vec<(String, Vec<f64>)>> = vec![Vec::new(); datasets.len()];
    let started = std::time::Instant::now();
    for (di, svc) in services.iter().enumerate() {
        for (c, n) in &job.configs {
            let seeds = if *n > 1 { job.collab_seeds } else { job.seeds };
            for seed in 1..=seeds {
                let mut cfg = job.base.clone();
                cfg.seed = seed;
                let svcs: Vec<&Service> = vec![svc; *n];
                let r = train_agents(*c, &svcs, &cfg, |_, _| {})?;
                let out: PathBuf = if seed == 1 {
                    job.export_to
                        .join(&datasets[di])
                        .join("agents")
                        .join(agent_dir_name(*c, *n, false, objective))
                        .join(format!("seed-{seed}"))
                } else {
                    std::env::temp_dir().join(format!("sfr2l-rl-{}-{}", std::process::id(), seed))
                };
                let s = write_run(&out, &r, &svcs, &cfg, objective, commit)?;
                if seed != 1 {
                    std::fs::remove_dir_all(&out).ok();
                }
                eprintln!(
                    "{} {:<14} seed {seed}: sim {:.3}, optimum/random {:.3}, rl/optimum {:.3}, greedy/optimum {:.3} ({:.0} s; {:.0} s so far)",
                    datasets[di].to_uppercase(),
                    s.label,
                    s.sim_ratio,
                    s.optimum_ratio,
                    s.rl_over_optimum,
                    s.greedy_over_optimum,
                    s.seconds,
                    started.elapsed().as_secs_f64()
                );
                if seed == 1 {
                    curves[di].push((s.label.clone(), r.epochs.iter().map(|e| e.rl / e.random).collect()));
                }
                runs.push(s);
            }
        }
    }
    Ok(TableRuns { runs, curves, seconds: started.elapsed().as_secs_f64() })
}

/// Writes the Markdown report, `curves/<dataset>.svg` and `table5-runs.json` beside it; returns
/// the Markdown.
pub fn write_table5(report: &Path, job: &TableJob, t: &TableRuns, command: &str, note: &str) -> Result<String> {
    let datasets: Vec<String> = job.datasets.iter().map(ProfileId::to_string).collect();
    let window = job.base.rolling_window;
    let md = table5(&t.runs, &datasets, command, note);
    let dir = report.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir.join("curves"))?;
    write_atomic(report, md.as_bytes())?;
    for (d, panels) in datasets.iter().zip(&t.curves) {
        let title = format!(
            "{}: RL/random per epoch (light) and its {window}-epoch rolling mean (dark), seed 1",
            d.to_uppercase()
        );
        let svg = curves_svg(&title, panels, window);
        write_atomic(&dir.join("curves").join(format!("{d}.svg")), svg.as_bytes())?;
    }
    let json = serde_json::to_string_pretty(&t.runs)?;
    write_atomic(&dir.join("table5-runs.json"), json.as_bytes())?;
    Ok(md)
}
