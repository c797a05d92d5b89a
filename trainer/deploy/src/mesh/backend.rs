//! `mesh collect`'s backend: the collection loop of `lab collect` ([`Backend`]) on a user's
//! cluster through `kubectl`. Apply is the study's DestinationRule and the WasmPlugin with the
//! same rule and a new generation; wait is the client sidecar's own config dump (the target's
//! cluster with the rule's limits) and the filter's generation gauge; run is fortio in the client
//! pod (`kubectl exec`: a Job's pod with a sidecar never completes without native sidecars); read
//! is the sidecar's log, ingested like the lab's, and its cluster stats over the run.

use super::kubectl::Kubectl;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use sfr2l_core::study::Study;
use sfr2l_core::{LoadSetting, TrafficRule};
use sfr2l_lab::collect::backend::{Backend, BackendInfo, Read};
use sfr2l_lab::collect::delta;
use sfr2l_lab::mesh::admin::parse_stats;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The client workload whose sidecar runs the filter (`manifests/client/fortio.yaml`).
pub const CLIENT: &str = "deploy/fortio";

/// The circuit-breaker limits Envoy holds for `cluster` in a config dump (`/config_dump`, the
/// same JSON through `pilot-agent request GET config_dump`): max connections, max pending.
pub fn cluster_limits(dump: &str, cluster: &str) -> Result<Option<(u64, u64)>> {
    let v: Value = serde_json::from_str(dump).context("the config dump is not JSON")?;
    for c in v["configs"].as_array().into_iter().flatten() {
        // A whole dump nests the clusters in lists; `?resource=dynamic_active_clusters` gives
        // one entry per cluster.
        let lists = ["dynamic_active_clusters", "static_clusters"];
        let nested = lists.iter().flat_map(|l| c[*l].as_array().into_iter().flatten());
        for entry in std::iter::once(c).chain(nested) {
            let cl = &entry["cluster"];
            if cl["name"] == cluster {
                let t = &cl["circuit_breakers"]["thresholds"][0];
                let n = |k: &str| t[k].as_u64().unwrap_or(1024); // Envoy's default when unset
                return Ok(Some((n("max_connections"), n("max_pending_requests"))));
            }
        }
    }
    Ok(None)
}

/// fortio's `RetCodes` from its JSON result (`fortio load -json -`, or sfr2l-load's report).
pub fn ret_codes(json: &str) -> Result<BTreeMap<i32, u64>> {
    let v: Value = serde_json::from_str(json.trim()).context("fortio's result is not JSON")?;
    let codes = v["RetCodes"].as_object().context("fortio's result has no RetCodes")?;
    codes
        .iter()
        .map(|(k, n)| {
            let code = k.parse::<i32>().with_context(|| format!("RetCodes: {k:?} is not a status"))?;
            Ok((code, n.as_u64().with_context(|| format!("RetCodes[{k}]: not a count"))?))
        })
        .collect()
}

/// The filter's generation gauge, as the sidecar's stats path below prints it.
pub const GENERATION_STATS: &str = "stats?filter=sfr2l_config_generation";

pub fn filter_generation(stats: &str) -> Option<u64> {
    parse_stats(stats).0.get("wasmcustom.sfr2l_config_generation").copied()
}

/// The target cluster's counters from a sidecar's `/stats` text, without the cluster prefix.
pub fn cluster_counters(stats: &str, cluster: &str) -> BTreeMap<String, u64> {
    let prefix = format!("cluster.{cluster}.");
    parse_stats(stats).0.into_iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|s| (s.to_string(), v))).collect()
}

pub struct MeshBackend {
    pub k: Kubectl,
    pub study: Study,
    /// The `manifests/` folder.
    pub tree: PathBuf,
    generation: u64,
    /// How long a rule may take to reach the sidecar, and a trace to come back.
    pub timeout: Duration,
    envoy_version: String,
    /// When the mark was taken (logs are read from shortly before it).
    marked: Option<Instant>,
    /// The rule applied last, which `wait` looks for in the sidecar's cluster.
    applied: Option<TrafficRule>,
    /// The WasmPlugin's `sha256` pin of the filter, as the cluster holds it.
    filter_sha256: String,
}

/// What `read` compares against: the cluster's counters before the run.
pub struct MeshMark {
    counters: BTreeMap<String, u64>,
}

