//! The CAS merge against the in-memory store with Envoy's semantics.
use super::memory::MemoryStore;
use super::*;
use crate::counters::RunAnnounce;

const A: RunAnnounce = RunAnnounce { threads: 2, calls: 4 };

fn share(codes: &[u16]) -> RunCounters {
    let mut c = RunCounters::default();
    for (i, code) in codes.iter().enumerate() {
        c.record(A, *code, 0, 10 + i as u64, 20 + i as u64);
    }
    c
}

fn init() -> MemoryStore {
    let s = MemoryStore::default();
    init_shared(&s).unwrap();
    s
}

/// The process's shard key in these tests.
const KEY: ShardKey = ShardKey::new(*b"store-tests-key!");

fn sh(max_open_runs: u32) -> Sharding {
    Sharding { key: KEY, max_open_runs }
}

fn shard_of(run: &str) -> usize {
    KEY.shard_of(run)
}

/// Merges with the default bound and returns the outcome.
fn merge(s: &MemoryStore, run: &str, share: &RunCounters) -> MergeOutcome {
    merge_run(s, &sh(1024), run, share).unwrap().outcome
}

fn completed(o: MergeOutcome) -> RunCounters {
    match o {
        MergeOutcome::Completed(c) => c,
        o => panic!("{o:?}"),
    }
}

#[test]
fn exactly_one_merge_completes() {
    let s = init();
    assert_eq!(merge(&s, "r", &share(&[200])), MergeOutcome::Pending { late: false });
    *s.interleave.borrow_mut() = 3; // contention from "other workers"
    assert_eq!(merge(&s, "r", &share(&[503, 200])), MergeOutcome::Pending { late: false });
    let c = completed(merge(&s, "r", &share(&[200])));
    assert_eq!(c.responses(), 4);
    assert_eq!(c.count(503), 1);
    // a straggler after completion is late, never a second record
    assert_eq!(merge(&s, "r", &share(&[200])), MergeOutcome::Pending { late: true });
}

#[test]
fn missing_entries_are_never_created_by_a_merge() {
    // Envoy creates missing keys unconditionally: two first writers would overwrite each other.
    let s = MemoryStore::default();
    assert!(matches!(merge_run(&s, &sh(1024), "r", &share(&[200])), Err(MergeError::NotInitialised(_))));
    init_shared(&s).unwrap();
    merge(&s, "r", &share(&[200]));
    init_shared(&s).unwrap(); // a later VM start keeps existing data
    assert_eq!(merge(&s, "r", &share(&[200, 200])), MergeOutcome::Pending { late: false });
    assert_eq!(completed(merge(&s, "r", &share(&[200]))).responses(), 4);
}

#[test]
fn runs_in_one_shard_stay_apart() {
    let s = init();
    let (a, b) = (
        "run-a",
        (0..1000).map(|i| format!("run-{i}")).find(|r| shard_of(r) == shard_of("run-a") && r != "run-a").unwrap(),
    );
    merge(&s, a, &share(&[200, 200]));
    merge(&s, &b, &share(&[503, 503, 503]));
    assert_eq!(completed(merge(&s, &b, &share(&[200]))).count(503), 3);
    assert_eq!(completed(merge(&s, a, &share(&[200, 200]))).count(200), 4);
}

#[test]
fn idle_claim_is_exclusive_and_prunes() {
    let s = init();
    merge(&s, "r", &share(&[200]));
    assert!(claim_idle_runs(&s, 25, 100).unwrap().claimed.is_empty()); // not idle yet
    let c = claim_idle_runs(&s, 1_000, 100).unwrap().claimed;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].1.responses(), 1);
    assert!(claim_idle_runs(&s, 2_000, 100).unwrap().claimed.is_empty()); // already claimed
    claim_idle_runs(&s, KEEP_EMITTED_NS + 10_000, 100).unwrap();
    let all: usize = (0..SHARDS).map(|i| s.get(&shard_key(i)).unwrap().map(|v| v.0.len()).unwrap_or(0)).sum();
    assert_eq!(all, 0, "emitted runs are pruned");
}

