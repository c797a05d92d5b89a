//! The advisor's search, pure: the stated grid over a study's rule-input ranges (the paper's
//! seven for S1-S5; a study that lists fewer fields searches fewer), the choice of
//! the best (lowest failure rate) or worst (highest failure rate) rule at one load, the median rule it is
//! compared with, and the two warnings (extrapolation, flat landscape). Only `sfr2l-core` and std:
//! the explorer's wasm module compiles this very file (`#[path]`) for its advisor panel.

use sfr2l_core::Feature;

/// Values per rule axis when a range has more integers than this (ends always included).
pub const DEFAULT_LEVELS: usize = 7;

/// What the advisor looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// The rule with the lowest predicted failure rate at the load (ties: higher QPS).
    Best,
    /// The rule with the highest predicted failure rate at the load (ties: higher QPS).
    Worst,
}

impl std::str::FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "best" => Ok(Objective::Best),
            "worst" => Ok(Objective::Worst),
            _ => Err(format!("objective `{s}`: expected `best` or `worst`")),
        }
    }
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::Best => "best",
            Objective::Worst => "worst",
        }
    }
}

/// One axis of the grid: every integer of `lo..=hi` when there are at most `levels` of them,
/// else `levels` evenly spaced values rounded to integers (both ends included, no repeats).
pub fn axis(lo: f64, hi: f64, levels: usize) -> Vec<f64> {
    if hi <= lo {
        return vec![lo];
    }
    let count = (hi - lo).floor() as usize + 1;
    if count <= levels.max(2) {
        return (0..count).map(|i| lo + i as f64).collect();
    }
    let n = levels.max(2);
    let mut out: Vec<f64> = (0..n).map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64).round()).collect();
    out.dedup();
    out
}

/// The axes of the rule inputs in input order (ranges from the study, or the card's).
pub fn rule_axes(ranges: &[(f64, f64)], levels: usize) -> Vec<Vec<f64>> {
    ranges.iter().map(|(lo, hi)| axis(*lo, *hi, levels)).collect()
}

/// Every combination of the axes (the cartesian product), first axis slowest.
pub fn rule_grid(axes: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = vec![vec![0.0; axes.len()]];
    for (i, values) in axes.iter().enumerate() {
        let mut next = Vec::with_capacity(out.len() * values.len().max(1));
        for row in &out {
            for v in values {
                let mut r = row.clone();
                r[i] = *v;
                next.push(r);
            }
        }
        out = next;
    }
    out
}

/// The simulator's inputs for rule values at a load: the rules, then threads and calls.
pub fn feature_row(rules: &[f64], threads: f64, calls: f64) -> Vec<f32> {
    rules.iter().map(|v| *v as f32).chain([threads as f32, calls as f32]).collect()
}

/// One rule with its prediction at the load.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Rule values in input order.
    pub rules: Vec<f64>,
    pub qps: f64,
    pub failure_rate: f64,
    /// Ensemble spread (standard deviation) of QPS and of the failure rate.
    pub sd_qps: f64,
    pub sd_rate: f64,
}

/// The advisor's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub objective: Objective,
    pub chosen: Scored,
    /// The rule at the median predicted failure rate (lower median on even counts).
    pub median: Scored,
    pub candidates: usize,
    /// |chosen - median| failure rate, and the combined spread sqrt(sd_chosen^2 + sd_median^2).
    pub gap: f64,
    pub spread: f64,
    /// The gap is inside the spread: the model cannot tell the chosen rule from the median one.
    pub flat: bool,
    /// Inputs outside the ranges the model was trained on, as `name = value (range lo..hi)`.
    pub extrapolation: Vec<String>,
}

fn order(a: &Scored, b: &Scored) -> std::cmp::Ordering {
    a.failure_rate.total_cmp(&b.failure_rate).then(b.qps.total_cmp(&a.qps))
}

/// Picks the chosen and the median rule among `scored` (all at one load).
pub fn choose(scored: &[Scored], objective: Objective, extrapolation: Vec<String>) -> Result<Advice, String> {
    if let Some(s) = scored.iter().find(|s| !s.failure_rate.is_finite() || !s.qps.is_finite()) {
        return Err(format!("the simulator predicted a non-number for rules {:?}", s.rules));
    }
    let mut sorted: Vec<Scored> = scored.to_vec();
    sorted.sort_by(order);
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return Err("no candidate rules (empty grid)".into());
    };
    let chosen = match objective {
        Objective::Best => first.clone(),
        Objective::Worst => {
            // Highest rate; among equal rates the higher QPS (the order puts it first).
            let top = last.failure_rate;
            sorted.iter().find(|s| s.failure_rate == top).unwrap_or(last).clone()
        }
    };
    let median = sorted[(sorted.len() - 1) / 2].clone();
    let gap = (chosen.failure_rate - median.failure_rate).abs();
    let spread = (chosen.sd_rate.powi(2) + median.sd_rate.powi(2)).sqrt();
    Ok(Advice { objective, chosen, median, candidates: sorted.len(), gap, spread, flat: gap <= spread, extrapolation })
}

