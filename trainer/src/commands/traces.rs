//! `sfr2l traces ingest`: trace records from an Envoy log as JSON lines or dataset rows.

use super::Exit;
use crate::cli::{IngestFormat, TracesCommand};
use crate::ingest;
use anyhow::{bail, Context, Result};
use sfr2l_core::trace::DatasetRow;
use sfr2l_core::LoadSetting;
use std::io::Write;

pub fn run(cmd: TracesCommand) -> Result<Exit> {
    let TracesCommand::Ingest(a) = cmd;
    let reader = ingest::open(&a.file)?;
    let found = ingest::ingest(reader, &a.file)?;
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut errors = 0;
    if matches!(a.format, IngestFormat::Csv) {
        writeln!(out, "{}", DatasetRow::header().join(","))?;
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
                        DatasetRow::new(&rule, &load, &rec, f64::NAN, rec.run.clone(), 0).to_fields().join(",")
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
    if errors > 0 {
        bail!("{errors} malformed trace record(s) in {}", a.file);
    }
    Ok(Exit::Ok)
}
