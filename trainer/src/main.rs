use clap::Parser;
use sfr2l::cli::Cli;
use sfr2l::commands::{self, Exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    match commands::run(Cli::parse()) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("sfr2l: error: {e:#}");
            Exit::Failure.into()
        }
    }
}
