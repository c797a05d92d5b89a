//! sfr2l-lab: the local mesh and what runs on it. `mesh` starts real Envoy sidecars in front of
//! real upstreams on loopback and switches rules as istiod would render them; `collect` turns
//! planned runs into dataset rows; `ingest` reads the filter's trace lines from any log stream;
//! `loadtest` drives the filter's load-test mode; `destination_rule` reads and renders rules.

pub mod collect;
pub mod destination_rule;
pub mod ingest;
pub mod loadtest;
pub mod mesh;

pub use mesh::{
    admin, envoy, open_rule, process, Lab, LabOptions, LabState, Ports, Toolchain, MAX_HOSTS, STOPPED_WAIT,
};
