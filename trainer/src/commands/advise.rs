//! `sfr2l advise`: the simulator's recommended (or worst) DestinationRule at one load.

use super::Exit;
use crate::advise::search::Objective;
use crate::advise::{advise, describe_grid, yaml, Ask};
use crate::cli::AdviseArgs;
use anyhow::Result;
use sfr2l_files::write_atomic;

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
    let text = yaml(&r.rule, &host, &host)?;
    let median = yaml(&r.median_rule, &host, &host)?;
    if let Some(p) = &a.out {
        write_atomic(p, text.as_bytes())?;
    }
    if let Some(p) = &a.median_out {
        write_atomic(p, median.as_bytes())?;
    }
    let adv = &r.advice;
    let side = |s: &crate::advise::search::Scored| serde_json::json!({"rules": s.rules, "qps": s.qps, "rate_503": s.rate_503, "sd_qps": s.sd_qps, "sd_rate": s.sd_rate});
    if a.json {
        let j = serde_json::json!({
            "profile": r.profile, "threads": a.threads, "calls": a.calls,
            "objective": adv.objective.name(), "candidates": adv.candidates, "grid": describe_grid(&r.axes),
            "chosen": side(&adv.chosen), "median": side(&adv.median), "gap": adv.gap, "spread": adv.spread,
            "flat": adv.flat, "extrapolation": adv.extrapolation, "yaml": text,
        });
        println!("{j}");
        return Ok(Exit::Ok);
    }
    let what = match adv.objective {
        Objective::Best => "lowest predicted 503 rate",
        Objective::Worst => "highest predicted 503 rate (fails worst)",
    };
    println!(
        "# {}: {} of {} rules at -c {} -n {}; grid: {}",
        r.profile,
        what,
        adv.candidates,
        a.threads,
        a.calls,
        describe_grid(&r.axes)
    );
    for (label, s) in [("advised", &adv.chosen), ("median ", &adv.median)] {
        println!(
            "# {label}: 503 rate {:.4} +- {:.4}, QPS {:.1} +- {:.1} (ensemble spread)",
            s.rate_503, s.sd_rate, s.qps, s.sd_qps
        );
    }
    if adv.flat {
        println!(
            "# FLAT: the advised and the median rule differ by {:.4} in 503 rate, inside the model's spread {:.4}: the model cannot tell them apart",
            adv.gap, adv.spread
        );
    }
    for e in &adv.extrapolation {
        println!("# EXTRAPOLATION: {e}: the simulator has no data there");
    }
    print!("{text}");
    Ok(Exit::Ok)
}
