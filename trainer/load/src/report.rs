//! fortio's text report and result JSON for a `LoadResult`.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};

use super::gofmt::{canonical_header_key, fmt_g, go_duration, rfc3339_nano};
use super::LoadResult;

/// What fortio prints (at its default log level) for `fortio load ...`.
pub(crate) fn text(r: &LoadResult) -> String {
    let mut out = String::with_capacity(4096);
    let what = if r.exactly > 0 { format!("{} calls", r.exactly) } else { go_duration(r.duration) };
    let _ = writeln!(
        out,
        "Fortio {} running at {} queries per second, {}->{} procs, for {}: {}",
        super::USER_AGENT,
        fmt_g(r.qps, None),
        r.gomax,
        r.gomax,
        what,
        r.url
    );
    out.push_str(&r.start_line);
    out.push('\n');
    let count = r.duration_hist.count;
    let _ = writeln!(
        out,
        "Ended after {} : {} calls. qps={}",
        go_duration(r.elapsed),
        count,
        fmt_g(r.actual_qps(), Some(5))
    );
    if let Some(sleep) = &r.sleep {
        let c = &sleep.counter;
        let negative = if c.count > 0 { 100.0 * f64::from(sleep.first_bucket_count()) / c.count as f64 } else { 0.0 };
        if negative > 5.0 {
            out.push_str(&sleep.export().with_percentiles(&[50.0]).print("Aggregated Sleep Time"));
            let _ = writeln!(out, "WARNING {negative:.2}% of sleep were falling behind");
        } else {
            out.push_str(&c.print("Sleep times"));
        }
    }
    out.push_str(&r.duration_hist.print("Aggregated Function Time"));
    out.push_str(&r.errors_hist.print("Error cases"));
    out.push_str("# Socket and IP used for each connection:\n");
    for (i, (n, c)) in r.sockets.iter().zip(&r.conn_per_thread).enumerate() {
        let _ = writeln!(
            out,
            "[{i}] {n:>3} socket used, resolved to {}, connection timing : {}",
            r.resolved,
            c.stats_text()
        );
    }
    out.push_str(&r.conn_hist.counter.print("Connection time (s)"));
    let _ = writeln!(out, "Sockets used: {} (for perfect keepalive, would be {})", r.sockets(), r.num_threads);
    out.push_str("Uniform: false, Jitter: false, Catchup allowed: true\n");
    out.push_str("IP addresses distribution:\n");
    let _ = writeln!(out, "{}: {}", r.resolved, r.sockets());
    let total = count as f64;
    for (code, n) in &r.ret_codes {
        let _ = writeln!(out, "Code {code:>3} : {n} ({:.1} %)", 100.0 * *n as f64 / total);
    }
    out.push_str(&r.header_sizes.counter.print("Response Header Sizes"));
    out.push_str(&r.sizes.counter.print("Response Body/Total Sizes"));
    let _ = writeln!(
        out,
        "All done {} calls (plus 0 warmup) {:.3} ms avg, {:.1} qps",
        count,
        1000.0 * r.duration_hist.avg,
        r.actual_qps()
    );
    out
}

/// fortio's `HTTPRunnerResults` JSON (the fields a fortio consumer reads).
pub(crate) fn json(r: &LoadResult) -> Value {
    let ret_codes: Map<String, Value> = r.ret_codes.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
    let mut headers = Map::new();
    let mut add_header = |k: &str, v: &str| {
        let key = canonical_header_key(k);
        match headers.get_mut(&key) {
            Some(Value::Array(a)) => a.push(Value::from(v)),
            _ => {
                headers.insert(key, json!([v]));
            }
        }
    };
    add_header("Host", &r.authority);
    add_header("User-Agent", super::USER_AGENT);
    for (k, v) in &r.headers {
        add_header(k, v);
    }
    let elapsed_ns = u64::try_from(r.elapsed.as_nanos()).unwrap_or(u64::MAX);
    let timeout_ns = u64::try_from(r.timeout.as_nanos()).unwrap_or(u64::MAX);
    let mut ip_count = Map::new();
    ip_count.insert(r.resolved.clone(), Value::from(r.sockets()));
    json!({
        "RunType": "HTTP",
        "Labels": "",
        "StartTime": rfc3339_nano(r.start_time),
        "RequestedQPS": r.requested_qps,
        "RequestedDuration": r.requested_duration,
        "ActualQPS": r.actual_qps(),
        "ActualDuration": elapsed_ns,
        "NumThreads": r.num_threads,
        "Version": super::USER_AGENT,
        "DurationHistogram": r.duration_hist.to_json(),
        "ErrorsDurationHistogram": r.errors_hist.to_json(),
        "Exactly": r.exactly,
        "Jitter": false,
        "Uniform": false,
        "NoCatchUp": false,
        "RunID": 0,
        "AccessLoggerInfo": "",
        "ID": run_id(r),
        "RetCodes": ret_codes,
        "IPCountMap": ip_count,
        "Sizes": r.sizes.export().to_json(),
        "HeaderSizes": r.header_sizes.export().to_json(),
        "URL": r.url,
        "NumConnections": 1,
        "Compression": false,
        "DisableFastClient": false,
        "HTTP10": false,
        "DisableKeepAlive": false,
        "AllowHalfClose": false,
        "Insecure": false,
        "FollowRedirects": false,
        "HTTPReqTimeOut": timeout_ns,
        "Headers": headers,
        "Sockets": r.sockets,
        "SocketCount": r.sockets(),
        "ConnectionStats": r.conn_hist.export().with_percentiles(&super::DEFAULT_PERCENTILES).to_json(),
        "AbortOn": 0,
    })
}

/// fortio's result ID: `YYYY-MM-DD-HHmmSS` of the start time (UTC here).
fn run_id(r: &LoadResult) -> String {
    let secs = r.start_time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let ts = rfc3339_nano(UNIX_EPOCH + std::time::Duration::from_secs(secs));
    // "YYYY-MM-DDTHH:MM:SSZ" -> "YYYY-MM-DD-HHMMSS"
    let (date, time) = ts.split_once('T').unwrap_or((ts.as_str(), ""));
    let hms: String = time.chars().filter(char::is_ascii_digit).collect();
    format!("{date}-{hms}")
}
