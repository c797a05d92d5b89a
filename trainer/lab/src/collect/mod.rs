//! `sfr2l lab collect`: draw rules and loads from a profile, run each on the lab, keep a row only
//! if calls sent = responses traced = Envoy's cluster stats, code by code.

pub mod backend;
mod check;
mod file;
mod job;
pub mod pilot;

pub use backend::{run_on, Backend, BackendInfo};
pub use check::{check_conservation, delta, lab_faults};
pub use file::{meta_path, DatasetFile, DatasetMeta};
pub use job::{collect_dataset, collect_on, collect_with, CollectJob, Collected};

use crate::mesh::Lab;
use anyhow::{Context, Result};
use sfr2l_core::rng::SplitMix64;
use sfr2l_core::study::Study;
use sfr2l_core::{LoadSetting, TraceRecord, TrafficRule, N_FEATURES};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One planned run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub config_id: String,
    pub repeat: u32,
    pub rule: TrafficRule,
    pub load: LoadSetting,
}

/// The whole collection, fixed by profile, seed and sizes: `repeat_configs` configurations run
/// `repeats` times each (the repeat block, spread over the collection), the rest once each.
pub fn plan(profile: &Study, rows: u32, seed: u64, repeat_configs: u32, repeats: u32) -> Vec<PlanEntry> {
    let mut rng = SplitMix64::new(seed);
    let block = (repeat_configs * repeats).min(rows);
    let repeat_configs = block.checked_div(repeats).unwrap_or(0);
    let singles = rows - repeat_configs * repeats;
    let mut out = Vec::with_capacity(rows as usize);
    let draw = |rng: &mut SplitMix64| {
        let u: [f64; N_FEATURES] = std::array::from_fn(|_| rng.unit());
        profile.draw(&u)
    };
    for c in 0..repeat_configs {
        let (rule, load) = draw(&mut rng);
        for r in 0..repeats {
            out.push(PlanEntry { config_id: format!("{}-r{c:03}", profile.name), repeat: r, rule, load });
        }
    }
    for c in 0..singles {
        let (rule, load) = draw(&mut rng);
        out.push(PlanEntry { config_id: format!("{}-c{c:05}", profile.name), repeat: 0, rule, load });
    }
    // Fisher-Yates: repeats are spread over the whole collection, so drift counts as noise.
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1);
        out.swap(i, j);
    }
    out
}

/// The repeat block of a collection: `configs` configurations run `repeats` times each
/// (`CONFIGS:REPEATS` on the command line, e.g. `50:4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeats {
    pub configs: u32,
    pub repeats: u32,
}

impl std::str::FromStr for Repeats {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (a, b) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected CONFIGS:REPEATS, e.g. 50:4"))?;
        let configs = a.trim().parse().map_err(|_| format!("{s:?}: CONFIGS is not a number"))?;
        let repeats = b.trim().parse().map_err(|_| format!("{s:?}: REPEATS is not a number"))?;
        Ok(Self { configs, repeats })
    }
}

/// A collection's size, seed and repeat block: the command line's, else the study's; checked.
pub fn sized(
    study: &Study,
    rows: Option<u32>,
    seed: Option<u64>,
    repeats: Option<Repeats>,
) -> Result<(u32, u64, Repeats)> {
    let c = &study.collection;
    let rows = rows.unwrap_or(c.rows);
    if rows == 0 {
        anyhow::bail!("--rows must be >= 1");
    }
    let (configs, times) = c.repeats.unwrap_or((0, 0));
    let repeats = repeats.unwrap_or(Repeats { configs, repeats: times });
    if u64::from(repeats.configs) * u64::from(repeats.repeats) > u64::from(rows) {
        anyhow::bail!("the repeat block {repeats} has more runs than the {rows} rows to collect");
    }
    Ok((rows, seed.unwrap_or(c.seed), repeats))
}

impl std::fmt::Display for Repeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.configs, self.repeats)
    }
}

pub fn load_avg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Result of one measured run.
pub struct RunOutcome {
    pub record: TraceRecord,
    pub overhead: Duration,
}

/// Applies `entry` on the lab, runs the load, ingests the trace and checks conservation.
pub fn run_once(
    lab: &mut Lab,
    entry: &PlanEntry,
    run_id: &str,
    path: &str,
    warmup_calls: u32,
) -> Result<std::result::Result<RunOutcome, String>> {
    backend::run_on(lab, entry, run_id, path, warmup_calls)
}

