//! The collection loop: runs the planned rows that are not yet in the file on the lab, appends
//! the exact ones, refreshes `.meta.json` every 50 rows, and stops cleanly on Ctrl-C.

use super::{interrupt_flag, load_avg_1m, meta_path, plan, run_on, Backend, DatasetFile, DatasetMeta, Repeats};
use crate::mesh::{Lab, LabOptions};
use anyhow::Result;
use sfr2l_core::study::Study;
use sfr2l_core::trace::DatasetRow;
use sfr2l_files::{git_commit, now_rfc3339, write_atomic};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What to collect and how.
pub struct CollectJob {
    pub profile: Study,
    /// sha256 of the study file's bytes (a resumed collection must run the same study).
    pub study_sha256: String,
    pub rows: u32,
    pub seed: u64,
    pub repeats: Repeats,
    /// The dataset CSV; `<name>.meta.json` goes beside it.
    pub out: PathBuf,
    pub resume: bool,
    /// Path requested on the upstream (the study's `target.path`).
    pub path: String,
    pub warmup_calls: u32,
    /// Tries per row before it is skipped.
    pub tries: u32,
    /// Use a lab started with `lab up` (left running) instead of starting one.
    pub attach: bool,
    pub quiet: bool,
}

/// How a collection ended.
pub struct Collected {
    pub rows: usize,
    pub rejected_tries: u64,
    pub skipped_rows: u64,
    /// Lab processes restarted after they died mid-collection.
    pub lab_restarts: u64,
    pub seconds: f64,
    /// Stopped by Ctrl-C: continue with `--resume`.
    pub interrupted: bool,
}

/// Counters kept while collecting, written to `.meta.json`.
struct Progress {
    started: String,
    t0: Instant,
    rejected: u64,
    skipped: u64,
    overheads_ms: Vec<f64>,
    /// Lab processes restarted after they died mid-collection.
    restarts: u64,
}

impl Progress {
    fn write_meta<B: Backend>(&mut self, job: &CollectJob, file: &DatasetFile, b: &B) -> Result<()> {
        self.overheads_ms.sort_by(f64::total_cmp);
        let info = b.info();
        let m = DatasetMeta {
            schema: 1,
            profile: job.profile.name.clone(),
            study_sha256: job.study_sha256.clone(),
            target: job.profile.target.clone(),
            rows: file.rows,
            planned_rows: job.rows,
            seed: job.seed,
            repeats: job.repeats.to_string(),
            envoy_version: info.envoy_version,
            topology: info.topology,
            upstream: info.upstream,
            upstream_workers: info.upstream_workers,
            path: job.path.clone(),
            warmup_calls: job.warmup_calls,
            started: self.started.clone(),
            updated: now_rfc3339(),
            collection_seconds: self.t0.elapsed().as_secs_f64(),
            rejected_tries: self.rejected,
            skipped_rows: self.skipped,
            lab_restarts: self.restarts,
            median_overhead_ms: self.overheads_ms.get(self.overheads_ms.len() / 2).copied().unwrap_or(f64::NAN),
            nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            git_commit: git_commit(),
            filter_sha256: info.filter_sha256,
        };
        write_atomic(&meta_path(&job.out), serde_json::to_string_pretty(&m)?.as_bytes())
    }
}

/// Collects `job` on a lab with `opts` (started here unless `job.attach`).
pub fn collect_dataset(job: &CollectJob, opts: LabOptions) -> Result<Collected> {
    // The file first: a dataset that cannot be resumed fails before a lab starts.
    let (plan, mut file) = open(job)?;
    let stop = interrupt_flag()?;
    let mut lab = if job.attach { Lab::attach(&opts.dir)? } else { Lab::start(opts)? };
    let done = collect_on(job, &mut lab, &plan, &mut file, &stop)?;
    if job.attach {
        lab.detach()?; // the lab belongs to `lab up`: leave it running
    } else {
        lab.stop();
    }
    Ok(done)
}

