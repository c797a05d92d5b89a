//! The study's upstream application: where the server sidecars reach it, whether it is ready,
//! and what ran (for dataset metadata).

use super::{admin, Ports, Toolchain};
use sfr2l_core::study::{Ready, Upstream};
use std::net::SocketAddr;
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

/// The command line of a command upstream, `{port}` and `{venv}` filled in.
pub fn argv(upstream: &Upstream, ports: &Ports, tools: &Toolchain) -> Option<Vec<String>> {
    upstream.argv(ports.app, &tools.venv.to_string_lossy())
}

/// What ran as the upstream: the first line of the study's version command (with the command
/// line when there is none), or the address of a running service.
pub fn describe(upstream: &Upstream, ports: &Ports, tools: &Toolchain) -> String {
    match upstream {
        Upstream::Command { version, .. } => {
            let line = argv(upstream, ports, tools).unwrap_or_default().join(" ");
            let venv = tools.venv.to_string_lossy();
            let asked = version.as_ref().map(|v| v.iter().map(|a| a.replace("{venv}", &venv)).collect::<Vec<_>>());
            let said = asked.and_then(|v| {
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
