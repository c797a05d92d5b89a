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
        http2KeepAlive: {interval: 30s, timeout: 5s}
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
    let r = parse_for(REVIEWS, "reviews.yaml", Aim { host: Some("reviews"), port: Some(9080), subset: None }).unwrap();
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
    // The connect timeout and the balancer are rendered as istiod renders them.
    assert_eq!(r.cluster.connect_timeout.map(|d| d.millis()), Some(250));
    assert_eq!(r.cluster.lb_policy, Some("LEAST_REQUEST"));
    assert_eq!(
        r.kept,
        [
            "document 1 (line 1) metadata.annotations",
            "document 1 (line 1) metadata.labels",
            "document 1 (line 1) spec.subsets",
            "document 1 (line 1) spec.trafficPolicy.connectionPool.http.http2KeepAlive",
            "document 1 (line 1) spec.trafficPolicy.connectionPool.http.http2MaxRequests",
            "document 1 (line 1) spec.trafficPolicy.connectionPool.http.maxRetries",
            "document 2 (line 35) VirtualService reviews: spec.http[0].route",
        ]
    );
    // The same rule under another host is not the target's.
    let e = format!(
        "{:#}",
        parse_for(REVIEWS, "reviews.yaml", Aim { host: Some("ratings"), port: None, subset: None }).unwrap_err()
    );
    assert_eq!(
        e,
        "reviews.yaml: no DestinationRule for host \"ratings\" (the file has reviews.default.svc.cluster.local)"
    );
}

#[test]
fn lists_versions_and_port_level_settings_read_as_istiod_reads_them() {
    // `---` followed by a comment still separates documents.
    let commented = format!(
        "{ISTIO_TASK}--- # the same rule again, for another host\n{}",
        ISTIO_TASK.replace("host: httpbin", "host: other")
    );
    let r = parse_for(&commented, "c.yaml", Aim { host: Some("other"), port: None, subset: None }).unwrap();
    assert!(r.kept[0].starts_with("document 1 (line 1) (DestinationRule httpbin: host httpbin"), "{:?}", r.kept);
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
    let at = parse_for(&ports, "p.yaml", Aim { host: None, port: Some(8000), subset: None }).unwrap();
    assert_eq!(
        (at.rule.max_connections, at.rule.max_pending_requests, at.rule.consecutive_5xx_errors),
        (9, UNLIMITED, 0)
    );
    assert!(at.kept.iter().any(|k| k.contains("entry 0 (port 8000) is the policy in force")), "{:?}", at.kept);
    let other = parse_for(&ports, "p.yaml", Aim { host: None, port: Some(80), subset: None }).unwrap();
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
}

fn dr(name: &str, extra_meta: &str, body: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: {name}\n{extra_meta}spec:\n  host: web\n{body}"
    )
}

#[test]
fn rules_for_one_host_merge_as_istiod_merges_them() {
    let zeta = dr(
        "zeta",
        "",
        "  trafficPolicy: {connectionPool: {tcp: {maxConnections: 7}}}\n  subsets:\n  - {name: v1, trafficPolicy: {connectionPool: {tcp: {maxConnections: 9}}}}\n  - {name: v2}\n",
    );
    let alpha = dr(
        "alpha",
        "",
        "  trafficPolicy: {connectionPool: {tcp: {maxConnections: 3}}}\n  subsets:\n  - {name: v1, trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}}\n",
    );
    let file = format!("{zeta}---\n{alpha}");
    let at = |subset| parse_for(&file, "m.yaml", Aim { host: Some("web"), port: Some(80), subset }).unwrap();
    // Neither is created yet: by name, so alpha's policy and alpha's v1 win.
    let top = at(None);
    assert_eq!(top.rule.max_connections, 3);
    assert!(top.kept.iter().any(|k| k.starts_with("document 1 (line 1) spec.trafficPolicy: ignored, istiod keeps the first rule's (document 2 (line 12) spec.trafficPolicy")), "{:?}", top.kept);
    assert!(top.kept.iter().any(|k| k.starts_with("document 1 (line 1) spec.subsets[0]: subset \"v1\" ignored, document 2 (line 12) spec.subsets[0] defines it first")), "{:?}", top.kept);
    assert_eq!(at(Some("v1")).rule.max_connections, 1);
    // zeta's v2 has no policy of its own: the merged top level applies.
    assert_eq!(at(Some("v2")).rule.max_connections, 3);
    // A created rule comes before one not yet created.
    let created = format!(
        "{}---\n{alpha}",
        zeta.replace("  name: zeta\n", "  name: zeta\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n")
    );
    let r = parse_for(&created, "c.yaml", Aim { host: Some("web"), port: Some(80), subset: None }).unwrap();
    assert_eq!(r.rule.max_connections, 7);
    // Rules istiod keeps apart are refused.
    let apart = format!("{zeta}---\n{}", alpha.replace("  host: web\n", "  host: web\n  exportTo: [\".\"]\n"));
    let e =
        format!("{:#}", parse_for(&apart, "x.yaml", Aim { host: Some("web"), port: None, subset: None }).unwrap_err());
    assert!(e.contains("differ in exportTo or workloadSelector"), "{e}");
}

