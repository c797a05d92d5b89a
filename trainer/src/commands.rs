//! Command implementations: raw CLI arguments become validated settings, then work starts.

use crate::cli::*;
use crate::collect::{self, DatasetFile, DatasetMeta};
use crate::lab::{Lab, LabOptions, Toolchain};
use crate::{destination_rule, ingest, load};
use anyhow::{bail, Context, Result};
use sfr2l_core::profile::{Profile, ProfileId};
use sfr2l_core::trace::DatasetRow;
use sfr2l_core::{IstioDuration, LoadSetting};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Lab options from the command line (profile topology plus overrides).
pub fn lab_options(a: &LabSetupArgs, attached: bool) -> Result<(Profile, LabOptions)> {
    let id: ProfileId = a.profile.parse().map_err(|e: String| anyhow::anyhow!("--profile: {e}"))?;
    let profile = Profile::get(id);
    let mut topo = profile.lab;
    if let Some(v) = a.hosts {
        topo.hosts = v;
    }
    if let Some(v) = a.bad_hosts {
        topo.bad_hosts = v;
    }
    if let Some(v) = a.bad_abort_percent {
        topo.bad_abort_percent = v;
    }
    if let Some(v) = a.delay_ms {
        topo.delay_ms = v;
    }
    if let Some(v) = &a.bad_mode {
        topo.bad_mode = match v.as_str() {
            "fault-abort" => sfr2l_core::profile::BadMode::FaultAbort,
            "app503" => sfr2l_core::profile::BadMode::App503,
            _ => bail!("--bad-mode {v:?}: expected fault-abort or app503"),
        };
    }
    if let Some(v) = a.delay_percent {
        topo.delay_percent = v;
    }
    if let Some(v) = a.client_workers {
        topo.client_workers = v;
    }
    if topo.bad_hosts > topo.hosts {
        bail!("--bad-hosts {} exceeds --hosts {}", topo.bad_hosts, topo.hosts);
    }
    if !(0.0..=100.0).contains(&topo.bad_abort_percent) || !(0.0..=100.0).contains(&topo.delay_percent) {
        bail!("percentages must be within 0..=100");
    }
    if topo.client_workers == 0 || a.httpbin_workers == 0 || a.upstream_workers == 0 {
        bail!("worker counts must be >= 1");
    }
    let tools = Toolchain::discover(&a.venv, &a.wasm)?;
    let dir = std::path::absolute(&a.dir.dir)?;
    Ok((
        profile,
        LabOptions {
            dir,
            base_port: a.base_port,
            topology: topo,
            tools,
            httpbin_workers: a.httpbin_workers,
            httpbin_threads: a.httpbin_threads,
            upstream_workers: a.upstream_workers,
            attached,
            idle_timeout_ms: a.idle_timeout_ms,
        },
    ))
}

pub fn lab(cmd: LabCommand) -> Result<()> {
    match cmd {
        LabCommand::Up(a) => {
            let (_, opts) = lab_options(&a.setup, false)?;
            if Lab::state_path(&opts.dir).exists() {
                bail!(
                    "a lab is already recorded in {} (run `sfr2l lab down --dir {}` first)",
                    opts.dir.display(),
                    opts.dir.display()
                );
            }
            let lab = Lab::start(opts)?;
            println!(
                "lab up: client listener {}  admin http://127.0.0.1:{}  hosts {}  dir {}",
                lab.client_url("/"),
                lab.ports.client_admin,
                lab.opts.topology.hosts,
                lab.opts.dir.display()
            );
            lab.detach()
        }
        LabCommand::Down(a) => {
            let mut lab = match Lab::attach(&a.dir) {
                Ok(l) => l,
                Err(e) if Lab::state_path(&a.dir).exists() => {
                    eprintln!("sfr2l: {e:#}; stopping what is left");
                    Lab::attach_unchecked(&a.dir)?
                }
                Err(e) => return Err(e),
            };
            lab.stop();
            println!("lab down");
            Ok(())
        }
        LabCommand::Status(a) => {
            let mut lab = Lab::attach_unchecked(&a.dir)?;
            for (name, pid, alive) in lab.status() {
                println!("{name:<16} pid {pid:<8} {}", if alive { "running" } else { "EXITED" });
            }
            println!("generation {}  client listener {}", lab.generation(), lab.client_url("/"));
            lab.check()
        }
        LabCommand::Apply(a) => {
            let rule = destination_rule::read(&a.file)?;
            let mut lab = Lab::attach(&a.dir.dir)?;
            let t0 = Instant::now();
            lab.apply(&rule)?;
            println!(
                "applied {} as generation {} in {:.0} ms",
                a.file.display(),
                lab.generation(),
                t0.elapsed().as_secs_f64() * 1e3
            );
            Ok(())
        }
        LabCommand::Collect(a) => collect_cmd(a),
    }
}

