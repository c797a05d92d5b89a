//! sfr2l trainer library, one module per stage: the lab (real Envoy + httpbin) and the load
//! generator, collection and trace ingestion, datasets, the simulator (`sim`), the agents (`rl`),
//! shared dense networks (`nn`) and artifact publishing (`export`, `artifact`). `main.rs` parses
//! and dispatches to `commands/`, one thin file per command group.

pub mod advise;
pub mod artifact;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod data;
pub mod destination_rule;
pub mod device;
pub mod export;
pub mod history;
pub mod ingest;
pub mod inline;
pub mod istio;
pub mod lab;
pub mod load;
pub mod manifests;
pub mod nn;
pub mod oci;
pub mod rl;
pub mod rng;
pub mod serve;
pub mod sim;
pub mod validate;