#[test]
fn a_subset_policy_replaces_blocks_whole_and_its_port_entry_all_four() {
    let file = dr(
        "web",
        "",
        "  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 4}, http: {http1MaxPendingRequests: 2}}\n    outlierDetection: {consecutive5xxErrors: 3}\n  subsets:\n  - name: v1\n    trafficPolicy:\n      connectionPool: {tcp: {maxConnections: 1}}\n      portLevelSettings:\n      - port: {number: 81}\n        outlierDetection: {consecutive5xxErrors: 8}\n",
    );
    let at =
        |port| parse_for(&file, "s.yaml", Aim { host: Some("web"), port: Some(port), subset: Some("v1") }).unwrap();
    // The subset's pool replaces the top-level pool whole (no http block: unlimited pending);
    // its outlier detection is the top level's.
    let r = at(80);
    assert_eq!((r.rule.max_connections, r.rule.max_pending_requests, r.rule.consecutive_5xx_errors), (1, UNLIMITED, 3));
    assert!(r.kept.contains(&"spec.trafficPolicy.connectionPool: not in force for subset \"v1\", spec.subsets[0].trafficPolicy.connectionPool replaces it (pilot/pkg/networking/util/util.go:893-909)".to_string()), "{:?}", r.kept);
    // At port 81 the subset's entry gives all four blocks: no pool at all, its own ejection.
    let r = at(81);
    assert_eq!((r.rule.max_connections, r.rule.consecutive_5xx_errors), (UNLIMITED, 8));
    assert!(r.kept.iter().any(|k| k.contains("which leaves it unset")), "{:?}", r.kept);
}

#[test]
fn tls_follows_the_labs_fidelity_rules_and_virtual_services_read_whole() {
    let tls = |mode: &str| dr("web", "", &format!("  trafficPolicy: {{tls: {{mode: {mode}}}}}\n"));
    assert!(parse_for(&tls("DISABLE"), "t.yaml", Aim::default()).unwrap().kept.is_empty());
    let e = format!("{:#}", parse_for(&tls("MUTUAL"), "t.yaml", Aim::default()).unwrap_err());
    assert!(
        e.starts_with("spec.trafficPolicy.tls.mode: MUTUAL originates TLS")
            || e.contains("tls.mode: MUTUAL originates TLS"),
        "{e}"
    );
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\nspec:\n  hosts: [web]\n  http:\n  - retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}\n    timeout: 10s\n";
    let file = format!("{}---\n{vs}", tls("DISABLE"));
    let r = parse_for(&file, "v.yaml", Aim { host: Some("web"), port: None, subset: None }).unwrap();
    assert_eq!(
        r.kept,
        [
            "document 2 (line 9) VirtualService web: spec.http[0].retries",
            "document 2 (line 9) VirtualService web: spec.http[0].timeout"
        ]
    );
    let bad = file.replace("retryOn", "retryOnn");
    let e = format!("{:#}", parse_for(&bad, "v.yaml", Aim::default()).unwrap_err());
    assert!(e.starts_with("v.yaml: document 2 (line 9): field spec.http[0].retries.retryOnn: "), "{e}");
    assert!(e.contains("unknown field `retryOnn`") && e.ends_with("at line 15 column 47"), "{e}");
}
