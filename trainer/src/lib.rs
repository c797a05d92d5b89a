//! sfr2l trainer library: the lab (real Envoy + httpbin), the load generator, trace ingestion
//! and dataset collection. `main.rs` only parses arguments and dispatches.

pub mod load;
