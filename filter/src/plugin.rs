//! Root context (configure, tick: merge shares, close idle runs, window gauges) and the HTTP
//! context (read the run announcement, count the response in `on_log`).

use crate::fetch;
use crate::host::{self, HostStore};
use crate::loadtest;
use crate::metrics::{self, Metrics};
use crate::runs::{close_idle_runs, flush_run, flush_runs};
use crate::state::{vm_state, VmState};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};
use sfr2l_core::config::ConfigV1;
use sfr2l_core::counters::{RunAnnounce, RunCounters};
use sfr2l_core::store;
use sfr2l_core::window::RollingWindow;
use std::cell::RefCell;
use std::rc::Rc;

/// Responses of a run a worker accumulates before merging them outside the tick.
const MERGE_BATCH: u64 = 64;
/// Distinct runs a worker holds unmerged; a new run beyond it merges them all first, so a client
/// announcing many runs between two ticks cannot grow the VM's memory.
const LOCAL_MAX_RUNS: usize = 256;

pub struct Root {
    id: u32,
    local: Rc<RefCell<VmState>>,
}

impl Root {
    pub fn new(id: u32) -> Self {
        Root { id, local: vm_state() }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, _num_trailers: usize) {
        let now = host::now_ns();
        let mut l = self.local.borrow_mut();
        let current = l.current_root == self.id;
        loadtest::on_response(&mut l, token_id, num_headers, body_size, now, current);
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        // Shared entries (and the shard key) are created before any traffic; later updates
        // are CAS-only.
        self.local.borrow_mut().init_shared();
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        let mut l = self.local.borrow_mut();
        l.metrics = Metrics::define();
        l.current_root = self.id;
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(b) => b.unwrap_or_default(),
            Err(s) => {
                l.internal_error("config_read", &format!("{s:?}"));
                Vec::new()
            }
        };
        match ConfigV1::parse(&bytes) {
            Ok(c) => {
                if c.window_buckets() != l.window.buckets.len() {
                    l.window = RollingWindow::new(c.window_buckets());
                }
                metrics::set(l.metrics.config_generation, c.generation);
                fetch::on_config(&mut l, &c, host::now_ns());
                l.config = Rc::new(c);
            }
            Err(e) => {
                // Keep the last good configuration; never reject (fail open).
                metrics::inc(l.metrics.config_errors, 1);
                host::log(LogLevel::Error, &format!("sfr2l: bad plugin configuration, keeping the last good one: {e}"));
            }
        }
        l.tick_ms = 0;
        l.set_tick();
        true
    }

    fn on_tick(&mut self) {
        let now = host::now_ns();
        let mut l = self.local.borrow_mut();
        flush_runs(&mut l);
        close_idle_runs(&mut l, now);
        update_window(&mut l, now);
        if l.current_root == self.id {
            fetch::tick_fetch(&mut l, now);
            loadtest::tick_test(&mut l, now);
            l.set_tick();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http { local: Rc::clone(&self.local), run: None, start_ns: 0 }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn update_window(l: &mut VmState, now: u64) {
    let sec = now / 1_000_000_000;
    let merged = if !l.window.is_empty() {
        let local = std::mem::replace(&mut l.window, RollingWindow::new(l.config.window_buckets()));
        match store::merge_window(&HostStore, &local) {
            Ok(w) => Some(w),
            Err(e) => {
                l.window = local;
                l.internal_error("window", &e.to_string());
                None
            }
        }
    } else if sec != l.last_window_read_s {
        store::open_window(&HostStore).ok().flatten()
    } else {
        None
    };
    if let Some(w) = merged {
        l.last_window_read_s = sec;
        let (qps, rate) = w.stats(now);
        metrics::set(l.metrics.window_qps, qps.round() as u64);
        metrics::set(l.metrics.window_503_permille, (rate * 1000.0).round() as u64);
        loadtest::sim_gauges(l, &w, now, qps, rate);
    }
}

struct Http {
    local: Rc<RefCell<VmState>>,
    run: Option<(String, RunAnnounce)>,
    start_ns: u64,
}

impl Context for Http {}

fn parse_announce(config: &ConfigV1) -> Option<(String, RunAnnounce)> {
    let run = host::request_header(&config.headers.run)?;
    if run.is_empty() || run.len() > 128 || !run.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
        return None;
    }
    let threads = host::request_header(&config.headers.threads)?.trim().parse().ok()?;
    let calls = host::request_header(&config.headers.calls)?.trim().parse().ok()?;
    Some((run, RunAnnounce { threads, calls }))
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _n: usize, _end_of_stream: bool) -> Action {
        self.start_ns = host::now_ns();
        let config = Rc::clone(&self.local.borrow().config);
        self.run = parse_announce(&config);
        Action::Continue
    }

    fn on_log(&mut self) {
        let end = host::now_ns();
        let mut l = self.local.borrow_mut();
        let Some(code) = host::int_property(&["response", "code"]) else {
            // No response code: the stream ended before any response (the client, or a listener
            // drain, reset it). Counted on its own: nothing failed in the filter.
            return metrics::inc(l.metrics.client_resets, 1);
        };
        let code = u16::try_from(code).unwrap_or(0);
        let flags = host::int_property(&["response", "flags"]).unwrap_or(0) as u64;
        metrics::inc(l.metrics.responses[metrics::code_class(code)], 1);
        match &self.run {
            Some((run, announce)) => {
                let start = if self.start_ns == 0 { end } else { self.start_ns };
                // No allocation for the run id once its share exists (hot path).
                let full = match l.runs.get_mut(run.as_str()) {
                    Some(share) => {
                        share.record(*announce, code, flags, start, end);
                        share.responses() >= MERGE_BATCH
                    }
                    None => {
                        if l.runs.len() >= LOCAL_MAX_RUNS {
                            flush_runs(&mut l);
                        }
                        let mut share = RunCounters::default();
                        share.record(*announce, code, flags, start, end);
                        l.runs.insert(run.clone(), share);
                        false
                    }
                };
                // Merge in batches (each merge is a CAS round trip with (de)serialisation); the
                // tick merges what is left, so a run completes at most one tick after its last
                // response.
                if full {
                    flush_run(&mut l, run);
                }
            }
            None => {
                metrics::inc(l.metrics.unannounced, 1);
                let start = if self.start_ns == 0 { end } else { self.start_ns };
                l.window.record_timed(end, code, end.saturating_sub(start))
            }
        }
    }
}
