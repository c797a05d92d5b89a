//! Which log lines carry records the filter wrote: the Wasm log line's structure, and an optional
//! HMAC-SHA256 over the record's JSON with a key from the plugin configuration.
//!
//! A sidecar log also holds Envoy's access log, which echoes client-controlled paths and headers;
//! a line counts only when Envoy's Wasm logger wrote it (`[ts][tid][info][wasm] [src] wasm log
//! NAMES: ` in Envoy's format, `ts\tinfo\twasm\twasm log NAMES: ` in Istio's, either one optionally
//! behind `kubectl logs --timestamps`). Another Wasm plugin that logs request headers could still
//! write such a line: with a key, only records whose MAC verifies are accepted.

use super::{TraceError, TraceRecord, TRACE_MARKER};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Separates the record's JSON from its MAC on a signed line.
pub const MAC_TAG: &str = " mac=";

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 (RFC 2104, the `hmac` crate) keyed with `key`. HMAC takes keys of any length
/// (longer ones are hashed first), so `None` never happens in practice; it keeps the error
/// path explicit instead of a panic.
fn keyed(key: &[u8]) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(key).ok()
}

/// HMAC-SHA256 over `msg`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Option<[u8; 32]> {
    let mut mac = keyed(key)?;
    mac.update(msg);
    Some(mac.finalize().into_bytes().into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a line that mentions the trace marker was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("not written by Envoy's Wasm logger (the marker is not behind a `wasm log NAME: ` prefix at info level)")]
    NotWasmLog,
    #[error("record carries no MAC, and a trace key was given")]
    Unsigned,
    #[error("MAC does not verify with the trace key")]
    BadMac,
    #[error("{0}")]
    Malformed(String),
}

impl Rejection {
    /// Short name for counts in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::NotWasmLog => "not_wasm_log",
            Rejection::Unsigned => "unsigned",
            Rejection::BadMac => "bad_mac",
            Rejection::Malformed(_) => "malformed",
        }
    }
}

/// An accepted record; `signed`: its MAC verified against the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub record: TraceRecord,
    pub signed: bool,
}

impl TraceRecord {
    /// The log line payload, with ` mac=<hex>` over the JSON when a key is given.
    pub fn to_signed_log_line(&self, key: Option<&[u8]>) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        match key.and_then(|k| hmac_sha256(k, json.as_bytes())) {
            Some(mac) => format!("{TRACE_MARKER}{json}{MAC_TAG}{}", hex(&mac)),
            None => format!("{TRACE_MARKER}{json}"),
        }
    }
}

fn timestamp_like(s: &str) -> bool {
    s.len() >= 10
        && s.bytes().all(|b| b.is_ascii_digit() || b"-:.TZ+ ".contains(&b))
        && s.as_bytes()[0].is_ascii_digit()
}

