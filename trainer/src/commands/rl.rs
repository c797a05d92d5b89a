//! `sfr2l rl ...`: names, folders and settings are checked before any training starts; learning,
//! export and the Table 5 report are library calls.

use super::Exit;
use crate::artifact::{git_commit, read_config, write_atomic};
use crate::cli::{RlCommand, RlDecideArgs, RlLearnArgs, RlTableArgs, RlTuneArgs};
use crate::rl::env::Objective;
use crate::rl::report::{curves_svg, table5};
use crate::rl::run::{load_service, train_agents, write_run, RunSummary, Service};
use crate::rl::RlConfig;
use anyhow::{bail, Context, Result};
use sfr2l_core::agent::Configuration;
use sfr2l_core::profile::PROFILE_IDS;
use sfr2l_core::ProfileId;
use std::path::{Path, PathBuf};

pub fn run(cmd: RlCommand) -> Result<Exit> {
    match cmd {
        RlCommand::Learn(a) => learn_cmd(a),
        RlCommand::Table(a) => table_cmd(a),
        RlCommand::Decide(a) => decide_cmd(a),
    }?;
    Ok(Exit::Ok)
}

fn decide_cmd(a: RlDecideArgs) -> Result<()> {
    let bytes = std::fs::read(&a.agent).with_context(|| format!("reading {}", a.agent.display()))?;
    let agent = sfr2l_runtime::Agent::from_bytes(&bytes).with_context(|| format!("loading {}", a.agent.display()))?;
    let state: Vec<f32> = a
        .state
        .split(',')
        .enumerate()
        .map(|(i, v)| {
            let name = agent.state.get(i).map(String::as_str).unwrap_or("extra");
            v.trim()
                .parse::<f32>()
                .map_err(|_| anyhow::anyhow!("--state: value {} ({name}) `{v}` is not a number", i + 1))
        })
        .collect::<Result<_>>()?;
    if state.len() != agent.state.len() {
        bail!(
            "--state: {} values given, the agent needs {} ({})",
            state.len(),
            agent.state.len(),
            agent.state.join(",")
        );
    }
    let q = agent.q_values(std::slice::from_ref(&state))?;
    let choice = agent.decide(&state)?;
    println!(
        "{}",
        serde_json::json!({ "profile": agent.profile, "action": agent.action, "decision": choice, "grid": agent.grid, "q_values": q.first() })
    );
    Ok(())
}

pub fn rl_config(t: &RlTuneArgs, seed: u64) -> Result<RlConfig> {
    let mut cfg = match &t.rl_config {
        Some(p) => read_config(p)?,
        None => RlConfig::new(),
    };
    cfg.seed = seed;
    if let Some(v) = t.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = t.interactions {
        cfg.interactions = v;
    }
    if let Some(v) = t.hidden {
        cfg.hidden = v;
        cfg.collab_head_hidden = v;
    }
    if let Some(v) = t.beta {
        cfg.beta = v;
    }
    if let Some(v) = t.discount {
        cfg.discount = v;
    }
    cfg.check()?;
    crate::device::compute_device()?;
    Ok(cfg)
}

