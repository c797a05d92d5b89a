//! Live load runs against the scripted server: exact counts, errors, pacing, modes.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::super::histogram::DEFAULT_PERCENTILES;
use super::super::*;
use super::server::*;

#[test]
fn load_exact_calls_codes_sockets_and_headers() {
    let server = TestServer::start(mixed_script);
    let mut spec = spec_for(&server, "/status/200?x=1", 3, 31);
    spec.headers.push(("x-sfr2l-run".to_string(), "abc123".to_string()));
    spec.authority = "example.test:8080".to_string();
    let r = run(&spec).unwrap();

    // k = 0..30: 503 for k%5==3 (6 of them), everything else 200 (incl. 6 chunked, 1 close).
    let expected: BTreeMap<i32, u64> = [(200, 25), (503, 6)].into_iter().collect();
    assert_eq!(r.ret_codes(), &expected);
    assert_eq!(r.calls(), 31);
    assert_eq!(server.served(), 31);
    assert_eq!(r.thread_calls(), &[11, 10, 10]);
    assert_eq!(r.num_threads(), 3);
    // 3 initial connections + 1 reconnect after `Connection: close`.
    assert_eq!(r.sockets(), 4);
    assert_eq!(r.sockets_per_thread().len(), 3);
    assert_eq!(r.error_calls(), 6);
    assert!(r.actual_qps() > 0.0);
    assert!(r.elapsed() > Duration::ZERO);
    let p50 = r.latency_percentile(50.0).unwrap();
    let p999 = r.latency_percentile(99.9).unwrap();
    assert!(p50 > 0.0 && p50 <= p999);

    let seen = server.seen();
    assert_eq!(seen.len(), 31);
    for head in &seen {
        assert!(head.starts_with("GET /status/200?x=1 HTTP/1.1\r\n"), "{head:?}");
        assert!(head.contains("\r\nHost: example.test:8080\r\n"), "{head:?}");
        assert!(head.contains("\r\nUser-Agent: sfr2l-load/0.1\r\n"), "{head:?}");
        assert!(head.contains("\r\nx-sfr2l-run: abc123\r\n"), "{head:?}");
    }

    let text = r.fortio_text();
    let gomax = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    for line in [
        format!("Starting at max qps with 3 thread(s) [gomax {gomax}] for exactly 31 calls (10 per thread + 1)"),
        "Sockets used: 4 (for perfect keepalive, would be 3)".to_string(),
        "Code 200 : 25 (80.6 %)".to_string(),
        "Code 503 : 6 (19.4 %)".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    for prefix in [
        "Ended after ",
        "Aggregated Function Time : count 31 avg ",
        "Error cases : count 6 avg ",
        "# target 50% ",
        "# target 75% ",
        "# target 90% ",
        "# target 99% ",
        "# target 99.9% ",
        "All done 31 calls (plus 0 warmup) ",
    ] {
        assert!(text.lines().any(|l| l.starts_with(prefix)), "missing {prefix:?} in\n{text}");
    }

    let j = r.fortio_json();
    for key in [
        "RunType",
        "Labels",
        "StartTime",
        "RequestedQPS",
        "RequestedDuration",
        "ActualQPS",
        "ActualDuration",
        "NumThreads",
        "Exactly",
        "Jitter",
        "Uniform",
        "NoCatchUp",
        "DurationHistogram",
        "ErrorsDurationHistogram",
        "RetCodes",
        "Sockets",
        "SocketCount",
        "URL",
        "NumConnections",
        "HTTPReqTimeOut",
        "DisableKeepAlive",
        "Headers",
    ] {
        assert!(j.get(key).is_some(), "missing {key} in {j}");
    }
    assert_eq!(j["RunType"], "HTTP");
    assert_eq!(j["RequestedQPS"], "max");
    assert_eq!(j["RequestedDuration"], "exactly 31 calls");
    assert_eq!(j["NumThreads"], 3);
    assert_eq!(j["Exactly"], 31);
    assert_eq!(j["Jitter"], false);
    assert_eq!(j["DisableKeepAlive"], false);
    assert_eq!(j["RetCodes"]["200"], 25);
    assert_eq!(j["RetCodes"]["503"], 6);
    assert!(j["RetCodes"].as_object().unwrap().keys().all(|k| k.parse::<i32>().is_ok()));
    assert_eq!(j["SocketCount"], 4);
    assert_eq!(j["Sockets"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 4);
    assert_eq!(j["HTTPReqTimeOut"], 3_000_000_000u64);
    assert!(j["ActualDuration"].is_u64());
    assert!(j["ActualQPS"].is_f64());
    assert_eq!(j["URL"], server.url("/status/200?x=1"));
    assert_eq!(j["Headers"]["X-Sfr2l-Run"][0], "abc123");
    assert!(j["StartTime"].as_str().unwrap().ends_with('Z'));
    let h = &j["DurationHistogram"];
    for key in ["Count", "Min", "Max", "Sum", "Avg", "StdDev", "Data", "Percentiles"] {
        assert!(h.get(key).is_some(), "missing DurationHistogram.{key}");
    }
    assert_eq!(h["Count"], 31);
    let data = h["Data"].as_array().unwrap();
    assert!(!data.is_empty());
    for key in ["Start", "End", "Percent", "Count"] {
        assert!(data[0].get(key).is_some());
    }
    assert_eq!(data.iter().map(|b| b["Count"].as_i64().unwrap()).sum::<i64>(), 31);
    let ps: Vec<f64> = h["Percentiles"].as_array().unwrap().iter().map(|p| p["Percentile"].as_f64().unwrap()).collect();
    assert_eq!(ps, DEFAULT_PERCENTILES.to_vec());
    assert_eq!(j["ErrorsDurationHistogram"]["Count"], 6);
}

#[test]
fn load_socket_error_mid_response_counts_minus_one() {
    let server = TestServer::start(|k| if k == 1 { Resp::MidClose } else { Resp::Ok });
    let r = run(&spec_for(&server, "/", 1, 4)).unwrap();
    let expected: BTreeMap<i32, u64> = [(-1, 1), (200, 3)].into_iter().collect();
    assert_eq!(r.ret_codes(), &expected);
    // No retry once response bytes were received: 4 requests reached the server.
    assert_eq!(server.served(), 4);
    assert_eq!(r.sockets(), 2);
    assert_eq!(r.error_calls(), 1);
    assert!(r.fortio_text().lines().any(|l| l == "Code  -1 : 1 (25.0 %)"), "{}", r.fortio_text());
    assert_eq!(r.fortio_json()["RetCodes"]["-1"], 1);
}

#[test]
fn load_stale_keepalive_connection_is_retried_once() {
    let server = TestServer::start(|k| if k == 1 { Resp::SilentClose } else { Resp::Ok });
    let r = run(&spec_for(&server, "/", 1, 4)).unwrap();
    let expected: BTreeMap<i32, u64> = [(200, 4)].into_iter().collect();
    assert_eq!(r.ret_codes(), &expected);
    assert_eq!(server.served(), 4);
    assert_eq!(r.sockets(), 2);
}

#[test]
fn load_body_framings_are_parsed() {
    fn script(k: usize) -> Resp {
        [Resp::Big, Resp::BigChunked, Resp::Interim, Resp::NoContent, Resp::Chunked, Resp::UntilClose, Resp::Ok][k % 7]
    }
    let server = TestServer::start(script);
    let r = run(&spec_for(&server, "/", 1, 7)).unwrap();
    let expected: BTreeMap<i32, u64> = [(200, 6), (204, 1)].into_iter().collect();
    assert_eq!(r.ret_codes(), &expected);
    assert_eq!(server.served(), 7);
    // The body delimited by close forces one reconnect.
    assert_eq!(r.sockets(), 2);
    // Total bytes: every body was consumed to its end.
    let sizes = &r.fortio_json()["Sizes"];
    let expected_total: usize = (0..7).map(|k| response(script(k)).0.iter().map(Vec::len).sum::<usize>()).sum();
    assert_eq!(sizes["Sum"].as_f64().unwrap() as usize, expected_total);
}

#[test]
fn load_qps_pacing() {
    let server = TestServer::start(|_| Resp::Ok);
    let mut spec = spec_for(&server, "/", 2, 10);
    spec.qps = 50.0;
    let t0 = Instant::now();
    let r = run(&spec).unwrap();
    // 25 qps per thread, 5 calls each: fortio schedules the last one at 5/25 = 200ms.
    assert!(r.elapsed() >= Duration::from_millis(180), "{:?}", r.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(r.calls(), 10);
    assert_eq!(r.thread_calls(), &[5, 5]);
    assert_eq!(r.fortio_json()["RequestedQPS"], "50");
    let text = r.fortio_text();
    assert!(text.contains("Starting at 50 qps with 2 thread(s)"), "{text}");
    assert!(text.contains(": exactly 10, 5 calls each (total 10 + 0)"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("Sleep times : count 8 ")), "{text}");
}

#[test]
fn load_qps_mode_lowers_threads_like_fortio() {
    let server = TestServer::start(|_| Resp::Ok);
    let mut spec = spec_for(&server, "/", 4, 3);
    spec.qps = 1000.0;
    let r = run(&spec).unwrap();
    assert_eq!(r.num_threads(), 1);
    assert_eq!(r.calls(), 3);
    assert_eq!(r.sockets(), 1);
}

#[test]
fn load_more_threads_than_calls_at_max_qps() {
    let server = TestServer::start(|_| Resp::Ok);
    let r = run(&spec_for(&server, "/", 4, 2)).unwrap();
    assert_eq!(r.calls(), 2);
    assert_eq!(r.thread_calls(), &[2, 0, 0, 0]);
    assert_eq!(server.served(), 2);
    // All connections are opened before the clock starts.
    assert_eq!(r.sockets(), 4);
}

#[test]
fn load_duration_mode() {
    let server = TestServer::start(|_| Resp::Ok);
    let mut spec = spec_for(&server, "/", 2, 0);
    spec.duration = Duration::from_millis(150);
    let r = run(&spec).unwrap();
    assert!(r.elapsed() >= Duration::from_millis(150));
    assert!(r.elapsed() < Duration::from_secs(3));
    assert!(r.calls() >= 2);
    assert_eq!(r.ret_codes().keys().copied().collect::<Vec<_>>(), vec![200]);
    assert_eq!(r.calls() as usize, server.served());
    assert_eq!(r.sockets(), 2);
    let j = r.fortio_json();
    assert_eq!(j["RequestedDuration"], "150ms");
    assert_eq!(j["Exactly"], 0);
}

#[test]
fn load_connection_refused_names_host_port() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let spec = LoadSpec::from_url(&format!("http://127.0.0.1:{port}/"), 2, 4).unwrap();
    let err = run(&spec).unwrap_err();
    assert!(matches!(err, LoadError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.starts_with("cannot connect to"), "{msg}");
}
