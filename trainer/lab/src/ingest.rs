//! Trace ingestion from any Envoy log stream: a local Envoy log, or `kubectl logs -c istio-proxy`.
//! Only records Envoy's Wasm logger wrote are accepted, and with a trace key only those whose MAC
//! verifies (`sfr2l_core::trace::auth`); every other line that mentions the marker is reported.

use anyhow::{Context, Result};
use sfr2l_core::trace::auth::{self, Rejection};
use sfr2l_core::TraceRecord;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A record found on a given line, or the error for that line (a Wasm log line whose record is
/// malformed).
pub struct Ingested {
    pub line: usize,
    pub record: Result<TraceRecord, String>,
}

/// A line that mentions the trace marker but was not accepted, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub line: usize,
    /// `not_wasm_log`, `unsigned`, `bad_mac` or `duplicate`.
    pub kind: &'static str,
    pub why: String,
}

/// Everything one ingest found.
#[derive(Default)]
pub struct IngestReport {
    pub records: Vec<Ingested>,
    pub rejected: Vec<Rejected>,
    /// Accepted records whose MAC verified.
    pub signed: usize,
}

impl IngestReport {
    /// Rejections by kind, e.g. `not_wasm_log 3, bad_mac 1`.
    pub fn rejected_summary(&self) -> String {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.rejected {
            *by.entry(r.kind).or_default() += 1;
        }
        by.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    }
}

/// Reads every trace record in `reader` (no key: the structure check only).
pub fn ingest(reader: impl BufRead, origin: &str) -> Result<Vec<Ingested>> {
    Ok(ingest_checked(reader, origin, None)?.records)
}

/// Reads every trace record in `reader`; `origin` names the source in errors. With `key`, only
/// records with a valid MAC are accepted. A second record of the same run, generation and first
/// request (a replayed line) is rejected as `duplicate`.
pub fn ingest_checked(reader: impl BufRead, origin: &str, key: Option<&[u8]>) -> Result<IngestReport> {
    let mut out = IngestReport::default();
    let mut seen = HashSet::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let bytes = line.with_context(|| format!("{origin}:{}: reading", i + 1))?;
        let line = String::from_utf8_lossy(&bytes);
        let n = i + 1;
        match auth::check_line(&line, key) {
            None => {}
            Some(Ok(a)) => {
                if !seen.insert((a.record.run.clone(), a.record.generation, a.record.first_ns)) {
                    let why =
                        format!("run {} generation {} seen before (replayed line)", a.record.run, a.record.generation);
                    out.rejected.push(Rejected { line: n, kind: "duplicate", why });
                    continue;
                }
                out.signed += usize::from(a.signed);
                out.records.push(Ingested { line: n, record: Ok(a.record) });
            }
            Some(Err(Rejection::Malformed(e))) => {
                out.records.push(Ingested { line: n, record: Err(format!("{origin}:{n}: {e}")) })
            }
            Some(Err(r)) => out.rejected.push(Rejected { line: n, kind: r.kind(), why: r.to_string() }),
        }
    }
    Ok(out)
}

/// Follows a growing log file from an offset and returns the record of one run when it appears.
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogTail {
    /// Starts at the current end of `path`.
    pub fn at_end(path: &Path) -> Result<LogTail> {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Ok(LogTail { path: path.to_path_buf(), offset, partial: String::new() })
    }

    fn read_new(&mut self) -> Result<Vec<String>> {
        let mut f = File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        let len = f.metadata()?.len();
        if len < self.offset {
            self.offset = 0; // truncated or rotated
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = String::new();
        let n = f.read_to_string(&mut buf)?;
        self.offset += n as u64;
        self.partial.push_str(&buf);
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_string).collect();
        self.partial = lines.pop().unwrap_or_default();
        Ok(lines)
    }

    /// Waits up to `timeout` for the record of `run`; malformed records are errors.
    pub fn wait_for(&mut self, run: &str, timeout: Duration) -> Result<Option<TraceRecord>> {
        let t0 = Instant::now();
        loop {
            for line in self.read_new()? {
                // Only what Envoy's Wasm logger wrote; other lines naming the marker are skipped.
                match auth::check_line(&line, None) {
                    Some(Ok(a)) if a.record.run == run => return Ok(Some(a.record)),
                    Some(Err(Rejection::Malformed(e))) => {
                        anyhow::bail!("{}: bad trace record: {e}", self.path.display())
                    }
                    _ => {}
                }
            }
            if t0.elapsed() > timeout {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Opens a file or standard input (`-`).
pub fn open(path: &str) -> Result<Box<dyn BufRead>> {
    if path == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let f = File::open(path).with_context(|| format!("opening {path}"))?;
    Ok(Box::new(BufReader::new(f)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfr2l_core::counters::{RunAnnounce, RunCounters};

    fn rec(run: &str) -> TraceRecord {
        let a = RunAnnounce { threads: 1, calls: 1 };
        let mut c = RunCounters::new(a);
        c.record(a, 200, 0, 1, 2);
        TraceRecord::from_counters(run, 1, None, &c)
    }

    #[test]
    fn ingests_envoy_and_kubectl_lines() {
        let text = format!(
            "noise\n[2026-11-28 10:00:00.000][7][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: {}\n2026-11-28T10:00:00.000Z\tinfo\twasm\twasm log outbound|8000||httpbin: {}\nSFR2L_TRACE {{broken\n",
            rec("a").to_log_line(),
            rec("b").to_log_line()
        );
        let text = format!("{text}[2026-11-28 10:00:00.000][7][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: SFR2L_TRACE {{broken\n");
        let got = ingest_checked(text.as_bytes(), "envoy.log", None).unwrap();
        assert_eq!(got.records.len(), 3);
        assert_eq!(got.records[0].record.as_ref().unwrap().run, "a");
        assert_eq!(got.records[1].record.as_ref().unwrap().run, "b");
        let err = got.records[2].record.as_ref().unwrap_err();
        assert!(err.starts_with("envoy.log:5:"), "{err}");
        assert_eq!(got.rejected.len(), 1, "the bare marker line on line 4");
        assert_eq!((got.rejected[0].line, got.rejected[0].kind), (4, "not_wasm_log"));
    }

    #[test]
    fn key_and_replay() {
        let key = b"a trace key of 16+ bytes";
        let p = "[2026-11-28 10:00:00.000][7][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: ";
        let good = format!("{p}{}", rec("a").to_signed_log_line(Some(key)));
        let text = format!("{good}\n{p}{}\n{good}\n", rec("b").to_log_line());
        let got = ingest_checked(text.as_bytes(), "k.log", Some(key)).unwrap();
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.signed, 1);
        assert_eq!(got.rejected_summary(), "duplicate 1, unsigned 1");
    }

    #[test]
    fn tail_finds_a_record_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let prefix = "[2026-11-28 10:00:00.000][7][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: ";
        std::fs::write(&p, format!("{prefix}{}\n", rec("old").to_log_line())).unwrap();
        let mut t = LogTail::at_end(&p).unwrap();
        let line = format!("{prefix}{}", rec("new").to_log_line());
        let (a, b) = line.split_at(10);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        // an access-log line echoing a record of the awaited run is not it
        write!(f, "x\n[2026-11-28T10:00:00.000Z] \"GET /{} HTTP/1.1\" 200\n{a}", rec("new").to_log_line()).unwrap();
        assert!(t.wait_for("new", Duration::from_millis(20)).unwrap().is_none());
        writeln!(f, "{b}").unwrap();
        assert_eq!(t.wait_for("new", Duration::from_millis(200)).unwrap().unwrap().run, "new");
    }
}
