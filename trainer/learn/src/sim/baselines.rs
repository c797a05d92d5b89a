//! The paper's baselines on the same split and the same standardised targets: ridge and
//! epsilon-SVR from linfa, and a fractional logistic regression.
//!
//! Logistic regression on continuous targets: linfa-logistic only accepts class labels, so we
//! fit the quasi-binomial ("fractional logit", Papke & Wooldridge 1996) model ourselves: each
//! target is min-max scaled to [0, 1] on the training rows, `p = sigmoid(w.x + b)` is fitted by
//! Newton's method on the Bernoulli log-likelihood with fractional outcomes (plus a small L2
//! penalty), and predictions are scaled back. It is the logistic-link model that keeps the
//! paper's name meaningful: a linear score squashed into the observed target range.
//! Each baseline picks its penalty from a small grid on the validation slice, as the MLP picks
//! its epoch there.

use linfa::prelude::*;
use linfa_elasticnet::ElasticNet;
use linfa_svm::Svm;
use ndarray::{Array1, Array2};

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("ridge: {0}")]
    Ridge(String),
    #[error("SVR: {0}")]
    Svr(String),
    #[error("logistic: {0}")]
    Logistic(String),
}

/// Standardised rows for the baselines (f64).
pub struct Part<'a> {
    pub x: &'a [Vec<f64>],
    pub y: &'a [[f64; 2]],
}

fn records(x: &[Vec<f64>]) -> Array2<f64> {
    let width = x.first().map_or(0, Vec::len);
    Array2::from_shape_fn((x.len(), width), |(i, j)| x[i][j])
}

fn target(y: &[[f64; 2]], k: usize) -> Array1<f64> {
    y.iter().map(|r| r[k]).collect()
}

fn mse(a: &[f64], b: &Array1<f64>) -> f64 {
    a.iter().zip(b).map(|(p, t)| (p - t) * (p - t)).sum::<f64>() / a.len().max(1) as f64
}

/// Fits one output with each candidate, keeps the one with the lowest validation MSE, and
/// returns its test predictions and the chosen candidate.
fn pick<E>(
    train: &Part,
    valid: &Part,
    test: &[Vec<f64>],
    k: usize,
    grid: &[f64],
    fit_predict: impl Fn(f64, &Array2<f64>, &Array1<f64>, &[&Array2<f64>]) -> Result<Vec<Vec<f64>>, E>,
    err: impl Fn(E) -> BaselineError,
) -> Result<(Vec<f64>, f64), BaselineError> {
    let (xt, yt) = (records(train.x), target(train.y, k));
    let (xv, yv) = (records(valid.x), target(valid.y, k));
    let xs = records(test);
    let mut best: Option<(f64, f64, Vec<f64>)> = None;
    for &c in grid {
        let mut out = fit_predict(c, &xt, &yt, &[&xv, &xs]).map_err(&err)?;
        let test_pred = out.pop().unwrap_or_default();
        let v = mse(&out.pop().unwrap_or_default(), &yv);
        if best.as_ref().is_none_or(|b| v < b.0) {
            best = Some((v, c, test_pred));
        }
    }
    best.map(|b| (b.2, b.1)).ok_or_else(err_empty)
}

fn err_empty() -> BaselineError {
    BaselineError::Ridge("empty candidate grid".into())
}

/// Test predictions `[rows][2]` and the chosen penalty per output.
pub type Fitted = (Vec<[f64; 2]>, [f64; 2]);

fn both(per_output: impl Fn(usize) -> Result<(Vec<f64>, f64), BaselineError>) -> Result<Fitted, BaselineError> {
    let (a, ca) = per_output(0)?;
    let (b, cb) = per_output(1)?;
    Ok((a.into_iter().zip(b).map(|(p, q)| [p, q]).collect(), [ca, cb]))
}

/// Ridge regression (linfa-elasticnet with l1_ratio 0), alpha from `alphas`.
pub fn ridge(train: &Part, valid: &Part, test: &[Vec<f64>], alphas: &[f64]) -> Result<Fitted, BaselineError> {
    both(|k| {
        pick(
            train,
            valid,
            test,
            k,
            alphas,
            |alpha, x, y, preds| {
                let model = ElasticNet::ridge().penalty(alpha).fit(&Dataset::new(x.clone(), y.clone()))?;
                Ok::<_, linfa_elasticnet::ElasticNetError>(preds.iter().map(|p| model.predict(*p).to_vec()).collect())
            },
            |e| BaselineError::Ridge(e.to_string()),
        )
    })
}

