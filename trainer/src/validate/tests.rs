//! Unit tests of validation's pure parts.

use super::report::VAL_BEGIN;
use super::*;

const DECISIONS: &str = "service,profile,row,max_pending_requests,max_connections,max_requests_per_connection,base_ejection_time_s,max_ejection_percent,interval_s,consecutive_5xx_errors,threads,calls,reward,optimum,random_reward
0,s2,10,3,7,6,180,100,1,1,7,200,1,1,1
1,s2,11,3,7,6,180,100,1,1,7,200,1,1,1
0,s2,12,5,4,4,180,100,1,1,6,300,1,1,1
0,s2,13,4,4,4,180,100,1,1,5,400,1,1,1
";

fn s1() -> Study {
    sfr2l_files::study::find("s1").unwrap().study
}

#[test]
fn the_plan_draws_distinct_service_0_states_deterministically() {
    let p = Path::new("d.csv");
    let a = sample_plan(&s1(), p, DECISIONS, 3, 1).unwrap();
    assert_eq!(a, sample_plan(&s1(), p, DECISIONS, 3, 1).unwrap());
    let mut rows: Vec<usize> = a.iter().map(|s| s.row).collect();
    rows.sort();
    assert_eq!(rows, vec![10, 12, 13]);
    let s12 = a.iter().find(|s| s.row == 12).unwrap();
    assert_eq!(s12.fixed, LoadSetting { threads: 6, calls: 300 });
    assert_eq!(s12.rule.max_pending_requests, 5);
    assert_eq!(a.iter().map(|s| s.index).collect::<Vec<_>>(), vec![0, 1, 2]);
    let e = sample_plan(&s1(), p, DECISIONS, 4, 1).unwrap_err().to_string();
    assert!(e.contains("3 states of service 0") && e.contains("--samples 4"), "{e}");
    let bad = DECISIONS.replace("5,400", "5,many");
    let e = sample_plan(&s1(), p, &bad, 1, 1).unwrap_err().to_string();
    assert!(e.contains("line 5") && e.contains("`calls`") && e.contains("`many`"), "{e}");
}

fn outcome(index: usize, row: usize, a: f64, r: f64) -> Outcome {
    let m = |x: f64| Measured { qps: x * 2.0, failure_rate: 0.5, reward: x };
    Outcome {
        index,
        row,
        agent_load: LoadSetting { threads: 7, calls: 200 },
        random_load: LoadSetting { threads: 3, calls: 100 },
        agent: m(a),
        random: m(r),
        sim_agent: m(a * 1.1),
        sim_random: m(r),
        inline: index.is_multiple_of(2).then_some((LoadSetting { threads: 7, calls: 200 }, m(a))),
    }
}

