//! Istio DestinationRule YAML <-> [`TrafficRule`]: the same files as `manifests/`, and the
//! rules users already run.
//!
//! Every field of istio/api's schema is read ([`schema`]); the ones the product models make the
//! rule, the others are kept and listed ([`ReadRule::kept`]). A field outside the schema is an
//! error naming its path, so a typo (or `consecutiveErrors`, ignored by Istio since 1.7) never
//! passes silently. Files may hold several documents (`---`) or a `kind: List`; the rule for
//! the target's host is taken, and for the target's port its `portLevelSettings` entry replaces
//! the top-level blocks as istiod does.

mod kept;
mod policy;
mod schema;
mod vs_schema;

use anyhow::{bail, Context, Result};
use policy::Found;
use schema::{ConnectionPool, Doc, Http, Metadata, OutlierDetection, Spec, Tcp, TrafficPolicy};
use serde::de::DeserializeOwned;
use serde_norway::Value;
use sfr2l_core::TrafficRule;
use std::path::Path;
use vs_schema::VsDoc;

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
    /// The catalogue fields the policy in force sets, in catalogue order (the others are
    /// istiod's defaults).
    pub set: Vec<sfr2l_core::Feature>,
    /// What the lab honours beyond the seven fields (connect timeout, load balancer).
    pub cluster: crate::envoy::ClusterSettings,
}

/// Which rule of a file applies: the target's host (short name or FQDN) and port.
#[derive(Debug, Clone, Copy, Default)]
pub struct Aim<'a> {
    pub host: Option<&'a str>,
    pub port: Option<u16>,
    /// The subset the study targets (`outbound|PORT|SUBSET|HOST`); `None` is the default cluster.
    pub subset: Option<&'a str>,
}

/// Parses a DestinationRule; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<TrafficRule> {
    Ok(parse_for(text, origin, Aim::default())?.rule)
}

/// The YAML documents of a file, each with the line it starts on, and padded with empty lines
/// so that the parser's line numbers are the file's.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut out = vec![(1, String::new())];
    for (i, line) in text.lines().enumerate() {
        // `---`, alone or followed by a comment or by the new document's first node.
        let rest = line.strip_prefix("---").filter(|r| r.is_empty() || r.starts_with([' ', '\t']));
        if let Some(rest) = rest {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                out.push((i + 2, "\n".repeat(i + 1)));
            } else {
                out.push((i + 1, format!("{}{rest}\n", "\n".repeat(i))));
            }
        } else if let Some((_, d)) = out.last_mut() {
            d.push_str(line);
            d.push('\n');
        }
    }
    out.retain(|(_, d)| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    out
}

/// A document typed from its own text (errors name the line) or a `kind: List` item.
enum Source<'a> {
    Text(&'a str),
    Item(Value),
}

fn typed<T: DeserializeOwned>(src: &Source, origin: &str, prefix: &str) -> Result<T> {
    let r = match src {
        Source::Text(t) => serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(t)),
        Source::Item(v) => serde_path_to_error::deserialize(v.clone()),
    };
    r.map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("{origin}: field {prefix}{path}: {}", e.into_inner())
    })
}

/// Whether a rule's `host` names the target `want` (`reviews`, `reviews.default.svc.cluster.local`).
fn same_host(host: &str, want: &str) -> bool {
    host == want || host.split('.').next() == want.split('.').next()
}

