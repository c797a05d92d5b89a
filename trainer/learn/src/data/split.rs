//! Seeded, group-aware splits and standardisation fitted on training rows only.
//!
//! Splits are by configuration (`config_id`): the repeats of one configuration land on the same
//! side, so the test set never holds a configuration the model has already seen. A row-wise split
//! would let repeats leak across and report an error below the noise floor.

use super::load::{DataError, Dataset};
use sfr2l_core::rng::SplitMix64;
use std::collections::BTreeMap;

/// Row indices of the three parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
}

/// `test_fraction` of the configurations go to test; `valid_fraction` of the remaining ones to
/// the validation slice used for early stopping. Fractions are of configurations, which are
/// nearly all single rows, so they are close to row fractions too.
pub fn split(ds: &Dataset, seed: u64, test_fraction: f64, valid_fraction: f64) -> Result<Split, DataError> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in ds.group.iter().enumerate() {
        groups.entry(g.as_str()).or_default().push(i);
    }
    let mut keys: Vec<&str> = groups.keys().copied().collect();
    const NEED: usize = 10;
    if keys.len() < NEED {
        return Err(DataError::TooFew { path: ds.path.clone(), rows: ds.len(), groups: keys.len(), need: NEED });
    }
    SplitMix64::new(seed).shuffle(&mut keys);
    let n_test = ((keys.len() as f64 * test_fraction).round() as usize).clamp(1, keys.len() - 2);
    let rest = keys.len() - n_test;
    let n_valid = ((rest as f64 * valid_fraction).round() as usize).clamp(1, rest - 1);
    let take = |ks: &[&str]| -> Vec<usize> {
        let mut v: Vec<usize> = ks.iter().flat_map(|k| groups[k].iter().copied()).collect();
        v.sort_unstable();
        v
    };
    Ok(Split {
        test: take(&keys[..n_test]),
        valid: take(&keys[n_test..n_test + n_valid]),
        train: take(&keys[n_test + n_valid..]),
    })
}

/// Per-column mean and standard deviation; a constant column gets scale 1 so it maps to 0.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fitted on `rows` (population standard deviation). A column whose spread is negligible
    /// against its magnitude is constant (a setting the profile fixes): it gets mean = its
    /// value exactly and scale 1, so it maps to exactly 0 in f64 and in the f32 graph alike.
    /// The width is the rows' (all rows have the first one's).
    pub fn fit<R: AsRef<[f64]>>(rows: &[R]) -> Self {
        let n = rows.len().max(1) as f64;
        let width = rows.first().map_or(0, |r| r.as_ref().len());
        let col = |k: usize| rows.iter().map(move |r| r.as_ref()[k]);
        let mut mean = vec![0.0; width];
        let mut std = vec![1.0; width];
        for k in 0..width {
            let first = col(k).next().unwrap_or(0.0);
            if col(k).all(|v| v == first) {
                mean[k] = first;
                continue;
            }
            let m = col(k).sum::<f64>() / n;
            let v = col(k).map(|x| (x - m) * (x - m)).sum::<f64>() / n;
            mean[k] = m;
            std[k] = if v.sqrt() > 1e-9 * m.abs().max(1.0) { v.sqrt() } else { 1.0 };
        }
        Self { mean, std }
    }
    /// `(x - mean) / std` in f32, exactly as the exported graphs compute it.
    pub fn apply_f32<const N: usize>(&self, r: &[f32; N]) -> [f32; N] {
        std::array::from_fn(|i| (r[i] - self.mean[i] as f32) / self.std[i] as f32)
    }
    /// [`Standardizer::apply_f32`] for a row of any width.
    pub fn apply_row_f32(&self, r: &[f32]) -> Vec<f32> {
        r.iter().enumerate().map(|(i, v)| (v - self.mean[i] as f32) / self.std[i] as f32).collect()
    }
    /// [`Standardizer::apply`] for a row of any width.
    pub fn apply_row(&self, r: &[f64]) -> Vec<f64> {
        r.iter().enumerate().map(|(i, v)| (v - self.mean[i]) / self.std[i]).collect()
    }
    pub fn apply<const N: usize>(&self, r: &[f64; N]) -> [f64; N] {
        std::array::from_fn(|i| (r[i] - self.mean[i]) / self.std[i])
    }
    pub fn invert<const N: usize>(&self, r: &[f64; N]) -> [f64; N] {
        std::array::from_fn(|i| r[i] * self.std[i] + self.mean[i])
    }
}

/// The within-configuration share of variance of each target, with a bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseFloor {
    /// Per target: pooled variance of repeated configurations over the variance of all rows.
    /// An MSE on standardised targets cannot, in expectation, go below it: that part of the
    /// target is noise no input explains.
    pub share: [f64; 2],
    /// 90% bootstrap interval per target (repeat configurations resampled with replacement).
    pub ci90: [[f64; 2]; 2],
    /// 90% bootstrap interval of the mean over both targets.
    pub mean_ci90: [f64; 2],
    /// Repeated configurations the estimate rests on.
    pub configs: usize,
}

fn variance(xs: &[f64]) -> f64 {
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1).max(1) as f64
}