#[test]
fn outcomes_round_trip_and_must_belong_to_the_plan() {
    let p = Path::new("v.csv");
    let plan = sample_plan(&s1(), p, DECISIONS, 3, 1).unwrap();
    let os: Vec<Outcome> = plan.iter().map(|s| outcome(s.index, s.row, 100.0, 50.0)).collect();
    let text: String =
        std::iter::once(CSV_HEADER.to_string()).chain(os.iter().map(Outcome::to_csv)).collect::<Vec<_>>().join("\n");
    let f = sfr2l_core::Failure::default();
    assert_eq!(read_outcomes(p, &text, &plan, &f).unwrap(), os);
    let gateway = sfr2l_core::Failure::new(&[503, 504]).unwrap();
    let e = read_outcomes(p, &text, &plan, &gateway).unwrap_err().to_string();
    assert!(e.contains("line 1 is not the header of a validation counting 503,504"), "{e}");
    assert!(csv_header(&gateway).contains(",agent_rate_503_504,"));
    let other = sample_plan(&s1(), p, DECISIONS, 3, 2).unwrap();
    if other.iter().zip(&plan).any(|(a, b)| a.row != b.row) {
        let e = read_outcomes(p, &text, &other, &f).unwrap_err().to_string();
        assert!(e.contains("another --seed"), "{e}");
    }
    let torn = format!("{text}\n{}", &os[0].to_csv()[..10]);
    assert_eq!(read_outcomes(p, &torn, &plan, &f).unwrap(), os, "a torn last line is dropped");
    let e = read_outcomes(p, &format!("{torn}\n"), &plan, &f).unwrap_err().to_string();
    assert!(e.contains("fields"), "{e}");
    let e = read_outcomes(p, "x,y\n", &plan, &f).unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn ratio_interval_brackets_the_ratio_and_shrinks_with_samples() {
    let pairs: Vec<(f64, f64)> =
        (0..40).map(|i| (100.0 + (i % 7) as f64 * 10.0, 50.0 + (i % 5) as f64 * 5.0)).collect();
    let r = Ratio::of(&pairs, 3);
    assert!(r.lo <= r.ratio && r.ratio <= r.hi && r.lo < r.hi, "{r:?}");
    let many: Vec<(f64, f64)> = pairs.iter().cycle().take(400).copied().collect();
    let r2 = Ratio::of(&many, 3);
    assert!((r2.ratio - r.ratio).abs() < 1e-12);
    assert!(r2.hi - r2.lo < (r.hi - r.lo) * 0.6, "{r:?} {r2:?}");
    assert!(r.overlaps(&r2));
    assert!(!Ratio { ratio: 1.0, lo: 0.9, hi: 1.1 }.overlaps(&Ratio { ratio: 2.0, lo: 1.5, hi: 2.5 }));
}

#[test]
fn the_val_section_goes_after_the_sim_table_and_is_replaced_in_place() {
    let t5 =
        "# T5\n\nMade by x.\n\n## Sim.\n\n| c | S1 |\n|---|---|\n| Call | 1.0 |\n\n## Optimum\n\n| c |\n\n## History\n";
    let a = with_val_section(t5, "\n## Val.\n\n| c | S1 |\n| Call | 1.1 |\n");
    let (sim, val, opt) = (a.find("## Sim.").unwrap(), a.find("## Val.").unwrap(), a.find("## Optimum").unwrap());
    assert!(sim < val && val < opt, "{a}");
    let b = with_val_section(&a, "\n## Val.\n\n| c | S1 |\n| Call | 1.2 |\n");
    assert!(b.contains("| Call | 1.2 |") && !b.contains("| Call | 1.1 |"), "{b}");
    assert_eq!(b.matches(VAL_BEGIN).count(), 1);
    assert_eq!(b.replace("1.2", "1.1"), a);
}

#[test]
fn simulator_error_is_standardised_per_output() {
    let os = vec![outcome(0, 10, 100.0, 50.0)];
    let e = sim_error(&os, [10.0, 0.1]);
    // agent: qps 200 vs 220 -> (20/10)^2 = 4; random: equal -> 0; 503 equal.
    assert!((e.mse_qps - 2.0).abs() < 1e-9 && e.mse_503 == 0.0 && (e.mse - 1.0).abs() < 1e-9, "{e:?}");
    assert_eq!(e.runs, 2);
}

#[test]
fn a_plan_of_a_study_with_fewer_fields_reads_its_columns_and_leaves_the_rest_unset() {
    let mut study = s1();
    study.attributes.retain(|a| a.feature == sfr2l_core::Feature::MaxConnections);
    let text = "service,profile,row,max_connections,threads,calls,reward,optimum,random_reward\n0,t,3,4,2,300,1,1,1\n";
    let plan = sample_plan(&study, Path::new("d.csv"), text, 1, 1).unwrap();
    assert_eq!(plan[0].rule.max_connections, 4);
    assert_eq!(plan[0].rule, study.inputs().rule(&[4.0], &TrafficRule::unset(false)));
    assert_eq!(plan[0].fixed, LoadSetting { threads: 2, calls: 300 });
    // The paper's columns are not this study's: its own column must be there.
    let e = sample_plan(&study, Path::new("d.csv"), "service,row,threads,calls\n", 1, 1).unwrap_err().to_string();
    assert!(e.contains("no column `max_connections`"), "{e}");
}