/// Reads the rule `aim` picks from a file of one or more documents: every DestinationRule for
/// the target's host, merged and resolved for its port and subset as istiod does
/// ([`policy`]); VirtualServices for the host are read whole and listed as kept.
pub fn parse_for(text: &str, origin: &str, aim: Aim) -> Result<ReadRule> {
    let docs = documents(text);
    let mut rules: Vec<Found> = Vec::new();
    let mut services: Vec<(String, VsDoc)> = Vec::new();
    let mut kept = Vec::new();
    let mut take = |at: String, item: Source, kind: &str, here: &str, prefix: &str| -> Result<()> {
        match kind {
            "DestinationRule" => rules.push(Found { at, doc: typed(&item, here, prefix)? }),
            "VirtualService" => services.push((at, typed(&item, here, prefix)?)),
            "" => bail!("{here}: field {prefix}kind: missing"),
            other => kept.push(format!("{at}({other}: not read)")),
        }
        Ok(())
    };
    for (n, (line, doc)) in docs.iter().enumerate() {
        let at = if docs.len() > 1 { format!("document {} (line {line}) ", n + 1) } else { String::new() };
        let here = if at.is_empty() { origin.to_string() } else { format!("{origin}: {}", at.trim_end()) };
        let v: Value = serde_norway::from_str(doc).map_err(|e| anyhow::anyhow!("{origin}: {at}is not YAML: {e}"))?;
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("").to_string();
        if kind == "List" {
            let items = v.get("items").and_then(|i| i.as_sequence()).cloned().unwrap_or_default();
            for (k, item) in items.into_iter().enumerate() {
                let ik = item.get("kind").and_then(|k| k.as_str()).unwrap_or("").to_string();
                take(format!("{at}items[{k}] "), Source::Item(item), &ik, origin, &format!("items[{k}]."))?;
            }
        } else {
            take(at, Source::Text(doc), &kind, &here, "")?;
        }
    }
    for (at, apiv) in
        rules.iter().map(|r| (&r.at, &r.doc.api_version)).chain(services.iter().map(|(a, d)| (a, &d.api_version)))
    {
        if !API_VERSIONS.contains(&apiv.as_str()) {
            bail!("{origin}: {at}field apiVersion: expected networking.istio.io/v1, v1beta1 or v1alpha3, got {apiv:?}");
        }
    }
    let hosts: Vec<String> = rules.iter().map(|r| r.doc.spec.host.clone()).collect();
    let (mut mine, others): (Vec<Found>, Vec<Found>) = match aim.host {
        Some(h) => rules.into_iter().partition(|r| same_host(&r.doc.spec.host, h)),
        None if rules.len() > 1 && hosts.iter().any(|h| !same_host(h, &hosts[0])) => {
            bail!("{origin}: DestinationRules for several hosts ({}); name the target's", hosts.join(", "))
        }
        None => (rules, Vec::new()),
    };
    for r in &others {
        kept.push(format!(
            "{}(DestinationRule {}: host {}, not the target: not read)",
            r.at, r.doc.metadata.name, r.doc.spec.host
        ));
    }
    if mine.is_empty() {
        if hosts.is_empty() {
            bail!("{origin}: field kind: expected DestinationRule, found no DestinationRule");
        }
        bail!("{origin}: no DestinationRule for host {:?} (the file has {})", aim.host.unwrap_or(""), hosts.join(", "));
    }
    policy::istiod_order(&mut mine);
    let mut notes = Vec::new();
    let (top, subsets) = policy::merge(&mine, origin, &mut notes)?;
    let blocks = policy::in_force(top, &subsets, aim.port, aim.subset, origin)?;
    for r in &mine {
        kept::rule(&serde_json::to_value(&r.doc).unwrap_or_default(), &r.at, aim.subset, &mut kept);
    }
    kept.retain(|k| {
        !blocks.notes.iter().any(|n| n.contains("is the policy in force") && k.ends_with(".portLevelSettings"))
    });
    kept.extend(notes);
    kept.extend(blocks.notes.iter().cloned());
    let cluster = honoured(&blocks, &mut kept)?;
    for (at, vs) in &services {
        let target = aim.host.is_none_or(|h| vs.spec.hosts.iter().any(|v| same_host(v, h)));
        if target {
            kept::service(vs, at, &mut kept);
        } else {
            kept.push(format!(
                "{at}(VirtualService {}: hosts {}, not the target: not read)",
                vs.metadata.name,
                vs.spec.hosts.join(", ")
            ));
        }
    }
    let rule = modelled(&blocks).with_context(|| origin.to_string())?;
    Ok(ReadRule { rule, kept, set: set_fields(&blocks), cluster })
}

/// A VirtualService document typed whole (a field outside the schema is an error at its path):
/// its name and hosts.
pub fn virtual_service(text: &str, origin: &str) -> Result<(String, Vec<String>)> {
    let vs: VsDoc = typed(&Source::Text(text), origin, "")?;
    if !API_VERSIONS.contains(&vs.api_version.as_str()) {
        bail!(
            "{origin}: field apiVersion: expected networking.istio.io/v1, v1beta1 or v1alpha3, got {:?}",
            vs.api_version
        );
    }
    Ok((vs.metadata.name, vs.spec.hosts))
}

const API_VERSIONS: [&str; 3] =
    ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"];

