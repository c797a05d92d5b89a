//! Deterministic tar + gzip for image layers: fixed order, mtime 0, uid/gid 0, mode 0644, no
//! user names and no gzip file name or time, so the same files give the same bytes and digests.
//! The archive is the `tar` crate's, the gzip stream flate2's.

use anyhow::{bail, Context, Result};
use flate2::{Compression, GzBuilder};
use std::io::Write;

/// A ustar archive of `files` (name, bytes) in the given order, written by the `tar` crate with
/// fixed metadata. Names must be relative, without `..`, and fit ustar's 100-byte name field
/// (no GNU long-name records, which some registries' scanners reject).
pub fn tar(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        if name.is_empty() || name.len() > 100 || name.starts_with('/') || name.split('/').any(|p| p == "..") {
            bail!("tar: entry name {name:?} must be a relative path of at most 100 bytes");
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, name, *bytes).with_context(|| format!("tar: adding {name}"))?;
    }
    b.into_inner().context("tar: finishing the archive")
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

    const BLOCK: usize = 512;

    #[test]
    fn headers_carry_a_valid_checksum_and_fixed_metadata() {
        let t = tar(&[("plugin.wasm", b"\0asm")]).unwrap();
        assert_eq!(t.len(), 4 * BLOCK);
        let h = &t[..BLOCK];
        let field = std::str::from_utf8(&h[148..156]).unwrap().trim_matches(['\0', ' ']);
        let stored = u64::from_str_radix(field, 8).unwrap();
        let mut blank = h.to_vec();
        blank[148..156].fill(b' ');
        assert_eq!(stored, blank.iter().map(|b| u64::from(*b)).sum::<u64>());
        assert_eq!(&h[136..147], b"00000000000", "mtime 0");
        assert_eq!((&h[100..107], &h[108..115], &h[116..123]), (&b"0000644"[..], &b"0000000"[..], &b"0000000"[..]));
        assert_eq!((&h[257..263], h[156]), (&b"ustar\0"[..], b'0'), "ustar, regular file");
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
