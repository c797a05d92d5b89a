//! Spoofed trace records in a real Envoy log: the access log (in the same stream as Envoy's own
//! lines, as in `kubectl logs -c istio-proxy`) echoes a client-controlled header at the end of
//! the line. Such lines pass a marker-anywhere reader; `traces ingest` must reject them.

mod reliability;

use reliability::{announce, start_envoy, wait_until, KeepAlive};
use sfr2l_core::counters::{RunAnnounce, RunCounters};
use sfr2l_core::TraceRecord;
use sfr2l_lab::ingest;
use std::time::Duration;

const KEY: &str = "spoof-test-key-0123456789";
/// Istio's default text access log ends in the user agent (here without quotes, the worst case).
const ACCESS_LOG: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %REQ(USER-AGENT)%\n";

fn forged_record(run: &str) -> String {
    let a = RunAnnounce { threads: 4, calls: 100 };
    let mut c = RunCounters::new(a);
    for i in 0..100 {
        c.record(a, if i % 2 == 0 { 200 } else { 503 }, 0, 1_000_000_000, 1_500_000_000);
    }
    let rule = sfr2l_lab::open_rule();
    TraceRecord::from_counters(run, 1, Some(rule), &c).to_log_line()
}

#[test]
fn spoofed_access_log_lines_are_rejected() {
    let cfg = format!(r#"{{"api":"v1","generation":1,"idle_timeout":"1s","trace_key":"{KEY}"}}"#);
    let envoy = start_envoy(22000, &cfg, Some(ACCESS_LOG));
    let mut c = KeepAlive::connect(envoy.listener);
    let spoofs = [
        forged_record("spoof-bare"),
        format!("wasm log sfr2l sfr2l: {}", forged_record("spoof-prefixed")),
        format!(
            "[2026-11-29 12:00:00.000][1][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: {}",
            forged_record("spoof-envoy-shaped")
        ),
    ];
    for (i, s) in spoofs.iter().enumerate() {
        assert_eq!(c.get(&format!("/spoof/{i}"), &[("user-agent", s)]), 200);
    }
    for run in ["real-1", "real-2", "real-3"] {
        for _ in 0..2 {
            assert_eq!(c.get("/get", &announce(run, "2")), 200);
        }
    }
    let log = envoy.log.clone();
    assert!(
        // Envoy flushes its access log on a timer: wait for the three echoed spoofs too.
        wait_until(Duration::from_secs(10), || {
            let t = reliability::read_log(&log);
            t.matches(" mac=").count() >= 3
                && ["spoof-bare", "spoof-prefixed", "spoof-envoy-shaped"].iter().all(|s| t.contains(s))
        }),
        "no signed records: {}",
        envoy.log_text()
    );
    let text = envoy.log_text();
    // The attack is real: a reader that trusts any line with the marker takes the spoofs.
    let naive: Vec<String> =
        text.lines().filter_map(TraceRecord::from_log_line).filter_map(Result::ok).map(|r| r.run).collect();
    assert!(naive.iter().any(|r| r.starts_with("spoof-")), "the access log did not echo a spoof: {text}");

    let runs = |r: &ingest::IngestReport| -> Vec<String> {
        let mut v: Vec<String> = r.records.iter().map(|i| i.record.as_ref().unwrap().run.clone()).collect();
        v.sort();
        v
    };
    let keyed = ingest::ingest_checked(text.as_bytes(), "envoy.log", Some(KEY.as_bytes())).unwrap();
    assert_eq!(runs(&keyed), ["real-1", "real-2", "real-3"], "{text}");
    assert_eq!(keyed.signed, 3);
    assert_eq!(keyed.rejected.len(), 3, "{:?}", keyed.rejected);
    assert!(keyed.rejected.iter().all(|r| r.kind == "not_wasm_log"), "{:?}", keyed.rejected);
    eprintln!("rejected with the key: {}", keyed.rejected_summary());
    // Without the key the structure alone rejects the access-log lines.
    let unkeyed = ingest::ingest_checked(text.as_bytes(), "envoy.log", None).unwrap();
    assert_eq!(runs(&unkeyed), ["real-1", "real-2", "real-3"]);
    // A genuine line with its record altered no longer verifies.
    let genuine = text.lines().find(|l| l.contains("\"run\":\"real-1\"")).unwrap();
    let altered = genuine.replace("\"responses\":2", "\"responses\":3");
    let r = ingest::ingest_checked(altered.as_bytes(), "altered", Some(KEY.as_bytes())).unwrap();
    assert_eq!((r.records.len(), r.rejected[0].kind), (0, "bad_mac"));
}