fn slug_dir(c: Configuration, services: usize, heterogeneous: bool, objective: Objective) -> String {
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

fn learn_cmd(a: RlLearnArgs) -> Result<()> {
    let configuration = a.config;
    let cfg = rl_config(&a.tune, a.seed)?;
    if a.services == 0 {
        bail!("--services must be at least 1");
    }
    let objective = a.tune.objective;
    let owned: Vec<Service> = if a.heterogeneous {
        let mut v = Vec::new();
        for id in PROFILE_IDS {
            v.push(load_service(&a.policies.join(id.to_string()), None, objective)?);
        }
        v
    } else {
        vec![load_service(&a.sim, a.data.as_deref(), objective)?]
    };
    let services: Vec<&Service> = if a.heterogeneous { owned.iter().collect() } else { vec![&owned[0]; a.services] };
    let out = a.out.clone().unwrap_or_else(|| {
        a.sim
            .join("agents")
            .join(slug_dir(configuration, services.len(), a.heterogeneous, objective))
            .join(format!("seed-{}", a.seed))
    });
    let r = train_agents(configuration, &services, &cfg, |e, st| {
        if e % 25 == 0 || e + 1 == cfg.epochs {
            eprintln!(
                "epoch {e:>4}: ratio {:.3}, optimum/random {:.3}, epsilon {:.2}",
                st.rl / st.random,
                st.optimum / st.random,
                st.epsilon
            );
        }
    })?;
    let s = write_run(&out, &r, &services, &cfg, objective, &git_commit())?;
    println!("{}", serde_json::to_string(&s)?);
    Ok(())
}

fn table_cmd(a: RlTableArgs) -> Result<()> {
    let datasets: Vec<String> = a.datasets.iter().map(ProfileId::to_string).collect();
    let configs: Vec<(Configuration, usize)> = match &a.configs {
        Some(l) => l.iter().map(|c| (c.configuration, if c.collaborative() { a.services } else { 1 })).collect(),
        None => {
            let mut v: Vec<(Configuration, usize)> =
                sfr2l_core::agent::CONFIGURATIONS.iter().map(|c| (*c, 1)).collect();
            v.extend(sfr2l_core::agent::CONFIGURATIONS.iter().map(|c| (*c, a.services)));
            v
        }
    };
    if a.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let objective = a.tune.objective;
    let base = rl_config(&a.tune, 1)?;
    // Load and check every simulator before the first run.
    let mut services = Vec::new();
    for d in &datasets {
        services.push(load_service(&a.policies.join(d), None, objective)?);
    }
    let commit = git_commit();
    let mut runs: Vec<RunSummary> = Vec::new();
    let mut curves: Vec<Vec<(String, Vec<f64>)>> = vec![Vec::new(); datasets.len()];
    let started = std::time::Instant::now();
    for (di, svc) in services.iter().enumerate() {
        for (c, n) in &configs {
            let seeds = if *n > 1 { a.collab_seeds.unwrap_or(a.seeds) } else { a.seeds };
            for seed in 1..=seeds {
                let mut cfg = base.clone();
                cfg.seed = seed;
                let svcs: Vec<&Service> = vec![svc; *n];
                let r = train_agents(*c, &svcs, &cfg, |_, _| {})?;
                let out: PathBuf = if seed == 1 {
                    a.export_to
                        .as_ref()
                        .unwrap_or(&a.policies)
                        .join(&datasets[di])
                        .join("agents")
                        .join(slug_dir(*c, *n, false, objective))
                        .join(format!("seed-{seed}"))
                } else {
                    std::env::temp_dir().join(format!("sfr2l-rl-{}-{}", std::process::id(), seed))
                };
                let s = write_run(&out, &r, &svcs, &cfg, objective, &commit)?;
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
    let mut command = format!(
        "sfr2l rl table --datasets {} --seeds {} --epochs {} --interactions {}",
        datasets.join(","),
        a.seeds,
        base.epochs,
        base.interactions
    );
    if let Some(c) = &a.configs {
        command.push_str(&format!(" --configs {}", c.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")));
    }
    if let Some(c) = a.collab_seeds {
        command.push_str(&format!(" --collab-seeds {c}"));
    }
    let note = format!(
        "Protocol: {} epochs x {} interactions per service, {} seed(s) per cell, Q-networks {}-wide (trunk {} layers), \
         lr {:e} (collaborative {:e}), discount {}, beta {}, objective {:?}. Collaborative rows use {} copies of the \
         dataset's simulator, each service drawing its own rules, with {} seed(s) per cell. Wall time of the whole table: \
         {:.1} minutes on this machine.",
        base.epochs,
        base.interactions,
        a.seeds,
        base.hidden,
        base.trunk_layers,
        base.learning_rate,
        base.collab_learning_rate,
        base.discount,
        base.beta,
        objective,
        a.services,
        a.collab_seeds.unwrap_or(a.seeds),
        started.elapsed().as_secs_f64() / 60.0
    );
    let md = table5(&runs, &datasets, &command, &note);
    let dir = a.report.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir.join("curves"))?;
    write_atomic(&a.report, md.as_bytes())?;
    for (d, panels) in datasets.iter().zip(&curves) {
        let svg = curves_svg(
            &format!(
                "{}: RL/random per epoch (light) and its {}-epoch rolling mean (dark), seed 1",
                d.to_uppercase(),
                base.rolling_window
            ),
            panels,
            base.rolling_window,
        );
        write_atomic(&dir.join("curves").join(format!("{d}.svg")), svg.as_bytes())?;
    }
    let json = serde_json::to_string_pretty(&runs)?;
    write_atomic(&dir.join("table5-runs.json"), json.as_bytes())?;
    print!("{md}");
    Ok(())
}
