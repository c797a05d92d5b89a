//! What makes a run a row: conservation between the load generator, the filter's trace and
//! Envoy's cluster stats, and the fault counters a healthy lab never moves.

use crate::mesh::envoy::FAULT_COUNTERS;
use sfr2l_core::TraceRecord;
use std::collections::BTreeMap;

/// Conservation for one run: what the load generator got, what the filter traced and what
/// Envoy's cluster counted must agree status code by status code.
pub fn check_conservation(
    sent: u32,
    load_codes: &BTreeMap<i32, u64>,
    rec: &TraceRecord,
    cluster: &BTreeMap<String, u64>,
    generation: u64,
) -> Result<(), String> {
    let got: u64 = load_codes.values().sum();
    if got != sent as u64 {
        return Err(format!("load generator finished {got} of {sent} calls"));
    }
    if let Some(n) = load_codes.get(&-1) {
        return Err(format!("{n} socket errors at the load generator"));
    }
    if rec.generation != generation {
        return Err(format!("trace generation {} != applied {generation}", rec.generation));
    }
    if !rec.complete || rec.responses != sent as u64 || rec.mismatched != 0 {
        return Err(format!(
            "trace has {} responses (complete {}, mismatched {}) for {sent} calls",
            rec.responses, rec.complete, rec.mismatched
        ));
    }
    for (code, n) in load_codes {
        let traced = rec.count(*code as u16);
        let envoy = cluster.get(&format!("upstream_rq_{code}")).copied().unwrap_or(0);
        if traced != *n || envoy != *n {
            return Err(format!("code {code}: load generator {n}, trace {traced}, cluster upstream_rq_{code} {envoy}"));
        }
    }
    let completed = cluster.get("upstream_rq_completed").copied().unwrap_or(0);
    if completed != sent as u64 {
        return Err(format!("cluster upstream_rq_completed {completed} != {sent} calls"));
    }
    let overflow = cluster.get("upstream_rq_pending_overflow").copied().unwrap_or(0);
    if overflow != rec.reasons.overflow {
        return Err(format!(
            "cluster upstream_rq_pending_overflow {overflow} != traced overflow {}",
            rec.reasons.overflow
        ));
    }
    Ok(())
}

/// The fault counters ([`FAULT_COUNTERS`]) that moved during a run (`client` and `server`: deltas keyed by counter
/// name, summed over clusters), as one message; `None` for a clean run.
pub fn lab_faults(client: &BTreeMap<String, u64>, server: &BTreeMap<String, u64>) -> Option<String> {
    let mut moved = Vec::new();
    for (side, delta) in [("client sidecar", client), ("server side", server)] {
        for c in FAULT_COUNTERS {
            if let Some(n) = delta.get(c).filter(|n| **n > 0) {
                moved.push(format!("{side} {c} +{n}"));
            }
        }
    }
    (!moved.is_empty()).then(|| format!("lab fault during the run ({})", moved.join(", ")))
}

/// Subtracts a baseline snapshot of counters.
pub fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k).copied().unwrap_or(0)))).collect()
}
