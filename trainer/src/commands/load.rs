//! `sfr2l load`: one fortio-compatible load run against a loopback target.

use super::Exit;
use crate::cli::LoadArgs;
use anyhow::{bail, Result};
use sfr2l_core::artifact::header;
use sfr2l_load::{self as load, LoadSpec};

pub fn run(a: LoadArgs) -> Result<Exit> {
    let mut spec = LoadSpec::from_url(&a.url, a.threads, a.calls)?;
    if !matches!(spec.host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]") && !spec.host.starts_with("127.") {
        bail!("{}: only loopback targets are allowed", a.url);
    }
    spec.qps = a.qps;
    spec.duration = a.duration;
    spec.timeout = a.timeout;
    spec.headers.extend(a.headers);
    if let Some(run) = a.run {
        spec.headers.push((header::RUN.into(), run));
        spec.headers.push((header::THREADS.into(), a.threads.to_string()));
        spec.headers.push((header::CALLS.into(), a.calls.to_string()));
    }
    let r = load::run(&spec)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r.fortio_json())?);
    } else {
        print!("{}", r.fortio_text());
    }
    Ok(Exit::Ok)
}
