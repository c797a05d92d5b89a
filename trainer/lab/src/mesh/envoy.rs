//! Envoy configuration for the lab, written the way istiod would render it.
//!
//! Two Envoy processes stand in for an Istio pair of sidecars:
//! - the *client sidecar* (`--concurrency` = the study's client workers, Istio's default 2):
//!   listener `client` with the sfr2l filter, the (empty) fault filter and the router to the
//!   study target's cluster (named as istiod names it, `outbound|PORT||SERVICE.NS.svc.cluster.local`),
//!   whose circuit breakers and outlier detection come from the DestinationRule. LDS and CDS are
//!   file-based so rules switch without a restart.
//! - the *server sidecars*: one listener per host of that cluster, each with its own fault
//!   filter (bad hosts abort with 503, every host may add a delay), routing to the study's
//!   upstream application.

use serde_json::{json, Value};
use sfr2l_core::study::{BadMode, LabTopology, Quota};
use sfr2l_core::TrafficRule;
use std::net::SocketAddr;
use std::path::Path;

use super::Ports;

/// Envoy cluster counters that a healthy lab never moves during a run: each one means a process
/// died, was paused or reset connections mid-run (a fault drill, or a real fault), and the run
/// measured the fault rather than the rule. Checked on the client sidecar and the server side.
pub const FAULT_COUNTERS: [&str; 5] = [
    "upstream_cx_connect_fail",
    "upstream_cx_destroy_remote_with_active_rq",
    "upstream_rq_rx_reset",
    "upstream_rq_timeout",
    "upstream_rq_pending_failure_eject",
];

const HCM: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const FAULT: &str = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
const RATELIMIT: &str = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const LUA: &str = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua";
const WASM: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
const HTTP_OPTS: &str = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

fn addr(port: u16) -> Value {
    json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } })
}

/// Client sidecar bootstrap: admin plus file-based LDS/CDS in separate watched directories.
pub fn client_bootstrap(dir: &Path, ports: &Ports) -> Value {
    let src = |kind: &str| {
        json!({
            "resource_api_version": "V3",
            "path_config_source": {
                "path": dir.join(kind).join(format!("{kind}.json")),
                "watched_directory": { "path": dir.join(kind) }
            }
        })
    };
    json!({
        "node": { "id": "sfr2l-client", "cluster": "sfr2l-lab" },
        "admin": { "address": addr(ports.client_admin) },
        "dynamic_resources": { "lds_config": src("lds"), "cds_config": src("cds") },
        "layered_runtime": { "layers": [ { "name": "static", "static_layer": {
            "overload": { "global_downstream_max_connections": 50000 } } } ] }
    })
}

/// The client listener: sfr2l filter (observe), fault filter, router to `cluster` (the study
/// target's cluster, named as istiod names it).
pub fn client_lds(ports: &Ports, wasm: &Path, filter_json: &str, generation: u64, cluster: &str) -> Value {
    let listener = json!({
        "@type": LISTENER,
        "name": "client",
        "address": addr(ports.client_listener),
        "filter_chains": [ { "filters": [ {
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": HCM,
                "stat_prefix": "client",
                "route_config": {
                    "name": "client_routes",
                    "virtual_hosts": [ {
                        "name": "target", "domains": ["*"],
                        "routes": [ { "match": { "prefix": "/" },
                                      "route": { "cluster": cluster, "timeout": "15s" } } ]
                    } ]
                },
                "http_filters": [
                    {
                        "name": "envoy.filters.http.wasm",
                        "typed_config": { "@type": WASM, "config": {
                            "name": "sfr2l",
                            "root_id": "sfr2l",
                            "configuration": {
                                "@type": "type.googleapis.com/google.protobuf.StringValue",
                                "value": filter_json
                            },
                            "failure_policy": "FAIL_OPEN",
                            "vm_config": {
                                "vm_id": "sfr2l",
                                "runtime": "envoy.wasm.runtime.v8",
                                "code": { "local": { "filename": wasm } }
                            }
                        } }
                    },
                    { "name": "envoy.filters.http.fault", "typed_config": { "@type": FAULT } },
                    { "name": "envoy.filters.http.router", "typed_config": { "@type": ROUTER } }
                ]
            }
        } ] } ]
    });
    json!({ "version_info": format!("lds-{generation}"), "resources": [listener] })
}

/// What a user's rule sets on the target's cluster beyond the seven fields, as istiod renders it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClusterSettings {
    /// `connectionPool.tcp.connectTimeout`: the cluster's `connect_timeout`, else the mesh's
    /// default 10s (cluster_traffic_policy.go:177-178 and :309-311 at istio/istio@86c9f01f).
    pub connect_timeout: Option<sfr2l_core::IstioDuration>,
    /// `loadBalancer.simple` as Envoy's `lb_policy`: RANDOM and ROUND_ROBIN as they are, the
    /// rest LEAST_REQUEST (:362-395).
    pub lb_policy: Option<&'static str>,
}

