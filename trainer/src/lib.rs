//! sfr2l trainer library: the lab (real Envoy + httpbin), the load generator, trace ingestion
//! and dataset collection. `main.rs` only parses arguments and dispatches.

pub mod cli;
pub mod collect;
pub mod commands;
pub mod destination_rule;
pub mod ingest;
pub mod lab;
pub mod load;
pub mod rng;
