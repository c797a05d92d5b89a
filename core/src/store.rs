//! Exact aggregation across Envoy worker VMs through the host's shared data (compare-and-swap).
//!
//! Each worker VM merges its share of a run into the run table of the run's shard (a shared entry
//! created at VM start) with a CAS loop. The merge that makes the run complete also sets `emitted`
//! in the same CAS write, so exactly one VM writes the trace record. Runs that never complete are closed
//! by the idle timeout, again claimed through CAS. The host side is the [`SharedStore`] trait.

use crate::counters::RunCounters;
use crate::window::RollingWindow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The entry changed since it was read.
    CasMismatch,
    /// Any other host failure.
    Host(String),
}

/// Host shared data: `get` returns the value and its CAS token.
pub trait SharedStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// `cas = None` writes unconditionally; `Some(token)` fails with `CasMismatch` if stale.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// How many CAS rounds one update may take before it gives up (and counts an error).
pub const MAX_CAS_ROUNDS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("shared data host error: {0}")]
    Host(String),
    #[error("shared entry {0} stayed contended for {MAX_CAS_ROUNDS} rounds")]
    Contended(String),
    #[error("shared entry {0} is corrupt: {1}")]
    Corrupt(String, String),
    #[error("shared entry {0} was not created at VM start")]
    NotInitialised(String),
}

/// Number of shared entries that hold the run tables (runs are spread by a hash of their id).
pub const SHARDS: usize = 16;
pub const WINDOW_KEY: &str = "sfr2l/window";
/// Emitted runs are kept this long (for late-response detection), then pruned.
pub const KEEP_EMITTED_NS: u64 = 120_000_000_000;

pub fn shard_key(i: usize) -> String {
    format!("sfr2l/runs/{i}")
}

/// FNV-1a: the same shard for a run on every VM.
pub fn shard_of(run: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

/// Runs of one shard, by id.
pub type RunTable = std::collections::BTreeMap<String, RunCounters>;

fn host_err(e: StoreError) -> MergeError {
    MergeError::Host(format!("{e:?}"))
}

/// Creates the shared entries that do not exist yet. Envoy creates a missing key
/// unconditionally (CAS only guards existing keys), so every entry that several workers update
/// is created once at VM start, before traffic, and only ever updated with CAS afterwards.
pub fn init_shared<S: SharedStore>(store: &S) -> Result<(), MergeError> {
    let singles = [WINDOW_KEY, crate::inline::CLAIM_KEY, crate::inline::VM_SEQ_KEY];
    let keys = (0..SHARDS).map(shard_key).chain(singles.iter().map(|k| k.to_string()));
    for key in keys {
        if store.get(&key).map_err(host_err)?.is_none() {
            store.set(&key, b"", None).map_err(host_err)?;
        }
    }
    Ok(())
}

fn decode_table(key: &str, bytes: Option<&[u8]>) -> Result<RunTable, MergeError> {
    match bytes {
        None => Ok(RunTable::new()),
        Some(b) => serde_json::from_slice(b).map_err(|e| MergeError::Corrupt(key.to_string(), e.to_string())),
    }
}

fn encode_table(t: &RunTable) -> Vec<u8> {
    if t.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(t).unwrap_or_default()
    }
}

/// Read-modify-write of an existing entry with CAS; `update` sees `None` for an empty value and
/// may run several times. A missing entry is `NotInitialised`, never created here.
pub fn cas_update<S: SharedStore, T>(
    store: &S,
    key: &str,
    mut update: impl FnMut(Option<&[u8]>) -> Result<(Vec<u8>, T), MergeError>,
) -> Result<T, MergeError> {
    for _ in 0..MAX_CAS_ROUNDS {
        let Some((value, cas)) = store.get(key).map_err(host_err)? else {
            return Err(MergeError::NotInitialised(key.to_string()));
        };
        let (new, out) = update(if value.is_empty() { None } else { Some(value.as_slice()) })?;
        match store.set(key, &new, Some(cas)) {
            Ok(()) => return Ok(out),
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Host(h)) => return Err(MergeError::Host(h)),
        }
    }
    Err(MergeError::Contended(key.to_string()))
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeOutcome {
    /// This merge completed the run: the caller writes the record (exactly once).
    Completed(RunCounters),
    /// Still waiting for responses (or already emitted: then `late` is true).
    Pending { late: bool },
}

