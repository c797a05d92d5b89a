//! The local mesh lab: real Envoy (client and server sidecars) in front of the study's real
//! upstream (a command it starts, or a service already running), on loopback. Rules switch through file-based LDS/CDS, confirmed on the admin endpoint.

pub mod admin;
pub mod envoy;
mod ports;
pub mod process;
mod rules;
mod spawn;
mod toolchain;
pub mod upstream;

pub use ports::{Ports, MAX_HOSTS};
pub use spawn::STOPPED_WAIT;
pub use toolchain::Toolchain;

use anyhow::{bail, Context, Result};
use process::Proc;
use serde::{Deserialize, Serialize};
use sfr2l_core::config::ConfigV1;
use sfr2l_core::study::{LabTopology, Target, Upstream};
use sfr2l_core::TrafficRule;
use sfr2l_files::write_atomic;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabOptions {
    pub dir: PathBuf,
    pub base_port: u16,
    pub topology: LabTopology,
    pub tools: Toolchain,
    /// The application behind the server sidecars (the study's `lab.upstream`).
    pub upstream: Upstream,
    /// The study's target: the client sidecar's cluster is its cluster, named as istiod names
    /// it ([`Target::cluster`]); load tests request its path.
    pub target: Target,
    /// Workers of the server-side Envoy.
    pub upstream_workers: u32,
    /// Children die with this process (collect, tests); `lab up` starts them detached.
    pub attached: bool,
    /// Run idle timeout of the filter.
    pub idle_timeout_ms: u64,
    /// A folder served to the filter as Envoy cluster `sfr2l-artifacts` (models for load-test
    /// mode), by a static HTTP server on loopback.
    #[serde(default)]
    pub artifacts: Option<PathBuf>,
}

/// What `lab up` leaves behind for `lab status` / `lab down` / `lab collect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub options: LabOptions,
    pub pids: BTreeMap<String, i32>,
    pub generation: u64,
}

pub struct Lab {
    pub opts: LabOptions,
    pub ports: Ports,
    procs: Vec<Proc>,
    generation: u64,
    rule: Option<TrafficRule>,
    cluster_settings: envoy::ClusterSettings,
    stopped: bool,
    /// Held while this process drives the lab (see [`lock`]).
    lock: Option<std::fs::File>,
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(v)?.as_bytes())
}

/// A permissive rule to start with (no limits reached, no ejection).
pub fn open_rule() -> TrafficRule {
    TrafficRule {
        max_pending_requests: u32::MAX,
        max_connections: u32::MAX,
        max_requests_per_connection: 0,
        base_ejection_time: sfr2l_core::IstioDuration::from_secs(30.0),
        max_ejection_percent: 0,
        interval: sfr2l_core::IstioDuration::from_secs(10.0),
        consecutive_5xx_errors: 0,
    }
}

impl Lab {
    pub fn client_log(&self) -> PathBuf {
        self.opts.dir.join("logs/client-envoy.log")
    }

    pub fn state_path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn rule(&self) -> Option<TrafficRule> {
        self.rule
    }

    fn filter_config(&self, rule: Option<TrafficRule>) -> ConfigV1 {
        ConfigV1 {
            rule,
            generation: self.generation,
            idle_timeout: sfr2l_core::IstioDuration::from_secs(self.opts.idle_timeout_ms as f64 / 1000.0),
            ..ConfigV1::default()
        }
    }