/// The target's cluster `name` as istiod renders a DestinationRule (reference section 1).
pub fn client_cds(ports: &Ports, topo: &LabTopology, rule: &TrafficRule, generation: u64, name: &str) -> Value {
    client_cds_with(ports, topo, rule, &ClusterSettings::default(), generation, name)
}

/// [`client_cds`] with a user's cluster settings.
pub fn client_cds_with(
    ports: &Ports,
    topo: &LabTopology,
    rule: &TrafficRule,
    settings: &ClusterSettings,
    generation: u64,
    name: &str,
) -> Value {
    let endpoints: Vec<Value> =
        (0..topo.hosts).map(|i| json!({ "endpoint": { "address": addr(ports.host(i)) } })).collect();
    let mut cluster = json!({
        "@type": CLUSTER,
        "name": name,
        "type": "STATIC",
        "connect_timeout": settings.connect_timeout.map_or("10s".to_string(), |d| d.envoy()),
        "lb_policy": settings.lb_policy.unwrap_or("LEAST_REQUEST"),
        // A new generation makes the cluster "modified": Envoy rebuilds it, which resets circuit
        // breakers, outlier state and cluster stats as a fresh deployment would.
        "metadata": { "filter_metadata": { "sfr2l": { "generation": generation } } },
        "load_assignment": { "cluster_name": name, "endpoints": [ { "lb_endpoints": endpoints } ] },
        "circuit_breakers": { "thresholds": [ {
            "max_connections": rule.max_connections,
            "max_pending_requests": rule.max_pending_requests,
            "max_requests": u32::MAX,
            "max_retries": u32::MAX
        } ] },
        "outlier_detection": {
            "consecutive_5xx": rule.consecutive_5xx_errors,
            "enforcing_consecutive_5xx": if rule.consecutive_5xx_errors > 0 { 100 } else { 0 },
            "enforcing_success_rate": 0,
            "interval": rule.interval.envoy(),
            "base_ejection_time": rule.base_ejection_time.envoy()
        },
        "common_lb_config": { "healthy_panic_threshold": { "value": 0 } }
    });
    if rule.max_ejection_percent > 0 {
        cluster["outlier_detection"]["max_ejection_percent"] = json!(rule.max_ejection_percent);
    }
    if rule.max_requests_per_connection > 0 {
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_OPTS,
                "common_http_protocol_options": { "max_requests_per_connection": rule.max_requests_per_connection },
                "explicit_http_config": { "http_protocol_options": {} }
            }
        });
    }
    json!({ "version_info": format!("cds-{generation}"), "resources": [cluster] })
}

/// Envoy cluster of the artifact server (Istio: the artifact Service's outbound cluster).
pub const ARTIFACTS_CLUSTER: &str = "sfr2l-artifacts";

/// The artifact server the filter fetches its models from: a plain cluster, no breakers.
pub fn artifacts_cluster(port: u16) -> Value {
    json!({
        "@type": CLUSTER,
        "name": ARTIFACTS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": { "cluster_name": ARTIFACTS_CLUSTER, "endpoints": [ { "lb_endpoints": [
            { "endpoint": { "address": addr(port) } } ] } ] }
    })
}

/// The server sidecars: static listeners, one per host, with per-host faults, in front of the
/// app at `app`.
pub fn upstream_static(ports: &Ports, topo: &LabTopology, app: SocketAddr) -> Value {
    let listeners: Vec<Value> = (0..topo.hosts)
        .map(|i| {
            let mut fault = json!({ "@type": FAULT });
            let bad = i < topo.bad_hosts && topo.bad_abort_percent > 0.0;
            let capped = topo.capacity.is_some_and(|c| i < c.hosts);
            let app = if capped { format!("app{i}") } else { "app".to_string() };
            let route = json!({ "cluster": app, "timeout": "15s" });
            // The app serves the request (a good request's cost), then the sidecar answers 503
            // in place of its answer: any upstream, not only one with a failing endpoint.
            let after_app = (bad && topo.bad_mode == BadMode::App503).then_some(topo.bad_abort_percent);
            if bad && topo.bad_mode == BadMode::FaultAbort {
                fault["abort"] = json!({ "http_status": 503,
                    "percentage": { "numerator": (topo.bad_abort_percent * 10_000.0).round() as u64, "denominator": "MILLION" } });
            }
            if topo.delay_ms > 0 && topo.delay_percent > 0.0 {
                fault["delay"] = json!({ "fixed_delay": format!("{}s", topo.delay_ms as f64 / 1000.0),
                    "percentage": { "numerator": (topo.delay_percent * 10_000.0).round() as u64, "denominator": "MILLION" } });
            }
            json!({
                "name": format!("host{i}"),
                "address": addr(ports.host(i)),
                "filter_chains": [ { "filters": [ {
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": HCM,
                        "stat_prefix": format!("host{i}"),
                        "route_config": { "name": "local", "virtual_hosts": [ {
                            "name": "app", "domains": ["*"],
                            "routes": [ { "match": { "prefix": "/" }, "route": route } ]
                        } ] },
                        "http_filters": http_filters(topo, i, fault, after_app)
                    }
                } ] } ]
            })
        })
        .collect();
    json!({
        "node": { "id": "sfr2l-upstream", "cluster": "sfr2l-lab" },
        "admin": { "address": addr(ports.upstream_admin) },
        "static_resources": {
            "listeners": listeners,
            "clusters": app_clusters(app, topo)
        }
    })
}

