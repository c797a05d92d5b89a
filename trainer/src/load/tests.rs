//! Tests against a tiny scripted HTTP/1.1 server on 127.0.0.1 (loopback only, bounded).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::gofmt::{fmt_g, go_duration, rfc3339_nano};
use super::histogram::{Histogram, DEFAULT_PERCENTILES};
use super::*;

/// What the scripted server answers to the k-th request it receives (k counted globally).
#[derive(Clone, Copy, Debug)]
enum Resp {
    /// 200 with Content-Length.
    Ok,
    /// 200, chunked body with a chunk extension and a trailer, written in two parts.
    Chunked,
    /// 503 with Content-Length.
    Unavailable,
    /// 200 with `Connection: close`, then the server closes.
    Close,
    /// Headers announce 100 bytes, 3 are sent, then the server closes.
    MidClose,
    /// A normal keep-alive 200, then the server silently closes (stale connection).
    SilentClose,
    /// 200 with a 100 KB Content-Length body (bigger than the client buffer).
    Big,
    /// 200 chunked with a 40 KB chunk.
    BigChunked,
    /// `100 Continue` interim response, then a 200.
    Interim,
    /// 204 without body.
    NoContent,
    /// 200 without length: body delimited by the close.
    UntilClose,
}

const MAX_SEEN: usize = 64;