/// Epsilon-SVR with a Gaussian kernel (linfa-svm), C from `cs`.
pub fn svr(
    train: &Part,
    valid: &Part,
    test: &[Vec<f64>],
    cs: &[f64],
    epsilon: f64,
    kernel_width: f64,
) -> Result<Fitted, BaselineError> {
    both(|k| {
        pick(
            train,
            valid,
            test,
            k,
            cs,
            |c, x, y, preds| {
                let model = Svm::<f64, f64>::params()
                    .c_svr(c, Some(epsilon))
                    .gaussian_kernel(kernel_width)
                    .fit(&Dataset::new(x.clone(), y.clone()))?;
                Ok::<_, linfa_svm::SvmError>(
                    preds.iter().map(|p| p.rows().into_iter().map(|r| model.predict(r)).collect()).collect(),
                )
            },
            |e| BaselineError::Svr(e.to_string()),
        )
    })
}

/// Fractional logistic regression, L2 penalty from `l2s`.
pub fn logistic(train: &Part, valid: &Part, test: &[Vec<f64>], l2s: &[f64]) -> Result<Fitted, BaselineError> {
    both(|k| {
        pick(
            train,
            valid,
            test,
            k,
            l2s,
            |l2, x, y, preds| {
                let model = FractionalLogitParams { l2, max_iter: 100, tol: 1e-10 }.check()?.fit(x, y)?;
                Ok::<_, BaselineError>(preds.iter().map(|p| model.predict(p)).collect())
            },
            |e| e,
        )
    })
}

/// Hyperparameters of the fractional logit, in linfa's params -> check -> fit shape.
#[derive(Debug, Clone, Copy)]
pub struct FractionalLogitParams {
    pub l2: f64,
    pub max_iter: usize,
    pub tol: f64,
}

pub struct FractionalLogitValid(FractionalLogitParams);

/// `y = lo + (hi - lo) * sigmoid(w.x + b)`.
#[derive(Debug, Clone)]
pub struct FractionalLogit {
    pub w: Vec<f64>,
    pub b: f64,
    pub lo: f64,
    pub hi: f64,
}

