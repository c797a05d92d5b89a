//! Trace ingestion from any Envoy log stream: a local Envoy log, or `kubectl logs -c istio-proxy`.

use anyhow::{Context, Result};
use sfr2l_core::TraceRecord;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A record found on a given line, or the error for that line.
pub struct Ingested {
    pub line: usize,
    pub record: Result<TraceRecord, String>,
}

/// Reads every trace record in `reader`; `origin` names the source in errors.
pub fn ingest(reader: impl BufRead, origin: &str) -> Result<Vec<Ingested>> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{origin}:{}: reading", i + 1))?;
        if let Some(r) = TraceRecord::from_log_line(&line) {
            out.push(Ingested { line: i + 1, record: r.map_err(|e| format!("{origin}:{}: {e}", i + 1)) });
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
                if let Some(r) = TraceRecord::from_log_line(&line) {
                    let rec = r.with_context(|| format!("{}: bad trace record", self.path.display()))?;
                    if rec.run == run {
                        return Ok(Some(rec));
                    }
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
        let got = ingest(text.as_bytes(), "envoy.log").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].record.as_ref().unwrap().run, "a");
        assert_eq!(got[1].record.as_ref().unwrap().run, "b");
        let err = got[2].record.as_ref().unwrap_err();
        assert!(err.starts_with("envoy.log:4:"), "{err}");
    }

    #[test]
    fn tail_finds_a_record_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, format!("{}\n", rec("old").to_log_line())).unwrap();
        let mut t = LogTail::at_end(&p).unwrap();
        let line = rec("new").to_log_line();
        let (a, b) = line.split_at(10);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        write!(f, "x\n{a}").unwrap();
        assert!(t.wait_for("new", Duration::from_millis(20)).unwrap().is_none());
        writeln!(f, "{b}").unwrap();
        assert_eq!(t.wait_for("new", Duration::from_millis(200)).unwrap().unwrap().run, "new");
    }
}
