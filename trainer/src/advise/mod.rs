//! `sfr2l advise`: the DestinationRule the simulator says is best (lowest 503 rate) or worst
//! (highest) at one load, searched exhaustively over the stated grid of [`search`], with the
//! ensemble spread as uncertainty; written through the typed renderer and parsed back.

pub mod check;
pub mod search;

use anyhow::{bail, Context, Result};
use search::{Advice, Objective, Scored};
use sfr2l_core::card::SimulatorCard;
use sfr2l_core::{TrafficRule, N_FEATURES, N_RULES};
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
    pub axes: [Vec<f64>; N_RULES],
    pub rule: TrafficRule,
    pub median_rule: TrafficRule,
}

/// The card's nine input ranges (the ranges the simulator was trained on).
fn card_ranges(dir: &Path) -> Result<(String, [(f64, f64); N_FEATURES])> {
    let path = dir.join("simulator.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let card: SimulatorCard =
        serde_json::from_str(&text).with_context(|| format!("{}: not a simulator card", path.display()))?;
    let profile = card.profile.clone();
    if !sfr2l_core::study::is_name(&profile) {
        bail!("{}: field profile: {profile:?} is not a study name", path.display());
    }
    if card.inputs.len() != N_FEATURES {
        bail!("{}: field inputs: {} entries, {N_FEATURES} expected", path.display(), card.inputs.len());
    }
    let mut ranges = [(0.0, 0.0); N_FEATURES];
    for (i, (port, f)) in card.inputs.iter().zip(sfr2l_core::FEATURES.iter()).enumerate() {
        if port.name != f.name() {
            bail!("{}: field inputs[{i}].name: `{}`, expected `{}`", path.display(), port.name, f.name());
        }
        ranges[i] = port.range.with_context(|| format!("{}: field inputs[{i}].range: missing", path.display()))?;
    }
    Ok((profile, ranges))
}

/// Runs the search on the simulator in `dir` (simulator.onnx + simulator.json).
pub fn advise(dir: &Path, ask: &Ask) -> Result<Advised> {
    if ask.threads == 0 || ask.calls == 0 {
        bail!("--threads and --calls must be >= 1");
    }
    let (id, ranges) = card_ranges(dir)?;
    let onnx = dir.join("simulator.onnx");
    let sim = sfr2l_runtime::Simulator::from_path(&onnx).with_context(|| format!("loading {}", onnx.display()))?;
    if sim.profile != id {
        bail!("{}: profile {} but simulator.json says {id}", onnx.display(), sim.profile);
    }
    let profile = id;
    let rule_ranges: [(f64, f64); N_RULES] = std::array::from_fn(|i| ranges[i]);
    let axes = search::rule_axes(&rule_ranges, ask.levels);
    let grid = search::rule_grid(&axes);
    let (t, c) = (f64::from(ask.threads), f64::from(ask.calls));
    let mut scored = Vec::with_capacity(grid.len());
    for chunk in grid.chunks(BATCH) {
        let rows: Vec<[f32; N_FEATURES]> = chunk.iter().map(|r| search::feature_row(r, t, c)).collect();
        for (r, p) in chunk.iter().zip(sim.predict(&rows)?) {
            scored.push(Scored {
                rules: *r,
                qps: f64::from(p.qps),
                rate_503: f64::from(p.rate_503),
                sd_qps: f64::from(p.uncertainty[0]),
                sd_rate: f64::from(p.uncertainty[1]),
            });
        }
    }
    let mut point = [0.0; N_FEATURES];
    point[7] = t;
    point[8] = c;
    point[..N_RULES].copy_from_slice(&grid[0]);
    let extra: Vec<String> = search::extrapolation(&point, &ranges)
        .into_iter()
        .filter(|s| s.starts_with("threads") || s.starts_with("calls"))
        .collect();
    let advice = search::choose(&scored, ask.objective, extra).map_err(anyhow::Error::msg)?;
    let rule = TrafficRule::from_values(&advice.chosen.rules);
    let median_rule = TrafficRule::from_values(&advice.median.rules);
    Ok(Advised { profile, advice, axes, rule, median_rule })
}

/// The rule as DestinationRule YAML, parsed back and validated (typed) before it is returned.
pub fn yaml(rule: &TrafficRule, name: &str, host: &str) -> Result<String> {
    let text = destination_rule::render(rule, name, host);
    let back = destination_rule::parse(&text, name)?;
    back.validate().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    if back != *rule {
        bail!("{name}: the rendered DestinationRule reads back as {back:?}, not {rule:?}");
    }
    Ok(text)
}

/// The stated grid, e.g. `max_pending_requests {1..7 step 1} x ...` (fixed rules as one value).
pub fn describe_grid(axes: &[Vec<f64>; N_RULES]) -> String {
    sfr2l_core::RULE_FEATURES
        .iter()
        .zip(axes.iter())
        .map(|(f, a)| format!("{} {:?}", f.name(), a.iter().map(|v| *v as i64).collect::<Vec<_>>()))
        .collect::<Vec<_>>()
        .join(" x ")
}
