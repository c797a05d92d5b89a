//! `sfr2l sim fit`: split, standardise, fit the MLP ensemble and the baselines, export, check
//! the export against burn with tract, and write the artifacts atomically.

use super::baselines::{self, Part};
use super::config::SimConfig;
use super::export::{simulator_onnx, SimulatorSpec};
use super::metrics::{score, Scores};
use super::train::{predict_ensemble, train_member, MemberReport, Xy};
use crate::artifact::{rel_diff, sha256_hex};
use crate::data::{noise_floor, split, Dataset, Standardizer};
use crate::export::folder::StagedDir;
use crate::nn::MlpWeights;
use crate::rng::SplitMix64;
use anyhow::{bail, Context, Result};
use sfr2l_core::card::{DatasetRef, Port, SimulatorCard, SimulatorMetrics, CARD_SCHEMA};
use sfr2l_core::{Profile, FEATURES};
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

/// Burn's prediction for raw rows, with the same f32 standardisation as the graph:
/// `[rows][9]` raw -> `[rows][2]` raw (QPS >= 0, rate in [0, 1]).
pub fn burn_predict_raw(
    members: &[MlpWeights],
    xn: &Standardizer,
    yn: &Standardizer,
    rows: &[[f32; 9]],
) -> Vec<[f32; 2]> {
    let xs: Vec<[f32; 9]> = rows.iter().map(|r| xn.apply_f32(r)).collect();
    predict_ensemble(members, &xs)
        .into_iter()
        .map(|p| {
            let q = p[0] * yn.std[0] as f32 + yn.mean[0] as f32;
            let r = p[1] * yn.std[1] as f32 + yn.mean[1] as f32;
            [q.max(0.0), r.clamp(0.0, 1.0)]
        })
        .collect()
}

/// `n` raw feature rows drawn uniformly from the profile's ranges (integers where the
/// feature is an integer setting), seeded.
pub fn random_inputs(profile: &Profile, n: usize, seed: u64) -> Vec<[f32; 9]> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            std::array::from_fn(|j| {
                let (lo, hi) = profile.feature_range(FEATURES[j]);
                (lo + (rng.unit() * (hi - lo + 1.0)).floor().min(hi - lo)) as f32
            })
        })
        .collect()
}