    /// Starts the upstream app, the server-side Envoy and the client sidecar; waits until all are ready.
    pub fn start(opts: LabOptions) -> Result<Lab> {
        if opts.topology.hosts == 0 || opts.topology.hosts > MAX_HOSTS {
            bail!("hosts must be within 1..={MAX_HOSTS} (got {})", opts.topology.hosts);
        }
        let ports = Ports::from_base(opts.base_port);
        for (port, what) in ports.all(opts.topology.hosts) {
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                bail!("port {port} ({what}) is in use on 127.0.0.1: stop what holds it (`sfr2l lab down`?) or pick another --base-port");
            }
        }
        let dir = &opts.dir;
        for sub in ["logs", "lds", "cds"] {
            std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        let lock = Some(lock(dir)?);
        // A new lab starts its logs afresh; a process that `heal` restarts appends to its own, so
        // the records written before a crash stay where readers' offsets point.
        for name in spawn::START_ORDER {
            let _ = std::fs::remove_file(dir.join("logs").join(format!("{name}.log")));
        }
        let mut lab = Lab {
            opts: opts.clone(),
            ports,
            procs: Vec::new(),
            generation: 1,
            rule: None,
            cluster_settings: Default::default(),
            stopped: false,
            lock,
        };

        // A lab that fails to come up leaves nothing behind, also when started detached.
        if let Err(e) = Self::bring_up(&mut lab) {
            lab.stop();
            return Err(e);
        }
        Ok(lab)
    }

