//! Exact aggregation across Envoy worker VMs through the host's shared data (compare-and-swap).
//!
//! Each worker VM accumulates its share of a run locally and merges it into the shared entry
//! `run/<id>` with a CAS loop. The merge that makes the run complete also sets `emitted` in the
//! same CAS write, so exactly one VM writes the trace record. Runs that never complete are closed
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
}

pub fn run_key(run: &str) -> String {
    format!("sfr2l/run/{run}")
}
pub const REGISTRY_KEY: &str = "sfr2l/runs";
pub const WINDOW_KEY: &str = "sfr2l/window";

/// Read-modify-write with CAS. `update` gets the current value (None if absent or empty) and
/// returns the new value plus a result; it may run several times.
pub fn cas_update<S: SharedStore, T>(
    store: &S,
    key: &str,
    mut update: impl FnMut(Option<&[u8]>) -> Result<(Vec<u8>, T), MergeError>,
) -> Result<T, MergeError> {
    for _ in 0..MAX_CAS_ROUNDS {
        let current = store.get(key).map_err(|e| match e {
            StoreError::Host(h) => MergeError::Host(h),
            StoreError::CasMismatch => MergeError::Host("CasMismatch on get".into()),
        })?;
        let (value, cas) = match &current {
            Some((v, cas)) if !v.is_empty() => (Some(v.as_slice()), Some(*cas)),
            Some((_, cas)) => (None, Some(*cas)),
            None => (None, None),
        };
        let (new, out) = update(value)?;
        match store.set(key, &new, cas) {
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
    Pending { new_run: bool, late: bool },
}

/// Merges a worker's local share of `run` into the shared entry.
pub fn merge_run<S: SharedStore>(store: &S, run: &str, share: &RunCounters) -> Result<MergeOutcome, MergeError> {
    let key = run_key(run);
    cas_update(store, &key, |cur| {
        let (mut total, new_run) = match cur {
            Some(bytes) => (RunCounters::decode(bytes).map_err(|e| MergeError::Corrupt(key.clone(), e.to_string()))?, false),
            None => (RunCounters::default(), true),
        };
        let was_emitted = total.emitted;
        total.merge(share);
        let outcome = if !was_emitted && total.is_complete() {
            total.emitted = true;
            MergeOutcome::Completed(total.clone())
        } else {
            MergeOutcome::Pending { new_run, late: was_emitted }
        };
        Ok((total.encode(), outcome))
    })
}

/// Claims an idle run for the idle-timeout record: returns its counters if this caller won.
pub fn claim_idle_run<S: SharedStore>(store: &S, run: &str, now_ns: u64, idle_ns: u64) -> Result<Option<RunCounters>, MergeError> {
    let key = run_key(run);
    cas_update(store, &key, |cur| {
        let Some(bytes) = cur else { return Ok((Vec::new(), None)) };
        let mut total = RunCounters::decode(bytes).map_err(|e| MergeError::Corrupt(key.clone(), e.to_string()))?;
        if total.emitted || now_ns.saturating_sub(total.last_ns) < idle_ns {
            return Ok((bytes.to_vec(), None));
        }
        total.emitted = true;
        Ok((total.encode(), Some(total)))
    })
}

fn decode_registry(bytes: Option<&[u8]>) -> Vec<String> {
    bytes.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default()
}

/// The open runs, for the idle scan.
pub fn open_runs<S: SharedStore>(store: &S) -> Result<Vec<String>, MergeError> {
    let cur = store.get(REGISTRY_KEY).map_err(|e| MergeError::Host(format!("{e:?}")))?;
    Ok(decode_registry(cur.as_ref().map(|(v, _)| v.as_slice()).filter(|v| !v.is_empty())))
}

/// Adds (`open = true`) or removes a run id from the registry of open runs.
pub fn register_run<S: SharedStore>(store: &S, run: &str, open: bool) -> Result<(), MergeError> {
    cas_update(store, REGISTRY_KEY, |cur| {
        let mut ids = decode_registry(cur);
        let present = ids.iter().any(|i| i == run);
        if open && !present {
            ids.push(run.to_string());
        } else if !open {
            ids.retain(|i| i != run);
        }
        Ok((serde_json::to_vec(&ids).unwrap_or_default(), ()))
    })
}

/// The shared window, read only.
pub fn open_window<S: SharedStore>(store: &S) -> Result<Option<RollingWindow>, MergeError> {
    let cur = store.get(WINDOW_KEY).map_err(|e| MergeError::Host(format!("{e:?}")))?;
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

#[cfg(test)]
pub mod memory {
    //! An in-memory store with Envoy's CAS semantics, for tests.
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

    #[test]
    fn exactly_one_merge_completes() {
        let s = MemoryStore::default();
        assert_eq!(merge_run(&s, "r", &share(&[200])).unwrap(), MergeOutcome::Pending { new_run: true, late: false });
        *s.interleave.borrow_mut() = 3; // contention from "other workers"
        assert_eq!(merge_run(&s, "r", &share(&[503, 200])).unwrap(), MergeOutcome::Pending { new_run: false, late: false });
        match merge_run(&s, "r", &share(&[200])).unwrap() {
            MergeOutcome::Completed(c) => {
                assert_eq!(c.responses(), 4);
                assert_eq!(c.count(503), 1);
            }
            o => panic!("{o:?}"),
        }
        // a straggler after completion is late, never a second record
        assert_eq!(merge_run(&s, "r", &share(&[200])).unwrap(), MergeOutcome::Pending { new_run: false, late: true });
    }

    #[test]
    fn idle_claim_is_exclusive_and_waits_for_idle() {
        let s = MemoryStore::default();
        merge_run(&s, "r", &share(&[200])).unwrap();
        assert_eq!(claim_idle_run(&s, "r", 25, 100).unwrap(), None); // not idle yet
        let c = claim_idle_run(&s, "r", 1_000, 100).unwrap().unwrap();
        assert_eq!(c.responses(), 1);
        assert_eq!(claim_idle_run(&s, "r", 2_000, 100).unwrap(), None); // already claimed
        assert_eq!(claim_idle_run(&s, "missing", 2_000, 100).unwrap(), None);
    }

    #[test]
    fn registry_add_remove() {
        let s = MemoryStore::default();
        register_run(&s, "a", true).unwrap();
        register_run(&s, "b", true).unwrap();
        register_run(&s, "a", true).unwrap();
        assert_eq!(open_runs(&s).unwrap(), vec!["a", "b"]);
        register_run(&s, "a", false).unwrap();
        assert_eq!(open_runs(&s).unwrap(), vec!["b"]);
    }

    #[test]
    fn endless_contention_is_an_error() {
        let s = MemoryStore::default();
        *s.interleave.borrow_mut() = u32::MAX;
        assert!(matches!(merge_run(&s, "r", &share(&[200])), Err(MergeError::Contended(_))));
    }

    #[test]
    fn corrupt_entry_is_reported() {
        let s = MemoryStore::default();
        s.set(&run_key("r"), b"not json", None).unwrap();
        assert!(matches!(merge_run(&s, "r", &share(&[200])), Err(MergeError::Corrupt(..))));
    }

    #[test]
    fn window_merges() {
        let s = MemoryStore::default();
        let mut w = RollingWindow::new(4);
        w.record(5_000_000_000, 503);
        merge_window(&s, &w).unwrap();
        let merged = merge_window(&s, &w).unwrap();
        assert_eq!(merged.buckets.iter().map(|b| b.c503).sum::<u64>(), 2);
    }
}
