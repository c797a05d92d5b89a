//! `sfr2l validate`: the lab side of the Val. column (the statistics are in `crate::validate`).

use super::lab::lab_options;
use super::Exit;
use crate::cli::ValidateArgs;
use crate::validate::{
    csv_header, read_agent_set, read_outcomes, render, sample_plan, summarise, AgentSet, Measured, Outcome, Sample,
    Summary,
};
use anyhow::{bail, Context, Result};
use sfr2l_core::agent::CONFIGURATIONS;
use sfr2l_core::rng::SplitMix64;
use sfr2l_core::LoadSetting;
use sfr2l_files::write_atomic;
use sfr2l_lab::collect::{self, interrupt_flag, run_once, PlanEntry};
use sfr2l_lab::loadtest;
use sfr2l_lab::{envoy, Lab};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub fn run(a: ValidateArgs) -> Result<Exit> {
    if a.table {
        return table(a);
    }
    let agents = a.agents.clone().context("--agents or --table")?;
    let root = std::env::current_dir()?;
    let set = read_agent_set(&agents, &root)?;
    let out = a.out.clone().unwrap_or_else(|| agents.join("validation.csv"));
    let cell = Cell::prepare(&set, &a, &out)?;
    let stop = interrupt_flag()?;
    let mut lab = start_lab(&a, &set)?;
    let result = cell.run(&mut lab, &a, &set, &stop);
    if a.attach {
        lab.detach()?;
    } else {
        lab.stop();
    }
    let (summary, interrupted) = result?;
    print!("{}", render(&summary));
    if interrupted {
        eprintln!("sfr2l: interrupted after {} of {} samples: continue with --resume", summary.samples, a.samples);
        return Ok(Exit::Interrupted);
    }
    Ok(Exit::Ok)
}

/// Every Table 5 cell: one lab per dataset, the configurations in the table's order.
fn table(a: ValidateArgs) -> Result<Exit> {
    let root = std::env::current_dir()?;
    let mut folders: Vec<String> = CONFIGURATIONS.iter().map(|c| c.slug().to_string()).collect();
    folders.extend(CONFIGURATIONS.iter().map(|c| format!("{}-x{}", c.slug(), a.services)));
    // Every cell is read and checked before the first run.
    let mut cells: Vec<(AgentSet, PathBuf)> = Vec::new();
    for d in &a.datasets {
        for f in &folders {
            let dir = a.policies.join(d).join("agents").join(f).join("seed-1");
            let set = read_agent_set(&dir, &root).with_context(|| format!("Table 5 cell {d} {f}"))?;
            let out = dir.join("validation.csv");
            cells.push((set, out));
        }
    }
    let stop = interrupt_flag()?;
    let started = std::time::Instant::now();
    let mut summaries = Vec::new();
    let mut interrupted = false;
    for d in &a.datasets {
        let of_d: Vec<&(AgentSet, PathBuf)> = cells.iter().filter(|(s, _)| s.profile == *d).collect();
        let Some((first, _)) = of_d.first() else { continue };
        let mut lab = start_lab(&a, first)?;
        for (set, out) in of_d {
            let r = Cell::prepare(set, &a, out).and_then(|c| c.run(&mut lab, &a, set, &stop));
            let (summary, stop) = match r {
                Ok(x) => x,
                Err(e) => {
                    lab.stop();
                    return Err(e);
                }
            };
            eprintln!(
                "{} {:<14} Val. {:.2} (sim on the samples {:.2})",
                d.to_string().to_uppercase(),
                summary.label,
                summary.validated.ratio,
                summary.simulated_on_samples.ratio
            );
            summaries.push(summary);
            if stop {
                interrupted = true;
                break;
            }
        }
        lab.stop();
        if interrupted {
            break;
        }
    }
    if interrupted {
        eprintln!("sfr2l: interrupted: continue with --table --resume");
        return Ok(Exit::Interrupted);
    }
    let mse: Vec<(String, f64)> = a
        .datasets
        .iter()
        .map(|d| -> Result<(String, f64)> {
            let card = read_sim_card(&a.policies.join(d))?;
            Ok((d.to_string(), card.metrics.mlp_ensemble.mse))
        })
        .collect::<Result<_>>()?;
    let command = format!(
        "sfr2l validate --table --datasets {} --samples {} --seed {}{}",
        a.datasets.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        a.samples,
        a.seed,
        if a.inline { " --inline" } else { "" }
    );
    let md = crate::validate::table_md(
        &summaries,
        &a.datasets,
        &mse,
        &command,
        &sfr2l_files::git_commit(),
        started.elapsed().as_secs_f64(),
    );
    let dir = a.report.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    write_atomic(&dir.join("validation.md"), md.as_bytes())?;
    if let Ok(t5) = std::fs::read_to_string(&a.report) {
        let section = crate::validate::val_section(&summaries, &a.datasets);
        write_atomic(&a.report, crate::validate::with_val_section(&t5, &section).as_bytes())?;
    }
    print!("{md}");
    Ok(Exit::Ok)
}

