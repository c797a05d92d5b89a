//! `make bench` (agents part): this machine's matmul limit and the trainer's achieved FLOP rate,
//! measured side by side in one run (issue 11).
//!
//! The limit: single-precision matmuls through burn's Flex backend and through `gemm` (the tuned
//! kernel Flex calls) directly, on one thread and on two (two independent products at once, which
//! is how the trainer uses two cores: one agent per thread), for a large square product, the
//! training step's 100 x 512 by 512 x 512 and the batch-1 product. The trainer: short runs of
//! each kind of configuration on S1, their matmul FLOPs counted from the code
//! (`sfr2l_learn::rl::cost`), the achieved rate, and the projected time of the paper's full protocol.
//!
//! usage: cargo run --profile fast -p sfr2l --example rl_bench -- [--policies policies]
//!        [--epochs 20] [--collab-epochs 5]

use burn::prelude::*;
use sfr2l_core::agent::Configuration;
use sfr2l_core::Study;
use sfr2l_learn::rl::cost;
use sfr2l_learn::rl::env::Objective;
use sfr2l_learn::rl::run::{load_service, train_agents};
use sfr2l_learn::rl::RlConfig;
use std::path::PathBuf;
use std::time::Instant;

/// Repeats `f` for about `secs` after one warm-up call; returns calls per second.
fn rate(secs: f64, mut f: impl FnMut()) -> f64 {
    f();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        f();
        n += 1;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 1000.0 - 0.5).collect()
}

/// GFLOP/s of `[m, k] x [k, n]` through Flex, on `threads` threads at once (independent products).
fn flex_gflops(m: usize, k: usize, n: usize, threads: usize, secs: f64) -> f64 {
    let per: Vec<f64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let device = Device::flex();
                    let a = Tensor::<2>::from_data(TensorData::new(values(m * k, t as u32), [m, k]), &device);
                    let b = Tensor::<2>::from_data(TensorData::new(values(k * n, 7 + t as u32), [k, n]), &device);
                    rate(secs, || {
                        std::hint::black_box(a.clone().matmul(b.clone()));
                    })
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0.0)).collect()
    });
    per.iter().sum::<f64>() * 2.0 * (m * k * n) as f64 / 1e9
}

/// GFLOP/s of the same products through `gemm` directly (no tensor layer), single-threaded each.
fn gemm_gflops(m: usize, k: usize, n: usize, threads: usize, secs: f64) -> f64 {
    let per: Vec<f64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let a = values(m * k, t as u32);
                    let b = values(k * n, 7 + t as u32);
                    let mut c = vec![0.0f32; m * n];
                    rate(secs, || {
                        // Row-major: dst[i, j] at i * n + j (column stride 1, row stride n).
                        // SAFETY: the slices hold m x k, k x n and m x n floats, as the strides say.
                        unsafe {
                            gemm::gemm(
                                m,
                                n,
                                k,
                                c.as_mut_ptr(),
                                1,
                                n as isize,
                                false,
                                a.as_ptr(),
                                1,
                                k as isize,
                                b.as_ptr(),
                                1,
                                n as isize,
                                0.0,
                                1.0,
                                false,
                                false,
                                false,
                                gemm::Parallelism::None,
                            );
                        }
                        std::hint::black_box(&c);
                    })
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0.0)).collect()
    });
    per.iter().sum::<f64>() * 2.0 * (m * k * n) as f64 / 1e9
}

const SHAPES: [(usize, usize, usize, &str); 3] =
    [(1024, 1024, 1024, "1024 x 1024 x 1024"), (100, 512, 512, "100 x 512 x 512"), (1, 512, 512, "1 x 512 x 512")];

/// `[shape][threads - 1]` for Flex and gemm.
struct Limit {
    flex: Vec<[f64; 2]>,
    gemm: Vec<[f64; 2]>,
}

