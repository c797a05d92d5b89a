use super::*;

/// A study like `studies/s2.yaml`, written as JSON (core reads no YAML; the file loader's tests
/// check the shipped YAML files against the paper's constants).
pub(crate) const SAMPLE: &str = r#"{
  "apiVersion": "sfr2l/v1", "kind": "Study",
  "metadata": {"name": "s2"},
  "target": {"service": "httpbin", "port": 8000, "path": "/status/200"},
  "attributes": [
    {"field": "connectionPool.http.http1MaxPendingRequests", "range": [3, 7]},
    {"field": "connectionPool.tcp.maxConnections", "range": [3, 7]},
    {"field": "connectionPool.http.maxRequestsPerConnection", "range": [3, 7]},
    {"field": "outlierDetection.baseEjectionTime", "value": "3m"},
    {"field": "outlierDetection.maxEjectionPercent", "range": [4, 8]},
    {"field": "outlierDetection.interval", "range": ["1s", "2s"]},
    {"field": "outlierDetection.consecutive5xxErrors", "value": 1}
  ],
  "load": {
    "threads": {"range": [3, 7], "grid": {"from": 3, "to": 7}},
    "calls": {"range": [100, 700], "grid": {"from": 100, "to": 400, "step": 100}}
  },
  "lab": {
    "upstream": {"command": ["srv", "--port", "{port}"], "ready": {"path": "/"}},
    "hosts": 25,
    "faults": {"badHosts": {"count": 2, "abortPercent": 90}, "clientQuota": {"hosts": 25, "tokens": 7}}
  },
  "collection": {"rows": 100, "repeats": {"configs": 10, "times": 4}}
}"#;

pub(crate) fn sample() -> Study {
    Study::from_json(SAMPLE).unwrap()
}

/// The sample with one JSON value replaced (a `/`-separated pointer), checked.
fn with(pointer: &str, v: serde_json::Value) -> Result<Study, StudyError> {
    let mut j: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match j.pointer_mut(parent).unwrap() {
        serde_json::Value::Array(a) => a[key.parse::<usize>().unwrap()] = v,
        o => _ = o.as_object_mut().unwrap().insert(key.into(), v),
    }
    Study::from_json(&j.to_string())
}

#[test]
fn a_study_resolves_its_fields() {
    let s = sample();
    assert_eq!(s.name, "s2");
    assert_eq!(s.target.namespace, "default");
    assert_eq!(s.target.method, "GET");
    assert_eq!(s.feature_range(Feature::BaseEjectionTime), (180.0, 180.0));
    assert_eq!(s.feature_range(Feature::Interval), (1.0, 2.0));
    assert_eq!(s.feature_range(Feature::Calls), (100.0, 700.0));
    assert_eq!(s.thread_grid.values(), [3, 4, 5, 6, 7]);
    assert_eq!(s.objective, Objective::default());
    assert_eq!((s.lab.hosts, s.lab.bad_hosts, s.lab.bad_abort_percent, s.lab.client_workers), (25, 2, 90.0, 2));
    assert_eq!(s.lab.client_quota, Some(Quota { hosts: 25, tokens: 7, refill_per_s: 0 }));
    assert_eq!(s.upstream.ready(), &Ready { path: "/".into(), status: 200, timeout_ms: 30_000 });
    assert_eq!(s.collection, Collection { rows: 100, seed: 1, repeats: Some((10, 4)) });
}

#[test]
fn draws_stay_in_range() {
    let s = sample();
    for u in [0.0, 0.3, 0.999_999] {
        let (r, l) = s.draw(&[u; N_FEATURES]);
        s.check(&r, &l).unwrap();
    }
    let (r, _) = s.draw(&[0.999_999; N_FEATURES]);
    assert_eq!((r.max_pending_requests, r.interval.secs(), r.max_ejection_percent), (7, 2.0, 8));
    assert_eq!(Span::new(1, 7).pick(0.0), 1);
    assert_eq!(Span::new(1, 7).pick(0.999_999), 7);
}

#[test]
fn check_names_the_field_outside() {
    let s = sample();
    let (mut r, mut l) = s.draw(&[0.5; N_FEATURES]);
    l.calls = 5000;
    assert!(s.check(&r, &l).unwrap_err().contains("calls = 5000 is outside study s2 range 100..=700"));
    l.calls = 200;
    r.base_ejection_time = IstioDuration::from_secs(30.0);
    let e = s.check(&r, &l).unwrap_err();
    assert!(e.contains("base_ejection_time_s = 30s differs from study s2 (3m)"), "{e}");
}

