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
mod tests {
    use super::*;

    pub const ISTIO_TASK: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
"#;

    #[test]
    fn parses_the_istio_task_rule() {
        let r = parse(ISTIO_TASK, "dr.yaml").unwrap();
        assert_eq!(r.max_connections, 1);
        assert_eq!(r.base_ejection_time.secs(), 180.0);
        assert_eq!(r.consecutive_5xx_errors, 1);
        let back = parse(&render(&r, "httpbin", "httpbin"), "x").unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(&ISTIO_TASK.replace("consecutive5xxErrors", "consecutiveErrors"), "dr.yaml").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("dr.yaml") && msg.contains("outlierDetection") && msg.contains("consecutiveErrors"),
            "{msg}"
        );
        let e = format!("{:#}", parse(&ISTIO_TASK.replace("3m", "3 minutes"), "dr.yaml").unwrap_err());
        assert!(e.contains("baseEjectionTime") && e.contains("3 minutes"), "{e}");
        let e = format!(
            "{:#}",
            parse(&ISTIO_TASK.replace("maxConnections: 1", "maxConnections: -2"), "dr.yaml").unwrap_err()
        );
        assert!(e.contains("maxConnections") && e.contains("negative"), "{e}");
        let e = format!(
            "{:#}",
            parse(&ISTIO_TASK.replace("maxEjectionPercent: 100", "maxEjectionPercent: 120"), "dr.yaml").unwrap_err()
        );
        assert!(e.contains("maxEjectionPercent"), "{e}");
    }

    #[test]
    fn unset_fields_get_istio_and_envoy_defaults() {
        let text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec:\n  host: a\n  trafficPolicy: {}\n";
        let r = parse(text, "a.yaml").unwrap();
        assert_eq!(r.max_connections, UNLIMITED);
        assert_eq!(r.max_requests_per_connection, 0);
        // No outlierDetection block: istiod renders none, so no host is ever ejected.
        assert_eq!(r.consecutive_5xx_errors, 0);
        // Any outlierDetection block turns on Envoy's default 5 consecutive 5xx (enforced).
        let r = parse(&text.replace("{}", "{outlierDetection: {interval: 1s}}"), "a.yaml").unwrap();
        assert_eq!((r.consecutive_5xx_errors, r.base_ejection_time.secs()), (5, 30.0));
    }

    #[test]
    fn a_study_with_fewer_fields_renders_only_those_and_reads_back_the_same_rule() {
        use sfr2l_core::{Feature, Inputs};
        let pool = Inputs::new(vec![Feature::MaxConnections]).unwrap();
        let rule = pool.rule(&[3.0], &pool.unset_rule());
        let text = render_fields(&rule, "web", "web", &pool);
        assert!(text.contains("maxConnections: 3") && !text.contains("outlierDetection"), "{text}");
        assert!(!text.contains("null") && !text.contains("http1MaxPendingRequests"), "{text}");
        assert_eq!(parse(&text, "web.yaml").unwrap(), rule);
        let two = Inputs::new(vec![Feature::MaxConnections, Feature::Consecutive5xxErrors]).unwrap();
        let rule = two.rule(&[3.0, 2.0], &two.unset_rule());
        let text = render_fields(&rule, "web", "web", &two);
        assert!(text.contains("consecutive5xxErrors: 2") && !text.contains("interval"), "{text}");
        assert_eq!(parse(&text, "web.yaml").unwrap(), rule);
    }

    /// A Bookinfo-style rule as users run it (issue 29), aimed at the lab's target.
    const REVIEWS: &str = r#"
