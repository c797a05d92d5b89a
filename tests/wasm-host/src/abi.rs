//! The `env.proxy_*` imports (proxy-wasm ABI v0.2.1), argument layouts as in the Rust SDK 0.2.5.
//! What the filter calls is implemented as Envoy does it; the rest exists and answers
//! `Unimplemented`, so a module importing anything else fails to instantiate.

use crate::mem::{self, deserialize_map, return_bytes, serialize_map};
use crate::state::{status::*, Call, CallId, MetricKind, Tick, VmState};
use wasmtime::{Caller, Linker, Module, Result, Val};

type C<'a> = Caller<'a, VmState>;

/// Imports that exist but are not implemented (the filter never calls them).
pub const STUBS: [&str; 19] = [
    "proxy_add_header_map_value",
    "proxy_call_foreign_function",
    "proxy_close_stream",
    "proxy_continue_stream",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_grpc_call",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_grpc_send",
    "proxy_grpc_stream",
    "proxy_register_shared_queue",
    "proxy_remove_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_resolve_shared_queue",
    "proxy_send_local_response",
    "proxy_set_buffer_bytes",
    "proxy_set_header_map_pairs",
    "proxy_set_property",
];

/// Header map types (ABI `MapType`).
const HTTP_REQUEST_HEADERS: i32 = 0;
const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
/// Buffer types (ABI `BufferType`).
const HTTP_CALL_RESPONSE_BODY: i32 = 4;
const PLUGIN_CONFIGURATION: i32 = 7;

fn header_map(c: &C<'_>, map: i32) -> Option<Vec<(String, String)>> {
    let d = c.data();
    match map {
        HTTP_REQUEST_HEADERS => d.request_headers.get(&d.effective).cloned(),
        HTTP_CALL_RESPONSE_HEADERS => d.call_response.as_ref().map(|(h, _)| h.clone()),
        _ => None,
    }
}

fn buffer(c: &C<'_>, kind: i32) -> Option<Vec<u8>> {
    let d = c.data();
    match kind {
        HTTP_CALL_RESPONSE_BODY => d.call_response.as_ref().map(|(_, b)| b.clone()),
        PLUGIN_CONFIGURATION => Some(d.plugin_config.clone()),
        _ => None,
    }
}

