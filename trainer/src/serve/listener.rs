//! The listener: one short-lived thread per connection, at most [`MAX_CONNECTIONS`] at once; a
//! connection past them is answered 503 by one refusing thread.

use super::{route, text, Site};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Connections served at once; each holds a thread and at most 64 KiB of request head, and
/// waits at most 10 s for it.
pub const MAX_CONNECTIONS: usize = 32;

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
