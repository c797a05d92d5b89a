//! `sfr2l advise` on the committed S1 simulator: the YAML it writes passes the typed validation,
//! it flags extrapolation, and on the real lab (Envoy 1.40 + httpbin, the S1 topology) the
//! advised rule's measured 503 rate is below the median rule's at the same load (small budget:
//! two loads, three runs per rule; the fuller comparison is report/advisor.md).

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use sfr2l::advise::search::Objective;
use sfr2l::advise::{advise, yaml, Ask};
use sfr2l_core::{LoadSetting, TrafficRule};
use sfr2l_lab::collect::{self, PlanEntry};
use sfr2l_lab::destination_rule;
use sfr2l_tests::{repo_root, start_lab};
use std::process::Command;
use std::time::Instant;

const BASE_PORT: u16 = 23200;

#[test]
fn cli_writes_a_valid_destination_rule_and_flags_extrapolation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("advised.yaml");
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_sfr2l"));
    let run = |args: &[&str]| {
        Command::new(&bin)
            .current_dir(repo_root())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
    };
    let o = run(&[
        "advise",
        "--sim",
        "policies/s1",
        "--threads",
        "5",
        "--calls",
        "440",
        "--out",
        out.to_str().unwrap_or(""),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("lowest predicted 503 rate of 343 rules"), "{stdout}");
    let rule = destination_rule::read(&out).expect("the written YAML parses");
    rule.validate().expect("typed validation");
    let profile = sfr2l_files::study::find("s1").unwrap().study;
    assert_eq!(profile.check(&rule, &LoadSetting { threads: 5, calls: 440 }), Ok(()));
    assert!(!stdout.contains("EXTRAPOLATION"), "{stdout}");

    let o = run(&["advise", "--sim", "policies/s1", "--threads", "9", "--calls", "440", "--objective", "worst"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("EXTRAPOLATION: threads = 9 (range 1..5)"), "{stdout}");
    assert!(stdout.contains("kind: DestinationRule"), "{stdout}");

    let o = run(&["advise", "--sim", "policies/nope", "--threads", "3", "--calls", "440"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("policies/nope/simulator.json"), "{err}");
}

/// Share of 503 responses over `reps` runs of `rule` at `load` on the lab. A run the collector's
/// conservation check rejects (trace, load generator and cluster counters disagree) is run again,
/// as `lab collect` does, at most three times.
fn measured(lab: &mut sfr2l_lab::Lab, rule: TrafficRule, load: LoadSetting, reps: u32, tag: &str) -> f64 {
    let (mut n503, mut n) = (0, 0);
    for i in 0..reps {
        let e = PlanEntry { config_id: tag.into(), repeat: i, rule, load };
        let mut tries = 0;
        let out = loop {
            tries += 1;
            match collect::run_once(lab, &e, &format!("{tag}-{i}-t{tries}"), "/status/200", 0).expect("run") {
                Ok(out) => break out,
                Err(why) if tries < 3 => eprintln!("{tag}: run rejected, again: {why}"),
                Err(why) => panic!("{tag}: run rejected three times: {why}"),
            }
        };
        n503 += out.record.count(503);
        n += out.record.responses;
    }
    n503 as f64 / n.max(1) as f64
}

/// Predicted and measured 503 rates of the advised best, the median and the advised worst rule
/// at one load.
struct Compared {
    threads: u32,
    predicted: [f64; 3],
    measured: [f64; 3],
}

/// Advised (best), median and worst rules at some loads, measured interleaved on one lab.
fn compare(loads: &[(u32, u32)], reps: u32, base_port: u16) -> Vec<Compared> {
    let sim = repo_root().join("policies/s1");
    let profile = sfr2l_files::study::find("s1").unwrap().study;
    let (mut lab, _dir) = start_lab(base_port, profile.lab);
    let mut out = Vec::new();
    for &(threads, calls) in loads {
        let best = advise(&sim, &Ask { threads, calls, objective: Objective::Best, levels: 7 }).expect("advise");
        let worst = advise(&sim, &Ask { threads, calls, objective: Objective::Worst, levels: 7 }).expect("advise");
        // Through the YAML, as `lab apply` reads it.
        let read = |r: &TrafficRule, name: &str| {
            destination_rule::parse(&yaml(r, "httpbin", "httpbin", &best.inputs).expect("yaml"), name).expect("parse")
        };
        let rules = [read(&best.rule, "best"), read(&best.median_rule, "median"), read(&worst.rule, "worst")];
        let load = LoadSetting { threads, calls };
        let mut m = [0.0; 3];
        // Interleaved, so slow drift in the machine's load hits all three alike.
        for k in 0..reps {
            for (i, r) in rules.iter().enumerate() {
                m[i] += measured(&mut lab, *r, load, 1, &format!("r{i}-{threads}-{calls}-{k}")) / f64::from(reps);
            }
        }
        let (b, w) = (&best.advice, &worst.advice);
        eprintln!(
            "| -c {threads} -n {calls} | {:.1} | best {:?} | {:.3} +- {:.3} | {:.3} | median {:?} | {:.3} +- {:.3} | {:.3} | worst {:?} | {:.3} +- {:.3} | {:.3} | {} |",
            collect::load_avg_1m(),
            b.chosen.rules[..3].to_vec(), b.chosen.failure_rate, b.chosen.sd_rate, m[0],
            b.median.rules[..3].to_vec(), b.median.failure_rate, b.median.sd_rate, m[1],
            w.chosen.rules[..3].to_vec(), w.chosen.failure_rate, w.chosen.sd_rate, m[2],
            if b.flat { "flat" } else { "-" }
        );
        out.push(Compared {
            threads,
            predicted: [b.chosen.failure_rate, b.median.failure_rate, w.chosen.failure_rate],
            measured: m,
        });
    }
    out
}

/// Small budget (< 60 s): two loads where the model predicts the worst rule far above the median
/// and the best one (-c 5: 0.96 vs 0.31 vs 0.28; -c 3: 0.65 vs 0.31 vs 0.29), three interleaved
/// runs per rule. Both advised rules must show on the lab as advised:
/// - best: not worse than the median rule on average over the loads (the model's best-median gap
///   on S1 is 0.03 to 0.06, inside the run-to-run noise of three 440-call runs, hence "by at most
///   0.05"), and below the worst rule by at least half the predicted worst-best gap at each load;
/// - worst: above the median rule by at least half the predicted worst-median gap.
///
/// An advisor that swaps the two (or returns any low rule as worst, or high rule as best) fails
/// on both sides. The premise is checked too: if a refitted model no longer predicts wide gaps
/// at these loads, the test says so instead of asserting nothing. `SFR2L_ADVISE_FULL=1`: the
/// report's fuller comparison (five loads, ten runs per rule).
#[test]
fn advised_rule_on_the_real_lab() {
    let t0 = Instant::now();
    let full = std::env::var("SFR2L_ADVISE_FULL").is_ok_and(|v| v == "1");
    let (loads, reps): (&[(u32, u32)], u32) =
        if full { (&[(1, 440), (2, 440), (3, 440), (4, 440), (5, 440)], 10) } else { (&[(5, 440), (3, 440)], 3) };
    let compared = compare(loads, reps, BASE_PORT);
    let mut best_over_median = Vec::new();
    for c in &compared {
        let ([pb, pm, pw], [mb, mm, mw]) = (c.predicted, c.measured);
        let row = format!(
            "-c {}: predicted best {pb:.3} median {pm:.3} worst {pw:.3}; measured {mb:.3} {mm:.3} {mw:.3}",
            c.threads
        );
        if full && pw - pm < 0.3 {
            continue; // the fuller comparison also covers loads where the model sees little difference
        }
        assert!(pw - pm >= 0.3, "the model no longer predicts a wide worst-median gap here; pick other loads: {row}");
        best_over_median.push((mb - mm, row.clone()));
        assert!(mw - mb >= 0.5 * (pw - pb), "best rule not below the worst one by half the predicted gap: {row}");
        assert!(mw - mm >= 0.5 * (pw - pm), "worst rule not above the median one by half the predicted gap: {row}");
    }
    // Averaged over the loads: one load's three runs are too noisy for a 0.05 margin.
    let mean = best_over_median.iter().map(|(d, _)| d).sum::<f64>() / best_over_median.len().max(1) as f64;
    assert!(mean <= 0.05, "best rule measured above the median one by {mean:.3} on average: {best_over_median:?}");
    eprintln!("lab check: {:.1} s", t0.elapsed().as_secs_f64());
}
