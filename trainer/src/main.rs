use clap::Parser;
use sfr2l::cli::{Cli, Commands};
use sfr2l::commands;

/// Process exit codes.
#[repr(i32)]
enum Exit {
    Ok = 0,
    Failure = 1,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Lab(c) => commands::lab(c),
        Commands::Load(a) => commands::load_cmd(a),
        Commands::Traces(c) => commands::traces(c),
        Commands::Sim(c) => sfr2l::sim_cmd::sim(c),
        Commands::Rl(c) => sfr2l::rl_cmd::rl(c),
    };
    let code = match result {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("sfr2l: error: {e:#}");
            Exit::Failure
        }
    };
    std::process::exit(code as i32);
}
