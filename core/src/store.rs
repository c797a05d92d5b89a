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
/// The leader claim of the load test in progress ([`crate::loadtest::Claim`]).
pub const CLAIM_KEY: &str = "sfr2l/inline/claim";
/// Counter behind each VM's identity.
pub const VM_SEQ_KEY: &str = "sfr2l/inline/vm_seq";
/// Emitted runs are kept this long (for late-response detection), then pruned.
pub const KEEP_EMITTED_NS: u64 = 120_000_000_000;

pub fn shard_key(i: usize) -> String {
    format!("sfr2l/runs/{i}")
}

pub mod shard;
pub mod table;
pub use shard::{adopt_shard_key, ShardKey, Sharding, SHARD_KEY_ENTRY};
pub use table::RunTable;

fn host_err(e: StoreError) -> MergeError {
    MergeError::Host(format!("{e:?}"))
}

/// Creates the shared entries that do not exist yet. Envoy creates a missing key
/// unconditionally (CAS only guards existing keys), so every entry that several workers update
/// is created once at VM start, before traffic, and only ever updated with CAS afterwards.
pub fn init_shared<S: SharedStore>(store: &S) -> Result<(), MergeError> {
    let singles = [WINDOW_KEY, CLAIM_KEY, VM_SEQ_KEY];
    let keys = (0..SHARDS).map(shard_key).chain(singles.iter().map(|k| k.to_string()));
    for key in keys {
        if store.get(&key).map_err(host_err)?.is_none() {
            store.set(&key, b"", None).map_err(host_err)?;
        }
    }
    Ok(())
}

/// A shard's entries; a JSON table left by an older filter is re-encoded into `owned` first.
fn entries<'a>(key: &str, cur: Option<&'a [u8]>, owned: &'a mut Vec<u8>) -> Result<Vec<table::Entry<'a>>, MergeError> {
    let corrupt = |e: String| MergeError::Corrupt(key.to_string(), e);
    match table::scan(cur.unwrap_or_default()).map_err(corrupt)? {
        table::Table::Binary(entries) => Ok(entries),
        table::Table::Legacy(t) => {
            *owned = table::encode(&t);
            match table::scan(owned).map_err(corrupt)? {
                table::Table::Binary(entries) => Ok(entries),
                table::Table::Legacy(_) => Err(MergeError::Corrupt(key.to_string(), "re-encoding failed".into())),
            }
        }
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

/// Several runs of one shard merged in one CAS round: each run's outcome, in the order given,
/// and the open runs closed to make room.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergedShard {
    pub outcomes: Vec<MergeOutcome>,
    pub evicted: Vec<(String, RunCounters)>,
}

/// A run in a shard being rewritten: its bytes as they lie, until a merge or a close decodes it.
struct Slot<'a> {
    id: &'a [u8],
    emitted: bool,
    last_ns: u64,
    state: SlotState<'a>,
}

enum SlotState<'a> {
    Raw(table::Entry<'a>),
    Decoded(RunCounters),
}

impl<'a> Slot<'a> {
    fn counters(&mut self, key: &str) -> Result<&mut RunCounters, MergeError> {
        if let SlotState::Raw(e) = &self.state {
            let c = e.counters().map_err(|err| MergeError::Corrupt(key.to_string(), err))?;
            self.state = SlotState::Decoded(c);
        }
        match &mut self.state {
            SlotState::Decoded(c) => Ok(c),
            SlotState::Raw(_) => Err(MergeError::Corrupt(key.to_string(), "decode failed".into())),
        }
    }
}

/// Index of the oldest slot (by last response, then id) that `pick` selects.
fn oldest(slots: &[Slot], pick: impl Fn(&Slot) -> bool) -> Option<usize> {
    (0..slots.len()).filter(|&i| pick(&slots[i])).min_by_key(|&i| (slots[i].last_ns, slots[i].id))
}

/// Makes room for one new run: closes the oldest open runs beyond `cap - 1` (returned) and drops
/// the oldest emitted runs beyond `cap - 1`. Decodes only the runs it closes.
fn make_room(key: &str, slots: &mut Vec<Slot>, cap: usize) -> Result<Vec<(String, RunCounters)>, MergeError> {
    let mut evicted = Vec::new();
    while slots.iter().filter(|s| !s.emitted).count() >= cap {
        let Some(i) = oldest(slots, |s| !s.emitted) else { break };
        let id = String::from_utf8_lossy(slots[i].id).into_owned();
        let c = slots[i].counters(key)?;
        c.emitted = true;
        evicted.push((id, c.clone()));
        slots[i].emitted = true;
    }
    while slots.iter().filter(|s| s.emitted).count() >= cap {
        let Some(i) = oldest(slots, |s| s.emitted) else { break };
        slots.remove(i);
    }
    Ok(evicted)
}

/// Merges a worker's local share of `run` into its shard; a new run beyond the shard's cap
/// ([`Sharding::cap`]) closes the shard's oldest open run.
pub fn merge_run<S: SharedStore>(
    store: &S,
    sharding: &Sharding,
    run: &str,
    share: &RunCounters,
) -> Result<Merged, MergeError> {
    let mut m = merge_shard(store, sharding, sharding.shard_of(run), &[(run, share)])?;
    let outcome = m.outcomes.pop().unwrap_or(MergeOutcome::Pending { late: false });
    Ok(Merged { outcome, evicted: m.evicted })
}

