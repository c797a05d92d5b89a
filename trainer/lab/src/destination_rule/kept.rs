//! The fields a user's rule sets that the product does not model, as YAML paths: accepted,
//! listed once, not applied to the lab.

use super::vs_schema::VsDoc;
use serde_json::Value;

/// Paths the product reads (`P` is any traffic policy: top level or a subset's).
const MODELLED: [&str; 19] = [
    "apiVersion",
    "kind",
    "metadata",
    "metadata.name",
    "metadata.namespace",
    "spec",
    "spec.host",
    "P",
    "P.connectionPool",
    "P.connectionPool.tcp",
    "P.connectionPool.tcp.maxConnections",
    "P.connectionPool.tcp.connectTimeout",
    "P.connectionPool.http",
    "P.connectionPool.http.http1MaxPendingRequests",
    "P.connectionPool.http.maxRequestsPerConnection",
    "P.outlierDetection",
    "P.tls",
    "P.tls.mode",
    "P.loadBalancer",
];
const OUTLIER: [&str; 4] = ["consecutive5xxErrors", "interval", "baseEjectionTime", "maxEjectionPercent"];

/// A DestinationRule's unmodelled fields, each path after `prefix`. With a target `subset`, that
/// subset's name, labels and policy are read like the top level; the other subsets are listed
/// whole, as are all subsets without one.
pub(super) fn rule(v: &Value, prefix: &str, subset: Option<&str>, out: &mut Vec<String>) {
    walk(v, "", prefix, out);
    let Some(name) = subset else { return };
    let Some(list) = v.pointer("/spec/subsets").and_then(Value::as_array) else { return };
    out.retain(|k| k != &format!("{prefix}spec.subsets"));
    for (i, s) in list.iter().enumerate() {
        let at = format!("spec.subsets[{i}]");
        if s.get("name").and_then(Value::as_str) == Some(name) {
            if let Some(p) = s.get("trafficPolicy") {
                walk(p, &format!("{at}.trafficPolicy"), prefix, out);
            }
        } else {
            let other = s.get("name").and_then(Value::as_str).unwrap_or("");
            out.push(format!("{prefix}{at} (subset {other}: not the target)"));
        }
    }
}

fn walk(v: &Value, path: &str, prefix: &str, out: &mut Vec<String>) {
    let Some(obj) = v.as_object() else { return };
    for (k, child) in obj {
        let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        let generic = generic(&p);
        let modelled = MODELLED.contains(&generic.as_str())
            || generic.strip_prefix("P.outlierDetection.").is_some_and(|f| OUTLIER.contains(&f))
            // `simple` is honoured or refused by the reader; the rest of the block is kept.
            || generic == "P.loadBalancer.simple";
        if !modelled {
            out.push(format!("{prefix}{p}"));
        } else if child.is_object() {
            walk(child, &p, prefix, out);
        }
    }
}

/// `spec.trafficPolicy...` and `spec.subsets[i].trafficPolicy...` as `P...`.
fn generic(p: &str) -> String {
    if let Some(rest) = p.strip_prefix("spec.trafficPolicy") {
        return format!("P{rest}");
    }
    if let Some(rest) = p.strip_prefix("spec.subsets[") {
        if let Some((_, tail)) = rest.split_once("].trafficPolicy") {
            return format!("P{tail}");
        }
    }
    p.to_string()
}

/// A VirtualService for the target, none of whose routing the lab models yet: each route's
/// fields, and the spec's other blocks, as paths after `at`.
pub(super) fn service(vs: &VsDoc, at: &str, out: &mut Vec<String>) {
    let name = &vs.metadata.name;
    let head = format!("{at}VirtualService {name}: ");
    let v = serde_json::to_value(vs).unwrap_or_default();
    for k in ["labels", "annotations"] {
        if v.pointer(&format!("/metadata/{k}")).is_some() {
            out.push(format!("{head}metadata.{k}"));
        }
    }
    if let Some(g) = &vs.spec.gateways {
        let note = if g.iter().any(|g| g == "mesh") { "" } else { " (no `mesh`: the rule does not reach sidecars)" };
        out.push(format!("{head}spec.gateways{note}"));
    }
    for (i, route) in vs.spec.http.iter().flatten().enumerate() {
        let r = serde_json::to_value(route).unwrap_or_default();
        for k in r.as_object().into_iter().flat_map(|o| o.keys()).filter(|k| *k != "name") {
            out.push(format!("{head}spec.http[{i}].{k}"));
        }
    }
    for k in ["tls", "tcp", "exportTo"] {
        if v.pointer(&format!("/spec/{k}")).is_some() {
            out.push(format!("{head}spec.{k}"));
        }
    }
}
