//! `sfr2l lab pilot`: what the inputs move on a lab topology, measured before a full collection.
//!
//! For a few rule sets drawn from the profile, every (threads, calls) cell of the Table 6 grid runs
//! `repeats` times (cells shuffled, repeats spread). The summary is the landscape the agents will
//! see at fixed rules (spread of the 503 rate and of the reward QPS x P503 across the grid, the
//! grid optimum over its mean, i.e. over a random agent), the within-cell share of variance (the
//! noise floor of the data) and the rank correlations of the inputs with the outputs.

use super::{run_once, PlanEntry};
use crate::mesh::Lab;
use anyhow::Result;
use sfr2l_core::reward::reward;
use sfr2l_core::rng::SplitMix64;
use sfr2l_core::study::Study;
use sfr2l_core::trace::{Columns, DatasetRow};
use sfr2l_core::{LoadSetting, TrafficRule, N_FEATURES};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One measured pilot run.
#[derive(Debug, Clone)]
pub struct PilotRow {
    pub rule_set: usize,
    pub rule: TrafficRule,
    pub load: LoadSetting,
    pub row: DatasetRow,
}

/// The runs of a pilot: `rule_sets` rule draws x the profile's grid x `repeats`, in a shuffled order.
pub fn pilot_plan(profile: &Study, rule_sets: usize, repeats: u32, seed: u64) -> Vec<(usize, PlanEntry)> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    for k in 0..rule_sets {
        let u: [f64; N_FEATURES] = std::array::from_fn(|_| rng.unit());
        let (rule, _) = profile.draw(&u);
        for threads in profile.thread_grid.values() {
            for calls in profile.call_grid.values() {
                for r in 0..repeats {
                    let config_id = format!("{}-p{k}-t{threads}-n{calls}", profile.name);
                    out.push((k, PlanEntry { config_id, repeat: r, rule, load: LoadSetting { threads, calls } }));
                }
            }
        }
    }
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1);
        out.swap(i, j);
    }
    out
}

