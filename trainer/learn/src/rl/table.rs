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
use anyhow::{bail, Context, Result};
use sfr2l_core::agent::Configuration;
use sfr2l_files::{sha256_hex, write_atomic};
use std::path::{Path, PathBuf};

/// What the table runs.
pub struct TableJob {
    /// Study names (`policies/<name>`).
    pub datasets: Vec<String>,
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
    /// Cells trained at once (1: one after the other). Each cell is deterministic on its own,
    /// so the table is the same for any value; a single-agent cell keeps one core busy, so two
    /// jobs fill a 2-core machine.
    pub jobs: usize,
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
    /// When the cell's training started and its result was saved, in Unix seconds (absent in
    /// cells saved before 2026-11-30): the table's wall time is the union of these spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<[f64; 2]>,
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
    /// Wall time of the cells' training (the union of their spans, so parallel cells count
    /// once), and the sittings it was spread over; `None` when a cell has no span.
    pub wall: Option<WallTime>,
}

/// The wall time covered by a set of time spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WallTime {
    pub seconds: f64,
    /// Groups of spans separated by a gap of more than [`SITTING_GAP_S`].
    pub sittings: usize,
}

/// A pause between cells longer than this starts a new sitting.
pub const SITTING_GAP_S: f64 = 60.0;

/// The length of the union of `spans` (`[start, end]`, any order, overlaps counted once) and
/// how many sittings they form. Pure.
pub fn wall_time(spans: &[[f64; 2]]) -> WallTime {
    let mut v: Vec<[f64; 2]> = spans.iter().map(|&[a, b]| [a.min(b), a.max(b)]).collect();
    v.sort_by(|x, y| x[0].total_cmp(&y[0]));
    let mut seconds = 0.0;
    let mut sittings = 0;
    let mut cur: Option<[f64; 2]> = None;
    for [a, b] in v {
        cur = Some(match cur {
            Some([s, e]) if a <= e => [s, e.max(b)],
            Some([s, e]) => {
                seconds += e - s;
                if a - e > SITTING_GAP_S {
                    sittings += 1;
                }
                [a, b]
            }
            None => {
                sittings += 1;
                [a, b]
            }
        });
    }
    if let Some([s, e]) = cur {
        seconds += e - s;
    }
    WallTime { seconds, sittings }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One cell of the table, before it runs.
struct Cell {
    dataset: usize,
    configuration: Configuration,
    services: usize,
    seed: u64,
    folder: String,
    cfg: RlConfig,
    export: Option<PathBuf>,
    fingerprint: String,
    path: PathBuf,
}

/// A finished cell: its summary, curve, whether it was resumed, and its span.
type Done = (RunSummary, Option<Vec<f64>>, bool, Option<[f64; 2]>);

/// Runs the table; every simulator is loaded and checked before the first run. With
/// `job.jobs > 1` cells run on that many threads; the result is the same in any case.
pub fn run_table(job: &TableJob, commit: &str) -> Result<TableRuns> {
    let objective = job.objective;
    let datasets: Vec<String> = job.datasets.clone();
    let mut services: Vec<Service> = Vec::new();
    for d in &datasets {
        services.push(load_service(&job.policies.join(d), None, objective)?);
    }
    std::fs::create_dir_all(&job.cells).with_context(|| format!("creating {}", job.cells.display()))?;
    let cells = plan_cells(job, &datasets, &services);

    let started = std::time::Instant::now();
    let run_cell = |cell: &Cell| -> Result<Done> {
        let saved = if job.resume { saved_cell(&cell.path, &cell.fingerprint, cell.export.as_deref())? } else { None };
        if let Some(saved) = saved {
            return Ok((saved.summary, saved.curve, true, saved.span));
        }
        let t0 = unix_now();
        let svcs: Vec<&Service> = vec![&services[cell.dataset]; cell.services];
        let r = train_agents(cell.configuration, &svcs, &cell.cfg, |_, _| {})?;
        let out = cell.export.clone().unwrap_or_else(|| {
            let name =
                format!("sfr2l-rl-{}-{}-{}-{}", std::process::id(), datasets[cell.dataset], cell.folder, cell.seed);
            std::env::temp_dir().join(name)
        });
        let s = write_run(&out, &r, &svcs, &cell.cfg, objective, commit)?;
        if cell.export.is_none() {
            std::fs::remove_dir_all(&out).ok();
        }
        let curve = (cell.seed == 1).then(|| r.epochs.iter().map(|e| e.rl / e.random).collect::<Vec<_>>());
        let span = Some([t0, unix_now()]);
        let saved = SavedCell { fingerprint: cell.fingerprint.clone(), summary: s.clone(), curve: curve.clone(), span };
        write_atomic(&cell.path, (serde_json::to_string_pretty(&saved)? + "\n").as_bytes())?;
        Ok((s, curve, false, span))
    };
    let report = |cell: &Cell, (s, _, resumed, _): &Done| {
        eprintln!(
            "{} {:<14} seed {}: sim {:.3}, optimum/random {:.3}, rl/optimum {:.3}, greedy/optimum {:.3} ({}, {:.0} s; {:.0} s so far)",
            datasets[cell.dataset].to_uppercase(),
            s.label,
            cell.seed,
            s.sim_ratio,
            s.optimum_ratio,
            s.rl_over_optimum,
            s.greedy_over_optimum,
            if *resumed { "resumed" } else { "trained" },
            s.seconds,
            started.elapsed().as_secs_f64()
        );
    };
    let done = run_cells(&cells, job.jobs.max(1), &run_cell, &report)?;

    Ok(collect_runs(&cells, done, datasets.len()))
}

/// The table's cells in order: per dataset, configuration and seed, with the fingerprint that
/// lets `--resume` take a saved cell only when nothing it depends on changed.
fn plan_cells(job: &TableJob, datasets: &[String], services: &[Service]) -> Vec<Cell> {
    let objective = job.objective;
    let mut cells = Vec::new();
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
                let fingerprint = cell_fingerprint(
                    &cfg,
                    &label,
                    objective,
                    &svc.card.onnx_sha256,
                    &svc.card.dataset.sha256,
                    export.as_deref(),
                );
                let path = job.cells.join(format!("{}-{folder}-seed-{seed}.json", datasets[di]));
                cells.push(Cell {
                    dataset: di,
                    configuration: *c,
                    services: *n,
                    seed,
                    folder: folder.clone(),
                    cfg,
                    export,
                    fingerprint,
                    path,
                });
            }
        }
    }
    cells
}

