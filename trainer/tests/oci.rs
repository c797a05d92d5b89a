//! `sfr2l oci`: the built filter as OCI image layouts, read back with independent readers (the
//! `tar` crate, flate2): reproducible to the byte, every blob named by its sha256, the compat
//! layer holding `plugin.wasm`, the oci variant the two layers istio-agent expects.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn oci(wasm: &Path, out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_sfr2l"))
        .args(["oci", "--tag", "t1", "--wasm"])
        .arg(wasm)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap();
    assert_eq!(format!("sha256:{:x}", Sha256::digest(&bytes)), digest, "blob content must match its name");
    bytes
}

fn manifest(dir: &Path) -> (Value, String) {
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
    let d = &index["manifests"][0];
    assert_eq!(d["annotations"]["org.opencontainers.image.ref.name"], "t1");
    let digest = d["digest"].as_str().unwrap().to_string();
    let bytes = blob(dir, &digest);
    assert_eq!(d["size"].as_u64().unwrap() as usize, bytes.len());
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    for l in m["layers"].as_array().unwrap().iter().chain(std::iter::once(&m["config"])) {
        let b = blob(dir, l["digest"].as_str().unwrap());
        assert_eq!(l["size"].as_u64().unwrap() as usize, b.len());
    }
    (m, digest)
}

#[test]
fn layouts_are_reproducible_and_hold_the_module() {
    let wasm = root().join("target/wasm32-wasip1/release/sfr2l_filter.wasm");
    assert!(wasm.exists(), "{} missing: run `make filter`", wasm.display());
    let module = std::fs::read(&wasm).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    oci(&wasm, &a);
    oci(&wasm, &b);
    assert_eq!(files(&a), files(&b), "same module, same bytes");

    let (m, compat_digest) = manifest(&a.join("filter-compat"));
    assert_eq!(m["annotations"]["module.wasm.image/variant"], "compat");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let gz = blob(&a.join("filter-compat"), layers[0]["digest"].as_str().unwrap());
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar_bytes).unwrap();
    let config: Value =
        serde_json::from_slice(&blob(&a.join("filter-compat"), m["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], format!("sha256:{:x}", Sha256::digest(&tar_bytes)));
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut entries: Vec<(String, Vec<u8>, u64)> = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        entries.push((e.path().unwrap().to_string_lossy().to_string(), body, e.header().mtime().unwrap()));
    }
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "plugin.wasm");
    assert!(entries[0].1 == module, "plugin.wasm must be the built module");
    assert_eq!(entries[0].2, 0);

    let (m, oci_digest) = manifest(&a.join("filter-oci"));
    let layers = m["layers"].as_array().unwrap();
    let types: Vec<&str> = layers.iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["application/vnd.module.wasm.config.v1+json", "application/vnd.module.wasm.content.layer.v1+wasm"]
    );
    assert_eq!(layers[1]["digest"], format!("sha256:{:x}", Sha256::digest(&module)));
    assert!(blob(&a.join("filter-oci"), layers[1]["digest"].as_str().unwrap()) == module);

    // A different module gives different digests.
    let mut other = module.clone();
    other.extend_from_slice(b"\0\x04name"); // a trailing custom-section-like byte change
    let other_path = tmp.path().join("other.wasm");
    std::fs::write(&other_path, &other).unwrap();
    let c = tmp.path().join("c");
    oci(&other_path, &c);
    assert_ne!(manifest(&c.join("filter-compat")).1, compat_digest);
    assert_ne!(manifest(&c.join("filter-oci")).1, oci_digest);
}
