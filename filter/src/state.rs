//! The VM's state: one per Wasm VM, shared by every root context of the VM and their HTTP
//! contexts, and the data of the model fetch and the load test it may be running. The behaviour
//! lives beside it (`fetch`, `loadtest`, `runs`, `plugin`), each taking the state it works on.

use crate::host::{self, HostStore};
use crate::metrics::{self, Metrics};
use crate::models::{Models, Wanted};
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;
use sfr2l_core::config::{ConfigV1, LoadTestConfig, ModelsConfig};
use sfr2l_core::counters::{RunAnnounce, RunCounters};
use sfr2l_core::loadtest::{Decision, Scheduler};
use sfr2l_core::store::{self, ShardKey, Sharding};
use sfr2l_core::trace::Predicted;
use sfr2l_core::window::RollingWindow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;

/// Per-VM state, shared by every root context of the VM and their HTTP contexts. It is VM-wide
/// (not per root context) because an LDS update creates a new root context while connections
/// accepted just before it still count through the old one: their shares must not be lost when
/// the old root context goes away, and the newest root context's ticks flush them.
pub(crate) struct VmState {
    pub(crate) config: Rc<ConfigV1>,
    pub(crate) metrics: Metrics,
    /// This worker's not-yet-merged share of each run.
    pub(crate) runs: HashMap<String, RunCounters>,
    pub(crate) window: RollingWindow,
    /// Errors already logged (each kind once).
    pub(crate) logged: BTreeSet<&'static str>,
    pub(crate) last_window_read_s: u64,
    pub(crate) last_idle_scan_ns: u64,
    /// The models in use (load-test mode, simulator gauges), and a newer set being fetched.
    pub(crate) models: Option<Rc<Models>>,
    pub(crate) fetch: Option<Fetch>,
    /// The load test this VM leads, and the callouts in flight by token.
    pub(crate) running: Option<Running>,
    pub(crate) callouts: HashMap<u32, Callout>,
    /// Sequence for fetches and tests (stale callouts are recognised by it).
    pub(crate) seq: u64,
    /// This VM's identity in leader claims (0: not assigned yet).
    pub(crate) vm_id: u64,
    pub(crate) last_claim_ns: u64,
    /// The newest configured root context. Only it fetches models and runs inline tests: an
    /// older one is deleted once its listener drains, and its callouts die with it.
    pub(crate) current_root: u32,
    /// Tick period in force on the current root context (ms), and the one wanted: an inline
    /// test whose calls are refused at dispatch ticks every millisecond to refill their slots.
    pub(crate) tick_ms: u64,
    pub(crate) fast_tick: bool,
    /// Token bucket of trace lines (`max_trace_lines_per_s`), refilled by the host clock.
    pub(crate) trace_tokens: f64,
    pub(crate) last_token_ns: u64,
    /// The process's shard key, read from shared data (`None` until it could be read).
    pub(crate) shard_key: Option<ShardKey>,
}

impl VmState {
    pub(crate) fn new() -> Self {
        let config = ConfigV1::default();
        let window = RollingWindow::new(config.window_buckets());
        VmState {
            config: Rc::new(config),
            metrics: Metrics::default(),
            runs: HashMap::new(),
            window,
            logged: BTreeSet::new(),
            last_window_read_s: 0,
            last_idle_scan_ns: 0,
            models: None,
            fetch: None,
            running: None,
            callouts: HashMap::new(),
            seq: 0,
            vm_id: 0,
            last_claim_ns: 0,
            current_root: 0,
            tick_ms: 0,
            fast_tick: false,
            trace_tokens: 0.0,
            last_token_ns: 0,
            shard_key: None,
        }
    }

    /// Creates the shared entries if missing and reads the process's shard key (creating it
    /// from fresh randomness if no VM has yet). Runs wait in the VM until it is known.
    pub(crate) fn init_shared(&mut self) {
        if let Err(e) = store::init_shared(&HostStore) {
            return self.internal_error("init_shared", &e.to_string());
        }
        let mut fresh = [0u8; 16];
        if let Err(e) = getrandom::fill(&mut fresh) {
            return self.internal_error("random", &e.to_string());
        }
        match store::adopt_shard_key(&HostStore, fresh) {
            Ok(k) => self.shard_key = Some(k),
            Err(e) => self.internal_error("shard_key", &e.to_string()),
        }
    }

    /// The run placement in force: the shard key and the configured bound.
    pub(crate) fn sharding(&mut self) -> Option<Sharding> {
        if self.shard_key.is_none() {
            self.init_shared();
        }
        Some(Sharding { key: self.shard_key?, max_open_runs: self.config.max_open_runs })
    }

    /// Logs an error kind once per VM and counts every occurrence.
    pub(crate) fn internal_error(&mut self, kind: &'static str, detail: &str) {
        metrics::inc(self.metrics.internal_errors, 1);
        if self.logged.insert(kind) {
            host::log(LogLevel::Error, &format!("sfr2l: {kind}: {detail} (failing open; logged once)"));
        }
    }

    /// Sets this root context's tick period if it changed: the flush period, or 1 ms while an
    /// inline test has refused slots to refill.
    pub(crate) fn set_tick(&mut self) {
        let ms = if self.fast_tick && self.running.is_some() {
            1
        } else {
            (self.config.flush_period.secs() * 1000.0).round().max(1.0) as u64
        };
        if ms == self.tick_ms {
            return;
        }
        self.tick_ms = ms;
        if let Err(s) = hostcalls::set_tick_period(Duration::from_millis(ms)) {
            self.internal_error("set_tick_period", &format!("{s:?}"));
        }
    }
}

thread_local! {
    static LOCAL: Rc<RefCell<VmState>> = Rc::new(RefCell::new(VmState::new()));
}

pub(crate) fn vm_state() -> Rc<RefCell<VmState>> {
    LOCAL.with(Rc::clone)
}

/// Models being fetched for a new configuration; the models in use keep serving meanwhile.
pub(crate) struct Fetch {
    pub(crate) seq: u64,
    pub(crate) source: ModelsConfig,
    pub(crate) wanted: Vec<Wanted>,
    pub(crate) bodies: BTreeMap<String, Vec<u8>>,
    pub(crate) started_ns: u64,
    pub(crate) dispatched: bool,
}

/// An outstanding callout.
pub(crate) enum Callout {
    Fetch { seq: u64, index: usize },
    Test { seq: u64, start_ns: u64 },
}

/// The load test this VM leads.
pub(crate) struct Running {
    pub(crate) seq: u64,
    pub(crate) slot: String,
    pub(crate) run: String,
    pub(crate) generation: u64,
    pub(crate) rule: sfr2l_core::TrafficRule,
    pub(crate) models: Rc<Models>,
    pub(crate) decision: Decision,
    pub(crate) scheduler: Scheduler,
    pub(crate) counters: RunCounters,
    pub(crate) announce: RunAnnounce,
    pub(crate) no_response: u64,
    pub(crate) predicted: Option<Predicted>,
    pub(crate) decide_ns: u64,
    pub(crate) last_progress_ns: u64,
    /// The load-test settings the test started with: a push mid-test (another target, observe
    /// mode) applies to the next test, never half of this one.
    pub(crate) lt: LoadTestConfig,
}