/// Runs the pilot on a started lab; a run that fails conservation is tried again (up to 3 times).
pub fn run_pilot(
    lab: &mut Lab,
    columns: &Columns,
    plan: &[(usize, PlanEntry)],
    path: &str,
    mut progress: impl FnMut(usize),
) -> Result<Vec<PilotRow>> {
    let mut rows = Vec::with_capacity(plan.len());
    for (i, (k, entry)) in plan.iter().enumerate() {
        for t in 0..3 {
            let run_id = format!("pilot-{i}-{t}-g{}", lab.generation() + 1);
            if let Ok(out) = run_once(lab, entry, &run_id, path, 0)? {
                let row = DatasetRow::new(
                    columns,
                    &entry.rule,
                    &entry.load,
                    &out.record,
                    f64::NAN,
                    entry.config_id.clone(),
                    0,
                );
                rows.push(PilotRow { rule_set: *k, rule: entry.rule, load: entry.load, row });
                break;
            }
        }
        progress(i + 1);
    }
    Ok(rows)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn var(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
}

/// Mean unbiased variance inside groups over the variance of all values (the repeat-block share).
pub fn within_share(groups: &BTreeMap<String, Vec<f64>>) -> f64 {
    let all: Vec<f64> = groups.values().flatten().copied().collect();
    let inside: Vec<f64> = groups.values().filter(|g| g.len() > 1).map(|g| var(g)).collect();
    let total = var(&all);
    if total <= 0.0 || inside.is_empty() {
        return 0.0;
    }
    mean(&inside) / total
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (ties get mean ranks); 0 when either side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    let (mx, my) = (mean(&rx), mean(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum::<f64>().sqrt();
    let sy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum::<f64>().sqrt();
    if sx == 0.0 || sy == 0.0 {
        0.0
    } else {
        cov / (sx * sy)
    }
}

/// The landscape at one rule set: per grid cell the mean over repeats.
#[derive(Debug, Clone)]
pub struct Landscape {
    pub rule: TrafficRule,
    pub cells: usize,
    pub p503: (f64, f64, f64),
    pub reward: (f64, f64, f64),
    /// Best cell's mean reward over the grid's mean reward (= over a uniform random agent).
    pub optimum_over_random: f64,
    pub best: LoadSetting,
}

fn min_max_sd(v: &[f64]) -> (f64, f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi, var(v).sqrt())
}

pub fn landscape(rows: &[&PilotRow]) -> Option<Landscape> {
    let first = rows.first()?;
    let mut cells: BTreeMap<(u32, u32), Vec<&DatasetRow>> = BTreeMap::new();
    for r in rows {
        cells.entry((r.load.threads, r.load.calls)).or_default().push(&r.row);
    }
    let mut p503 = Vec::new();
    let mut rew = Vec::new();
    let mut best = (f64::NEG_INFINITY, LoadSetting { threads: 0, calls: 0 });
    for ((threads, calls), rs) in &cells {
        let p = mean(&rs.iter().map(|r| r.failure_rate).collect::<Vec<_>>());
        let q = mean(&rs.iter().map(|r| reward(r.qps, r.failure_rate)).collect::<Vec<_>>());
        if q > best.0 {
            best = (q, LoadSetting { threads: *threads, calls: *calls });
        }
        p503.push(p);
        rew.push(q);
    }
    let m = mean(&rew);
    Some(Landscape {
        rule: first.rule,
        cells: cells.len(),
        p503: min_max_sd(&p503),
        reward: min_max_sd(&rew),
        optimum_over_random: if m > 0.0 { best.0 / m } else { f64::NAN },
        best: best.1,
    })
}

/// The printed report: landscapes, noise shares and rank correlations.
pub fn report(profile: &Study, rows: &[PilotRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "pilot {}: {} runs", profile.name, rows.len());
    let _ = writeln!(
        s,
        "\nlandscape at fixed rules (cell means over repeats; reward = QPS x P(failure), failure = {}):",
        profile.failure()
    );
    // The rule columns are the study's (the fields it lists), the rate its failure codes'.
    let fields = profile.inputs().rules().to_vec();
    let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
    let rate = profile.failure().label();
    let _ = writeln!(
        s,
        "| rules ({}) | cells | {rate} min..max (sd) | reward min..max (sd) | optimum/random | best (threads, calls) |",
        names.join(" ")
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let sets: usize = rows.iter().map(|r| r.rule_set + 1).max().unwrap_or(0);
    for k in 0..sets {
        let mine: Vec<&PilotRow> = rows.iter().filter(|r| r.rule_set == k).collect();
        if let Some(l) = landscape(&mine) {
            let values: Vec<String> = fields.iter().map(|f| format!("{}", l.rule.get(*f))).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {:.3}..{:.3} ({:.3}) | {:.0}..{:.0} ({:.0}) | {:.2} | ({}, {}) |",
                values.join(" "),
                l.cells,
                l.p503.0,
                l.p503.1,
                l.p503.2,
                l.reward.0,
                l.reward.1,
                l.reward.2,
                l.optimum_over_random,
                l.best.threads,
                l.best.calls
            );
        }
    }
    let mut qps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut p: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows {
        qps.entry(r.row.config_id.clone()).or_default().push(r.row.qps);
        p.entry(r.row.config_id.clone()).or_default().push(r.row.failure_rate);
    }
    let all_p: Vec<f64> = rows.iter().map(|r| r.row.failure_rate).collect();
    let _ = writeln!(
        s,
        "\nwithin-cell share of variance: QPS {:.2}, {rate} {:.2} (target <= 0.2); failure share mean {:.3} (sd {:.3})",
        within_share(&qps),
        within_share(&p),
        mean(&all_p),
        var(&all_p).sqrt()
    );
    let _ = writeln!(s, "\nrank correlations (Spearman) with QPS / {rate} / reward:");
    let q: Vec<f64> = rows.iter().map(|r| r.row.qps).collect();
    let w: Vec<f64> = rows.iter().map(|r| reward(r.row.qps, r.row.failure_rate)).collect();
    for (i, f) in profile.inputs().features().iter().enumerate() {
        let x: Vec<f64> = rows.iter().map(|r| r.row.features[i]).collect();
        if x.iter().all(|v| *v == x[0]) {
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<28} {:+.2} / {:+.2} / {:+.2}",
            f.name(),
            spearman(&x, &q),
            spearman(&x, &all_p),
            spearman(&x, &w)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_handles_ties_and_constants() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
    }

    #[test]
    fn within_share_is_noise_over_total() {
        let g: BTreeMap<String, Vec<f64>> =
            [("a".to_string(), vec![1.0, 1.0]), ("b".to_string(), vec![3.0, 3.0])].into();
        assert_eq!(within_share(&g), 0.0);
        let g: BTreeMap<String, Vec<f64>> =
            [("a".to_string(), vec![1.0, 3.0]), ("b".to_string(), vec![1.0, 3.0])].into();
        assert!(within_share(&g) > 1.0 - 1e-9); // all variance is inside the groups
    }

    #[test]
    fn plan_covers_the_grid_per_rule_set() {
        let p = sfr2l_files::study::find("s2").unwrap().study;
        let plan = pilot_plan(&p, 2, 3, 7);
        let cells = p.thread_grid.values().len() * p.call_grid.values().len();
        assert_eq!(plan.len(), 2 * cells * 3);
        assert!(plan.iter().all(|(_, e)| p.check(&e.rule, &e.load).is_ok()));
        let rules: std::collections::BTreeSet<String> = plan.iter().map(|(k, e)| format!("{k}{:?}", e.rule)).collect();
        assert_eq!(rules.len(), 2);
    }

    #[test]
    fn the_report_names_the_studys_fields_and_failure_codes() {
        let mut study = sfr2l_files::study::find("s1").unwrap().study;
        study.attributes.retain(|a| a.feature.index() < 2);
        study.objective.failure_codes = vec![503, 429];
        let columns = study.columns();
        let rows: Vec<PilotRow> = pilot_plan(&study, 1, 1, 3)
            .into_iter()
            .map(|(k, e)| {
                let mut c = sfr2l_core::RunCounters::new(sfr2l_core::counters::RunAnnounce { threads: 1, calls: 4 });
                let a = sfr2l_core::counters::RunAnnounce { threads: 1, calls: 4 };
                for (i, code) in [200, 429, 503, 504].into_iter().enumerate() {
                    c.record(a, code, 0, i as u64 * 1_000_000, (i as u64 + 1) * 1_000_000);
                }
                let rec = sfr2l_core::TraceRecord::from_counters("p", 1, Some(e.rule), &c);
                let row = DatasetRow::new(&columns, &e.rule, &e.load, &rec, 0.0, e.config_id.clone(), 0);
                PilotRow { rule_set: k, rule: e.rule, load: e.load, row }
            })
            .collect();
        assert!(rows.iter().all(|r| r.row.failure_rate == 0.5 && r.row.other_codes == "504:1"));
        let text = report(&study, &rows);
        assert!(
            text.contains("| rules (max_pending_requests max_connections) | cells | 429,503 rate min..max (sd) |"),
            "{text}"
        );
        assert!(text.contains("| 0.500..0.500 (0.000) |"), "{text}");
        assert!(!text.contains("max_requests_per_connection"), "{text}");
    }
}
