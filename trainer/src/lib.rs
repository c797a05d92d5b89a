//! The `sfr2l` command: `cli` turns arguments into validated settings, `commands/` runs one
//! command group each over the stage crates (sfr2l-load, sfr2l-lab, sfr2l-learn, sfr2l-deploy);
//! `validate` replays agents' decisions on the real lab, `advise` searches rules on a simulator,
//! `serve` hosts the explorer page. `main.rs` parses and dispatches.

pub mod advise;
pub mod cli;
pub mod commands;
pub mod serve;
pub mod study_init;
pub mod validate;
