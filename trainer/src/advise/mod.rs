//! `sfr2l advise`: the DestinationRule the simulator says is best (lowest 503 rate) or worst
//! (highest) at one load, searched exhaustively over the stated grid of [`search`], with the
//! ensemble spread as uncertainty; written through the typed renderer and parsed back.

pub mod check;
pub mod search;

use anyhow::{bail, Context, Result};
use search::{Advice, Objective, Scored};
use sfr2l_core::card::SimulatorCard;
use sfr2l_core::{Inputs, TrafficRule};
use sfr2l_lab::destination_rule;
use std::path::Path;

/// Rows per simulator call (bounded memory on the larger grids).
const BATCH: usize = 4096;

/// The question.
#[derive(Debug, Clone)]
pub struct Ask {
    pub threads: u32,
    pub calls: u32,
    pub objective: Objective,
    pub levels: usize,
}

/// The answer with what it rests on.
#[derive(Debug, Clone)]
pub struct Advised {
    /// The study the simulator was fitted for (its card's `profile`).
    pub profile: String,
    pub advice: Advice,
    /// The simulator's inputs (its study's); `axes` has one per rule input.
    pub inputs: Inputs,
    pub axes: Vec<Vec<f64>>,
    /// The codes the simulator's rate counts as failure.
    pub failure: sfr2l_core::Failure,
    pub rule: TrafficRule,
    pub median_rule: TrafficRule,
}

/// What a simulator card says the simulator takes: its study's name, inputs and their ranges
/// (the ranges it was trained on), in input order.
struct CardInputs {
    profile: String,
    inputs: Inputs,
    ranges: Vec<(f64, f64)>,
}

fn card_ranges(dir: &Path) -> Result<CardInputs> {
    let path = dir.join("simulator.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let card: SimulatorCard =
        serde_json::from_str(&text).with_context(|| format!("{}: not a simulator card", path.display()))?;
    let profile = card.profile.clone();
    if !sfr2l_core::study::is_name(&profile) {
        bail!("{}: field profile: {profile:?} is not a study name", path.display());
    }
    let names: Vec<&str> = card.inputs.iter().map(|p| p.name.as_str()).collect();
    let inputs =
        Inputs::from_names(&names, true).map_err(|e| anyhow::anyhow!("{}: field inputs: {e}", path.display()))?;
    let ranges = card
        .inputs
        .iter()
        .enumerate()
        .map(|(i, port)| port.range.with_context(|| format!("{}: field inputs[{i}].range: missing", path.display())))
        .collect::<Result<Vec<_>>>()?;
    Ok(CardInputs { profile, inputs, ranges })
}

/// Runs the search on the simulator in `dir` (simulator.onnx + simulator.json).
pub fn advise(dir: &Path, ask: &Ask) -> Result<Advised> {
    if ask.threads == 0 || ask.calls == 0 {
        bail!("--threads and --calls must be >= 1");
    }
    let CardInputs { profile: id, inputs, ranges } = card_ranges(dir)?;
    let onnx = dir.join("simulator.onnx");
    let sim = sfr2l_runtime::Simulator::from_path(&onnx).with_context(|| format!("loading {}", onnx.display()))?;
    if sim.profile != id {
        bail!("{}: profile {} but simulator.json says {id}", onnx.display(), sim.profile);
    }
    if sim.inputs != inputs {
        bail!(
            "{}: inputs `{}` but simulator.json lists `{}`",
            onnx.display(),
            sim.inputs.names().join(","),
            inputs.names().join(",")
        );
    }
    let profile = id;
    let axes = search::rule_axes(&ranges[..inputs.n_rules()], ask.levels);
    let grid = search::rule_grid(&axes);
    let (t, c) = (f64::from(ask.threads), f64::from(ask.calls));
    let mut scored = Vec::with_capacity(grid.len());
    for chunk in grid.chunks(BATCH) {
        let rows: Vec<Vec<f32>> = chunk.iter().map(|r| search::feature_row(r, t, c)).collect();
        for (r, p) in chunk.iter().zip(sim.predict(&rows)?) {
            scored.push(Scored {
                rules: r.clone(),
                qps: f64::from(p.qps),
                failure_rate: f64::from(p.failure_rate),
                sd_qps: f64::from(p.uncertainty[0]),
                sd_rate: f64::from(p.uncertainty[1]),
            });
        }
    }
    let mut point = grid[0].clone();
    point.extend([t, c]);
    let extra: Vec<String> = search::extrapolation(&inputs.names(), &point, &ranges)
        .into_iter()
        .filter(|s| s.starts_with("threads") || s.starts_with("calls"))
        .collect();
    let advice = search::choose(&scored, ask.objective, extra).map_err(anyhow::Error::msg)?;
    // The fields the study leaves out stay unset, as in the DestinationRules it measured.
    let base = inputs.unset_rule();
    let rule = inputs.rule(&advice.chosen.rules, &base);
    let median_rule = inputs.rule(&advice.median.rules, &base);
    Ok(Advised { profile, advice, inputs, axes, failure: sim.failure.clone(), rule, median_rule })
}

/// The rule as DestinationRule YAML setting the fields of `inputs` (the study's; the others
/// stay unset), parsed back and validated (typed) before it is returned.
pub fn yaml(rule: &TrafficRule, name: &str, host: &str, inputs: &Inputs) -> Result<String> {
    let text = destination_rule::render_fields(rule, name, host, inputs);
    let back = destination_rule::parse(&text, name)?;
    back.validate().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    if back != *rule {
        bail!("{name}: the rendered DestinationRule reads back as {back:?}, not {rule:?}");
    }
    Ok(text)
}

/// The stated grid, e.g. `max_pending_requests {1..7 step 1} x ...` (fixed rules as one value).
pub fn describe_grid(inputs: &Inputs, axes: &[Vec<f64>]) -> String {
    inputs
        .rules()
        .iter()
        .zip(axes.iter())
        .map(|(f, a)| format!("{} {:?}", f.name(), a.iter().map(|v| *v as i64).collect::<Vec<_>>()))
        .collect::<Vec<_>>()
        .join(" x ")
}
