//! Runs across worker VMs: each VM's shares merged into host shared data (one CAS round per
//! shard), idle runs closed, and the records written under the per-VM line cap.

use crate::host::{self, HostStore};
use crate::metrics;
use crate::state::VmState;
use proxy_wasm::types::LogLevel;
use sfr2l_core::counters::RunCounters;
use sfr2l_core::store::{self, MergeOutcome, Sharding};
use sfr2l_core::trace::TraceRecord;
use std::collections::BTreeMap;

/// The record's log line, signed with the configured trace key.
pub(crate) fn trace_line(l: &VmState, rec: &TraceRecord) -> String {
    rec.to_signed_log_line(l.config.trace_key.as_deref().map(str::as_bytes))
}

/// Takes a token for one trace line; refills `max_trace_lines_per_s` per second up to that burst.
fn take_trace_token(l: &mut VmState, now: u64) -> bool {
    let rate = f64::from(l.config.max_trace_lines_per_s);
    let dt = now.saturating_sub(l.last_token_ns) as f64 / 1e9;
    l.trace_tokens = if l.last_token_ns == 0 { rate } else { (l.trace_tokens + dt * rate).min(rate) };
    l.last_token_ns = now;
    if l.trace_tokens >= 1.0 {
        l.trace_tokens -= 1.0;
        true
    } else {
        false
    }
}

/// Records written (or dropped by the line cap) in one pass, counted in the metrics once at the
/// end: a flood closes runs by the hundred, and each metric update is a host call.
#[derive(Default)]
struct Emitted {
    completed: u64,
    incomplete: u64,
    dropped: u64,
}

impl Emitted {
    /// Writes a run's record, unless the line cap is reached (then the record is not even built).
    fn emit(&mut self, l: &mut VmState, now: u64, run: &str, counters: &RunCounters) {
        if take_trace_token(l, now) {
            let rec = TraceRecord::from_counters(run, l.config.generation, l.config.rule, counters);
            host::log(LogLevel::Info, &trace_line(l, &rec));
        } else {
            self.dropped += 1;
        }
        if counters.is_complete() {
            self.completed += 1;
        } else {
            self.incomplete += 1;
        }
    }

    fn count(self, l: &VmState) {
        for (id, n) in [
            (l.metrics.runs_completed, self.completed),
            (l.metrics.runs_incomplete, self.incomplete),
            (l.metrics.trace_lines_dropped, self.dropped),
        ] {
            if n > 0 {
                metrics::inc(id, n as i64);
            }
        }
    }
}

/// Merges this VM's shares into shared data, one CAS round per shard; writes the record of any
/// run this completes.
pub(crate) fn flush_runs(l: &mut VmState) {
    if l.runs.is_empty() {
        return;
    }
    // Without the shard key the shares wait in the VM (the next tick tries again).
    let Some(sharding) = l.sharding() else { return };
    let mut by_shard: BTreeMap<usize, Vec<(String, RunCounters)>> = BTreeMap::new();
    for (run, share) in l.runs.drain() {
        by_shard.entry(sharding.shard_of(&run)).or_default().push((run, share));
    }
    for (shard, shares) in by_shard {
        merge_shares(l, &sharding, shard, shares);
    }
}

/// Merges this VM's share of one run: from `on_log` once a batch is full. On this hot path only a
/// key already read is used; without one the share waits for the tick, which reads it.
pub(crate) fn flush_run(l: &mut VmState, run: &str) {
    let Some(key) = l.shard_key else { return };
    let sharding = Sharding { key, max_open_runs: l.config.max_open_runs };
    if let Some(share) = l.runs.remove(run) {
        merge_shares(l, &sharding, sharding.shard_of(run), vec![(run.to_string(), share)]);
    }
}

/// Merges shares of runs of one shard; on contention or a missing entry keeps them for the next
/// tick (nothing is lost).
fn merge_shares(l: &mut VmState, sharding: &Sharding, shard: usize, shares: Vec<(String, RunCounters)>) {
    let refs: Vec<(&str, &RunCounters)> = shares.iter().map(|(r, c)| (r.as_str(), c)).collect();
    match store::merge_shard(&HostStore, sharding, shard, &refs) {
        Ok(merged) => {
            let (now, mut out) = (host::now_ns(), Emitted::default());
            if !merged.evicted.is_empty() {
                metrics::inc(l.metrics.runs_evicted, merged.evicted.len() as i64);
            }
            for (old, total) in &merged.evicted {
                out.emit(l, now, old, total);
            }
            for ((run, share), outcome) in shares.iter().zip(merged.outcomes) {
                match outcome {
                    MergeOutcome::Completed(total) => out.emit(l, now, run, &total),
                    MergeOutcome::Pending { late: true } => {
                        metrics::inc(l.metrics.late_responses, share.responses() as i64)
                    }
                    MergeOutcome::Pending { late: false } => {}
                }
            }
            out.count(l);
        }
        Err(store::MergeError::Contended(_) | store::MergeError::NotInitialised(_)) => {
            l.init_shared();
            for (run, share) in shares {
                l.runs.entry(run).or_default().merge(&share);
            }
        }
        Err(e) => l.internal_error("merge", &e.to_string()),
    }
}

/// Closes runs with no response for the idle timeout (at most every 250 ms per VM).
pub(crate) fn close_idle_runs(l: &mut VmState, now: u64) {
    if now.saturating_sub(l.last_idle_scan_ns) < 250_000_000 {
        return;
    }
    l.last_idle_scan_ns = now;
    let idle = (l.config.idle_timeout.secs() * 1e9) as u64;
    match store::claim_idle_runs(&HostStore, now, idle) {
        Ok(scan) => {
            metrics::set(l.metrics.open_runs, scan.open_runs as u64);
            metrics::set(l.metrics.shared_bytes, scan.bytes as u64);
            let mut out = Emitted::default();
            for (run, total) in scan.claimed {
                out.emit(l, now, &run, &total);
            }
            out.count(l);
        }
        Err(e) => l.internal_error("idle", &e.to_string()),
    }
}
