//! `sfr2l sim fit`: split, standardise, fit the MLP ensemble and the baselines, export, check
//! the export against burn with tract, and write the artifacts atomically.

use super::baselines::{self, Part};
use super::config::SimConfig;
use super::export::{simulator_onnx, SimulatorSpec};
use super::metrics::{score, Scores};
use super::train::{predict_ensemble, train_member, MemberReport, Xy};
use crate::data::{noise_floor, split, Dataset, Standardizer};
use crate::export::folder::StagedDir;
use crate::export::rel_diff;
use crate::nn::MlpWeights;
use anyhow::{bail, Context, Result};
use sfr2l_core::card::{DatasetRef, Port, SimulatorCard, SimulatorMetrics, CARD_SCHEMA};
use sfr2l_core::rng::SplitMix64;
use sfr2l_core::Study;
use sfr2l_files::sha256_hex;
use std::path::Path;
use std::time::Instant;

/// Everything a fit produced, before it is written.
pub struct FittedSimulator {
    pub onnx: Vec<u8>,
    pub card: SimulatorCard,
    pub config: SimConfig,
    pub members: Vec<MlpWeights>,
    pub x_norm: Standardizer,
    pub y_norm: Standardizer,
}

fn to_f32<const N: usize>(rows: &[[f64; N]]) -> Vec<[f32; N]> {
    rows.iter().map(|r| r.map(|v| v as f32)).collect()
}

fn rows_f32(rows: &[Vec<f64>]) -> Vec<Vec<f32>> {
    rows.iter().map(|r| r.iter().map(|v| *v as f32).collect()).collect()
}

/// Burn's prediction for raw rows, with the same f32 standardisation as the graph:
/// `[rows][inputs]` raw -> `[rows][2]` raw (QPS >= 0, rate in [0, 1]).
pub fn burn_predict_raw<R: AsRef<[f32]>>(
    members: &[MlpWeights],
    xn: &Standardizer,
    yn: &Standardizer,
    rows: &[R],
) -> Vec<[f32; 2]> {
    let xs: Vec<Vec<f32>> = rows.iter().map(|r| xn.apply_row_f32(r.as_ref())).collect();
    predict_ensemble(members, &xs)
        .into_iter()
        .map(|p| {
            let q = p[0] * yn.std[0] as f32 + yn.mean[0] as f32;
            let r = p[1] * yn.std[1] as f32 + yn.mean[1] as f32;
            [q.max(0.0), r.clamp(0.0, 1.0)]
        })
        .collect()
}

/// `n` raw input rows drawn uniformly from the study's input ranges (integers where the
/// feature is an integer setting), seeded.
pub fn random_inputs(profile: &Study, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    let ranges = profile.input_ranges();
    (0..n)
        .map(|_| {
            ranges.iter().map(|(lo, hi)| (lo + (rng.unit() * (hi - lo + 1.0)).floor().min(hi - lo)) as f32).collect()
        })
        .collect()
}

/// Fits the simulator on `ds`: split, MLP ensemble, baselines, export checked against burn, card.
pub fn fit(ds: &Dataset, cfg: &SimConfig, git_commit: &str, log: &mut dyn FnMut(&str)) -> Result<FittedSimulator> {
    cfg.check()?;
    let profile = &ds.study;
    let s = Splits::new(ds, cfg)?;
    log(&format!(
        "{}: {} rows -> train {}, valid {}, test {} (split by configuration, seed {})",
        ds.path.display(),
        ds.len(),
        s.xtr.len(),
        s.xva.len(),
        s.xte.len(),
        cfg.seed
    ));
    let ens = fit_ensemble(&s, cfg, log)?;
    let base = fit_baselines(&s, cfg)?;
    log(&format!(
        "  test mse: mlp ensemble {:.4}, svr {:.4}, logistic {:.4}, ridge {:.4}",
        ens.scores.mse, base.svr.scores.mse, base.logistic.scores.mse, base.ridge.scores.mse
    ));
    let onnx = export_checked(ds, cfg, profile, &s, &ens, log)?;
    let card = simulator_card(ds, cfg, &s, &ens, &base, sha256_hex(&onnx), git_commit)?;
    Ok(FittedSimulator { onnx, card, config: cfg.clone(), members: ens.members, x_norm: s.x_norm, y_norm: s.y_norm })
}

