//! The CAS merge against the in-memory store with Envoy's semantics; the bounds on open runs
//! (`bounds`) and the shard key and hash (`sharding`) beside it.
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

fn shard_runs(s: &MemoryStore) -> Vec<RunTable> {
    (0..SHARDS)
        .map(|i| match s.get(&shard_key(i)).unwrap() {
            Some((v, _)) if !v.is_empty() => table::decode(&v).unwrap(),
            _ => RunTable::new(),
        })
        .collect()
}

/// One response of a run announced with 1,000 calls, at time `t + 1`.
fn one_response(t: u64) -> RunCounters {
    let mut c = RunCounters::default();
    c.record(RunAnnounce { threads: 1, calls: 1_000 }, 200, 0, t + 1, t + 1);
    c
}

mod bounds;
mod sharding;