/// Defines every `env` import, except those named in `omit` (to test a missing import).
pub fn define(linker: &mut Linker<VmState>, module: &Module, omit: &[&str]) -> Result<()> {
    let wanted = |name: &str| !omit.contains(&name);
    macro_rules! def {
        ($name:literal, $f:expr) => {
            if wanted($name) {
                linker.func_wrap("env", $name, $f)?;
            }
        };
    }
    def!("proxy_log", |mut c: C<'_>, level: i32, p: i32, n: i32| -> Result<i32> {
        let message = mem::read_str(&c, p, n)?;
        let vm = c.data().vm;
        c.data_mut().shared.borrow_mut().logs.push(crate::state::LogLine { vm, level, message });
        Ok(OK)
    });
    def!("proxy_get_current_time_nanoseconds", |mut c: C<'_>, ret: i32| -> Result<i32> {
        let now = c.data().shared.borrow().now_ns;
        mem::write_u64(&mut c, ret, now)?;
        Ok(OK)
    });
    def!("proxy_set_tick_period_milliseconds", |mut c: C<'_>, period: i32| -> Result<i32> {
        let (root, now) = (c.data().effective, c.data().shared.borrow().now_ns);
        let period_ms = period as u32;
        if period_ms == 0 {
            c.data_mut().ticks.remove(&root);
        } else {
            c.data_mut().ticks.insert(root, Tick { period_ms, next_ns: now + u64::from(period_ms) * 1_000_000 });
        }
        Ok(OK)
    });
    def!("proxy_get_buffer_bytes", |mut c: C<'_>, kind: i32, start: i32, max: i32, rp: i32, rs: i32| -> Result<i32> {
        let Some(buf) = buffer(&c, kind) else { return Ok(NOT_FOUND) };
        let start = (start as u32 as usize).min(buf.len());
        let end = start.saturating_add(max as u32 as usize).min(buf.len());
        return_bytes(&mut c, &buf[start..end], rp, rs)?;
        Ok(OK)
    });
    def!("proxy_get_header_map_pairs", |mut c: C<'_>, map: i32, rp: i32, rs: i32| -> Result<i32> {
        let Some(pairs) = header_map(&c, map) else { return Ok(NOT_FOUND) };
        return_bytes(&mut c, &serialize_map(&pairs), rp, rs)?;
        Ok(OK)
    });
    def!("proxy_get_header_map_value", |mut c: C<'_>, map: i32, kp: i32, kn: i32, rp: i32, rs: i32| -> Result<i32> {
        let key = mem::read_str(&c, kp, kn)?.to_ascii_lowercase();
        let Some(pairs) = header_map(&c, map) else { return Ok(NOT_FOUND) };
        let Some((_, v)) = pairs.into_iter().find(|(k, _)| *k == key) else { return Ok(NOT_FOUND) };
        return_bytes(&mut c, v.as_bytes(), rp, rs)?;
        Ok(OK)
    });
    def!("proxy_get_property", |mut c: C<'_>, pp: i32, pn: i32, rp: i32, rs: i32| -> Result<i32> {
        let path = mem::read(&c, pp, pn)?;
        let path: Vec<String> = path.split(|b| *b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        let d = c.data();
        let value = d.properties.get(&d.effective).and_then(|p| p.get(&path.join("."))).cloned();
        let Some(value) = value else { return Ok(NOT_FOUND) };
        return_bytes(&mut c, &value, rp, rs)?;
        Ok(OK)
    });
    def!("proxy_get_shared_data", |mut c: C<'_>, kp: i32, kn: i32, rp: i32, rs: i32, rcas: i32| -> Result<i32> {
        let key = mem::read_str(&c, kp, kn)?;
        let entry = c.data().shared.borrow().data.get(&key).cloned();
        let Some((value, cas)) = entry else { return Ok(NOT_FOUND) };
        return_bytes(&mut c, &value, rp, rs)?;
        mem::write_u32(&mut c, rcas, cas)?;
        Ok(OK)
    });
    def!("proxy_set_shared_data", |c: C<'_>, kp: i32, kn: i32, vp: i32, vn: i32, cas: i32| -> Result<i32> {
        let key = mem::read_str(&c, kp, kn)?;
        let value = mem::read(&c, vp, vn)?;
        let mut s = c.data().shared.borrow_mut();
        // Envoy: a missing key is created whatever the CAS; an existing one only with cas 0 or
        // its current CAS value.
        if let Some(cur) = s.data.get(&key).map(|(_, c)| *c) {
            let stale = cas != 0 && cas as u32 != cur;
            if stale || (cas != 0 && s.interleave > 0) {
                if !stale {
                    s.interleave -= 1;
                    let bumped = s.next_cas();
                    if let Some(e) = s.data.get_mut(&key) {
                        e.1 = bumped;
                    }
                }
                s.cas_mismatches += 1;
                return Ok(CAS_MISMATCH);
            }
        }
        let next = s.next_cas();
        s.data.insert(key, (value, next));
        Ok(OK)
    });
    def!("proxy_http_call", http_call);
    def!("proxy_define_metric", |mut c: C<'_>, kind: i32, np: i32, nn: i32, ret: i32| -> Result<i32> {
        let name = mem::read_str(&c, np, nn)?;
        let kind = match kind {
            0 => MetricKind::Counter,
            1 => MetricKind::Gauge,
            2 => MetricKind::Histogram,
            _ => return Ok(BAD_ARGUMENT),
        };
        c.data().shared.borrow_mut().metrics.entry(name.clone()).or_insert((kind, 0));
        c.data_mut().metric_ids.push(name);
        let id = c.data().metric_ids.len() as u32;
        mem::write_u32(&mut c, ret, id)?;
        Ok(OK)
    });
    def!("proxy_increment_metric", |c: C<'_>, id: i32, by: i64| -> Result<i32> { Ok(metric(&c, id, |_, v| *v += by)) });
    def!("proxy_record_metric", |c: C<'_>, id: i32, value: i64| -> Result<i32> {
        Ok(metric(&c, id, |kind, v| match kind {
            MetricKind::Counter => *v += value,
            _ => *v = value,
        }))
    });
    def!("proxy_set_effective_context", |mut c: C<'_>, ctx: i32| -> Result<i32> {
        c.data_mut().effective = ctx as u32;
        Ok(OK)
    });
    def!("proxy_get_status", |_c: C<'_>, _code: i32, _p: i32, _n: i32| -> Result<i32> { Ok(NOT_FOUND) });
    def!("proxy_done", |_c: C<'_>| -> Result<i32> { Ok(UNIMPLEMENTED) });
    stubs(linker, module, "env", &STUBS, omit, UNIMPLEMENTED)
}

fn metric(c: &C<'_>, id: i32, f: impl FnOnce(MetricKind, &mut i64)) -> i32 {
    let d = c.data();
    let Some(name) = (id as u32 as usize).checked_sub(1).and_then(|i| d.metric_ids.get(i)) else { return NOT_FOUND };
    let mut s = d.shared.borrow_mut();
    match s.metrics.get_mut(name) {
        Some((kind, v)) => {
            f(*kind, v);
            OK
        }
        None => NOT_FOUND,
    }
}

#[allow(clippy::too_many_arguments)]
fn http_call(
    mut c: C<'_>,
    up: i32,
    upn: i32,
    hp: i32,
    hn: i32,
    bp: i32,
    bn: i32,
    _tp: i32,
    _tn: i32,
    timeout_ms: i32,
    ret: i32,
) -> Result<i32> {
    let cluster = mem::read_str(&c, up, upn)?;
    let headers = deserialize_map(&mem::read(&c, hp, hn)?)?;
    let body = mem::read(&c, bp, bn)?;
    {
        let mut s = c.data().shared.borrow_mut();
        if !s.clusters.contains(&cluster) {
            s.refused += 1;
            return Ok(BAD_ARGUMENT);
        }
        if s.refusing.contains(&cluster) {
            s.refused += 1;
            return Ok(INTERNAL_FAILURE);
        }
    }
    let d = c.data_mut();
    d.next_token += 1;
    let id = CallId { vm: d.vm, token: d.next_token };
    let mut s = d.shared.borrow_mut();
    let call =
        Call { id, context: d.effective, cluster, headers, body, timeout_ms: timeout_ms as u32, sent_ns: s.now_ns };
    s.calls.push(call.clone());
    let out = s.calls.iter().filter(|c| c.cluster == call.cluster).count();
    let peak = s.peak.entry(call.cluster.clone()).or_default();
    *peak = (*peak).max(out);
    s.dispatched.push(call);
    drop(s);
    mem::write_u32(&mut c, ret, id.token)?;
    Ok(OK)
}

/// Defines each import of `names` the module has, with the module's own signature, answering
/// `status` (a function the module does not import needs no definition).
pub fn stubs(
    linker: &mut Linker<VmState>,
    module: &Module,
    ns: &str,
    names: &[&str],
    omit: &[&str],
    status: i32,
) -> Result<()> {
    for import in module.imports() {
        if import.module() != ns || !names.contains(&import.name()) || omit.contains(&import.name()) {
            continue;
        }
        let Some(ty) = import.ty().func().cloned() else { continue };
        let returns_status = ty.results().len() == 1;
        linker.func_new(ns, import.name(), ty, move |_c, _params, results| {
            if returns_status {
                results[0] = Val::I32(status);
            }
            Ok(())
        })?;
    }
    Ok(())
}
