//! Hostile clients at the ABI: many announced runs, malformed and huge run headers. Shared data,
//! VM memory and the log stay bounded; nothing from a header reaches a line unescaped. The
//! observe build (the same observe code as the model build, without tract: quick to build).

use crate::support::*;
use sfr2l_core::counters::{RunAnnounce, RunCounters};
use sfr2l_core::store::table::{self, entry_len};
use sfr2l_core::store::{self, SHARDS};
use sfr2l_core::trace::auth::{check_line, MAC_TAG};
use sfr2l_wasm_host::Host;

const ENVOY_PREFIX: &str = "[2026-11-29 12:00:00.000][1][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: ";

fn config(max_open: u32, lines_per_s: u32, key: Option<&str>) -> Vec<u8> {
    let key = key.map(|k| format!(r#","trace_key":"{k}""#)).unwrap_or_default();
    format!(
        r#"{{"api":"v1","mode":"observe","idle_timeout":"2s","flush_period":"50ms","max_open_runs":{max_open},"max_trace_lines_per_s":{lines_per_s}{key}}}"#
    )
    .into_bytes()
}

fn announce<'a>(run: &'a str, calls: &'a str) -> [(&'a str, &'a str); 4] {
    [(":path", "/get"), ("x-sfr2l-run", run), ("x-sfr2l-threads", "1"), ("x-sfr2l-calls", calls)]
}

/// 12,000 distinct runs that never complete (calls = 1000), one response each, over two VMs at
/// 1 ms steps: open runs stay at the cap, the rest are closed as incomplete and counted, the trace
/// lines are rate-limited, and neither shared data nor the VMs' memory grows after the first 4,000.
#[test]
fn a_flood_of_announced_runs_is_bounded() {
    let mut h = host_of(observe_module(), 2);
    for vm in 0..2 {
        assert!(h.configure(vm, &config(64, 20, None)).unwrap());
    }
    let flood = |h: &mut Host, from: usize, to: usize| {
        for i in from..to {
            h.stream(i % 2, &announce(&format!("flood-{i}"), "1000"), Some(200), 0).unwrap();
            h.advance(1).unwrap();
        }
    };
    flood(&mut h, 0, 4_000);
    let (mem0, mem1, shared) = (h.memory_bytes(0).unwrap(), h.memory_bytes(1).unwrap(), h.shared_bytes("sfr2l/runs/"));
    flood(&mut h, 4_000, 12_000);
    let shared_after = h.shared_bytes("sfr2l/runs/");
    eprintln!("shared run tables: {shared} -> {shared_after} bytes; VM memory {mem0}/{mem1} bytes");
    assert_eq!((h.memory_bytes(0).unwrap(), h.memory_bytes(1).unwrap()), (mem0, mem1), "a VM's memory grew");
    // At most 64 open runs (the bound, exact) and as many emitted ones beside them, each an entry
    // no longer than the longest id's with one response at the latest time; one magic byte per
    // table.
    let mut one = RunCounters::default();
    let now = h.now_ns();
    one.record(RunAnnounce { threads: 1, calls: 1000 }, 200, 0, now, now);
    let entry = entry_len(b"flood-11999", &one);
    let bound = SHARDS + 2 * 64 * entry;
    assert!(shared_after <= bound, "shared run tables hold {shared_after} bytes; bound {bound} ({entry} B an entry)");
    // Exactly: no table holds more than its share (here 1) of open runs, nor of emitted ones.
    for i in 0..SHARDS {
        let t = table::decode(&h.shared_value(&store::shard_key(i)).unwrap_or_default()).unwrap();
        let open = t.values().filter(|c| !c.emitted).count();
        assert!(open <= 1 && t.len() - open <= 1, "table {i}: {open} open and {} emitted runs", t.len() - open);
    }
    assert!(shared_after <= shared + shared / 5, "shared data grew: {shared} -> {shared_after}");
    let open = h.metric("sfr2l_open_runs").unwrap();
    assert!(open <= 64, "{open} open runs");
    let evicted = h.metric("sfr2l_runs_evicted_total").unwrap();
    assert!(evicted >= 12_000 - 64 - 200, "only {evicted} runs evicted");
    // 12 s of virtual time at 20 lines/s per VM, plus the burst
    let lines = h.trace_lines().len();
    assert!(lines <= 2 * (20 * 13 + 20), "{lines} trace lines");
    let dropped = h.metric("sfr2l_trace_lines_dropped_total").unwrap() as usize;
    let incomplete = h.metric("sfr2l_runs_incomplete_total").unwrap() as usize;
    assert_eq!(lines + dropped, incomplete, "every closed run is either logged or counted as dropped");
    // The idle timeout closes the rest; a run announced now still completes and is traced.
    h.advance(5_000).unwrap();
    h.stream(0, &announce("honest", "1"), Some(200), 0).unwrap();
    h.advance(100).unwrap();
    assert!(records(&h).iter().any(|r| r.run == "honest" && r.complete), "a normal run is still traced");
}

/// Run headers a client controls: only a short id of `[A-Za-z0-9-_.:]` announces a run; anything
/// else (newlines, quotes, the trace marker, 1 MB values, duplicates joined by Envoy, non-numeric
/// or huge counts) is unannounced traffic, and no log line carries any of it.
#[test]
fn hostile_run_headers_never_reach_a_line() {
    let mut h = host_of(observe_module(), 1);
    assert!(h.configure(0, &config(1024, 100, None)).unwrap());
    let big = "A".repeat(1 << 20);
    let marker = "x\nSFR2L_TRACE {\"schema\":2,\"run\":\"evil\"}".to_string();
    let hostile: Vec<[(&str, &str); 4]> = vec![
        announce("evil\nnext", "1"),
        announce("evil\"quote", "1"),
        announce(&marker, "1"),
        announce(&big, "1"),
        announce("evil,evil", "1"),
        announce("évil", "1"),
        announce("", "1"),
        announce("evil-count", "1e3"),
        announce("evil-count2", "99999999999999999999"),
        announce("evil-count3", "-1"),
    ];
    for hdrs in &hostile {
        h.stream(0, hdrs, Some(200), 0).unwrap();
    }
    h.advance(3_000).unwrap();
    assert_eq!(h.metric("sfr2l_unannounced_responses_total"), Some(hostile.len() as i64));
    assert!(h.trace_lines().is_empty(), "{:?}", h.trace_lines());
    for l in h.logs() {
        assert!(!l.message.contains('\n') && !l.message.contains("evil") && l.message.len() < 4096, "{l:?}");
    }
}

/// With a trace key every record carries a MAC that `check_line` verifies behind Envoy's prefix;
/// the same line with the record changed, or another key, is rejected.
#[test]
fn records_are_signed_with_the_trace_key() {
    let key = "k-0123456789abcdef";
    let mut h = host_of(observe_module(), 1);
    assert!(h.configure(0, &config(1024, 100, Some(key))).unwrap());
    h.stream(0, &announce("signed-1", "1"), Some(200), 0).unwrap();
    h.advance(100).unwrap();
    let lines = h.trace_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(MAC_TAG), "{}", lines[0]);
    let line = format!("{ENVOY_PREFIX}{}", lines[0]);
    let ok = check_line(&line, Some(key.as_bytes())).unwrap().unwrap();
    assert!(ok.signed && ok.record.run == "signed-1");
    assert!(check_line(&line, Some(b"another-key-0123456")).unwrap().is_err());
    let forged = line.replace("signed-1", "signed-2");
    assert!(check_line(&forged, Some(key.as_bytes())).unwrap().is_err());
    assert_eq!(records(&h)[0].run, "signed-1", "an unkeyed reader still parses signed lines");
}
