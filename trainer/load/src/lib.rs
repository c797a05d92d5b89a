//! A fortio-compatible HTTP/1.1 load generator (`fortio load -c THREADS -n CALLS -qps QPS URL`).
//!
//! * One OS thread per connection ("thread" in fortio's words), one persistent keep-alive
//!   `TcpStream` per thread, the request bytes built once per thread, one reusable read buffer.
//! * Same call distribution as fortio: with `-n N -c C` every thread does `N / C` calls and
//!   thread 0 also does the `N % C` left over; with `-qps Q` every thread is paced at `Q / C`
//!   using fortio's schedule; with `-n 0` every thread runs until the duration is over.
//! * Same statistics as fortio: latency histogram with fortio's buckets and percentile
//!   interpolation, a separate histogram for non-OK calls, return codes (`-1` = socket error),
//!   sockets used, and fortio's text report and result JSON field names.
//!
//! Kept as our own port rather than a crate: fortio's call split, pacing, histogram buckets and
//! report format are the contract the datasets were collected under, and no Rust crate has them.
//! The URL parser stays too: the `url` crate normalises (percent-encodes spaces, reads
//! `http:///x` as host `x`, drops `:80`, lowercases the authority fortio sends as written).

mod client;
mod gofmt;
mod histogram;
mod parse;
mod plan;
mod report;
mod runner;

pub use runner::run;

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use client::{build_request, CallResult, Client, SOCKET_ERROR};
use gofmt::{fmt_g, go_duration};
use histogram::{Histogram, HistogramData, DEFAULT_PERCENTILES};

/// User-Agent sent with every request.
pub const USER_AGENT: &str = "sfr2l-load/0.1";

/// fortio's default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// fortio's default run duration (used only when `calls == 0`).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(5);

/// Stack size of the load threads: they only hold small state (the buffer is on the heap).
const THREAD_STACK: usize = 256 * 1024;

/// What to run.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadSpec {
    /// Host to connect to, e.g. "127.0.0.1" (IPv6 literals without brackets).
    pub host: String,
    pub port: u16,
    /// Request target, e.g. "/status/200" (query string included).
    pub path: String,
    /// Host header value.
    pub authority: String,
    /// Number of connections / threads (`-c`).
    pub threads: u32,
    /// Exact total number of calls (`-n`); 0 => run for `duration`.
    pub calls: u32,
    /// Run duration, used only when `calls == 0`.
    pub duration: Duration,
    /// Total target qps spread across threads; 0 => max speed (no pacing).
    pub qps: f64,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Connect and per-request timeout.
    pub timeout: Duration,
    /// Open all connections before the clock starts.
    pub connect_first: bool,
}

/// Errors that prevent a run from starting (errors during the run are counted as code -1).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("invalid load spec: {0}")]
    InvalidSpec(String),
    #[error("cannot resolve {addr}: {source}")]
    Resolve {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start load thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("a load thread panicked")]
    ThreadPanic,
}

