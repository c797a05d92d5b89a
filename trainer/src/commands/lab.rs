//! `sfr2l lab ...`: start, stop, inspect and re-rule the local mesh lab, and collect datasets on it.

use super::Exit;
use crate::cli::{CollectArgs, LabCommand, LabLoadtestArgs, LabSetupArgs, PilotArgs};
use anyhow::{bail, Result};
use sfr2l_files::study::StudySource;
use sfr2l_lab::collect::{collect_dataset, CollectJob};
use sfr2l_lab::destination_rule;
use sfr2l_lab::envoy;
use sfr2l_lab::loadtest;
use sfr2l_lab::{Lab, LabOptions, Toolchain};
use std::time::Duration;
use std::time::Instant;

/// Lab options from the command line (the study's upstream and topology, plus overrides).
pub fn lab_options(a: &LabSetupArgs, attached: bool) -> Result<(StudySource, LabOptions)> {
    let src = sfr2l_files::study::find(&a.study)?;
    let mut topo = src.study.lab;
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
    if let Some(v) = a.bad_mode {
        topo.bad_mode = v.into();
    }
    if let Some(v) = a.delay_percent {
        topo.delay_percent = v;
    }
    if let Some(v) = a.client_workers {
        topo.client_workers = v;
    }
    if let Some(v) = a.client_quota {
        topo.client_quota = v.0;
    }
    if let Some(v) = a.conn_quota {
        topo.conn_quota = v.0;
    }
    if let Some(v) = a.capacity {
        topo.capacity = v.0;
    }
    if topo.bad_hosts > topo.hosts {
        bail!("--bad-hosts {} exceeds --hosts {}", topo.bad_hosts, topo.hosts);
    }
    if !(0.0..=100.0).contains(&topo.bad_abort_percent) || !(0.0..=100.0).contains(&topo.delay_percent) {
        bail!("percentages must be within 0..=100");
    }
    let upstream_workers = a.upstream_workers.unwrap_or(src.study.upstream_workers);
    if topo.client_workers == 0 || upstream_workers == 0 {
        bail!("worker counts must be >= 1");
    }
    let tools = Toolchain::discover(&a.venv, &a.wasm)?;
    let dir = std::path::absolute(&a.dir.dir)?;
    Ok((
        src.clone(),
        LabOptions {
            dir,
            base_port: a.base_port,
            topology: topo,
            tools,
            upstream: src.study.upstream.clone(),
            target: src.study.target.clone(),
            upstream_workers,
            attached,
            idle_timeout_ms: a.idle_timeout_ms,
            artifacts: a.artifacts.as_ref().map(std::path::absolute).transpose()?,
        },
    ))
}

pub fn run(cmd: LabCommand) -> Result<Exit> {
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
            lab.detach()?;
            Ok(Exit::Ok)
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
            Ok(Exit::Ok)
        }
        LabCommand::Status(a) => {
            let mut lab = Lab::attach_unchecked(&a.dir)?;
            for (name, pid, alive) in lab.status() {
                println!("{name:<16} pid {pid:<8} {}", if alive { "running" } else { "EXITED" });
            }
            println!("generation {}  client listener {}", lab.generation(), lab.client_url("/"));
            lab.check()?;
            Ok(Exit::Ok)
        }
        LabCommand::Apply(a) => {
            // The files first: a bad one fails naming its field, with or without a lab.
            // (A folder is rendered once.)
            let (text, origin) = sfr2l_deploy::istio::text(&a.file)?;
            sfr2l_deploy::istio::parse_stream(&text, &origin)?;
            let mut lab = Lab::attach(&a.dir.dir)?;
            // The rule the target's cluster gets, as istiod picks it (host, rules merged, the
            // port's portLevelSettings entry, the subset), and what the files set that the lab
            // does not model.
            let m = sfr2l_deploy::lab_config::from_text(&text, &origin, &a.file, Some(&lab.opts.target))?;
            for k in m.kept.iter().filter(|k| !k.contains(": not read)")) {
                eprintln!("sfr2l: {}: kept, not modelled: {k}", a.file.display());
            }
            lab.set_cluster_settings(m.cluster);
            let m = m.for_lab(&lab.opts.target)?;
            let t0 = Instant::now();
            lab.apply_filter_config(&m.rule, m.config)?;
            println!(
                "applied {} as generation {} in {:.0} ms",
                a.file.display(),
                lab.generation(),
                t0.elapsed().as_secs_f64() * 1e3
            );
            Ok(Exit::Ok)
        }
        LabCommand::Collect(a) => collect(a),
        LabCommand::Loadtest(a) => loadtest(a),
        LabCommand::Pilot(a) => pilot(a),
    }
}