/// Collects `job` on a running backend (a cluster: `mesh collect`): the same plan, file,
/// resume and loop as the lab's.
pub fn collect_with<B: Backend>(job: &CollectJob, backend: &mut B) -> Result<Collected> {
    let (plan, mut file) = open(job)?;
    let stop = interrupt_flag()?;
    collect_on(job, backend, &plan, &mut file, &stop)
}

/// The job's plan and its dataset file, opened for appending (resumed: the same study).
fn open(job: &CollectJob) -> Result<(Vec<super::PlanEntry>, DatasetFile)> {
    let profile = &job.profile;
    let plan = plan(profile, job.rows, job.seed, job.repeats.configs, job.repeats.repeats);
    let file = DatasetFile::open(&job.out, job.resume, &profile.columns())?;
    if job.resume {
        super::file::check_resumed_study(&meta_path(&job.out), &profile.name, &job.study_sha256)?;
    }
    Ok((plan, file))
}

/// Collects the rows of `plan` not yet in `file` on a running backend (the lab, a cluster),
/// healing it when it fails (a restarted process, then the row again) and stopping cleanly when
/// `stop` is set.
pub fn collect_on<B: Backend>(
    job: &CollectJob,
    lab: &mut B,
    plan: &[super::PlanEntry],
    file: &mut DatasetFile,
    stop: &AtomicBool,
) -> Result<Collected> {
    let profile = &job.profile;
    let todo: Vec<_> =
        plan.iter().enumerate().filter(|(_, e)| !file.done.contains(&(e.config_id.clone(), e.repeat))).collect();
    let mut progress = Progress {
        started: now_rfc3339(),
        t0: Instant::now(),
        rejected: 0,
        skipped: 0,
        overheads_ms: Vec::new(),
        restarts: 0,
    };
    let bar = if job.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(todo.len() as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} rows, {elapsed} elapsed, ETA {eta} {msg}",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("collect {}", profile.name));
    for (idx, entry) in &todo {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut ok = false;
        for t in 0..job.tries {
            let run_id = format!("{}-{}-{idx}-{t}-g{}", profile.name, job.seed, lab.generation() + 1);
            let load_avg = load_avg_1m();
            let outcome = match run_on(lab, entry, &run_id, &job.path, job.warmup_calls) {
                Ok(o) => o,
                // A run that could not even be measured (a dead Envoy refuses the switch): heal
                // the backend and try the row again; an error with a healthy one is the caller's.
                Err(e) if lab.faulty() => Err(format!("{e:#}")),
                Err(e) => return Err(e),
            };
            if outcome.is_err() {
                for line in lab.heal()? {
                    progress.restarts += 1;
                    bar.suspend(|| eprintln!("sfr2l: {line}"));
                }
            }
            match outcome {
                Ok(out) => {
                    let row = DatasetRow::new(
                        &file.columns,
                        &entry.rule,
                        &entry.load,
                        &out.record,
                        load_avg,
                        entry.config_id.clone(),
                        entry.repeat,
                    );
                    file.append(&row)?;
                    progress.overheads_ms.push(out.overhead.as_secs_f64() * 1e3);
                    ok = true;
                    break;
                }
                Err(why) => {
                    progress.rejected += 1;
                    bar.suspend(|| eprintln!("sfr2l: run {run_id} rejected: {why}"));
                }
            }
        }
        if !ok {
            progress.skipped += 1;
        }
        bar.inc(1);
        if file.rows.is_multiple_of(50) {
            progress.write_meta(job, file, lab)?;
        }
    }
    bar.finish_and_clear();
    progress.write_meta(job, file, lab)?;
    let interrupted = stop.load(Ordering::SeqCst);
    Ok(Collected {
        rows: file.rows,
        rejected_tries: progress.rejected,
        skipped_rows: progress.skipped,
        lab_restarts: progress.restarts,
        seconds: progress.t0.elapsed().as_secs_f64(),
        interrupted,
    })
}
