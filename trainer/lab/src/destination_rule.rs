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
    #[serde(default)]
    connection_pool: Option<ConnectionPool>,
    #[serde(default)]
    outlier_detection: Option<OutlierDetection>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConnectionPool {
    #[serde(default)]
    tcp: Option<Tcp>,
    #[serde(default)]
    http: Option<Http>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Tcp {
    #[serde(default)]
    max_connections: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Http {
    #[serde(default)]
    http1_max_pending_requests: Option<i64>,
    #[serde(default)]
    max_requests_per_connection: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OutlierDetection {
    #[serde(default)]
    consecutive_5xx_errors: Option<i64>,
    #[serde(default)]
    interval: Option<IstioDuration>,
    #[serde(default)]
    base_ejection_time: Option<IstioDuration>,
    #[serde(default)]
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
    let rule = (|| -> Result<TrafficRule> {
        Ok(TrafficRule {
            max_connections: limit(
                tcp.and_then(|t| t.max_connections),
                &f("connectionPool.tcp.maxConnections"),
                false,
                UNLIMITED,
            )?,
            max_pending_requests: limit(
                http.and_then(|h| h.http1_max_pending_requests),
                &f("connectionPool.http.http1MaxPendingRequests"),
                false,
                UNLIMITED,
            )?,
            max_requests_per_connection: limit(
                http.and_then(|h| h.max_requests_per_connection),
                &f("connectionPool.http.maxRequestsPerConnection"),
                true,
                0,
            )?,
            // Envoy defaults where the DR leaves outlier fields unset (reference 1.2).
            consecutive_5xx_errors: limit(
                od.and_then(|o| o.consecutive_5xx_errors),
                &f("outlierDetection.consecutive5xxErrors"),
                true,
                5,
            )?,
            interval: od.and_then(|o| o.interval).unwrap_or(IstioDuration::from_secs(10.0)),
            base_ejection_time: od.and_then(|o| o.base_ejection_time).unwrap_or(IstioDuration::from_secs(30.0)),
            max_ejection_percent: {
                let v = limit(
                    od.and_then(|o| o.max_ejection_percent),
                    &f("outlierDetection.maxEjectionPercent"),
                    true,
                    10,
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

/// Renders a rule as a DestinationRule for `host`.
pub fn render(rule: &TrafficRule, name: &str, host: &str) -> String {
    let opt = |v: u32| if v == UNLIMITED { None } else { Some(v as i64) };
    let doc = DestinationRuleDoc {
        api_version: "networking.istio.io/v1".into(),
        kind: "DestinationRule".into(),
        metadata: Metadata { name: name.into(), namespace: None, labels: None },
        spec: Spec {
            host: host.into(),
            traffic_policy: TrafficPolicy {
                connection_pool: Some(ConnectionPool {
                    tcp: Some(Tcp { max_connections: opt(rule.max_connections) }),
                    http: Some(Http {
                        http1_max_pending_requests: opt(rule.max_pending_requests),
                        max_requests_per_connection: Some(rule.max_requests_per_connection as i64),
                    }),
                }),
                outlier_detection: Some(OutlierDetection {
                    consecutive_5xx_errors: Some(rule.consecutive_5xx_errors as i64),
                    interval: Some(rule.interval),
                    base_ejection_time: Some(rule.base_ejection_time),
                    max_ejection_percent: Some(rule.max_ejection_percent as i64),
                }),
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
        assert_eq!(r.consecutive_5xx_errors, 5);
    }
}