/// Merges a worker's local share of `run` into its shard.
pub fn merge_run<S: SharedStore>(store: &S, run: &str, share: &RunCounters) -> Result<MergeOutcome, MergeError> {
    let key = shard_key(shard_of(run));
    cas_update(store, &key, |cur| {
        let mut table = decode_table(&key, cur)?;
        let total = table.entry(run.to_string()).or_default();
        let was_emitted = total.emitted;
        total.merge(share);
        let outcome = if !was_emitted && total.is_complete() {
            total.emitted = true;
            MergeOutcome::Completed(total.clone())
        } else {
            MergeOutcome::Pending { late: was_emitted }
        };
        Ok((encode_table(&table), outcome))
    })
}

/// Claims every run idle for `idle_ns` (not yet emitted) for its idle-timeout record, and
/// prunes emitted runs older than [`KEEP_EMITTED_NS`]. Each run is claimed by one caller only.
pub fn claim_idle_runs<S: SharedStore>(
    store: &S,
    now_ns: u64,
    idle_ns: u64,
) -> Result<Vec<(String, RunCounters)>, MergeError> {
    let idle = |c: &RunCounters| !c.emitted && now_ns.saturating_sub(c.last_ns) >= idle_ns;
    let stale = |c: &RunCounters| c.emitted && now_ns.saturating_sub(c.last_ns) >= KEEP_EMITTED_NS;
    let mut out = Vec::new();
    for i in 0..SHARDS {
        let key = shard_key(i);
        let needs = match store.get(&key).map_err(host_err)? {
            Some((v, _)) if !v.is_empty() => decode_table(&key, Some(&v))?.values().any(|c| idle(c) || stale(c)),
            _ => false,
        };
        if !needs {
            continue;
        }
        let claimed = cas_update(store, &key, |cur| {
            let mut table = decode_table(&key, cur)?;
            table.retain(|_, c| !stale(c));
            let mut claimed = Vec::new();
            for (run, c) in table.iter_mut() {
                if idle(c) {
                    c.emitted = true;
                    claimed.push((run.clone(), c.clone()));
                }
            }
            Ok((encode_table(&table), claimed))
        })?;
        out.extend(claimed);
    }
    Ok(out)
}

/// The shared window, read only.
pub fn open_window<S: SharedStore>(store: &S) -> Result<Option<RollingWindow>, MergeError> {
    let cur = store.get(WINDOW_KEY).map_err(host_err)?;
    Ok(cur.and_then(|(v, _)| serde_json::from_slice(&v).ok()))
}

/// Merges a worker's window into the shared window and returns the merged window.
pub fn merge_window<S: SharedStore>(store: &S, local: &RollingWindow) -> Result<RollingWindow, MergeError> {
    cas_update(store, WINDOW_KEY, |cur| {
        let mut w = cur
            .and_then(|b| serde_json::from_slice::<RollingWindow>(b).ok())
            .unwrap_or_else(|| RollingWindow::new(local.buckets.len()));
        w.merge(local);
        Ok((serde_json::to_vec(&w).unwrap_or_default(), w))
    })
}

pub mod memory {
    //! An in-memory store with Envoy's CAS semantics: the test double of host shared data.
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct MemoryStore {
        pub data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        /// Simulates another VM writing between get and set: fail this many sets.
        pub interleave: RefCell<u32>,
    }