fn pilot(a: PilotArgs) -> Result<Exit> {
    use sfr2l_lab::collect::pilot::{pilot_plan, report, run_pilot};
    let (src, opts) = lab_options(&a.setup, true)?;
    let profile = src.study;
    let path = a.path.clone().unwrap_or_else(|| profile.target.path.clone());
    let plan = pilot_plan(&profile, a.rule_sets, a.repeats, a.seed);
    let mut lab = Lab::start(opts)?;
    let bar = indicatif::ProgressBar::new(plan.len() as u64);
    let rows = run_pilot(&mut lab, &profile.columns(), &plan, &path, |i| bar.set_position(i as u64))?;
    bar.finish_and_clear();
    lab.stop();
    if let Some(out) = &a.out {
        let mut text = format!("{}\n", profile.columns().header().join(","));
        for r in &rows {
            text.push_str(&format!("{}\n", r.row.to_fields().join(",")));
        }
        sfr2l_files::write_atomic(out, text.as_bytes())?;
    }
    print!("{}", report(&profile, &rows));
    if rows.len() < plan.len() {
        eprintln!(
            "sfr2l: {} of {} pilot runs failed conservation 3 times and are left out",
            plan.len() - rows.len(),
            plan.len()
        );
    }
    Ok(Exit::Ok)
}

fn loadtest(a: LabLoadtestArgs) -> Result<Exit> {
    let rule = destination_rule::read(&a.file)?;
    let mut lab = Lab::attach(&a.dir.dir)?;
    let Some(root) = lab.opts.artifacts.clone() else {
        bail!(
            "the lab in {} serves no artifacts: start it with `sfr2l lab up --artifacts policies`",
            a.dir.dir.display()
        );
    };
    let models = loadtest::models_config(&root, &a.agents, a.simulator, envoy::ARTIFACTS_CLUSTER)?;
    let trigger = a.trigger.unwrap_or_else(|| format!("cli-{}", sfr2l_files::now_rfc3339().replace([':', '.'], "-")));
    let mut lt = loadtest::lab_loadtest(&lab, &trigger);
    lt.threads = a.threads;
    lt.calls = a.calls;
    let rec = loadtest::run_in_sidecar(&mut lab, &rule, models, lt, Duration::from_secs(a.timeout_s))?;
    let Some(i) = &rec.inline else { bail!("the record for {trigger} has no inline section") };
    for s in &i.steps {
        println!("{} agent: state {:?} -> {}", s.agent, s.state, s.choice);
    }
    println!(
        "inline load test {trigger} ({} {}, {}): threads {} calls {}: {} responses, codes {:?}, QPS {:.0}, {} {:.3}, reward {:.1}{}; decided in {} µs inside Envoy",
        i.profile,
        i.configuration,
        i.objective,
        rec.threads,
        rec.calls,
        rec.responses,
        rec.codes,
        rec.qps,
        i.failure_codes.column(),
        rec.failure_rate(&i.failure_codes),
        i.reward,
        i.predicted
            .map(|p| format!(" (simulator: QPS {:.0}, {} {:.3}, reward {:.1})", p.qps, i.failure_codes.column(), p.failure_rate, p.reward))
            .unwrap_or_default(),
        i.decide_ns / 1000
    );
    println!("{}", rec.to_log_line());
    Ok(Exit::Ok)
}

fn collect(a: CollectArgs) -> Result<Exit> {
    let (src, opts) = lab_options(&a.setup, true)?;
    let (rows, seed, repeats) = sfr2l_lab::collect::sized(&src.study, a.rows, a.seed, a.repeats)?;
    let job = CollectJob {
        path: a.path.unwrap_or_else(|| src.study.target.path.clone()),
        profile: src.study,
        study_sha256: src.sha256,
        rows,
        seed,
        repeats,
        out: a.out,
        resume: a.resume,
        warmup_calls: a.warmup_calls,
        tries: a.tries,
        attach: a.attach,
        quiet: a.quiet,
    };
    let done = collect_dataset(&job, opts)?;
    println!(
        "{} rows in {} ({} rejected tries, {} rows skipped, {} lab processes restarted) in {:.0} s{}",
        done.rows,
        job.out.display(),
        done.rejected_tries,
        done.skipped_rows,
        done.lab_restarts,
        done.seconds,
        if done.interrupted { "; interrupted: continue with --resume" } else { "" }
    );
    Ok(if done.interrupted { Exit::Interrupted } else { Exit::Ok })
}