/// Names the inputs outside `ranges` (every input by its name, card or study ranges).
pub fn extrapolation(names: &[&str], values: &[f64], ranges: &[(f64, f64)]) -> Vec<String> {
    names
        .iter()
        .zip(values.iter().zip(ranges.iter()))
        .filter(|(_, (v, (lo, hi)))| **v < *lo || **v > *hi)
        .map(|(f, (v, (lo, hi)))| format!("{f} = {v} (range {lo}..{hi})"))
        .collect()
}

/// Whether `f` is a load feature (threads or calls).
pub fn is_load(f: Feature) -> bool {
    matches!(f, Feature::Threads | Feature::Calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S1's seven rule ranges (studies/s1.yaml).
    const S1_RULES: [(f64, f64); 7] =
        [(1.0, 7.0), (1.0, 7.0), (1.0, 7.0), (180.0, 180.0), (100.0, 100.0), (1.0, 1.0), (1.0, 1.0)];

    fn s(rate: f64, qps: f64, sd: f64) -> Scored {
        Scored { rules: vec![rate; 7], qps, failure_rate: rate, sd_qps: 0.0, sd_rate: sd }
    }

    #[test]
    fn axes_cover_every_integer_or_levels_with_ends() {
        assert_eq!(axis(1.0, 7.0, 7), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(axis(180.0, 180.0, 7), vec![180.0]);
        assert_eq!(axis(15.0, 30.0, 4), vec![15.0, 20.0, 25.0, 30.0]);
        assert_eq!(axis(1.0, 3.0, 2), vec![1.0, 3.0]);
        let a = axis(10.0, 20.0, 7);
        assert_eq!((a.len(), a[0], a[6]), (7, 10.0, 20.0));
    }

    #[test]
    fn grid_of_s1_is_343_rules_inside_its_ranges() {
        let grid = rule_grid(&rule_axes(&S1_RULES, DEFAULT_LEVELS));
        assert_eq!(grid.len(), 343);
        for (i, (lo, hi)) in S1_RULES.iter().enumerate() {
            assert!(grid.iter().all(|r| *lo <= r[i] && r[i] <= *hi), "rule {i}");
        }
        let row = feature_row(&grid[0], 3.0, 440.0);
        assert_eq!((row[0], row[3], row[7], row[8]), (1.0, 180.0, 3.0, 440.0));
        // A study with two rule inputs: a two-axis grid and four-input rows.
        let two = rule_grid(&rule_axes(&[(1.0, 3.0), (5.0, 5.0)], DEFAULT_LEVELS));
        assert_eq!(two, vec![vec![1.0, 5.0], vec![2.0, 5.0], vec![3.0, 5.0]]);
        assert_eq!(feature_row(&two[2], 4.0, 100.0), vec![3.0, 5.0, 4.0, 100.0]);
    }

    #[test]
    fn best_worst_median_and_flatness() {
        let scored = [s(0.3, 100.0, 0.01), s(0.1, 90.0, 0.01), s(0.5, 80.0, 0.01), s(0.1, 95.0, 0.01)];
        let best = choose(&scored, Objective::Best, vec![]).unwrap();
        assert_eq!((best.chosen.failure_rate, best.chosen.qps), (0.1, 95.0));
        assert_eq!(best.median.failure_rate, 0.1);
        assert!(best.flat, "best equals the median: flat");
        let worst = choose(&scored, Objective::Worst, vec![]).unwrap();
        assert_eq!(worst.chosen.failure_rate, 0.5);
        assert!(!worst.flat);
        assert!((worst.gap - 0.4).abs() < 1e-12);
        assert!(choose(&[], Objective::Best, vec![]).is_err());
        assert!(choose(&[s(f64::NAN, 1.0, 0.0)], Objective::Best, vec![]).is_err());
    }

    #[test]
    fn extrapolation_names_the_feature() {
        let mut ranges = S1_RULES.to_vec();
        ranges.extend([(1.0, 5.0), (400.0, 450.0)]);
        let names = sfr2l_core::Inputs::catalogue().names();
        let mut v = [1.0, 1.0, 1.0, 180.0, 100.0, 1.0, 1.0, 3.0, 440.0];
        assert!(extrapolation(&names, &v, &ranges).is_empty());
        v[8] = 900.0;
        assert_eq!(extrapolation(&names, &v, &ranges), vec!["calls = 900 (range 400..450)".to_string()]);
        assert!("Worst".parse::<Objective>().is_ok() && "x".parse::<Objective>().is_err());
    }
}
