//! `sfr2l explore`: serves the what-if explorer on loopback (inference runs in the browser).

use super::Exit;
use crate::serve::{serve, Site};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// Address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8731")]
    pub addr: String,
    /// Exported simulators and agents, served read-only.
    #[arg(long, default_value = "policies")]
    pub policies: PathBuf,
    /// Datasets (the cards' `dataset.path` names `data/<profile>.csv`), served read-only.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// The built page module (`make explorer`: wasm-bindgen --target web output).
    #[arg(long, default_value = "target/explorer")]
    pub pkg: PathBuf,
    /// A lab directory whose client sidecar log holds live trace records.
    #[arg(long, default_value = ".lab")]
    pub lab: PathBuf,
}

pub fn run(a: ExploreArgs) -> Result<Exit> {
    let js = a.pkg.join("sfr2l_explorer.js");
    if !js.is_file() || !a.pkg.join("sfr2l_explorer_bg.wasm").is_file() {
        bail!("{}: the explorer module is not built; run `make explorer`", js.display());
    }
    if !a.policies.is_dir() {
        bail!("--policies {}: not a folder", a.policies.display());
    }
    let site = Site { pkg: a.pkg, policies: a.policies, data: a.data, lab: a.lab };
    serve(site, &a.addr, |addr| {
        println!("explorer: http://{addr}/  (Ctrl-C to stop)");
    })?;
    Ok(Exit::Ok)
}
