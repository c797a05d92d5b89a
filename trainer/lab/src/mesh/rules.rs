//! Rule switches: the client sidecar's CDS and LDS files rewritten for a new generation, and
//! the admin endpoint's confirmation that Envoy (and the filter) run it.

use super::{admin, envoy, process, write_json, Lab};
use anyhow::{bail, Result};
use sfr2l_core::config::ConfigV1;
use sfr2l_core::TrafficRule;
use std::time::{Duration, Instant};

impl Lab {
    pub(super) fn wait_versions(&mut self, timeout: Duration, filter_generation: bool) -> Result<()> {
        let want_cds = format!("cds-{}", self.generation);
        let want_lds = format!("lds-{}", self.generation);
        let port = self.ports.client_admin;
        let t0 = Instant::now();
        loop {
            let (nums, texts) = admin::stats(port, "^(cluster_manager\\.cds\\.version_text|listener_manager\\.lds\\.version_text|wasmcustom\\.sfr2l_config_generation)$")?;
            let cds = texts.get("cluster_manager.cds.version_text").map(String::as_str);
            let lds = texts.get("listener_manager.lds.version_text").map(String::as_str);
            let gen = nums.get("wasmcustom.sfr2l_config_generation").copied();
            if cds == Some(&want_cds) && lds == Some(&want_lds) && (!filter_generation || gen == Some(self.generation))
            {
                return Ok(());
            }
            if t0.elapsed() > timeout {
                self.check()?;
                bail!(
                    "client Envoy did not confirm generation {} within {timeout:?} (cds {cds:?}, lds {lds:?}, filter {gen:?}); last log lines:\n{}",
                    self.generation,
                    process::tail_file(&self.client_log(), 15)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Switches the client sidecar to `rule` (new CDS cluster and filter configuration) and
    /// waits until the admin endpoint confirms both. The rebuilt cluster starts fresh.
    pub fn apply(&mut self, rule: &TrafficRule) -> Result<()> {
        rule.validate().map_err(|e| anyhow::anyhow!("rule: {e}"))?;
        self.generation += 1;
        let config = self.filter_config(Some(*rule)).to_json();
        self.write_and_confirm(rule, &config, true)?;
        self.rule = Some(*rule);
        Ok(())
    }

    /// The cluster settings of the next applies (a user's rule: `lab apply`); not kept in the
    /// lab's state, so other commands get istiod's defaults.
    pub fn set_cluster_settings(&mut self, c: envoy::ClusterSettings) {
        self.cluster_settings = c;
    }

    /// Like [`Lab::apply`] with a full filter configuration (load-test mode, models): its rule
    /// and generation are set here. Waits until the filter runs the new configuration.
    pub fn apply_filter_config(&mut self, rule: &TrafficRule, mut config: ConfigV1) -> Result<()> {
        rule.validate().map_err(|e| anyhow::anyhow!("rule: {e}"))?;
        self.generation += 1;
        config.rule = Some(*rule);
        config.generation = self.generation;
        config.idle_timeout = sfr2l_core::IstioDuration::from_secs(self.opts.idle_timeout_ms as f64 / 1000.0);
        let json = config.to_json();
        ConfigV1::parse(json.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.write_and_confirm(rule, &json, true)?;
        self.rule = Some(*rule);
        Ok(())
    }

    pub(super) fn cds(&self, rule: &TrafficRule) -> serde_json::Value {
        let mut cds = envoy::client_cds_with(
            &self.ports,
            &self.opts.topology,
            rule,
            &self.cluster_settings,
            self.generation,
            &self.opts.target.cluster(),
        );
        if self.opts.artifacts.is_some() {
            if let Some(r) = cds["resources"].as_array_mut() {
                r.push(envoy::artifacts_cluster(self.ports.artifacts));
            }
        }
        cds
    }

    /// Like [`Lab::apply`] with a raw filter configuration (possibly invalid: the filter must
    /// fail open). Confirms CDS and LDS only.
    pub fn apply_raw_filter_config(&mut self, rule: &TrafficRule, filter_json: &str) -> Result<()> {
        self.generation += 1;
        self.write_and_confirm(rule, filter_json, false)
    }

    fn write_and_confirm(&mut self, rule: &TrafficRule, filter_json: &str, filter_generation: bool) -> Result<()> {
        let dir = self.opts.dir.clone();
        write_json(&dir.join("cds/cds.json"), &self.cds(rule))?;
        write_json(
            &dir.join("lds/lds.json"),
            &envoy::client_lds(
                &self.ports,
                &self.opts.tools.wasm,
                filter_json,
                self.generation,
                &self.opts.target.cluster(),
            ),
        )?;
        self.wait_versions(Duration::from_secs(10), filter_generation)?;
        self.save_generation()
    }
}
