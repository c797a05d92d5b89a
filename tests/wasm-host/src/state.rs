//! What the host keeps: state shared by every VM (shared data, clock, metrics, logs, callouts)
//! and each VM's own (effective context, tick periods, the buffers a callback may read).

use std::collections::{BTreeMap, BTreeSet};
use wasmtime::{Memory, TypedFunc};

/// proxy-wasm ABI v0.2.1 status codes.
pub mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const CAS_MISMATCH: i32 = 8;
    pub const INTERNAL_FAILURE: i32 = 10;
    pub const UNIMPLEMENTED: i32 = 12;
}

/// Header pairs in order (lower-case names).
pub type Headers = Vec<(String, String)>;

/// Identifies an outstanding `proxy_http_call`: tokens are per VM, as in Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId {
    pub vm: usize,
    pub token: u32,
}

/// An HTTP callout the test answers (or never does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: CallId,
    /// The context that dispatched it (its response goes back there).
    pub context: u32,
    pub cluster: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
    pub sent_ns: u64,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub vm: usize,
    /// proxy-wasm log level (0 trace .. 5 critical); 99 for WASI stdout/stderr.
    pub level: i32,
    pub message: String,
}

/// Everything all VMs of one host see, like one Envoy process.
#[derive(Debug, Default)]
pub struct Shared {
    /// The virtual clock (ns since the epoch): the only time the VMs see.
    pub now_ns: u64,
    /// Shared data with its CAS values.
    pub data: BTreeMap<String, (Vec<u8>, u32)>,
    pub(crate) last_cas: u32,
    /// Metrics by name, shared by all VMs (Envoy's stats).
    pub metrics: BTreeMap<String, (MetricKind, i64)>,
    pub logs: Vec<LogLine>,
    /// Outstanding callouts, in dispatch order.
    pub calls: Vec<Call>,
    /// Every callout ever dispatched (answered or not), in order.
    pub dispatched: Vec<Call>,
    /// Clusters Envoy knows; a call to any other is refused with BadArgument.
    pub clusters: BTreeSet<String>,
    /// Clusters whose calls Envoy answers with a local reply at dispatch (InternalFailure).
    pub refusing: BTreeSet<String>,
    /// Dispatches refused so far (both kinds).
    pub refused: u64,
    /// Most calls outstanding at once, by cluster (checked at every dispatch).
    pub peak: BTreeMap<String, usize>,
    /// Contention from "other workers": this many CAS writes fail with CasMismatch, the entry's
    /// CAS value bumped as if another VM had written it in between.
    pub interleave: u32,
    /// CAS writes answered CasMismatch so far.
    pub cas_mismatches: u64,
}

impl Shared {
    /// Envoy's CAS counter: never 0 (0 means "no CAS" in the ABI).
    pub(crate) fn next_cas(&mut self) -> u32 {
        self.last_cas = self.last_cas.wrapping_add(1).max(1);
        self.last_cas
    }

    /// The log lines that carry a trace record, in order.
    pub fn trace_lines(&self) -> Vec<String> {
        self.logs.iter().filter(|l| l.message.contains("SFR2L_TRACE ")).map(|l| l.message.clone()).collect()
    }
}

/// A tick timer of one root context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub period_ms: u32,
    pub next_ns: u64,
}

/// A VM's own state (the wasmtime store data).
pub struct VmState {
    pub vm: usize,
    pub shared: std::rc::Rc<std::cell::RefCell<Shared>>,
    pub(crate) memory: Option<Memory>,
    pub(crate) alloc: Option<TypedFunc<i32, i32>>,
    /// The context host calls act for (the callback's, or set by proxy_set_effective_context).
    pub effective: u32,
    pub plugin_config: Vec<u8>,
    /// Tick timers by root context id.
    pub ticks: BTreeMap<u32, Tick>,
    /// Metric ids of this VM (index + 1) to names.
    pub(crate) metric_ids: Vec<String>,
    pub(crate) next_token: u32,
    /// Request headers and properties of the HTTP streams, by context id.
    pub request_headers: BTreeMap<u32, Headers>,
    pub properties: BTreeMap<u32, BTreeMap<String, Vec<u8>>>,
    /// The response being delivered to proxy_on_http_call_response: headers and body.
    pub call_response: Option<(Headers, Vec<u8>)>,
    pub(crate) rng: u64,
}

impl VmState {
    pub fn new(vm: usize, shared: std::rc::Rc<std::cell::RefCell<Shared>>) -> Self {
        VmState {
            vm,
            shared,
            memory: None,
            alloc: None,
            effective: 0,
            plugin_config: Vec::new(),
            ticks: BTreeMap::new(),
            metric_ids: Vec::new(),
            next_token: 0,
            request_headers: BTreeMap::new(),
            properties: BTreeMap::new(),
            call_response: None,
            rng: 0x5f12_0000_0000_0001 ^ vm as u64,
        }
    }
}
