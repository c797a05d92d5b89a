//! `sfr2l mesh plan`: a collection's rows as manifests, rendered and validated offline. The
//! plan is `lab collect`'s (same study, seed, rows and repeat block, [`sfr2l_lab::collect::plan`]);
//! each row is a folder `kubectl apply -k` takes, the client side is one folder applied first.

use super::{row_objects, JOB};
use crate::istio::{self, Outside};
use crate::manifests::{load_job, relative};
use anyhow::{bail, Context, Result};
use serde_json::json;
use sfr2l_core::study::Study;
use sfr2l_files::write_atomic;
use sfr2l_lab::collect::{plan, PlanEntry, Repeats};
use std::path::{Path, PathBuf};

pub struct PlanSettings<'a> {
    pub study: &'a Study,
    /// The `manifests/` folder (its `client/` tree).
    pub tree: PathBuf,
    pub out: PathBuf,
    pub rows: u32,
    pub seed: u64,
    pub repeats: Repeats,
}

/// The run id of row `idx` at `generation`, as `mesh collect` announces it.
pub fn run_id(study: &Study, seed: u64, idx: usize, generation: u64) -> String {
    format!("{}-{seed}-{idx}-g{generation}", study.name)
}

/// What the cluster must not hold twice: a subset target needs the user's subsets (labels), which
/// the study's rendering does not carry.
pub fn refuse_unsupported(study: &Study) -> Result<()> {
    if let Some(s) = &study.target.subset {
        bail!(
            "study {}: target.subset {s:?}: mesh plan and mesh collect render the service's top-level policy only (a subset needs your rule's subsets and labels)",
            study.name
        );
    }
    Ok(())
}

/// The objects of `dir` rendered by kustomize, checked as a set with the client side.
fn validate(dir: &Path, client: &str, outside: &Outside) -> Result<()> {
    let text = format!("{client}\n---\n{}", istio::kustomize(dir)?);
    let objects = istio::parse_stream(&text, &format!("kubectl kustomize {}", dir.display()))?;
    istio::validate_set_with(&objects, outside).with_context(|| dir.display().to_string())
}

fn yaml(comment: &str, v: &serde_json::Value) -> Result<Vec<u8>> {
    Ok(format!("# {comment}\n{}", serde_norway::to_string(v)?).into_bytes())
}

/// Writes the plan under `s.out`; every folder rendered and validated. Returns the rows.
pub fn write(s: &PlanSettings) -> Result<Vec<PlanEntry>> {
    let study = s.study;
    refuse_unsupported(study)?;
    let t = &study.target;
    let entries = plan(study, s.rows, s.seed, s.repeats.configs, s.repeats.repeats);
    let header = format!("Rendered by `sfr2l mesh plan --study {}` (seed {}).", study.name, s.seed);
    // The client side, once: the client tree in the target's namespace, its WasmPlugin matching
    // the target's port and its example Job aimed at the target.
    let client = s.out.join("client");
    std::fs::create_dir_all(&client).with_context(|| format!("creating {}", client.display()))?;
    let plugin = json!({
        "apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin", "metadata": {"name": super::PLUGIN},
        "spec": {"match": [{ "mode": "CLIENT", "ports": [{ "number": t.port }] }]},
    });
    write_atomic(&client.join("wasmplugin.yaml"), &yaml(&header, &plugin)?)?;
    write_atomic(&client.join("load-job.yaml"), &yaml(&header, &load_job(t, "job-1", 3, 30))?)?;
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": t.namespace,
        "bases": [relative(&client, &s.tree.join("client"))?],
        "patchesStrategicMerge": ["wasmplugin.yaml", "load-job.yaml"],
    });
    write_atomic(&client.join("kustomization.yaml"), &yaml(&header, &kustomization)?)?;
    let outside = Outside { hosts: vec![t.service.clone()], clusters: vec![t.cluster()] };
    let client_text = istio::kustomize(&client)?;
    istio::validate_set_with(&istio::parse_stream(&client_text, "client")?, &outside)
        .with_context(|| client.display().to_string())?;

    let mut csv = format!(
        "row,config_id,repeat,run_id,generation,{},threads,calls,job\n",
        study.inputs().rules().iter().map(|f| f.name()).collect::<Vec<_>>().join(",")
    );
    for (idx, e) in entries.iter().enumerate() {
        let generation = idx as u64 + 1;
        let id = run_id(study, s.seed, idx, generation);
        let dir = s.out.join("rows").join(format!("{idx:05}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let objects = row_objects(&s.tree, study, &e.rule, generation, &id, e.load)?;
        write_atomic(&dir.join("row.yaml"), format!("# {header} Row {idx}.\n{objects}").as_bytes())?;
        let k = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": t.namespace, "resources": ["row.yaml"],
        });
        write_atomic(&dir.join("kustomization.yaml"), &yaml(&header, &k)?)?;
        validate(&dir, &client_text, &outside)?;
        let values: Vec<String> = study.inputs().state(&e.rule).iter().map(|v| v.to_string()).collect();
        csv.push_str(&format!(
            "{idx},{},{},{id},{generation},{},{},{},{JOB}-{}\n",
            e.config_id,
            e.repeat,
            values.join(","),
            e.load.threads,
            e.load.calls,
            super::kube_name(&id)
        ));
    }
    write_atomic(&s.out.join("plan.csv"), csv.as_bytes())?;
    Ok(entries)
}
