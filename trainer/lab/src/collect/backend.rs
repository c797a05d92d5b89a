//! Where a collection runs: the one interface (apply, wait, run, read) the collection loop,
//! its checks and its resume are written against. The local lab implements it here; a user's
//! cluster through `kubectl` in sfr2l-deploy (`mesh collect`), so everything above the kubectl
//! calls is the code the lab tests exercise.

use super::{check_conservation, delta, lab_faults, PlanEntry, RunOutcome};
use crate::mesh::Lab;
use anyhow::{Context, Result};
use sfr2l_core::artifact::header;
use sfr2l_core::study::LabTopology;
use sfr2l_core::{LoadSetting, TraceRecord, TrafficRule};
use sfr2l_load::{self as load, LoadSpec};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A run's trace as the backend read it back: the filter's record and the client cluster's
/// stats over the run (`upstream_rq_*` deltas), or why the try is rejected.
pub type Read = std::result::Result<(TraceRecord, BTreeMap<String, u64>), String>;

/// What the dataset's metadata says about the backend.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    pub envoy_version: String,
    pub topology: LabTopology,
    /// What served the target (the lab's upstream, or the cluster and context).
    pub upstream: String,
    pub upstream_workers: u32,
    pub filter_sha256: String,
}

pub trait Backend {
    /// What `read` needs from before the run (stats, a log position, a time).
    type Mark;
    /// The generation last applied (run ids and the conservation check name it).
    fn generation(&self) -> u64;
    /// Puts `rule` in force as a new generation: the client's cluster and the filter's rule.
    fn apply(&mut self, rule: &TrafficRule) -> Result<()>;
    /// Waits until the client sidecar serves the generation applied last and the filter runs it.
    fn wait(&mut self) -> Result<()>;
    /// Before the run: what `read` compares against.
    fn mark(&mut self) -> Result<Self::Mark>;
    /// One load test announced to the filter as `run_id`: the calls' status codes (-1: socket
    /// error), as the load generator counted them.
    fn run(&mut self, load: LoadSetting, run_id: &str, path: &str) -> Result<BTreeMap<i32, u64>>;
    /// The run's trace record and cluster stats, or why the try is rejected.
    fn read(&mut self, run_id: &str, mark: Self::Mark) -> Result<Read>;
    /// Calls before a measured run, without run headers, on the rule still in force.
    fn warm(&mut self, _threads: u32, _calls: u32, _path: &str) {}
    /// Whether the backend itself is at fault: an error is then a rejected try.
    fn faulty(&mut self) -> bool;
    /// After a rejected try: restores what failed; a line per thing restored.
    fn heal(&mut self) -> Result<Vec<String>>;
    fn info(&self) -> BackendInfo;
}

/// Applies `entry`, runs the load, reads the trace and checks conservation on any backend.
pub fn run_on<B: Backend>(
    b: &mut B,
    entry: &PlanEntry,
    run_id: &str,
    path: &str,
    warmup_calls: u32,
) -> Result<std::result::Result<RunOutcome, String>> {
    if warmup_calls > 0 {
        b.warm(entry.load.threads, warmup_calls, path);
    }
    let t0 = Instant::now();
    b.apply(&entry.rule)?;
    b.wait()?;
    let mark = b.mark()?;
    let switch = t0.elapsed();
    let codes = b.run(entry.load, run_id, path)?;
    let t1 = Instant::now();
    let (record, cluster) = match b.read(run_id, mark)? {
        Ok(r) => r,
        Err(why) => return Ok(Err(why)),
    };
    let overhead = switch + t1.elapsed();
    Ok(check_conservation(entry.load.calls, &codes, &record, &cluster, b.generation())
        .map(|()| RunOutcome { record, overhead }))
}

/// The lab's mark: cluster and server fault stats, and the client log's end.
pub struct LabMark {
    cluster: BTreeMap<String, u64>,
    server: BTreeMap<String, u64>,
    tail: crate::ingest::LogTail,
}

impl Backend for Lab {
    type Mark = LabMark;

    fn generation(&self) -> u64 {
        Lab::generation(self)
    }

    fn apply(&mut self, rule: &TrafficRule) -> Result<()> {
        Lab::apply(self, rule)
    }

    /// `Lab::apply` returns once the admin endpoint confirms the generation (CDS, LDS and the
    /// filter's gauge): nothing is left to wait for.
    fn wait(&mut self) -> Result<()> {
        Ok(())
    }

    fn mark(&mut self) -> Result<LabMark> {
        Ok(LabMark {
            cluster: self.cluster_stats()?,
            server: self.server_fault_stats()?,
            tail: crate::ingest::LogTail::at_end(&self.client_log())?,
        })
    }

    fn run(&mut self, l: LoadSetting, run_id: &str, path: &str) -> Result<BTreeMap<i32, u64>> {
        let mut spec = LoadSpec::from_url(&self.client_url(path), l.threads, l.calls)?;
        spec.connect_first = true;
        spec.headers = vec![
            (header::RUN.into(), run_id.into()),
            (header::THREADS.into(), l.threads.to_string()),
            (header::CALLS.into(), l.calls.to_string()),
        ];
        match load::run(&spec) {
            Ok(r) => Ok(r.ret_codes().clone()),
            Err(e) => {
                self.check()?; // a dead Envoy or upstream explains itself with its last log lines
                Err(e).with_context(|| format!("load run {run_id}"))
            }
        }
    }

    fn read(&mut self, run_id: &str, mut mark: LabMark) -> Result<Read> {
        let wait = Duration::from_millis(self.opts.idle_timeout_ms) + Duration::from_secs(3);
        let Some(record) = mark.tail.wait_for(run_id, wait)? else {
            self.check()?;
            return Ok(Err(format!("no trace record for run {run_id} within {wait:?}")));
        };
        let cluster = delta(&self.cluster_stats()?, &mark.cluster);
        // A process that died or was paused during the run, or reset its connections, makes the
        // run a measurement of the fault: never a row, even when the codes add up.
        if let Some((name, pid, state)) = self.faults().first() {
            return Ok(Err(format!("lab fault during the run: {name} (pid {pid}) is {state}")));
        }
        if let Some(why) = lab_faults(&cluster, &delta(&self.server_fault_stats()?, &mark.server)) {
            return Ok(Err(why));
        }
        Ok(Ok((record, cluster)))
    }

    fn warm(&mut self, threads: u32, calls: u32, path: &str) {
        // Warms connections and caches on the previous cluster: the switch discards its state.
        if let Ok(mut w) = LoadSpec::from_url(&self.client_url(path), threads, calls) {
            w.connect_first = true;
            let _ = load::run(&w);
        }
    }

    fn faulty(&mut self) -> bool {
        !self.faults().is_empty()
    }

    fn heal(&mut self) -> Result<Vec<String>> {
        Lab::heal(self, crate::mesh::STOPPED_WAIT)
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            envoy_version: self.opts.tools.envoy_version(),
            topology: self.opts.topology,
            upstream: crate::mesh::upstream::describe(
                &self.opts.upstream,
                &crate::mesh::upstream::places(&self.ports, &self.opts.tools, &self.opts.dir),
            ),
            upstream_workers: self.opts.upstream_workers,
            filter_sha256: sfr2l_files::sha256_file(&self.opts.tools.wasm),
        }
    }
}