/// The lab's fidelity rules for the blocks in force beyond the seven fields. TLS: `DISABLE` is
/// what the lab's plaintext sidecars do; `ISTIO_MUTUAL` is Istio's auto mTLS, which the lab does
/// not have yet, so it is listed; `SIMPLE` and `MUTUAL` originate TLS with the user's own
/// certificates, which the lab cannot do, so they are refused. The load balancer and the connect
/// timeout are rendered as istiod renders them ([`crate::envoy::ClusterSettings`]); `PASSTHROUGH`
/// (the caller's original destination) has no meaning for the lab's static hosts: refused.
fn honoured(f: &policy::InForce, kept: &mut Vec<String>) -> Result<crate::envoy::ClusterSettings> {
    if let Some((t, at)) = &f.tls {
        match t.mode.as_deref().unwrap_or("DISABLE") {
            "DISABLE" => {}
            "ISTIO_MUTUAL" => kept.push(format!("{at}.mode: ISTIO_MUTUAL (Istio's auto mTLS): the lab's sidecars speak plaintext")),
            m @ ("SIMPLE" | "MUTUAL") => bail!(
                "{at}.mode: {m} originates TLS with the rule's own certificates, which the lab cannot reproduce; study the service with ISTIO_MUTUAL or DISABLE"
            ),
            m => bail!("{at}.mode: {m:?} is not one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL"),
        }
    }
    let lb_policy = match f.lb.as_ref().map(|(lb, at)| (lb.simple.as_deref(), at)) {
        None | Some((None, _)) => None,
        Some((Some("LEAST_REQUEST" | "UNSPECIFIED" | "LEAST_CONN"), _)) => Some("LEAST_REQUEST"),
        Some((Some("ROUND_ROBIN"), _)) => Some("ROUND_ROBIN"),
        Some((Some("RANDOM"), _)) => Some("RANDOM"),
        Some((Some("PASSTHROUGH"), at)) => bail!(
            "{at}.simple: PASSTHROUGH sends each call to its original destination, which the lab's static hosts do not have"
        ),
        Some((Some(s), at)) => bail!(
            "{at}.simple: {s:?} is not one of UNSPECIFIED, LEAST_CONN, ROUND_ROBIN, RANDOM, PASSTHROUGH, LEAST_REQUEST"
        ),
    };
    let connect_timeout = f.pool.as_ref().and_then(|(p, _)| p.tcp.as_ref()).and_then(|t| t.connect_timeout);
    Ok(crate::envoy::ClusterSettings { connect_timeout, lb_policy })
}

fn set_fields(f: &policy::InForce) -> Vec<sfr2l_core::Feature> {
    use sfr2l_core::Feature as F;
    let tcp = f.pool.as_ref().and_then(|(c, _)| c.tcp.as_ref());
    let http = f.pool.as_ref().and_then(|(c, _)| c.http.as_ref());
    let od = f.outlier.as_ref().map(|(o, _)| *o);
    let has = |feature: F| match feature {
        F::MaxPendingRequests => http.is_some_and(|h| h.http1_max_pending_requests.is_some()),
        F::MaxConnections => tcp.is_some_and(|t| t.max_connections.is_some()),
        F::MaxRequestsPerConnection => http.is_some_and(|h| h.max_requests_per_connection.is_some()),
        F::BaseEjectionTime => od.is_some_and(|o| o.base_ejection_time.is_some()),
        F::MaxEjectionPercent => od.is_some_and(|o| o.max_ejection_percent.is_some()),
        F::Interval => od.is_some_and(|o| o.interval.is_some()),
        F::Consecutive5xxErrors => od.is_some_and(|o| o.consecutive_5xx_errors.is_some()),
        _ => false,
    };
    sfr2l_core::feature::RULE_FEATURES.into_iter().filter(|f| has(*f)).collect()
}

/// The product's seven fields from the blocks in force.
fn modelled(f: &policy::InForce) -> Result<TrafficRule> {
    let pool = f.pool.as_ref();
    let od = f.outlier.as_ref().map(|(o, _)| *o);
    let tcp = pool.and_then(|(c, _)| c.tcp.as_ref());
    let http = pool.and_then(|(c, _)| c.http.as_ref());
    let p =
        |name: &str| format!("{}.{name}", pool.map(|(_, p)| p.as_str()).unwrap_or("spec.trafficPolicy.connectionPool"));
    let o = |name: &str| {
        format!(
            "{}.{name}",
            f.outlier.as_ref().map(|(_, p)| p.as_str()).unwrap_or("spec.trafficPolicy.outlierDetection")
        )
    };
    // What istiod renders for the fields the DR leaves unset (TrafficRule::unset).
    let unset = TrafficRule::unset(od.is_some());
    Ok(TrafficRule {
        max_connections: limit(
            tcp.and_then(|t| t.max_connections),
            &p("tcp.maxConnections"),
            false,
            unset.max_connections,
        )?,
        max_pending_requests: limit(
            http.and_then(|h| h.http1_max_pending_requests),
            &p("http.http1MaxPendingRequests"),
            false,
            unset.max_pending_requests,
        )?,
        max_requests_per_connection: limit(
            http.and_then(|h| h.max_requests_per_connection),
            &p("http.maxRequestsPerConnection"),
            true,
            unset.max_requests_per_connection,
        )?,
        consecutive_5xx_errors: limit(
            od.and_then(|o| o.consecutive_5xx_errors),
            &o("consecutive5xxErrors"),
            true,
            unset.consecutive_5xx_errors,
        )?,
        interval: od.and_then(|o| o.interval).unwrap_or(unset.interval),
        base_ejection_time: od.and_then(|o| o.base_ejection_time).unwrap_or(unset.base_ejection_time),
        max_ejection_percent: {
            let v = limit(
                od.and_then(|o| o.max_ejection_percent),
                &o("maxEjectionPercent"),
                true,
                unset.max_ejection_percent,
            )?;
            if v > 100 {
                bail!("{}: must be in 0..=100 (got {v})", o("maxEjectionPercent"));
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
