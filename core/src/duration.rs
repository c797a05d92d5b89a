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
    #[error("duration {0:?} is beyond Go's longest (2562047h, about 292 years)")]
    TooLong(String),
}

/// Go's longest duration (`time.Duration` is int64 nanoseconds), in seconds.
const MAX_SECS: f64 = i64::MAX as f64 / 1e9;

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
        if total > MAX_SECS {
            return Err(DurationError::TooLong(text.to_string()));
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
        assert!(matches!(IstioDuration::parse("2562048h"), Err(DurationError::TooLong(_))));
        assert!(IstioDuration::parse("2562047h").is_ok());
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

    proptest::proptest! {
        /// Every whole number of milliseconds is written in its canonical form and reads back.
        #[test]
        fn canonical_forms_round_trip(ms in 1u64..=9_000_000_000_000) {
            let d = IstioDuration::from_secs(ms as f64 / 1000.0);
            let text = d.to_string();
            proptest::prop_assert_eq!(IstioDuration::parse(&text).map(IstioDuration::millis), Ok(ms), "{}", text);
            proptest::prop_assert_eq!(IstioDuration::parse(&d.envoy()).map(IstioDuration::millis), Ok(ms));
        }

        /// `<number><unit>` groups add up, as in Go's `time.ParseDuration`.
        #[test]
        fn groups_add_up(groups in proptest::collection::vec((0u32..100_000, proptest::sample::select(vec![
            ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9)])), 1..5)) {
            let text: String = groups.iter().map(|(n, (u, _))| format!("{n}{u}")).collect();
            let want: f64 = groups.iter().map(|(n, (_, scale))| f64::from(*n) * scale).sum();
            match IstioDuration::parse(&text) {
                Ok(d) => proptest::prop_assert!((d.secs() - want).abs() <= 1e-9 * want, "{}: {} vs {}", text, d.secs(), want),
                Err(DurationError::TooShort(_)) => proptest::prop_assert!(want < 1e-3, "{}", text),
                Err(e) => proptest::prop_assert!(false, "{}: {}", text, e),
            }
        }

        /// Any text: a duration within Istio's range that reads back from its own rendering,
        /// or a typed error; never a panic.
        #[test]
        fn any_text(text in proptest::prop_oneof!["[0-9.hmsun µ]{0,24}", "[0-9]{1,22}(h|m|s|ms|us)", "[0-9]{1,12}\\.[0-9]{1,12}(h|m|s)"]) {
            if let Ok(d) = IstioDuration::parse(&text) {
                proptest::prop_assert!(d.secs() >= 1e-3 && d.secs() <= MAX_SECS, "{}", text);
                let back = IstioDuration::parse(&d.to_string()).map(IstioDuration::secs);
                proptest::prop_assert!(back.clone().is_ok_and(|b| (b - d.secs()).abs() <= 1e-9 * d.secs().max(1.0)), "{}: {} -> {:?}", text, d, back);
            }
        }
    }

    #[test]
    fn serde_roundtrip() {
        let d: IstioDuration = serde_json::from_str("\"1s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1s\"");
        assert!(serde_json::from_str::<IstioDuration>("\"1 sec\"").is_err());
    }
}
