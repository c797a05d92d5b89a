//! URL and flag parsing, Go-style formatting and histograms, compared with fortio output.

use std::time::{Duration, UNIX_EPOCH};

use super::super::gofmt::{fmt_g, go_duration, rfc3339_nano};
use super::super::histogram::{Histogram, DEFAULT_PERCENTILES};
use super::super::*;

#[test]
fn load_from_url_parsing_and_errors() {
    let s = LoadSpec::from_url("http://127.0.0.1:10000/status/200", 3, 30).unwrap();
    assert_eq!((s.host.as_str(), s.port, s.path.as_str()), ("127.0.0.1", 10000, "/status/200"));
    assert_eq!(s.authority, "127.0.0.1:10000");
    assert_eq!((s.threads, s.calls, s.qps), (3, 30, 0.0));
    assert_eq!(s.timeout, Duration::from_secs(3));
    assert_eq!(s.duration, Duration::from_secs(5));
    assert!(s.connect_first);
    assert!(s.headers.is_empty());
    assert_eq!(s.url(), "http://127.0.0.1:10000/status/200");

    let s = LoadSpec::from_url("HTTP://localhost", 1, 1).unwrap();
    assert_eq!((s.host.as_str(), s.port, s.path.as_str()), ("localhost", 80, "/"));
    let s = LoadSpec::from_url("http://[::1]:8080?q=1#frag", 1, 1).unwrap();
    assert_eq!((s.host.as_str(), s.port, s.path.as_str()), ("::1", 8080, "/?q=1"));
    assert_eq!(s.url(), "http://[::1]:8080/?q=1");

    let err = |u: &str| LoadSpec::from_url(u, 1, 1).unwrap_err().to_string();
    assert!(err("ftp://host/").contains("expected http://host[:port]/path"), "{}", err("ftp://host/"));
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
    assert_eq!(go_duration(Duration::from_nanos(1_502_407_900)), "1.5024079s");
    assert_eq!(go_duration(Duration::from_secs(5)), "5s");
    assert_eq!(go_duration(Duration::from_millis(150)), "150ms");
    assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(go_duration(Duration::from_secs(3661)), "1h1m1s");
    assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
    assert_eq!(go_duration(Duration::from_nanos(999)), "999ns");
    assert_eq!(go_duration(Duration::ZERO), "0s");
    assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_nano(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)), "2023-11-14T22:13:20.5Z");
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
    let text = h.export().with_percentiles(&DEFAULT_PERCENTILES).print("Aggregated Function Time");
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
    assert!(text.starts_with("Aggregated Function Time : count 20 avg "), "{text}");
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
    assert_eq!(Histogram::new(0.0, 0.001).export().print("Error cases"), "Error cases : no data\n");
    assert!(Histogram::new(0.0, 0.001).export().to_json()["Data"].is_null());
}
