//! A scripted HTTP/1.1 server on loopback: each connection answers by a script, counts what it saw.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::super::*;

/// What the scripted server answers to the k-th request it receives (k counted globally).
#[derive(Clone, Copy, Debug)]
pub(super) enum Resp {
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

pub(super) struct TestServer {
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
    pub(super) fn start(script: fn(usize) -> Resp) -> TestServer {
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
                        handlers.push(std::thread::spawn(move || serve_conn(conn, script, &s3, &seen3)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        TestServer { port, served, seen, stop, accept: Some(accept) }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub(super) fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    pub(super) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

pub(super) fn serve_conn(
    mut conn: TcpStream,
    script: fn(usize) -> Resp,
    served: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
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
pub(super) fn response(r: Resp) -> (Vec<Vec<u8>>, bool) {
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
        Resp::Unavailable => {
            one(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 19\r\n\r\nno healthy upstream", true)
        }
        Resp::Close => one(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false),
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
        Resp::Interim => one(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true),
        Resp::NoContent => one(b"HTTP/1.1 204 No Content\r\n\r\n", true),
        Resp::UntilClose => one(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", false),
    }
}
pub(super) fn mixed_script(k: usize) -> Resp {
    match k {
        5 => Resp::Close,
        k if k % 5 == 1 => Resp::Chunked,
        k if k % 5 == 3 => Resp::Unavailable,
        _ => Resp::Ok,
    }
}

pub(super) fn spec_for(server: &TestServer, path: &str, threads: u32, calls: u32) -> LoadSpec {
    LoadSpec::from_url(&server.url(path), threads, calls).unwrap()
}
