//! Load-test mode on the lab: the filter configuration that points the sidecar at an exported
//! agent pair (pinned by the cards' sha256), and an inline test run end to end: push the
//! configuration, let the sidecar decide and send the load, read its trace record back.

use crate::mesh::{process, Lab};
use anyhow::{bail, Context, Result};
use sfr2l_core::agent::Configuration;
use sfr2l_core::config::{ArtifactRef, ConfigV1, LoadTestConfig, Mode, ModelsConfig};
use sfr2l_core::study::Target;
use sfr2l_core::trace::TraceRecord;
use sfr2l_core::{IstioDuration, TrafficRule};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The card fields this needs (the cards carry much more).
#[derive(serde::Deserialize)]
struct CardPin {
    profile: String,
    #[serde(default)]
    configuration: Option<String>,
    onnx_sha256: String,
}

fn read_card(path: &Path) -> Result<CardPin> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading card {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a model card", path.display()))
}

/// The artifact next to `card`, pinned by the card's sha256, as a path under `root`. The file's
/// own hash must match the card (a stale card is a clear error here, not a rejection in Envoy).
fn pin(root: &Path, onnx: &Path, card: &CardPin) -> Result<ArtifactRef> {
    let bytes = std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
    let sha = sfr2l_files::sha256_hex(&bytes);
    if sha != card.onnx_sha256 {
        bail!("{}: sha256 {sha} differs from its card's onnx_sha256 {}", onnx.display(), card.onnx_sha256);
    }
    let abs = onnx.canonicalize()?;
    let rel = abs
        .strip_prefix(root)
        .with_context(|| format!("{} is not under the served folder {}", abs.display(), root.display()))?;
    let path = format!("/{}", rel.to_string_lossy());
    Ok(ArtifactRef { path, sha256: sha })
}

/// Models configuration for the agents in `agents_dir` (`policies/sN/agents/<config>/seed-S`,
/// with `thread.json` / `call.json` cards beside the graphs; for a collaborative run, service 0's
/// `thread-svc0.json` / `call-svc0.json`), served from `root` through `cluster`; with `simulator`,
/// the dataset's simulator (three folders up) as well.
pub fn models_config(root: &Path, agents_dir: &Path, simulator: bool, cluster: &str) -> Result<ModelsConfig> {
    let root = root.canonicalize().with_context(|| format!("served folder {}", root.display()))?;
    let single = ["thread", "call"].iter().any(|n| agents_dir.join(format!("{n}.json")).exists());
    let suffix = if single { "" } else { "-svc0" };
    let cards: Vec<(&str, PathBuf)> = ["thread", "call"]
        .iter()
        .map(|n| (*n, agents_dir.join(format!("{n}{suffix}.json"))))
        .filter(|(_, p)| p.exists())
        .collect();
    let (_, first) =
        cards.first().with_context(|| format!("{}: no thread.json or call.json agent card", agents_dir.display()))?;
    let named =
        read_card(first)?.configuration.with_context(|| format!("{}: card names no configuration", first.display()))?;
    let configuration: Configuration =
        named.parse().map_err(|e: String| anyhow::anyhow!("{}: {e}", first.display()))?;
    let mut agents = BTreeMap::new();
    let mut profile: Option<String> = None;
    for spec in configuration.agents() {
        let name = spec.kind.name();
        let card_path = agents_dir.join(format!("{name}{suffix}.json"));
        let card = read_card(&card_path)?;
        if card.configuration.as_deref() != Some(configuration.slug()) {
            bail!("{}: configuration {:?}, expected {}", card_path.display(), card.configuration, configuration.slug());
        }
        if profile.as_ref().is_some_and(|p| p != &card.profile) {
            bail!("{}: profile {} differs from the other agent's", card_path.display(), card.profile);
        }
        profile = Some(card.profile.clone());
        agents.insert(name.to_string(), pin(&root, &agents_dir.join(format!("{name}{suffix}.onnx")), &card)?);
    }
    let profile = profile
        .with_context(|| format!("{}: no agent card (thread.json, call.json) names a study", agents_dir.display()))?;
    if !sfr2l_core::study::is_name(&profile) {
        bail!("{}: the agents' profile {profile:?} is not a study name", agents_dir.display());
    }
    let simulator = if simulator {
        let sim_dir = agents_dir.ancestors().nth(3).context("no dataset folder above the agents")?;
        let card = read_card(&sim_dir.join("simulator.json"))?;
        if card.profile != profile {
            bail!(
                "{}: profile {} differs from the agents' {profile}",
                sim_dir.join("simulator.json").display(),
                card.profile
            );
        }
        Some(pin(&root, &sim_dir.join("simulator.onnx"), &card)?)
    } else {
        None
    };
    Ok(ModelsConfig {
        cluster: cluster.to_string(),
        authority: None,
        profile,
        configuration,
        agents,
        simulator,
        fetch_timeout: IstioDuration::from_secs(30.0),
    })
}

/// A load test of `target` (its path, through its cluster named as istiod names it, which is
/// also the lab's client cluster), started by `trigger`.
pub fn loadtest_for(target: &Target, trigger: &str) -> LoadTestConfig {
    LoadTestConfig::new(target.cluster(), format!("{}:{}", target.host(), target.port), target.path.clone(), trigger)
}

/// The lab's load-test configuration: the agents' load goes to the study's target.
pub fn lab_loadtest(lab: &Lab, trigger: &str) -> LoadTestConfig {
    loadtest_for(&lab.opts.target, trigger)
}

/// Bytes of the client log so far (records after this offset are new).
pub fn log_offset(lab: &Lab) -> u64 {
    std::fs::metadata(lab.client_log()).map(|m| m.len()).unwrap_or(0)
}

/// Trace records in the client log after `offset`.
pub fn records_since(lab: &Lab, offset: u64) -> Result<Vec<TraceRecord>> {
    let mut f =
        std::fs::File::open(lab.client_log()).with_context(|| format!("opening {}", lab.client_log().display()))?;
    f.seek(SeekFrom::Start(offset))?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    // Only lines Envoy's Wasm logger wrote count (an access-log line cannot pose as a record).
    Ok(text
        .lines()
        .filter_map(|l| sfr2l_core::trace::auth::check_line(l, None))
        .filter_map(Result::ok)
        .map(|a| a.record)
        .collect())
}

/// Pushes load-test mode with `models` for `rule` and waits for the sidecar's inline test
/// record (models fetched and checked, decision taken, load sent and counted in Envoy).
pub fn run_in_sidecar(
    lab: &mut Lab,
    rule: &TrafficRule,
    models: ModelsConfig,
    loadtest: LoadTestConfig,
    timeout: Duration,
) -> Result<TraceRecord> {
    let trigger = loadtest.trigger.clone();
    let offset = log_offset(lab);
    let config =
        ConfigV1 { mode: Mode::LoadTest, models: Some(models), loadtest: Some(loadtest), ..ConfigV1::default() };
    lab.apply_filter_config(rule, config)?;
    let t0 = Instant::now();
    loop {
        if let Some(r) =
            records_since(lab, offset)?.into_iter().find(|r| r.inline.as_ref().is_some_and(|i| i.slot == trigger))
        {
            return Ok(r);
        }
        if t0.elapsed() > timeout {
            lab.check()?;
            bail!(
                "no inline test record for trigger {trigger} within {timeout:?}; last client log lines:\n{}",
                process::tail_file(&lab.client_log(), 15)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The repository's `policies/` folder for a path inside it (what the lab serves).
pub fn policies_root(agents_dir: &Path) -> Option<PathBuf> {
    agents_dir.ancestors().nth(4).map(Path::to_path_buf)
}
