//! `sfr2l mesh plan|collect`: a study's collection in the user's cluster.

use super::Exit;
use crate::cli::{MeshCommand, MeshRowsArgs};
use anyhow::Result;
use sfr2l_deploy::mesh::backend::MeshBackend;
use sfr2l_deploy::mesh::kubectl::Kubectl;
use sfr2l_deploy::mesh::plan::{write, PlanSettings};
use sfr2l_files::study::StudySource;
use sfr2l_lab::collect::{collect_with, sized, CollectJob, Repeats};
use std::time::Duration;

/// The study and the collection's size, seed and repeat block, as `lab collect` takes them.
fn rows(a: &MeshRowsArgs) -> Result<(StudySource, u32, u64, Repeats)> {
    let src = sfr2l_files::study::find(&a.study)?;
    let (rows, seed, repeats) = sized(&src.study, a.rows, a.seed, a.repeats)?;
    Ok((src, rows, seed, repeats))
}

pub fn run(cmd: MeshCommand) -> Result<Exit> {
    match cmd {
        MeshCommand::Plan(a) => {
            let (src, n, seed, repeats) = rows(&a.rows)?;
            let s = PlanSettings {
                study: &src.study,
                tree: a.rows.tree.clone(),
                out: a.out.clone(),
                rows: n,
                seed,
                repeats,
            };
            let entries = write(&s)?;
            println!(
                "plan of {} rows for study {} in {} (rendered and validated with kubectl kustomize)",
                entries.len(),
                src.study.name,
                a.out.display()
            );
            println!("apply the client side once: kubectl apply -k {}", a.out.join("client").display());
            println!(
                "then each row: kubectl apply -k {}/rows/NNNNN, wait for the sidecar, read its log (plan.csv lists the runs)",
                a.out.display()
            );
            println!(
                "or let sfr2l drive it: sfr2l mesh collect --study {} --context CTX --out data/{}.csv",
                a.rows.study, src.study.name
            );
            Ok(Exit::Ok)
        }
        MeshCommand::Collect(a) => {
            let (src, n, seed, repeats) = rows(&a.rows)?;
            let k = Kubectl { bin: a.kubectl.clone(), ..Kubectl::new(&a.context, &src.study.target.namespace) };
            // The context answers before anything is written.
            let mut backend = MeshBackend::connect(k, src.study.clone(), a.rows.tree.clone())?;
            backend.timeout = Duration::from_secs(a.timeout_s);
            let job = CollectJob {
                path: src.study.target.path.clone(),
                profile: src.study.clone(),
                study_sha256: src.sha256.clone(),
                rows: n,
                seed,
                repeats,
                out: a.out.clone(),
                resume: a.resume,
                warmup_calls: 0,
                tries: a.tries,
                attach: true,
                quiet: false,
            };
            let done = collect_with(&job, &mut backend)?;
            println!(
                "{} rows in {} ({} rejected tries, {} rows skipped: --resume retries them) in {:.0} s{}",
                done.rows,
                a.out.display(),
                done.rejected_tries,
                done.skipped_rows,
                done.seconds,
                if done.interrupted { "; interrupted: continue with --resume" } else { "" }
            );
            Ok(if done.interrupted { Exit::Interrupted } else { Exit::Ok })
        }
    }
}