/// The dataset split by configuration: raw rows, the standardisers fitted on the training rows,
/// and the standardised rows the baselines and the scores use.
struct Splits {
    xtr: Vec<Vec<f64>>,
    xva: Vec<Vec<f64>>,
    xte: Vec<Vec<f64>>,
    x_norm: Standardizer,
    y_norm: Standardizer,
    sxtr: Vec<Vec<f64>>,
    sytr: Vec<[f64; 2]>,
    sxva: Vec<Vec<f64>>,
    syva: Vec<[f64; 2]>,
    sxte: Vec<Vec<f64>>,
    syte: Vec<[f64; 2]>,
}

impl Splits {
    fn new(ds: &Dataset, cfg: &SimConfig) -> Result<Self> {
        let parts = split(ds, cfg.seed, cfg.test_fraction, cfg.valid_fraction)?;
        let pick = |idx: &[usize]| -> (Vec<Vec<f64>>, Vec<[f64; 2]>) {
            (idx.iter().map(|&i| ds.x[i].clone()).collect(), idx.iter().map(|&i| ds.y[i]).collect())
        };
        let (xtr, ytr) = pick(&parts.train);
        let (xva, yva) = pick(&parts.valid);
        let (xte, yte) = pick(&parts.test);
        let x_norm = Standardizer::fit(&xtr);
        let y_norm = Standardizer::fit(&ytr);
        let sx = |rows: &[Vec<f64>]| rows.iter().map(|r| x_norm.apply_row(r)).collect::<Vec<_>>();
        let sy = |rows: &[[f64; 2]]| rows.iter().map(|r| y_norm.apply(r)).collect::<Vec<_>>();
        let (sxtr, sytr, sxva, syva, sxte, syte) = (sx(&xtr), sy(&ytr), sx(&xva), sy(&yva), sx(&xte), sy(&yte));
        Ok(Self { xtr, xva, xte, x_norm, y_norm, sxtr, sytr, sxva, syva, sxte, syte })
    }

    /// Raw rows standardised in f32 exactly as the exported graph computes them.
    fn graph_inputs(&self, rows: &[Vec<f64>]) -> Vec<Vec<f32>> {
        rows_f32(rows).iter().map(|r| self.x_norm.apply_row_f32(r)).collect()
    }
}

/// The trained MLP ensemble and its test scores.
struct Ensemble {
    members: Vec<MlpWeights>,
    reports: Vec<MemberReport>,
    member_scores: Vec<Scores>,
    /// The mean of the members.
    scores: Scores,
    seconds: f64,
}

fn fit_ensemble(s: &Splits, cfg: &SimConfig, log: &mut dyn FnMut(&str)) -> Result<Ensemble> {
    let (ftr, gtr, fva, gva, fte) =
        (s.graph_inputs(&s.xtr), to_f32(&s.sytr), s.graph_inputs(&s.xva), to_f32(&s.syva), s.graph_inputs(&s.xte));
    let mut members = Vec::new();
    let mut reports: Vec<MemberReport> = Vec::new();
    let mut member_scores = Vec::new();
    let base = crate::device::compute_device()?;
    let t_mlp = Instant::now();
    for m in 0..cfg.ensemble {
        let seed = cfg.seed.wrapping_mul(1000).wrapping_add(m as u64);
        let (w, rep) = train_member(cfg, seed, &Xy { x: &ftr, y: &gtr }, &Xy { x: &fva, y: &gva }, &base, |e, v| {
            if e % 25 == 0 {
                log(&format!("  member {m}: epoch {e:>3} valid mse {v:.4}"));
            }
        });
        let pred: Vec<[f64; 2]> =
            predict_ensemble(std::slice::from_ref(&w), &fte).iter().map(|p| p.map(f64::from)).collect();
        let sc = score(&pred, &s.syte);
        log(&format!(
            "  member {m}: best epoch {} of {}, valid mse {:.4}, test mse {:.4} ({:.1} s)",
            rep.best_epoch, rep.epochs_run, rep.best_valid_mse, sc.mse, rep.seconds
        ));
        member_scores.push(sc);
        reports.push(rep);
        members.push(w);
    }
    let seconds = t_mlp.elapsed().as_secs_f64();
    let ens_pred: Vec<[f64; 2]> = predict_ensemble(&members, &fte).iter().map(|p| p.map(f64::from)).collect();
    let scores = score(&ens_pred, &s.syte);
    Ok(Ensemble { members, reports, member_scores, scores, seconds })
}

