//! Istio durations ("3m", "1s", "100ms", "1h30m") at the edges, seconds inside.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A duration as Istio writes it in a DestinationRule; stored as seconds.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct IstioDuration(f64);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("bad duration {0:?}: expected Go-style units like \"3m\", \"1s\", \"100ms\"")]
    Syntax(String),
    #[error("duration {0:?} is below Istio's minimum of 1ms")]
    TooShort(String),
}

impl IstioDuration {
    pub fn from_secs(secs: f64) -> Self {
        Self(secs)
    }
    pub fn secs(self) -> f64 {
        self.0
    }
    pub fn millis(self) -> u64 {
        (self.0 * 1000.0).round() as u64
    }

    /// Parses a Go/Istio duration: one or more `<number><unit>` groups, units h, m, s, ms, us, ns.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(DurationError::Empty);
        }
        let bad = || DurationError::Syntax(text.to_string());
        let mut total = 0.0;
        let mut rest = t;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
            if num_len == 0 {
                return Err(bad());
            }
            let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
            rest = &rest[num_len..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "us" | "µs" => 1e-6,
                "ns" => 1e-9,
                _ => return Err(bad()),
            };
            total += value * scale;
            rest = &rest[unit_len..];
        }
        if total < 1e-3 {
            return Err(DurationError::TooShort(text.to_string()));
        }
        Ok(Self(total))
    }

    /// Envoy's protobuf-JSON form: seconds with an `s` suffix only ("180s", "0.25s").
    pub fn envoy(self) -> String {
        format!("{}s", trim_float(self.0))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl fmt::Display for IstioDuration {
    /// Canonical Istio form: the largest whole unit that represents the value exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 * 1000.0;
        if (ms - ms.round()).abs() > 1e-6 {
            return write!(f, "{}s", trim_float(self.0));
        }
        let ms = ms.round() as u64;
        if ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for IstioDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for IstioDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IstioDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_forms() {
        assert_eq!(IstioDuration::parse("3m").unwrap().secs(), 180.0);
        assert_eq!(IstioDuration::parse("1s").unwrap().secs(), 1.0);
        assert_eq!(IstioDuration::parse("100ms").unwrap().secs(), 0.1);
        assert_eq!(IstioDuration::parse("1h30m").unwrap().secs(), 5400.0);
        assert_eq!(IstioDuration::parse("1.5s").unwrap().secs(), 1.5);
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(matches!(IstioDuration::parse(""), Err(DurationError::Empty)));
        for bad in ["3", "m", "3x", "-1s", "s3", "3 m"] {
            assert!(matches!(IstioDuration::parse(bad), Err(DurationError::Syntax(_))), "{bad}");
        }
        assert!(matches!(IstioDuration::parse("10us"), Err(DurationError::TooShort(_))));
    }

    #[test]
    fn renders_envoy_and_istio() {
        let d = IstioDuration::parse("3m").unwrap();
        assert_eq!(d.envoy(), "180s");
        assert_eq!(d.to_string(), "3m");
        assert_eq!(IstioDuration::parse("250ms").unwrap().envoy(), "0.25s");
        assert_eq!(IstioDuration::parse("250ms").unwrap().to_string(), "250ms");
        assert_eq!(IstioDuration::parse("90s").unwrap().to_string(), "90s");
    }

    #[test]
    fn serde_roundtrip() {
        let d: IstioDuration = serde_json::from_str("\"1s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1s\"");
        assert!(serde_json::from_str::<IstioDuration>("\"1 sec\"").is_err());
    }
}
