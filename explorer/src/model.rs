//! The explorer's model side in plain Rust (no wasm-bindgen here, unit-tested natively): a
//! simulator checked against its card, predictions with extrapolation flags, the reward heat map
//! over the Table 6 grid, agents' decisions and the advisor panel. Answers are JSON strings.

use crate::search::{self, Objective, Scored};
use serde_json::{json, Value};
use sfr2l_core::agent::{AgentKind, Configuration};
use sfr2l_core::card::SimulatorCard;
use sfr2l_core::reward::reward;
use sfr2l_core::Inputs;
use sfr2l_runtime::{Agent, Prediction, Simulator};
use sha2::{Digest, Sha256};

/// A simulator with its card's ranges and its study's action grids; its inputs (how many and
/// which) are the graph's own, so any study's simulator loads in the same page.
pub struct Sim {
    sim: Simulator,
    pub thread_grid: Vec<u32>,
    pub call_grid: Vec<u32>,
    /// Per input, in the simulator's input order.
    pub ranges: Vec<(f64, f64)>,
}

/// The agents' action grids of the simulator's study, as the page passes them (`grids` of the
/// server's listing: `{"thread_grid": [...], "call_grid": [...]}`), or `null` to take them from
/// the card (cards written since studies carry them).
#[derive(serde::Deserialize)]
struct Grids {
    thread_grid: Vec<u32>,
    call_grid: Vec<u32>,
}

fn grids(given: &str, card: &SimulatorCard) -> Result<Grids, String> {
    let g: Option<Grids> = serde_json::from_str(given).map_err(|e| format!("grids: {e}"))?;
    let g = match (g, &card.study) {
        (Some(g), _) => g,
        (None, Some(s)) => Grids { thread_grid: s.thread_grid.clone(), call_grid: s.call_grid.clone() },
        (None, None) => {
            return Err(format!(
                "simulator.json names study {} but no grids: serve it with its study file",
                card.profile
            ))
        }
    };
    for (name, v) in [("thread_grid", &g.thread_grid), ("call_grid", &g.call_grid)] {
        if v.is_empty() || v.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("grids.{name}: {v:?} is not an ascending, non-empty grid"));
        }
    }
    Ok(g)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The card's ranges in the graph's input order; every name must be the graph's.
fn card_ranges(card: &SimulatorCard, inputs: &Inputs) -> Result<Vec<(f64, f64)>, String> {
    let names = inputs.names();
    if card.inputs.len() != names.len() {
        return Err(format!(
            "card field inputs: {} entries, the simulator takes {} ({})",
            card.inputs.len(),
            names.len(),
            names.join(",")
        ));
    }
    card.inputs
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (port, name))| {
            if port.name != name {
                return Err(format!("card field inputs[{i}].name: `{}`, the simulator's is `{name}`", port.name));
            }
            match port.range {
                Some((lo, hi)) if lo <= hi => Ok((lo, hi)),
                _ => Err(format!("card field inputs[{i}].range: missing or reversed")),
            }
        })
        .collect()
}

impl Sim {
    /// Loads `simulator.onnx` and checks it against `simulator.json` (kind, profile, inputs,
    /// the ONNX file's sha256) before anything runs; `grids` as [`Grids`] (JSON, or `null`).
    pub fn load(onnx: &[u8], card_json: &str, grids_json: &str) -> Result<Self, String> {
        let card: SimulatorCard =
            serde_json::from_str(card_json).map_err(|e| format!("simulator.json: not a simulator card: {e}"))?;
        if card.kind != "simulator" {
            return Err(format!("simulator.json field kind: `{}`, expected `simulator`", card.kind));
        }
        let digest = sha256_hex(onnx);
        if card.onnx_sha256 != digest {
            return Err(format!(
                "simulator.json field onnx_sha256: {} but simulator.onnx hashes to {digest} (card and model differ)",
                card.onnx_sha256
            ));
        }
        let sim = Simulator::from_bytes(onnx).map_err(|e| format!("simulator.onnx: {e}"))?;
        let ranges = card_ranges(&card, &sim.inputs)?;
        if sim.profile != card.profile {
            return Err(format!("simulator.json field profile: `{}`, the ONNX says `{}`", card.profile, sim.profile));
        }
        let Grids { thread_grid, call_grid } = grids(grids_json, &card)?;
        Ok(Self { sim, thread_grid, call_grid, ranges })
    }

