//! Names that artifacts and the wire share, defined once: the ONNX metadata keys every exported
//! graph carries, the `kind` values of graphs and cards, and the run headers the load generator
//! sends and the filter reads. Producers (trainer) and consumers (runtime, filter) use these.

/// ONNX `metadata_props` keys.
pub mod meta {
    /// Card schema version (`card::CARD_SCHEMA`).
    pub const SCHEMA: &str = "sfr2l.schema";
    /// What the graph is: [`super::KIND_SIMULATOR`] or [`super::KIND_AGENT`].
    pub const KIND: &str = "sfr2l.kind";
    /// Dataset profile (`s1`..`s5`).
    pub const PROFILE: &str = "sfr2l.profile";
    /// Simulator: comma-separated input names in the core's feature order.
    pub const FEATURES: &str = "sfr2l.features";
    /// Simulator: comma-separated output names.
    pub const OUTPUTS: &str = "sfr2l.outputs";
    /// Simulator: ensemble members behind the mean.
    pub const ENSEMBLE: &str = "sfr2l.ensemble";
    /// Simulator: sha256 of the dataset it was fitted on.
    pub const DATASET_SHA256: &str = "sfr2l.dataset_sha256";
    /// Agent: configuration slug (e.g. `thread-call`).
    pub const CONFIGURATION: &str = "sfr2l.configuration";
    /// Agent: number of services of the run.
    pub const SERVICES: &str = "sfr2l.services";
    /// Agent: which service's head this graph is.
    pub const SERVICE: &str = "sfr2l.service";
    /// Agent: the feature the agent chooses (`threads` or `calls`).
    pub const ACTION: &str = "sfr2l.action";
    /// Agent: comma-separated grid values, one per Q-value output.
    pub const GRID: &str = "sfr2l.grid";
    /// Agent: comma-separated state column names.
    pub const STATE: &str = "sfr2l.state";
    /// Agent: what it maximises (`worst` or `best`).
    pub const OBJECTIVE: &str = "sfr2l.objective";
    /// Agent: the response codes its reward counts as failure (`429,503`); absent: 503 only.
    /// (A simulator names them in its rate output, `sfr2l.outputs`.)
    pub const FAILURE_CODES: &str = "sfr2l.failure_codes";
}

/// `kind` of a simulator graph and card.
pub const KIND_SIMULATOR: &str = "simulator";
/// `kind` of an agent graph and card.
pub const KIND_AGENT: &str = "agent";

/// Request headers that mark a load run for the filter (the defaults of `config::RunHeaders`).
pub mod header {
    /// Run id.
    pub const RUN: &str = "x-sfr2l-run";
    /// The run's threads (fortio `-c`).
    pub const THREADS: &str = "x-sfr2l-threads";
    /// The run's calls (fortio `-n`).
    pub const CALLS: &str = "x-sfr2l-calls";
}