/// The noise floor from the repeat block; `None` when the dataset has no repeats.
pub fn noise_floor(ds: &Dataset) -> Option<NoiseFloor> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in ds.group.iter().enumerate() {
        groups.entry(g.as_str()).or_default().push(i);
    }
    let reps: Vec<&Vec<usize>> = groups.values().filter(|v| v.len() > 1).collect();
    if reps.is_empty() || ds.len() < 2 {
        return None;
    }
    let total: [f64; 2] = std::array::from_fn(|k| variance(&ds.y.iter().map(|y| y[k]).collect::<Vec<_>>()));
    let within: Vec<[f64; 2]> = reps
        .iter()
        .map(|g| std::array::from_fn(|k| variance(&g.iter().map(|&i| ds.y[i][k]).collect::<Vec<_>>())))
        .collect();
    let share_of = |idx: &mut dyn Iterator<Item = usize>| -> [f64; 2] {
        let mut sum = [0.0; 2];
        let mut n = 0.0;
        for i in idx {
            sum[0] += within[i][0];
            sum[1] += within[i][1];
            n += 1.0;
        }
        std::array::from_fn(|k| if total[k] > 0.0 { sum[k] / n / total[k] } else { f64::NAN })
    };
    let share = share_of(&mut (0..within.len()));
    let mut rng = SplitMix64::new(0xF100);
    let mut boots: [Vec<f64>; 3] = [vec![], vec![], vec![]];
    for _ in 0..2000 {
        let s = share_of(&mut (0..within.len()).map(|_| rng.below(within.len())));
        boots[0].push(s[0]);
        boots[1].push(s[1]);
        boots[2].push((s[0] + s[1]) / 2.0);
    }
    let ci = |v: &mut Vec<f64>| -> [f64; 2] {
        v.sort_by(f64::total_cmp);
        [v[(v.len() as f64 * 0.05) as usize], v[((v.len() as f64 * 0.95) as usize).min(v.len() - 1)]]
    };
    let [b0, b1, b2] = &mut boots;
    Some(NoiseFloor { share, ci90: [ci(b0), ci(b1)], mean_ci90: ci(b2), configs: reps.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(groups: &[&str], y: &[f64]) -> Dataset {
        Dataset {
            path: "t.csv".into(),
            study: sfr2l_files::study::find("s1").unwrap().study,
            inputs: sfr2l_core::Inputs::catalogue(),
            failure: sfr2l_core::Failure::default(),
            x: vec![vec![0.0; 9]; groups.len()],
            y: y.iter().map(|v| [*v, *v / 10.0]).collect(),
            group: groups.iter().map(|s| s.to_string()).collect(),
            sha256: String::new(),
        }
    }

    #[test]
    fn split_keeps_repeats_together_and_is_seeded() {
        let groups: Vec<String> = (0..100).map(|i| format!("g{}", i / 2)).collect();
        let g: Vec<&str> = groups.iter().map(String::as_str).collect();
        let d = ds(&g, &vec![1.0; 100]);
        let s = split(&d, 3, 0.2, 0.1).unwrap();
        assert_eq!(s, split(&d, 3, 0.2, 0.1).unwrap());
        assert_ne!(s, split(&d, 4, 0.2, 0.1).unwrap());
        assert_eq!(s.test.len(), 20);
        assert_eq!(s.train.len() + s.valid.len() + s.test.len(), 100);
        for i in &s.test {
            let pair = if i % 2 == 0 { i + 1 } else { i - 1 };
            assert!(s.test.contains(&pair));
        }
    }

    #[test]
    fn too_few_configurations_is_an_error() {
        let d = ds(&["a", "a", "b"], &[1.0, 2.0, 3.0]);
        let e = split(&d, 1, 0.2, 0.1).unwrap_err().to_string();
        assert!(e.contains("t.csv: 3 data rows in 2 configurations"), "{e}");
    }

    #[test]
    fn standardizer_round_trips_and_handles_constants() {
        let rows = [[1.0, 5.0], [3.0, 5.0]];
        let s = Standardizer::fit(&rows);
        // a constant that is not exactly representable as a running mean stays exact
        let c = Standardizer::fit(&vec![[180.0, 0.1]; 1434]);
        assert_eq!((c.mean.clone(), c.std.clone()), (vec![180.0, 0.1], vec![1.0, 1.0]));
        assert_eq!(c.apply_f32(&[180.0f32, 0.1]), [0.0, 0.0]);
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.std, vec![1.0, 1.0]);
        assert_eq!(s.apply(&[3.0, 5.0]), [1.0, 0.0]);
        assert_eq!(s.invert(&s.apply(&[7.0, 2.0])), [7.0, 2.0]);
    }

    #[test]
    fn noise_floor_is_the_within_share() {
        // two configurations repeated: within variance 0.5 each; total variance of [0,1,10,11]
        let d = ds(&["a", "a", "b", "b"], &[0.0, 1.0, 10.0, 11.0]);
        let f = noise_floor(&d).unwrap().share;
        let total = {
            let xs = [0.0, 1.0, 10.0, 11.0];
            let m = 5.5;
            xs.iter().map(|x: &f64| (x - m) * (x - m)).sum::<f64>() / 3.0
        };
        assert!((f[0] - 0.5 / total).abs() < 1e-12);
        assert!(noise_floor(&ds(&["a", "b"], &[1.0, 2.0])).is_none());
    }
}
