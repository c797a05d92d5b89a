//! `/api/traces`: the lab's trace records after the check of `traces ingest`.

use super::{text, Reply};
use std::io::BufReader;
use std::path::Path;

/// Trace records from the lab's client sidecar log, one JSON object per line, after the check of
/// `traces ingest` (only lines Envoy's Wasm logger wrote; with a key, only records whose MAC
/// verifies; replayed lines once). A first line starting with `#` says what was left out.
pub(super) fn traces(lab: &Path, key: Option<&[u8]>) -> Reply {
    let log = lab.join("logs/client-envoy.log");
    let Ok(f) = std::fs::File::open(&log) else {
        return text(404, &format!("no lab log at {} (start a lab, or drop a file in the page)", log.display()));
    };
    let report = match sfr2l_lab::ingest::ingest_checked(BufReader::new(f), &log.display().to_string(), key) {
        Ok(r) => r,
        Err(e) => return text(500, &format!("{e:#}")),
    };
    let mut lines = Vec::new();
    let malformed = report.records.iter().filter(|r| r.record.is_err()).count();
    if !report.rejected.is_empty() || malformed > 0 {
        lines.push(format!(
            "# left out: {} line(s) naming the trace marker ({}), {malformed} malformed record(s)",
            report.rejected.len(),
            report.rejected_summary()
        ));
    }
    for r in &report.records {
        if let Ok(rec) = &r.record {
            lines.push(serde_json::to_string(rec).unwrap_or_default());
        }
    }
    (200, "text/plain; charset=utf-8", lines.join("\n").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVOY: &str = "[2026-12-07 10:00:00.000][7][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log sfr2l sfr2l: ";
    const KEY: &[u8] = b"explorer-test-key-0123";

    fn record(run: &str) -> sfr2l_core::TraceRecord {
        use sfr2l_core::counters::{RunAnnounce, RunCounters};
        let a = RunAnnounce { threads: 1, calls: 2 };
        let mut c = RunCounters::new(a);
        c.record(a, 200, 0, 1_000, 2_000);
        c.record(a, 503, 0x80, 1_500, 3_000);
        sfr2l_core::TraceRecord::from_counters(run, 1, None, &c)
    }

    /// `/api/traces` shows only what `traces ingest` accepts: a record another writer put in the
    /// log (an access log line, another logger, a copied line) is left out and counted; with the
    /// trace key, so is an unsigned or forged record.
    #[test]
    fn spoofed_trace_lines_are_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let (real, signed) = (record("real-run"), record("signed-run"));
        let spoof = record("spoofed-run");
        let forged = signed.to_signed_log_line(Some(KEY)).replace("signed-run", "forged-run");
        let log = [
            format!("{ENVOY}{}", real.to_log_line()),
            format!("{ENVOY}{}", signed.to_signed_log_line(Some(KEY))),
            format!("[2026-12-07T10:00:01.000Z] \"GET /status/200?x={} HTTP/1.1\" 200", spoof.to_log_line()),
            format!(
                "[2026-12-07 10:00:02.000][7][info][http] [source/common/http/conn_manager_impl.cc:1] {}",
                spoof.to_log_line()
            ),
            format!("{ENVOY}{}", real.to_log_line()),
            format!("{ENVOY}{forged}"),
        ]
        .join("\n");
        std::fs::write(dir.path().join("logs/client-envoy.log"), log).unwrap();
        let shown = |key: Option<&[u8]>| -> Vec<String> {
            let (status, _, body) = traces(dir.path(), key);
            assert_eq!(status, 200);
            String::from_utf8(body).unwrap().lines().map(str::to_string).collect()
        };
        let runs = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| !l.starts_with('#'))
                .map(|l| serde_json::from_str::<sfr2l_core::TraceRecord>(l).unwrap().run)
                .collect()
        };
        let open = shown(None);
        assert_eq!(runs(&open), ["real-run", "signed-run", "forged-run"], "{open:?}");
        assert!(open[0].starts_with("# left out: 3 line(s)") && open[0].contains("duplicate 1"), "{}", open[0]);
        let keyed = shown(Some(KEY));
        assert_eq!(runs(&keyed), ["signed-run"], "{keyed:?}");
        assert!(keyed[0].contains("unsigned") && keyed[0].contains("bad_mac"), "{}", keyed[0]);
    }
}
