//! Artifact folders written as one step: files go to a temporary sibling, which then replaces
//! the target, so a failure or a kill never leaves a half-written folder behind.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A folder being filled; `publish` moves it into place.
pub struct StagedDir {
    tmp: tempfile::TempDir,
    out: PathBuf,
    parent: PathBuf,
}

impl StagedDir {
    /// A temporary folder beside `out` (same filesystem, so the final rename is atomic).
    pub fn new(out: &Path, prefix: &str) -> Result<Self> {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&parent)
            .with_context(|| format!("temp dir in {}", parent.display()))?;
        Ok(Self { tmp, out: out.to_path_buf(), parent })
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Replaces `out` with the staged folder (the old one is moved aside, then removed).
    pub fn publish(self) -> Result<()> {
        let staged = self.tmp.keep();
        let out = &self.out;
        if out.exists() {
            let old = self.parent.join(format!(
                ".old-{}-{}",
                std::process::id(),
                out.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
            ));
            std::fs::rename(out, &old).with_context(|| format!("moving the old {} aside", out.display()))?;
            std::fs::rename(&staged, out).with_context(|| format!("renaming into {}", out.display()))?;
            std::fs::remove_dir_all(&old).ok();
        } else {
            std::fs::rename(&staged, out).with_context(|| format!("renaming into {}", out.display()))?;
        }
        Ok(())
    }
}