/// Content of a leading `[...]` group and the rest.
fn bracket(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// The text after `wasm log NAMES: ` when `line` is a Wasm log line at info level.
pub fn wasm_log_message(line: &str) -> Option<&str> {
    let mut s = line.trim_end_matches(['\r', '\n']);
    // `kubectl logs --timestamps`: an RFC 3339 stamp and a space before the container's line.
    if let Some((first, rest)) = s.split_once(' ') {
        if !first.starts_with('[') && timestamp_like(first) {
            s = rest;
        }
    }
    let after = if s.starts_with('[') {
        // Envoy: [ts][tid][level][logger] [source:line] message
        let (ts, r) = bracket(s)?;
        let (tid, r) = bracket(r)?;
        let (level, r) = bracket(r)?;
        let (logger, r) = bracket(r)?;
        let (_src, r) = bracket(r.strip_prefix(' ')?)?;
        let ok = timestamp_like(ts) && !tid.is_empty() && tid.bytes().all(|b| b.is_ascii_digit());
        if !ok || level != "info" || logger != "wasm" {
            return None;
        }
        r.strip_prefix(' ')?
    } else {
        // Istio: ts \t level \t logger \t message
        let mut parts = s.splitn(4, '\t');
        let (ts, level, logger, msg) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if !timestamp_like(ts) || level != "info" || !(logger == "wasm" || logger == "envoy wasm") {
            return None;
        }
        msg
    };
    let names_and_msg = after.strip_prefix("wasm log ")?;
    let colon = names_and_msg.find(": ")?;
    let names = &names_and_msg[..colon];
    if names.is_empty() || names.contains(['"', '\t', '[', ']']) {
        return None;
    }
    Some(&names_and_msg[colon + 2..])
}

/// Whether `mac_hex` is the HMAC of `json` under `key`; the comparison is constant-time
/// (`Mac::verify_slice`, over `subtle`).
fn verify_mac(key: &[u8], json: &str, mac_hex: &str) -> bool {
    if mac_hex.len() != 64 || !mac_hex.is_ascii() {
        return false;
    }
    let mut got = [0u8; 32];
    for (i, b) in got.iter_mut().enumerate() {
        match u8::from_str_radix(&mac_hex[2 * i..2 * i + 2], 16) {
            Ok(v) => *b = v,
            Err(_) => return false,
        }
    }
    let Some(mut mac) = keyed(key) else { return false };
    mac.update(json.as_bytes());
    mac.verify_slice(&got).is_ok()
}

/// Checks a log line: `None` when it does not mention the trace marker at all; otherwise the
/// record if the filter wrote it (structure, and the MAC when `key` is given), or why not.
pub fn check_line(line: &str, key: Option<&[u8]>) -> Option<Result<Accepted, Rejection>> {
    if !line.contains(TRACE_MARKER) {
        return None;
    }
    let Some(msg) = wasm_log_message(line) else { return Some(Err(Rejection::NotWasmLog)) };
    let Some(payload) = msg.strip_prefix(TRACE_MARKER) else { return Some(Err(Rejection::NotWasmLog)) };
    let payload = payload.trim_end();
    let (json, mac) = match payload.rsplit_once(MAC_TAG) {
        Some((j, m)) if m.len() == 64 && m.bytes().all(|b| b.is_ascii_hexdigit()) => (j, Some(m)),
        _ => (payload, None),
    };
    let signed = match (key, mac) {
        (Some(k), Some(m)) => {
            if !verify_mac(k, json, m) {
                return Some(Err(Rejection::BadMac));
            }
            true
        }
        (Some(_), None) => return Some(Err(Rejection::Unsigned)),
        (None, _) => false,
    };
    Some(
        TraceRecord::parse(json)
            .map(|record| Accepted { record, signed })
            .map_err(|e: TraceError| Rejection::Malformed(e.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{RunAnnounce, RunCounters};

    const ENVOY: &str = "[2026-11-29 12:17:36.616][14679][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log sfr2l sfr2l: ";
    const ISTIO: &str = "2026-11-29T12:17:36.616412Z\tinfo\twasm\twasm log istio-system.sfr2l: ";
    const KEY: &[u8] = b"0123456789abcdef-key";

    fn rec(run: &str) -> TraceRecord {
        let a = RunAnnounce { threads: 1, calls: 1 };
        let mut c = RunCounters::new(a);
        c.record(a, 200, 0, 1, 2);
        TraceRecord::from_counters(run, 1, None, &c)
    }

    #[test]
    fn rfc4231_case_2() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?").unwrap()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // case 6: a key longer than the block is hashed first
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First").unwrap()),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn accepts_envoy_istio_and_kubectl_timestamps() {
        let r = rec("a");
        for prefix in [ENVOY.to_string(), ISTIO.to_string(), format!("2026-11-29T12:17:36.616412345Z {ISTIO}")] {
            let got = check_line(&format!("{prefix}{}", r.to_log_line()), None).unwrap().unwrap();
            assert_eq!((got.record.run.as_str(), got.record.responses), ("a", 1));
            assert!(!got.signed);
            let signed = format!("{prefix}{}", r.to_signed_log_line(Some(KEY)));
            assert!(check_line(&signed, Some(KEY)).unwrap().unwrap().signed);
            assert!(check_line(&signed, None).unwrap().is_ok(), "no key: the MAC is not checked");
        }
    }

    #[test]
    fn rejects_access_log_and_forged_lines() {
        let line = rec("x").to_log_line();
        let access = format!("[2026-11-29T12:17:36.616Z] \"GET /get HTTP/1.1\" 200 - 0 0 1 \"-\" \"{line}\"");
        assert_eq!(check_line(&access, None), Some(Err(Rejection::NotWasmLog)));
        let echoed = format!("[2026-11-29T12:17:36.616Z] \"GET /x HTTP/1.1\" \"{ENVOY}{line}\"");
        assert_eq!(check_line(&echoed, None), Some(Err(Rejection::NotWasmLog)));
        assert_eq!(check_line(&line, None), Some(Err(Rejection::NotWasmLog)), "a bare marker line");
        let debug = format!("[2026-11-29 12:17:36.616][1][debug][wasm] [src] wasm log a: {line}");
        assert_eq!(check_line(&debug, None), Some(Err(Rejection::NotWasmLog)));
        let other_logger = format!("[2026-11-29 12:17:36.616][1][info][http] [src] wasm log a: {line}");
        assert_eq!(check_line(&other_logger, None), Some(Err(Rejection::NotWasmLog)));
        // a Wasm log line another plugin wrote with a client's header: only the key catches it
        let forged = format!("{ENVOY}{line}");
        assert_eq!(check_line(&forged, Some(KEY)), Some(Err(Rejection::Unsigned)));
        let wrong = format!("{ENVOY}{}", rec("x").to_signed_log_line(Some(b"another key of 16+ bytes")));
        assert_eq!(check_line(&wrong, Some(KEY)), Some(Err(Rejection::BadMac)));
        let mut tampered = format!("{ENVOY}{}", rec("x").to_signed_log_line(Some(KEY)));
        tampered = tampered.replace("\"responses\":1", "\"responses\":2");
        assert_eq!(check_line(&tampered, Some(KEY)), Some(Err(Rejection::BadMac)));
        assert!(check_line("nothing here", Some(KEY)).is_none());
    }

    #[test]
    fn malformed_payload_is_typed() {
        let got = check_line(&format!("{ENVOY}SFR2L_TRACE {{oops"), None).unwrap();
        assert!(matches!(got, Err(Rejection::Malformed(ref m)) if m.contains("JSON")), "{got:?}");
    }
}
