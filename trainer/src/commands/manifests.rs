//! `sfr2l manifests`: a load-test overlay for trained agents, validated as kustomize renders it.

use super::Exit;
use crate::cli::ManifestsArgs;
use anyhow::{bail, Context, Result};
use sfr2l_deploy::istio::{self, Object, Outside};
use sfr2l_deploy::manifests::{render, RenderSettings};

pub fn run(a: ManifestsArgs) -> Result<Exit> {
    let study = a.study.as_deref().map(sfr2l_files::study::find).transpose()?;
    if let Some(st) = &study {
        // Agents decide for the study they were trained on (policies/<study>/agents/...).
        let trained = a.agents.ancestors().nth(3).and_then(|r| r.file_name()).map(|n| n.to_string_lossy().to_string());
        if trained.as_deref() != Some(st.study.name.as_str()) {
            bail!(
                "{}: agents of study {} cannot decide for study {}",
                a.agents.display(),
                trained.unwrap_or_else(|| "?".into()),
                st.study.name
            );
        }
    }
    let s = RenderSettings {
        agents: a.agents,
        rules: a.rules,
        out: a.out,
        simulator: a.simulator,
        wasm: a.wasm,
        registry: a.registry,
        trigger: a.trigger,
        tree: a.tree,
        oci_out: a.oci,
        target: study.map(|s| s.study.target),
    };
    let r = render(&s)?;
    // A study's service is the user's, already deployed: the tree may name it, and the hosts
    // their rule file names, without holding them.
    let outside = match &s.target {
        Some(t) => Outside {
            hosts: istio::read_file(&s.rules)?
                .into_iter()
                .filter_map(|o| if let Object::DestinationRule(d) = o { Some(d.host) } else { None })
                .chain([t.service.clone()])
                .map(|h| h.split('.').next().unwrap_or("").to_string())
                .collect(),
            clusters: vec![t.cluster()],
        },
        None => Outside::default(),
    };
    istio::load_with(&s.out, &outside).with_context(|| format!("validating {}", s.out.display()))?;
    println!("overlay {} (rendered and validated with kubectl kustomize)", s.out.display());
    if let Some(t) = &s.target {
        println!(
            "  for {} port {} in namespace {} (deploy it there; the overlay adds the client side)",
            t.service, t.port, t.namespace
        );
    }
    println!("artifact {} ({} files): push with", r.artifact_ref, r.artifact.layers.len());
    println!(
        "  oras cp --from-oci-layout {}:{} {}/artifacts:{}",
        s.oci_out.display(),
        r.artifact.tag,
        s.registry.trim_end_matches('/'),
        r.artifact.tag
    );
    if let Some(sha) = r.wasm_sha256 {
        println!("filter sha256 {sha}");
    }
    println!("then: kubectl apply -k {}", s.out.display());
    Ok(Exit::Ok)
}
