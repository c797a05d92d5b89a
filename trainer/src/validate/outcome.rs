//! The per-sample results of a validation: what each replayed state measured, and the CSV
//! they are kept in (exact, resumable: a torn last line is dropped).

use super::Sample;
use anyhow::{bail, Result};
use sfr2l_core::{Failure, LoadSetting};
use sfr2l_learn::rl::env::Objective;
use std::path::Path;

/// QPS, failure rate (the study's codes) and the reward under the objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub qps: f64,
    pub failure_rate: f64,
    pub reward: f64,
}

impl Measured {
    pub fn new(qps: f64, failure_rate: f64, objective: Objective) -> Self {
        Self { qps, failure_rate, reward: objective.reward(qps as f32, failure_rate as f32) }
    }
}

/// One replayed state.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub index: usize,
    pub row: usize,
    pub agent_load: LoadSetting,
    pub random_load: LoadSetting,
    pub agent: Measured,
    pub random: Measured,
    pub sim_agent: Measured,
    pub sim_random: Measured,
    /// The decision and run inside Envoy (load-test mode), when asked for.
    pub inline: Option<(LoadSetting, Measured)>,
}

/// The columns for a 503 study; [`csv_header`] names the rates by the study's failure codes.
pub const CSV_HEADER: &str = "index,row,agent_threads,agent_calls,random_threads,random_calls,\
agent_qps,agent_rate_503,agent_reward,random_qps,random_rate_503,random_reward,\
sim_agent_qps,sim_agent_rate_503,sim_agent_reward,sim_random_qps,sim_random_rate_503,sim_random_reward,\
inline_threads,inline_calls,inline_qps,inline_rate_503,inline_reward";

/// The header of a validation of a study counting `failure`: `agent_rate_429_503`, ...
pub fn csv_header(failure: &Failure) -> String {
    CSV_HEADER.replace("rate_503", &failure.column())
}

impl Outcome {
    pub fn to_csv(&self) -> String {
        // `{}` prints the shortest text that reads back to the same f64: a resumed file is exact.
        let m = |m: &Measured| format!("{},{},{}", m.qps, m.failure_rate, m.reward);
        let inline = match &self.inline {
            Some((l, x)) => format!("{},{},{}", l.threads, l.calls, m(x)),
            None => ",,,,".into(),
        };
        format!(
            "{},{},{},{},{},{},{},{},{},{},{}",
            self.index,
            self.row,
            self.agent_load.threads,
            self.agent_load.calls,
            self.random_load.threads,
            self.random_load.calls,
            m(&self.agent),
            m(&self.random),
            m(&self.sim_agent),
            m(&self.sim_random),
            inline
        )
    }

    /// Parses a line written by [`Outcome::to_csv`]; `line` numbers errors.
    pub fn from_csv(path: &Path, line: usize, text: &str) -> Result<Outcome> {
        let f: Vec<&str> = text.split(',').collect();
        let want = CSV_HEADER.split(',').count();
        if f.len() != want {
            bail!("{}: line {line}: {} fields, expected {want}", path.display(), f.len());
        }
        let names: Vec<&str> = CSV_HEADER.split(',').collect();
        let num = |i: usize| -> Result<f64> {
            f[i].parse::<f64>().map_err(|_| {
                anyhow::anyhow!("{}: line {line}, column `{}`: `{}` is not a number", path.display(), names[i], f[i])
            })
        };
        let measured = |i: usize| -> Result<Measured> {
            Ok(Measured { qps: num(i)?, failure_rate: num(i + 1)?, reward: num(i + 2)? })
        };
        let load = |i: usize| -> Result<LoadSetting> {
            Ok(LoadSetting { threads: num(i)? as u32, calls: num(i + 1)? as u32 })
        };
        let inline = if f[18].is_empty() { None } else { Some((load(18)?, measured(20)?)) };
        Ok(Outcome {
            index: num(0)? as usize,
            row: num(1)? as usize,
            agent_load: load(2)?,
            random_load: load(4)?,
            agent: measured(6)?,
            random: measured(9)?,
            sim_agent: measured(12)?,
            sim_random: measured(15)?,
            inline,
        })
    }
}

/// Reads the outcomes of an earlier (interrupted) validation; each must belong to this plan
/// (same index and dataset row), or the file was made with another `--seed`/`--samples`.
pub fn read_outcomes(path: &Path, text: &str, plan: &[Sample], failure: &Failure) -> Result<Vec<Outcome>> {
    let mut lines = text.lines();
    let header = csv_header(failure);
    match lines.next() {
        Some(h) if h == header => {}
        Some(_) => bail!("{}: line 1 is not the header of a validation counting {failure} as failure", path.display()),
        None => return Ok(vec![]),
    }
    let mut out = Vec::new();
    let body: Vec<&str> = lines.collect();
    for (i, l) in body.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let o = match Outcome::from_csv(path, i + 2, l) {
            Ok(o) => o,
            // A last line without its newline was being written when the run was killed.
            Err(_) if i + 1 == body.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(e),
        };
        match plan.get(o.index) {
            Some(s) if s.row == o.row => out.push(o),
            _ => bail!(
                "{}: line {}: sample {} (row {}) is not in this plan: it was made with another --seed or --samples",
                path.display(),
                i + 2,
                o.index,
                o.row
            ),
        }
    }
    Ok(out)
}
