//! `sfr2l sim ...`: arguments become a checked `SimConfig` before any work starts; the fit,
//! the table and the prediction are library calls.

use super::Exit;
use crate::cli::{SimCommand, SimFitArgs, SimPredictArgs, SimTableArgs, SimTuneArgs};
use anyhow::{bail, Context, Result};
use sfr2l_files::{git_commit, read_config, write_atomic};
use sfr2l_learn::data::{read_dataset, resolve_study};
use sfr2l_learn::sim::fit::{fit, write_artifacts};
use sfr2l_learn::sim::{table, SimConfig};
use std::path::Path;

pub fn run(cmd: SimCommand) -> Result<Exit> {
    match cmd {
        SimCommand::Fit(a) => fit_cmd(a),
        SimCommand::Table(a) => table_cmd(a),
        SimCommand::Predict(a) => predict_cmd(a),
    }?;
    Ok(Exit::Ok)
}

/// The config: file (if given), then flags on top; checked.
pub fn sim_config(t: &SimTuneArgs) -> Result<SimConfig> {
    let mut cfg = match &t.config {
        Some(p) => read_config(p)?,
        None => SimConfig::new(),
    };
    if let Some(v) = t.seed {
        cfg.seed = v;
    }
    if let Some(v) = t.epochs {
        cfg.max_epochs = v;
    }
    if let Some(v) = t.ensemble {
        cfg.ensemble = v;
    }
    if let Some(v) = t.hidden {
        cfg.hidden = v;
    }
    if let Some(v) = t.lr {
        cfg.learning_rate = v;
    }
    cfg.check()?;
    sfr2l_learn::device::compute_device()?;
    Ok(cfg)
}

fn log(line: &str) {
    eprintln!("{line}");
}

fn fit_cmd(a: SimFitArgs) -> Result<()> {
    let cfg = sim_config(&a.tune)?;
    let src = resolve_study(&a.data, a.study.as_deref())?;
    let ds = read_dataset(&a.data, &src.study)?;
    let mut fitted = fit(&ds, &cfg, &git_commit(), &mut |l| log(l))?;
    fitted.card.study = Some(sfr2l_core::card::StudyRef::of(&src.study, &src.sha256));
    write_artifacts(&a.out, &fitted)?;
    let m = &fitted.card.metrics;
    println!(
        "{}: test mse mlp {:.4} (ensemble of {}), svr {:.4}, logistic {:.4}, ridge {:.4}; noise floor {}",
        a.out.display(),
        m.mlp_ensemble.mse,
        fitted.card.ensemble,
        m.svr.mse,
        m.logistic.mse,
        m.ridge.mse,
        m.noise_floor_mean.map(|f| format!("{f:.4}")).unwrap_or_else(|| "n/a (no repeats)".into())
    );
    Ok(())
}

fn table_cmd(a: SimTableArgs) -> Result<()> {
    let cfg = sim_config(&a.tune)?;
    let ids: Vec<String> =
        a.only.clone().unwrap_or_else(|| sfr2l_files::study::built_in_names().map(String::from).collect());
    // Read and check every dataset before the first fit starts.
    let mut sets = Vec::new();
    for id in &ids {
        let path = a.data_dir.join(format!("{id}.csv"));
        let src = resolve_study(&path, Some(id))?;
        sets.push((read_dataset(&path, &src.study)?, src.sha256));
    }
    let commit = git_commit();
    let mut cards = Vec::new();
    for (ds, sha256) in &sets {
        let mut fitted = fit(ds, &cfg, &commit, &mut |l| log(l))?;
        fitted.card.study = Some(sfr2l_core::card::StudyRef::of(&ds.study, sha256));
        write_artifacts(&a.out_dir.join(&ds.study.name), &fitted)?;
        cards.push(fitted.card);
    }
    let mut command = format!("sfr2l sim table --data-dir {} --out-dir {}", a.data_dir.display(), a.out_dir.display());
    if let Some(o) = &a.only {
        command.push_str(&format!(" --only {}", o.join(",")));
    }
    if let Some(s) = a.tune.seed {
        command.push_str(&format!(" --seed {s}"));
    }
    let old = std::fs::read_to_string(&a.report).ok();
    let md = sfr2l_learn::history::with_history(
        &table::render(&cards, &command),
        old.as_deref(),
        &sfr2l_learn::history::today(),
    );
    if let Some(dir) = a.report.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(&a.report, md.as_bytes())?;
    print!("{md}");
    Ok(())
}

fn predict_cmd(a: SimPredictArgs) -> Result<()> {
    let path = if a.sim.is_dir() { a.sim.join("simulator.onnx") } else { a.sim.clone() };
    // The simulator says which inputs it takes (its study's, in order).
    let sim =
        sfr2l_runtime::Simulator::from_path(Path::new(&path)).with_context(|| format!("loading {}", path.display()))?;
    let names = sim.inputs.names();
    let vals: Vec<f32> = a
        .features
        .split(',')
        .enumerate()
        .map(|(i, v)| {
            let name = names.get(i).copied().unwrap_or("extra");
            v.trim()
                .parse::<f32>()
                .map_err(|_| anyhow::anyhow!("--features: value {} ({name}) `{v}` is not a number", i + 1))
        })
        .collect::<Result<_>>()?;
    if vals.len() != names.len() {
        bail!(
            "--features: {} values given, {} needed by {} ({})",
            vals.len(),
            names.len(),
            path.display(),
            names.join(",")
        );
    }
    let row = vals;
    let p = sim.predict(&[row])?;
    let p = p
        .first()
        .with_context(|| format!("{}: the simulator returned no prediction for one input row", path.display()))?;
    // The rate is named as the dataset's column: `rate_503`, or the study's failure codes.
    println!(
        "{{\"profile\":\"{}\",\"qps\":{:.3},\"{}\":{:.4},\"uncertainty\":[{:.3},{:.4}],\"reward\":{:.3}}}",
        sim.profile,
        p.qps,
        sim.failure.column(),
        p.failure_rate,
        p.uncertainty[0],
        p.uncertainty[1],
        sfr2l_core::reward::reward(f64::from(p.qps), f64::from(p.failure_rate))
    );
    Ok(())
}
