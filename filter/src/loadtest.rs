//! Load-test mode: the inline test's callouts, and the simulator gauges.
//!
//! Test calls (and model fetches, `fetch.rs`) go out with `dispatch_http_call` from a root
//! context's tick and come back in `on_http_call_response`, dispatched here. The decisions,
//! scheduling, claims and reward are core's; this file only moves bytes between them and the host.

use crate::fetch;
use crate::host::{self, HostStore};
use crate::metrics;
use crate::models::{self, Models};
use crate::state::VmState;
use crate::state::{Callout, Running};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};
use sfr2l_core::config::{LoadTestConfig, Mode};
use sfr2l_core::counters::{Reason, RunAnnounce, RunCounters};
use sfr2l_core::loadtest::{self, Scheduler, NO_RESPONSE};
use sfr2l_core::rule::LoadSetting;
use sfr2l_core::trace::{InlineTest, TraceRecord};
use std::rc::Rc;
use std::time::Duration;

/// A leader that has not refreshed its claim for this long has gone away; another VM takes over.
const TAKEOVER_NS: u64 = 5_000_000_000;
/// How often a VM looks at the claim (and the leader refreshes it).
const CLAIM_PERIOD_NS: u64 = 250_000_000;
/// Bytes of a 503 body read to tell Envoy's local replies apart.
const BODY_PREFIX: usize = 128;

/// Tick in load-test mode: claim the current slot, or keep the running test going and alive.
pub fn tick_test(l: &mut VmState, now: u64) {
    if l.running.is_some() {
        pump(l, now);
    }
    if now.saturating_sub(l.last_claim_ns) < CLAIM_PERIOD_NS {
        return;
    }
    l.last_claim_ns = now;
    if l.running.is_some() {
        return keep_claim(l, now);
    }
    let config = Rc::clone(&l.config);
    let (Mode::LoadTest, Some(lt), Some(rule)) = (config.mode, config.loadtest.as_ref(), config.rule) else { return };
    // A configuration that names new models decides with them once they pass their checks
    // (or with the last good ones once they are rejected), not with whatever was loaded before.
    if l.fetch.is_some() {
        return;
    }
    let Some(models) = l.models.clone() else { return };
    let every = lt.every.map(|e| (e.secs() * 1e9) as u64);
    let slot = loadtest::slot(&lt.trigger, every, now);
    if claim_slot(l, &slot, now) {
        start_test(l, slot, models, lt, rule, config.generation, now);
    }
}

/// The leader refreshes its claim; a stalled test is closed, a test another VM took over is
/// dropped without a record (that VM runs it again).
fn keep_claim(l: &mut VmState, now: u64) {
    let Some(r) = &l.running else { return };
    let (slot, seq, stalled) = (r.slot.clone(), r.seq, now.saturating_sub(r.last_progress_ns) > stall_ns(&r.lt));
    match loadtest::refresh(&HostStore, &slot, l.vm_id, now, false) {
        Ok(true) if stalled => finish(l, seq, now),
        Ok(true) => {}
        Ok(false) => {
            l.running = None;
            metrics::inc(l.metrics.inline_aborted, 1);
        }
        Err(e) => l.internal_error("inline_claim", &e.to_string()),
    }
}

/// Claims `slot` for this VM (assigning the VM its identity first); false when another VM
/// holds it or the shared data failed.
fn claim_slot(l: &mut VmState, slot: &str, now: u64) -> bool {
    if l.vm_id == 0 {
        match loadtest::next_vm_id(&HostStore) {
            Ok(id) => l.vm_id = id,
            Err(e) => {
                l.internal_error("inline_vm_id", &e.to_string());
                return false;
            }
        }
    }
    match loadtest::claim(&HostStore, slot, l.vm_id, now, TAKEOVER_NS) {
        Ok(claimed) => claimed.is_some(),
        Err(e) => {
            l.internal_error("inline_claim", &e.to_string());
            false
        }
    }
}

