//! `sfr2l advise` on the committed S1 simulator: the YAML it writes passes the typed validation,
//! it flags extrapolation, and on the real lab (Envoy 1.40 + httpbin, the S1 topology) the
//! advised rule's measured 503 rate is below the median rule's at the same load (small budget:
//! two loads, three runs per rule; the fuller comparison is report/advisor.md).

use sfr2l::advise::search::Objective;
use sfr2l::advise::{advise, yaml, Ask};
use sfr2l::collect::{self, PlanEntry};
use sfr2l::destination_rule;
use sfr2l_core::{LoadSetting, Profile, ProfileId, TrafficRule};
use sfr2l_tests::{repo_root, start_lab};
use std::process::Command;
use std::time::Instant;

const BASE_PORT: u16 = 23200;

#[test]
fn cli_writes_a_valid_destination_rule_and_flags_extrapolation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("advised.yaml");
    let bin = repo_root().join("target/fast/sfr2l");
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
    let profile = Profile::get(ProfileId::S1);
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

/// Share of 503 responses over `reps` runs of `rule` at `load` on the lab.
fn measured(lab: &mut sfr2l::lab::Lab, rule: TrafficRule, load: LoadSetting, reps: u32, tag: &str) -> f64 {
    let (mut n503, mut n) = (0, 0);
    for i in 0..reps {
        let e = PlanEntry { config_id: tag.into(), repeat: i, rule, load };
        let out = collect::run_once(lab, &e, &format!("{tag}-{i}"), "/status/200", 0)
            .expect("run")
            .unwrap_or_else(|e| panic!("{tag}: run rejected: {e}"));
        n503 += out.record.count(503);
        n += out.record.responses;
    }
    n503 as f64 / n.max(1) as f64
}

#[test]
fn advised_rule_beats_the_median_rule_on_the_real_lab() {
    let t0 = Instant::now();
    let sim = repo_root().join("policies/s1");
    let profile = Profile::get(ProfileId::S1);
    let (mut lab, _dir) = start_lab(BASE_PORT, profile.lab);
    for (threads, calls) in [(5, 440), (3, 440)] {
        let ask = Ask { threads, calls, objective: Objective::Best, levels: 7 };
        let r = advise(&sim, &ask).expect("advise");
        // Through the YAML, as `lab apply` would read it.
        let advised =
            destination_rule::parse(&yaml(&r.rule, "httpbin", "httpbin").expect("yaml"), "advised").expect("parse");
        let median = destination_rule::parse(&yaml(&r.median_rule, "httpbin", "httpbin").expect("yaml"), "median")
            .expect("parse");
        let load = LoadSetting { threads, calls };
        let (mut a, mut m) = (0.0, 0.0);
        // Interleaved, so slow drift in the machine's load hits both alike.
        for k in 0..3 {
            a += measured(&mut lab, advised, load, 1, &format!("adv-{threads}-{k}")) / 3.0;
            m += measured(&mut lab, median, load, 1, &format!("med-{threads}-{k}")) / 3.0;
        }
        eprintln!(
            "-c {threads} -n {calls}: advised {:?} predicted {:.3} measured {a:.3}; median {:?} predicted {:.3} measured {m:.3}; flat {}",
            r.advice.chosen.rules, r.advice.chosen.rate_503, r.advice.median.rules, r.advice.median.rate_503, r.advice.flat
        );
        assert!(!r.advice.flat, "the S1 landscape at -c {threads} should not be flat");
        assert!(a < m, "-c {threads} -n {calls}: advised rule measured {a:.3} 503 rate, median rule {m:.3}");
    }
    eprintln!("lab check: {:.1} s", t0.elapsed().as_secs_f64());
}