    fn predict(&self, rows: &[Vec<f32>]) -> Result<Vec<Prediction>, String> {
        self.sim.predict(rows).map_err(|e| format!("simulator: {e}"))
    }

    fn inputs(&self) -> &Inputs {
        &self.sim.inputs
    }

    /// Profile, ensemble, card ranges and the Table 6 grids.
    pub fn info(&self) -> Value {
        let ranges: Vec<Value> = self
            .inputs()
            .features()
            .iter()
            .zip(self.ranges.iter())
            .map(|(f, (lo, hi))| json!({"name": f.name(), "unit": f.unit(), "lo": lo, "hi": hi}))
            .collect();
        json!({
            "profile": self.sim.profile,
            "ensemble": self.sim.ensemble,
            "features": ranges,
            "thread_grid": self.thread_grid,
            "call_grid": self.call_grid,
            "rate": self.sim.failure.column(),
            "rate_label": self.sim.failure.label(),
            "failure_codes": self.sim.failure.codes(),
        })
    }

    /// One prediction for raw values of every input: figures, reward (eq. 3), extrapolated
    /// inputs, and the line `sfr2l sim predict` prints for the same inputs.
    pub fn predict_one(&self, values: &[f64]) -> Result<Value, String> {
        let names = self.inputs().names();
        let v = checked(values, &names)?;
        let row: Vec<f32> = v.iter().map(|x| *x as f32).collect();
        let p = *self.predict(&[row])?.first().ok_or("simulator: no prediction")?;
        let r = reward(f64::from(p.qps), f64::from(p.failure_rate));
        let cli = format!(
            "{{\"profile\":\"{}\",\"qps\":{:.3},\"{}\":{:.4},\"uncertainty\":[{:.3},{:.4}],\"reward\":{:.3}}}",
            self.sim.profile,
            p.qps,
            self.sim.failure.column(),
            p.failure_rate,
            p.uncertainty[0],
            p.uncertainty[1],
            r
        );
        Ok(json!({
            "qps": p.qps, "rate": p.failure_rate, "uncertainty": p.uncertainty, "reward": r,
            "extrapolation": search::extrapolation(&names, v, &self.ranges), "cli": cli,
        }))
    }

    /// Reward, failure rate and spread over the Table 6 threads x calls grid at the study's rule
    /// values; the exhaustive optimum is the cell with the highest reward (eq. 3, the agents'
    /// objective).
    pub fn heatmap(&self, rules: &[f64]) -> Result<Value, String> {
        let names = self.inputs().names();
        let rules = checked(rules, &names[..self.inputs().n_rules()])?;
        let (threads, calls) = (self.thread_grid.clone(), self.call_grid.clone());
        let mut rows = Vec::new();
        for t in &threads {
            for c in &calls {
                rows.push(search::feature_row(rules, f64::from(*t), f64::from(*c)));
            }
        }
        let preds = self.predict(&rows)?;
        let cells: Vec<Value> = preds
            .iter()
            .map(|p| {
                json!([reward(f64::from(p.qps), f64::from(p.failure_rate)), p.failure_rate, p.uncertainty[1], p.qps])
            })
            .collect();
        let best = preds
            .iter()
            .enumerate()
            .map(|(i, p)| (i, reward(f64::from(p.qps), f64::from(p.failure_rate))))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .ok_or("empty grid")?;
        Ok(json!({
            "threads": threads, "calls": calls, "cells": cells,
            "optimum": {"threads": threads[best.0 / calls.len()], "calls": calls[best.0 % calls.len()], "reward": best.1},
        }))
    }

