//! `make bench` (simulator part): fit time per dataset for the MLP (one member, the paper's
//! single network) and each baseline, and the exported simulator's throughput in tract at
//! batch 1 and 1,000 beside burn's own forward pass on the same inputs, in one run.
//!
//! usage: cargo run --profile fast -p sfr2l --example sim_bench -- [--data-dir data] [--only s1,s2]

use sfr2l_learn::data::{read_dataset, resolve_study};
use sfr2l_learn::sim::fit::{burn_predict_raw, fit, random_inputs};
use sfr2l_learn::sim::SimConfig;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let data_dir = PathBuf::from(arg("--data-dir").unwrap_or_else(|| "data".into()));
    let only = arg("--only").unwrap_or_else(|| "s1,s2,s3,s4,s5".into());
    let cfg = SimConfig::new().with_ensemble(1);

    println!(
        "## Simulator: fit time per dataset (one MLP member, default config; baselines with their validation grids)\n"
    );
    println!(
        "| dataset | rows | MLP epochs | MLP fit (s) | s/epoch | SVR fit (s) | logistic fit (s) | ridge fit (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut last = None;
    for id in only.split(',') {
        let id = id.trim().to_string();
        let path = data_dir.join(format!("{id}.csv"));
        let ds = read_dataset(&path, &resolve_study(&path, Some(&id))?.study)?;
        let f = fit(&ds, &cfg, "bench", &mut |_| {})?;
        let t = |k: &str| f.card.fit_seconds.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let epochs = f.card.members[0]["epochs_run"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {} | {epochs:.0} | {:.1} | {:.3} | {:.2} | {:.3} | {:.3} |",
            id.to_string().to_uppercase(),
            ds.len(),
            t("mlp"),
            t("mlp") / epochs,
            t("svr"),
            t("logistic"),
            t("ridge")
        );
        last = Some((ds.study, f));
    }
    let Some((study, f)) = last else { return Ok(()) };
    let id = study.name.clone();

    // Throughput: the exported ensemble of the committed simulator if present, else the one
    // just fitted.
    let committed = PathBuf::from("policies").join(&id).join("simulator.onnx");
    let (onnx, label) = match std::fs::read(&committed) {
        Ok(b) => (b, committed.display().to_string()),
        Err(_) => (f.onnx.clone(), format!("{id} fitted above")),
    };
    let sim = sfr2l_runtime::Simulator::from_bytes(&onnx)?;
    let members = sim.ensemble;
    let rows = random_inputs(&study, 1000, 9);
    let rate = |n: usize, reps: usize, f: &mut dyn FnMut()| {
        f();
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        (n * reps) as f64 / t.elapsed().as_secs_f64()
    };
    let one = &rows[..1];
    let t1 = rate(1, 2000, &mut || {
        sim.predict(one).map(|_| ()).unwrap_or(());
    });
    let t1000 = rate(1000, 20, &mut || {
        sim.predict(&rows).map(|_| ()).unwrap_or(());
    });
    // burn on the fitted single member, same shapes (the exported file may hold more members).
    let per_member = |r: f64| r * members as f64;
    let b1 = rate(1, 500, &mut || {
        burn_predict_raw(&f.members, &f.x_norm, &f.y_norm, one);
    });
    let b1000 = rate(1000, 20, &mut || {
        burn_predict_raw(&f.members, &f.x_norm, &f.y_norm, &rows);
    });
    println!("\n## Simulator inference throughput ({label}, ensemble of {members}; predictions/s)\n");
    println!("| batch | tract (exported graph) | tract x members (network evaluations/s) | burn Flex, one network | tract network-evals / burn |");
    println!("|---|---|---|---|---|");
    println!("| 1 | {t1:.0} | {:.0} | {b1:.0} | {:.2} |", per_member(t1), per_member(t1) / b1);
    println!("| 1000 | {t1000:.0} | {:.0} | {b1000:.0} | {:.2} |", per_member(t1000), per_member(t1000) / b1000);
    Ok(())
}
