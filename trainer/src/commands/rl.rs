//! `sfr2l rl ...`: names, folders and settings are checked before any training starts; learning,
//! export and the Table 5 report are library calls.

use super::Exit;
use crate::cli::{RlCommand, RlDecideArgs, RlLearnArgs, RlTableArgs, RlTuneArgs};
use anyhow::{bail, Context, Result};
use sfr2l_core::agent::Configuration;
use sfr2l_files::{git_commit, read_config};
use sfr2l_learn::rl::run::{agent_dir_name, load_service, train_agents, write_run, Service};
use sfr2l_learn::rl::table::{cells_dir, run_table, write_table5, TableJob};
use sfr2l_learn::rl::RlConfig;

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
    sfr2l_learn::device::compute_device()?;
    Ok(cfg)
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
        for id in sfr2l_files::study::built_in_names() {
            v.push(load_service(&a.policies.join(id), None, objective)?);
        }
        v
    } else {
        vec![load_service(&a.sim, a.data.as_deref(), objective)?]
    };
    let services: Vec<&Service> = if a.heterogeneous { owned.iter().collect() } else { vec![&owned[0]; a.services] };
    let out = a.out.clone().unwrap_or_else(|| {
        a.sim
            .join("agents")
            .join(agent_dir_name(configuration, services.len(), a.heterogeneous, objective))
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
    if a.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let configs: Vec<(Configuration, usize)> = match &a.configs {
        Some(l) => l.iter().map(|c| (c.configuration, if c.collaborative() { a.services } else { 1 })).collect(),
        None => {
            let mut v: Vec<(Configuration, usize)> =
                sfr2l_core::agent::CONFIGURATIONS.iter().map(|c| (*c, 1)).collect();
            v.extend(sfr2l_core::agent::CONFIGURATIONS.iter().map(|c| (*c, a.services)));
            v
        }
    };
    let job = TableJob {
        datasets: a.datasets.clone(),
        configs,
        seeds: a.seeds,
        collab_seeds: a.collab_seeds.unwrap_or(a.seeds),
        policies: a.policies.clone(),
        export_to: a.export_to.clone().unwrap_or_else(|| a.policies.clone()),
        objective: a.tune.objective,
        base: rl_config(&a.tune, 1)?,
        cells: a.cells.clone().unwrap_or_else(|| cells_dir(&a.report)),
        resume: a.resume,
        jobs: usize::from(a.jobs),
    };
    let table = run_table(&job, &git_commit())?;
    let base = &job.base;
    let datasets = &job.datasets;
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
         dataset's simulator, each service drawing its own rules, with {} seed(s) per cell. Training time summed over \
         the cells: {:.1} minutes on this machine{}{}.",
        base.epochs,
        base.interactions,
        a.seeds,
        base.hidden,
        base.trunk_layers,
        base.learning_rate,
        base.collab_learning_rate,
        base.discount,
        base.beta,
        job.objective,
        a.services,
        job.collab_seeds,
        table.seconds / 60.0,
        if table.resumed > 0 {
            format!(" ({} of {} cells resumed from an earlier sitting)", table.resumed, table.runs.len())
        } else {
            String::new()
        },
        match table.wall {
            Some(w) => format!(
                "; wall time {:.2} h over {} sitting(s) with --jobs {} (the union of the cells' training spans)",
                w.seconds / 3600.0,
                w.sittings,
                a.jobs
            ),
            None => String::new(),
        }
    );
    let md = write_table5(&a.report, &job, &table, &command, &note)?;
    print!("{md}");
    Ok(())
}
