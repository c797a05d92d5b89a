use super::*;
use std::net::SocketAddr;

const APP: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 20003);

#[test]
fn cluster_follows_istiod() {
    let p = sfr2l_files::study::find("s3").unwrap().study;
    let (rule, _) = p.draw(&[0.5; sfr2l_core::N_FEATURES]);
    let c = client_cds(&Ports::from_base(20000), &p.lab, &rule, 4, "outbound|8000||httpbin.default.svc.cluster.local");
    let cl = &c["resources"][0];
    assert_eq!(c["version_info"], "cds-4");
    assert_eq!(cl["outlier_detection"]["base_ejection_time"], "180s");
    assert_eq!(cl["outlier_detection"]["interval"], "1s");
    assert_eq!(cl["outlier_detection"]["consecutive_5xx"], rule.consecutive_5xx_errors);
    assert_eq!(cl["lb_policy"], "LEAST_REQUEST");
    assert_eq!(cl["common_lb_config"]["healthy_panic_threshold"]["value"], 0);
    assert_eq!(cl["load_assignment"]["endpoints"][0]["lb_endpoints"].as_array().unwrap().len(), p.lab.hosts as usize);
    assert_eq!(
        cl["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            ["common_http_protocol_options"]["max_requests_per_connection"],
        rule.max_requests_per_connection
    );
}

/// A rule's connect timeout and balancer on the cluster, as istiod writes them
/// (cluster_traffic_policy.go:177-178, :309-311, :362-395 at istio/istio@86c9f01f).
#[test]
fn connect_timeout_and_balancer_follow_istiod() {
    let p = sfr2l_files::study::find("s1").unwrap().study;
    let (rule, _) = p.draw(&[0.5; sfr2l_core::N_FEATURES]);
    let ports = Ports::from_base(20000);
    let c = |s: &ClusterSettings| client_cds_with(&ports, &p.lab, &rule, s, 1, "x")["resources"][0].clone();
    let d = c(&ClusterSettings::default());
    assert_eq!((d["connect_timeout"].as_str(), d["lb_policy"].as_str()), (Some("10s"), Some("LEAST_REQUEST")));
    let s = ClusterSettings {
        connect_timeout: Some(sfr2l_core::IstioDuration::from_secs(0.25)),
        lb_policy: Some("ROUND_ROBIN"),
    };
    let d = c(&s);
    assert_eq!((d["connect_timeout"].as_str(), d["lb_policy"].as_str()), (Some("0.25s"), Some("ROUND_ROBIN")));
}

#[test]
fn only_bad_hosts_fail() {
    let hcm = |l: &Value| l["filter_chains"][0]["filters"][0]["typed_config"].clone();
    // S1: the fault filter aborts.
    let p = sfr2l_files::study::find("s1").unwrap().study;
    let u = upstream_static(&Ports::from_base(20000), &p.lab, APP);
    let ls = u["static_resources"]["listeners"].as_array().unwrap();
    let aborts = ls.iter().filter(|l| !hcm(l)["http_filters"][0]["typed_config"]["abort"].is_null()).count();
    assert_eq!(aborts as u32, p.lab.bad_hosts);
    // The app serves the request, then the bad hosts' sidecars answer 503 in its place.
    let mut p = sfr2l_files::study::find("s3").unwrap().study;
    p.lab.bad_mode = BadMode::App503;
    p.lab.bad_abort_percent = 80.0;
    let u = upstream_static(&Ports::from_base(20000), &p.lab, APP);
    let ls = u["static_resources"]["listeners"].as_array().unwrap();
    let lua: Vec<String> = ls
        .iter()
        .filter_map(|l| {
            let filters = hcm(l)["http_filters"].as_array().unwrap().clone();
            let f = filters.iter().find(|f| f["name"] == "envoy.filters.http.lua")?;
            Some(f["typed_config"]["default_source_code"]["inline_string"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(lua.len() as u32, p.lab.bad_hosts);
    assert!(lua[0].contains("math.random() * 100 < 80 then"), "{}", lua[0]);
    assert!(ls
        .iter()
        .all(|l| hcm(l)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["regex_rewrite"].is_null()));
    assert!(ls.iter().all(|l| hcm(l)["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["typed_config"]["abort"].is_null())));
}

#[test]
fn quotas_sit_on_the_right_hosts() {
    let hcm = |l: &Value| l["filter_chains"][0]["filters"][0]["typed_config"].clone();
    let p = sfr2l_files::study::find("s2").unwrap().study;
    let u = upstream_static(&Ports::from_base(20000), &p.lab, APP);
    let ls = u["static_resources"]["listeners"].as_array().unwrap();
    let names = |l: &Value| -> Vec<String> {
        hcm(l)["http_filters"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
    };
    // host 0: per-connection budget, then the per-client quota; host 1: the quota only.
    assert_eq!(names(&ls[0]).iter().filter(|n| n.ends_with("local_ratelimit")).count(), 2);
    assert_eq!(names(&ls[1]).iter().filter(|n| n.ends_with("local_ratelimit")).count(), 1);
    let conn = &hcm(&ls[0])["http_filters"][0]["typed_config"];
    assert_eq!(conn["local_rate_limit_per_downstream_connection"], true);
    assert_eq!(conn["token_bucket"]["max_tokens"], 5);
    let client = &hcm(&ls[1])["http_filters"][0]["typed_config"];
    assert_eq!(client["status"]["code"], "ServiceUnavailable");
    assert_eq!(client["rate_limits"][0]["actions"][0]["request_headers"]["header_name"], "x-sfr2l-run");
    assert_eq!(client["descriptors"][0]["token_bucket"]["max_tokens"], 80);
    // refill in 50 ms steps: 10/s -> 1 token every 0.1 s
    let q = Quota { hosts: 1, tokens: 12, refill_per_s: 10 };
    assert_eq!(bucket(&q)["fill_interval"], "0.100s");
    assert_eq!(bucket(&Quota { hosts: 1, tokens: 3, refill_per_s: 100 })["tokens_per_fill"], 5);
}