fn collect_cmd(a: CollectArgs) -> Result<()> {
    if a.rows == 0 {
        bail!("--rows must be >= 1");
    }
    let (reps_configs, reps) = collect::parse_repeats(&a.repeats)?;
    let (profile, opts) = lab_options(&a.setup, true)?;
    let plan = collect::plan(&profile, a.rows, a.seed, reps_configs, reps);
    let mut file = DatasetFile::open(&a.out, a.resume)?;
    let todo: Vec<_> =
        plan.iter().enumerate().filter(|(_, e)| !file.done.contains(&(e.config_id.clone(), e.repeat))).collect();
    let stop = collect::interrupt_flag()?;
    let mut lab = if a.attach { Lab::attach(&opts.dir)? } else { Lab::start(opts)? };
    let started = collect::now_rfc3339();
    let t0 = Instant::now();
    let bar = if a.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(todo.len() as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} rows, {elapsed} elapsed, ETA {eta} {msg}",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("collect {}", profile.id));
    let (mut rejected, mut skipped, mut overheads) = (0u64, 0u64, Vec::new());
    let meta = |file: &DatasetFile, lab: &Lab, rejected, skipped, overheads: &mut Vec<f64>| -> Result<()> {
        overheads.sort_by(f64::total_cmp);
        let m = DatasetMeta {
            schema: 1,
            profile: profile.id.to_string(),
            rows: file.rows,
            planned_rows: a.rows,
            seed: a.seed,
            repeats: a.repeats.clone(),
            envoy_version: lab.opts.tools.envoy_version(),
            topology: lab.opts.topology,
            upstream: format!("httpbin 0.10 under gunicorn (gthread), path {}", a.path),
            httpbin_workers: lab.opts.httpbin_workers,
            httpbin_threads: lab.opts.httpbin_threads,
            upstream_workers: lab.opts.upstream_workers,
            path: a.path.clone(),
            warmup_calls: a.warmup_calls,
            started: started.clone(),
            updated: collect::now_rfc3339(),
            collection_seconds: t0.elapsed().as_secs_f64(),
            rejected_tries: rejected,
            skipped_rows: skipped,
            median_overhead_ms: overheads.get(overheads.len() / 2).copied().unwrap_or(f64::NAN),
            nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            git_commit: collect::git_commit(),
            filter_sha256: sha256_file(&lab.opts.tools.wasm),
        };
        crate::lab::write_atomic(&collect::meta_path(&a.out), serde_json::to_string_pretty(&m)?.as_bytes())
    };
    for (idx, entry) in &todo {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut ok = false;
        for t in 0..a.tries {
            let run_id = format!("{}-{}-{idx}-{t}-g{}", profile.id, a.seed, lab.generation() + 1);
            let load_avg = collect::load_avg_1m();
            match collect::run_once(&mut lab, entry, &run_id, &a.path, a.warmup_calls)? {
                Ok(out) => {
                    let row = DatasetRow::new(
                        &entry.rule,
                        &entry.load,
                        &out.record,
                        load_avg,
                        entry.config_id.clone(),
                        entry.repeat,
                    );
                    file.append(&row)?;
                    overheads.push(out.overhead.as_secs_f64() * 1e3);
                    ok = true;
                    break;
                }
                Err(why) => {
                    rejected += 1;
                    bar.suspend(|| eprintln!("sfr2l: run {run_id} rejected: {why}"));
                }
            }
        }
        if !ok {
            skipped += 1;
        }
        bar.inc(1);
        if file.rows % 50 == 0 {
            meta(&file, &lab, rejected, skipped, &mut overheads)?;
        }
    }
    bar.finish_and_clear();
    meta(&file, &lab, rejected, skipped, &mut overheads)?;
    let interrupted = stop.load(Ordering::SeqCst);
    if a.attach {
        lab.detach()?; // the lab belongs to `lab up`: leave it running
    } else {
        lab.stop();
    }
    println!(
        "{} rows in {} ({} rejected tries, {} rows skipped) in {:.0} s{}",
        file.rows,
        a.out.display(),
        rejected,
        skipped,
        t0.elapsed().as_secs_f64(),
        if interrupted { "; interrupted: continue with --resume" } else { "" }
    );
    if interrupted {
        std::process::exit(130);
    }
    Ok(())
}

