//! Property tests of the plugin configuration parser: any bytes, and valid configurations with
//! mutations, either parse into a configuration that round-trips, or fail with a JSON error whose
//! line and column lie inside the input, or a validation error naming a field of the schema.
//! `PROPTEST_CASES` sets the count.

use super::*;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn valid() -> String {
    let c = ConfigV1 {
        generation: 3,
        rule: Some(crate::rule::sample_rule()),
        trace_key: Some("0123456789abcdef".into()),
        ..Default::default()
    };
    c.to_json()
}

/// Top-level fields of the schema: a validation error starts with one of them.
const FIELDS: [&str; 13] = [
    "api",
    "mode",
    "failure",
    "rule",
    "generation",
    "idle_timeout",
    "flush_period",
    "window",
    "headers",
    "models",
    "loadtest",
    "max_open_runs",
    "max_trace_lines_per_s",
];

/// The property every input must have (the first failure, if any, as text).
pub(crate) fn check(bytes: &[u8]) -> Result<(), String> {
    match ConfigV1::parse(bytes) {
        Ok(c) => match ConfigV1::parse(c.to_json().as_bytes()) {
            Ok(again) if again == c => Ok(()),
            other => Err(format!("{c:?} does not round-trip: {other:?}")),
        },
        Err(ConfigError::Json(e)) => {
            let (line, col) = (e.line(), e.column());
            let shown = e.to_string().contains(&format!("line {line} column {col}"));
            let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            let inside = line >= 1 && lines.get(line - 1).is_some_and(|l| col <= l.len() + 1);
            if shown && inside {
                Ok(())
            } else {
                Err(format!("{e}: line {line} column {col} is not a place in the {} input lines", lines.len()))
            }
        }
        Err(ConfigError::Invalid(f)) => {
            let field = f.split([':', '.', ' ']).next().unwrap_or("");
            if FIELDS.contains(&field) || field == "trace_key" {
                Ok(())
            } else {
                Err(format!("{f}: names no field of the schema"))
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = check(&bytes) {
            prop_assert!(false, "{}", e);
        }
    }

    /// JSON-ish text (the bytes above are rarely JSON at all): objects of the schema's fields
    /// with values of every type.
    #[test]
    fn json_shaped(fields in prop::collection::vec((prop::sample::select(FIELDS.to_vec()),
                   prop::sample::select(vec!["1", "-1", "1e99", "\"2s\"", "\"x\"", "null", "[]", "{}", "true", "\"observe\"", "70000"])), 0..6),
                   newlines in any::<bool>()) {
        let sep = if newlines { ",\n" } else { "," };
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let text = format!("{{\"api\":\"v1\"{}{}}}", if body.is_empty() { "" } else { sep }, body.join(sep));
        if let Err(e) = check(text.as_bytes()) {
            prop_assert!(false, "{}: {}", text, e);
        }
    }

    /// Flip, insert or delete bytes of a valid configuration: the result parses (and then
    /// re-serialises to an equal configuration) or is rejected naming the field or JSON position.
    #[test]
    fn mutated_valid(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
        let mut b = valid().into_bytes();
        for (at, byte, op) in edits {
            let n = b.len();
            let i = at.index(n.max(1));
            match op {
                0 if n > 0 => b[i.min(n - 1)] = byte,
                1 => b.insert(i.min(n), byte),
                _ if n > 0 => {
                    b.remove(i.min(n - 1));
                }
                _ => {}
            }
        }
        if let Err(e) = check(&b) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Numeric limits are enforced with the field's name.
    #[test]
    fn limits_name_the_field(open in any::<u32>(), lines in any::<u32>()) {
        let j = format!(r#"{{"api":"v1","max_open_runs":{open},"max_trace_lines_per_s":{lines}}}"#);
        match ConfigV1::parse(j.as_bytes()) {
            Ok(c) => prop_assert!(OPEN_RUNS_RANGE.contains(&c.max_open_runs) && TRACE_LINES_RANGE.contains(&c.max_trace_lines_per_s)),
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.contains("max_open_runs") || e.contains("max_trace_lines_per_s"), "{e}");
            }
        }
    }
}
