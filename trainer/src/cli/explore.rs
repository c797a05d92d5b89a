//! `sfr2l explore`'s command line.

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