/// One baseline's test scores, the penalty the validation slice chose, and its fit time.
struct BaselineFit {
    scores: Scores,
    choice: [f64; 2],
    seconds: f64,
}

struct Baselines {
    ridge: BaselineFit,
    svr: BaselineFit,
    logistic: BaselineFit,
}

/// The baselines on the same split and targets.
fn fit_baselines(s: &Splits, cfg: &SimConfig) -> Result<Baselines> {
    let (tr, va) = (Part { x: &s.sxtr, y: &s.sytr }, Part { x: &s.sxva, y: &s.syva });
    let timed = |f: &dyn Fn() -> Result<baselines::Fitted, baselines::BaselineError>| -> Result<BaselineFit> {
        let t = Instant::now();
        let (pred, choice) = f()?;
        Ok(BaselineFit { scores: score(&pred, &s.syte), choice, seconds: t.elapsed().as_secs_f64() })
    };
    let ridge = timed(&|| baselines::ridge(&tr, &va, &s.sxte, &cfg.ridge_alphas))?;
    let svr = timed(&|| baselines::svr(&tr, &va, &s.sxte, &cfg.svr_cs, cfg.svr_epsilon, cfg.svr_kernel_width))?;
    let logistic = timed(&|| baselines::logistic(&tr, &va, &s.sxte, &cfg.logistic_l2s))?;
    Ok(Baselines { ridge, svr, logistic })
}