#[test]
fn bad_fields_are_named_by_their_yaml_path() {
    let cases: [(&str, serde_json::Value, &str); 16] = [
        ("/apiVersion", "sfr2l/v2".into(), "apiVersion: \"sfr2l/v2\""),
        ("/metadata/name", "S 1".into(), "metadata.name: \"S 1\" is not a DNS label"),
        ("/target/path", "status".into(), "target.path"),
        ("/attributes/0/field", "connectionPool.tcp.maxConnection".into(), "attributes[0].field: unknown field"),
        (
            "/attributes/1/field",
            "connectionPool.http.http1MaxPendingRequests".into(),
            "attributes[1].field: connectionPool.http.http1MaxPendingRequests is already attributes[0]",
        ),
        (
            "/attributes/4/range",
            serde_json::json!([4, 101]),
            "attributes[4].range[1]: maxEjectionPercent: must be in 0..=100",
        ),
        ("/attributes/1/range", serde_json::json!([0, 7]), "attributes[1].range[0]: maxConnections: must be >= 1"),
        ("/attributes/1/range", serde_json::json!([7, 3]), "attributes[1].range: the range is reversed"),
        ("/attributes/3/value", 180.into(), "attributes[3].value: 180 has no unit"),
        ("/attributes/2/range", serde_json::json!([1.5, 3]), "attributes[2].range[0]: 1.5 is not a whole number"),
        ("/load/calls/grid/to", 800.into(), "load.calls.grid: value 800 is outside the range [100, 700]"),
        ("/lab/faults/badHosts/count", 26.into(), "lab.faults.badHosts.count: 26 exceeds lab.hosts 25"),
        (
            "/lab/upstream/command",
            serde_json::json!(["srv"]),
            "lab.upstream.command: neither an argument nor a file names {port}",
        ),
        (
            "/lab/upstream/files",
            serde_json::json!([{"path": "../etc/x", "content": ""}]),
            "lab.upstream.files[0].path: \"../etc/x\" is not a relative path of plain names",
        ),
        (
            "/lab/upstream/files",
            serde_json::json!([{"path": "a", "content": ""}, {"path": "a", "content": "{port}"}]),
            "lab.upstream.files[1].path: \"a\" is given twice",
        ),
        ("/collection/repeats/configs", 30.into(), "collection.repeats: 30 x 4 runs exceed collection.rows 100"),
    ];
    for (pointer, v, want) in cases {
        let e = with(pointer, v).unwrap_err().to_string();
        assert!(e.contains(want), "{pointer}: {e}\n  wanted: {want}");
    }
    let e = with("/objective", serde_json::json!({"failureCodes": [503, 200]})).unwrap_err().to_string();
    assert_eq!(e, "objective.failureCodes: 200 is not an HTTP error status (400..=599)");
    let e = with("/objective", serde_json::json!({"failureCodes": []})).unwrap_err().to_string();
    assert!(e.starts_with("objective.failureCodes: empty"), "{e}");
    let s = with("/objective", serde_json::json!({"failureCodes": [503, 429]})).unwrap();
    assert_eq!(s.failure().column(), "rate_429_503");
    let e = with("/lab/upstream", serde_json::json!({"address": "nowhere", "ready": {"path": "/"}})).unwrap_err();
    assert_eq!(e.path, "lab.upstream.address");
    let running =
        serde_json::json!({"address": "127.0.0.1:80", "ready": {"path": "/"}, "files": [{"path": "a", "content": ""}]});
    assert_eq!(with("/lab/upstream", running).unwrap_err().path, "lab.upstream.files");
    // A port named only in a file is enough (nginx takes it from its configuration).
    let conf = serde_json::json!({"command": ["srv", "-c", "{dir}/c"], "ready": {"path": "/"},
        "files": [{"path": "c", "content": "listen {port};"}]});
    assert!(with("/lab/upstream", conf).is_ok());
    let e = Study::from_json(&SAMPLE.replace("\"hosts\": 25,", "\"hosts\": 25, \"hots\": 1,")).unwrap_err().to_string();
    assert!(e.contains("unknown field `hots`"), "{e}");
    let e = with("/attributes", serde_json::json!([])).unwrap_err().to_string();
    assert!(e.starts_with("attributes: empty"), "{e}");
}

#[test]
fn a_study_that_lists_fewer_fields_has_fewer_inputs_and_leaves_the_rest_unset() {
    let fewer = SAMPLE.replace("{\"field\": \"outlierDetection.interval\", \"range\": [\"1s\", \"2s\"]},", "");
    let s = Study::from_json(&fewer).unwrap();
    assert_eq!(s.inputs().len(), 8);
    assert!(!s.inputs().names().contains(&"interval_s"));
    // Unset in a DR that has an outlierDetection block: Envoy's 10s.
    assert_eq!(s.feature_range(Feature::Interval), (10.0, 10.0));
    let (r, l) = s.draw(&[0.3; N_FEATURES]);
    assert_eq!(r.interval.secs(), 10.0);
    s.check(&r, &l).unwrap();
    assert_eq!(s.input_ranges().len(), 8);
    // Only connection-pool fields: no outlierDetection block, so no ejection at all.
    let j = serde_json::json!([{"field": "connectionPool.tcp.maxConnections", "range": [1, 9]}]);
    let pool = with("/attributes", j).unwrap();
    assert_eq!(pool.inputs().names(), ["max_connections", "threads", "calls"]);
    assert_eq!(pool.base_rule().consecutive_5xx_errors, 0);
    assert_eq!(pool.feature_range(Feature::MaxPendingRequests), (f64::from(u32::MAX), f64::from(u32::MAX)));
}

#[test]
fn study_names_are_dns_labels() {
    for good in ["s1", "nginx-limit-conn", "a"] {
        assert!(is_name(good), "{good}");
    }
    for bad in ["", "S1", "-a", "a-", "a_b", "a/b", "..", &"x".repeat(64)] {
        assert!(!is_name(bad), "{bad}");
    }
}

#[test]
fn max_ejection_percent_changes_ejectable_hosts() {
    let s = sample();
    let (lo, hi) = s.feature_range(Feature::MaxEjectionPercent);
    assert_eq!(Study::max_ejectable(s.lab.hosts, lo as u32), 1);
    assert_eq!(Study::max_ejectable(s.lab.hosts, hi as u32), 2);
}
