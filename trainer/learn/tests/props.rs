//! Property tests of the dataset CSV reader and the model cards on mutated real inputs: every
//! input is read or rejected with an error naming the place; nothing panics. `PROPTEST_CASES`
//! sets the count (256 by default).

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use proptest::prelude::*;
use sfr2l_core::card::SimulatorCard;

use sfr2l_learn::rl::card::AgentCard;
use sfr2l_tests::mutate::{cases, edits, json_error_in_place, mutate, repo_file, round_trips};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn dataset_csv_mutated(e in edits(8)) {
        let csv: Vec<u8> = repo_file("data/s1.csv").split(|b| *b == b'\n').take(40).collect::<Vec<_>>().join(&b'\n');
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s1.csv");
        std::fs::write(&path, mutate(csv, &e)).unwrap();
        if let Err(err) = sfr2l_learn::data::read_dataset(&path, &sfr2l_files::study::find("s1").unwrap().study) {
            let msg = err.to_string();
            prop_assert!(msg.contains("s1.csv"), "{msg}");
        }
    }

    /// A mutated card reads into a card that round-trips, or fails naming a line and column
    /// inside the text.
    #[test]
    fn model_cards_mutated(e in edits(8)) {
        let sim = mutate(repo_file("policies/s1/simulator.json"), &e);
        let r = match serde_json::from_slice::<SimulatorCard>(&sim) {
            Ok(card) => round_trips(&card),
            Err(err) => json_error_in_place(&sim, &err),
        };
        prop_assert!(r.is_ok(), "simulator card: {}", r.unwrap_err());
        let agent = mutate(repo_file("policies/s1/agents/thread-call/seed-1/thread.json"), &e);
        let r = match serde_json::from_slice::<AgentCard>(&agent) {
            Ok(card) => round_trips(&card),
            Err(err) => json_error_in_place(&agent, &err),
        };
        prop_assert!(r.is_ok(), "agent card: {}", r.unwrap_err());
    }
}
