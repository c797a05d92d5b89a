//! The explorer's loopback HTTP server (`sfr2l explore`): std only, GET/HEAD, one short-lived
//! thread per connection, at most [`MAX_CONNECTIONS`] at once (a connection past them is answered
//! 503 by one refusing thread and closed). It serves the page (compiled in), the wasm-bindgen output, the
//! policies and data folders read-only (a path that leaves its folder is refused), and the lab's
//! trace records after the same check as `traces ingest`. Inference runs in the browser: the
//! server never loads a model.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const INDEX_HTML: &str = include_str!("../../explorer/www/index.html");
const APP_JS: &str = include_str!("../../explorer/www/app.js");
const STYLE_CSS: &str = include_str!("../../explorer/www/style.css");

/// What the server shows.
#[derive(Debug, Clone)]
pub struct Site {
    /// wasm-bindgen `--target web` output (sfr2l_explorer.js, sfr2l_explorer_bg.wasm).
    pub pkg: PathBuf,
    pub policies: PathBuf,
    pub data: PathBuf,
    /// A lab working directory whose client sidecar log holds live trace records.
    pub lab: PathBuf,
    /// The plugin's `trace_key`: with it only records whose MAC verifies are shown.
    pub trace_key: Option<Vec<u8>>,
}

/// Connections served at once; each holds a thread and at most 64 KiB of request head, and
/// waits at most 10 s for it.
pub const MAX_CONNECTIONS: usize = 32;

