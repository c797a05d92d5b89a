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
pub const SHARDS: usize = 64;
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

/// A merge's outcome, and the open runs it closed to stay within the shard's bound (the caller
/// writes their records as incomplete and counts them).
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub outcome: MergeOutcome,
    pub evicted: Vec<(String, RunCounters)>,
}

/// Open runs one shard keeps for a total bound of `max_open_runs`; as many emitted runs are kept
/// beside them (for late-response detection), the oldest dropped first.
pub fn shard_cap(max_open_runs: u32) -> usize {
    (max_open_runs as usize).div_ceil(SHARDS).max(1)
}

/// Oldest run (by last response, then id) among those `pick` selects.
fn oldest(table: &RunTable, pick: impl Fn(&RunCounters) -> bool) -> Option<String> {
    table.iter().filter(|(_, c)| pick(c)).min_by_key(|(r, c)| (c.last_ns, r.as_str())).map(|(r, _)| r.clone())
}

/// Makes room for one new run: closes the oldest open runs beyond `cap - 1` (returned) and drops
/// the oldest emitted runs beyond `cap - 1`.
fn make_room(table: &mut RunTable, cap: usize) -> Vec<(String, RunCounters)> {
    let mut evicted = Vec::new();
    while table.values().filter(|c| !c.emitted).count() >= cap {
        let Some(run) = oldest(table, |c| !c.emitted) else { break };
        if let Some(c) = table.get_mut(&run) {
            c.emitted = true;
            evicted.push((run, c.clone()));
        }
    }
    while table.values().filter(|c| c.emitted).count() >= cap {
        let Some(run) = oldest(table, |c| c.emitted) else { break };
        table.remove(&run);
    }
    evicted
}

/// Merges a worker's local share of `run` into its shard; a new run beyond the shard's bound
/// ([`shard_cap`] of `max_open_runs`) closes the shard's oldest open run.
pub fn merge_run<S: SharedStore>(
    store: &S,
    run: &str,
    share: &RunCounters,
    max_open_runs: u32,
) -> Result<Merged, MergeError> {
    let key = shard_key(shard_of(run));
    let cap = shard_cap(max_open_runs);
    cas_update(store, &key, |cur| {
        let mut table = decode_table(&key, cur)?;
        let evicted = if table.contains_key(run) { Vec::new() } else { make_room(&mut table, cap) };
        let total = table.entry(run.to_string()).or_default();
        let was_emitted = total.emitted;
        total.merge(share);
        let outcome = if !was_emitted && total.is_complete() {
            total.emitted = true;
            MergeOutcome::Completed(total.clone())
        } else {
            MergeOutcome::Pending { late: was_emitted }
        };
        Ok((encode_table(&table), Merged { outcome, evicted }))
    })
}

/// What an idle scan found: the runs it claimed, and the size of the run tables it read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdleScan {
    pub claimed: Vec<(String, RunCounters)>,
    /// Open (not yet emitted) runs over all shards, and the run tables' bytes in shared data.
    pub open_runs: usize,
    pub bytes: usize,
}

/// Claims every run idle for `idle_ns` (not yet emitted) for its idle-timeout record, and
/// prunes emitted runs older than [`KEEP_EMITTED_NS`]. Each run is claimed by one caller only.
pub fn claim_idle_runs<S: SharedStore>(store: &S, now_ns: u64, idle_ns: u64) -> Result<IdleScan, MergeError> {
    let idle = |c: &RunCounters| !c.emitted && now_ns.saturating_sub(c.last_ns) >= idle_ns;
    let stale = |c: &RunCounters| c.emitted && now_ns.saturating_sub(c.last_ns) >= KEEP_EMITTED_NS;
    let mut out = IdleScan::default();
    for i in 0..SHARDS {
        let key = shard_key(i);
        let needs = match store.get(&key).map_err(host_err)? {
            Some((v, _)) if !v.is_empty() => {
                let table = decode_table(&key, Some(&v))?;
                out.bytes += v.len();
                out.open_runs += table.values().filter(|c| !c.emitted && !idle(c)).count();
                table.values().any(|c| idle(c) || stale(c))
            }
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
        out.claimed.extend(claimed);
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
mod tests;
