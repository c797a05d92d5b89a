//! Test metrics on standardised targets: MSE per output and their mean, and R^2.

pub use sfr2l_core::card::Scores;

pub fn score(pred: &[[f64; 2]], truth: &[[f64; 2]]) -> Scores {
    let n = truth.len().max(1) as f64;
    let mut mse = [0.0; 2];
    let mut r2 = [0.0; 2];
    for k in 0..2 {
        let mean = truth.iter().map(|t| t[k]).sum::<f64>() / n;
        let sse: f64 = pred.iter().zip(truth).map(|(p, t)| (p[k] - t[k]).powi(2)).sum();
        let sst: f64 = truth.iter().map(|t| (t[k] - mean).powi(2)).sum();
        mse[k] = sse / n;
        r2[k] = if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN };
    }
    Scores { mse: (mse[0] + mse[1]) / 2.0, mse_per_output: mse, r2 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn perfect_and_mean_predictions() {
        let t = [[1.0, 0.0], [3.0, 2.0]];
        let s = super::score(&t, &t);
        assert_eq!(s.mse, 0.0);
        assert_eq!(s.r2, [1.0, 1.0]);
        let s = super::score(&[[2.0, 1.0], [2.0, 1.0]], &t);
        assert_eq!(s.mse_per_output, [1.0, 1.0]);
        assert_eq!(s.r2, [0.0, 0.0]);
    }
}
