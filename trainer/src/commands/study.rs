//! `sfr2l study check|show|list`.

use super::Exit;
use crate::cli::{StudyCommand, StudyInitArgs};
use crate::study_init::{draft, pilot, Inputs};
use anyhow::{bail, Context, Result};
use sfr2l_deploy::istio::{self, Object};
use sfr2l_files::study::{built_in_names, find, STUDIES_DIR};
use sfr2l_lab::destination_rule::{parse_for, Aim};
use std::time::Duration;

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
        StudyCommand::Init(a) => init(a),
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

/// `sfr2l study init`: the rules read and checked first (nothing is written on a bad file), then
/// the pilot, then the draft, checked as `study check` would before it is written.
fn init(a: StudyInitArgs) -> Result<Exit> {
    if a.out.exists() && !a.force {
        bail!("{} exists: pass --force to overwrite it", a.out.display());
    }
    let name = a.out.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
    // Every file typed whole; the DestinationRules' hosts.
    let mut hosts: Vec<(String, Option<String>, usize)> = Vec::new();
    let mut texts = Vec::new();
    for (i, f) in a.rules.iter().enumerate() {
        for o in istio::read_file(f)? {
            if let Object::DestinationRule(d) = o {
                hosts.push((d.host, d.namespace, i));
            }
        }
        texts.push(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?);
    }
    let short = |h: &str| h.split('.').next().unwrap_or("").to_string();
    let service = match &a.service {
        Some(s) => s.clone(),
        None => {
            let mut names: Vec<String> = hosts.iter().map(|(h, _, _)| short(h)).collect();
            names.sort();
            names.dedup();
            match &names[..] {
                [one] => one.clone(),
                [] => bail!(
                    "{}: no DestinationRule",
                    a.rules.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
                many => bail!("the rules name several hosts ({}): give --service", many.join(", ")),
            }
        }
    };
    let mine: Vec<&(String, Option<String>, usize)> = hosts.iter().filter(|(h, _, _)| short(h) == service).collect();
    let namespace = a
        .namespace
        .clone()
        .or_else(|| mine.iter().find_map(|(h, ns, _)| h.split('.').nth(1).map(str::to_string).or_else(|| ns.clone())));
    let namespace = namespace.unwrap_or_else(|| "default".into());
    let spec = sfr2l_load::LoadSpec::from_url(&a.url, 1, 1)?;
    let port = a.port.unwrap_or(spec.port);
    // The files with the service's rules, merged as istiod merges them when there are several.
    let mut files: Vec<usize> = mine.iter().map(|(_, _, i)| *i).collect();
    files.dedup();
    let text = files.iter().map(|i| texts[*i].as_str()).collect::<Vec<_>>().join("\n---\n");
    let origin = files.iter().map(|i| a.rules[*i].display().to_string()).collect::<Vec<_>>().join(" + ");
    let aim = Aim { host: Some(&service), port: Some(port), subset: a.subset.as_deref() };
    let read = parse_for(&text, &origin, aim)?;
    for k in read.kept.iter().filter(|k| !k.contains(": not read)")) {
        eprintln!("sfr2l: {origin}: kept, not modelled: {k}");
    }
    eprintln!("sfr2l: pilot against {} ({} x {:.1} s)", a.url, crate::study_init::PILOT_THREADS.len(), a.pilot_seconds);
    let (points, status) = pilot(&a.url, Duration::from_secs_f64(a.pilot_seconds.clamp(0.2, 30.0)))?;
    let rules: Vec<String> = a.rules.iter().map(|p| p.display().to_string()).collect();
    let address = format!("{}:{}", spec.host, spec.port);
    let text = draft(&Inputs {
        name: &name,
        service: &service,
        namespace: &namespace,
        port,
        subset: a.subset.as_deref(),
        path: &spec.path,
        address: &address,
        status,
        rules: &rules,
        rule: read.rule,
        set: &read.set,
        points: &points,
    })?;
    let out = a.out.display().to_string();
    let study =
        sfr2l_files::study::parse(&text, &out).context("the drafted study does not check (a bug: please report it)")?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    sfr2l_files::write_atomic(&a.out, text.as_bytes())?;
    let varied: Vec<&str> = study.attributes.iter().filter(|a| !a.is_fixed()).map(|a| a.feature.source()).collect();
    println!(
        "wrote {out}: study {} of {}.{}:{}{}; varies {}; threads {}..={}, calls {}..={}",
        study.name,
        service,
        namespace,
        port,
        a.subset.map(|s| format!(" subset {s}")).unwrap_or_default(),
        varied.join(", "),
        study.threads.lo,
        study.threads.hi,
        study.calls.lo,
        study.calls.hi
    );
    println!("next: sfr2l study check {out}; sfr2l lab pilot --study {out}");
    Ok(Exit::Ok)
}