    /// The advisor panel: the same search as `sfr2l advise` (shared source) at one load.
    pub fn advise(&self, threads: f64, calls: f64, objective: &str, levels: usize) -> Result<Value, String> {
        let objective: Objective = objective.parse()?;
        for (name, v) in [("threads", threads), ("calls", calls)] {
            if !v.is_finite() || v < 1.0 {
                return Err(format!("{name}: `{v}` is not a positive number"));
            }
        }
        let grid = search::rule_grid(&search::rule_axes(&self.ranges[..self.inputs().n_rules()], levels));
        let rows: Vec<Vec<f32>> = grid.iter().map(|r| search::feature_row(r, threads, calls)).collect();
        let preds = self.predict(&rows)?;
        let scored: Vec<Scored> = grid.iter().zip(&preds).map(|(r, p)| scored(r, p)).collect();
        let mut point = grid[0].clone();
        point.extend([threads, calls]);
        let extra: Vec<String> = search::extrapolation(&self.inputs().names(), &point, &self.ranges)
            .into_iter()
            .filter(|s| s.starts_with("threads") || s.starts_with("calls"))
            .collect();
        let a = search::choose(&scored, objective, extra)?;
        let side = |s: &Scored| json!({"rules": s.rules, "qps": s.qps, "rate": s.failure_rate, "sd_rate": s.sd_rate});
        Ok(json!({
            "objective": a.objective.name(), "candidates": a.candidates, "chosen": side(&a.chosen),
            "median": side(&a.median), "gap": a.gap, "spread": a.spread, "flat": a.flat,
            "extrapolation": a.extrapolation,
        }))
    }
}

fn scored(rules: &[f64], p: &Prediction) -> Scored {
    Scored {
        rules: rules.to_vec(),
        qps: f64::from(p.qps),
        failure_rate: f64::from(p.failure_rate),
        sd_qps: f64::from(p.uncertainty[0]),
        sd_rate: f64::from(p.uncertainty[1]),
    }
}

/// One finite number per name, or an error naming the first bad one.
fn checked<'a>(values: &'a [f64], names: &[&str]) -> Result<&'a [f64], String> {
    if values.len() != names.len() {
        return Err(format!("{} values given, {} needed ({})", values.len(), names.len(), names.join(",")));
    }
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(format!("value {} ({}) `{v}` is not a number", i + 1, names[i]));
    }
    Ok(values)
}

/// The agents of one configuration, checked against their study and configuration (each
/// agent's action grid is its own ONNX metadata).
pub struct Agents {
    configuration: Configuration,
    profile: String,
    agents: Vec<(AgentKind, Agent)>,
}

impl Agents {
    pub fn new(profile: &str, configuration: &str) -> Result<Self, String> {
        if !sfr2l_core::study::is_name(profile) {
            return Err(format!("study {profile:?} is not a study name"));
        }
        Ok(Self { configuration: configuration.parse()?, profile: profile.to_string(), agents: Vec::new() })
    }

    /// Adds the `kind` agent (`thread` / `call`) from its ONNX and card.
    pub fn add(&mut self, kind: &str, onnx: &[u8], card_json: &str) -> Result<(), String> {
        let kind = match kind {
            "thread" => AgentKind::Threads,
            "call" => AgentKind::Calls,
            other => return Err(format!("agent kind `{other}`: expected thread or call")),
        };
        let card: Value = serde_json::from_str(card_json).map_err(|e| format!("{}.json: {e}", kind.name()))?;
        let digest = sha256_hex(onnx);
        if card.get("onnx_sha256").and_then(Value::as_str) != Some(digest.as_str()) {
            return Err(format!("{}.json field onnx_sha256 differs from the ONNX file's {digest}", kind.name()));
        }
        let agent = Agent::from_bytes(onnx).map_err(|e| format!("{}.onnx: {e}", kind.name()))?;
        agent
            .check_for(&self.profile, self.configuration, kind, None)
            .map_err(|e| format!("{}.onnx: {e}", kind.name()))?;
        if let Some((k, other)) = self.agents.first().filter(|(_, o)| o.inputs != agent.inputs) {
            return Err(format!(
                "{}.onnx: state fields `{}` differ from the {} agent's `{}`",
                kind.name(),
                agent.inputs.names().join(","),
                k.name(),
                other.inputs.names().join(",")
            ));
        }
        self.agents.push((kind, agent));
        Ok(())
    }