# reviews, as deployed
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
  annotations:
    owner: team-reviews
  labels: {app: reviews}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
    connectionPool:
      tcp:
        maxConnections: 4
        connectTimeout: 250ms
      http:
        http1MaxPendingRequests: 2
        http2MaxRequests: 100
        maxRetries: 3
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 5s
      baseEjectionTime: 1m
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
"#;

    #[test]
    fn a_real_rule_reads_whole_and_lists_what_it_keeps() {
        let r = parse_for(REVIEWS, "reviews.yaml", Aim { host: Some("reviews"), port: Some(9080) }).unwrap();
        assert_eq!(
            (r.rule.max_connections, r.rule.max_pending_requests),
            (4, 2),
            "the subset's policy is not the default cluster's"
        );
        assert_eq!(
            (r.rule.consecutive_5xx_errors, r.rule.interval.secs(), r.rule.base_ejection_time.secs()),
            (3, 5.0, 60.0)
        );
        // No maxEjectionPercent in the block: Envoy's default 10%.
        assert_eq!(r.rule.max_ejection_percent, 10);
        assert_eq!(
            r.kept,
            [
                "document 2 (line 34) (VirtualService: not read)",
                "metadata.annotations",
                "metadata.labels",
                "spec.subsets",
                "spec.trafficPolicy.connectionPool.http.http2MaxRequests",
                "spec.trafficPolicy.connectionPool.http.maxRetries",
                "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
                "spec.trafficPolicy.loadBalancer",
            ]
        );
        // The same rule under another host is not the target's.
        let e =
            format!("{:#}", parse_for(REVIEWS, "reviews.yaml", Aim { host: Some("ratings"), port: None }).unwrap_err());
        assert_eq!(
            e,
            "reviews.yaml: no DestinationRule for host \"ratings\" (the file has reviews.default.svc.cluster.local)"
        );
    }

    #[test]
    fn lists_versions_and_port_level_settings_read_as_istiod_reads_them() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}",
            serde_json::to_string(&serde_norway::from_str::<serde_json::Value>(ISTIO_TASK).unwrap()).unwrap()
        );
        assert_eq!(parse(&list, "l.yaml").unwrap(), parse(ISTIO_TASK, "t.yaml").unwrap());
        let alpha = ISTIO_TASK.replace("networking.istio.io/v1", "networking.istio.io/v1alpha3");
        assert_eq!(parse(&alpha, "a.yaml").unwrap().max_connections, 1);
        let e = format!(
            "{:#}",
            parse(&ISTIO_TASK.replace("networking.istio.io/v1", "networking.istio.io/v2"), "v.yaml").unwrap_err()
        );
        assert!(e.contains("field apiVersion: expected networking.istio.io/v1, v1beta1 or v1alpha3"), "{e}");
        // A port's entry replaces the top-level blocks whole: its pool has no http block, so
        // pending requests are unlimited there, and its outlierDetection is absent (no ejection).
        let ports = ISTIO_TASK.replace(
            "    outlierDetection:",
            "    portLevelSettings:\n    - port: {number: 8000}\n      connectionPool: {tcp: {maxConnections: 9}}\n    outlierDetection:",
        );
        let at = parse_for(&ports, "p.yaml", Aim { host: None, port: Some(8000) }).unwrap();
        assert_eq!(
            (at.rule.max_connections, at.rule.max_pending_requests, at.rule.consecutive_5xx_errors),
            (9, UNLIMITED, 0)
        );
        assert!(at.kept.iter().any(|k| k.contains("entry 0 (port 8000) is the policy in force")), "{:?}", at.kept);
        let other = parse_for(&ports, "p.yaml", Aim { host: None, port: Some(80) }).unwrap();
        assert_eq!((other.rule.max_connections, other.rule.consecutive_5xx_errors), (1, 1));
        assert_eq!(other.kept, ["spec.trafficPolicy.portLevelSettings"]);
        // Outside the schema, at any depth: an error at its path.
        let e = format!(
            "{:#}",
            parse(&ISTIO_TASK.replace("maxConnections: 1", "maxConnections: 1\n        maxConn: 2"), "d.yaml")
                .unwrap_err()
        );
        assert!(
            e.starts_with("d.yaml: field spec.trafficPolicy.connectionPool.tcp.maxConn: ")
                && e.contains("unknown field `maxConn`"),
            "{e}"
        );
        let two = format!("{ISTIO_TASK}---\n{}", ISTIO_TASK.replace("name: httpbin", "name: other"));
        let e = format!("{:#}", parse(&two, "two.yaml").unwrap_err());
        assert!(e.contains("2 DestinationRules for the target (httpbin, other)"), "{e}");
    }
}
