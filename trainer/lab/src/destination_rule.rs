//! Istio DestinationRule YAML <-> [`TrafficRule`]: the same files as `manifests/`, and the
//! rules users already run.
//!
//! Every field of istio/api's schema is read ([`schema`]); the ones the product models make the
//! rule, the others are kept and listed ([`ReadRule::kept`]). A field outside the schema is an
//! error naming its path, so a typo (or `consecutiveErrors`, ignored by Istio since 1.7) never
//! passes silently. Files may hold several documents (`---`) or a `kind: List`; the rule for
//! the target's host is taken, and for the target's port its `portLevelSettings` entry replaces
//! the top-level blocks as istiod does.

mod schema;

use anyhow::{bail, Context, Result};
use schema::{ConnectionPool, Doc, Http, Metadata, OutlierDetection, Spec, Tcp, TrafficPolicy};
use sfr2l_core::TrafficRule;
use std::path::Path;

/// Istio's value for an unset connection-pool limit (istiod writes 2^32-1).
pub const UNLIMITED: u32 = u32::MAX;

fn limit(v: Option<i64>, field: &str, zero_ok: bool, unset: u32) -> Result<u32> {
    match v {
        None => Ok(unset),
        Some(n) if n < 0 => bail!("{field}: must not be negative (got {n})"),
        Some(0) if !zero_ok => bail!("{field}: must be >= 1 (got 0)"),
        // int32 in istio/api: istiod's parser rejects anything larger.
        Some(n) if n > i32::MAX as i64 => bail!("{field}: must fit an int32 (got {n})"),
        Some(n) => Ok(n as u32),
    }
}

/// A rule read from a user's file: what the product models, and what it kept but does not.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRule {
    pub rule: TrafficRule,
    /// YAML paths of fields that are set but not modelled (and documents not read), in file
    /// order: they are accepted, not applied to the lab.
    pub kept: Vec<String>,
}

/// Which rule of a file applies: the target's host (short name or FQDN) and port.
#[derive(Debug, Clone, Copy, Default)]
pub struct Aim<'a> {
    pub host: Option<&'a str>,
    pub port: Option<u16>,
}

/// Parses a DestinationRule; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<TrafficRule> {
    Ok(parse_for(text, origin, Aim::default())?.rule)
}

/// The YAML documents of a file, each with the line it starts on.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut out = vec![(1, String::new())];
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") && line[3..].trim().is_empty() {
            out.push((i + 2, String::new()));
        } else if let Some((_, d)) = out.last_mut() {
            d.push_str(line);
            d.push('\n');
        }
    }
    out.retain(|(_, d)| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    out
}

fn typed<'de, D: serde::Deserializer<'de>>(de: D, origin: &str, prefix: &str) -> Result<Doc>
where
    D::Error: std::fmt::Display,
{
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("{origin}: field {prefix}{path}: {}", e.into_inner())
    })
}

/// Whether a rule's `host` names the target `want` (`reviews`, `reviews.default.svc.cluster.local`).
fn same_host(host: &str, want: &str) -> bool {
    host == want || host.split('.').next() == want.split('.').next()
}

