//! A minimal, allocation-free (per request) HTTP/1.1 keep-alive client over one
//! `std::net::TcpStream`, in the spirit of fortio's "fast client".
//!
//! One `Client` per load thread: the request bytes are built once, one fixed buffer is reused
//! for every response, bodies are read fully and discarded.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::histogram::Histogram;
use super::parse::*;

/// Size of the per-connection read buffer; the status line plus headers must fit in it.
const BUF_SIZE: usize = 32 * 1024;

/// Status reported for socket / protocol errors (fortio convention).
pub(crate) const SOCKET_ERROR: i32 = -1;

/// Outcome of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallResult {
    /// HTTP status, or `-1` for a socket/protocol error.
    pub code: i32,
    /// Bytes of the (final) response head, including the blank line (0 on error).
    pub header_size: usize,
    /// Total bytes of the response consumed (head + body incl. chunk framing).
    pub total_size: usize,
}

/// Why reading a response failed; `retryable` when nothing of the response was received and the
/// connection was found dead (EOF / reset), i.e. the classic stale keep-alive connection case.
#[derive(Debug)]
struct Fail {
    retryable: bool,
}

impl Fail {
    fn fatal() -> Self {
        Fail { retryable: false }
    }
}

pub(crate) struct Client {
    addr: SocketAddr,
    timeout: Option<Duration>,
    request: Box<[u8]>,
    stream: Option<TcpStream>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes of the current response consumed so far.
    consumed: usize,
    deadline: Option<Instant>,
    /// Connections successfully opened.
    pub sockets: u64,
    /// Connection establishment times (seconds), fortio's "connection timing".
    pub connect_times: Histogram,
}

