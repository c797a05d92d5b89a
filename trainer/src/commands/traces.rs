//! `sfr2l traces ingest`: trace records from an Envoy log as JSON lines or dataset rows.
//!
//! The trace key (the plugin configuration's `trace_key`) comes from `SFR2L_TRACE_KEY_FILE` (a
//! file holding it) or `SFR2L_TRACE_KEY`; with it only records whose MAC verifies are accepted.

use super::Exit;
use crate::cli::{IngestFormat, TracesCommand};
use anyhow::{bail, Context, Result};
use sfr2l_core::trace::{Columns, DatasetRow};
use sfr2l_core::{Inputs, LoadSetting};
use sfr2l_lab::ingest;
use std::io::Write;

pub fn run(cmd: TracesCommand) -> Result<Exit> {
    let TracesCommand::Ingest(a) = cmd;
    let reader = ingest::open(&a.file)?;
    let key = trace_key()?;
    let report = ingest::ingest_checked(reader, &a.file, key.as_deref())?;
    report_rejected(&a.file, &report, key.is_some());
    let rejected = report.rejected.len();
    let found = report.records;
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut errors = 0;
    // A trace record carries the whole rule in force: every catalogue field is a column.
    let columns = Columns { inputs: Inputs::catalogue(), failure: a.failure_codes.clone() };
    if matches!(a.format, IngestFormat::Csv) {
        writeln!(out, "{}", columns.header().join(","))?;
    }
    for f in found {
        match f.record {
            Ok(rec) => match a.format {
                IngestFormat::Jsonl => writeln!(out, "{}", serde_json::to_string(&rec)?)?,
                IngestFormat::Csv => {
                    let Some(rule) = rec.rule else {
                        eprintln!(
                            "sfr2l: {}:{}: record {} has no rule (filter configured without one); skipped",
                            a.file, f.line, rec.run
                        );
                        continue;
                    };
                    let load = LoadSetting { threads: rec.threads, calls: rec.calls };
                    writeln!(
                        out,
                        "{}",
                        DatasetRow::new(&columns, &rule, &load, &rec, f64::NAN, rec.run.clone(), 0)
                            .to_fields()
                            .join(",")
                    )?
                }
            },
            Err(e) => {
                errors += 1;
                eprintln!("sfr2l: {e}");
            }
        }
    }
    out.flush()?;
    // Every accepted record is written first; then any line posing as a record fails the command.
    if errors > 0 || rejected > 0 {
        bail!("{errors} malformed trace record(s) and {rejected} rejected line(s) in {}", a.file);
    }
    Ok(Exit::Ok)
}

/// Names of the environment variables that give the trace key.
pub const KEY_FILE_ENV: &str = "SFR2L_TRACE_KEY_FILE";
pub const KEY_ENV: &str = "SFR2L_TRACE_KEY";

/// The trace key from the environment (`SFR2L_TRACE_KEY_FILE`, then `SFR2L_TRACE_KEY`).
pub(crate) fn trace_key() -> Result<Option<Vec<u8>>> {
    let key = if let Some(path) = std::env::var_os(KEY_FILE_ENV) {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{KEY_FILE_ENV}: reading {}", std::path::Path::new(&path).display()))?;
        Some(text.trim_end_matches(['\r', '\n']).as_bytes().to_vec())
    } else {
        std::env::var(KEY_ENV).ok().map(String::into_bytes)
    };
    match key {
        Some(k) if k.len() < sfr2l_core::config::MIN_TRACE_KEY_BYTES => {
            bail!("trace key: must be at least {} bytes (got {})", sfr2l_core::config::MIN_TRACE_KEY_BYTES, k.len())
        }
        k => Ok(k),
    }
}

/// Lines that named the marker but were not accepted: the first few, then counts by reason.
fn report_rejected(file: &str, r: &ingest::IngestReport, keyed: bool) {
    const SHOWN: usize = 10;
    for x in r.rejected.iter().take(SHOWN) {
        eprintln!("sfr2l: {file}:{}: rejected ({}): {}", x.line, x.kind, x.why);
    }
    if !r.rejected.is_empty() {
        eprintln!(
            "sfr2l: {file}: rejected {} line(s) that mention SFR2L_TRACE ({}); accepted {} record(s){}",
            r.rejected.len(),
            r.rejected_summary(),
            r.records.len(),
            if keyed { format!(", {} with a verified MAC", r.signed) } else { String::new() }
        );
    } else if keyed {
        eprintln!("sfr2l: {file}: accepted {} record(s), {} with a verified MAC", r.records.len(), r.signed);
    }
}
