//! `sfr2l manifests`: a load-test overlay for trained agents, validated as kustomize renders it.

use super::Exit;
use crate::cli::ManifestsArgs;
use anyhow::{Context, Result};
use sfr2l_deploy::manifests::{render, RenderSettings};

pub fn run(a: ManifestsArgs) -> Result<Exit> {
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
    };
    let r = render(&s)?;
    sfr2l_deploy::istio::load(&s.out).with_context(|| format!("validating {}", s.out.display()))?;
    println!("overlay {} (rendered and validated with kubectl kustomize)", s.out.display());
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