/// The ONNX graph, checked against burn with tract before anything is written: on random
/// inputs over the profile's ranges, and on the raw test rows (it must score what the ensemble scored).
fn export_checked(
    ds: &Dataset,
    cfg: &SimConfig,
    profile: &Study,
    s: &Splits,
    ens: &Ensemble,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<u8>> {
    let onnx = simulator_onnx(&SimulatorSpec {
        study: &ds.study,
        x_norm: &s.x_norm,
        y_norm: &s.y_norm,
        members: &ens.members,
        dataset_sha256: &ds.sha256,
    });
    let probe = random_inputs(profile, 1000, cfg.seed ^ 0x0DD);
    let want = burn_predict_raw(&ens.members, &s.x_norm, &s.y_norm, &probe);
    let rt = sfr2l_runtime::Simulator::from_bytes(&onnx).context("reloading the exported simulator with tract")?;
    let got = rt.predict(&probe)?;
    let mut worst = 0.0f32;
    for (g, w) in got.iter().zip(&want) {
        worst = worst.max(rel_diff(g.qps, w[0], 1.0)).max(rel_diff(g.failure_rate, w[1], 0.01));
    }
    if worst > 1e-4 {
        bail!("export check failed: tract and burn differ by {worst:.2e} (relative) on random inputs");
    }
    let raw_test: Vec<Vec<f32>> = rows_f32(&s.xte);
    let exported: Vec<[f64; 2]> =
        rt.predict(&raw_test)?.iter().map(|p| s.y_norm.apply(&[f64::from(p.qps), f64::from(p.failure_rate)])).collect();
    let exported_mse = score(&exported, &s.syte).mse;
    let mlp_mse = ens.scores.mse;
    if (exported_mse - mlp_mse).abs() > 0.01 * mlp_mse.max(1e-6) {
        bail!(
            "export check failed: the exported graph scores test mse {exported_mse:.4} on raw rows, the ensemble {mlp_mse:.4}"
        );
    }
    log(&format!(
        "  export: {} bytes, tract vs burn max relative difference {worst:.1e} on 1000 inputs; test mse through the graph {exported_mse:.4}",
        onnx.len()
    ));
    Ok(onnx)
}

/// The simulator's inputs (the study's, with its ranges) and outputs.
fn simulator_ports(ds: &Dataset) -> (Vec<Port>, Vec<Port>) {
    let profile = &ds.study;
    let range = |f: sfr2l_core::Feature| Some(profile.feature_range(f));
    let inputs = ds
        .inputs
        .features()
        .iter()
        .map(|f| Port {
            name: f.name().into(),
            unit: f.unit().into(),
            shape: vec!["batch".into(), 1.into()],
            range: range(*f),
            doc: f.source().into(),
        })
        .collect();
    let outputs = vec![
        Port {
            name: "qps".into(),
            unit: "queries/s".into(),
            shape: vec!["batch".into(), 1.into()],
            range: None,
            doc: "QPS of the run, >= 0".into(),
        },
        Port {
            name: ds.failure.column(),
            unit: "share".into(),
            shape: vec!["batch".into(), 1.into()],
            range: Some((0.0, 1.0)),
            doc: format!("share of {}", ds.failure.responses()),
        },
        Port {
            name: "uncertainty".into(),
            unit: "queries/s, share".into(),
            shape: vec!["batch".into(), 2.into()],
            range: None,
            doc: format!("ensemble standard deviation of (QPS, {})", ds.failure.spread_name()),
        },
    ];
    (inputs, outputs)
}

/// `simulator.json`.
fn simulator_card(
    ds: &Dataset,
    cfg: &SimConfig,
    s: &Splits,
    ens: &Ensemble,
    base: &Baselines,
    onnx_sha256: String,
    git_commit: &str,
) -> Result<SimulatorCard> {
    let (inputs, outputs) = simulator_ports(ds);
    let floor = noise_floor(ds);
    Ok(SimulatorCard {
        schema: CARD_SCHEMA,
        kind: sfr2l_core::artifact::KIND_SIMULATOR.into(),
        profile: ds.study.name.clone(),
        inputs,
        outputs,
        dataset: DatasetRef {
            path: ds.path.display().to_string(),
            sha256: ds.sha256.clone(),
            rows: ds.len(),
            train_rows: s.xtr.len(),
            valid_rows: s.xva.len(),
            test_rows: s.xte.len(),
        },
        metrics: SimulatorMetrics {
            mlp_ensemble: ens.scores,
            mlp_members: ens.member_scores.clone(),
            svr: base.svr.scores,
            logistic: base.logistic.scores,
            ridge: base.ridge.scores,
            noise_floor: floor.map(|f| f.share),
            noise_floor_mean: floor.map(|f| (f.share[0] + f.share[1]) / 2.0),
            noise_floor_ci90: floor.map(|f| f.ci90),
            noise_floor_mean_ci90: floor.map(|f| f.mean_ci90),
            noise_floor_configs: floor.map(|f| f.configs).unwrap_or(0),
            baseline_choices: serde_json::json!({
                "ridge_alpha": base.ridge.choice,
                "svr_c": base.svr.choice,
                "logistic_l2": base.logistic.choice,
            }),
        },
        seed: cfg.seed,
        config: serde_json::to_value(cfg)?,
        ensemble: ens.members.len(),
        members: serde_json::to_value(&ens.reports)?,
        onnx_sha256,
        git_commit: git_commit.into(),
        fit_seconds: serde_json::json!({
            "mlp": ens.seconds,
            "svr": base.svr.seconds,
            "logistic": base.logistic.seconds,
            "ridge": base.ridge.seconds,
        }),
        // The command that knows the study file adds its reference (name, sha256, target).
        study: None,
    })
}

/// Writes `simulator.onnx`, `simulator.json` and `config.json` into `out` as one step: the
/// files go to a temporary sibling folder first, which then replaces `out`. Other files
/// already in `out` (agents of a later stage) are carried over.
/// Recreates the tree `src` at `dst` with hard links (a copy where linking fails), so that
/// keeping large agent folders through a re-export costs no space and no time.
fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            link_tree(&e.path(), &to)?;
        } else if std::fs::hard_link(e.path(), &to).is_err() {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

pub fn write_artifacts(out: &Path, fitted: &FittedSimulator) -> Result<()> {
    let stage = StagedDir::new(out, ".sim-")?;
    if out.is_dir() {
        for e in std::fs::read_dir(out)? {
            let e = e?;
            let name = e.file_name();
            let kind = e.file_type()?;
            if kind.is_file()
                && !["simulator.onnx", "simulator.json", "config.json"].contains(&name.to_string_lossy().as_ref())
            {
                std::fs::copy(e.path(), stage.path().join(&name))?;
            } else if kind.is_dir() {
                // Agents trained on the previous simulator stay (their cards pin its sha256, so
                // using them against the new one is a clear error, not a silent loss).
                link_tree(&e.path(), &stage.path().join(&name))?;
            }
        }
    }
    std::fs::write(stage.path().join("simulator.onnx"), &fitted.onnx)?;
    std::fs::write(stage.path().join("simulator.json"), serde_json::to_string_pretty(&fitted.card)? + "\n")?;
    std::fs::write(stage.path().join("config.json"), serde_json::to_string_pretty(&fitted.config)? + "\n")?;
    stage.publish()
}
