//! A minimal HTTP/1.1 client for Envoy's admin endpoint and readiness probes (loopback only).

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One request with `Connection: close`; returns (status, body).
pub fn request(port: u16, method: &str, path: &str) -> Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("bad HTTP status line")?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_string() }))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn get(port: u16, path: &str) -> Result<String> {
    let (status, body) = request(port, "GET", path)?;
    if status != 200 {
        bail!("GET {path} on 127.0.0.1:{port}: HTTP {status}: {}", body.trim());
    }
    Ok(body)
}

/// Counters and gauges matching `filter` (a regex), as name -> value. Text stats keep their
/// quoted value under the name in `texts`.
pub fn stats(port: u16, filter: &str) -> Result<(BTreeMap<String, u64>, BTreeMap<String, String>)> {
    let body = get(port, &format!("/stats?filter={filter}"))?;
    let mut nums = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for line in body.lines() {
        let Some((name, value)) = line.split_once(": ") else { continue };
        let value = value.trim();
        if let Ok(v) = value.parse::<u64>() {
            nums.insert(name.to_string(), v);
        } else {
            texts.insert(name.to_string(), value.trim_matches('"').to_string());
        }
    }
    Ok((nums, texts))
}

pub fn is_live(port: u16) -> bool {
    matches!(request(port, "GET", "/ready"), Ok((200, b)) if b.trim() == "LIVE")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(super::dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"), "Wikipedia");
    }
}
