//! The dataset file (whole rows only, resumable) and the metadata beside it.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sfr2l_core::trace::DatasetRow;
use sfr2l_files::csv_rows;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The dataset file: header, whole lines only; resume skips rows already there.
pub struct DatasetFile {
    path: PathBuf,
    file: std::fs::File,
    pub done: HashSet<(String, u32)>,
    pub rows: usize,
}

impl DatasetFile {
    pub fn open(path: &Path, resume: bool) -> Result<DatasetFile> {
        let header = DatasetRow::header().join(",");
        let mut done = HashSet::new();
        let mut rows = 0;
        if path.exists() {
            if !resume {
                bail!("{} already exists: pass --resume to continue it, or choose another --out", path.display());
            }
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            // A partial last line from a hard kill is dropped (the run is redone).
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            for (i, row) in csv_rows(&text[..keep]).enumerate() {
                let row = row.with_context(|| format!("reading {}", path.display()))?;
                let fields = row.fields();
                if i == 0 {
                    let l = fields.join(",");
                    if row.line != 1 || l != header {
                        bail!(
                            "{}:1: header differs from this version's columns:\n  found    {l}\n  expected {header}",
                            path.display()
                        );
                    }
                } else {
                    let row = DatasetRow::from_fields(&fields)
                        .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), row.line))?;
                    done.insert((row.config_id, row.repeat));
                    rows += 1;
                }
            }
            let f = std::fs::OpenOptions::new().write(true).open(path)?;
            f.set_len(keep as u64)?;
        } else {
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(path, format!("{header}\n")).with_context(|| format!("writing {}", path.display()))?;
        }
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(DatasetFile { path: path.to_path_buf(), file, done, rows })
    }

    /// Appends one row with a single write.
    /// Appends one row; on a failed write (a full disk) the file is cut back to its last whole
    /// row, so what is on disk always resumes.
    pub fn append(&mut self, row: &DatasetRow) -> Result<()> {
        let line = format!("{}\n", row.to_fields().join(","));
        let len = self.file.metadata().with_context(|| format!("reading {}", self.path.display()))?.len();
        if let Err(e) = self.file.write_all(line.as_bytes()).and_then(|()| self.file.flush()) {
            let cut = self.file.set_len(len);
            let kept = if cut.is_ok() { "the file keeps its whole rows" } else { "the last line may be torn" };
            return Err(e).with_context(|| {
                format!(
                    "appending row {} to {} ({kept}; free space, then continue with --resume)",
                    self.rows + 1,
                    self.path.display()
                )
            });
        }
        self.rows += 1;
        Ok(())
    }
}

/// The `.meta.json` beside a dataset.
#[derive(Debug, Serialize)]
pub struct DatasetMeta {
    pub schema: u32,
    pub profile: String,
    pub rows: usize,
    pub planned_rows: u32,
    pub seed: u64,
    pub repeats: String,
    pub envoy_version: String,
    pub topology: sfr2l_core::profile::LabTopology,
    pub upstream: String,
    pub httpbin_workers: u32,
    pub httpbin_threads: u32,
    pub upstream_workers: u32,
    pub path: String,
    pub warmup_calls: u32,
    pub started: String,
    pub updated: String,
    pub collection_seconds: f64,
    pub rejected_tries: u64,
    pub skipped_rows: u64,
    /// Lab processes restarted after they died mid-collection (fault drills, real faults).
    pub lab_restarts: u64,
    pub median_overhead_ms: f64,
    pub nproc: usize,
    pub git_commit: String,
    pub filter_sha256: String,
}

pub fn meta_path(out: &Path) -> PathBuf {
    out.with_extension("meta.json")
}
