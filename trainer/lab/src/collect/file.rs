//! The dataset file (whole rows only, resumable) and the metadata beside it.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sfr2l_core::trace::{Columns, DatasetRow};
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
    /// The study's columns: its inputs and its failure rate.
    pub columns: Columns,
}

impl DatasetFile {
    /// Opens (or, with `resume`, continues) the dataset of a study with `columns`.
    pub fn open(path: &Path, resume: bool, columns: &Columns) -> Result<DatasetFile> {
        let header = columns.header().join(",");
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
                            "{}:1: header differs from the study's columns:\n  found    {l}\n  expected {header}",
                            path.display()
                        );
                    }
                } else {
                    let row = DatasetRow::from_fields(columns, &fields)
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
        Ok(DatasetFile { path: path.to_path_buf(), file, done, rows, columns: columns.clone() })
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
    /// The study's name (the key is `profile`, as in the datasets collected before studies).
    pub profile: String,
    /// sha256 of the study file the rows were collected for.
    pub study_sha256: String,
    pub target: sfr2l_core::study::Target,
    pub rows: usize,
    pub planned_rows: u32,
    pub seed: u64,
    pub repeats: String,
    pub envoy_version: String,
    pub topology: sfr2l_core::study::LabTopology,
    /// What ran as the upstream (the study's version command and command line, or the address).
    pub upstream: String,
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

/// A resumed collection runs the study the file began with: same name, and the same file bytes
/// where the metadata recorded them (a dataset begun before studies records no sha256).
pub fn check_resumed_study(meta: &Path, name: &str, sha256: &str) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(meta) else { return Ok(()) };
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not the metadata of a collection", meta.display()))?;
    let began = v.get("profile").and_then(|p| p.as_str()).unwrap_or_default();
    if began != name {
        bail!("{}: the collection began for study {began:?}, not {name:?}: refusing to resume", meta.display());
    }
    if let Some(was) = v.get("study_sha256").and_then(|s| s.as_str()) {
        if was != sha256 {
            bail!(
                "{}: study {name} changed since the collection began (sha256 {was} then, {sha256} now): refusing to resume; restore the study file or collect into a new --out",
                meta.display()
            );
        }
    }
    Ok(())
}

pub fn meta_path(out: &Path) -> PathBuf {
    out.with_extension("meta.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_study_refuses_to_resume() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("d.meta.json");
        // No metadata yet (nothing collected): nothing to compare.
        check_resumed_study(&meta, "s1", "aa").unwrap();
        std::fs::write(&meta, r#"{"profile": "s1", "study_sha256": "aa"}"#).unwrap();
        check_resumed_study(&meta, "s1", "aa").unwrap();
        let e = check_resumed_study(&meta, "s1", "bb").unwrap_err().to_string();
        assert!(e.contains("study s1 changed since the collection began") && e.contains("refusing to resume"), "{e}");
        let e = check_resumed_study(&meta, "s2", "aa").unwrap_err().to_string();
        assert!(e.contains("began for study \"s1\", not \"s2\""), "{e}");
        // A dataset begun before studies recorded no sha256: the name decides.
        std::fs::write(&meta, r#"{"profile": "s1"}"#).unwrap();
        check_resumed_study(&meta, "s1", "bb").unwrap();
        std::fs::write(&meta, "{broken").unwrap();
        assert!(check_resumed_study(&meta, "s1", "aa").unwrap_err().to_string().contains("not the metadata"));
    }
}
