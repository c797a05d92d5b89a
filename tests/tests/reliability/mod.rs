//! Shared by the reliability tests (hostile, spoof, soak): a standalone Envoy with the filter in
//! front of a direct response (no upstream: what is measured is Envoy and the filter), a
//! keep-alive HTTP/1.1 client, and process figures. Ports 22000-22999.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The observe build of the filter (`make filter`), or `SFR2L_TEST_OBSERVE_WASM`.
pub fn observe_wasm() -> PathBuf {
    std::env::var_os("SFR2L_TEST_OBSERVE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| sfr2l_tests::repo_root().join("target/wasm32-wasip1/release/sfr2l_filter_observe.wasm"))
}

/// An Envoy process killed on drop (also when the test fails).
pub struct Envoy {
    pub child: Child,
    pub admin: u16,
    pub listener: u16,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Envoy {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Resident set size of the Envoy process (kB).
    pub fn rss_kb(&self) -> u64 {
        rss_kb(self.pid())
    }

    /// A `wasmcustom.<name>` metric.
    pub fn metric(&self, name: &str) -> u64 {
        let (nums, _) = sfr2l_lab::admin::stats(self.admin, &format!("^wasmcustom\\.{name}$")).unwrap();
        nums.get(&format!("wasmcustom.{name}")).copied().unwrap_or(0)
    }

    /// Envoy's heap (`/memory`: allocated bytes).
    pub fn heap_allocated(&self) -> u64 {
        let body = sfr2l_lab::admin::get(self.admin, "/memory").unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["allocated"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

pub fn rss_kb(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts Envoy (2 workers) with the filter configured by `filter_json` in front of a direct
/// 200 response; `access_log`: an access-log format written to the same log as Envoy's own lines.
pub fn start_envoy(base: u16, filter_json: &str, access_log: Option<&str>) -> Envoy {
    start_envoy_with(base, filter_json, access_log, 2)
}

/// [`start_envoy`] with `workers` worker threads (1: every connection on one event loop).
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn start_envoy_with(base: u16, filter_json: &str, access_log: Option<&str>, workers: u32) -> Envoy {
    let dir = tempfile::tempdir().unwrap();
    let (admin, listener) = (base, base + 1);
    let access = access_log.map(|fmt| {
        serde_json::json!([{ "name": "envoy.access_loggers.stderr", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
            "log_format": { "text_format_source": { "inline_string": fmt } } } }])
    });
    let mut hcm = serde_json::json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "rel",
        "route_config": { "virtual_hosts": [ { "name": "all", "domains": ["*"], "routes": [
            { "match": { "prefix": "/" }, "direct_response": { "status": 200, "body": { "inline_string": "ok" } } } ] } ] },
        "http_filters": [
            { "name": "envoy.filters.http.wasm", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": { "name": "sfr2l", "root_id": "sfr2l", "failure_policy": "FAIL_OPEN",
                    "configuration": { "@type": "type.googleapis.com/google.protobuf.StringValue", "value": filter_json },
                    "vm_config": { "vm_id": "sfr2l", "runtime": "envoy.wasm.runtime.v8",
                        "code": { "local": { "filename": observe_wasm() } } } } } },
            { "name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }
        ]
    });
    if let Some(a) = access {
        hcm["access_log"] = a;
    }
    let addr = |p: u16| serde_json::json!({ "socket_address": { "address": "127.0.0.1", "port_value": p } });
    let boot = serde_json::json!({
        "admin": { "address": addr(admin) },
        "static_resources": { "listeners": [ { "name": "rel", "address": addr(listener),
            "filter_chains": [ { "filters": [ { "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm } ] } ] } ] }
    });
    let cfg = dir.path().join("envoy.json");
    std::fs::write(&cfg, boot.to_string()).unwrap();
    let log = dir.path().join("envoy.log");
    let tools = sfr2l_tests::toolchain();
    let child = Command::new(&tools.envoy)
        .arg("-c")
        .arg(&cfg)
        .args(["--concurrency", &workers.to_string(), "--disable-hot-restart"])
        .args(["-l", "warning", "--component-log-level", "wasm:info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let envoy = Envoy { child, admin, listener, log, dir };
    let t0 = Instant::now();
    while !sfr2l_lab::admin::is_live(admin) {
        assert!(t0.elapsed() < Duration::from_secs(30), "envoy did not start: {}", envoy.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The filter is configured once its gauge exists.
    while sfr2l_lab::admin::stats(admin, "^wasmcustom\\.sfr2l_config_generation$").unwrap().0.is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "filter not configured: {}", envoy.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    envoy
}

/// One keep-alive HTTP/1.1 connection.
pub struct KeepAlive {
    r: BufReader<TcpStream>,
}

impl KeepAlive {
    pub fn connect(port: u16) -> KeepAlive {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeepAlive { r: BufReader::new(s) }
    }

    /// GET `path` with extra header lines; returns the status code.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.try_get(path, headers).unwrap()
    }

    /// Like [`KeepAlive::get`]; a closed connection (a listener drained by a configuration
    /// push closes its connections) is an error.
    pub fn try_get(&mut self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<u16> {
        let mut req = format!("GET {path} HTTP/1.1\r\nhost: rel\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.r.get_mut().write_all(req.as_bytes())?;
        let mut status = 0;
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(rest) = l.strip_prefix("HTTP/1.1 ") {
                status = rest.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body)?;
        Ok(status)
    }
}

/// Announced-run headers.
pub fn announce<'a>(run: &'a str, calls: &'a str) -> [(&'a str, &'a str); 3] {
    [("x-sfr2l-run", run), ("x-sfr2l-threads", "1"), ("x-sfr2l-calls", calls)]
}

/// Polls `cond` every 50 ms up to `max`.
pub fn wait_until(max: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while !cond() {
        if t0.elapsed() > max {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

pub fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Bytes one run-table entry in shared data takes for run `id`: `codes` distinct status codes of
/// `per_code` responses each, every reason counter at `per_code` too, timestamps of now (ns since
/// the epoch, as Envoy's clock gives them). The unit of the shared-data bounds.
pub fn entry_bytes(id: &str, threads: u32, calls: u32, codes: &[u16], per_code: u64) -> usize {
    use sfr2l_core::counters::{ReasonCounts, RunCounters};
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(u64::MAX, |d| d.as_nanos() as u64);
    let n = per_code;
    let c = RunCounters {
        threads,
        calls,
        codes: codes.iter().map(|c| (*c, n)).collect(),
        reasons: ReasonCounts { overflow: n, no_healthy: n, connect_failure: n, fault: n, upstream: n, refused: n },
        first_ns: now,
        last_ns: now,
        mismatched: n,
        emitted: true,
    };
    sfr2l_core::store::table::entry_len(id.as_bytes(), &c)
}
