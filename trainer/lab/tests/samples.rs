//! Istio's own sample rules (Bookinfo, `data/bookinfo/`) read as a user brings them: every file,
//! aimed at every host it names, reads whole or is refused for a stated reason.

#![cfg(test)] // clippy treats the helpers as test code (unwrap allowed)

use sfr2l_lab::destination_rule::{parse_for, Aim, UNLIMITED};
use std::path::Path;

fn sample(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bookinfo").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn aim<'a>(host: &'a str, port: u16, subset: Option<&'a str>) -> Aim<'a> {
    Aim { host: Some(host), port: Some(port), subset }
}

#[test]
fn every_bookinfo_rule_reads_for_every_host_it_names() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bookinfo");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut read = 0;
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        for host in ["productpage", "reviews", "ratings", "details", "www.googleapis.com"] {
            for port in [80, 443, 9080] {
                match parse_for(&text, &name, aim(host, port, None)) {
                    Ok(r) => {
                        read += 1;
                        // Bookinfo's rules set no pool or ejection: istiod's defaults.
                        assert_eq!(r.rule.max_connections, UNLIMITED, "{name} {host}");
                    }
                    Err(e) => {
                        let e = format!("{e:#}");
                        let why_ok = e.contains("no DestinationRule for host")
                            || e.contains("found no DestinationRule")
                            || (name.starts_with("egress") && port == 443 && e.contains("mode: SIMPLE originates TLS"));
                        assert!(why_ok, "{name} for {host}:{port}: {e}");
                    }
                }
            }
        }
    }
    assert!(read >= 30, "{read} reads");
}

#[test]
fn bookinfo_all_rules_pick_the_target_host_and_subset() {
    let text = sample("destination-rule-all.yaml");
    let r = parse_for(&text, "all.yaml", aim("reviews", 9080, None)).unwrap();
    assert_eq!(
        r.kept,
        [
            "document 1 (line 1) (DestinationRule productpage: host productpage, not the target: not read)",
            "document 3 (line 29) (DestinationRule ratings: host ratings, not the target: not read)",
            "document 4 (line 49) (DestinationRule details: host details, not the target: not read)",
            "document 2 (line 12) spec.subsets",
        ]
    );
    let v2 = parse_for(&text, "all.yaml", aim("reviews", 9080, Some("v2"))).unwrap();
    assert_eq!(
        v2.kept[3..],
        [
            "document 2 (line 12) spec.subsets[0] (subset v1: not the target)",
            "document 2 (line 12) spec.subsets[2] (subset v3: not the target)"
        ]
    );
    let e = format!("{:#}", parse_for(&text, "all.yaml", aim("reviews", 9080, Some("v9"))).unwrap_err());
    assert_eq!(e, "all.yaml: no subset \"v9\" in the target's DestinationRule (it has v1, v2, v3)");
    // The mTLS variant: ISTIO_MUTUAL is listed (the lab speaks plaintext), not dropped.
    let m =
        parse_for(&sample("destination-rule-all-mtls.yaml"), "mtls.yaml", aim("reviews", 9080, Some("v1"))).unwrap();
    assert_eq!(
        m.kept.last().unwrap(),
        "document 2 (line 15) spec.trafficPolicy.tls.mode: ISTIO_MUTUAL (Istio's auto mTLS): the lab's sidecars speak plaintext"
    );
    // RANDOM balancing is rendered as istiod renders it, not listed.
    let lb = parse_for(&sample("destination-rule-reviews.yaml"), "r.yaml", aim("reviews", 9080, None)).unwrap();
    assert_eq!(lb.cluster.lb_policy, Some("RANDOM"));
    assert!(!lb.kept.iter().any(|k| k.contains("loadBalancer")), "{:?}", lb.kept);
    // VirtualServices for the target: every route field kept and listed; others not read.
    let vs = format!("{text}---\n{}", sample("virtual-service-reviews-jason-v2-v3.yaml"));
    let r = parse_for(&vs, "vs.yaml", aim("reviews", 9080, None)).unwrap();
    let listed: Vec<&String> = r.kept.iter().filter(|k| k.contains("VirtualService reviews:")).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed[0].ends_with("spec.http[0].match") && listed[2].ends_with("spec.http[1].route"), "{listed:?}");
}