/// A response: status, content type, body.
pub type Reply = (u16, &'static str, Vec<u8>);

fn text(status: u16, msg: &str) -> Reply {
    (status, "text/plain; charset=utf-8", msg.as_bytes().to_vec())
}

/// Percent-decodes a URL path; `None` for malformed escapes or non-UTF-8.
fn decode(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where a request path lands under a served folder.
#[derive(Debug, PartialEq)]
pub enum Confined {
    Inside(PathBuf),
    Missing,
    /// It could leave the folder: `..`, `.`, a root, a backslash, NUL, a hidden name, or a
    /// link that resolves outside.
    Refused,
}

/// `rel` under `root`: only plain components, and the resolved file must still lie under it.
pub fn confine(root: &Path, rel: &str) -> Confined {
    if rel.is_empty() || rel.contains('\\') || rel.contains('\0') {
        return Confined::Refused;
    }
    let mut p = root.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(s) if !s.to_string_lossy().starts_with('.') => p.push(s),
            _ => return Confined::Refused,
        }
    }
    let (Ok(real), Ok(base)) = (p.canonicalize(), root.canonicalize()) else { return Confined::Missing };
    if real.starts_with(&base) {
        Confined::Inside(real)
    } else {
        Confined::Refused
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "json" => "application/json",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "csv" | "md" | "txt" => "text/plain; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn file(root: &Path, rel: &str) -> Reply {
    match confine(root, rel) {
        Confined::Inside(p) if p.is_file() => match std::fs::read(&p) {
            Ok(b) => (200, content_type(&p), b),
            Err(e) => text(500, &format!("reading {rel}: {e}")),
        },
        Confined::Inside(_) | Confined::Missing => text(404, &format!("{rel}: not found")),
        Confined::Refused => text(403, &format!("{rel}: refused (outside the served folder)")),
    }
}

/// `policies/index.json`: the simulators (`sN/simulator.onnx` + card) and agents
/// (`sN/agents/<configuration>/seed-S/<thread|call>.onnx` + card) found under the folder.
pub fn listing(policies: &Path) -> serde_json::Value {
    let mut sims = Vec::new();
    let dirs = |p: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|r| r.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let name = |p: &Path| p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    for sdir in dirs(policies) {
        if !sdir.join("simulator.onnx").is_file() {
            continue;
        }
        let mut agents = Vec::new();
        for cdir in dirs(&sdir.join("agents")) {
            for seed in dirs(&cdir) {
                let kinds: Vec<&str> =
                    ["thread", "call"].into_iter().filter(|k| seed.join(format!("{k}.onnx")).is_file()).collect();
                if !kinds.is_empty() {
                    agents.push(serde_json::json!({
                        "configuration": name(&cdir), "seed": name(&seed),
                        "path": format!("{}/agents/{}/{}", name(&sdir), name(&cdir), name(&seed)), "agents": kinds,
                    }));
                }
            }
        }
        sims.push(serde_json::json!({
            "name": name(&sdir), "card": sdir.join("simulator.json").is_file(), "agents": agents,
        }));
    }
    serde_json::json!({ "simulators": sims })
}

/// Trace records from the lab's client sidecar log, one JSON object per line, after the check of
/// `traces ingest` (only lines Envoy's Wasm logger wrote; with a key, only records whose MAC
/// verifies; replayed lines once). A first line starting with `#` says what was left out.
fn traces(lab: &Path, key: Option<&[u8]>) -> Reply {
    let log = lab.join("logs/client-envoy.log");
    let Ok(f) = std::fs::File::open(&log) else {
        return text(404, &format!("no lab log at {} (start a lab, or drop a file in the page)", log.display()));
    };
    let report = match sfr2l_lab::ingest::ingest_checked(BufReader::new(f), &log.display().to_string(), key) {
        Ok(r) => r,
        Err(e) => return text(500, &format!("{e:#}")),
    };
    let mut lines = Vec::new();
    let malformed = report.records.iter().filter(|r| r.record.is_err()).count();
    if !report.rejected.is_empty() || malformed > 0 {
        lines.push(format!(
            "# left out: {} line(s) naming the trace marker ({}), {malformed} malformed record(s)",
            report.rejected.len(),
            report.rejected_summary()
        ));
    }
    for r in &report.records {
        if let Ok(rec) = &r.record {
            lines.push(serde_json::to_string(rec).unwrap_or_default());
        }
    }
    (200, "text/plain; charset=utf-8", lines.join("\n").into_bytes())
}

/// Answers one request path.
pub fn route(site: &Site, path: &str) -> Reply {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let Some(path) = decode(path) else { return text(400, "malformed path") };
    match path.as_str() {
        "/" | "/index.html" => (200, "text/html; charset=utf-8", INDEX_HTML.as_bytes().to_vec()),
        "/app.js" => (200, "text/javascript; charset=utf-8", APP_JS.as_bytes().to_vec()),
        "/style.css" => (200, "text/css; charset=utf-8", STYLE_CSS.as_bytes().to_vec()),
        "/policies/index.json" => (200, "application/json", listing(&site.policies).to_string().into_bytes()),
        "/api/traces" => traces(&site.lab, site.trace_key.as_deref()),
        p => {
            if let Some(rel) = p.strip_prefix("/policies/") {
                file(&site.policies, rel)
            } else if let Some(rel) = p.strip_prefix("/data/") {
                file(&site.data, rel)
            } else if let Some(rel) = p.strip_prefix("/pkg/") {
                file(&site.pkg, rel)
            } else {
                text(404, &format!("{p}: not found"))
            }
        }
    }
}

fn handle(site: &Site, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(64 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Drain the headers (bodies are not read: GET and HEAD only).
    let mut h = String::new();
    while reader.read_line(&mut h)? > 2 {
        h.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = match method {
        "GET" | "HEAD" => route(site, target),
        _ => text(405, "only GET and HEAD"),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(&body)?;
    }
    stream.flush()
}

/// Releases a connection's slot when its thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers connections past [`MAX_CONNECTIONS`], one at a time on one thread: 503, then the
/// request is read for at most 200 ms (closing a socket with unread input resets it, and the
/// client would lose the answer) and the connection closed. At most 64 wait; more are closed
/// unanswered.
fn refuser() -> std::sync::mpsc::SyncSender<TcpStream> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<TcpStream>(64);
    let body = format!("busy: {MAX_CONNECTIONS} connections are being served; try again");
    let spawned = std::thread::Builder::new().name("explore-refuse".into()).spawn(move || {
        for mut stream in rx {
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = write!(
                stream,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut sink = [0u8; 4096];
            let t0 = std::time::Instant::now();
            while t0.elapsed() < Duration::from_millis(200) && matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        }
    });
    if let Err(e) = spawned {
        eprintln!("sfr2l explore: no thread to refuse connections past the bound: {e}");
    }
    tx
}

/// Binds `addr` and serves until the process ends; `ready` gets the bound address.
pub fn serve(site: Site, addr: &str, ready: impl FnOnce(std::net::SocketAddr)) -> Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    ready(listener.local_addr()?);
    let site = Arc::new(site);
    let active = Arc::new(AtomicUsize::new(0));
    let refuse = refuser();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = refuse.try_send(stream);
            continue;
        }
        let (site, slot) = (site.clone(), Slot(active.clone()));
        let spawned = std::thread::Builder::new().name("explore-conn".into()).spawn(move || {
            let _slot = slot;
            let _ = handle(&site, stream);
        });
        if let Err(e) = spawned {
            eprintln!("sfr2l explore: no thread for a connection: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused_and_files_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("policies");
        std::fs::create_dir_all(root.join("s1")).unwrap();
        std::fs::write(root.join("s1/simulator.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        let site = Site {
            pkg: dir.path().join("pkg"),
            policies: root.clone(),
            data: root.clone(),
            lab: root,
            trace_key: None,
        };
        assert_eq!(route(&site, "/policies/s1/simulator.json").0, 200);
        for bad in ["/policies/../secret", "/policies/%2e%2e/secret", "/policies/s1/../../secret", "/policies/.hidden"]
        {
            assert_eq!(route(&site, bad).0, 403, "{bad}");
        }
        assert_eq!(route(&site, "/policies/%2Fetc%2Fpasswd").0, 403);
        assert_eq!(route(&site, "/policies/nope.json").0, 404);
        assert_eq!(route(&site, "/policies/%zz").0, 400);
        assert_eq!(route(&site, "/").0, 200);
    }

    const ENVOY: &str = "[2026-12-07 10:00:00.000][7][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log sfr2l sfr2l: ";
    const KEY: &[u8] = b"explorer-test-key-0123";

    fn record(run: &str) -> sfr2l_core::TraceRecord {
        use sfr2l_core::counters::{RunAnnounce, RunCounters};
        let a = RunAnnounce { threads: 1, calls: 2 };
        let mut c = RunCounters::new(a);
        c.record(a, 200, 0, 1_000, 2_000);
        c.record(a, 503, 0x80, 1_500, 3_000);
        sfr2l_core::TraceRecord::from_counters(run, 1, None, &c)
    }

    /// `/api/traces` shows only what `traces ingest` accepts: a record another writer put in the
    /// log (an access log line, another logger, a copied line) is left out and counted; with the
    /// trace key, so is an unsigned or forged record.
    #[test]
    fn spoofed_trace_lines_are_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let (real, signed) = (record("real-run"), record("signed-run"));
        let spoof = record("spoofed-run");
        let forged = signed.to_signed_log_line(Some(KEY)).replace("signed-run", "forged-run");
        let log = [
            format!("{ENVOY}{}", real.to_log_line()),
            format!("{ENVOY}{}", signed.to_signed_log_line(Some(KEY))),
            format!("[2026-12-07T10:00:01.000Z] \"GET /status/200?x={} HTTP/1.1\" 200", spoof.to_log_line()),
            format!(
                "[2026-12-07 10:00:02.000][7][info][http] [source/common/http/conn_manager_impl.cc:1] {}",
                spoof.to_log_line()
            ),
            format!("{ENVOY}{}", real.to_log_line()),
            format!("{ENVOY}{forged}"),
        ]
        .join("\n");
        std::fs::write(dir.path().join("logs/client-envoy.log"), log).unwrap();
        let shown = |key: Option<&[u8]>| -> Vec<String> {
            let (status, _, body) = traces(dir.path(), key);
            assert_eq!(status, 200);
            String::from_utf8(body).unwrap().lines().map(str::to_string).collect()
        };
        let runs = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| !l.starts_with('#'))
                .map(|l| serde_json::from_str::<sfr2l_core::TraceRecord>(l).unwrap().run)
                .collect()
        };
        let open = shown(None);
        assert_eq!(runs(&open), ["real-run", "signed-run", "forged-run"], "{open:?}");
        assert!(open[0].starts_with("# left out: 3 line(s)") && open[0].contains("duplicate 1"), "{}", open[0]);
        let keyed = shown(Some(KEY));
        assert_eq!(runs(&keyed), ["signed-run"], "{keyed:?}");
        assert!(keyed[0].contains("unsigned") && keyed[0].contains("bad_mac"), "{}", keyed[0]);
    }

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Connection threads alive in this process (by name: other tests run beside this one).
    fn conn_threads() -> usize {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
        tasks
            .flatten()
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "explore-conn"))
            .count()
    }

    /// [`MAX_CONNECTIONS`] clients that send nothing hold every slot: the next ones are told 503
    /// by the one refusing thread, the process's threads stay bounded (one per slot, plus it), and once the idle
    /// clients go, requests are served again.
    #[test]
    fn connections_past_the_bound_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let site = Site { pkg: root.clone(), policies: root.clone(), data: root.clone(), lab: root, trace_key: None };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || serve(site, "127.0.0.1:0", |a| tx.send(a).unwrap()));
        let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(get(addr, "/").starts_with("HTTP/1.1 200"));
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // Every idle connection has been accepted and holds its slot.
        let t0 = std::time::Instant::now();
        while conn_threads() < MAX_CONNECTIONS && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(conn_threads(), MAX_CONNECTIONS);
        let extra: Vec<String> = (0..3).map(|_| get(addr, "/")).collect();
        for r in &extra {
            assert!(r.starts_with("HTTP/1.1 503") && r.contains("busy"), "{r}");
        }
        assert_eq!(conn_threads(), MAX_CONNECTIONS, "connection threads past the bound");
        drop(idle);
        let t0 = std::time::Instant::now();
        let served = loop {
            let r = get(addr, "/");
            if r.starts_with("HTTP/1.1 200") || t0.elapsed() > Duration::from_secs(5) {
                break r;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    }
}
