//! The bound on open runs: exact for any `max_open_runs`, the oldest closed first, nothing lost.

use super::*;

/// A client announcing many distinct runs that never complete: each shard keeps at most its
/// cap of open runs, the oldest are closed (once each) and handed back for their records.
#[test]
fn open_runs_are_bounded_and_the_oldest_closed() {
    let s = init();
    let max = 4 * SHARDS as u32; // 4 per shard
    let mut evicted = Vec::new();
    for i in 0..2_000u64 {
        let mut c = RunCounters::default();
        c.record(RunAnnounce { threads: 1, calls: 5 }, 200, 0, i + 1, i + 1);
        evicted.extend(merge_run(&s, &sh(max), &format!("flood-{i}"), &c).unwrap().evicted);
    }
    let tables = shard_runs(&s);
    for (i, t) in tables.iter().enumerate() {
        assert!(t.values().filter(|c| !c.emitted).count() <= sh(max).cap(i));
        assert!(t.len() <= 2 * sh(max).cap(i));
    }
    let open: usize = tables.iter().map(|t| t.values().filter(|c| !c.emitted).count()).sum();
    assert_eq!(evicted.len() + open, 2_000, "every run is either still open or closed exactly once");
    let mut names: Vec<&String> = evicted.iter().map(|(r, _)| r).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), evicted.len());
    assert!(evicted.iter().all(|(_, c)| !c.is_complete()));
    // the newest runs survive: the last one of each shard is still open
    assert!(tables.iter().flat_map(|t| t.keys()).any(|r| r == "flood-1999"));
}

/// A completed run survives a flood of other runs as emitted (late responses stay late) until the
/// shard's emitted share is full; a run in progress is closed only when it is the oldest.
#[test]
fn an_active_run_outlives_older_ones() {
    let s = init();
    let a = RunAnnounce { threads: 1, calls: 1_000 };
    let mut active = RunCounters::default();
    active.record(a, 200, 0, 1, 1);
    merge_run(&s, &sh(2 * SHARDS as u32), "active", &active).unwrap();
    let shard = shard_of("active");
    let others: Vec<String> = (0..10_000).map(|i| format!("o-{i}")).filter(|r| shard_of(r) == shard).take(3).collect();
    for (i, r) in others.iter().enumerate() {
        let mut c = RunCounters::default();
        c.record(a, 200, 0, 10 + i as u64, 10 + i as u64);
        // a later share of the active run keeps it the newest
        let mut more = RunCounters::default();
        more.record(a, 200, 0, 100 + i as u64, 100 + i as u64);
        let m = merge_run(&s, &sh(2 * SHARDS as u32), r, &c).unwrap();
        assert!(m.evicted.iter().all(|(e, _)| e != "active"), "{m:?}");
        merge_run(&s, &sh(2 * SHARDS as u32), "active", &more).unwrap();
    }
    assert!(shard_runs(&s)[shard].get("active").is_some_and(|c| !c.emitted));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of merges of any runs: the bound holds, and no response is lost or
        /// counted twice (open + emitted + evicted tables add up to what was merged).
        #[test]
        fn bound_and_conservation(ops in prop::collection::vec((0u32..200, 1u32..4, 0u64..1_000), 1..300),
                                  max in 64u32..200) {
            let s = init();
            let mut merged = 0u64;
            let mut evicted = 0u64;
            for (run, calls, t) in ops {
                let mut c = RunCounters::default();
                c.record(RunAnnounce { threads: 1, calls }, 200, 0, t + 1, t + 1);
                merged += 1;
                let m = merge_run(&s, &sh(max), &format!("r{run}"), &c).unwrap();
                evicted += m.evicted.len() as u64;
                for (i, t) in shard_runs(&s).iter().enumerate() {
                    prop_assert!(t.values().filter(|c| !c.emitted).count() <= sh(max).cap(i));
                }
            }
            let kept: u64 = shard_runs(&s).iter().flat_map(|t| t.values()).map(|c| c.responses()).sum();
            prop_assert!(kept <= merged);
            prop_assert!(evicted <= merged);
        }

        /// Merging a shard's runs in one CAS round (the filter's flush) leaves the same bytes,
        /// outcomes and closed runs as merging them one by one.
        #[test]
        fn a_batched_merge_equals_merges_one_by_one(ops in prop::collection::vec((0u32..120, 1u32..4, 0u64..1_000), 1..200),
                                                    max in 64u32..200, batch in 1usize..40) {
            let (one, many) = (init(), init());
            let (mut out1, mut out2) = (Vec::new(), Vec::new());
            let (mut ev1, mut ev2) = (Vec::new(), Vec::new());
            let ops: Vec<(String, RunCounters)> = ops.into_iter().map(|(run, calls, t)| {
                let mut c = RunCounters::default();
                c.record(RunAnnounce { threads: 1, calls }, 200, 0, t + 1, t + 1);
                (format!("r{run}"), c)
            }).collect();
            for chunk in ops.chunks(batch) {
                for (run, c) in chunk {
                    let m = merge_run(&one, &sh(max), run, c).unwrap();
                    out1.push((run.clone(), m.outcome));
                    ev1.extend(m.evicted);
                }
                let mut by_shard: std::collections::BTreeMap<usize, Vec<(&str, &RunCounters)>> = Default::default();
                for (run, c) in chunk {
                    by_shard.entry(shard_of(run)).or_default().push((run.as_str(), c));
                }
                for (shard, shares) in by_shard {
                    let m = merge_shard(&many, &sh(max), shard, &shares).unwrap();
                    out2.extend(shares.iter().map(|(r, _)| r.to_string()).zip(m.outcomes));
                    ev2.extend(m.evicted);
                }
            }
            out1.sort_by(|a, b| a.0.cmp(&b.0));
            out2.sort_by(|a, b| a.0.cmp(&b.0));
            ev1.sort_by(|a, b| a.0.cmp(&b.0));
            ev2.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(out1, out2);
            prop_assert_eq!(ev1, ev2);
            for i in 0..SHARDS {
                prop_assert_eq!(one.get(&shard_key(i)).unwrap().unwrap().0, many.get(&shard_key(i)).unwrap().unwrap().0);
            }
        }
    }
}

fn open_runs(s: &MemoryStore) -> usize {
    shard_runs(s).iter().map(|t| t.values().filter(|c| !c.emitted).count()).sum()
}

/// The bound is exact for bounds that are not multiples of 64: never more than `max` open runs
/// at any moment, and exactly `max` once every table holds its share; every run is either still
/// open or closed once.
#[test]
fn the_bound_is_exact_for_any_max() {
    for max in [64u32, 100, 1000, 1025] {
        let s = init();
        let n = 12 * max as u64;
        let mut evicted = 0usize;
        for i in 0..n {
            evicted += merge_run(&s, &sh(max), &format!("flood-{i}"), &one_response(i)).unwrap().evicted.len();
            if i % 101 == 0 {
                let open = open_runs(&s);
                assert!(open <= max as usize, "max {max}: {open} runs open after {i} runs");
            }
        }
        assert_eq!(open_runs(&s), max as usize, "max {max}: every table holds its share");
        assert_eq!(evicted + max as usize, n as usize, "max {max}");
    }
}