/// Envoy's local rate limit as a host's quota: a token bucket of `q.tokens` refilled at
/// `q.refill_per_s` in steps of 50 ms (Envoy's shortest fill interval), full at start, answering
/// 503 when empty.
fn bucket(q: &Quota) -> Value {
    let per_fill = q.refill_per_s.div_ceil(20).max(1);
    let interval_s = if q.refill_per_s == 0 { 3600.0 } else { per_fill as f64 / q.refill_per_s as f64 };
    json!({ "max_tokens": q.tokens.max(1), "tokens_per_fill": per_fill, "fill_interval": format!("{interval_s:.3}s") })
}

fn quota_filter(name: String, token_bucket: Value, extra: Value) -> Value {
    let all = json!({ "default_value": { "numerator": 100, "denominator": "HUNDRED" }, "runtime_key": "quota.on" });
    let mut config = json!({
        "@type": RATELIMIT,
        "stat_prefix": name,
        "status": { "code": "ServiceUnavailable" },
        "token_bucket": token_bucket,
        "filter_enabled": all.clone(),
        "filter_enforced": all
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    json!({ "name": "envoy.filters.http.local_ratelimit", "typed_config": config })
}

/// Keys one token bucket per client: the run header names the client (each load test is a new
/// one); requests without it share a bucket that never runs out.
fn client_quota_filter(q: &Quota, i: u32) -> Value {
    let unlimited = json!({ "max_tokens": u32::MAX, "tokens_per_fill": u32::MAX, "fill_interval": "1s" });
    quota_filter(
        format!("client_quota{i}"),
        unlimited,
        json!({
            "rate_limits": [ { "actions": [ { "request_headers": {
                "header_name": sfr2l_core::artifact::header::RUN, "descriptor_key": "client" } } ] } ],
            "descriptors": [ { "entries": [ { "key": "client" } ], "token_bucket": bucket(q) } ],
            "max_dynamic_descriptors": 10_000
        }),
    )
}

/// Replaces the app's answer by 503 for `percent` % of responses (Envoy's Lua filter; each
/// worker's own generator, so a run's share is the percentage up to sampling).
fn after_app_filter(percent: f64) -> Value {
    let code = format!(
        "function envoy_on_response(h)\n  if math.random() * 100 < {percent} then h:headers():replace(\":status\", \"503\") end\nend\n"
    );
    json!({ "name": "envoy.filters.http.lua", "typed_config": { "@type": LUA,
        "default_source_code": { "inline_string": code } } })
}

/// The server sidecar's filters for host `i`: its quotas (if any), its faults (an abort before
/// the app, or `after_app`: a 503 in place of the app's answer), the router.
fn http_filters(topo: &LabTopology, i: u32, fault: Value, after_app: Option<f64>) -> Value {
    let mut filters = Vec::new();
    if let Some(q) = topo.conn_quota.filter(|q| i < q.hosts) {
        filters.push(quota_filter(
            format!("conn_quota{i}"),
            bucket(&q),
            json!({ "local_rate_limit_per_downstream_connection": true }),
        ));
    }
    if let Some(q) = topo.client_quota.filter(|q| i < q.hosts) {
        filters.push(client_quota_filter(&q, i));
    }
    filters.push(json!({ "name": "envoy.filters.http.fault", "typed_config": fault }));
    if let Some(p) = after_app {
        filters.push(after_app_filter(p));
    }
    filters.push(json!({ "name": "envoy.filters.http.router", "typed_config": { "@type": ROUTER } }));
    Value::Array(filters)
}

/// The app as the server sidecars see it: one shared cluster without limits, plus one
/// per capped host whose breaker is that host's worker pool (`concurrency` + `queue`).
fn app_clusters(app: SocketAddr, topo: &LabTopology) -> Value {
    // Connections are the workers: a request waits for one in the pending queue, and past the
    // queue is answered 503 (overflow) by the server sidecar.
    let cluster = |name: String, workers: u32, pending: u32| {
        json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "5s",
            "circuit_breakers": { "thresholds": [ { "max_connections": workers, "max_pending_requests": pending, "max_requests": 100_000 } ] },
            "load_assignment": { "cluster_name": name, "endpoints": [ { "lb_endpoints": [
                { "endpoint": { "address": { "socket_address": { "address": app.ip().to_string(), "port_value": app.port() } } } } ] } ] }
        })
    };
    let mut out = vec![cluster("app".into(), 100_000, 100_000)];
    if let Some(c) = topo.capacity {
        for i in 0..c.hosts.min(topo.hosts) {
            out.push(cluster(format!("app{i}"), c.concurrency.max(1), c.queue));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests;
