//! The statistics of a validation: the paired ratio, its bootstrap interval, and the
//! simulator's error on the lab runs.

use super::{Measured, Outcome};
use sfr2l_core::rng::SplitMix64;

/// sum(a) / sum(b) over pairs.
pub fn paired_ratio(pairs: &[(f64, f64)]) -> f64 {
    let (a, b) = pairs.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    a / b
}

/// Percentile interval (`level`, e.g. 0.9) of [`paired_ratio`] under a paired bootstrap over the
/// samples (`reps` resamples, seeded).
pub fn bootstrap_interval(pairs: &[(f64, f64)], level: f64, reps: usize, seed: u64) -> (f64, f64) {
    if pairs.len() < 2 {
        let r = paired_ratio(pairs);
        return (r, r);
    }
    let mut rng = SplitMix64::new(seed);
    let mut rs: Vec<f64> = (0..reps)
        .map(|_| {
            let (mut a, mut b) = (0.0, 0.0);
            for _ in 0..pairs.len() {
                let (x, y) = pairs[rng.below(pairs.len())];
                a += x;
                b += y;
            }
            a / b
        })
        .filter(|r| r.is_finite())
        .collect();
    rs.sort_by(f64::total_cmp);
    if rs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let at = |q: f64| rs[((q * (rs.len() - 1) as f64).round() as usize).min(rs.len() - 1)];
    let tail = (1.0 - level) / 2.0;
    (at(tail), at(1.0 - tail))
}

/// A ratio with its interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ratio {
    pub ratio: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Ratio {
    pub fn of(pairs: &[(f64, f64)], seed: u64) -> Ratio {
        let (lo, hi) = bootstrap_interval(pairs, LEVEL, 2000, seed);
        Ratio { ratio: paired_ratio(pairs), lo, hi }
    }
    pub fn overlaps(&self, o: &Ratio) -> bool {
        self.lo <= o.hi && o.lo <= self.hi
    }
}

/// The interval level reported.
pub const LEVEL: f64 = 0.9;

/// The simulator's error on the validation runs, standardised like Table 4's MSE (by the
/// dataset's sd of each output), mean over QPS and 503 rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SimError {
    pub mse_qps: f64,
    pub mse_503: f64,
    pub mse: f64,
    /// Runs compared (agent and random runs).
    pub runs: usize,
}

pub fn sim_error(outcomes: &[Outcome], sd: [f64; 2]) -> SimError {
    let pairs: Vec<(&Measured, &Measured)> =
        outcomes.iter().flat_map(|o| [(&o.agent, &o.sim_agent), (&o.random, &o.sim_random)]).collect();
    let n = pairs.len().max(1) as f64;
    let mse_qps = pairs.iter().map(|(m, p)| ((m.qps - p.qps) / sd[0]).powi(2)).sum::<f64>() / n;
    let mse_503 = pairs.iter().map(|(m, p)| ((m.failure_rate - p.failure_rate) / sd[1]).powi(2)).sum::<f64>() / n;
    SimError { mse_qps, mse_503, mse: (mse_qps + mse_503) / 2.0, runs: pairs.len() }
}