/// Reads the rule `aim` picks from a file of one or more documents.
pub fn parse_for(text: &str, origin: &str, aim: Aim) -> Result<ReadRule> {
    let docs = documents(text);
    let mut rules: Vec<(String, Doc)> = Vec::new();
    let mut kept = Vec::new();
    for (n, (line, doc)) in docs.iter().enumerate() {
        let at = if docs.len() > 1 { format!("document {} (line {line}) ", n + 1) } else { String::new() };
        let v: serde_norway::Value =
            serde_norway::from_str(doc).map_err(|e| anyhow::anyhow!("{origin}: {at}is not YAML: {e}"))?;
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("").to_string();
        match kind.as_str() {
            "DestinationRule" => {
                let here = if at.is_empty() { origin.to_string() } else { format!("{origin}: {}", at.trim_end()) };
                let d = typed(serde_norway::Deserializer::from_str(doc), &here, "")?;
                rules.push((at, d));
            }
            "List" => {
                let items = v.get("items").and_then(|i| i.as_sequence()).cloned().unwrap_or_default();
                for (k, item) in items.into_iter().enumerate() {
                    let ik = item.get("kind").and_then(|k| k.as_str()).unwrap_or("").to_string();
                    if ik == "DestinationRule" {
                        let d = typed(item, origin, &format!("items[{k}]."))?;
                        rules.push((format!("{at}items[{k}] "), d));
                    } else {
                        kept.push(format!("{at}items[{k}] ({ik}: not read)"));
                    }
                }
            }
            "" => bail!("{origin}: {at}field kind: missing"),
            other => kept.push(format!("{at}({other}: not read)")),
        }
    }
    let hosts: Vec<String> = rules.iter().map(|(_, d)| d.spec.host.clone()).collect();
    let mut mine: Vec<(String, Doc)> = match aim.host {
        Some(h) => rules.into_iter().filter(|(_, d)| same_host(&d.spec.host, h)).collect(),
        None => rules,
    };
    let (at, doc) = match mine.len() {
        1 => mine.remove(0),
        0 if hosts.is_empty() => bail!("{origin}: field kind: expected DestinationRule, found no DestinationRule"),
        0 => bail!(
            "{origin}: no DestinationRule for host {:?} (the file has {})",
            aim.host.unwrap_or(""),
            hosts.join(", ")
        ),
        _ => bail!(
            "{origin}: {} DestinationRules for the target ({}); istiod would merge them: keep one per file",
            mine.len(),
            mine.iter().map(|(_, d)| d.metadata.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    if !["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"]
        .contains(&doc.api_version.as_str())
    {
        bail!(
            "{origin}: {at}field apiVersion: expected networking.istio.io/v1, v1beta1 or v1alpha3, got {:?}",
            doc.api_version
        );
    }
    let origin = format!("{origin}{}", if at.is_empty() { String::new() } else { format!(": {}", at.trim_end()) });
    let (rule, mut mine_kept) = rule_of(&doc, &origin, aim.port)?;
    kept.append(&mut mine_kept);
    Ok(ReadRule { rule, kept })
}

/// The fields a rule sets that the product does not model, as YAML paths (a whole block where
/// none of it is modelled).
fn unmodelled(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    const MODELLED: [&str; 15] = [
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
        "P.connectionPool.http",
        "P.connectionPool.http.http1MaxPendingRequests",
        "P.connectionPool.http.maxRequestsPerConnection",
        "P.outlierDetection",
    ];
    const OUTLIER: [&str; 4] = ["consecutive5xxErrors", "interval", "baseEjectionTime", "maxEjectionPercent"];
    let Some(obj) = v.as_object() else { return };
    for (k, child) in obj {
        let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        let generic = p.replacen("spec.trafficPolicy", "P", 1);
        let modelled = MODELLED.contains(&generic.as_str())
            || generic.strip_prefix("P.outlierDetection.").is_some_and(|f| OUTLIER.contains(&f));
        if !modelled {
            out.push(p);
        } else if child.is_object() {
            unmodelled(child, &p, out);
        }
    }
}

/// The rule a DestinationRule gives the target's cluster: the top-level policy, or for `port`
/// the matching `portLevelSettings` entry, whose four blocks replace the top-level ones whole
/// (istiod: pilot/pkg/networking/util/util.go:865-889 at istio/istio@86c9f01f, first match
/// wins). Subsets' policies apply to subset clusters only, not the target's default cluster.
fn rule_of(doc: &Doc, origin: &str, port: Option<u16>) -> Result<(TrafficRule, Vec<String>)> {
    let mut kept = Vec::new();
    unmodelled(&serde_json::to_value(doc).unwrap_or_default(), "", &mut kept);
    let top = doc.spec.traffic_policy.as_ref();
    let levels = top.and_then(|p| p.port_level_settings.as_ref());
    let at_port = port.and_then(|n| {
        levels?.iter().enumerate().find(|(_, l)| l.port.as_ref().is_some_and(|p| p.number == u32::from(n)))
    });
    let (pool, od, f) = match at_port {
        Some((i, l)) => {
            // The top-level blocks are not in force for this port.
            kept.retain(|k| !k.starts_with("spec.trafficPolicy.portLevelSettings"));
            kept.push(format!(
                "spec.trafficPolicy.portLevelSettings: entry {i} (port {}) is the policy in force; the top-level blocks and the other entries do not apply",
                port.unwrap_or(0)
            ));
            (
                l.connection_pool.as_ref(),
                l.outlier_detection.as_ref(),
                format!("spec.trafficPolicy.portLevelSettings[{i}]"),
            )
        }
        None => (
            top.and_then(|p| p.connection_pool.as_ref()),
            top.and_then(|p| p.outlier_detection.as_ref()),
            "spec.trafficPolicy".to_string(),
        ),
    };
    let rule = modelled(pool, od, &f).with_context(|| origin.to_string())?;
    Ok((rule, kept))
}

/// The product's seven fields from a connection pool and outlier detection.
fn modelled(pool: Option<&ConnectionPool>, od: Option<&OutlierDetection>, prefix: &str) -> Result<TrafficRule> {
    let tcp = pool.and_then(|c| c.tcp.as_ref());
    let http = pool.and_then(|c| c.http.as_ref());
    let f = |name: &str| format!("{prefix}.{name}");
    // What istiod renders for the fields the DR leaves unset (TrafficRule::unset).
    let unset = TrafficRule::unset(od.is_some());
    Ok(TrafficRule {
        max_connections: limit(
            tcp.and_then(|t| t.max_connections),
            &f("connectionPool.tcp.maxConnections"),
            false,
            unset.max_connections,
        )?,
        max_pending_requests: limit(
            http.and_then(|h| h.http1_max_pending_requests),
            &f("connectionPool.http.http1MaxPendingRequests"),
            false,
            unset.max_pending_requests,
        )?,
        max_requests_per_connection: limit(
            http.and_then(|h| h.max_requests_per_connection),
            &f("connectionPool.http.maxRequestsPerConnection"),
            true,
            unset.max_requests_per_connection,
        )?,
        consecutive_5xx_errors: limit(
            od.and_then(|o| o.consecutive_5xx_errors),
            &f("outlierDetection.consecutive5xxErrors"),
            true,
            unset.consecutive_5xx_errors,
        )?,
        interval: od.and_then(|o| o.interval).unwrap_or(unset.interval),
        base_ejection_time: od.and_then(|o| o.base_ejection_time).unwrap_or(unset.base_ejection_time),
        max_ejection_percent: {
            let v = limit(
                od.and_then(|o| o.max_ejection_percent),
                &f("outlierDetection.maxEjectionPercent"),
                true,
                unset.max_ejection_percent,
            )?;
            if v > 100 {
                bail!("{}: must be in 0..=100 (got {v})", f("outlierDetection.maxEjectionPercent"));
            }
            v
        },
    })
}

pub fn read(path: &Path) -> Result<TrafficRule> {
    Ok(read_for(path, Aim::default())?.rule)
}

/// [`parse_for`] on a file.
pub fn read_for(path: &Path, aim: Aim) -> Result<ReadRule> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_for(&text, &path.display().to_string(), aim)
}

/// Renders a rule as a DestinationRule for `host`, every catalogue field set.
pub fn render(rule: &TrafficRule, name: &str, host: &str) -> String {
    render_fields(rule, name, host, &sfr2l_core::Inputs::catalogue())
}

/// Renders the fields of `inputs` only (a study's): the others stay unset, as in the rules the
/// study measured, and read back as [`TrafficRule::unset`] gives them. Blocks with no field set
/// are left out, so a study without outlier fields renders no `outlierDetection`.
pub fn render_fields(rule: &TrafficRule, name: &str, host: &str, inputs: &sfr2l_core::Inputs) -> String {
    use sfr2l_core::Feature as F;
    let has = |f: F| inputs.rules().contains(&f);
    let opt = |f: F, v: u32| if has(f) && v != UNLIMITED { Some(v as i64) } else { None };
    let tcp = Tcp { max_connections: opt(F::MaxConnections, rule.max_connections), ..Default::default() };
    let http = Http {
        http1_max_pending_requests: opt(F::MaxPendingRequests, rule.max_pending_requests),
        max_requests_per_connection: has(F::MaxRequestsPerConnection)
            .then_some(rule.max_requests_per_connection as i64),
        ..Default::default()
    };
    let od = OutlierDetection {
        consecutive_5xx_errors: has(F::Consecutive5xxErrors).then_some(rule.consecutive_5xx_errors as i64),
        interval: has(F::Interval).then_some(rule.interval),
        base_ejection_time: has(F::BaseEjectionTime).then_some(rule.base_ejection_time),
        max_ejection_percent: has(F::MaxEjectionPercent).then_some(rule.max_ejection_percent as i64),
        ..Default::default()
    };
    let any_od =
        [F::Consecutive5xxErrors, F::Interval, F::BaseEjectionTime, F::MaxEjectionPercent].into_iter().any(has);
    let doc = Doc {
        api_version: "networking.istio.io/v1".into(),
        kind: "DestinationRule".into(),
        metadata: Metadata { name: name.into(), ..Default::default() },
        spec: Spec {
            host: host.into(),
            traffic_policy: Some(TrafficPolicy {
                connection_pool: Some(ConnectionPool { tcp: Some(tcp), http: Some(http) }),
                outlier_detection: any_od.then_some(od),
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    };
    serde_norway::to_string(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests;
