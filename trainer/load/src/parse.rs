//! HTTP/1.1 response parsing for the load client: head, chunk sizes, tokens. Pure functions.

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Parsed essentials of a response head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub code: i32,
    pub(crate) body: Body,
    pub(crate) close: bool,
}

/// Position just past the `\r\n\r\n` ending the head, searching from `from`.
#[inline]
pub(super) fn find_head_end(avail: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < avail.len() {
        let p = avail[i..].iter().position(|&b| b == b'\n')?;
        let j = i + p;
        if j >= 3 && &avail[j - 3..=j] == b"\r\n\r\n" {
            return Some(j + 1);
        }
        i = j + 1;
    }
    None
}

pub(super) fn is_empty_line(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

pub(super) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

pub(super) fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = match line.iter().position(|&b| b == b';') {
        Some(p) => &line[..p],
        None => line,
    };
    let hex = trim(line);
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in hex {
        let d = (b as char).to_digit(16)?;
        v = v * 16 + u64::from(d);
    }
    Some(v)
}

pub(super) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

pub(super) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// Parses a response head (status line + headers, up to and including the blank line).
pub(crate) fn parse_head(h: &[u8]) -> Option<Head> {
    // "HTTP/1.x SSS reason"
    if h.len() < 12 || &h[..7] != b"HTTP/1." || h[8] != b' ' {
        return None;
    }
    let http10 = h[7] == b'0';
    let c = &h[9..12];
    if !c.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = i32::from(c[0] - b'0') * 100 + i32::from(c[1] - b'0') * 10 + i32::from(c[2] - b'0');
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut lines = h.split(|&b| b == b'\n');
    lines.next(); // status line
    for line in lines {
        let line = match line.last() {
            Some(b'\r') => &line[..line.len() - 1],
            _ => line,
        };
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = trim(&line[colon + 1..]);
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let n = parse_decimal(value)?;
                if content_length.is_some_and(|old| old != n) {
                    return None;
                }
                content_length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // Only "chunked" as the final coding delimits the body.
                chunked =
                    value.split(|&b| b == b',').next_back().is_some_and(|t| trim(t).eq_ignore_ascii_case(b"chunked"));
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                if has_token(value, b"close") {
                    close = true;
                }
                if has_token(value, b"keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
    }
    if http10 && !keep_alive {
        close = true;
    }
    let body = if (100..200).contains(&code) || code == 204 || code == 304 {
        Body::None
    } else if chunked {
        Body::Chunked
    } else if let Some(n) = content_length {
        Body::Length(n)
    } else {
        close = true;
        Body::UntilClose
    };
    if code == 101 {
        close = true; // we never speak an upgraded protocol
    }
    Some(Head { code, body, close })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_client_parse_head_variants() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(h, Head { code: 200, body: Body::Length(12), close: false });
        let h = parse_head(
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: gzip, Chunked\r\nConnection: Close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h, Head { code: 503, body: Body::Chunked, close: true });
        let h = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!(h, Head { code: 204, body: Body::None, close: false });
        let h = parse_head(b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
        assert!(h.close);
        let h = parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 0\r\n\r\n").unwrap();
        assert!(!h.close);
        let h = parse_head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert_eq!(h, Head { code: 200, body: Body::UntilClose, close: true });
        assert!(parse_head(b"HTTX/1.1 200 OK\r\n\r\n").is_none());
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n").is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_none());
    }

    #[test]
    fn load_client_chunk_size_and_head_end() {
        assert_eq!(parse_chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(parse_chunk_size(b"0;ext=1\r\n"), Some(0));
        assert_eq!(parse_chunk_size(b"FF \r\n"), Some(255));
        assert_eq!(parse_chunk_size(b"zz\r\n"), None);
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n\r\nbody", 0), Some(19));
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n\r", 0), None);
    }
}