fn read_sim_card(dir: &Path) -> Result<sfr2l_core::card::SimulatorCard> {
    let card_path = dir.join("simulator.json");
    serde_json::from_str(
        &std::fs::read_to_string(&card_path).with_context(|| format!("reading {}", card_path.display()))?,
    )
    .with_context(|| format!("{}", card_path.display()))
}

/// A lab for the agents' profile (its topology overrides apply), serving the policies to the
/// filter when `--inline` asks for decisions inside Envoy.
fn start_lab(a: &ValidateArgs, set: &AgentSet) -> Result<Lab> {
    let mut setup = a.setup.clone();
    setup.study = set.profile.clone();
    if a.inline && setup.artifacts.is_none() {
        setup.artifacts = Some(
            loadtest::policies_root(&std::path::absolute(&set.dir)?)
                .context("--inline: the agents folder is not inside a policies/ tree")?,
        );
    }
    let (_, opts) = lab_options(&setup, true)?;
    if a.attach {
        let lab = Lab::attach(&opts.dir)?;
        if lab.opts.topology != opts.topology {
            bail!(
                "the lab in {} runs another topology than {}'s: start it with `sfr2l lab up --study {}`",
                opts.dir.display(),
                set.profile,
                set.profile
            );
        }
        Ok(lab)
    } else {
        Lab::start(opts)
    }
}

/// One cell's plan, its results so far, and the dataset's spread.
struct Cell {
    plan: Vec<Sample>,
    done: Vec<Outcome>,
    out: PathBuf,
    sd: [f64; 2],
}

impl Cell {
    fn prepare(set: &AgentSet, a: &ValidateArgs, out: &Path) -> Result<Cell> {
        let decisions = set.dir.join("decisions.csv");
        let text = std::fs::read_to_string(&decisions).with_context(|| format!("reading {}", decisions.display()))?;
        let plan = sample_plan(&set.study, &decisions, &text, a.samples, a.seed)?;
        let done = if a.resume {
            match std::fs::read_to_string(out) {
                Ok(t) => read_outcomes(out, &t, &plan, &set.study.failure())?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
                Err(e) => return Err(e).with_context(|| format!("reading {}", out.display())),
            }
        } else {
            vec![]
        };
        // The dataset's spread standardises the simulator's error as in Table 4.
        let sd = dataset_sd(set)?;
        Ok(Cell { plan, done, out: out.to_path_buf(), sd })
    }

    /// Replays the missing samples, then writes the summary beside the CSV; returns it and
    /// whether Ctrl-C stopped the replay.
    fn run(mut self, lab: &mut Lab, a: &ValidateArgs, set: &AgentSet, stop: &AtomicBool) -> Result<(Summary, bool)> {
        let interrupted = replay(lab, a, set, (&self.plan, &self.out), &mut self.done, stop)?;
        self.done.sort_by_key(|o| o.index);
        let summary = summarise(set, &self.done, self.sd, a.seed);
        write_atomic(&self.out.with_extension("json"), (serde_json::to_string_pretty(&summary)? + "\n").as_bytes())?;
        Ok((summary, interrupted))
    }
}

