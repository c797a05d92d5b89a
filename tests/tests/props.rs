//! Property tests of the lab's and runtime's parsers on mutated real inputs: `traces ingest`, the
//! DestinationRule reader and the ONNX loading path (the dataset and card readers: sfr2l-learn).
//! Every input is accepted or rejected with a typed error naming the place; nothing panics.
//! `PROPTEST_CASES` sets the count (256 by default).

use proptest::prelude::*;
use sfr2l_tests::mutate::{cases, edits, mutate, repo_file};
use std::sync::OnceLock;

fn ingest_sample() -> &'static Vec<u8> {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| {
        use sfr2l_core::counters::{RunAnnounce, RunCounters};
        let a = RunAnnounce { threads: 2, calls: 2 };
        let mut c = RunCounters::new(a);
        c.record(a, 200, 0, 1_000, 2_000_000);
        c.record(a, 503, 0x80, 1_000, 3_000_000);
        let rec = sfr2l_core::TraceRecord::from_counters("r-1", 1, Some(sfr2l_lab::open_rule()), &c);
        format!(
            "noise\n[2026-11-29 12:00:00.000][7][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: {}\n\
             2026-11-29T12:00:00.000Z\tinfo\twasm\twasm log istio-system.sfr2l: {}\n",
            rec.to_signed_log_line(Some(b"props-key-0123456789")),
            rec.to_log_line()
        )
        .into_bytes()
    })
}

/// The thread agent's grid of study s1 (`studies/s1.yaml`): what the trainer checks a graph's
/// grid against (the filter and the explorer take the graph's own, pinned by its sha256).
/// S1's study: the agents' grid and inputs are checked against it.
fn s1_study() -> &'static sfr2l_core::Study {
    static S: OnceLock<sfr2l_core::Study> = OnceLock::new();
    S.get_or_init(|| sfr2l_files::study::find_in(&sfr2l_tests::repo_root(), "s1").unwrap().study)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// `traces ingest` on mutated logs: every marker line is a record, a typed rejection or a
    /// malformed-record error naming `origin:line`.
    #[test]
    fn ingest_mutated_logs(e in edits(12)) {
        let text = mutate(ingest_sample().clone(), &e);
        for key in [None, Some(&b"props-key-0123456789"[..])] {
            let r = sfr2l_lab::ingest::ingest_checked(text.as_slice(), "p.log", key).unwrap();
            for i in &r.records {
                if let Err(msg) = &i.record {
                    prop_assert!(msg.starts_with(&format!("p.log:{}:", i.line)), "{msg}");
                }
            }
            prop_assert!(r.rejected.iter().all(|x| !x.why.is_empty() && x.line >= 1));
        }
    }

    #[test]
    fn destination_rule_mutated(e in edits(8)) {
        let yaml = mutate(repo_file("manifests/overlays/istio-task/destinationrule.yaml"), &e);
        let text = String::from_utf8_lossy(&yaml);
        if let Err(err) = sfr2l_lab::destination_rule::parse(&text, "dr.yaml") {
            let msg = format!("{err:#}");
            prop_assert!(msg.contains("dr.yaml"), "{msg}");
        }
    }
}

fn agent_onnx() -> &'static Vec<u8> {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| repo_file("policies/s1/agents/thread-call/seed-1/thread.onnx"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// The ONNX loading path of the filter and the trainer (protobuf decode, card metadata, tract
    /// plan, then the check against core) on mutated bytes. A loaded agent passes the check
    /// exactly when its card metadata is still the original's, and a failed check names a key
    /// whose value changed; a passing agent decides a value of its grid for a real state (or
    /// says why not); a rejected graph says what failed.
    #[test]
    fn onnx_agent_mutated(e in edits(6)) {
        let bytes = mutate(agent_onnx().clone(), &e);
        let original = sfr2l_runtime::Agent::from_bytes(agent_onnx()).unwrap();
        let meta = |a: &sfr2l_runtime::Agent| {
            (a.schema, a.profile.clone(), a.configuration.clone(), a.action.clone(), a.state.clone(), a.grid.clone())
        };
        match sfr2l_runtime::Agent::from_bytes(&bytes) {
            Ok(a) => {
                let check = a.check_for("s1", "thread-call".parse().unwrap(), sfr2l_core::agent::AgentKind::Threads, Some(s1_study()));
                prop_assert_eq!(check.is_ok(), meta(&a) == meta(&original), "{:?}", check);
                match check {
                    Ok(()) => {
                        let state = vec![0.5f32; a.state.len()];
                        if let Ok(v) = a.decide(&state) {
                            prop_assert!(a.grid.contains(&v), "decided {} outside the grid", v);
                        }
                    }
                    Err(sfr2l_runtime::RuntimeError::Metadata { key, msg }) => {
                        let changed = match key.as_str() {
                            "sfr2l.schema" => a.schema != original.schema,
                            "sfr2l.profile" => a.profile != original.profile,
                            "sfr2l.configuration" => a.configuration != original.configuration,
                            "sfr2l.action" => a.action != original.action,
                            "sfr2l.state" => a.state != original.state,
                            "sfr2l.grid" => a.grid != original.grid,
                            _ => false,
                        };
                        prop_assert!(changed, "the check names {} ({}), which did not change", key, msg);
                    }
                    Err(other) => prop_assert!(false, "{other}"),
                }
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    /// Edits of the card metadata that keep the graph valid (one character of a key's value
    /// replaced, the length kept): the check fails, naming the key that changed, or (for an
    /// edit the loader already refuses) loading fails.
    #[test]
    fn onnx_agent_metadata_edits(key in prop::sample::select(vec!["sfr2l.schema", "sfr2l.profile", "sfr2l.configuration", "sfr2l.action", "sfr2l.grid", "sfr2l.state"]),
                                 at in any::<prop::sample::Index>(), to in prop::sample::select(b"0123456789abcdefghijklmnopqrstuvwxyz,_-".to_vec())) {
        let mut bytes = agent_onnx().clone();
        let k = bytes.windows(key.len()).position(|w| w == key.as_bytes()).unwrap() + key.len();
        // `0x12 len value`: the metadata entry's value field (lengths below 128 take one byte).
        prop_assert_eq!(bytes[k], 0x12);
        let (len, start) = if bytes[k + 1] < 0x80 { (bytes[k + 1] as usize, k + 2) } else { ((bytes[k + 1] & 0x7f) as usize | (bytes[k + 2] as usize) << 7, k + 3) };
        let i = start + at.index(len);
        prop_assume!(bytes[i] != to);
        bytes[i] = to;
        match sfr2l_runtime::Agent::from_bytes(&bytes) {
            Ok(a) => match a.check_for("s1", "thread-call".parse().unwrap(), sfr2l_core::agent::AgentKind::Threads, Some(s1_study())) {
                Err(sfr2l_runtime::RuntimeError::Metadata { key: named, .. }) => prop_assert_eq!(named, key),
                other => prop_assert!(false, "{} edited at {}: {:?}", key, i - start, other),
            },
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }
}