    impl SharedStore for MemoryStore {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            Ok(self.data.borrow().get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            let mut d = self.data.borrow_mut();
            let cur = d.get(key).map(|(_, c)| *c).unwrap_or(0);
            {
                let mut i = self.interleave.borrow_mut();
                if *i > 0 {
                    *i -= 1;
                    let old = d.get(key).map(|v| v.0.clone()).unwrap_or_default();
                    d.insert(key.to_string(), (old, cur + 1));
                    return Err(StoreError::CasMismatch);
                }
            }
            if let Some(c) = cas {
                if c != 0 && c != cur {
                    return Err(StoreError::CasMismatch);
                }
            }
            d.insert(key.to_string(), (value.to_vec(), cur + 1));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
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

    fn completed(o: MergeOutcome) -> RunCounters {
        match o {
            MergeOutcome::Completed(c) => c,
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn exactly_one_merge_completes() {
        let s = init();
        assert_eq!(merge_run(&s, "r", &share(&[200])).unwrap(), MergeOutcome::Pending { late: false });
        *s.interleave.borrow_mut() = 3; // contention from "other workers"
        assert_eq!(merge_run(&s, "r", &share(&[503, 200])).unwrap(), MergeOutcome::Pending { late: false });
        let c = completed(merge_run(&s, "r", &share(&[200])).unwrap());
        assert_eq!(c.responses(), 4);
        assert_eq!(c.count(503), 1);
        // a straggler after completion is late, never a second record
        assert_eq!(merge_run(&s, "r", &share(&[200])).unwrap(), MergeOutcome::Pending { late: true });
    }

    #[test]
    fn missing_entries_are_never_created_by_a_merge() {
        // Envoy creates missing keys unconditionally: two first writers would overwrite each other.
        let s = MemoryStore::default();
        assert!(matches!(merge_run(&s, "r", &share(&[200])), Err(MergeError::NotInitialised(_))));
        init_shared(&s).unwrap();
        merge_run(&s, "r", &share(&[200])).unwrap();
        init_shared(&s).unwrap(); // a later VM start keeps existing data
        assert_eq!(merge_run(&s, "r", &share(&[200, 200])).unwrap(), MergeOutcome::Pending { late: false });
        assert_eq!(completed(merge_run(&s, "r", &share(&[200])).unwrap()).responses(), 4);
    }

    #[test]
    fn runs_in_one_shard_stay_apart() {
        let s = init();
        let (a, b) = (
            "run-a",
            (0..1000).map(|i| format!("run-{i}")).find(|r| shard_of(r) == shard_of("run-a") && r != "run-a").unwrap(),
        );
        merge_run(&s, a, &share(&[200, 200])).unwrap();
        merge_run(&s, &b, &share(&[503, 503, 503])).unwrap();
        assert_eq!(completed(merge_run(&s, &b, &share(&[200])).unwrap()).count(503), 3);
        assert_eq!(completed(merge_run(&s, a, &share(&[200, 200])).unwrap()).count(200), 4);
    }

    #[test]
    fn idle_claim_is_exclusive_and_prunes() {
        let s = init();
        merge_run(&s, "r", &share(&[200])).unwrap();
        assert!(claim_idle_runs(&s, 25, 100).unwrap().is_empty()); // not idle yet
        let c = claim_idle_runs(&s, 1_000, 100).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].1.responses(), 1);
        assert!(claim_idle_runs(&s, 2_000, 100).unwrap().is_empty()); // already claimed
        claim_idle_runs(&s, KEEP_EMITTED_NS + 10_000, 100).unwrap();
        let all: usize = (0..SHARDS).map(|i| s.get(&shard_key(i)).unwrap().map(|v| v.0.len()).unwrap_or(0)).sum();
        assert_eq!(all, 0, "emitted runs are pruned");
    }

    #[test]
    fn endless_contention_is_an_error() {
        let s = init();
        *s.interleave.borrow_mut() = u32::MAX;
        assert!(matches!(merge_run(&s, "r", &share(&[200])), Err(MergeError::Contended(_))));
    }

    #[test]
    fn corrupt_entry_is_reported() {
        let s = init();
        s.set(&shard_key(shard_of("r")), b"not json", None).unwrap();
        assert!(matches!(merge_run(&s, "r", &share(&[200])), Err(MergeError::Corrupt(..))));
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
}
