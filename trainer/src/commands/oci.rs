//! `sfr2l oci`: the filter as Istio's two Wasm image variants, as OCI image layouts.

use super::Exit;
use crate::cli::OciArgs;
use anyhow::{bail, Context, Result};
use sfr2l_deploy::oci::{artifact_image, compat_image};
use sfr2l_files::sha256_hex;

pub fn run(a: OciArgs) -> Result<Exit> {
    let wasm = std::fs::read(&a.wasm).with_context(|| format!("reading {} (make filter)", a.wasm.display()))?;
    if !wasm.starts_with(b"\0asm") {
        bail!("{}: not a Wasm module", a.wasm.display());
    }
    println!("module {} sha256 {}", a.wasm.display(), sha256_hex(&wasm));
    for (name, layout) in
        [("filter-compat", compat_image(&wasm, &a.tag)?), ("filter-oci", artifact_image(&wasm, &a.tag, "sfr2l")?)]
    {
        let dir = a.out.join(name);
        layout.write(&dir)?;
        println!("{name}: {} tag {} manifest {}", dir.display(), layout.tag, layout.manifest_digest());
    }
    Ok(Exit::Ok)
}