impl MeshBackend {
    /// Connects: the context must answer (nothing is applied otherwise). Generations go on from
    /// the one the client's filter runs, so a resumed collection never reuses one.
    pub fn connect(k: Kubectl, study: Study, tree: PathBuf) -> Result<Self> {
        super::plan::refuse_unsupported(&study)?;
        k.reachable()?;
        let info = k.proxy_get(CLIENT, "server_info").context("reading the client sidecar's server_info")?;
        let envoy_version = serde_json::from_str::<Value>(&info)
            .ok()
            .and_then(|v| v["version"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let generation = filter_generation(&k.proxy_get(CLIENT, GENERATION_STATS)?).unwrap_or(0);
        let pin = k.run(
            &["get", "wasmplugin", super::PLUGIN, "-o", "jsonpath={.spec.sha256}"],
            None,
            Duration::from_secs(20),
        )?;
        let filter_sha256 = match pin.trim() {
            "" => "unpinned (the WasmPlugin names no sha256)".to_string(),
            sha => sha.to_string(),
        };
        Ok(Self {
            k,
            study,
            tree,
            generation,
            timeout: Duration::from_secs(120),
            envoy_version,
            marked: None,
            applied: None,
            filter_sha256,
        })
    }

    fn counters(&self) -> Result<BTreeMap<String, u64>> {
        let stats = self.k.proxy_get(CLIENT, "stats")?;
        Ok(cluster_counters(&stats, &self.study.target.cluster()))
    }
}

impl Backend for MeshBackend {
    type Mark = MeshMark;

    fn generation(&self) -> u64 {
        self.generation
    }

    fn apply(&mut self, rule: &TrafficRule) -> Result<()> {
        self.generation += 1;
        self.applied = Some(*rule);
        self.k.apply(&super::rule_objects(&self.tree, &self.study, rule, self.generation)?)
    }

    fn wait(&mut self) -> Result<()> {
        let t0 = Instant::now();
        let cluster = self.study.target.cluster();
        let want = self.applied.map(|r| (u64::from(r.max_connections), u64::from(r.max_pending_requests)));
        loop {
            let dump = self.k.proxy_get(CLIENT, "config_dump?resource=dynamic_active_clusters")?;
            let limits = cluster_limits(&dump, &cluster)?;
            let gen = filter_generation(&self.k.proxy_get(CLIENT, GENERATION_STATS)?);
            if limits.is_some() && limits == want && gen == Some(self.generation) {
                return Ok(());
            }
            if t0.elapsed() > self.timeout {
                bail!(
                    "the client sidecar did not serve generation {} within {:?} (cluster {cluster}: {limits:?}, filter generation {gen:?})",
                    self.generation,
                    self.timeout
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn mark(&mut self) -> Result<MeshMark> {
        self.marked = Some(Instant::now());
        Ok(MeshMark { counters: self.counters()? })
    }

    fn run(&mut self, l: LoadSetting, run_id: &str, path: &str) -> Result<BTreeMap<i32, u64>> {
        let t = sfr2l_core::study::Target { path: path.to_string(), ..self.study.target.clone() };
        let mut cmd = vec!["fortio".to_string()];
        cmd.extend(crate::manifests::fortio_args(&t, run_id, l.threads, l.calls, true));
        let out = self.k.exec(CLIENT, "fortio", &cmd, self.timeout)?;
        ret_codes(&out).with_context(|| format!("run {run_id}"))
    }

    fn read(&mut self, run_id: &str, mark: MeshMark) -> Result<Read> {
        let t0 = Instant::now();
        loop {
            let since = self.marked.map_or(60, |m| m.elapsed().as_secs() + 30);
            let log = self.k.proxy_logs(CLIENT, since)?;
            let found = sfr2l_lab::ingest::ingest(log.as_bytes(), "kubectl logs")?
                .into_iter()
                .filter_map(|i| i.record.ok())
                .find(|r| r.run == run_id);
            if let Some(record) = found {
                let cluster = delta(&self.counters()?, &mark.counters);
                return Ok(Ok((record, cluster)));
            }
            if t0.elapsed() > self.timeout {
                return Ok(Err(format!("no trace record for run {run_id} within {:?}", self.timeout)));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// The cluster is the user's: nothing here restarts it.
    fn faulty(&mut self) -> bool {
        false
    }

    fn heal(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            envoy_version: self.envoy_version.clone(),
            topology: self.study.lab,
            upstream: format!("cluster context {} namespace {}", self.k.context, self.k.namespace),
            upstream_workers: 0,
            filter_sha256: self.filter_sha256.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_whole_and_per_resource_dumps() {
        let cl = r#"{"name": "outbound|80||web.shop.svc.cluster.local", "circuit_breakers": {"thresholds": [{"max_connections": 4, "max_pending_requests": 2}]}}"#;
        let whole = format!(
            r#"{{"configs": [{{"@type": "x.ClustersConfigDump", "dynamic_active_clusters": [{{"cluster": {cl}}}]}}]}}"#
        );
        let one = format!(r#"{{"configs": [{{"@type": "x.ClustersConfigDump.DynamicCluster", "cluster": {cl}}}]}}"#);
        for dump in [whole, one] {
            assert_eq!(cluster_limits(&dump, "outbound|80||web.shop.svc.cluster.local").unwrap(), Some((4, 2)));
            assert_eq!(cluster_limits(&dump, "outbound|81||web.shop.svc.cluster.local").unwrap(), None);
        }
        assert!(cluster_limits("not json", "x").is_err());
    }

    #[test]
    fn fortio_results_and_stats_parse_or_say_why_not() {
        let codes = ret_codes(r#"{"RetCodes": {"200": 7, "503": 3, "-1": 1}}"#).unwrap();
        assert_eq!(codes, [(-1, 1), (200, 7), (503, 3)].into());
        assert!(format!("{:#}", ret_codes("{}").unwrap_err()).contains("no RetCodes"));
        let stats = "cluster.outbound|80||web.shop.svc.cluster.local.upstream_rq_200: 7\ncluster.other.upstream_rq_200: 1\nwasmcustom.sfr2l_config_generation: 12\n";
        assert_eq!(
            cluster_counters(stats, "outbound|80||web.shop.svc.cluster.local"),
            [("upstream_rq_200".to_string(), 7)].into()
        );
        assert_eq!(filter_generation(stats), Some(12));
        assert_eq!(super::super::kube_name("S1-1-0_g2"), "s1-1-0-g2");
    }
}