    /// Starts the processes of a new lab, each recorded in `lab.procs` as soon as it runs.
    fn bring_up(lab: &mut Lab) -> Result<()> {
        if let Upstream::Address { address, ready } = &lab.opts.upstream {
            let addr = upstream::app_addr(&lab.opts.upstream, &lab.ports);
            let t0 = std::time::Instant::now();
            while !upstream::is_ready(addr, ready) {
                if t0.elapsed() >= Duration::from_millis(ready.timeout_ms) {
                    bail!(
                        "the study's upstream at {address} did not answer GET {} with {} within {} ms",
                        ready.path,
                        ready.status,
                        ready.timeout_ms
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // The client sidecar starts on an open rule (its filter observing, unconfigured).
        let rule = open_rule();
        write_json(&lab.opts.dir.join("cds/cds.json"), &lab.cds(&rule))?;
        let lds = envoy::client_lds(
            &lab.ports,
            &lab.opts.tools.wasm,
            &lab.filter_config(None).to_json(),
            lab.generation,
            &lab.opts.target.cluster(),
        );
        write_json(&lab.opts.dir.join("lds/lds.json"), &lds)?;
        for name in lab.wanted() {
            lab.start_proc(name)?;
        }
        Ok(())
    }

    fn spawn_envoy(&self, name: &str, config: &Path, workers: u32, log: &str) -> Result<Proc> {
        let mut cmd = Command::new(&self.opts.tools.envoy);
        cmd.arg("-c")
            .arg(config)
            .args(["--concurrency", &workers.to_string()])
            .args(["--disable-hot-restart", "--drain-time-s", "1", "--parent-shutdown-time-s", "2"])
            .args(["-l", "warning", "--component-log-level", "wasm:info,config:warning"])
            .args(["--service-cluster", "sfr2l-lab", "--service-node", name]);
        Proc::spawn(name, cmd, &self.opts.dir.join("logs").join(log), self.opts.attached, libc::SIGKILL)
    }

    /// Re-attaches to a lab started by `lab up`; fails if any of its processes died.
    pub fn attach(dir: &Path) -> Result<Lab> {
        // The lock first: a lab driven by another process is in use whatever it recorded.
        let held = if dir.is_dir() { Some(lock(dir)?) } else { None };
        let mut lab = Self::attach_unchecked(dir)?;
        lab.lock = held;
        lab.check()?;
        Ok(lab)
    }

    /// Like [`Lab::attach`] but accepts dead processes (for `status` and `down`).
    pub fn attach_unchecked(dir: &Path) -> Result<Lab> {
        let path = Self::state_path(dir);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("no lab recorded: {} not found", path.display()))?;
        let st: LabState =
            serde_json::from_str(&text).with_context(|| format!("{}: corrupt lab state", path.display()))?;
        let logs = dir.join("logs");
        let procs = st.pids.iter().map(|(n, pid)| Proc::adopt(n, *pid, logs.join(format!("{n}.log")))).collect();
        Ok(Lab {
            ports: Ports::from_base(st.options.base_port),
            opts: st.options,
            procs,
            generation: st.generation,
            rule: None,
            cluster_settings: Default::default(),
            stopped: false,
            lock: None,
        })
    }

    /// Leaves the processes running and records them for `attach` / `lab down`.
    pub fn detach(mut self) -> Result<()> {
        let st = LabState {
            options: self.opts.clone(),
            pids: self.procs.iter().map(|p| (p.name.clone(), p.pid)).collect(),
            generation: self.generation,
        };
        write_atomic(&Self::state_path(&self.opts.dir), serde_json::to_string_pretty(&st)?.as_bytes())?;
        self.stopped = true;
        self.lock = None;
        Ok(())
    }

    /// Records restarted processes' pids for `attach` / `lab down` (a lab started by `lab up`).
    fn save_pids(&self) -> Result<()> {
        let path = Self::state_path(&self.opts.dir);
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(mut st) = serde_json::from_str::<LabState>(&text) {
                st.pids = self.procs.iter().map(|p| (p.name.clone(), p.pid)).collect();
                write_atomic(&path, serde_json::to_string_pretty(&st)?.as_bytes())?;
            }
        }
        Ok(())
    }

    fn save_generation(&self) -> Result<()> {
        let path = Self::state_path(&self.opts.dir);
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(mut st) = serde_json::from_str::<LabState>(&text) {
                st.generation = self.generation;
                write_atomic(&path, serde_json::to_string_pretty(&st)?.as_bytes())?;
            }
        }
        Ok(())
    }

    /// Fails with the last log lines of any lab process that died.
    pub fn check(&mut self) -> Result<()> {
        for p in &mut self.procs {
            p.check_alive()?;
        }
        Ok(())
    }

    pub fn status(&mut self) -> Vec<(String, i32, bool)> {
        self.procs.iter_mut().map(|p| (p.name.clone(), p.pid, p.alive())).collect()
    }

    /// The client cluster's counters (`cluster.<name>.*`, the prefix removed).
    pub fn cluster_stats(&self) -> Result<BTreeMap<String, u64>> {
        let cluster = self.opts.target.cluster();
        let (nums, _) =
            admin::stats(self.ports.client_admin, &format!("^cluster\\.{}\\.", admin::regex_escape(&cluster)))?;
        let prefix = format!("cluster.{cluster}.");
        Ok(nums.into_iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|s| (s.to_string(), v))).collect())
    }

    /// The server-side Envoy's fault counters (`envoy::FAULT_COUNTERS`), summed over its clusters.
    pub fn server_fault_stats(&self) -> Result<BTreeMap<String, u64>> {
        let names = envoy::FAULT_COUNTERS.join("|");
        let (nums, _) = admin::stats(self.ports.upstream_admin, &format!("^cluster\\..*\\.({names})$"))?;
        let mut out = BTreeMap::new();
        for (k, v) in nums {
            if let Some(c) = k.rsplit('.').next() {
                *out.entry(c.to_string()).or_insert(0) += v;
            }
        }
        Ok(out)
    }

    pub fn client_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.ports.client_listener, path)
    }

    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        for p in self.procs.iter_mut().rev() {
            p.stop(Duration::from_secs(3));
        }
        let _ = std::fs::remove_file(Self::state_path(&self.opts.dir));
        self.stopped = true;
    }

    pub fn pids(&self) -> Vec<i32> {
        self.procs.iter().map(|p| p.pid).collect()
    }
}

/// One process drives a lab at a time: a rule pushed by `lab apply` in the middle of a
/// collection's run would make that run measure another rule than its row says. `Lab::start`
/// and `Lab::attach` hold an exclusive lock on `<dir>/lab.lock` (released with the process, also
/// when it is killed); a second one fails naming the holder.
fn lock(dir: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let path = dir.join("lab.lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        bail!(
            "the lab in {} is in use by another sfr2l process ({}): wait for its collection, validation or load test to finish, or stop it",
            dir.display(),
            holder.trim()
        );
    }
    f.set_len(0)?;
    f.rewind()?;
    let me = std::env::args().collect::<Vec<_>>().join(" ");
    let _ = write!(f, "pid {}: {}", std::process::id(), me.chars().take(200).collect::<String>());
    Ok(f)
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.opts.attached {
            self.stop();
        }
    }
}
