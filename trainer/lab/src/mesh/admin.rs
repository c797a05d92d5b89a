//! A minimal HTTP/1.1 client for Envoy's admin endpoint and readiness probes (loopback, or the address of a running upstream).

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One request with `Connection: close` to a loopback port; returns (status, body).
pub fn request(port: u16, method: &str, path: &str) -> Result<(u16, String)> {
    request_to(SocketAddr::from(([127, 0, 0, 1], port)), method, path)
}

/// One request with `Connection: close` to `addr` (a readiness probe of a running upstream).
pub fn request_to(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, String)> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", addr.ip())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let (status, body) = parse_response(&buf).with_context(|| format!("{method} {path} on {addr}"))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A whole `Connection: close` response: its status and body (de-chunked if chunked), on bytes
/// (chunk sizes count bytes, whatever the text).
pub(crate) fn parse_response(buf: &[u8]) -> Result<(u16, Vec<u8>)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").context("no end of the response head")?;
    let (head, body) = (String::from_utf8_lossy(&buf[..end]), &buf[end + 4..]);
    let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("bad HTTP status line")?;
    let chunked = head.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.split(',').next_back().is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
        })
    });
    Ok((status, if chunked { dechunk(body)? } else { body.to_vec() }))
}

/// A chunked body's data (RFC 9112 section 7.1): sizes in hex, extensions after `;` ignored,
/// trailers skipped. A body cut short is an error, never a silently shorter body.
pub(crate) fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").context("chunked body: a chunk size line has no end")?;
        let line = std::str::from_utf8(&rest[..eol]).context("chunked body: chunk size is not text")?;
        let hex = line.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(hex, 16).with_context(|| format!("chunked body: bad chunk size {hex:?}"))?;
        rest = &rest[eol + 2..];
        if n == 0 {
            return Ok(out);
        }
        if rest.len() < n + 2 || &rest[n..n + 2] != b"\r\n" {
            bail!("chunked body: a chunk of {n} bytes is cut short");
        }
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n + 2..];
    }
}

pub fn get(port: u16, path: &str) -> Result<String> {
    let (status, body) = request(port, "GET", path)?;
    if status != 200 {
        bail!("GET {path} on 127.0.0.1:{port}: HTTP {status}: {}", body.trim());
    }
    Ok(body)
}

/// `name` as an RE2 regex that matches exactly it (istiod's cluster names hold `|` and `.`).
pub fn regex_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for c in name.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Counters and gauges matching `filter` (a regex), as name -> value. Text stats keep their
/// quoted value under the name in `texts`.
pub fn stats(port: u16, filter: &str) -> Result<(BTreeMap<String, u64>, BTreeMap<String, String>)> {
    Ok(parse_stats(&get(port, &format!("/stats?filter={filter}"))?))
}

/// Envoy's `/stats` text: one `name: value` per line. Integer values are counters and gauges;
/// anything else (text readouts in quotes, histogram summaries) is kept as text, unquoted.
pub fn parse_stats(body: &str) -> (BTreeMap<String, u64>, BTreeMap<String, String>) {
    let mut nums = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for line in body.lines() {
        let Some((name, value)) = line.split_once(": ") else { continue };
        let value = value.trim();
        if let Ok(v) = value.parse::<u64>() {
            nums.insert(name.to_string(), v);
        } else {
            let unquoted = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            texts.insert(name.to_string(), unquoted.to_string());
        }
    }
    (nums, texts)
}

pub fn is_live(port: u16) -> bool {
    matches!(request(port, "GET", "/ready"), Ok((200, b)) if b.trim() == "LIVE")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cluster_names_escape_for_envoys_stats_filter() {
        assert_eq!(
            regex_escape("outbound|80||web.default.svc.cluster.local"),
            r"outbound\|80\|\|web\.default\.svc\.cluster\.local"
        );
        assert_eq!(regex_escape(r"a\b(c)*"), r"a\\b\(c\)\*");
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n").unwrap(), b"Wikipedia");
        assert!(dechunk(b"4\r\nWik").is_err(), "cut short");
        assert!(dechunk(b"zz\r\n").is_err());
        let (status, body) =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\r\n\r\n0\r\n\r\n").unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"\r\n"[..]), "data that looks like a line end is data");
    }

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Any body, cut into chunks of any sizes (hex in either case, with or without an
        /// extension), reads back byte for byte; cut short anywhere before the last chunk, it is
        /// an error.
        #[test]
        fn chunked_bodies_read_back(body in prop::collection::vec(any::<u8>(), 0..600),
                                    cuts in prop::collection::vec(1usize..200, 0..8), upper in any::<bool>(),
                                    ext in any::<bool>(), cut_at in any::<prop::sample::Index>()) {
            let mut wire = Vec::new();
            let mut rest = body.as_slice();
            for c in cuts.iter().chain(std::iter::repeat(&64)) {
                if rest.is_empty() {
                    break;
                }
                let (chunk, r) = rest.split_at((*c).min(rest.len()));
                let size = if upper { format!("{:X}", chunk.len()) } else { format!("{:x}", chunk.len()) };
                wire.extend(format!("{size}{}\r\n", if ext { ";name=value" } else { "" }).as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend(b"\r\n");
                rest = r;
            }
            let last = wire.len();
            wire.extend(b"0\r\n\r\n");
            let mut response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            response.extend(&wire);
            prop_assert_eq!(parse_response(&response).unwrap(), (200, body.clone()));
            if last > 0 {
                let cut = cut_at.index(last);
                prop_assert!(dechunk(&wire[..cut]).is_err(), "cut at {} of {}", cut, last);
            }
        }

        /// Stats as Envoy writes them (counters and gauges, quoted text readouts, histogram
        /// summaries) read back: every number under its name, every text unquoted.
        #[test]
        fn admin_stats_read_back(stats in prop::collection::btree_map("[a-z][a-z0-9_.:-]{0,40}", prop_oneof![
                any::<u64>().prop_map(|v| (v.to_string(), Ok(v))),
                "[ -!#-~]{0,20}".prop_map(|t| (format!("\"{t}\""), Err(t))),
                Just(("P0(nan,0) P25(nan,1.025) P99(nan,2.09)".to_string(), Err("P0(nan,0) P25(nan,1.025) P99(nan,2.09)".to_string()))),
            ], 0..30)) {
            let body: String = stats.iter().map(|(n, (v, _))| format!("{n}: {v}\n")).collect();
            let (nums, texts) = parse_stats(&body);
            for (name, (_, want)) in &stats {
                match want {
                    Ok(v) => prop_assert_eq!(nums.get(name), Some(v), "{}", name),
                    Err(t) => {
                        // A quoted number is a text readout that reads as a number: both are fine.
                        let as_num = t.trim().parse::<u64>().ok();
                        prop_assert!(texts.get(name) == Some(t) || (as_num.is_some() && nums.get(name) == as_num.as_ref()),
                            "{}: {:?} / {:?}", name, texts.get(name), nums.get(name));
                    }
                }
            }
            prop_assert_eq!(nums.len() + texts.len(), stats.len());
        }
    }
}