/// Decides the load for `rule` with `models`, predicts it, and starts the test of the slot this
/// VM just claimed (a failed decision releases the slot).
fn start_test(
    l: &mut VmState,
    slot: String,
    models: Rc<Models>,
    lt: &LoadTestConfig,
    rule: sfr2l_core::TrafficRule,
    generation: u64,
    now: u64,
) {
    let fixed = LoadSetting { threads: lt.threads.unwrap_or(0), calls: lt.calls.unwrap_or(0) };
    let t0 = host::now_ns();
    let decided = models.decide(&rule, fixed);
    let decide_ns = host::now_ns().saturating_sub(t0);
    let mut decision = match decided {
        Ok(d) => d,
        Err(why) => {
            let _ = loadtest::refresh(&HostStore, &slot, l.vm_id, now, true);
            return l.internal_error("inline_decide", &why);
        }
    };
    decision.load.calls = decision.load.calls.min(lt.max_calls);
    let predicted = match models.predict(&rule, decision.load) {
        Some(Ok(p)) => Some(p),
        Some(Err(why)) => {
            l.internal_error("inline_predict", &why);
            None
        }
        None => None,
    };
    l.seq += 1;
    let announce = RunAnnounce { threads: decision.load.threads, calls: decision.load.calls };
    host::log(
        LogLevel::Info,
        &format!(
            "sfr2l: inline load test {slot}: {} chose threads {} calls {}",
            models.source.configuration, announce.threads, announce.calls
        ),
    );
    l.running = Some(Running {
        seq: l.seq,
        run: format!("inline-{}-{}", sanitize(&slot), l.vm_id),
        slot,
        generation,
        rule,
        models,
        scheduler: Scheduler::new(decision.load, u64::from(lt.refusal_cost_us) * 1_000),
        decision,
        counters: RunCounters::new(announce),
        announce,
        no_response: 0,
        predicted,
        decide_ns,
        last_progress_ns: now,
        lt: lt.clone(),
    });
    pump(l, now);
}

/// A test with no response for the call timeout plus a margin is closed as incomplete (its
/// callouts were lost, e.g. with their root context).
fn stall_ns(lt: &LoadTestConfig) -> u64 {
    ((lt.timeout.secs() + 5.0) * 1e9) as u64
}

