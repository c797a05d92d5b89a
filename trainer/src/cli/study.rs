//! `sfr2l study ...`: study files, checked before anything runs.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum StudyCommand {
    /// Check a study file (or a study by name): every error names the file and the YAML path or
    /// line; prints a summary when the study is valid.
    Check(StudyCheckArgs),
    /// Print a study as every stage reads it (JSON: ranges in catalogue units, grids expanded).
    Show(StudyCheckArgs),
    /// List the studies found under studies/ and the built-in ones.
    List,
    /// Draft a study from your own DestinationRule (and VirtualService) files and a URL your
    /// service answers on: your rule's fields varied around your values, the load grid sized by
    /// a short pilot against the URL, comments saying what to adjust.
    Init(StudyInitArgs),
}

#[derive(Debug, Args)]
pub struct StudyInitArgs {
    /// Rule files as you apply them (several documents, `kind: List`, v1/v1beta1/v1alpha3).
    #[arg(long, required = true, num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// A URL the service answers on from here (`http://127.0.0.1:8080/api`, a port-forward):
    /// the pilot runs against it and the lab uses it as the study's upstream.
    #[arg(long)]
    pub url: String,
    /// The study file to write (`studies/NAME.yaml`; NAME is the study's name).
    #[arg(long)]
    pub out: PathBuf,
    /// The Kubernetes Service; default: the host of the rules (when they name one).
    #[arg(long)]
    pub service: Option<String>,
    /// Its namespace; default: the host's (FQDN), the rule's metadata.namespace, or `default`.
    #[arg(long)]
    pub namespace: Option<String>,
    /// The Service port; default: the URL's.
    #[arg(long)]
    pub port: Option<u16>,
    /// A subset of the rule to study (its own policy merged in, as istiod does).
    #[arg(long)]
    pub subset: Option<String>,
    /// Seconds per pilot step (6 steps, 1 to 32 connections).
    #[arg(long, default_value_t = 1.0)]
    pub pilot_seconds: f64,
    /// Overwrite `--out` if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StudyCheckArgs {
    /// A study name (`studies/<name>.yaml` or built in) or a path to a .yaml file.
    pub study: String,
}
