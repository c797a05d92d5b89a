//! Istio DestinationRule YAML <-> [`TrafficRule`]: the same files as `manifests/`.
//!
//! Only the fields the product models are accepted; anything else is an error naming its path,
//! so a typo (`consecutiveErrors`, ignored by Istio since 1.7) never passes silently.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sfr2l_core::{IstioDuration, TrafficRule};
use std::path::Path;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DestinationRuleDoc {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    host: String,
    traffic_policy: TrafficPolicy,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection_pool: Option<ConnectionPool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outlier_detection: Option<OutlierDetection>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConnectionPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp: Option<Tcp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<Http>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Tcp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_connections: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Http {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http1_max_pending_requests: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_requests_per_connection: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OutlierDetection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consecutive_5xx_errors: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<IstioDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_ejection_time: Option<IstioDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ejection_percent: Option<i64>,
}

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

/// Parses a DestinationRule; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<TrafficRule> {
    let de = serde_norway::Deserializer::from_str(text);
    let doc: DestinationRuleDoc = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("{origin}: field {path}: {}", e.into_inner())
    })?;
    if doc.kind != "DestinationRule" {
        bail!("{origin}: field kind: expected DestinationRule, got {:?}", doc.kind);
    }
    if !doc.api_version.starts_with("networking.istio.io/") {
        bail!("{origin}: field apiVersion: expected networking.istio.io/*, got {:?}", doc.api_version);
    }
    let p = &doc.spec.traffic_policy;
    let tcp = p.connection_pool.as_ref().and_then(|c| c.tcp.as_ref());
    let http = p.connection_pool.as_ref().and_then(|c| c.http.as_ref());
    let od = p.outlier_detection.as_ref();
    let f = |name: &str| format!("spec.trafficPolicy.{name}");
    // What istiod renders for the fields the DR leaves unset (TrafficRule::unset).
    let unset = TrafficRule::unset(od.is_some());
    let rule = (|| -> Result<TrafficRule> {
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
    })()
    .with_context(|| origin.to_string())?;
    Ok(rule)
}

pub fn read(path: &Path) -> Result<TrafficRule> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, &path.display().to_string())
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
    let tcp = Tcp { max_connections: opt(F::MaxConnections, rule.max_connections) };
    let http = Http {
        http1_max_pending_requests: opt(F::MaxPendingRequests, rule.max_pending_requests),
        max_requests_per_connection: has(F::MaxRequestsPerConnection)
            .then_some(rule.max_requests_per_connection as i64),
    };
    let od = OutlierDetection {
        consecutive_5xx_errors: has(F::Consecutive5xxErrors).then_some(rule.consecutive_5xx_errors as i64),
        interval: has(F::Interval).then_some(rule.interval),
        base_ejection_time: has(F::BaseEjectionTime).then_some(rule.base_ejection_time),
        max_ejection_percent: has(F::MaxEjectionPercent).then_some(rule.max_ejection_percent as i64),
    };
    let any_od =
        [F::Consecutive5xxErrors, F::Interval, F::BaseEjectionTime, F::MaxEjectionPercent].into_iter().any(has);
    let doc = DestinationRuleDoc {
        api_version: "networking.istio.io/v1".into(),
        kind: "DestinationRule".into(),
        metadata: Metadata { name: name.into(), namespace: None, labels: None },
        spec: Spec {
            host: host.into(),
            traffic_policy: TrafficPolicy {
                connection_pool: Some(ConnectionPool { tcp: Some(tcp), http: Some(http) }),
                outlier_detection: any_od.then_some(od),
            },
        },
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
}