fn sanitize(slot: &str) -> String {
    slot.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// At most this many calls start in one event (a response or a tick); the rest start at the
/// next one. Bounds the time one event-loop turn spends in a test whose calls are refused.
const MAX_CALLS_PER_EVENT: u32 = 4096;

/// Fills the closed loop's free slots at an event (a response or a tick). A call Envoy refuses
/// at dispatch got a local 503 inline (measured: each one is an `upstream_rq_pending_overflow`
/// in the cluster's stats); its slot is held (core's `Scheduler`: until the next response while
/// other calls are in flight, else for the configured refusal cost of virtual time), as a
/// fortio thread waits for the round trip of its local 503.
fn pump(l: &mut VmState, now: u64) {
    let Some(lt) = l.running.as_ref().map(|r| r.lt.clone()) else { return };
    let run_header = l.config.headers.run.clone();
    for _ in 0..MAX_CALLS_PER_EVENT {
        let Some(r) = &mut l.running else { return };
        let Some(start) = r.scheduler.next_call(now) else { break };
        // The test announces itself upstream as a fortio client's run does: services that key
        // per-client state on it (the lab's per-load-test quota) see each test as a new client.
        let headers = vec![
            (":method", "GET"),
            (":path", lt.path.as_str()),
            (":authority", lt.authority.as_str()),
            (run_header.as_str(), r.run.as_str()),
        ];
        let seq = r.seq;
        match hostcalls::dispatch_http_call(
            &lt.cluster,
            headers,
            None,
            vec![],
            Duration::from_secs_f64(lt.timeout.secs()),
        ) {
            Ok(token) => {
                l.callouts.insert(token, Callout::Test { seq, start_ns: now });
            }
            Err(_) => {
                let end = r.scheduler.on_refused(start);
                r.counters.record_reason(r.announce, 503, Reason::Refused, start, end);
            }
        }
    }
    // The 1 ms tick is set here, not at the next tick: a slot held in a response callback would
    // otherwise wait a whole flush period (50 ms) for its next call.
    l.fast_tick = l.running.as_ref().is_some_and(|r| r.scheduler.next_due().is_some());
    l.set_tick();
    if l.running.as_ref().is_some_and(|r| r.scheduler.finished()) {
        let seq = l.running.as_ref().map(|r| r.seq).unwrap_or(0);
        finish(l, seq, now);
    }
}

fn on_test_response(
    l: &mut VmState,
    seq: u64,
    start_ns: u64,
    num_headers: usize,
    body_size: usize,
    now: u64,
    may_dispatch: bool,
) {
    let Some(r) = &mut l.running else { return };
    if r.seq != seq {
        return; // a response of an aborted or earlier test
    }
    let (code, flags) = if num_headers == 0 {
        r.no_response += 1;
        (NO_RESPONSE, 0)
    } else {
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status").ok().flatten();
        let code = status.and_then(|s| s.parse::<u16>().ok()).unwrap_or(NO_RESPONSE);
        let overloaded =
            hostcalls::get_map_value(MapType::HttpCallResponseHeaders, "x-envoy-overloaded").ok().flatten().is_some();
        let prefix = if code == 503 {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size.min(BODY_PREFIX))
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        (code, loadtest::callout_flags(code, overloaded, &prefix))
    };
    r.counters.record(r.announce, code, flags, start_ns, now);
    r.scheduler.on_done(now);
    r.last_progress_ns = now;
    if may_dispatch {
        pump(l, now);
    } else if r.scheduler.finished() {
        finish(l, seq, now);
    }
}

/// Writes the test's record (complete or not), releases the slot and updates the metrics.
fn finish(l: &mut VmState, seq: u64, now: u64) {
    let Some(r) = l.running.take_if(|r| r.seq == seq) else { return };
    l.callouts.retain(|_, c| !matches!(c, Callout::Test { seq: s, .. } if *s == seq));
    let mut rec = TraceRecord::from_counters(&r.run, r.generation, Some(r.rule), &r.counters);
    let objective = r.models.objective().to_string();
    let failure = r.models.failure().clone();
    let reward = models::objective_reward(&objective, rec.qps, rec.failure_rate(&failure), Some(rec.rate_200));
    rec.inline = Some(InlineTest {
        slot: r.slot.clone(),
        profile: r.models.source.profile.to_string(),
        configuration: r.models.source.configuration.slug().to_string(),
        objective,
        agents_sha256: r.models.agents_sha256(),
        steps: r.decision.steps.clone(),
        reward,
        failure_codes: failure,
        no_response: r.no_response,
        predicted: r.predicted,
        decide_ns: r.decide_ns,
    });
    host::log(LogLevel::Info, &crate::runs::trace_line(l, &rec));
    let m = l.metrics;
    metrics::inc(m.inline_tests, 1);
    metrics::inc(if rec.complete { m.runs_completed } else { m.runs_incomplete }, 1);
    metrics::set(m.inline_last_threads, u64::from(r.announce.threads));
    metrics::set(m.inline_last_calls, u64::from(r.announce.calls));
    metrics::set(m.inline_last_reward_milli, (reward * 1000.0).round().max(0.0) as u64);
    metrics::set(m.inline_last_503_permille, (rec.rate_503 * 1000.0).round() as u64);
    if let Some(p) = r.predicted {
        metrics::set(m.inline_predicted_reward_milli, (p.reward * 1000.0).round().max(0.0) as u64);
    }
    if let Err(e) = loadtest::refresh(&HostStore, &r.slot, l.vm_id, now, true) {
        l.internal_error("inline_claim", &e.to_string());
    }
}

/// Observe mode with a simulator: its prediction for the configured rule and the window's
/// observed load (concurrency as threads, responses as calls), and the residual against what
/// the window observed: a live "is this service behaving as trained" signal. The prediction is
/// only meaningful while the observed load lies within the profile's training ranges.
pub fn sim_gauges(l: &mut VmState, w: &sfr2l_core::window::RollingWindow, now: u64, qps: f64, rate: f64) {
    let (Some(models), Some(rule)) = (l.models.clone(), l.config.rule) else { return };
    let (concurrency, calls) = w.load(now);
    if calls == 0 {
        return;
    }
    let load =
        LoadSetting { threads: concurrency.round().max(1.0) as u32, calls: u32::try_from(calls).unwrap_or(u32::MAX) };
    match models.predict(&rule, load) {
        Some(Ok(p)) => {
            let m = l.metrics;
            metrics::set(m.sim_predicted_qps, p.qps.round().max(0.0) as u64);
            metrics::set(m.sim_predicted_503_permille, (p.failure_rate * 1000.0).round().max(0.0) as u64);
            metrics::set(m.sim_residual_qps_abs, (qps - p.qps).abs().round() as u64);
            // The window counts 503 only: the rate residual means something for a 503 study.
            if *models.failure() == sfr2l_core::Failure::default() {
                metrics::set(m.sim_residual_503_permille_abs, ((rate - p.failure_rate).abs() * 1000.0).round() as u64);
            }
        }
        Some(Err(why)) => l.internal_error("sim_gauges", &why),
        None => {}
    }
}

/// Root context's `on_http_call_response`; `current`: the callback runs on the newest root
/// context, the only one that may dispatch (calls made from an older one would die with it).
pub fn on_response(l: &mut VmState, token: u32, num_headers: usize, body_size: usize, now: u64, current: bool) {
    match l.callouts.remove(&token) {
        Some(Callout::Fetch { seq, index }) => fetch::on_fetch_response(l, seq, index, num_headers, body_size),
        Some(Callout::Test { seq, start_ns }) => {
            on_test_response(l, seq, start_ns, num_headers, body_size, now, current)
        }
        None => {}
    }
}