/// Sets a flag on Ctrl-C / SIGTERM so that the current row finishes and the file stays whole.
pub fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            eprintln!("sfr2l: second interrupt, stopping now");
            std::process::exit(130);
        }
        eprintln!("sfr2l: interrupted: finishing the current run, then stopping (Ctrl-C again to force)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(flag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfr2l_core::counters::{RunAnnounce, RunCounters};
    use sfr2l_core::trace::DatasetRow;
    use std::collections::BTreeMap;

    #[test]
    fn plan_is_deterministic_with_a_spread_repeat_block() {
        let p = sfr2l_files::study::find("s2").unwrap().study;
        let a = plan(&p, 100, 9, 5, 4);
        assert_eq!(a, plan(&p, 100, 9, 5, 4));
        assert_eq!(a.len(), 100);
        let reps: Vec<_> = a.iter().filter(|e| e.config_id.contains("-r")).collect();
        assert_eq!(reps.len(), 20);
        let first = &reps[0];
        let same: Vec<_> = a.iter().filter(|e| e.config_id == first.config_id).collect();
        assert_eq!(same.len(), 4);
        assert!(same.iter().all(|e| e.rule == first.rule && e.load == first.load));
        assert!(a.iter().all(|e| p.check(&e.rule, &e.load).is_ok()));
        // not all repeats at the start
        let pos: Vec<usize> =
            a.iter().enumerate().filter(|(_, e)| e.config_id.contains("-r")).map(|(i, _)| i).collect();
        assert!(*pos.last().unwrap() > 50);
    }

    fn record(codes: &[(u16, u64)], overflow: u64) -> TraceRecord {
        let total: u64 = codes.iter().map(|c| c.1).sum();
        let a = RunAnnounce { threads: 2, calls: total as u32 };
        let mut c = RunCounters::new(a);
        let mut left = overflow;
        for (code, n) in codes {
            for _ in 0..*n {
                let f = if *code == 503 && left > 0 {
                    left -= 1;
                    0x80
                } else {
                    0
                };
                c.record(a, *code, f, 1, 2);
            }
        }
        TraceRecord::from_counters("r", 5, None, &c)
    }

    #[test]
    fn conservation_accepts_exact_and_names_the_mismatch() {
        let rec = record(&[(200, 7), (503, 3)], 2);
        let load: BTreeMap<i32, u64> = [(200, 7), (503, 3)].into();
        let mut cluster: BTreeMap<String, u64> = [
            ("upstream_rq_200".to_string(), 7),
            ("upstream_rq_503".to_string(), 3),
            ("upstream_rq_completed".to_string(), 10),
            ("upstream_rq_pending_overflow".to_string(), 2),
        ]
        .into();
        check_conservation(10, &load, &rec, &cluster, 5).unwrap();
        assert!(check_conservation(10, &load, &rec, &cluster, 6).unwrap_err().contains("generation"));
        cluster.insert("upstream_rq_503".into(), 2);
        assert!(check_conservation(10, &load, &rec, &cluster, 5).unwrap_err().contains("code 503"));
        let bad: BTreeMap<i32, u64> = [(200, 7), (-1, 3)].into();
        assert!(check_conservation(10, &bad, &rec, &cluster, 5).is_err());
    }

    #[test]
    fn dataset_file_resumes_and_drops_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        let all = sfr2l_core::trace::Columns::catalogue();
        let mut f = DatasetFile::open(&p, false, &all).unwrap();
        let rule = sfr2l_files::study::find("s1").unwrap().study.draw(&[0.1; sfr2l_core::N_FEATURES]);
        let row = DatasetRow::new(&all, &rule.0, &rule.1, &record(&[(200, 2)], 0), 0.1, "s1-c00001".into(), 0);
        f.append(&row).unwrap();
        drop(f);
        assert!(DatasetFile::open(&p, false, &all).is_err()); // never overwrites
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("1,2,3"); // hard kill mid-line
        std::fs::write(&p, &text).unwrap();
        // Another study's columns refuse to resume it, naming the header.
        let two = sfr2l_core::trace::Columns {
            inputs: sfr2l_core::Inputs::new(vec![sfr2l_core::Feature::MaxConnections]).unwrap(),
            ..all.clone()
        };
        let e = format!("{:#}", DatasetFile::open(&p, true, &two).err().unwrap());
        assert!(e.contains("s.csv:1: header differs from the study's columns"), "{e}");
        // So do other failure codes: the rate column is named by them.
        let gateway =
            sfr2l_core::trace::Columns { failure: sfr2l_core::Failure::new(&[503, 504]).unwrap(), ..all.clone() };
        let e = format!("{:#}", DatasetFile::open(&p, true, &gateway).err().unwrap());
        assert!(e.contains("expected") && e.contains("rate_503_504"), "{e}");
        let f = DatasetFile::open(&p, true, &all).unwrap();
        assert_eq!(f.rows, 1);
        assert!(f.done.contains(&("s1-c00001".to_string(), 0)));
        assert!(std::fs::read_to_string(&p).unwrap().ends_with('\n'));
    }

    #[test]
    fn resume_rejects_bad_rows_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        let all = sfr2l_core::trace::Columns::catalogue();
        std::fs::write(&p, format!("{}\n1,2\n", all.header().join(","))).unwrap();
        let e = format!("{:#}", DatasetFile::open(&p, true, &all).err().unwrap());
        assert!(e.contains("s.csv:2"), "{e}");
    }
}
