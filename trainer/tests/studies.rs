//! Studies as files: every committed dataset, simulator and agent still loads and checks against
//! the study of its name (nothing was re-collected or retrained when the profiles became
//! `studies/*.yaml`), and `sfr2l study` names the file and YAML path of a bad field.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use sfr2l_core::card::SimulatorCard;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sfr2l"));
    c.current_dir(root());
    c
}

fn dirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(p).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    v.sort();
    v
}

#[test]
fn committed_artifacts_check_against_their_studies() {
    let root = root();
    // Studies are found by name under `studies/` of the working directory, as for a user in the
    // repository (cargo runs tests in the crate's folder).
    std::env::set_current_dir(&root).unwrap();
    let mut agent_sets = 0;
    // Every study file of the repository (S1-S5 and the services studied since) has its
    // committed dataset, simulator and agents.
    let mut names: Vec<String> = std::fs::read_dir(root.join("studies"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert!(sfr2l_files::study::built_in_names().all(|b| names.iter().any(|n| n == b)), "{names:?}");
    for name in &names {
        let name = name.as_str();
        let study = sfr2l_files::study::find_in(&root, name).unwrap().study;
        // The dataset: every row inside the study's ranges; its metadata names the study.
        let csv = root.join(format!("data/{name}.csv"));
        let src = sfr2l_learn::data::resolve_study(&csv, None).unwrap();
        assert_eq!(src.study, study, "{name}: data/{name}.meta.json names another study");
        let ds = sfr2l_learn::data::read_dataset(&csv, &study).unwrap();
        assert_eq!(ds.len(), study.collection.rows as usize, "{name}");
        // The simulator: its card's input ranges are the study's ranges.
        let sim = root.join(format!("policies/{name}"));
        let card: SimulatorCard =
            serde_json::from_str(&std::fs::read_to_string(sim.join("simulator.json")).unwrap()).unwrap();
        assert_eq!(card.profile, name);
        assert_eq!(card.dataset.sha256, ds.sha256, "{name}: the simulator was fitted on this dataset");
        let inputs = study.inputs().features();
        assert_eq!(card.inputs.len(), inputs.len(), "{name}: the simulator takes the study's inputs");
        for (port, f) in card.inputs.iter().zip(inputs) {
            assert_eq!(port.name, f.name(), "{name}");
            assert_eq!(port.range, Some(study.feature_range(f)), "{name}: {}", f.name());
        }
        // Every exported agent set whose graphs are committed: cards, state, action and the
        // study's grid (read_agent_set checks each graph with the grid of the study file).
        for config in dirs(&sim.join("agents")) {
            for seed in dirs(&config) {
                let has_graphs = std::fs::read_dir(&seed)
                    .unwrap()
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "onnx"));
                if !has_graphs {
                    continue;
                }
                let set = sfr2l::validate::read_agent_set(&seed, &root)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", seed.display()));
                assert_eq!(set.profile, name);
                agent_sets += 1;
            }
        }
    }
    assert!(agent_sets >= 28, "only {agent_sets} agent sets checked");
}

#[test]
fn study_check_names_the_file_and_the_yaml_path() {
    let out = bin().args(["study", "check", "s2"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("studies/s2.yaml: study s2 is valid (sha256 "), "{text}");
    assert!(text.contains("varies connectionPool.http.http1MaxPendingRequests 3..=7"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("studies/s1.yaml")).unwrap().replace("name: s1", "name: mine");
    let cases = [
        (
            "range: [1, 5]\n    grid: {from: 1, to: 5, step: 1}",
            "range: [1, 5]\n    grid: {from: 1, to: 6, step: 1}",
            "load.threads.grid: value 6 is outside the range [1, 5]",
        ),
        ("    value: 100\n", "    value: 101\n", "attributes[4].value: maxEjectionPercent: must be in 0..=100"),
        ("  hosts: 2\n", "  hosts: 2\n  replicas: 2\n", "unknown field `replicas`"),
        ("failureCodes: [503]", "failureCodes: [503, 503]", "objective.failureCodes: 503 is listed twice"),
    ];
    for (from, to, want) in cases {
        assert!(good.contains(from), "{from}");
        let p = dir.path().join("mine.yaml");
        std::fs::write(&p, good.replace(from, to)).unwrap();
        let out = bin().args(["study", "check"]).arg(&p).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{want}: accepted");
        assert!(err.contains(&format!("{}", p.display())) && err.contains(want), "{err}\n  wanted: {want}");
    }
    let out = bin().args(["study", "show", "nope"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no study \"nope\""));
}

#[test]
fn sim_fit_refuses_a_dataset_outside_its_study() {
    // A study whose calls range excludes the S1 rows: fit stops before writing anything.
    let dir = tempfile::tempdir().unwrap();
    let narrow =
        std::fs::read_to_string(root().join("studies/s1.yaml")).unwrap().replace("name: s1", "name: narrow").replace(
            "range: [400, 450]\n    grid: {from: 435, to: 450, step: 1}",
            "range: [440, 450]\n    grid: {from: 440, to: 450, step: 1}",
        );
    let study = dir.path().join("narrow.yaml");
    std::fs::write(&study, narrow).unwrap();
    let out_dir = dir.path().join("out");
    let out = bin()
        .args(["sim", "fit", "--epochs", "1", "--data", "data/s1.csv", "--study"])
        .arg(&study)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("data/s1.csv:")
            && err.contains("(calls)")
            && err.contains("is outside study narrow range 440..=450"),
        "{err}"
    );
    assert!(!out_dir.exists(), "nothing is written");
}
