//! Model fetching: a new model set named by the configuration is fetched from the artifact
//! cluster with `dispatch_http_call`, checked (sha256, then core's vocabulary through
//! `Models::build`) and swapped in; the models in use keep serving meanwhile.

use crate::host;
use crate::metrics;
use crate::models::{self, Models};
use crate::state::VmState;
use crate::state::{Callout, Fetch};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};
use sfr2l_core::config::ConfigV1;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// After a configuration change: fetch models if the configuration names others than those in
/// use (or being fetched); drop them if it names none.
pub fn on_config(l: &mut VmState, config: &ConfigV1, now: u64) {
    let Some(source) = &config.models else {
        l.models = None;
        l.fetch = None;
        metrics::set(l.metrics.models_loaded, 0);
        return;
    };
    let in_use = l.models.as_ref().is_some_and(|m| &m.source == source);
    let fetching = l.fetch.as_ref().is_some_and(|f| &f.source == source);
    if in_use {
        l.fetch = None;
    } else if fetching {
        // The fetches in flight belong to the previous root context, which Envoy deletes (and
        // its callouts with it) once its listener drains: the new root sends what is missing.
        l.seq += 1;
        if let Some(f) = &mut l.fetch {
            f.seq = l.seq;
            f.dispatched = false;
            f.started_ns = now;
        }
    } else {
        l.seq += 1;
        l.fetch = Some(Fetch {
            seq: l.seq,
            source: source.clone(),
            wanted: models::wanted(source),
            bodies: BTreeMap::new(),
            started_ns: now,
            dispatched: false,
        });
    }
}

fn reject(l: &mut VmState, why: &str) {
    metrics::inc(l.metrics.model_errors, 1);
    let keep = if l.models.is_some() { "keeping the models in use" } else { "no models loaded" };
    host::log(LogLevel::Error, &format!("sfr2l: new models rejected: {why} ({keep}; traffic unaffected)"));
    l.fetch = None;
}

/// Tick: dispatch the fetches of a new model set, give up on one that takes too long.
pub fn tick_fetch(l: &mut VmState, now: u64) {
    let Some(f) = &l.fetch else { return };
    let deadline = f.started_ns + (f.source.fetch_timeout.secs() * 1e9) as u64 + 2_000_000_000;
    if now > deadline {
        let missing: Vec<&str> =
            f.wanted.iter().filter(|w| !f.bodies.contains_key(&w.name)).map(|w| w.name.as_str()).collect();
        let why = format!("fetch from cluster `{}` timed out ({} missing)", f.source.cluster, missing.join(", "));
        return reject(l, &why);
    }
    if f.dispatched {
        return;
    }
    let (seq, cluster, authority, timeout) = (
        f.seq,
        f.source.cluster.clone(),
        f.source.authority().to_string(),
        Duration::from_secs_f64(f.source.fetch_timeout.secs()),
    );
    let missing: Vec<(usize, String)> = f
        .wanted
        .iter()
        .enumerate()
        .filter(|(_, w)| !f.bodies.contains_key(&w.name))
        .map(|(i, w)| (i, w.artifact.path.clone()))
        .collect();
    let mut tokens = Vec::new();
    for (index, path) in missing {
        let headers = vec![(":method", "GET"), (":path", path.as_str()), (":authority", authority.as_str())];
        match hostcalls::dispatch_http_call(&cluster, headers, None, vec![], timeout) {
            Ok(token) => tokens.push((token, index)),
            Err(s) => {
                // An unknown cluster is refused at once: retried on the next ticks until the
                // deadline (the cluster may still be arriving over CDS).
                for (t, _) in tokens {
                    l.callouts.remove(&t);
                }
                if l.logged.insert("fetch_dispatch") {
                    host::log(
                        LogLevel::Warn,
                        &format!("sfr2l: cannot fetch models from cluster `{cluster}` yet: {s:?}; retrying"),
                    );
                }
                return;
            }
        }
    }
    for (token, index) in tokens {
        l.callouts.insert(token, Callout::Fetch { seq, index });
    }
    if let Some(f) = &mut l.fetch {
        f.dispatched = true;
    }
}

pub fn on_fetch_response(l: &mut VmState, seq: u64, index: usize, num_headers: usize, body_size: usize) {
    let Some(f) = &mut l.fetch else { return };
    if f.seq != seq {
        return; // a superseded fetch
    }
    let Some(w) = f.wanted.get(index).cloned() else { return };
    let status = if num_headers == 0 {
        None
    } else {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status").ok().flatten()
    };
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size).ok().flatten().unwrap_or_default();
    if let Err(why) = models::verify(&w, status.as_deref(), &body) {
        return reject(l, &why);
    }
    f.bodies.insert(w.name.clone(), body);
    if f.bodies.len() < f.wanted.len() {
        return;
    }
    let Some(f) = l.fetch.take() else { return };
    let t0 = host::now_ns();
    let built = Models::build(&f.source, &f.bodies);
    let (fetch_ms, build_ms) =
        (t0.saturating_sub(f.started_ns) / 1_000_000, host::now_ns().saturating_sub(t0) / 1_000_000);
    match built {
        Ok(m) => {
            host::log(
                LogLevel::Info,
                &format!(
                    "sfr2l: models loaded: {} agents ({}) for {}{} (fetched in {fetch_ms} ms, {} bytes; tract plans built in {build_ms} ms)",
                    f.source.configuration,
                    m.objective(),
                    f.source.profile,
                    if m.has_simulator() { " with simulator" } else { "" },
                    f.bodies.values().map(Vec::len).sum::<usize>()
                ),
            );
            l.models = Some(Rc::new(m));
            metrics::set(l.metrics.models_loaded, 1);
        }
        Err(why) => {
            l.fetch = Some(f);
            reject(l, &why);
        }
    }
}
