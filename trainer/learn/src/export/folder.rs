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

    /// Replaces `out` with the staged folder. On Linux the two are swapped in one step
    /// (`renameat2` with `RENAME_EXCHANGE`), so `out` names a whole folder at every instant, and
    /// then the old one is removed. Where the filesystem cannot swap, the old folder is moved aside
    /// first (a kill between those two renames leaves `out` missing and the old one as `.old-*`).
    pub fn publish(self) -> Result<()> {
        let staged = self.tmp.keep();
        let out = &self.out;
        if out.exists() {
            if exchange(&staged, out)? {
                // `staged` now names the old folder.
                std::fs::remove_dir_all(&staged).ok();
                return Ok(());
            }
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

/// Swaps two existing paths atomically; `false` where the filesystem or kernel cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are NUL-terminated paths that outlive the call; renameat2 only reads them.
    let rc =
        unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(e).with_context(|| format!("swapping {} into {}", a.display(), b.display())),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn publish_creates_then_replaces_and_leaves_no_siblings() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("seed-1");
        for (round, file) in [(1, "a.onnx"), (2, "b.onnx")] {
            let stage = StagedDir::new(&out, ".rl-").unwrap();
            std::fs::write(stage.path().join(file), format!("round {round}")).unwrap();
            assert_eq!(names(root.path()).len(), if round == 1 { 1 } else { 2 }, "staged beside `out`");
            stage.publish().unwrap();
            // The old folder's files are gone with it, the new one is whole, and nothing is left beside it.
            assert_eq!(names(&out), vec![file.to_string()]);
            assert_eq!(std::fs::read_to_string(out.join(file)).unwrap(), format!("round {round}"));
            assert_eq!(names(root.path()), vec!["seed-1".to_string()]);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_swaps_two_folders() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("x"), "from a").unwrap();
        // tmpfs and ext4 both swap; a filesystem that cannot is answered with `false`.
        if exchange(&a, &b).unwrap() {
            assert_eq!(std::fs::read_to_string(b.join("x")).unwrap(), "from a");
            assert!(names(&a).is_empty());
        }
        let e = exchange(&a, &root.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