/// Merges the shares of several runs of shard `shard` (all with `sharding.shard_of(run) == shard`)
/// in one CAS round: one read and one write of the shard for all of them. Runs the merge does not
/// touch are copied as they lie. A run of another shard is an error, before anything is written.
pub fn merge_shard<S: SharedStore>(
    store: &S,
    sharding: &Sharding,
    shard: usize,
    shares: &[(&str, &RunCounters)],
) -> Result<MergedShard, MergeError> {
    let key = shard_key(shard);
    if let Some((run, _)) = shares.iter().find(|(r, _)| sharding.shard_of(r) != shard) {
        return Err(MergeError::Corrupt(key, format!("run {run:?} belongs to shard {}", sharding.shard_of(run))));
    }
    let cap = sharding.cap(shard);
    cas_update(store, &key, |cur| {
        let mut owned = Vec::new();
        let entries = entries(&key, cur, &mut owned)?;
        let mut slots: Vec<Slot> = entries
            .into_iter()
            .map(|e| Slot { id: e.id, emitted: e.emitted, last_ns: e.last_ns, state: SlotState::Raw(e) })
            .collect();
        let mut out = MergedShard::default();
        for (run, share) in shares {
            let i = match slots.iter().position(|s| s.id == run.as_bytes()) {
                Some(i) => i,
                None => {
                    out.evicted.extend(make_room(&key, &mut slots, cap)?);
                    let state = SlotState::Decoded(RunCounters::default());
                    slots.push(Slot { id: run.as_bytes(), emitted: false, last_ns: 0, state });
                    slots.len() - 1
                }
            };
            let total = slots[i].counters(&key)?;
            let was_emitted = total.emitted;
            total.merge(share);
            out.outcomes.push(if !was_emitted && total.is_complete() {
                total.emitted = true;
                MergeOutcome::Completed(total.clone())
            } else {
                MergeOutcome::Pending { late: was_emitted }
            });
            let (emitted, last_ns) = (total.emitted, total.last_ns);
            slots[i].emitted = emitted;
            slots[i].last_ns = last_ns;
        }
        let mut bytes = Vec::with_capacity(cur.map_or(0, <[u8]>::len) + 64 * shares.len());
        for s in &slots {
            match &s.state {
                SlotState::Raw(e) => table::push_raw(&mut bytes, e.raw),
                SlotState::Decoded(c) => table::push_entry(&mut bytes, s.id, c),
            }
        }
        Ok((table::finish(bytes), out))
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
    let idle = |e: &table::Entry| !e.emitted && now_ns.saturating_sub(e.last_ns) >= idle_ns;
    let stale = |e: &table::Entry| e.emitted && now_ns.saturating_sub(e.last_ns) >= KEEP_EMITTED_NS;
    let mut out = IdleScan::default();
    for i in 0..SHARDS {
        let key = shard_key(i);
        let needs = match store.get(&key).map_err(host_err)? {
            Some((v, _)) if !v.is_empty() => {
                let mut owned = Vec::new();
                let entries = entries(&key, Some(&v), &mut owned)?;
                out.bytes += v.len();
                out.open_runs += entries.iter().filter(|e| !e.emitted && !idle(e)).count();
                entries.iter().any(|e| idle(e) || stale(e))
            }
            _ => false,
        };
        if !needs {
            continue;
        }
        let claimed = cas_update(store, &key, |cur| {
            let mut owned = Vec::new();
            let entries = entries(&key, cur, &mut owned)?;
            let mut claimed = Vec::new();
            let mut out = Vec::with_capacity(cur.map_or(0, <[u8]>::len));
            for e in entries.iter().filter(|e| !stale(e)) {
                if idle(e) {
                    let mut c = e.counters().map_err(|err| MergeError::Corrupt(key.clone(), err))?;
                    c.emitted = true;
                    table::push_entry(&mut out, e.id, &c);
                    claimed.push((e.id_str(), c));
                } else {
                    table::push_raw(&mut out, e.raw);
                }
            }
            Ok((table::finish(out), claimed))
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

    /// Tokens come from one counter for all keys, as in Envoy (proxy-wasm-cpp-host
    /// `src/shared_data.h`, `nextCas`): no two entries ever hold the same token.
    #[derive(Default)]
    pub struct MemoryStore {
        pub data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        /// Simulates another VM writing between get and set: fail this many sets.
        pub interleave: RefCell<u32>,
        last_cas: RefCell<u32>,
    }

    impl MemoryStore {
        fn next_cas(&self) -> u32 {
            let mut c = self.last_cas.borrow_mut();
            *c = c.wrapping_add(1).max(1);
            *c
        }
    }

    impl SharedStore for MemoryStore {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            Ok(self.data.borrow().get(key).cloned())
        }
        /// Envoy's `SharedData::set` (proxy-wasm-cpp-host `src/shared_data.cc`): a missing key
        /// is created whatever the token; an existing one is written only with token 0 or its
        /// current token.
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            let mut d = self.data.borrow_mut();
            let cur = d.get(key).map(|(_, c)| *c);
            let cas = cas.unwrap_or(0);
            if let Some(cur) = cur {
                let mut i = self.interleave.borrow_mut();
                if cas != 0 && *i > 0 {
                    // Another VM wrote the entry (same value) between our get and this set.
                    *i -= 1;
                    let old = d.get(key).map(|v| v.0.clone()).unwrap_or_default();
                    d.insert(key.to_string(), (old, self.next_cas()));
                    return Err(StoreError::CasMismatch);
                }
                if cas != 0 && cas != cur {
                    return Err(StoreError::CasMismatch);
                }
            }
            d.insert(key.to_string(), (value.to_vec(), self.next_cas()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