impl LoadSpec {
    /// Parses `http://host[:port][/path][?query]` with fortio's defaults: max qps, 3s timeout,
    /// 5s duration (only used when `calls == 0`), connections opened before the clock starts,
    /// and the URL's authority (`host:port` as written) as the Host header.
    pub fn from_url(url: &str, threads: u32, calls: u32) -> Result<LoadSpec, LoadError> {
        let bad = |reason: &str| LoadError::BadUrl { url: url.to_string(), reason: reason.to_string() };
        let trimmed = url.trim();
        let rest = match trimmed.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &trimmed[7..],
            _ => {
                let lower = trimmed.to_ascii_lowercase();
                if lower.starts_with("https://") {
                    return Err(bad("https is not supported, use http://host:port/path"));
                }
                return Err(bad("expected http://host[:port]/path"));
            }
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (auth, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
        if auth.is_empty() {
            return Err(bad("missing host"));
        }
        if auth.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port_str) = if let Some(after) = auth.strip_prefix('[') {
            let Some((h, tail)) = after.split_once(']') else {
                return Err(bad("unterminated IPv6 literal"));
            };
            match tail {
                "" => (h, None),
                t => match t.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None => return Err(bad("unexpected characters after IPv6 literal")),
                },
            }
        } else {
            match auth.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (auth, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port = match port_str {
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad(&format!("invalid port {p:?}"))),
                Ok(n) => n,
            },
        };
        if path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(bad("path contains whitespace or control characters"));
        }
        if threads == 0 {
            return Err(LoadError::InvalidSpec("threads (-c) must be at least 1".to_string()));
        }
        Ok(LoadSpec {
            host: host.to_string(),
            port,
            path,
            authority: auth.to_string(),
            threads,
            calls,
            duration: DEFAULT_DURATION,
            qps: 0.0,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            connect_first: true,
        })
    }

    /// `http://host:port/path` (IPv6 hosts bracketed).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.host_port(), self.path)
    }

    fn host_port(&self) -> String {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        if h.contains(':') {
            format!("[{h}]:{}", self.port)
        } else {
            format!("{h}:{}", self.port)
        }
    }
}

/// The outcome of a run, with fortio's statistics.
#[derive(Clone, Debug)]
pub struct LoadResult {
    url: String,
    headers: Vec<(String, String)>,
    authority: String,
    resolved: String,
    timeout: Duration,
    qps: f64,
    duration: Duration,
    exactly: u64,
    num_threads: u32,
    requested_qps: String,
    requested_duration: String,
    start_line: String,
    gomax: usize,
    start_time: SystemTime,
    elapsed: Duration,
    ret_codes: BTreeMap<i32, u64>,
    duration_hist: HistogramData,
    errors_hist: HistogramData,
    sleep: Option<Histogram>,
    conn_per_thread: Vec<histogram::Counter>,
    conn_hist: Histogram,
    header_sizes: Histogram,
    sizes: Histogram,
    sockets: Vec<u64>,
    thread_calls: Vec<u64>,
}

impl LoadResult {
    /// Status code -> count; -1 = socket error.
    pub fn ret_codes(&self) -> &BTreeMap<i32, u64> {
        &self.ret_codes
    }

    /// Total calls done.
    pub fn calls(&self) -> u64 {
        self.ret_codes.values().sum()
    }

    /// Calls / elapsed seconds.
    pub fn actual_qps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.calls() as f64 / s
        } else {
            0.0
        }
    }

    /// From the clock start to the end of the last thread.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Connections opened in total.
    pub fn sockets(&self) -> u64 {
        self.sockets.iter().sum()
    }

    /// Connections opened by each thread.
    pub fn sockets_per_thread(&self) -> &[u64] {
        &self.sockets
    }

    /// Calls done by each thread.
    pub fn thread_calls(&self) -> &[u64] {
        &self.thread_calls
    }

    /// Number of threads actually used (fortio lowers it in qps mode when calls are few).
    pub fn num_threads(&self) -> u32 {
        self.num_threads
    }

    /// Calls whose status was not OK (not 2xx / 418), socket errors included.
    pub fn error_calls(&self) -> u64 {
        u64::try_from(self.errors_hist.count).unwrap_or(0)
    }

    /// Average latency in seconds.
    pub fn latency_avg(&self) -> f64 {
        self.duration_hist.avg
    }

    /// Latency (seconds) at one of the reported percentiles (50, 75, 90, 99, 99.9).
    pub fn latency_percentile(&self, p: f64) -> Option<f64> {
        self.duration_hist.percentile(p)
    }

    /// fortio-style text summary.
    pub fn fortio_text(&self) -> String {
        report::text(self)
    }

    /// fortio's result JSON (`HTTPRunnerResults` field names).
    pub fn fortio_json(&self) -> serde_json::Value {
        report::json(self)
    }
}

#[cfg(test)]
mod tests;