pub fn fit(ds: &Dataset, cfg: &SimConfig, git_commit: &str, log: &mut dyn FnMut(&str)) -> Result<FittedSimulator> {
    cfg.check()?;
    let profile = Profile::get(ds.profile);
    let parts = split(ds, cfg.seed, cfg.test_fraction, cfg.valid_fraction)?;
    let pick = |idx: &[usize]| -> (Vec<[f64; 9]>, Vec<[f64; 2]>) {
        (idx.iter().map(|&i| ds.x[i]).collect(), idx.iter().map(|&i| ds.y[i]).collect())
    };
    let (xtr, ytr) = pick(&parts.train);
    let (xva, yva) = pick(&parts.valid);
    let (xte, yte) = pick(&parts.test);
    let x_norm = Standardizer::fit(&xtr);
    let y_norm = Standardizer::fit(&ytr);
    let sx = |rows: &[[f64; 9]]| rows.iter().map(|r| x_norm.apply(r)).collect::<Vec<_>>();
    let sy = |rows: &[[f64; 2]]| rows.iter().map(|r| y_norm.apply(r)).collect::<Vec<_>>();
    let (sxtr, sytr, sxva, syva, sxte, syte) = (sx(&xtr), sy(&ytr), sx(&xva), sy(&yva), sx(&xte), sy(&yte));
    log(&format!(
        "{}: {} rows -> train {}, valid {}, test {} (split by configuration, seed {})",
        ds.path.display(),
        ds.len(),
        xtr.len(),
        xva.len(),
        xte.len(),
        cfg.seed
    ));

    // The MLP ensemble.
    // The MLP sees its inputs standardised in f32 exactly as the exported graph computes them.
    let fx = |rows: &[[f64; 9]]| to_f32(rows).iter().map(|r| x_norm.apply_f32(r)).collect::<Vec<_>>();
    let (ftr, gtr, fva, gva, fte) = (fx(&xtr), to_f32(&sytr), fx(&xva), to_f32(&syva), fx(&xte));
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
        let s = score(&pred, &syte);
        log(&format!(
            "  member {m}: best epoch {} of {}, valid mse {:.4}, test mse {:.4} ({:.1} s)",
            rep.best_epoch, rep.epochs_run, rep.best_valid_mse, s.mse, rep.seconds
        ));
        member_scores.push(s);
        reports.push(rep);
        members.push(w);
    }
    let mlp_seconds = t_mlp.elapsed().as_secs_f64();
    let ens_pred: Vec<[f64; 2]> = predict_ensemble(&members, &fte).iter().map(|p| p.map(f64::from)).collect();
    let mlp_ensemble = score(&ens_pred, &syte);

    // Baselines on the same split and targets.
    let (tr, va) = (Part { x: &sxtr, y: &sytr }, Part { x: &sxva, y: &syva });
    let timed =
        |f: &dyn Fn() -> Result<baselines::Fitted, baselines::BaselineError>| -> Result<(Scores, [f64; 2], f64)> {
            let t = Instant::now();
            let (pred, choice) = f()?;
            Ok((score(&pred, &syte), choice, t.elapsed().as_secs_f64()))
        };
    let (ridge, ridge_c, ridge_s) = timed(&|| baselines::ridge(&tr, &va, &sxte, &cfg.ridge_alphas))?;
    let (svr, svr_c, svr_s) =
        timed(&|| baselines::svr(&tr, &va, &sxte, &cfg.svr_cs, cfg.svr_epsilon, cfg.svr_kernel_width))?;
    let (logistic, log_c, log_s) = timed(&|| baselines::logistic(&tr, &va, &sxte, &cfg.logistic_l2s))?;
    log(&format!(
        "  test mse: mlp ensemble {:.4}, svr {:.4}, logistic {:.4}, ridge {:.4}",
        mlp_ensemble.mse, svr.mse, logistic.mse, ridge.mse
    ));

    // Export and check it against burn with tract before anything is written.
    let onnx = simulator_onnx(&SimulatorSpec {
        profile: ds.profile,
        x_norm: &x_norm,
        y_norm: &y_norm,
        members: &members,
        dataset_sha256: &ds.sha256,
    });
    let probe = random_inputs(&profile, 1000, cfg.seed ^ 0x0DD);
    let want = burn_predict_raw(&members, &x_norm, &y_norm, &probe);
    let rt = sfr2l_runtime::Simulator::from_bytes(&onnx).context("reloading the exported simulator with tract")?;
    let got = rt.predict(&probe)?;
    let mut worst = 0.0f32;
    for (g, w) in got.iter().zip(&want) {
        worst = worst.max(rel_diff(g.qps, w[0], 1.0)).max(rel_diff(g.rate_503, w[1], 0.01));
    }
    if worst > 1e-4 {
        bail!("export check failed: tract and burn differ by {worst:.2e} (relative) on random inputs");
    }
    // The exported graph on the raw test rows must score what the ensemble scored.
    let raw_test: Vec<[f32; 9]> = to_f32(&xte);
    let exported: Vec<[f64; 2]> =
        rt.predict(&raw_test)?.iter().map(|p| y_norm.apply(&[f64::from(p.qps), f64::from(p.rate_503)])).collect();
    let exported_mse = score(&exported, &syte).mse;
    if (exported_mse - mlp_ensemble.mse).abs() > 0.01 * mlp_ensemble.mse.max(1e-6) {
        bail!(
            "export check failed: the exported graph scores test mse {exported_mse:.4} on raw rows, the ensemble {:.4}",
            mlp_ensemble.mse
        );
    }
    log(&format!(
        "  export: {} bytes, tract vs burn max relative difference {worst:.1e} on 1000 inputs; test mse through the graph {exported_mse:.4}",
        onnx.len()
    ));

    let floor = noise_floor(ds);
    let range = |f: sfr2l_core::Feature| Some(profile.feature_range(f));
    let inputs = FEATURES
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
            name: "rate_503".into(),
            unit: "share".into(),
            shape: vec!["batch".into(), 1.into()],
            range: Some((0.0, 1.0)),
            doc: "share of 503 responses".into(),
        },
        Port {
            name: "uncertainty".into(),
            unit: "queries/s, share".into(),
            shape: vec!["batch".into(), 2.into()],
            range: None,
            doc: "ensemble standard deviation of (QPS, 503 rate)".into(),
        },
    ];
    let onnx_sha256 = sha256_hex(&onnx);
    let card = SimulatorCard {
        schema: CARD_SCHEMA,
        kind: sfr2l_core::artifact::KIND_SIMULATOR.into(),
        profile: ds.profile.to_string(),
        inputs,
        outputs,
        dataset: DatasetRef {
            path: ds.path.display().to_string(),
            sha256: ds.sha256.clone(),
            rows: ds.len(),
            train_rows: xtr.len(),
            valid_rows: xva.len(),
            test_rows: xte.len(),
        },
        metrics: SimulatorMetrics {
            mlp_ensemble,
            mlp_members: member_scores,
            svr,
            logistic,
            ridge,
            noise_floor: floor.map(|f| f.share),
            noise_floor_mean: floor.map(|f| (f.share[0] + f.share[1]) / 2.0),
            noise_floor_ci90: floor.map(|f| f.ci90),
            noise_floor_mean_ci90: floor.map(|f| f.mean_ci90),
            noise_floor_configs: floor.map(|f| f.configs).unwrap_or(0),
            baseline_choices: serde_json::json!({ "ridge_alpha": ridge_c, "svr_c": svr_c, "logistic_l2": log_c }),
        },
        seed: cfg.seed,
        config: serde_json::to_value(cfg)?,
        ensemble: members.len(),
        members: serde_json::to_value(&reports)?,
        onnx_sha256,
        git_commit: git_commit.into(),
        fit_seconds: serde_json::json!({ "mlp": mlp_seconds, "svr": svr_s, "logistic": log_s, "ridge": ridge_s }),
    };
    Ok(FittedSimulator { onnx, card, config: cfg.clone(), members, x_norm, y_norm })
}

/// Writes `simulator.onnx`, `simulator.json` and `config.json` into `out` as one step: the
/// files go to a temporary sibling folder first, which then replaces `out`. Other files
/// already in `out` (agents of a later stage) are carried over.
pub fn write_artifacts(out: &Path, fitted: &FittedSimulator) -> Result<()> {
    let stage = StagedDir::new(out, ".sim-")?;
    if out.is_dir() {
        for e in std::fs::read_dir(out)? {
            let e = e?;
            let name = e.file_name();
            if e.file_type()?.is_file()
                && !["simulator.onnx", "simulator.json", "config.json"].contains(&name.to_string_lossy().as_ref())
            {
                std::fs::copy(e.path(), stage.path().join(&name))?;
            }
        }
    }
    std::fs::write(stage.path().join("simulator.onnx"), &fitted.onnx)?;
    std::fs::write(stage.path().join("simulator.json"), serde_json::to_string_pretty(&fitted.card)? + "\n")?;
    std::fs::write(stage.path().join("config.json"), serde_json::to_string_pretty(&fitted.config)? + "\n")?;
    stage.publish()
}
