//! sfr2l-core: the vocabulary shared by the filter (wasm32-wasip1) and the trainer (native).
//!
//! Pure logic only: no clock, no I/O, no host calls. Time is always an argument (nanoseconds
//! since the Unix epoch), so counting and windowing are testable to the nanosecond.

pub mod agent;
pub mod artifact;
pub mod card;
pub mod columns;
pub mod config;
pub mod counters;
pub mod duration;
pub mod failure;
pub mod feature;
pub mod inputs;
pub mod loadtest;
pub mod reward;
pub mod rng;
pub mod rule;
pub mod store;
pub mod study;
pub mod trace;
pub mod window;

pub use counters::RunCounters;
pub use duration::IstioDuration;
pub use failure::Failure;
pub use feature::{Feature, FEATURES, N_FEATURES, N_LOAD, N_RULES, RULE_FEATURES};
pub use inputs::Inputs;
pub use rule::{LoadSetting, TrafficRule};
pub use study::Study;
pub use trace::TraceRecord;
