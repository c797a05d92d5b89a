//! The study's upstream application: where the server sidecars reach it, whether it is ready,
//! and what ran (for dataset metadata).

use super::{admin, Ports, Toolchain};
use anyhow::{Context, Result};
use sfr2l_core::study::{Places, Ready, Upstream};
use sfr2l_files::write_atomic;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the server sidecars forward to: the lab's app port for a command the lab starts, or the
/// running service's address.
pub fn app_addr(upstream: &Upstream, ports: &Ports) -> SocketAddr {
    match upstream {
        Upstream::Command { .. } => SocketAddr::from(([127, 0, 0, 1], ports.app)),
        // The study checked the address (`IP:PORT`); an unparsable one cannot reach here.
        Upstream::Address { address, .. } => {
            address.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], ports.app)))
        }
    }
}

/// Whether `GET ready.path` at `addr` answers `ready.status`.
pub fn is_ready(addr: SocketAddr, ready: &Ready) -> bool {
    matches!(admin::request_to(addr, "GET", &ready.path), Ok((status, _)) if status == ready.status)
}

/// The upstream's own directory in lab `dir` (`{dir}`): its files, logs and scratch space.
pub fn home(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()).join("app")
}

/// What the placeholders of the study's upstream command stand for in this lab.
pub fn places(ports: &Ports, tools: &Toolchain, dir: &Path) -> Places {
    Places {
        port: ports.app,
        venv: tools.venv.to_string_lossy().into_owned(),
        dir: home(dir).to_string_lossy().into_owned(),
    }
}

/// The command line of a command upstream, its placeholders filled in.
pub fn argv(upstream: &Upstream, places: &Places) -> Option<Vec<String>> {
    upstream.argv(places)
}

/// Writes the upstream's files (atomically, placeholders filled in) into its directory, which
/// is created first; returns the directory.
pub fn write_files(upstream: &Upstream, places: &Places) -> Result<PathBuf> {
    let home = PathBuf::from(&places.dir);
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    for (rel, content) in upstream.files(places) {
        let path = home.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        write_atomic(&path, content.as_bytes()).with_context(|| format!("writing the study's upstream file {rel}"))?;
    }
    Ok(home)
}

/// What ran as the upstream: the first line of the study's version command (with the command
/// line when there is none), or the address of a running service.
pub fn describe(upstream: &Upstream, places: &Places) -> String {
    match upstream {
        Upstream::Command { .. } => {
            let line = argv(upstream, places).unwrap_or_default().join(" ");
            let said = upstream.version(places).and_then(|v| {
                let (prog, args) = v.split_first()?;
                let out = Command::new(prog).args(args).output().ok()?;
                let text =
                    String::from_utf8_lossy(if out.stdout.is_empty() { &out.stderr } else { &out.stdout }).into_owned();
                text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
            });
            match said {
                Some(v) => format!("{v}: {line}"),
                None => line,
            }
        }
        Upstream::Address { address, .. } => format!("service already running at {address}"),
    }
}
