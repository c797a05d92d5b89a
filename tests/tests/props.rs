//! Property tests of the trainer's and runtime's parsers on mutated real inputs: `traces ingest`,
//! the DestinationRule reader, the dataset CSV reader, the model cards and the ONNX loading path.
//! Every input is accepted or rejected with a typed error naming the place; nothing panics.
//! `PROPTEST_CASES` sets the count (256 by default).

use proptest::prelude::*;
use proptest::sample::Index;
use sfr2l::rl::card::AgentCard;
use sfr2l_core::card::SimulatorCard;
use sfr2l_core::ProfileId;
use std::sync::OnceLock;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn repo_file(path: &str) -> Vec<u8> {
    std::fs::read(sfr2l_tests::repo_root().join(path)).unwrap()
}

/// Byte edits: (where, byte, 0 = replace / 1 = insert / 2 = delete / 3 = truncate here).
type Edits = Vec<(Index, u8, u8)>;

fn edits(max: usize) -> impl Strategy<Value = Edits> {
    prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..4), 1..max)
}

fn mutate(mut b: Vec<u8>, edits: &Edits) -> Vec<u8> {
    for (at, byte, op) in edits {
        let n = b.len();
        let i = at.index(n.max(1));
        match op {
            0 if n > 0 => b[i.min(n - 1)] = *byte,
            1 => b.insert(i.min(n), *byte),
            2 if n > 0 => {
                b.remove(i.min(n - 1));
            }
            3 => b.truncate(i),
            _ => {}
        }
    }
    b
}

fn ingest_sample() -> &'static Vec<u8> {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| {
        use sfr2l_core::counters::{RunAnnounce, RunCounters};
        let a = RunAnnounce { threads: 2, calls: 2 };
        let mut c = RunCounters::new(a);
        c.record(a, 200, 0, 1_000, 2_000_000);
        c.record(a, 503, 0x80, 1_000, 3_000_000);
        let rec = sfr2l_core::TraceRecord::from_counters("r-1", 1, Some(sfr2l::lab::open_rule()), &c);
        format!(
            "noise\n[2026-11-29 12:00:00.000][7][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: {}\n\
             2026-11-29T12:00:00.000Z\tinfo\twasm\twasm log istio-system.sfr2l: {}\n",
            rec.to_signed_log_line(Some(b"props-key-0123456789")),
            rec.to_log_line()
        )
        .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// `traces ingest` on mutated logs: every marker line is a record, a typed rejection or a
    /// malformed-record error naming `origin:line`.
    #[test]
    fn ingest_mutated_logs(e in edits(12)) {
        let text = mutate(ingest_sample().clone(), &e);
        for key in [None, Some(&b"props-key-0123456789"[..])] {
            let r = sfr2l::ingest::ingest_checked(text.as_slice(), "p.log", key).unwrap();
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
        if let Err(err) = sfr2l::destination_rule::parse(&text, "dr.yaml") {
            let msg = format!("{err:#}");
            prop_assert!(msg.contains("dr.yaml"), "{msg}");
        }
    }

    #[test]
    fn dataset_csv_mutated(e in edits(8)) {
        let csv: Vec<u8> = repo_file("data/s1.csv").split(|b| *b == b'\n').take(40).collect::<Vec<_>>().join(&b'\n');
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s1.csv");
        std::fs::write(&path, mutate(csv, &e)).unwrap();
        if let Err(err) = sfr2l::data::read_dataset(&path, ProfileId::S1) {
            let msg = err.to_string();
            prop_assert!(msg.contains("s1.csv"), "{msg}");
        }
    }

    #[test]
    fn model_cards_mutated(e in edits(8)) {
        let sim = mutate(repo_file("policies/s1/simulator.json"), &e);
        if let Err(err) = serde_json::from_slice::<SimulatorCard>(&sim) {
            prop_assert!(err.line() >= 1 || err.is_eof(), "{err}");
        }
        let agent = mutate(repo_file("policies/s1/agents/thread-call/seed-1/thread.json"), &e);
        if let Err(err) = serde_json::from_slice::<AgentCard>(&agent) {
            prop_assert!(err.line() >= 1 || err.is_eof(), "{err}");
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
    /// plan, then the check against core) on mutated bytes: a loaded agent still passes or fails
    /// the check with a reason; a rejected one names what failed.
    #[test]
    fn onnx_agent_mutated(e in edits(6)) {
        let bytes = mutate(agent_onnx().clone(), &e);
        match sfr2l_runtime::Agent::from_bytes(&bytes) {
            Ok(a) => {
                let _ = a.check_for(ProfileId::S1, "thread-call".parse().unwrap(), sfr2l_core::agent::AgentKind::Threads);
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }
}
