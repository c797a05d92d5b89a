//! One file per command group. Each is thin: checked arguments become settings, the library
//! does the work, the command prints the outcome and returns an [`Exit`] code; nothing here calls
//! `process::exit`.

pub mod advise;
pub mod explore;
pub mod lab;
pub mod load;
pub mod manifests;
pub mod mesh;
pub mod oci;
pub mod rl;
pub mod sim;
pub mod study;
pub mod traces;
pub mod validate;

use crate::cli::{Cli, Commands};
use anyhow::Result;

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// An error (printed as `sfr2l: error: ...`).
    Failure = 1,
    /// Stopped by Ctrl-C; the work done so far is kept (`--resume` continues it).
    Interrupted = 130,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Commands::Study(c) => study::run(c),
        Commands::Lab(c) => lab::run(c),
        Commands::Load(a) => load::run(a),
        Commands::Traces(c) => traces::run(c),
        Commands::Sim(c) => sim::run(c),
        Commands::Rl(c) => rl::run(c),
        Commands::Manifests(a) => manifests::run(a),
        Commands::Mesh(c) => mesh::run(c),
        Commands::Oci(a) => oci::run(a),
        Commands::Advise(a) => advise::run(a),
        Commands::Explore(a) => explore::run(a),
        Commands::Validate(a) => validate::run(a),
    }
}