/// The finished cells as the table's runs, Table 5 curves (seed 1) and time spent.
fn collect_runs(cells: &[Cell], done: Vec<Done>, datasets: usize) -> TableRuns {
    let spans: Option<Vec<[f64; 2]>> = done.iter().map(|d| d.3).collect();
    let mut out = TableRuns {
        runs: Vec::new(),
        curves: vec![Vec::new(); datasets],
        seconds: 0.0,
        resumed: 0,
        wall: spans.map(|s| wall_time(&s)),
    };
    for (cell, (s, curve, resumed, _)) in cells.iter().zip(done) {
        out.seconds += s.seconds;
        out.resumed += usize::from(resumed);
        if let Some(curve) = curve {
            out.curves[cell.dataset].push((s.label.clone(), curve));
        }
        out.runs.push(s);
    }
    out
}

/// Runs every cell on `jobs` threads (each takes the next cell not yet started), reporting each
/// as it finishes; results in the cells' order. After an error no new cell starts, and the
/// first error is returned once the running cells are done (they are saved: nothing is lost).
fn run_cells(
    cells: &[Cell],
    jobs: usize,
    run: &(dyn Fn(&Cell) -> Result<Done> + Sync),
    report: &(dyn Fn(&Cell, &Done) + Sync),
) -> Result<Vec<Done>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Done>>>> = Mutex::new((0..cells.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(cells.len()) {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(cell) = cells.get(i) else { return };
                let r = run(cell);
                match &r {
                    Ok(d) => report(cell, d),
                    Err(_) => failed.store(true, Ordering::SeqCst),
                }
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().map_err(|_| anyhow::anyhow!("a table job panicked"))?;
    let mut done = Vec::with_capacity(cells.len());
    for (cell, r) in cells.iter().zip(results) {
        match r {
            Some(r) => {
                done.push(r.with_context(|| {
                    format!("cell {} {} seed {}", cell.folder, cell.configuration.label(), cell.seed)
                })?)
            }
            None => bail!("cell {} seed {} did not run (an earlier cell failed)", cell.folder, cell.seed),
        }
    }
    Ok(done)
}

/// Writes the Markdown report, `curves/<dataset>.svg` and `table5-runs.json` beside it; returns
/// the Markdown.
pub fn write_table5(report: &Path, job: &TableJob, t: &TableRuns, command: &str, note: &str) -> Result<String> {
    let datasets: Vec<String> = job.datasets.clone();
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

#[cfg(test)]
mod tests {
    use super::{wall_time, WallTime};

    #[test]
    fn parallel_cells_count_once_and_pauses_split_sittings() {
        assert_eq!(wall_time(&[]), WallTime { seconds: 0.0, sittings: 0 });
        // Two jobs overlapping, then a third cell right after: one sitting of 30 s.
        let one = wall_time(&[[0.0, 20.0], [5.0, 25.0], [25.5, 30.0]]);
        assert_eq!(one.sittings, 1);
        assert!((one.seconds - 29.5).abs() < 1e-9, "{one:?}");
        // The same, resumed an hour later for 10 s (given in any order, one span reversed).
        let two = wall_time(&[[3600.0, 3610.0], [20.0, 0.0], [5.0, 25.0], [25.5, 30.0]]);
        assert_eq!(two.sittings, 2);
        assert!((two.seconds - 39.5).abs() < 1e-9, "{two:?}");
        // A span inside another adds nothing.
        assert!((wall_time(&[[0.0, 100.0], [10.0, 20.0]]).seconds - 100.0).abs() < 1e-9);
    }
}
