//! sfr2l trainer library: the lab (real Envoy + httpbin), the load generator, trace ingestion
//! dataset collection, the simulator and its ONNX export. `main.rs` only parses arguments and dispatches.

pub mod cli;
pub mod collect;
pub mod commands;
pub mod data;
pub mod destination_rule;
pub mod device;
pub mod export;
pub mod ingest;
pub mod lab;
pub mod load;
pub mod rl;
pub mod rl_cmd;
pub mod rng;
pub mod sim;
pub mod sim_cmd;