    /// The configuration's decision for values of the agents' rule inputs (their study's, from
    /// their graphs); loads no agent chooses come from `threads`/`calls`.
    pub fn decide(&self, rules: &[f64], threads: u32, calls: u32) -> Result<Value, String> {
        let inputs = self.agents.first().map(|(_, a)| a.inputs.clone()).ok_or("no agent loaded")?;
        let names: Vec<&str> = inputs.rules().iter().map(|f| f.name()).collect();
        let r = checked(rules, &names)?;
        let rule = inputs.rule(r, &inputs.unset_rule());
        let fixed = sfr2l_core::LoadSetting { threads, calls };
        let d = sfr2l_core::loadtest::decide(self.configuration, &inputs, &rule, fixed, |kind, state| {
            let (_, agent) = self
                .agents
                .iter()
                .find(|(k, _)| *k == kind)
                .ok_or_else(|| format!("{} agent not loaded", kind.name()))?;
            agent.decide(state).map_err(|e| e.to_string())
        })?;
        Ok(json!({"configuration": self.configuration.slug(), "threads": d.load.threads, "calls": d.load.calls}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S1's grids (studies/s1.yaml), as the explorer's server lists them.
    const GRIDS: &str = r#"{"thread_grid": [1, 2, 3, 4, 5], "call_grid": [435, 436, 437, 438, 439, 440, 441, 442, 443, 444, 445, 446, 447, 448, 449, 450]}"#;

    fn s1() -> (Vec<u8>, String) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/s1");
        (
            std::fs::read(dir.join("simulator.onnx")).unwrap(),
            std::fs::read_to_string(dir.join("simulator.json")).unwrap(),
        )
    }

    #[test]
    fn card_mismatch_and_bad_values_are_named() {
        let (onnx, card) = s1();
        let other = card.replace("\"profile\": \"s1\"", "\"profile\": \"s2\"");
        let e = Sim::load(&onnx, &other, GRIDS).err().unwrap();
        assert!(e.contains("field profile"), "{e}");
        let e = Sim::load(&onnx[..1000], &card, GRIDS).err().unwrap();
        assert!(e.contains("onnx_sha256"), "{e}");
        assert!(Sim::load(&onnx, "{}", GRIDS).err().unwrap().contains("not a simulator card"));
        let e = Sim::load(&onnx, &card, "null").err().unwrap();
        assert!(e.contains("names study s1 but no grids"), "{e}");
        let e = Sim::load(&onnx, &card, r#"{"thread_grid": [2, 1], "call_grid": [1]}"#).err().unwrap();
        assert!(e.contains("grids.thread_grid: [2, 1]"), "{e}");
        let sim = Sim::load(&onnx, &card, GRIDS).unwrap();
        let e = sim.predict_one(&[1.0, 1.0, 1.0, 180.0, 100.0, 1.0, f64::NAN, 3.0, 440.0]).err().unwrap();
        assert!(e.contains("consecutive_5xx_errors"), "{e}");
        let p = sim.predict_one(&[1.0, 1.0, 1.0, 180.0, 100.0, 1.0, 1.0, 3.0, 900.0]).unwrap();
        assert_eq!(p["extrapolation"][0], "calls = 900 (range 400..450)");
        let h = sim.heatmap(&[1.0, 1.0, 1.0, 180.0, 100.0, 1.0, 1.0]).unwrap();
        assert_eq!(h["cells"].as_array().unwrap().len(), 5 * 16);
    }
}