fn sha256_file(p: &std::path::Path) -> String {
    std::fs::read(p).map(|b| crate::export::folder::sha256_hex(&b)).unwrap_or_default()
}

pub fn load_cmd(a: LoadArgs) -> Result<()> {
    let mut spec = load::LoadSpec::from_url(&a.url, a.threads, a.calls)?;
    if !matches!(spec.host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]") && !spec.host.starts_with("127.") {
        bail!("{}: only loopback targets are allowed", a.url);
    }
    spec.qps = a.qps;
    spec.duration =
        Duration::from_secs_f64(IstioDuration::parse(&a.duration).map_err(|e| anyhow::anyhow!("-t: {e}"))?.secs());
    spec.timeout = Duration::from_secs_f64(
        IstioDuration::parse(&a.timeout).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?.secs(),
    );
    for h in &a.headers {
        let (k, v) = h.split_once(':').with_context(|| format!("-H {h:?}: expected `Name: value`"))?;
        spec.headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(run) = &a.run {
        let load = LoadSetting { threads: a.threads, calls: a.calls };
        spec.headers.push(("x-sfr2l-run".into(), run.clone()));
        spec.headers.push(("x-sfr2l-threads".into(), load.threads.to_string()));
        spec.headers.push(("x-sfr2l-calls".into(), load.calls.to_string()));
    }
    let r = load::run(&spec)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r.fortio_json())?);
    } else {
        print!("{}", r.fortio_text());
    }
    Ok(())
}

pub fn traces(cmd: TracesCommand) -> Result<()> {
    let TracesCommand::Ingest(a) = cmd;
    let reader = ingest::open(&a.file)?;
    let found = ingest::ingest(reader, &a.file)?;
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut errors = 0;
    if matches!(a.format, IngestFormat::Csv) {
        writeln!(out, "{}", DatasetRow::header().join(","))?;
    }
    for f in found {
        match f.record {
            Ok(rec) => match a.format {
                IngestFormat::Jsonl => writeln!(out, "{}", serde_json::to_string(&rec)?)?,
                IngestFormat::Csv => {
                    let Some(rule) = rec.rule else {
                        eprintln!(
                            "sfr2l: {}:{}: record {} has no rule (filter configured without one); skipped",
                            a.file, f.line, rec.run
                        );
                        continue;
                    };
                    let load = LoadSetting { threads: rec.threads, calls: rec.calls };
                    writeln!(
                        out,
                        "{}",
                        DatasetRow::new(&rule, &load, &rec, f64::NAN, rec.run.clone(), 0).to_fields().join(",")
                    )?
                }
            },
            Err(e) => {
                errors += 1;
                eprintln!("sfr2l: {e}");
            }
        }
    }
    out.flush()?;
    if errors > 0 {
        bail!("{errors} malformed trace record(s) in {}", a.file);
    }
    Ok(())
}
