//! `sfr2l explore`: serves the what-if explorer on loopback (inference runs in the browser).

use super::Exit;
use crate::cli::ExploreArgs;
use crate::serve::{serve, Site};
use anyhow::{bail, Result};

pub fn run(a: ExploreArgs) -> Result<Exit> {
    let js = a.pkg.join("sfr2l_explorer.js");
    if !js.is_file() || !a.pkg.join("sfr2l_explorer_bg.wasm").is_file() {
        bail!("{}: the explorer module is not built; run `make explorer`", js.display());
    }
    if !a.policies.is_dir() {
        bail!("--policies {}: not a folder", a.policies.display());
    }
    let trace_key = super::traces::trace_key()?;
    let site = Site { pkg: a.pkg, policies: a.policies, data: a.data, lab: a.lab, trace_key };
    serve(site, &a.addr, |addr| {
        println!("explorer: http://{addr}/  (Ctrl-C to stop)");
    })?;
    Ok(Exit::Ok)
}