impl FractionalLogitParams {
    pub fn check(self) -> Result<FractionalLogitValid, BaselineError> {
        if !(self.l2 >= 0.0 && self.l2.is_finite()) || self.max_iter == 0 {
            return Err(BaselineError::Logistic(format!("invalid params {self:?}")));
        }
        Ok(FractionalLogitValid(self))
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl FractionalLogitValid {
    pub fn fit(&self, x: &Array2<f64>, y: &Array1<f64>) -> Result<FractionalLogit, BaselineError> {
        let p = self.0;
        let (n, d) = x.dim();
        if n == 0 {
            return Err(BaselineError::Logistic("no rows".into()));
        }
        let lo = y.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi - lo > 1e-12 { hi - lo } else { 1.0 };
        let t: Vec<f64> = y.iter().map(|v| ((v - lo) / span).clamp(0.0, 1.0)).collect();
        // theta = [w (d), b]
        let m = d + 1;
        let mut theta = vec![0.0; m];
        for _ in 0..p.max_iter {
            let mut g = vec![0.0; m];
            let mut h = vec![0.0; m * m];
            for (i, &ti) in t.iter().enumerate() {
                let row: Vec<f64> = x.row(i).iter().copied().chain(std::iter::once(1.0)).collect();
                let z: f64 = row.iter().zip(&theta).map(|(a, b)| a * b).sum();
                let pi = sigmoid(z);
                let wgt = (pi * (1.0 - pi)).max(1e-12);
                for a in 0..m {
                    g[a] += (pi - ti) * row[a] / n as f64;
                    for b in 0..m {
                        h[a * m + b] += wgt * row[a] * row[b] / n as f64;
                    }
                }
            }
            for a in 0..d {
                g[a] += p.l2 * theta[a];
                h[a * m + a] += p.l2;
            }
            // A tiny jitter keeps constant columns (fixed settings of a profile) from making
            // the Hessian singular; their gradient is 0, so their weight stays 0.
            for a in 0..m {
                h[a * m + a] += 1e-9;
            }
            let step = solve(&mut h, &mut g, m).ok_or_else(|| BaselineError::Logistic("singular Hessian".into()))?;
            let mut norm = 0.0;
            for (th, s) in theta.iter_mut().zip(&step) {
                *th -= s;
                norm += s * s;
            }
            if norm.sqrt() < p.tol {
                break;
            }
        }
        Ok(FractionalLogit { b: theta[d], w: theta[..d].to_vec(), lo, hi: lo + span })
    }
}

impl FractionalLogit {
    pub fn predict(&self, x: &Array2<f64>) -> Vec<f64> {
        x.rows()
            .into_iter()
            .map(|r| {
                let z: f64 = r.iter().zip(&self.w).map(|(a, b)| a * b).sum::<f64>() + self.b;
                self.lo + (self.hi - self.lo) * sigmoid(z)
            })
            .collect()
    }
}

/// Solves `A s = g` (A is `m x m`, row-major) by Gaussian elimination with partial pivoting.
/// Kept by hand: the crate solvers need a LAPACK backend (ndarray-linalg), which this build
/// does not link, and a different summation order would change the committed numbers.
fn solve(a: &mut [f64], g: &mut [f64], m: usize) -> Option<Vec<f64>> {
    for c in 0..m {
        let piv = (c..m).max_by(|&i, &j| a[i * m + c].abs().total_cmp(&a[j * m + c].abs()))?;
        if a[piv * m + c].abs() < 1e-300 {
            return None;
        }
        if piv != c {
            for k in 0..m {
                a.swap(c * m + k, piv * m + k);
            }
            g.swap(c, piv);
        }
        for r in c + 1..m {
            let f = a[r * m + c] / a[c * m + c];
            for k in c..m {
                a[r * m + k] -= f * a[c * m + k];
            }
            g[r] -= f * g[c];
        }
    }
    let mut s = vec![0.0; m];
    for r in (0..m).rev() {
        let tail: f64 = (r + 1..m).map(|k| a[r * m + k] * s[k]).sum();
        s[r] = (g[r] - tail) / a[r * m + r];
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_logit_recovers_a_logistic_curve() {
        let n = 400;
        let x = Array2::from_shape_fn((n, 9), |(i, j)| if j == 0 { i as f64 / n as f64 * 6.0 - 3.0 } else { 0.0 });
        let y: Array1<f64> = x.column(0).iter().map(|v| 2.0 + 3.0 * sigmoid(1.5 * v - 0.5)).collect();
        let m = FractionalLogitParams { l2: 0.0, max_iter: 100, tol: 1e-12 }.check().unwrap().fit(&x, &y).unwrap();
        let pred = m.predict(&x);
        let err = mse(&pred, &y);
        // The targets are scaled to their observed range, not to the curve's asymptotes, so the
        // fit is close but not exact.
        assert!(err < 2e-3, "mse {err}");
        assert!((m.w[0] - 1.5).abs() < 0.3, "{:?}", m.w);
        assert!(m.w[1..].iter().all(|w| *w == 0.0), "constant columns keep weight 0: {:?}", m.w);
    }

    #[test]
    fn solve_matches_a_known_system() {
        let mut a = vec![2.0, 1.0, 1.0, 3.0];
        let mut g = vec![3.0, 5.0];
        let s = solve(&mut a, &mut g, 2).unwrap();
        assert!((s[0] - 0.8).abs() < 1e-12 && (s[1] - 1.4).abs() < 1e-12);
        assert!(FractionalLogitParams { l2: -1.0, max_iter: 1, tol: 0.0 }.check().is_err());
    }

    #[test]
    fn ridge_and_svr_fit_a_linear_target() {
        let xs: Vec<Vec<f64>> =
            (0..120).map(|i| (0..9).map(|j| ((i * (j + 3)) % 17) as f64 / 8.0 - 1.0).collect()).collect();
        let ys: Vec<[f64; 2]> = xs.iter().map(|x| [x[0] - 0.5 * x[1], 0.3 * x[2]]).collect();
        let (tr, va) = (Part { x: &xs[..80], y: &ys[..80] }, Part { x: &xs[80..100], y: &ys[80..100] });
        let test = &xs[100..];
        let truth: Vec<[f64; 2]> = ys[100..].to_vec();
        let score = |pred: &[[f64; 2]]| {
            pred.iter().zip(&truth).map(|(p, t)| (p[0] - t[0]).powi(2) + (p[1] - t[1]).powi(2)).sum::<f64>() / 40.0
        };
        let (p, _) = ridge(&tr, &va, test, &[1e-4, 1e-2]).unwrap();
        assert!(score(&p) < 1e-3, "ridge {}", score(&p));
        let (p, _) = svr(&tr, &va, test, &[10.0], 0.01, 9.0).unwrap();
        assert!(score(&p) < 0.05, "svr {}", score(&p));
    }
}
