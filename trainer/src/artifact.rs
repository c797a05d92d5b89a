//! Artifact plumbing shared by every stage: atomic file writes, content hashes, provenance (git
//! commit, UTC timestamp), JSON configs read with field paths in errors, and the parity measure
//! every export check uses.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lower-case hex sha256 of a file's content; empty if it cannot be read.
pub fn sha256_file(path: &Path) -> String {
    std::fs::read(path).map(|b| sha256_hex(&b)).unwrap_or_default()
}

/// The short commit of the working directory's repository, or `unknown` outside one.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The current UTC time as RFC 3339 to the second, e.g. `2026-11-29T10:54:02Z`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A JSON config file; errors name the file and the field path.
pub fn read_config<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("{}: field `{}`: {}", p.display(), e.path(), e.inner()))
}

/// Relative difference used by every parity check: `|a - b| / max(|b|, floor)`. The floor
/// keeps rates near 0 from turning float rounding into large relative numbers.
pub fn rel_diff(a: f32, b: f32, floor: f32) -> f32 {
    (a - b).abs() / b.abs().max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_timestamps_have_their_shapes() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