/// Builds the request bytes: `GET {path} HTTP/1.1`, Host, User-Agent, extra headers.
pub(crate) fn build_request(path: &str, authority: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut r = String::with_capacity(128 + path.len());
    r.push_str("GET ");
    r.push_str(path);
    r.push_str(" HTTP/1.1\r\nHost: ");
    r.push_str(authority);
    r.push_str("\r\nUser-Agent: ");
    r.push_str(super::USER_AGENT);
    r.push_str("\r\n");
    for (k, v) in headers {
        r.push_str(k);
        r.push_str(": ");
        r.push_str(v);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

impl Client {
    pub fn new(addr: SocketAddr, timeout: Duration, request: Vec<u8>) -> Self {
        Client {
            addr,
            timeout: if timeout.is_zero() { None } else { Some(timeout) },
            request: request.into_boxed_slice(),
            stream: None,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            consumed: 0,
            deadline: None,
            sockets: 0,
            connect_times: Histogram::new(0.0, 0.001),
        }
    }

    /// Opens a new connection (closing any previous one).
    pub fn connect(&mut self) -> io::Result<()> {
        self.close();
        let t0 = Instant::now();
        let s = match self.timeout {
            Some(t) => TcpStream::connect_timeout(&self.addr, t)?,
            None => TcpStream::connect(self.addr)?,
        };
        s.set_nodelay(true)?;
        s.set_read_timeout(self.timeout)?;
        s.set_write_timeout(self.timeout)?;
        self.connect_times.record(t0.elapsed().as_secs_f64());
        self.sockets += 1;
        self.stream = Some(s);
        self.start = 0;
        self.end = 0;
        Ok(())
    }

    pub fn close(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.start = 0;
        self.end = 0;
    }

    /// Does one request/response exchange. Reconnects as needed; a call that fails on a
    /// connection it did not open itself (stale keep-alive) before receiving any response byte is
    /// retried once on a fresh connection.
    pub fn call(&mut self) -> CallResult {
        self.deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
        let mut retried = false;
        loop {
            let opened_now = if self.stream.is_none() {
                if self.connect().is_err() {
                    return CallResult { code: SOCKET_ERROR, header_size: 0, total_size: 0 };
                }
                true
            } else {
                false
            };
            let can_retry = !opened_now && !retried;
            self.consumed = 0;
            let written = match self.stream.as_mut() {
                Some(s) => write_all(s, &self.request),
                None => Err(ErrorKind::NotConnected.into()),
            };
            if written.is_err() {
                self.close();
                if can_retry {
                    retried = true;
                    continue;
                }
                return CallResult { code: SOCKET_ERROR, header_size: 0, total_size: 0 };
            }
            match self.read_response() {
                Ok((head, header_size)) => {
                    if head.close {
                        self.close();
                    }
                    return CallResult { code: head.code, header_size, total_size: self.consumed };
                }
                Err(f) => {
                    let total = self.consumed + (self.end - self.start);
                    self.close();
                    if can_retry && f.retryable {
                        retried = true;
                        continue;
                    }
                    return CallResult { code: SOCKET_ERROR, header_size: 0, total_size: total };
                }
            }
        }
    }

    /// Reads one complete response (skipping 1xx interim responses); returns the final head and
    /// its size.
    fn read_response(&mut self) -> Result<(Head, usize), Fail> {
        loop {
            let head_len = self.read_head()?;
            let head = parse_head(&self.buf[self.start..self.start + head_len]).ok_or_else(Fail::fatal)?;
            self.consume(head_len);
            if (100..200).contains(&head.code) && head.code != 101 {
                continue; // interim response, the real one follows
            }
            match head.body {
                Body::None => {}
                Body::Length(n) => self.skip(n)?,
                Body::Chunked => self.read_chunked()?,
                Body::UntilClose => self.read_until_close()?,
            }
            return Ok((head, head_len));
        }
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.start += n;
        self.consumed += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes into the buffer (compacting it first when full). Returns the number of
    /// bytes read, 0 on EOF.
    fn fill(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(io::Error::new(ErrorKind::InvalidData, "response line/header too large"));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if let Some(d) = self.deadline {
            if Instant::now() >= d {
                return Err(ErrorKind::TimedOut.into());
            }
        }
        let stream = self.stream.as_mut().ok_or(ErrorKind::NotConnected)?;
        loop {
            match stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes sure a full response head is buffered; returns its length (relative to `start`),
    /// including the terminating blank line.
    fn read_head(&mut self) -> Result<usize, Fail> {
        let mut scanned = 0;
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(n) = find_head_end(avail, scanned) {
                return Ok(n);
            }
            scanned = avail.len().saturating_sub(3);
            let nothing_yet = self.consumed == 0 && avail.is_empty();
            match self.fill() {
                Ok(0) => return Err(Fail { retryable: nothing_yet }),
                Ok(_) => {}
                Err(e) => {
                    let dead = matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::BrokenPipe
                            | ErrorKind::UnexpectedEof
                    );
                    return Err(Fail { retryable: nothing_yet && dead });
                }
            }
        }
    }

    /// Reads and discards exactly `n` body bytes.
    fn skip(&mut self, mut n: u64) -> Result<(), Fail> {
        loop {
            let avail = (self.end - self.start) as u64;
            if avail >= n {
                self.consume(n as usize);
                return Ok(());
            }
            n -= avail;
            self.consumed += avail as usize;
            self.start = 0;
            self.end = 0;
            match self.fill() {
                Ok(0) | Err(_) => return Err(Fail::fatal()),
                Ok(_) => {}
            }
        }
    }

    /// Returns the length of the next line (relative to `start`, including its `\n`).
    fn read_line(&mut self) -> Result<usize, Fail> {
        let mut scanned = 0;
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(p) = avail[scanned..].iter().position(|&b| b == b'\n') {
                return Ok(scanned + p + 1);
            }
            scanned = avail.len();
            match self.fill() {
                Ok(0) | Err(_) => return Err(Fail::fatal()),
                Ok(_) => {}
            }
        }
    }

    /// Reads and discards a `Transfer-Encoding: chunked` body (extensions and trailers allowed).
    fn read_chunked(&mut self) -> Result<(), Fail> {
        loop {
            let len = self.read_line()?;
            let size = parse_chunk_size(&self.buf[self.start..self.start + len]).ok_or_else(Fail::fatal)?;
            self.consume(len);
            if size == 0 {
                // Trailer section, ended by an empty line.
                loop {
                    let len = self.read_line()?;
                    let empty = is_empty_line(&self.buf[self.start..self.start + len]);
                    self.consume(len);
                    if empty {
                        return Ok(());
                    }
                }
            }
            self.skip(size)?;
            let len = self.read_line()?;
            let empty = is_empty_line(&self.buf[self.start..self.start + len]);
            self.consume(len);
            if !empty {
                return Err(Fail::fatal());
            }
        }
    }

    /// Body delimited by the connection close (no length, not chunked).
    fn read_until_close(&mut self) -> Result<(), Fail> {
        loop {
            let avail = self.end - self.start;
            self.consumed += avail;
            self.start = 0;
            self.end = 0;
            match self.fill() {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(_) => return Err(Fail::fatal()),
            }
        }
    }
}

fn write_all(s: &mut TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match s.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