/// The sd of QPS and of the 503 rate over the simulator's dataset.
fn dataset_sd(set: &AgentSet) -> Result<[f64; 2]> {
    let card_path = set.simulator_dir.join("simulator.json");
    let card: sfr2l_core::card::SimulatorCard = serde_json::from_str(
        &std::fs::read_to_string(&card_path).with_context(|| format!("reading {}", card_path.display()))?,
    )
    .with_context(|| format!("{}", card_path.display()))?;
    let ds = sfr2l_learn::data::read_dataset(Path::new(&card.dataset.path), &set.study)?;
    let sd = |k: usize| {
        let n = ds.y.len().max(1) as f64;
        let m = ds.y.iter().map(|y| y[k]).sum::<f64>() / n;
        (ds.y.iter().map(|y| (y[k] - m).powi(2)).sum::<f64>() / n).sqrt().max(1e-12)
    };
    Ok([sd(0), sd(1)])
}

/// Runs the samples not yet in `done`, appending each to `out` as it completes; returns whether
/// Ctrl-C stopped it.
fn replay(
    lab: &mut Lab,
    a: &ValidateArgs,
    set: &AgentSet,
    (plan, out): (&[Sample], &Path),
    done: &mut Vec<Outcome>,
    stop: &AtomicBool,
) -> Result<bool> {
    let mut file = open_out(out, done, &set.study.failure())?;
    let have: std::collections::BTreeSet<usize> = done.iter().map(|o| o.index).collect();
    for s in plan {
        if stop.load(Ordering::SeqCst) {
            return Ok(true);
        }
        if have.contains(&s.index) {
            continue;
        }
        // The random draw depends only on the seed and the sample, so a resumed run draws the same.
        let mut rng = SplitMix64::new(a.seed.wrapping_mul(0x9E37_79B9).wrapping_add(s.index as u64));
        let decision = set.decide(s)?;
        let random_load = set.random_load(s, &mut rng);
        let mut measure =
            |who: &str, load: LoadSetting| -> Result<Measured> { measured_run(lab, s, load, a, set, who) };
        let (agent, random) = if s.index.is_multiple_of(2) {
            let x = measure("agent", decision.load)?;
            (x, measure("random", random_load)?)
        } else {
            let y = measure("random", random_load)?;
            (measure("agent", decision.load)?, y)
        };
        let inline = if a.inline { Some(inline_run(lab, set, s, a)?) } else { None };
        let o = Outcome {
            index: s.index,
            row: s.row,
            agent_load: decision.load,
            random_load,
            agent,
            random,
            sim_agent: set.predict(&s.rule, &decision.load)?,
            sim_random: set.predict(&s.rule, &random_load)?,
            inline,
        };
        writeln!(file, "{}", o.to_csv()).with_context(|| format!("writing {}", out.display()))?;
        file.sync_data()?;
        eprintln!(
            "sample {:>3}: agent {}x{} reward {:.1} (sim {:.1}), random {}x{} reward {:.1} (sim {:.1}){}",
            s.index,
            o.agent_load.threads,
            o.agent_load.calls,
            o.agent.reward,
            o.sim_agent.reward,
            o.random_load.threads,
            o.random_load.calls,
            o.random.reward,
            o.sim_random.reward,
            o.inline
                .map(|(l, m)| format!(", inside Envoy {}x{} reward {:.1}", l.threads, l.calls, m.reward))
                .unwrap_or_default()
        );
        done.push(o);
    }
    Ok(false)
}

/// The per-sample file, rewritten with the kept outcomes (a torn last line from a killed run is
/// dropped by the reader), then appended to.
fn open_out(out: &Path, done: &[Outcome], failure: &sfr2l_core::Failure) -> Result<std::fs::File> {
    let mut text = format!("{}\n", csv_header(failure));
    for o in done {
        text.push_str(&o.to_csv());
        text.push('\n');
    }
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(out, text.as_bytes())?;
    std::fs::OpenOptions::new().append(true).open(out).with_context(|| format!("opening {}", out.display()))
}

