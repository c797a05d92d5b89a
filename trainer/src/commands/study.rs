//! `sfr2l study check|show|list`.

use super::Exit;
use crate::cli::StudyCommand;
use anyhow::Result;
use sfr2l_files::study::{built_in_names, find, STUDIES_DIR};

pub fn run(cmd: StudyCommand) -> Result<Exit> {
    match cmd {
        StudyCommand::Check(a) => {
            let src = find(&a.study)?;
            let s = &src.study;
            let varied: Vec<String> = s
                .attributes
                .iter()
                .filter(|a| !a.is_fixed())
                .map(|a| format!("{} {}..={}", a.feature.source(), a.lo, a.hi))
                .collect();
            println!(
                "{}: study {} is valid (sha256 {}): target {}.{}:{} {} {}; varies {}; threads {}..={} (grid {} values), calls {}..={} (grid {} values); {} hosts; {} rows",
                src.origin,
                s.name,
                src.sha256,
                s.target.service,
                s.target.namespace,
                s.target.port,
                s.target.method,
                s.target.path,
                if varied.is_empty() { "no rule field".to_string() } else { varied.join(", ") },
                s.threads.lo,
                s.threads.hi,
                s.thread_grid.values().len(),
                s.calls.lo,
                s.calls.hi,
                s.call_grid.values().len(),
                s.lab.hosts,
                s.collection.rows
            );
            Ok(Exit::Ok)
        }
        StudyCommand::Show(a) => {
            let src = find(&a.study)?;
            let mut v = serde_json::to_value(&src.study)?;
            v["origin"] = src.origin.into();
            v["sha256"] = src.sha256.into();
            v["thread_values"] = serde_json::json!(src.study.thread_grid.values());
            v["call_values"] = serde_json::json!(src.study.call_grid.values());
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(Exit::Ok)
        }
        StudyCommand::List => {
            let mut names: Vec<(String, String)> = Vec::new();
            if let Ok(rd) = std::fs::read_dir(STUDIES_DIR) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "yaml") {
                        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                        names.push((stem, p.display().to_string()));
                    }
                }
            }
            for b in built_in_names() {
                if !names.iter().any(|(n, _)| n == b) {
                    names.push((b.to_string(), format!("built-in:{b}")));
                }
            }
            names.sort();
            for (name, origin) in names {
                match find(&origin.strip_prefix("built-in:").map_or(origin.clone(), str::to_string)) {
                    Ok(s) => println!("{name:<24} {origin:<32} {}", s.study.description),
                    Err(e) => println!("{name:<24} {origin:<32} INVALID: {e:#}"),
                }
            }
            Ok(Exit::Ok)
        }
    }
}