struct TestServer {
    port: u16,
    served: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl TestServer {
    fn start(script: fn(usize) -> Resp) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, seen2, stop2) = (served.clone(), seen.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            let give_up = Instant::now() + Duration::from_secs(30);
            let mut handlers = Vec::new();
            while !stop2.load(Ordering::SeqCst) && Instant::now() < give_up {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s3, seen3) = (s2.clone(), seen2.clone());
                        handlers.push(std::thread::spawn(move || {
                            serve_conn(conn, script, &s3, &seen3)
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        TestServer {
            port,
            served,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_conn(
    mut conn: TcpStream,
    script: fn(usize) -> Resp,
    served: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        // Read one request head (GET, no body).
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match conn.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head: Vec<u8> = buf.drain(..head_end).collect();
        let k = served.fetch_add(1, Ordering::SeqCst);
        {
            let mut s = seen.lock().unwrap();
            if s.len() < MAX_SEEN {
                s.push(String::from_utf8_lossy(&head).into_owned());
            }
        }
        let (parts, keep_open) = response(script(k));
        let mut ok = true;
        for part in &parts {
            ok = ok && conn.write_all(part).is_ok();
        }
        if !(ok && keep_open) {
            let _ = conn.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// The bytes (possibly in several writes) the server sends for `r`, and whether it keeps the
/// connection open afterwards.
fn response(r: Resp) -> (Vec<Vec<u8>>, bool) {
    let one = |b: &[u8], keep: bool| (vec![b.to_vec()], keep);
    match r {
        Resp::Ok => one(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true),
        Resp::Chunked => (
            vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel".to_vec(),
                b"lo\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec(),
            ],
            true,
        ),
        Resp::Unavailable => one(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 19\r\n\r\nno healthy upstream",
            true,
        ),
        Resp::Close => one(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            false,
        ),
        Resp::MidClose => one(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", false),
        Resp::SilentClose => one(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false),
        Resp::Big => {
            let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
            r.extend(std::iter::repeat_n(b'x', 100_000));
            (vec![r], true)
        }
        Resp::BigChunked => {
            let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9c40\r\n".to_vec();
            r.extend(std::iter::repeat_n(b'y', 40_000));
            r.extend_from_slice(b"\r\n3\r\nend\r\n0\r\n\r\n");
            (vec![r], true)
        }
        Resp::Interim => one(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            true,
        ),
        Resp::NoContent => one(b"HTTP/1.1 204 No Content\r\n\r\n", true),
        Resp::UntilClose => one(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", false),
    }
}
fn mixed_script(k: usize) -> Resp {
    match k {
        5 => Resp::Close,
        k if k % 5 == 1 => Resp::Chunked,
        k if k % 5 == 3 => Resp::Unavailable,
        _ => Resp::Ok,
    }
}

fn spec_for(server: &TestServer, path: &str, threads: u32, calls: u32) -> LoadSpec {
    LoadSpec::from_url(&server.url(path), threads, calls).unwrap()
}

#[test]
fn load_exact_calls_codes_sockets_and_headers() {
    let server = TestServer::start(mixed_script);
    let mut spec = spec_for(&server, "/status/200?x=1", 3, 31);
    spec.headers
        .push(("x-sfr2l-run".to_string(), "abc123".to_string()));
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
        assert!(
            head.starts_with("GET /status/200?x=1 HTTP/1.1\r\n"),
            "{head:?}"
        );
        assert!(head.contains("\r\nHost: example.test:8080\r\n"), "{head:?}");
        assert!(
            head.contains("\r\nUser-Agent: sfr2l-load/0.1\r\n"),
            "{head:?}"
        );
        assert!(head.contains("\r\nx-sfr2l-run: abc123\r\n"), "{head:?}");
    }

    let text = r.fortio_text();
    let gomax = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
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
        assert!(
            text.lines().any(|l| l.starts_with(prefix)),
            "missing {prefix:?} in\n{text}"
        );
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
    assert!(j["RetCodes"]
        .as_object()
        .unwrap()
        .keys()
        .all(|k| k.parse::<i32>().is_ok()));
    assert_eq!(j["SocketCount"], 4);
    assert_eq!(
        j["Sockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    assert_eq!(j["HTTPReqTimeOut"], 3_000_000_000u64);
    assert!(j["ActualDuration"].is_u64());
    assert!(j["ActualQPS"].is_f64());
    assert_eq!(j["URL"], server.url("/status/200?x=1"));
    assert_eq!(j["Headers"]["X-Sfr2l-Run"][0], "abc123");
    assert!(j["StartTime"].as_str().unwrap().ends_with('Z'));
    let h = &j["DurationHistogram"];
    for key in [
        "Count",
        "Min",
        "Max",
        "Sum",
        "Avg",
        "StdDev",
        "Data",
        "Percentiles",
    ] {
        assert!(h.get(key).is_some(), "missing DurationHistogram.{key}");
    }
    assert_eq!(h["Count"], 31);
    let data = h["Data"].as_array().unwrap();
    assert!(!data.is_empty());
    for key in ["Start", "End", "Percent", "Count"] {
        assert!(data[0].get(key).is_some());
    }
    assert_eq!(
        data.iter()
            .map(|b| b["Count"].as_i64().unwrap())
            .sum::<i64>(),
        31
    );
    let ps: Vec<f64> = h["Percentiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Percentile"].as_f64().unwrap())
        .collect();
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
    assert!(
        r.fortio_text()
            .lines()
            .any(|l| l == "Code  -1 : 1 (25.0 %)"),
        "{}",
        r.fortio_text()
    );
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
        [
            Resp::Big,
            Resp::BigChunked,
            Resp::Interim,
            Resp::NoContent,
            Resp::Chunked,
            Resp::UntilClose,
            Resp::Ok,
        ][k % 7]
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
    let expected_total: usize = (0..7)
        .map(|k| response(script(k)).0.iter().map(Vec::len).sum::<usize>())
        .sum();
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
    assert!(
        r.elapsed() >= Duration::from_millis(180),
        "{:?}",
        r.elapsed()
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(r.calls(), 10);
    assert_eq!(r.thread_calls(), &[5, 5]);
    assert_eq!(r.fortio_json()["RequestedQPS"], "50");
    let text = r.fortio_text();
    assert!(
        text.contains("Starting at 50 qps with 2 thread(s)"),
        "{text}"
    );
    assert!(
        text.contains(": exactly 10, 5 calls each (total 10 + 0)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("Sleep times : count 8 ")),
        "{text}"
    );
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

#[test]
fn load_from_url_parsing_and_errors() {
    let s = LoadSpec::from_url("http://127.0.0.1:10000/status/200", 3, 30).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.path.as_str()),
        ("127.0.0.1", 10000, "/status/200")
    );
    assert_eq!(s.authority, "127.0.0.1:10000");
    assert_eq!((s.threads, s.calls, s.qps), (3, 30, 0.0));
    assert_eq!(s.timeout, Duration::from_secs(3));
    assert_eq!(s.duration, Duration::from_secs(5));
    assert!(s.connect_first);
    assert!(s.headers.is_empty());
    assert_eq!(s.url(), "http://127.0.0.1:10000/status/200");

    let s = LoadSpec::from_url("HTTP://localhost", 1, 1).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.path.as_str()),
        ("localhost", 80, "/")
    );
    let s = LoadSpec::from_url("http://[::1]:8080?q=1#frag", 1, 1).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.path.as_str()),
        ("::1", 8080, "/?q=1")
    );
    assert_eq!(s.url(), "http://[::1]:8080/?q=1");

    let err = |u: &str| LoadSpec::from_url(u, 1, 1).unwrap_err().to_string();
    assert!(
        err("ftp://host/").contains("expected http://host[:port]/path"),
        "{}",
        err("ftp://host/")
    );
    assert!(err("127.0.0.1:8080/x").contains("expected http://"));
    assert!(err("https://host/").contains("https is not supported"));
    assert!(err("http:///path").contains("missing host"));
    assert!(err("http://host:99999/").contains("invalid port \"99999\""));
    assert!(err("http://host:0/").contains("invalid port"));
    assert!(err("http://user@host/").contains("user info"));
    assert!(err("http://host/a b").contains("whitespace"));
    assert!(err("ftp://host/").starts_with("invalid URL \"ftp://host/\""));
    let e = LoadSpec::from_url("http://host/", 0, 1).unwrap_err();
    assert!(matches!(e, LoadError::InvalidSpec(_)));
    assert!(e.to_string().contains("threads"));

    let mut s = LoadSpec::from_url("http://127.0.0.1:1/", 1, 1).unwrap();
    s.headers.push(("bad header".to_string(), "v".to_string()));
    assert!(matches!(run(&s), Err(LoadError::InvalidSpec(_))));
    s.headers.clear();
    s.calls = 0;
    s.duration = Duration::ZERO;
    assert!(matches!(run(&s), Err(LoadError::InvalidSpec(_))));
}

#[test]
fn load_go_formatting_matches_fortio() {
    assert_eq!(fmt_g(0.000474314, None), "0.000474314");
    assert_eq!(fmt_g(6.4519e-05, None), "6.4519e-05");
    assert_eq!(fmt_g(1e6, None), "1e+06");
    assert_eq!(fmt_g(123456.0, None), "123456");
    assert_eq!(fmt_g(100.0, None), "100");
    assert_eq!(fmt_g(99.9, None), "99.9");
    assert_eq!(fmt_g(-0.5, None), "-0.5");
    assert_eq!(fmt_g(0.0, None), "0");
    assert_eq!(fmt_g(572.0345, Some(5)), "572.03");
    assert_eq!(fmt_g(0.0033139377, Some(8)), "0.0033139377");
    assert_eq!(fmt_g(0.066278755, Some(9)), "0.066278755");
    assert_eq!(fmt_g(100000000.0, Some(8)), "1e+08");
    assert_eq!(fmt_g(12345678.9, Some(8)), "12345679");
    assert_eq!(fmt_g(1200.0, Some(4)), "1200");
    assert_eq!(fmt_g(0.0011489999, Some(4)), "0.001149");
    assert_eq!(fmt_g(207.0, Some(8)), "207");
    assert_eq!(fmt_g(1.5e-7, Some(6)), "1.5e-07");
    assert_eq!(go_duration(Duration::from_nanos(34_963_125)), "34.963125ms");
    assert_eq!(
        go_duration(Duration::from_nanos(1_502_407_900)),
        "1.5024079s"
    );
    assert_eq!(go_duration(Duration::from_secs(5)), "5s");
    assert_eq!(go_duration(Duration::from_millis(150)), "150ms");
    assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(go_duration(Duration::from_secs(3661)), "1h1m1s");
    assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
    assert_eq!(go_duration(Duration::from_nanos(999)), "999ns");
    assert_eq!(go_duration(Duration::ZERO), "0s");
    assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(
        rfc3339_nano(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)),
        "2023-11-14T22:13:20.5Z"
    );
}

#[test]
fn load_histogram_matches_fortio_output() {
    // Reproduces a published fortio run: same buckets, percentages and percentile targets.
    let mut h = Histogram::new(0.0, 0.001);
    let mut values = vec![0.000474314, 0.0005, 0.0006, 0.0007, 0.0008, 0.0009, 0.00095];
    values.extend([0.0015; 3]);
    values.extend([0.0025; 3]);
    values.extend([0.0045; 2]);
    values.extend([0.0055; 2]);
    values.extend([0.0075, 0.017, 0.04968864]);
    for v in values {
        h.record(v);
    }
    let text = h
        .export()
        .with_percentiles(&DEFAULT_PERCENTILES)
        .print("Aggregated Function Time");
    let expected = "\
# range, mid point, percentile, count
>= 0.000474314 <= 0.001 , 0.000737157 , 35.00, 7
> 0.001 <= 0.002 , 0.0015 , 50.00, 3
> 0.002 <= 0.003 , 0.0025 , 65.00, 3
> 0.004 <= 0.005 , 0.0045 , 75.00, 2
> 0.005 <= 0.006 , 0.0055 , 85.00, 2
> 0.007 <= 0.008 , 0.0075 , 90.00, 1
> 0.016 <= 0.018 , 0.017 , 95.00, 1
> 0.045 <= 0.0496886 , 0.0473443 , 100.00, 1
# target 50% 0.002
# target 75% 0.005
# target 90% 0.008
# target 99% 0.0487509
# target 99.9% 0.0495949
";
    assert!(
        text.starts_with("Aggregated Function Time : count 20 avg "),
        "{text}"
    );
    assert!(text.ends_with(expected), "{text}");
    // Values exactly on a boundary belong to the lower bucket; the extremes use min/max.
    let mut h = Histogram::new(0.0, 1.0);
    for v in [10.0, 20.0, 30.0] {
        h.record(v);
    }
    let d = h.export().with_percentiles(&[50.0, 100.0]);
    assert_eq!(d.data.len(), 3);
    assert_eq!((d.data[1].start, d.data[1].end), (18.0, 20.0));
    assert_eq!(d.percentile(50.0), Some(19.0));
    assert_eq!(d.percentile(100.0), Some(30.0));
    assert_eq!(
        Histogram::new(0.0, 0.001).export().print("Error cases"),
        "Error cases : no data\n"
    );
    assert!(Histogram::new(0.0, 0.001).export().to_json()["Data"].is_null());
}