fn measure_limit(secs: f64) -> Limit {
    let mut l = Limit { flex: vec![], gemm: vec![] };
    for (m, k, n, _) in SHAPES {
        l.flex.push([flex_gflops(m, k, n, 1, secs), flex_gflops(m, k, n, 2, secs)]);
        l.gemm.push([gemm_gflops(m, k, n, 1, secs), gemm_gflops(m, k, n, 2, secs)]);
    }
    l
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let policies = PathBuf::from(arg("--policies").unwrap_or_else(|| "policies".into()));
    let epochs: usize = arg("--epochs").map(|v| v.parse()).transpose()?.unwrap_or(20);
    let collab_epochs: usize = arg("--collab-epochs").map(|v| v.parse()).transpose()?.unwrap_or(5);

    println!(
        "## RL training against this machine's matmul limit (`cargo run --profile fast -p sfr2l --example rl_bench`)\n"
    );
    let before = measure_limit(1.0);

    let svc = load_service(&policies.join("s1"), None, Objective::Worst)?;
    let profile = sfr2l_files::study::find("s1")?.study;
    let kinds: [(Configuration, usize, usize); 4] = [
        (Configuration::Thread, 1, epochs),
        (Configuration::ThreadCall, 1, epochs),
        (Configuration::Thread, 5, collab_epochs),
        (Configuration::ThreadCall, 5, collab_epochs),
    ];
    let mut runs = Vec::new();
    for (c, services, e) in kinds {
        let cfg = RlConfig::new().with_epochs(e).with_seed(1);
        let svcs = vec![&svc; services];
        let t0 = Instant::now();
        train_agents(c, &svcs, &cfg, |_, _| {})?;
        let secs = t0.elapsed().as_secs_f64();
        runs.push((c, services, e, secs, cost::run(c, &profile, services, &cfg)));
    }
    let after = measure_limit(1.0);

    let mid = |v: &Vec<[f64; 2]>, w: &Vec<[f64; 2]>, s: usize, t: usize| (v[s][t] + w[s][t]) / 2.0;
    println!("### The limit (GFLOP/s; mean of a measurement before and after the training runs)\n");
    println!("| product | Flex, 1 thread | Flex, 2 threads | gemm, 1 thread | gemm, 2 threads |");
    println!("|---|---|---|---|---|");
    for (s, (_, _, _, label)) in SHAPES.iter().enumerate() {
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} | {:.1} |",
            mid(&before.flex, &after.flex, s, 0),
            mid(&before.flex, &after.flex, s, 1),
            mid(&before.gemm, &after.gemm, s, 0),
            mid(&before.gemm, &after.gemm, s, 1)
        );
    }
    println!(
        "\nBefore / after the training runs, Flex 100 x 512 x 512 on 2 threads: {:.1} / {:.1} GFLOP/s.\n",
        before.flex[1][1], after.flex[1][1]
    );

    println!("### The trainer on S1 (1,000 interactions per epoch and service; seed 1)\n");
    println!("| configuration | agents (threads) | epochs | seconds | matmul TFLOP counted | GFLOP/s | of Flex 100 x 512 on as many threads |");
    println!("|---|---|---|---|---|---|---|");
    // Achieved rate per kind: (single?, agents) -> GFLOP/s.
    let mut achieved = Vec::new();
    for (c, services, e, secs, flops) in &runs {
        let agents = c.agents().len();
        let gflops = flops / secs / 1e9;
        let limit = mid(&before.flex, &after.flex, 1, agents - 1);
        let name = if *services > 1 { format!("{} x{services}", c.label()) } else { c.label().to_string() };
        println!(
            "| {name} | {agents} | {e} | {secs:.2} | {:.3} | {gflops:.1} | {:.0}% |",
            flops / 1e12,
            100.0 * gflops / limit
        );
        achieved.push(((*services > 1, agents), gflops));
    }
    let rate_of = |collab: bool, agents: usize| {
        achieved.iter().find(|(k, _)| *k == (collab, agents)).map(|(_, g)| *g).unwrap_or(f64::NAN)
    };

    // The paper's protocol: 500 epochs x 1,000 interactions, 3 seeds, 5 configurations single
    // and x5, on every dataset.
    let paper = RlConfig::new().with_epochs(500);
    let profiles: Vec<Study> = sfr2l_files::study::built_in_names()
        .map(|n| sfr2l_files::study::find(n).map(|s| s.study))
        .collect::<anyhow::Result<_>>()?;
    let total = cost::table(&profiles, &paper, 3, 5);
    let mut projected = 0.0;
    for p in &profiles {
        for c in sfr2l_core::agent::CONFIGURATIONS {
            let agents = c.agents().len();
            projected += 3.0 * cost::run(c, p, 1, &paper) / (rate_of(false, agents) * 1e9);
            projected += 3.0 * cost::run(c, p, 5, &paper) / (rate_of(true, agents) * 1e9);
        }
    }
    let floor = total / (mid(&before.gemm, &after.gemm, 1, 1) * 1e9);
    println!(
        "\nPaper protocol (5 configurations, single and x5, 5 datasets, 3 seeds, 500 epochs x 1,000 interactions): \
         {:.0} TFLOP of matmul; at the rates above {:.1} h; at gemm's 100 x 512 x 512 rate on 2 threads {:.1} h.",
        total / 1e12,
        projected / 3600.0,
        floor / 3600.0
    );
    Ok(())
}
