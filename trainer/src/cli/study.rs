//! `sfr2l study ...`: study files, checked before anything runs.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum StudyCommand {
    /// Check a study file (or a study by name): every error names the file and the YAML path or
    /// line; prints a summary when the study is valid.
    Check(StudyCheckArgs),
    /// Print a study as every stage reads it (JSON: ranges in catalogue units, grids expanded).
    Show(StudyCheckArgs),
    /// List the studies found under studies/ and the built-in ones.
    List,
}

#[derive(Debug, Args)]
pub struct StudyCheckArgs {
    /// A study name (`studies/<name>.yaml` or built in) or a path to a .yaml file.
    pub study: String,
}
