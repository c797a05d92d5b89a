//! Go-compatible text formatting helpers, so that the fortio-style report prints numbers,
//! durations and timestamps exactly the way fortio (Go's `fmt` / `time`) does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Go's `%g` (`prec == None`, shortest representation) or `%.Ng` (`prec == Some(N)`).
pub(crate) fn fmt_g(v: f64, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".to_string() } else { "-Inf".to_string() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".to_string() } else { "0".to_string() };
    }
    let neg = v < 0.0;
    let a = v.abs();
    // Decimal digits (rounded to `prec` significant digits, or shortest round-trip) and exponent.
    let sci = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, a),
        None => format!("{a:e}"),
    };
    let (mant, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let nd = digits.len() as i32;
    let dp = exp + 1; // value = 0.DIGITS * 10^dp
    let eprec = match prec {
        None => 6,
        Some(p) => {
            let mut e = p.max(1) as i32;
            if e > nd && nd >= dp {
                e = nd;
            }
            e
        }
    };
    let x = dp - 1;
    let mut out = String::with_capacity(24);
    if neg {
        out.push('-');
    }
    if x < -4 || x >= eprec {
        out.push(digits[0] as char);
        if nd > 1 {
            out.push('.');
            out.extend(digits[1..].iter().map(|&b| b as char));
        }
        out.push('e');
        out.push(if x < 0 { '-' } else { '+' });
        let ax = x.unsigned_abs();
        if ax < 10 {
            out.push('0');
        }
        out.push_str(&ax.to_string());
    } else if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.extend(digits.iter().map(|&b| b as char));
    } else {
        let dpu = dp as usize;
        if dpu >= digits.len() {
            out.extend(digits.iter().map(|&b| b as char));
            for _ in digits.len()..dpu {
                out.push('0');
            }
        } else {
            out.extend(digits[..dpu].iter().map(|&b| b as char));
            out.push('.');
            out.extend(digits[dpu..].iter().map(|&b| b as char));
        }
    }
    out
}

/// Go's `time.Duration.String()` for a non-negative duration ("123.4ms", "5s", "1m30.5s").
pub(crate) fn go_duration(d: Duration) -> String {
    let u = d.as_nanos();
    if u == 0 {
        return "0s".to_string();
    }
    fn frac(v: u128, prec: u32) -> (u128, String) {
        let p = 10u128.pow(prec);
        let int = v / p;
        let f = v % p;
        if f == 0 {
            return (int, String::new());
        }
        let s = format!("{:0width$}", f, width = prec as usize);
        (int, format!(".{}", s.trim_end_matches('0')))
    }
    if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (int, f) = frac(u, prec);
        return format!("{int}{f}{unit}");
    }
    let (secs, f) = frac(u, 9);
    let s = secs % 60;
    let mins = secs / 60;
    if mins == 0 {
        return format!("{s}{f}s");
    }
    let m = mins % 60;
    let h = mins / 60;
    if h == 0 {
        return format!("{m}m{s}{f}s");
    }
    format!("{h}h{m}m{s}{f}s")
}

/// RFC 3339 timestamp in UTC with nanoseconds, trailing zeros trimmed (Go's `time.RFC3339Nano`).
pub(crate) fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let nanos = d.subsec_nanos();
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, da) = civil_from_days(days);
    let mut s = format!("{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}", sod / 3600, (sod % 3600) / 60, sod % 60);
    if nanos != 0 {
        let f = format!("{nanos:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for simple ASCII header names.
pub(crate) fn canonical_header_key(k: &str) -> String {
    let mut upper = true;
    k.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}