#[test]
fn a_batch_with_a_run_of_another_shard_is_refused() {
    let s = init();
    let (a, b) = ("run-a", (0..100).map(|i| format!("b{i}")).find(|r| shard_of(r) != shard_of("run-a")).unwrap());
    let (ca, cb) = (share(&[200]), share(&[200]));
    let err = merge_shard(&s, &sh(1024), shard_of(a), &[(a, &ca), (&b, &cb)]).unwrap_err();
    assert!(matches!(err, MergeError::Corrupt(_, ref m) if m.contains("belongs to shard")), "{err:?}");
    assert_eq!(merge(&s, a, &share(&[200])), MergeOutcome::Pending { late: false }, "nothing was written");
}

#[test]
fn endless_contention_is_an_error() {
    let s = init();
    *s.interleave.borrow_mut() = u32::MAX;
    assert!(matches!(merge_run(&s, &sh(1024), "r", &share(&[200])), Err(MergeError::Contended(_))));
}

#[test]
fn corrupt_entry_is_reported() {
    let s = init();
    s.set(&shard_key(shard_of("r")), b"not json", None).unwrap();
    assert!(matches!(merge_run(&s, &sh(1024), "r", &share(&[200])), Err(MergeError::Corrupt(..))));
}

#[test]
fn window_merges() {
    let s = init();
    let mut w = RollingWindow::new(4);
    w.record(5_000_000_000, 503);
    merge_window(&s, &w).unwrap();
    let merged = merge_window(&s, &w).unwrap();
    assert_eq!(merged.buckets.iter().map(|b| b.c503).sum::<u64>(), 2);
}

fn shard_runs(s: &MemoryStore) -> Vec<RunTable> {
    (0..SHARDS)
        .map(|i| match s.get(&shard_key(i)).unwrap() {
            Some((v, _)) if !v.is_empty() => table::decode(&v).unwrap(),
            _ => RunTable::new(),
        })
        .collect()
}

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

/// A JSON table left by an older filter (a rolling upgrade) is merged into, and rewritten in the
/// binary encoding: nothing in it is lost.
#[test]
fn a_legacy_json_table_is_merged_and_rewritten() {
    let s = init();
    let key = shard_key(shard_of("r"));
    let mut old = RunTable::new();
    old.insert("r".to_string(), share(&[200, 503]));
    s.set(&key, &serde_json::to_vec(&old).unwrap(), None).unwrap();
    let c = completed(merge(&s, "r", &share(&[200, 200])));
    assert_eq!((c.count(200), c.count(503)), (3, 1));
    assert_eq!(s.get(&key).unwrap().unwrap().0[0], table::MAGIC);
}

fn open_runs(s: &MemoryStore) -> usize {
    shard_runs(s).iter().map(|t| t.values().filter(|c| !c.emitted).count()).sum()
}

