//! Deterministic tar + gzip for image layers: fixed order, mtime 0, uid/gid 0, mode 0644, no
//! user names and no gzip file name or time, so the same files give the same bytes and digests.

use anyhow::{bail, Result};
use flate2::{Compression, GzBuilder};
use std::io::Write;

const BLOCK: usize = 512;

fn octal(field: &mut [u8], value: u64) -> Result<()> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        bail!("tar: value {value} does not fit a {digits}-digit field");
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// One ustar header for a regular file.
fn header(name: &str, size: u64) -> Result<[u8; BLOCK]> {
    if name.is_empty() || name.len() > 100 || name.starts_with('/') || name.split('/').any(|p| p == "..") {
        bail!("tar: entry name {name:?} must be a relative path of at most 100 bytes");
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644)?; // mode
    octal(&mut h[108..116], 0)?; // uid
    octal(&mut h[116..124], 0)?; // gid
    octal(&mut h[124..136], size)?;
    octal(&mut h[136..148], 0)?; // mtime
    h[156] = b'0'; // regular file
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum)?;
    h[155] = b' ';
    Ok(h)
}

/// A tar archive of `files` (name, bytes) in the given order.
pub fn tar(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (name, bytes) in files {
        out.extend_from_slice(&header(name, bytes.len() as u64)?);
        out.extend_from_slice(bytes);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

/// Gzip with no name, mtime 0 and a fixed level.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), Compression::new(9));
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_a_valid_checksum_and_fixed_metadata() {
        let t = tar(&[("plugin.wasm", b"\0asm")]).unwrap();
        assert_eq!(t.len(), 4 * BLOCK);
        let h = &t[..BLOCK];
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut blank = h.to_vec();
        blank[148..156].fill(b' ');
        assert_eq!(stored, blank.iter().map(|b| u64::from(*b)).sum::<u64>());
        assert_eq!(&h[136..147], b"00000000000");
        assert_eq!(&t[BLOCK..BLOCK + 4], b"\0asm");
    }

    #[test]
    fn names_that_escape_or_overflow_are_refused() {
        assert!(tar(&[("../x", b"")]).is_err());
        assert!(tar(&[("/x", b"")]).is_err());
        assert!(tar(&[(&"a".repeat(101), b"")]).is_err());
    }

    #[test]
    fn gzip_is_reproducible() {
        assert_eq!(gzip(b"abc").unwrap(), gzip(b"abc").unwrap());
        assert_eq!(&gzip(b"abc").unwrap()[4..8], &[0, 0, 0, 0], "mtime must be 0");
    }
}
