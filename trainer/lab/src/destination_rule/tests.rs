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
    assert!(msg.contains("dr.yaml") && msg.contains("outlierDetection") && msg.contains("consecutiveErrors"), "{msg}");
    let e = format!("{:#}", parse(&ISTIO_TASK.replace("3m", "3 minutes"), "dr.yaml").unwrap_err());
    assert!(e.contains("baseEjectionTime") && e.contains("3 minutes"), "{e}");
    let e =
        format!("{:#}", parse(&ISTIO_TASK.replace("maxConnections: 1", "maxConnections: -2"), "dr.yaml").unwrap_err());
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
    let e = format!("{:#}", parse_for(REVIEWS, "reviews.yaml", Aim { host: Some("ratings"), port: None }).unwrap_err());
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
        parse(&ISTIO_TASK.replace("maxConnections: 1", "maxConnections: 1\n        maxConn: 2"), "d.yaml").unwrap_err()
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
