//! `sfr2l rl table`: every configuration over datasets and seeds, the first seed's agents
//! exported, and the Table 5 report with its learning curves.
//!
//! Every finished cell (one configuration, dataset and seed) is saved as it completes into the
//! job's cell folder, with a fingerprint of everything its result depends on; `--resume` takes a
//! saved cell instead of training it again, so an interrupted table loses at most the cell in
//! progress.

use super::env::Objective;
use super::report::{curves_svg, table5};
use super::run::{agent_dir_name, load_service, train_agents, write_run, RunSummary, Service};
use super::RlConfig;
use crate::artifact::{sha256_hex, write_atomic};
use anyhow::{bail, Context, Result};
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
    /// Where finished cells are saved (`<dataset>-<agents folder>-seed-<n>.json`).
    pub cells: PathBuf,
    /// Take saved cells whose fingerprint matches instead of training them again.
    pub resume: bool,
}

/// The cell folder beside a report: `report/table5.md` -> `report/.table5-cells/`.
pub fn cells_dir(report: &Path) -> PathBuf {
    let dir = report.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stem = report.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "table".into());
    dir.join(format!(".{stem}-cells"))
}

/// One finished cell as saved on disk.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedCell {
    /// sha256 over what the result depends on (see [`cell_fingerprint`]).
    pub fingerprint: String,
    pub summary: RunSummary,
    /// RL/random per epoch (kept for seed 1: the report's learning curves).
    pub curve: Option<Vec<f64>>,
}

/// What a cell's result depends on: the run's config (with its seed), the configuration, the
/// number of services, the objective, the simulator and dataset (by sha256), and where its agents
/// are exported. Pure, so that a changed setting never resumes a stale cell.
pub fn cell_fingerprint(
    cfg: &RlConfig,
    label: &str,
    objective: Objective,
    simulator_sha: &str,
    dataset_sha: &str,
    export: Option<&Path>,
) -> String {
    let key = serde_json::json!({
        "config": cfg,
        "label": label,
        "objective": objective,
        "simulator": simulator_sha,
        "dataset": dataset_sha,
        "export": export.map(|p| p.display().to_string()),
    });
    sha256_hex(key.to_string().as_bytes())
}

/// A saved cell that may stand in for training: `Ok(None)` when there is none; an error when the
/// file is unreadable or was made with other settings (named, so that nothing is overwritten
/// silently).
fn saved_cell(path: &Path, fingerprint: &str, export: Option<&Path>) -> Result<Option<SavedCell>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let cell: SavedCell =
        serde_json::from_str(&text).with_context(|| format!("{}: not a saved table cell", path.display()))?;
    if cell.fingerprint != fingerprint {
        bail!(
            "{}: this cell was made with other settings, simulator or dataset than this table's; \
             remove it (or the folder) or run without --resume",
            path.display()
        );
    }
    // The first seed's agents must still be where the cell put them.
    if let Some(dir) = export {
        if !dir.join("result.json").is_file() {
            return Ok(None);
        }
    }
    Ok(Some(cell))
}

/// The table's runs and, per dataset, the first seed's RL/random curve of each configuration.
pub struct TableRuns {
    pub runs: Vec<RunSummary>,
    pub curves: Vec<Vec<(String, Vec<f64>)>>,
    /// Training time summed over the cells (resumed cells count with their saved time).
    pub seconds: f64,
    /// Cells taken from the cell folder instead of trained.
    pub resumed: usize,
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
    let (mut seconds, mut resumed) = (0.0, 0);
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&job.cells).with_context(|| format!("creating {}", job.cells.display()))?;
    for (di, svc) in services.iter().enumerate() {
        for (c, n) in &job.configs {
            let seeds = if *n > 1 { job.collab_seeds } else { job.seeds };
            let folder = agent_dir_name(*c, *n, false, objective);
            for seed in 1..=seeds {
                let mut cfg = job.base.clone();
                cfg.seed = seed;
                let export = (seed == 1).then(|| {
                    job.export_to.join(&datasets[di]).join("agents").join(&folder).join(format!("seed-{seed}"))
                });
                let label = format!("{folder}/{}", c.label());
                let fp = cell_fingerprint(
                    &cfg,
                    &label,
                    objective,
                    &svc.card.onnx_sha256,
                    &svc.card.dataset.sha256,
                    export.as_deref(),
                );
                let cell_path = job.cells.join(format!("{}-{folder}-seed-{seed}.json", datasets[di]));
                let saved = if job.resume { saved_cell(&cell_path, &fp, export.as_deref())? } else { None };
                let (s, curve, how) = match saved {
                    Some(cell) => {
                        resumed += 1;
                        (cell.summary, cell.curve, "resumed")
                    }
                    None => {
                        let svcs: Vec<&Service> = vec![svc; *n];
                        let r = train_agents(*c, &svcs, &cfg, |_, _| {})?;
                        let out = export.clone().unwrap_or_else(|| {
                            std::env::temp_dir().join(format!("sfr2l-rl-{}-{}", std::process::id(), seed))
                        });
                        let s = write_run(&out, &r, &svcs, &cfg, objective, commit)?;
                        if export.is_none() {
                            std::fs::remove_dir_all(&out).ok();
                        }
                        let curve = (seed == 1).then(|| r.epochs.iter().map(|e| e.rl / e.random).collect::<Vec<_>>());
                        let cell = SavedCell { fingerprint: fp, summary: s.clone(), curve: curve.clone() };
                        write_atomic(&cell_path, (serde_json::to_string_pretty(&cell)? + "\n").as_bytes())?;
                        (s, curve, "trained")
                    }
                };
                seconds += s.seconds;
                eprintln!(
                    "{} {:<14} seed {seed}: sim {:.3}, optimum/random {:.3}, rl/optimum {:.3}, greedy/optimum {:.3} ({how}, {:.0} s; {:.0} s so far)",
                    datasets[di].to_uppercase(),
                    s.label,
                    s.sim_ratio,
                    s.optimum_ratio,
                    s.rl_over_optimum,
                    s.greedy_over_optimum,
                    s.seconds,
                    started.elapsed().as_secs_f64()
                );
                if let Some(curve) = curve {
                    curves[di].push((s.label.clone(), curve));
                }
                runs.push(s);
            }
        }
    }
    Ok(TableRuns { runs, curves, seconds, resumed })
}

/// Writes the Markdown report, `curves/<dataset>.svg` and `table5-runs.json` beside it; returns
/// the Markdown.
pub fn write_table5(report: &Path, job: &TableJob, t: &TableRuns, command: &str, note: &str) -> Result<String> {
    let datasets: Vec<String> = job.datasets.iter().map(ProfileId::to_string).collect();
    let window = job.base.rolling_window;
    let old = std::fs::read_to_string(report).ok();
    let md = crate::history::with_history(
        &table5(&t.runs, &datasets, command, note),
        old.as_deref(),
        &crate::history::today(),
    );
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
