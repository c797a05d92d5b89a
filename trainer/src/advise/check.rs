//! `advise --check`: the advice measured on the study's real lab. The advised rule and the
//! median rule it is compared with run the same load in turns (interleaved, so slow drift of
//! the machine hits both alike); a run the collector's conservation check rejects is run again,
//! at most three times, never dropped.

use anyhow::{bail, Result};
use sfr2l_core::{Failure, LoadSetting, TrafficRule};
use sfr2l_lab::collect::{run_once, PlanEntry};
use sfr2l_lab::Lab;

/// What one rule did over its runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Failure responses (the study's codes) over all responses of the runs.
    pub failure_rate: f64,
    /// Mean QPS of the runs.
    pub qps: f64,
    pub runs: u32,
}

/// Runs each of `rules` `runs` times at `load` on `lab` (requests to `path`), in turns;
/// responses with a code of `failure` fail.
pub fn measure(
    lab: &mut Lab,
    rules: &[TrafficRule],
    (load, runs): (LoadSetting, u32),
    path: &str,
    failure: &Failure,
) -> Result<Vec<Measured>> {
    let mut failed = vec![0u64; rules.len()];
    let mut total = vec![0u64; rules.len()];
    let mut qps = vec![0.0; rules.len()];
    for k in 0..runs {
        for (i, rule) in rules.iter().enumerate() {
            let tag = format!("advise-check-r{i}-{k}");
            let entry = PlanEntry { config_id: tag.clone(), repeat: k, rule: *rule, load };
            let mut tries = 0;
            let out = loop {
                tries += 1;
                match run_once(lab, &entry, &format!("{tag}-t{tries}"), path, 0)? {
                    Ok(out) => break out,
                    Err(why) if tries < 3 => eprintln!("{tag}: run rejected, running it again: {why}"),
                    Err(why) => bail!("{tag}: run rejected three times, the lab is not measuring: {why}"),
                }
            };
            failed[i] += failure.codes().iter().map(|c| out.record.count(*c)).sum::<u64>();
            total[i] += out.record.responses;
            qps[i] += out.record.qps / f64::from(runs);
        }
    }
    Ok((0..rules.len())
        .map(|i| Measured { failure_rate: failed[i] as f64 / total[i].max(1) as f64, qps: qps[i], runs })
        .collect())
}
