//! `sfr2l advise`: the simulator's recommended (or worst) DestinationRule at one load.

use super::lab::lab_options;
use super::Exit;
use crate::advise::check::{measure, Measured};
use crate::advise::search::Objective;
use crate::advise::{advise, describe_grid, yaml, Advised, Ask};
use crate::cli::AdviseArgs;
use anyhow::Result;
use sfr2l_core::LoadSetting;
use sfr2l_files::write_atomic;
use sfr2l_lab::{destination_rule, Lab};

pub fn run(a: AdviseArgs) -> Result<Exit> {
    if a.levels < 2 {
        anyhow::bail!("--levels: {} is below 2", a.levels);
    }
    let ask = Ask { threads: a.threads, calls: a.calls, objective: a.objective, levels: a.levels };
    let r = advise(&a.sim, &ask)?;
    let host = match &a.host {
        Some(h) => h.clone(),
        None => sfr2l_files::study::find(&r.profile)?.study.target.service,
    };
    let text = yaml(&r.rule, &host, &host, &r.inputs)?;
    let median = yaml(&r.median_rule, &host, &host, &r.inputs)?;
    if let Some(p) = &a.out {
        write_atomic(p, text.as_bytes())?;
    }
    if let Some(p) = &a.median_out {
        write_atomic(p, median.as_bytes())?;
    }
    let checked = if a.check > 0 { Some(check_on_lab(&a, &r, &text, &median)?) } else { None };
    let adv = &r.advice;
    // Rates are keyed as the dataset names them: `rate_503`, or the study's failure codes.
    let key = r.failure.column();
    let side = |s: &crate::advise::search::Scored| {
        let mut j = serde_json::json!({"rules": s.rules, "qps": s.qps, "sd_qps": s.sd_qps, "sd_rate": s.sd_rate});
        j[&key] = s.failure_rate.into();
        j
    };
    let measured = |m: &Measured| {
        let mut j = serde_json::json!({"qps": m.qps});
        j[&key] = m.failure_rate.into();
        j
    };
    if a.json {
        let j = serde_json::json!({
            "profile": r.profile, "threads": a.threads, "calls": a.calls,
            "objective": adv.objective.name(), "candidates": adv.candidates, "grid": describe_grid(&r.inputs, &r.axes),
            "chosen": side(&adv.chosen), "median": side(&adv.median), "gap": adv.gap, "spread": adv.spread,
            "flat": adv.flat, "extrapolation": adv.extrapolation, "yaml": text,
            "check": checked.map(|(m, holds)| serde_json::json!({
                "runs": a.check, "holds": holds,
                "advised": measured(&m[0]),
                "median": measured(&m[1]),
            })),
        });
        println!("{j}");
        return Ok(Exit::Ok);
    }
    let rate = r.failure.label();
    let what = match adv.objective {
        Objective::Best => format!("lowest predicted {rate}"),
        Objective::Worst => format!("highest predicted {rate} (fails worst)"),
    };
    println!(
        "# {}: {} of {} rules at -c {} -n {}; grid: {}",
        r.profile,
        what,
        adv.candidates,
        a.threads,
        a.calls,
        describe_grid(&r.inputs, &r.axes)
    );
    for (label, s) in [("advised", &adv.chosen), ("median ", &adv.median)] {
        println!(
            "# {label}: {rate} {:.4} +- {:.4}, QPS {:.1} +- {:.1} (ensemble spread)",
            s.failure_rate, s.sd_rate, s.qps, s.sd_qps
        );
    }
    if adv.flat {
        println!(
            "# FLAT: the advised and the median rule differ by {:.4} in {rate}, inside the model's spread {:.4}: the model cannot tell them apart",
            adv.gap, adv.spread
        );
    }
    for e in &adv.extrapolation {
        println!("# EXTRAPOLATION: {e}: the simulator has no data there");
    }
    if let Some((m, holds)) = checked {
        println!(
            "# CHECK on the real lab, {} runs each at -c {} -n {}: advised {rate} {:.4} (predicted {:.4}), QPS {:.1}; median {:.4} (predicted {:.4}), QPS {:.1}: the advice {}",
            a.check,
            a.threads,
            a.calls,
            m[0].failure_rate,
            adv.chosen.failure_rate,
            m[0].qps,
            m[1].failure_rate,
            adv.median.failure_rate,
            m[1].qps,
            if holds { "holds" } else { "does NOT hold" }
        );
    }
    print!("{text}");
    Ok(Exit::Ok)
}

/// Measures the advised and the median rule (read back from their YAML, as `lab apply` reads
/// them) on the simulator's study's lab; whether the advised one measured on its side.
fn check_on_lab(a: &AdviseArgs, r: &Advised, text: &str, median: &str) -> Result<([Measured; 2], bool)> {
    let mut setup = a.lab.clone();
    setup.study = r.profile.clone();
    let (src, opts) = lab_options(&setup, true)?;
    let rules = [destination_rule::parse(text, "advised")?, destination_rule::parse(median, "median")?];
    eprintln!("advise --check: starting the lab of study {} in {}", src.study.name, opts.dir.display());
    let mut lab = Lab::start(opts)?;
    let load = LoadSetting { threads: a.threads, calls: a.calls };
    let m = measure(&mut lab, &rules, (load, a.check), &src.study.target.path, &r.failure);
    lab.stop();
    let m = m?;
    let holds = match a.objective {
        Objective::Best => m[0].failure_rate <= m[1].failure_rate,
        Objective::Worst => m[0].failure_rate >= m[1].failure_rate,
    };
    Ok(([m[0], m[1]], holds))
}