fn one_response(t: u64) -> RunCounters {
    let mut c = RunCounters::default();
    c.record(RunAnnounce { threads: 1, calls: 1_000 }, 200, 0, t + 1, t + 1);
    c
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

/// How run ids a client sends in practice spread: long shared prefixes, ids that differ in their
/// last byte, plain numbers. They fall into tables as random ids do (the most loaded of 64 tables
/// holds about 27 of 1,024 runs, 16 on average; the test allows 36); a hash of a prefix, or one
/// without mixing, puts them in a few tables.
#[test]
fn skewed_ids_spread_like_random_ones() {
    let families: [Box<dyn Fn(usize) -> String>; 4] = [
        Box::new(|i| format!("loadtest-2026-12-07T10:00:00Z-checkout-service-v2-{i:04}")),
        Box::new(|i| format!("run-{}", char::from(b'!' + (i % 94) as u8)).repeat(1 + i / 94)),
        Box::new(|i| format!("{}", i * 64)),
        Box::new(|i| format!("{:0>40}", i << 6)),
    ];
    for (f, family) in families.iter().enumerate() {
        let mut load = [0usize; SHARDS];
        let ids: std::collections::BTreeSet<String> = (0..1024).map(family).collect();
        assert_eq!(ids.len(), 1024);
        for id in &ids {
            load[shard_of(id)] += 1;
        }
        let most = load.iter().max().unwrap();
        assert!(*most <= 36, "family {f}: {most} of 1,024 ids in one table: {load:?}");
    }
}

/// An adversary who knows the hash function (FNV-1a before, SipHash-2-4 now) but not the key
/// crafts ids for the table of a run in progress, to close it early. With the key, its ids fall
/// anywhere and the run stays open; had it guessed the key, the same flood would close the run.
#[test]
fn an_adversary_without_the_key_cannot_evict_a_chosen_run() {
    let fnv = |run: &str| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in run.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % SHARDS as u64) as usize
    };
    let guesses = [ShardKey::new([0; 16]), ShardKey::new(*b"sfr2l/shard_key!")];
    let victim = "victim-run";
    let crafted = |target: &dyn Fn(&str) -> usize| -> Vec<String> {
        let want = target(victim);
        (0..).map(|i| format!("evil-{i}")).filter(|r| target(r) == want).take(200).collect()
    };
    let mut floods: Vec<Vec<String>> = vec![crafted(&fnv)];
    floods.extend(guesses.iter().map(|g| crafted(&|r: &str| g.shard_of(r))));
    let attack = |key: ShardKey, flood: &[String]| -> bool {
        let s = init();
        let sharding = Sharding { key, max_open_runs: 1024 };
        merge_run(&s, &sharding, victim, &one_response(0)).unwrap();
        let mut closed = false;
        for (i, r) in flood.iter().enumerate() {
            let m = merge_run(&s, &sharding, r, &one_response(1 + i as u64)).unwrap();
            closed |= m.evicted.iter().any(|(e, _)| e == victim);
        }
        closed
    };
    for (n, flood) in floods.iter().enumerate() {
        assert!(!attack(KEY, flood), "flood {n}: 200 crafted ids closed the victim under the secret key");
    }
    for (guess, flood) in guesses.iter().zip(&floods[1..]) {
        assert!(attack(*guess, flood), "had the key been guessed, the flood would close the victim");
    }
}

/// A store whose first read of the shard key finds nothing, and lets another VM create the key
/// right after that read: the race of two VMs starting together.
struct Racing<'a> {
    inner: &'a MemoryStore,
    other_vm: std::cell::RefCell<Option<OtherVm<'a>>>,
}

/// What the other VM does when it gets its turn.
type OtherVm<'a> = Box<dyn FnOnce(&MemoryStore) + 'a>;

impl SharedStore for Racing<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        let v = self.inner.get(key)?;
        if key == SHARD_KEY_ENTRY && v.is_none() {
            if let Some(f) = self.other_vm.borrow_mut().take() {
                f(self.inner);
            }
        }
        Ok(v)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        self.inner.set(key, value, cas)
    }
}

/// Every VM uses the key that was stored first, also when another VM creates it between this
/// VM's read and its write; a damaged entry is replaced.
#[test]
fn every_vm_adopts_the_first_shard_key() {
    let s = init();
    let first = std::cell::Cell::new(None);
    let racing = Racing {
        inner: &s,
        other_vm: std::cell::RefCell::new(Some(Box::new(|st: &MemoryStore| {
            first.set(Some(adopt_shard_key(st, [1; 16]).unwrap()));
        }))),
    };
    let late = adopt_shard_key(&racing, [2; 16]).unwrap();
    assert_eq!(Some(late), first.get(), "both VMs hold one key");
    assert_eq!(late, ShardKey::new([1; 16]));
    assert_eq!(adopt_shard_key(&s, [3; 16]).unwrap(), late, "a VM started later adopts it too");

    s.set(SHARD_KEY_ENTRY, b"short", None).unwrap();
    assert_eq!(adopt_shard_key(&s, [4; 16]).unwrap(), ShardKey::new([4; 16]));
    let fresh = MemoryStore::default();
    assert!(matches!(adopt_shard_key(&fresh, [5; 16]), Err(MergeError::NotInitialised(_))));
}
