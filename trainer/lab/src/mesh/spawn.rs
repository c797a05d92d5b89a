//! Starting the lab's processes one by one, and healing a lab whose process died or was paused:
//! the fault drills (kill -9 of an Envoy, of the upstream app, SIGSTOP) end here with a restarted process
//! or a clear message, never with a run measured on a broken lab.

use super::process::{wait_ready, Proc, ProcState};
use super::{admin, envoy, upstream, write_json, Lab};
use anyhow::{bail, Context, Result};
use sfr2l_core::study::Upstream;
use std::process::Command;
use std::time::{Duration, Instant};

/// The lab's processes in start order (the app only when the study's upstream is a command the
/// lab starts, the artifact server only when it serves artifacts).
pub const START_ORDER: [&str; 4] = ["app", "upstream-envoy", "artifacts", "client-envoy"];

/// How long a healed lab waits for a paused (SIGSTOP) process to be continued.
pub const STOPPED_WAIT: Duration = Duration::from_secs(15);

impl Lab {
    /// The processes this lab's options call for, in start order.
    pub(super) fn wanted(&self) -> Vec<&'static str> {
        let command = matches!(self.opts.upstream, Upstream::Command { .. });
        START_ORDER
            .into_iter()
            .filter(|n| (*n != "artifacts" || self.opts.artifacts.is_some()) && (*n != "app" || command))
            .collect()
    }

    /// Starts process `name` and waits until it is ready; it is recorded (replacing a dead one
    /// of the same name) as soon as it runs, so that a failed start still stops it.
    pub(super) fn start_proc(&mut self, name: &str) -> Result<()> {
        let p = self.spawn_proc(name)?;
        let at = match self.procs.iter().position(|q| q.name == name) {
            Some(i) => {
                self.procs[i] = p;
                i
            }
            None => {
                self.procs.push(p);
                self.procs.len() - 1
            }
        };
        let ports = self.ports;
        let (app, probe) = (upstream::app_addr(&self.opts.upstream, &ports), self.opts.upstream.ready().clone());
        let mut timeout = Duration::from_secs(30);
        let ready: Box<dyn FnMut() -> bool> = match name {
            "app" => {
                timeout = Duration::from_millis(probe.timeout_ms);
                Box::new(move || upstream::is_ready(app, &probe))
            }
            "upstream-envoy" => Box::new(move || admin::is_live(ports.upstream_admin)),
            "artifacts" => Box::new(move || admin::request(ports.artifacts, "GET", "/").is_ok()),
            _ => Box::new(move || admin::is_live(ports.client_admin)),
        };
        wait_ready(&mut self.procs[at], timeout, ready)?;
        if name == "client-envoy" {
            self.wait_versions(Duration::from_secs(10), true)?;
        }
        Ok(())
    }

    fn spawn_proc(&mut self, name: &str) -> Result<Proc> {
        let (dir, ports, attached) = (self.opts.dir.clone(), self.ports, self.opts.attached);
        match name {
            "app" => {
                // The study's upstream command, on the lab's app port, in its own directory with
                // its files written afresh.
                let places = upstream::places(&ports, &self.opts.tools, &dir);
                let argv = upstream::argv(&self.opts.upstream, &places)
                    .context("the study's upstream is a running service, not a command")?;
                let (prog, args) = argv.split_first().context("empty upstream command")?;
                let home = upstream::write_files(&self.opts.upstream, &places)?;
                let mut cmd = Command::new(prog);
                cmd.args(args).current_dir(home);
                Proc::spawn(name, cmd, &dir.join("logs/app.log"), attached, libc::SIGTERM)
                    .with_context(|| format!("starting the study's upstream `{}`", argv.join(" ")))
            }
            "upstream-envoy" => {
                // Server-side sidecars: static config.
                let up = dir.join("upstream.json");
                write_json(
                    &up,
                    &envoy::upstream_static(
                        &ports,
                        &self.opts.topology,
                        upstream::app_addr(&self.opts.upstream, &ports),
                    ),
                )?;
                self.spawn_envoy(name, &up, self.opts.upstream_workers, "upstream-envoy.log")
            }
            "artifacts" => {
                // Any static HTTP server does; the lab uses Python's.
                let root = self.opts.artifacts.clone().context("the lab serves no artifacts")?;
                let mut cmd = Command::new(self.opts.tools.venv.join("bin/python"));
                cmd.args(["-m", "http.server", "--bind", "127.0.0.1", &ports.artifacts.to_string(), "--directory"])
                    .arg(root);
                Proc::spawn(name, cmd, &dir.join("logs/artifacts.log"), attached, libc::SIGTERM)
            }
            _ => {
                // Client sidecar: file-based LDS/CDS. A restarted one reads the files as they are
                // (the rule and filter configuration of the current generation).
                let boot = dir.join("client-bootstrap.json");
                write_json(&boot, &envoy::client_bootstrap(&dir, &ports))?;
                self.spawn_envoy(name, &boot, self.opts.topology.client_workers, "client-envoy.log")
            }
        }
    }

    /// The pid of lab process `name` (`app` is the upstream command's process, e.g. gunicorn's
    /// master, whose workers are its children).
    pub fn pid_of(&self, name: &str) -> Option<i32> {
        self.procs.iter().find(|p| p.name == name).map(|p| p.pid)
    }

    /// What is wrong with the lab's processes now: `(name, pid, state)` of each one not running.
    pub fn faults(&mut self) -> Vec<(String, i32, ProcState)> {
        self.procs
            .iter_mut()
            .filter_map(|p| match p.state() {
                ProcState::Running => None,
                s => Some((p.name.clone(), p.pid, s)),
            })
            .collect()
    }

    /// Brings a faulty lab back: waits up to `stopped_wait` for paused processes to be continued
    /// (then fails, naming them and how to continue them), and restarts dead ones (their process
    /// groups are killed first, so no orphaned worker keeps a port). Returns one line per restart.
    pub fn heal(&mut self, stopped_wait: Duration) -> Result<Vec<String>> {
        let t0 = Instant::now();
        loop {
            let stopped: Vec<_> = self.faults().into_iter().filter(|f| f.2 == ProcState::Stopped).collect();
            if stopped.is_empty() {
                break;
            }
            if t0.elapsed() >= stopped_wait {
                let names: Vec<String> = stopped.iter().map(|(n, pid, _)| format!("{n} (pid {pid})")).collect();
                bail!(
                    "{} stopped (SIGSTOP) for over {stopped_wait:?}: continue with `kill -CONT <pid>` or stop the lab (`sfr2l lab down`)",
                    names.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let dead: Vec<String> =
            self.faults().into_iter().filter(|f| f.2 == ProcState::Dead).map(|(n, _, _)| n).collect();
        let mut done = Vec::new();
        // In start order: the client sidecar last, once what it routes to is back.
        for name in self.wanted() {
            if !dead.iter().any(|d| d == name) {
                continue;
            }
            let old = self.procs.iter().find(|p| p.name == name).map(|p| p.pid).unwrap_or(0);
            if let Some(p) = self.procs.iter_mut().find(|p| p.name == name) {
                p.stop(Duration::from_millis(500)); // reaps it and kills what is left of its group
            }
            self.start_proc(name).with_context(|| format!("restarting {name}"))?;
            let new = self.procs.iter().find(|p| p.name == name).map(|p| p.pid).unwrap_or(0);
            done.push(format!("{name} (pid {old}) had exited: restarted as pid {new}"));
        }
        if !done.is_empty() {
            self.save_pids()?;
        }
        Ok(done)
    }
}