/// One load run with the state's rule applied, measured by the filter's trace and checked for
/// conservation; retried up to `--tries`, then an error (never a missing sample).
fn measured_run(
    lab: &mut Lab,
    s: &Sample,
    load: LoadSetting,
    a: &ValidateArgs,
    set: &AgentSet,
    who: &str,
) -> Result<Measured> {
    let entry = PlanEntry { config_id: format!("val-{who}"), repeat: 0, rule: s.rule, load };
    let mut why = String::new();
    for t in 0..a.tries.max(1) {
        let run_id = format!("val-{}-{}-{who}-{t}-g{}", set.profile, s.index, lab.generation() + 1);
        let outcome = match run_once(lab, &entry, &run_id, a.path.as_deref().unwrap_or(&set.study.target.path), 0) {
            Ok(o) => o,
            Err(e) if !lab.faults().is_empty() => Err(format!("{e:#}")),
            Err(e) => return Err(e),
        };
        match outcome {
            Ok(o) => {
                return Ok(Measured::new(o.record.qps, o.record.failure_rate(&set.study.failure()), set.objective))
            }
            Err(w) => {
                eprintln!("sfr2l: run {run_id} rejected: {w}");
                heal(lab)?;
                why = w;
            }
        }
    }
    bail!("{who} run of {}x{} failed its conservation check {} times: {why}", load.threads, load.calls, a.tries)
}

/// The same state's test decided and sent inside Envoy (load-test mode).
fn inline_run(lab: &mut Lab, set: &AgentSet, s: &Sample, a: &ValidateArgs) -> Result<(LoadSetting, Measured)> {
    let root: PathBuf = lab.opts.artifacts.clone().context("the lab serves no artifacts (--artifacts policies)")?;
    for t in 0..a.tries.max(1) {
        let models = loadtest::models_config(&root, &set.dir, false, envoy::ARTIFACTS_CLUSTER)?;
        let trigger = format!("val-{}-{}-inline-{t}-g{}", set.profile, s.index, lab.generation() + 1);
        let mut lt = loadtest::lab_loadtest(lab, &trigger);
        // The same request as the outside replay's (a good host answers /get with a body).
        lt.path = a.path.clone().unwrap_or_else(|| set.study.target.path.clone());
        if let Some(c) = a.refusal_cost_us {
            lt.refusal_cost_us = c;
        }
        lt.threads = Some(s.fixed.threads);
        lt.calls = Some(s.fixed.calls);
        let (client, server) = (lab.cluster_stats()?, lab.server_fault_stats()?);
        let rec = match loadtest::run_in_sidecar(lab, &s.rule, models, lt, Duration::from_secs(120)) {
            Ok(r) => r,
            Err(e) if !lab.faults().is_empty() => {
                eprintln!("sfr2l: inline run {trigger} failed on a faulty lab: {e:#}");
                heal(lab)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let fault = match lab.faults().first() {
            Some((name, pid, state)) => Some(format!("lab fault during the run: {name} (pid {pid}) is {state}")),
            None => collect::lab_faults(
                &collect::delta(&lab.cluster_stats()?, &client),
                &collect::delta(&lab.server_fault_stats()?, &server),
            ),
        };
        if let Some(why) = fault {
            eprintln!("sfr2l: inline run {trigger} rejected: {why}");
            heal(lab)?;
            continue;
        }
        if rec.complete && rec.responses == u64::from(rec.calls) {
            let load = LoadSetting { threads: rec.threads, calls: rec.calls };
            return Ok((load, Measured::new(rec.qps, rec.failure_rate(&set.study.failure()), set.objective)));
        }
        eprintln!("sfr2l: inline run {trigger} incomplete: {} of {} responses", rec.responses, rec.calls);
    }
    bail!("the inline run of sample {} was incomplete {} times", s.index, a.tries)
}

/// Restarts what died, says so, and waits for a paused process (or fails naming it).
fn heal(lab: &mut Lab) -> Result<()> {
    for line in lab.heal(sfr2l_lab::STOPPED_WAIT)? {
        eprintln!("sfr2l: {line}");
    }
    Ok(())
}
